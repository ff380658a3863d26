"""The two middlewares: who is asking (session cookie), and errors as JSON."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from callcenter.appkeys import AUTH
from callcenter.auth.identity import USER, CurrentUser
from callcenter.errors import (
    DATABASE_RETRY_AFTER_S,
    DatabaseUnavailable,
    DomainError,
    Forbidden,
    NotAuthenticated,
    is_database_outage,
)

log = logging.getLogger("callcenter.web")
COOKIE = "cc_session"


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except DomainError as e:
        return _domain_error(request, e)
    except web.HTTPException:
        raise
    except Exception as e:
        if not is_database_outage(e):
            raise
        # The database is away: say so and when to retry, never a 500 (pops keep going; the
        # call records wait in memory until it is back: callcenter.calls.recorder).
        log.warning("database unreachable on %s %s (%s)", request.method, request.path, type(e).__name__)
        return _domain_error(request, DatabaseUnavailable(
            "数据库暂时无法访问，请稍后重试", retry_after=DATABASE_RETRY_AFTER_S))


def _domain_error(request: web.Request, e: DomainError) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.path == "/ws":
        resp = web.json_response(e.to_json(), status=e.status,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))
    elif isinstance(e, NotAuthenticated):
        raise web.HTTPFound("/login") from e
    else:
        resp = web.Response(text=e.message, status=e.status)
    if "retry_after" in e.details:
        resp.headers["Retry-After"] = str(e.details["retry_after"])
    return resp


@web.middleware
async def auth_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    token = request.cookies.get(COOKIE)
    if token:
        user = await request.app[AUTH].authenticate(token)
        if user is not None:
            request[USER] = user
    return await handler(request)


def current_user(request: web.Request, *roles: str) -> CurrentUser:
    """The logged-in user, required to hold one of ``roles`` (any role if none given).
    Raises NotAuthenticated (401) or Forbidden (403)."""
    user: CurrentUser | None = request.get(USER)
    if user is None:
        raise NotAuthenticated("请先登录 (login required)")
    if roles and user.role not in roles:
        raise Forbidden("无权限 (your role may not do this)", role=user.role)
    return user


async def json_body(request: web.Request) -> dict:
    """The request's JSON object: 415 unless declared ``application/json`` (a cross-site form
    can send text/plain, never JSON without a CORS preflight), 422 naming the problem otherwise."""
    from callcenter.errors import ValidationFailed
    from callcenter.web.origins import require_json

    require_json(request)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise ValidationFailed("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationFailed("body", "must be a JSON object")
    return body

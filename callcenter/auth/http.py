"""POST /api/session (login), DELETE /api/session (logout), GET /api/me."""

from __future__ import annotations

from aiohttp import web

from callcenter.appkeys import AUTH, LOGIN_THROTTLE, SETTINGS
from callcenter.errors import NotAuthenticated, TooManyAttempts, ValidationFailed
from callcenter.web.middleware import COOKIE, current_user, json_body

routes = web.RouteTableDef()


def _user_json(user) -> dict:  # type: ignore[no-untyped-def]
    return {"id": user.id, "username": user.username, "role": user.role,
            "display_name": user.display_name, "extension": user.extension}


@routes.post("/api/session")
async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username:
        raise ValidationFailed("username", "required")
    if not isinstance(password, str) or not password:
        raise ValidationFailed("password", "required")
    username = username[:64]
    throttle, ip = request.app[LOGIN_THROTTLE], request.remote or "?"
    wait = await throttle.wait_seconds(username, ip)
    if wait:
        raise TooManyAttempts("登录失败次数过多，请稍后再试 (too many failed logins)", retry_after=wait)
    try:
        token, user = await request.app[AUTH].login(username, password[:256])
    except NotAuthenticated:
        await throttle.failed(username, ip)
        raise
    await throttle.succeeded(username)
    settings = request.app[SETTINGS]
    resp = web.json_response({"user": _user_json(user)})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=settings.secure_cookies,
                    max_age=settings.session_ttl, path="/")
    return resp


@routes.delete("/api/session")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    if token:
        await request.app[AUTH].logout(token)
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    return web.json_response({"user": _user_json(current_user(request))})

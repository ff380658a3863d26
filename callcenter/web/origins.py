"""Which pages may act with the user's cookie: one allow-list for the websockets and for every
state-changing request (CSRF), and the JSON-only rule for request bodies.

The allow-list is ``Settings.origins``: the server's own origin and ``CALLCENTER_ALLOWED_ORIGINS``.
A cookie alone proves nothing about *which page* sent a request — SameSite=Lax lets a page on
another port of the same host (the same "site") send it — so an unsafe request (POST, PUT, PATCH,
DELETE) must also name an allowed origin:

- ``Origin`` present: it must be on the list (``null``, what sandboxed frames and some
  redirects send, is not);
- no ``Origin`` but a ``Referer``: the Referer's origin must be on the list;
- neither: accepted. Every browser in use sends ``Origin`` on a cross-origin POST, PUT, PATCH or
  DELETE (fetch and forms alike), so a request without either did not come from another site's
  page; API clients, scripts and the test client send neither. The JSON-only rule below is a
  second, independent wall: a cross-site form can only send ``text/plain``, urlencoded or
  multipart bodies, and a script's ``application/json`` needs a CORS preflight this server
  never grants. See ``docs/security.md``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from callcenter.appkeys import SETTINGS
from callcenter.errors import DomainError, Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, as a browser spells an Origin; None
    for anything else. Pure."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 80 if parts.scheme == "http" else 443
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def is_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``origin`` (as sent in an Origin header) is one of ``allowed``. Pure."""
    return origin.rstrip("/") in allowed


def check_origin(request: web.Request) -> None:
    """A websocket handshake: 403 unless its Origin is allowed (a page on another site cannot
    ride the user's cookie; browsers always send Origin on a websocket handshake)."""
    origin = (request.headers.get("Origin") or "").rstrip("/")
    if not is_allowed(origin, request.app[SETTINGS].origins):
        raise Forbidden("来源不被允许", origin=origin or None)


def check_request_source(request: web.Request) -> None:
    """An unsafe request: 403 ``csrf`` when its Origin (or, without one, its Referer) is not an
    allowed origin; accepted when it has neither (see the module docstring)."""
    if request.method in SAFE_METHODS:
        return
    allowed = request.app[SETTINGS].origins
    origin = request.headers.get("Origin")
    if origin is not None:
        if is_allowed(origin, allowed):
            return
        raise Forbidden("请求来源不被允许：请从本系统的页面操作", code="csrf", origin=origin[:200])
    referer = request.headers.get("Referer")
    if referer is None:
        return
    if (ref_origin := origin_of(referer)) is not None and is_allowed(ref_origin, allowed):
        return
    raise Forbidden("请求来源不被允许：请从本系统的页面操作", code="csrf", referer_origin=ref_origin)


@web.middleware
async def csrf_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    check_request_source(request)
    return await handler(request)


def require_json(request: web.Request) -> None:
    """415 unless the body is declared ``application/json`` (a cross-site form's text/plain
    must not be read as JSON)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("请求内容须为 JSON（Content-Type: application/json）",
                                   content_type=request.content_type[:100])

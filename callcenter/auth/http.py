"""POST /api/session (login), DELETE /api/session (logout), GET /api/me.

Login and logout are public endpoints (no session needed). Logins are throttled per username,
and per address for names that already failed (``auth.throttle``): 429 with ``Retry-After``. The
session cookie is HttpOnly, SameSite=Lax, Secure when configured, for the session's lifetime.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.appkeys import AUTH, LOGIN_THROTTLE, MAILBOX, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.auth.throttle import client_address
from callcenter.errors import NotAuthenticated, TooManyAttempts
from callcenter.web.api import ApiModel, endpoint, json_response
from callcenter.web.middleware import COOKIE

routes = web.RouteTableDef()
TAG = "session"
# Longer input is cut, not refused: a wrong username or password answers 401 like any other.
MAX_USERNAME = 64
MAX_PASSWORD = 256


class LoginIn(ApiModel):
    # Passwords are taken exactly as typed: no stripping (ApiModel strips by default).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    username: str = Field(min_length=1, description=f"用户名 (cut to {MAX_USERNAME} characters)")
    password: str = Field(min_length=1, description=f"密码 (cut to {MAX_PASSWORD} characters)")


class UserOut(BaseModel):
    id: int
    username: str
    role: str = Field(description="agent / dispatcher / engineer / survey / supervisor / admin")
    display_name: str
    extension: str | None = Field(description="坐席分机 (agents)")


class SessionOut(BaseModel):
    user: UserOut


class LoggedOut(BaseModel):
    ok: bool


def _user_json(user: CurrentUser) -> dict[str, object]:
    return {"id": user.id, "username": user.username, "role": user.role,
            "display_name": user.display_name, "extension": user.extension}


@routes.post("/api/session")
@endpoint("登录 Log in: sets the session cookie (429 after too many failures)", public=True,
          body=LoginIn, response=SessionOut, tag=TAG)
async def login(request: web.Request, user: CurrentUser | None, body: LoginIn) -> web.Response:
    username = body.username[:MAX_USERNAME]
    settings = request.app[SETTINGS]
    throttle = request.app[LOGIN_THROTTLE]
    ip = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                        settings.trusted_proxy_networks)
    wait = await throttle.attempt(username, ip)  # counted before the password is checked
    if wait:
        raise TooManyAttempts("登录失败次数过多，请稍后再试 (too many failed logins)", retry_after=wait)
    try:
        token, user = await request.app[AUTH].login(username, body.password[:MAX_PASSWORD])
    except NotAuthenticated:
        await throttle.failed(username, ip)
        raise
    await throttle.succeeded(username)
    resp = json_response({"user": _user_json(user)})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=settings.secure_cookies,
                    max_age=settings.session_ttl, path="/")
    return resp


@routes.delete("/api/session")
@endpoint("退出登录 Log out: ends the session and clears the cookie", public=True,
          response=LoggedOut, tag=TAG)
async def logout(request: web.Request, user: CurrentUser | None) -> web.Response:
    token = request.cookies.get(COOKIE)
    if token:
        auth = request.app[AUTH]
        await auth.logout(token)
        # Its websockets close too, on every instance (callcenter.realtime.hub.end_session).
        await request.app[MAILBOX].end_session(auth.session_key(token))
    resp = json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


@routes.get("/api/me")
@endpoint("当前用户 The logged-in user", response=SessionOut, tag=TAG)
async def me(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response({"user": _user_json(user)})

"""The HTML pages (Chinese UI): login and the agent desktop."""

from __future__ import annotations

import re

import aiohttp_jinja2
from aiohttp import web

from callcenter.appkeys import SETTINGS
from callcenter.auth.identity import USER

routes = web.RouteTableDef()
# A path on this site: one "/" then no "/" (a "//host" is another site), no backslash (browsers
# read it as "/"), no control characters (browsers drop tabs and newlines from URLs).
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x1f\x7f]*\Z")
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def safe_next(raw: str | None) -> str:
    """Where the login page may send the user afterwards: ``raw`` when it is a path on this
    site, else ``/``. A dot segment is refused too, because the browser resolves it:
    ``/.//evil.example/`` becomes ``//evil.example/``, another site. Pure."""
    if not raw or not _LOCAL_PATH.match(raw):
        return "/"
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if "//" in path or _DOT_SEGMENT.search(path) or re.search(r"%2e|%2f|%5c", path, re.I):
        return "/"
    return raw


@routes.get("/login")
@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict:
    return {"next": safe_next(request.query.get("next"))}


@routes.get("/")
@aiohttp_jinja2.template("desk.html")
async def desk(request: web.Request) -> dict:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound("/login")
    return {"user": user, "timezone": request.app[SETTINGS].timezone}

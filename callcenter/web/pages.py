"""The HTML pages (Chinese UI): login and the agent desktop."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from callcenter.appkeys import SETTINGS
from callcenter.auth.identity import USER

routes = web.RouteTableDef()


@routes.get("/login")
@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict:
    return {"next": request.query.get("next", "/")}


@routes.get("/")
@aiohttp_jinja2.template("desk.html")
async def desk(request: web.Request) -> dict:
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound("/login")
    return {"user": user, "timezone": request.app[SETTINGS].timezone}

"""The dispatcher's board page (派单台, ``/dispatch``): a shell like the other work-order pages;
what it shows comes from ``GET /api/dispatch/board``, the rules' preview and the dispatch API,
masked."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from callcenter.access import allowed
from callcenter.appkeys import SETTINGS
from callcenter.web.order_pages import page_context, page_user

routes = web.RouteTableDef()


@routes.get("/dispatch")
@aiohttp_jinja2.template("dispatch.html")
async def dispatch_page(request: web.Request) -> dict:
    user = page_user(request, "dispatch.board")
    return page_context(request, user, "dispatch", may_dispatch=allowed(user, "order.assign"),
                        radius_km=request.app[SETTINGS].dispatch_radius_km)

"""The work-order pages (Chinese UI): intake, order list and detail, the engineer's mobile view,
the SLA alerts, and the navigation bar they share with the agent desktop.

The pages are shells: everything they show comes from the JSON API, masked, so the same checks
apply to a page as to any other API client. A page only decides who may open it at all (by
role, from ``callcenter.access.ACTIONS``) and where to go instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from callcenter.access import allowed
from callcenter.appkeys import SETTINGS
from callcenter.auth.identity import USER, CurrentUser
from callcenter.errors import Forbidden

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class NavLink:
    key: str
    label: str
    href: str


def nav_links(user: CurrentUser | None) -> list[NavLink]:
    """The top navigation for ``user``'s role (an engineer works from 我的工单 on a phone)."""
    if user is None:
        return []
    links = []
    if user.role in ("agent", "supervisor", "admin"):
        links.append(NavLink("desk", "坐席台", "/"))
    if allowed(user, "intake.create"):
        links.append(NavLink("intake", "受理", "/intake"))
    if user.role != "engineer" and allowed(user, "order.search"):
        links.append(NavLink("orders", "工单", "/orders"))
    if allowed(user, "dispatch.board"):
        links.append(NavLink("dispatch", "派单台", "/dispatch"))
    if allowed(user, "alerts.read"):
        links.append(NavLink("alerts", "预警", "/alerts"))
    # The supervisors' and survey agents' pages (issues 5 and 6), each shown to the roles its
    # page admits.
    for key, label, href, action in (("wallboard", "监控看板", "/wallboard", "wallboard.read"),
                                     ("survey", "回访", "/survey", "survey.record"),
                                     ("complaints", "投诉跟进", "/complaints", "escalation.take"),
                                     ("reports", "月报", "/reports/monthly", "report.monthly"),
                                     ("outbound", "外呼看板", "/outbound", "outbound.board")):
        if allowed(user, action):
            links.append(NavLink(key, label, href))
    if user.role == "engineer":
        links.append(NavLink("mobile", "我的工单", "/m/orders"))
    return links


def page_user(request: web.Request, action: str | None = None) -> CurrentUser:
    """The logged-in user, or a redirect to the login page that comes back here; 403 when
    ``action`` is given and the user's role may not perform it."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound("/login?next=" + quote(request.path_qs, safe="/"))
    if action is not None and not allowed(user, action):
        raise Forbidden("无权限访问此页面")
    return user


def page_context(request: web.Request, user: CurrentUser, active: str, **extra: object) -> dict:
    return {"user": user, "timezone": request.app[SETTINGS].timezone, "active": active,
            "may_reveal": allowed(user, "personal.reveal"), **extra}


def _order_id(request: web.Request) -> int:
    raw = request.match_info["order_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(text="工单不存在")
    return int(raw)


@routes.get("/intake")
@aiohttp_jinja2.template("intake.html")
async def intake_page(request: web.Request) -> dict:
    return page_context(request, page_user(request, "intake.create"), "intake")


@routes.get("/orders")
@aiohttp_jinja2.template("orders.html")
async def orders_page(request: web.Request) -> dict:
    user = page_user(request, "order.search")
    if user.role == "engineer":
        raise web.HTTPFound("/m/orders")
    return page_context(request, user, "orders")


@routes.get("/orders/{order_id}")
@aiohttp_jinja2.template("order.html")
async def order_page(request: web.Request) -> dict:
    user = page_user(request)
    order_id = _order_id(request)
    if user.role == "engineer":
        raise web.HTTPFound(f"/m/orders/{order_id}")
    return page_context(request, user, "orders", order_id=order_id, mobile=False,
                        may_assign=allowed(user, "order.assign"))


@routes.get("/m/orders")
@aiohttp_jinja2.template("m_orders.html")
async def mobile_orders_page(request: web.Request) -> dict:
    return page_context(request, page_user(request), "mobile")


@routes.get("/m/orders/{order_id}")
@aiohttp_jinja2.template("order.html")
async def mobile_order_page(request: web.Request) -> dict:
    return page_context(request, page_user(request), "mobile", order_id=_order_id(request), mobile=True)


@routes.get("/alerts")
@aiohttp_jinja2.template("alerts.html")
async def alerts_page(request: web.Request) -> dict:
    return page_context(request, page_user(request, "alerts.read"), "alerts")


def setup(app: web.Application) -> None:
    """Register the pages and the ``nav_links`` template helper (after aiohttp_jinja2.setup)."""
    aiohttp_jinja2.get_env(app).globals["nav_links"] = nav_links
    app.add_routes(routes)

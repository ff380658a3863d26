"""The live wallboard (supervisors, admins): ``/wallboard`` (the page), ``GET /api/wallboard``
(the latest live snapshot, the work side, the formulas), ``GET /ws/wallboard`` (every new
snapshot and work-side reading as it is published).

Websocket messages (server → client, JSON text): ``wallboard.live`` (queues, agents, the day's
tallies and figures, thresholds, alerts; times as epoch milliseconds so the page counts
time-in-state and waits itself) and ``wallboard.work``. Client → server: ``{"type": "ping"}``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, Field

from callcenter.agentstate.rules import check_queue
from callcenter.appkeys import AGENTS, ENGINE, HUB, LIVE_STORE, SETTINGS, WORK_BOARD
from callcenter.auth.identity import CurrentUser
from callcenter.errors import ValidationFailed
from callcenter.wallboard.history import day_history
from callcenter.wallboard.metrics import FORMULAS
from callcenter.wallboard.services import WALLBOARD_ID
from callcenter.wallboard.work import WORK_FORMULAS
from callcenter.web.api import ApiModel, endpoint, json_response
from callcenter.realtime.http import answer_pings, check_origin, session_of, watch_session
from callcenter.web.middleware import current_user
from callcenter.web.order_pages import page_context, page_user

routes = web.RouteTableDef()
ROLES = ("supervisor", "admin")


class WallboardOut(BaseModel):
    live: dict[str, Any] | None = Field(description="the latest wallboard.live snapshot; null before the first")
    work: dict[str, Any] = Field(description="wallboard.work: SLA alerts by urgency, backlog, completions, complaints")
    formulas: dict[str, str] = Field(description="how each figure is computed (shown on the page)")


@routes.get("/wallboard")
@aiohttp_jinja2.template("wallboard.html")
async def wallboard_page(request: web.Request) -> dict:
    return page_context(request, page_user(request, "wallboard.read"), "wallboard", formulas=FORMULAS,
                        work_formulas=WORK_FORMULAS)


@routes.get("/api/wallboard")
@endpoint("监控看板 The live wallboard: queues, agents, the day so far, the work side", roles=ROLES,
          response=WallboardOut, tag="wallboard")
async def get_wallboard(request: web.Request, user: CurrentUser) -> web.Response:
    text = request.app[LIVE_STORE].latest()
    work = await request.app[WORK_BOARD].refresh()
    return json_response({"live": json.loads(text) if text else None, "work": work,
                          "formulas": {**FORMULAS, **WORK_FORMULAS}})


class WallboardHistoryQuery(ApiModel):
    date: dt.date | None = Field(default=None, description="YYYY-MM-DD in the centre's time zone (default today)")
    queue: str | None = Field(default=None, description="one queue (default all)")


class WallboardHourOut(BaseModel):
    queue: str
    hour: int = Field(description="0–23, the centre's local hour the calls joined in")
    offered: int
    answered: int
    abandoned: int
    abandoned_in_sl: int
    completed: int
    completed_in_sl: int
    hold_sum: int
    talk_sum: int
    service_level: float | None
    service_level2: float | None
    asa: float | None
    aht: float | None
    abandon_rate: float | None


class WallboardAgentDayOut(BaseModel):
    member: str
    name: str
    answered: int
    completed: int
    talk_s: int
    aht: float | None


class WallboardHistoryOut(BaseModel):
    date: str
    hours: list[WallboardHourOut]
    agents: list[WallboardAgentDayOut]


@routes.get("/api/wallboard/history")
@endpoint("话务历史 A day's calls per queue and hour, and per agent, from the call records", roles=ROLES,
          query=WallboardHistoryQuery, response=WallboardHistoryOut, tag="wallboard")
async def get_history(request: web.Request, user: CurrentUser, query: WallboardHistoryQuery) -> web.Response:
    app = request.app
    tz = app[SETTINGS].tz
    day = query.date or dt.datetime.now(tz).date()
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 1, 1):
        raise ValidationFailed("date", "YYYY-MM-DD")
    queue = check_queue(query.queue) if query.queue else None
    text = app[LIVE_STORE].latest()
    levels = {q["name"]: q["service_level_s"] for q in json.loads(text)["queues"]} if text else {}
    async with app[ENGINE].connect() as conn:
        data = await day_history(conn, day, tz, levels, queue)
    directory = app[AGENTS]
    for a in data["agents"]:
        uid = directory.resolve(a["member"])
        a["name"] = (directory.names.get(uid) if uid is not None else None) or a["member"]
    return json_response(data)


@routes.get("/ws/wallboard")
async def wallboard_socket(request: web.Request) -> web.StreamResponse:
    check_origin(request)
    current_user(request, *ROLES)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    hub, board = request.app[HUB], request.app[WORK_BOARD]
    client = hub.add(ws, WALLBOARD_ID, 0, session=session_of(request))  # ends with the session
    watch = watch_session(request, ws)
    board.clients += 1
    try:
        # What is known now first; later snapshots follow in publish order.
        first = [t for t in (request.app[LIVE_STORE].latest(), board.latest_text) if t]
        for text in first:
            client.queue.put_nowait(text)
        client.finish_replay([])
        await answer_pings(ws, client, lambda: '{"type":"pong"}')
    finally:
        board.clients -= 1
        hub.remove(client)
        if watch is not None:
            watch.cancel()
    return ws

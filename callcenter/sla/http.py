"""GET /api/alerts — the SLA alerts list (dispatchers, supervisors, admins), newest first; and
:func:`order_clocks`, the clocks of one order as the order detail shows them.

Alerts carry no personal data (order number, urgency, status, clock, level, times), so there is
nothing to mask.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import func, select

from callcenter.access import ACTIONS
from callcenter.appkeys import SESSIONMAKER, SLA
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.sla.rules import LABELS, aware, clocks, seconds_overdue, snapshot_of
from callcenter.web.api import PageQuery, endpoint, json_response

routes = web.RouteTableDef()

ClockName = Literal["plan", "dispatch", "contact", "reminder", "signoff", "survey", "escalation"]


class AlertQuery(PageQuery):
    state: Literal["open", "all"] = "open"
    clock: ClockName | None = None
    level: Literal["warning", "breach"] | None = None


class AlertOut(BaseModel):
    id: int
    order_id: int
    order_number: str
    urgency: str
    status: str
    clock: ClockName
    # The clock's Chinese name (派单, 联系客户, …).
    label: str
    level: Literal["warning", "breach"]
    deadline: dt.datetime
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    # Seconds past the deadline now (open) or when cleared; negative: time that was left.
    seconds_overdue: int


class AlertPage(BaseModel):
    items: list[AlertOut]
    total: int
    page: int
    page_size: int


class ClockOut(BaseModel):
    """One SLA clock of an order (``order_clocks``)."""

    clock: ClockName
    label: str
    # running | breached | met | late-met | missed (callcenter.sla.rules)
    state: str
    start: dt.datetime
    deadline: dt.datetime
    warn_at: dt.datetime
    allowance_s: int
    met_at: dt.datetime | None
    ended_at: dt.datetime | None
    # The alert level due now (running clocks only).
    level: Literal["warning", "breach"] | None
    # Now (running) or at the milestone (met) relative to the deadline; None if missed.
    seconds_overdue: int | None


def order_clocks(order_row: Any, now: dt.datetime) -> list[dict[str, Any]]:
    """The SLA clocks of an order (a ``WorkOrder`` or any row with its milestone columns) at
    ``now``, as JSON-ready dicts (:class:`ClockOut`). Pure."""
    out = []
    for c in clocks(snapshot_of(order_row), now):
        at = c.met_at if c.met_at is not None else (now if c.running else None)
        out.append(ClockOut(
            clock=c.name, label=c.label, state=c.state, start=c.start, deadline=c.deadline,  # type: ignore[arg-type]
            warn_at=c.warn_at, allowance_s=int(c.allowance.total_seconds()), met_at=c.met_at,
            ended_at=c.ended_at, level=c.level(now),  # type: ignore[arg-type]
            seconds_overdue=None if at is None else seconds_overdue(c.deadline, at),
        ).model_dump(mode="json"))
    return out


@routes.get("/api/alerts")
@endpoint("SLA 预警列表 SLA alerts, newest first", roles=ACTIONS["alerts.read"], query=AlertQuery,
          response=AlertPage, tag="sla",
          description="state=open (default): alerts not cleared; state=all: every alert. "
                      "Filter by clock and level; paged.")
async def list_alerts(request: web.Request, user: CurrentUser, query: AlertQuery) -> web.Response:
    now = request.app[SLA].clock()
    al, wo = SlaAlert.__table__, WorkOrder.__table__
    conditions = []
    if query.state == "open":
        conditions.append(al.c.cleared_at.is_(None))
    if query.clock is not None:
        conditions.append(al.c.clock == query.clock)
    if query.level is not None:
        conditions.append(al.c.level == query.level)
    page = (select(al, wo.c.number, wo.c.urgency, wo.c.status).join(wo, wo.c.id == al.c.order_id)
            .where(*conditions).order_by(al.c.raised_at.desc(), al.c.id.desc())
            .limit(query.page_size).offset((query.page - 1) * query.page_size))
    async with request.app[SESSIONMAKER]() as s:
        total = await s.scalar(select(func.count()).select_from(al).where(*conditions))
        rows = (await s.execute(page)).all()
    items = []
    for r in rows:
        deadline, cleared = aware(r.deadline), aware(r.cleared_at)
        items.append(AlertOut(
            id=r.id, order_id=r.order_id, order_number=r.number, urgency=r.urgency, status=r.status,
            clock=r.clock, label=LABELS[r.clock], level=r.level, deadline=deadline,  # type: ignore[arg-type]
            raised_at=aware(r.raised_at), cleared_at=cleared,  # type: ignore[arg-type]
            seconds_overdue=seconds_overdue(deadline, cleared or now),  # type: ignore[arg-type]
        ))
    return json_response(AlertPage(items=items, total=total or 0, page=query.page, page_size=query.page_size))

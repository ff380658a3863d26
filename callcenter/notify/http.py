"""GET /api/notifications — the outbox as a list: what was (or will be) sent to customers.

Supervisors and admins see every message; a dispatcher sees those of one order
(``order_id`` required). Numbers are masked; texts carry no number but the hotline and only
masked names (``callcenter.notify.visits``), so they are shown as stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from callcenter.access import ACTIONS
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import WorkOrder
from callcenter.db.notify import Notification
from callcenter.errors import Forbidden
from callcenter.sla.rules import aware
from callcenter.web.api import PageQuery, endpoint, json_response

routes = web.RouteTableDef()

Status = Literal["queued", "sending", "sent", "failed", "cancelled"]
# Roles that may list every message; the others in ACTIONS["notifications.read"] need an order.
SEE_ALL = ("supervisor", "admin")


class NotificationQuery(PageQuery):
    order_id: int | None = Field(None, ge=1)
    status: Status | None = None
    kind: str | None = Field(None, max_length=32)


class NotificationOut(BaseModel):
    id: int
    # appointment.confirmation | appointment.reminder | survey.link …
    kind: str
    channel: str
    # The recipient, masked (138****8000).
    recipient: str
    text: str
    status: Status
    due_at: dt.datetime
    attempts: int
    last_error: str
    gateway_id: str
    sent_at: dt.datetime | None
    created_at: dt.datetime
    order_id: int | None
    order_number: str | None
    appointment_id: int | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    page: int
    page_size: int


@routes.get("/api/notifications")
@endpoint("客户通知（短信）列表 Messages to customers (the outbox), newest first",
          roles=ACTIONS["notifications.read"], query=NotificationQuery, response=NotificationPage,
          tag="notifications",
          description="Filter by order_id, status and kind; paged. Dispatchers must give order_id. "
                      "Numbers are masked.")
async def list_notifications(request: web.Request, user: CurrentUser, query: NotificationQuery) -> web.Response:
    if user.role not in SEE_ALL and query.order_id is None:
        raise Forbidden("调度员须按工单查看通知 (give order_id)", role=user.role, requires="order_id")
    nt, wo = Notification.__table__, WorkOrder.__table__
    conditions = []
    if query.order_id is not None:
        conditions.append(nt.c.order_id == query.order_id)
    if query.status is not None:
        conditions.append(nt.c.status == query.status)
    if query.kind is not None:
        conditions.append(nt.c.kind == query.kind)
    page = (select(nt, wo.c.number).outerjoin(wo, wo.c.id == nt.c.order_id).where(*conditions)
            .order_by(nt.c.created_at.desc(), nt.c.id.desc())
            .limit(query.page_size).offset((query.page - 1) * query.page_size))
    async with request.app[SESSIONMAKER]() as s:
        total = await s.scalar(select(func.count()).select_from(nt).where(*conditions))
        rows = (await s.execute(page)).all()
    items = [NotificationOut(
        id=r.id, kind=r.kind, channel=r.channel, recipient=r.recipient_masked, text=r.text,
        status=r.status, due_at=aware(r.due_at), attempts=r.attempts, last_error=r.last_error,  # type: ignore[arg-type]
        gateway_id=r.gateway_id, sent_at=aware(r.sent_at), created_at=aware(r.created_at),  # type: ignore[arg-type]
        order_id=r.order_id, order_number=r.number, appointment_id=r.appointment_id) for r in rows]
    return json_response(NotificationPage(items=items, total=total or 0, page=query.page,
                                          page_size=query.page_size))

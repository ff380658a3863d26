"""What every order write shares: loading an order the user may touch, the facts the state
machine needs, the optimistic-locking update, and the timeline line.

Every write names the version it read; the update is ``UPDATE work_orders SET …, version =
version + 1 WHERE id = :id AND version = :read``. On PostgreSQL (READ COMMITTED) a concurrent
writer blocks on the row and then re-checks the WHERE against the committed row, so of two
people changing the same order one wins and the other's update matches no row: 409. SQLite runs
one writer at a time and behaves the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.access import check_order
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Appointment, OnsiteRecord, OrderEvent, WorkOrder
from callcenter.errors import Conflict
from callcenter.notify.outbox import Outbox
from callcenter.orders.states import Facts

# The milestone columns the SLA clocks read (contract: work-order statuses).
MILESTONES = ("dispatched_at", "accepted_at", "contacted_at", "planned_at", "reminded_at",
              "service_started_at", "service_finished_at", "signed_at", "surveyed_at",
              "dissatisfied_at", "escalated_at", "completed_at")


async def load_order(session: AsyncSession, order_id: int, user: CurrentUser, action: str,
                     *, lock: bool = False) -> WorkOrder:
    """The order if ``user`` may do ``action`` on it (404 if absent or not theirs, 403 role)."""
    stmt = select(WorkOrder).where(WorkOrder.id == order_id)
    if lock and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    order = (await session.execute(stmt)).scalar_one_or_none()
    check_order(user, action, order, order_id)
    assert order is not None
    return order


def check_version(order: WorkOrder, version: int | None) -> int:
    """The version to update from: the one the client read (409 when it is no longer current)."""
    if version is None:
        return order.version
    if version != order.version:
        raise Conflict("工单已被他人修改，请刷新后重试 (the order was changed by someone else; reload)",
                       code="stale_version", version=version, current=order.version)
    return version


async def apply(session: AsyncSession, order: WorkOrder, version: int, values: dict[str, Any],
                now: dt.datetime) -> int:
    """Write ``values`` if the order is still at ``version``; the new version, or 409."""
    stmt = (update(WorkOrder)
            .where(WorkOrder.id == order.id, WorkOrder.version == version)
            .values(**values, version=version + 1, updated_at=now)
            .returning(WorkOrder.version)
            .execution_options(synchronize_session="fetch"))
    new = (await session.execute(stmt)).scalar_one_or_none()
    if new is None:
        raise Conflict("工单已被他人修改，请刷新后重试 (the order was changed by someone else; reload)",
                       code="stale_version", version=version)
    return int(new)


def milestones(order: WorkOrder) -> dict[str, Any]:
    return {name: getattr(order, name) for name in MILESTONES}


def add_event(session: AsyncSession, order_id: int, *, at: dt.datetime, user_id: int | None,
              action: str, frm: str = "", to: str = "", note: str = "") -> OrderEvent:
    event = new_event(order_id, at=at, user_id=user_id, action=action, frm=frm, to=to, note=note)
    session.add(event)
    return event


def new_event(order_id: int, *, at: dt.datetime, user_id: int | None, action: str, frm: str = "",
              to: str = "", note: str = "") -> OrderEvent:
    """A timeline line, not added (``add_event`` adds it; the creation path inserts it through Core)."""
    return OrderEvent(order_id=order_id, at=at, user_id=user_id, action=action,
                      from_status=frm, to_status=to, note=note)


async def facts_for(session: AsyncSession, order: WorkOrder, *, reason: str = "", note: str = "",
                    engineer_id: int | None = None) -> Facts:
    """What the records say about ``order`` for the state machine's guards."""
    confirmed = (await session.execute(
        select(Appointment.id).where(Appointment.order_id == order.id,
                                     Appointment.status == "confirmed").limit(1))).first()
    rows = (await session.execute(
        select(OnsiteRecord.root_cause, OnsiteRecord.solution, OnsiteRecord.customer_confirmed,
               OnsiteRecord.signed_at).where(OnsiteRecord.order_id == order.id))).all()
    recorded = [r for r in rows if (r.root_cause or "").strip() and (r.solution or "").strip()]
    return Facts(
        reason=reason, note=note, engineer_id=engineer_id,
        appointment_confirmed=confirmed is not None,
        onsite_signed=any(r.customer_confirmed and r.signed_at is not None for r in recorded),
        repair_recorded=bool(recorded),
        survey_recorded=order.surveyed_at is not None,
    )


# Appointments still in play (SA-AP-003 status).
OPEN_APPOINTMENTS = ("proposed", "confirmed")


async def supersede_open(s: AsyncSession, order_id: int, keep: int | None = None) -> None:
    """Every open appointment of the order but ``keep`` becomes ``superseded``; the customer's
    messages still queued for them (confirmation, reminder: ``callcenter.notify``) are cancelled."""
    stmt = update(Appointment).where(Appointment.order_id == order_id, Appointment.status.in_(OPEN_APPOINTMENTS))
    if keep is not None:
        stmt = stmt.where(Appointment.id != keep)
    superseded = (await s.execute(stmt.values(status="superseded").returning(Appointment.id)
                                  .execution_options(synchronize_session=False))).scalars().all()
    await Outbox.cancel(s, appointment_ids=superseded)

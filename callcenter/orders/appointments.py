"""SA-AP-003 服务预约确认单: the engineer (or the desk) proposes a visit window, the customer
confirms, the order is 已预约 with its window and ``planned_at``.

A window is whole hours in the centre's time zone (14:00–16:00), at most :data:`MAX_WINDOW`
long and not over yet. Confirming one supersedes every other open appointment of the order.
Fee notes are generated from the warranty, never typed.

Confirming queues the customer's SMS in the same transaction (``callcenter.notify.visits``): the
SA-AP-003 confirmation at once and the reminder before the visit; superseding the appointment
(rebooking, re-dispatch) cancels what is still queued (``store.supersede_open``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.access import require, sees_order
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.customers.warranty import fee_note, warranty_status
from callcenter.db.models import Appliance, Appointment, WorkOrder
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.notify.visits import queue_visit_messages
from callcenter.orders import states
from callcenter.orders.numbering import next_number
from callcenter.orders.schemas import AppointmentIn
from callcenter.orders.services import OrderService, actor_of
from callcenter.orders.store import (
    add_event, apply, check_version, facts_for, load_order, milestones, supersede_open,
)

MAX_WINDOW = dt.timedelta(hours=4)
# Orders in these states take a (new) appointment.
BOOKABLE = (states.DISPATCHED, states.BOOKED, states.WAITING_PARTS)


def check_window(start: dt.datetime, end: dt.datetime, now: dt.datetime, tz: dt.tzinfo,
                 fields: tuple[str, str]) -> None:
    """422 (naming ``fields``: start, end) unless ``start``–``end`` is whole hours in ``tz``,
    ordered, at most :data:`MAX_WINDOW` long and not over at ``now``."""
    for name, t in zip(fields, (start, end)):
        local = t.astimezone(tz)
        if local.minute or local.second or local.microsecond:
            raise ValidationFailed(name, "须为整点 (on the hour, e.g. 14:00)")
    if end <= start:
        raise ValidationFailed(fields[1], "须晚于开始时间 (must be after the start)")
    if end - start > MAX_WINDOW:
        raise ValidationFailed(fields[1], "时段不超过4小时 (a window is at most 4 hours)")
    if end <= now:
        raise ValidationFailed(fields[1], "时段已过 (the window is over)")


async def generated_fee_note(s: AsyncSession, order: WorkOrder, today: dt.date) -> str:
    expires = None
    if order.appliance_id is not None:
        appliance = await s.get(Appliance, order.appliance_id)
        if appliance is not None:
            expires = warranty_status(appliance.purchase_date, appliance.warranty_months, today).expires
    return fee_note(order.warranty, expires)


class AppointmentService:
    """Creates and confirms appointments (shares the order service's sessions and settings)."""

    def __init__(self, orders: OrderService) -> None:
        self.orders = orders

    async def create(self, order_id: int, body: AppointmentIn, actor: CurrentUser, *,
                     now: dt.datetime | None = None) -> int:
        """A new SA-AP-003 for the order; confirmed at once when ``body.customer_confirmed``.

        409 for an order that cannot be booked (remote, carry-in, closed, no engineer), 422 for
        a bad window, 404 for an order the user may not see."""
        now = now or utcnow()
        tz = self.orders.settings.tz
        check_window(body.window_start, body.window_end, now, tz, ("window_start", "window_end"))
        for i, slot in enumerate(body.proposed_slots):
            check_window(slot.start, slot.end, now, tz,
                         (f"proposed_slots[{i}].start", f"proposed_slots[{i}].end"))
        async with self.orders.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "appointment.write")
            version = check_version(order, body.version)
            if order.service_type not in states.ONSITE_KINDS or order.status not in BOOKABLE:
                raise Conflict(f"{order.service_type}工单在{order.status}状态不能预约 "
                               f"(a {order.service_type} order that is {order.status} takes no appointment)",
                               code="illegal_transition", frm=order.status, to=states.BOOKED)
            if order.engineer_id is None:
                raise Conflict("需先指派工程师 (an engineer must be assigned first)",
                               code="requirement_missing", frm=order.status, requires="engineer")
            appointment = Appointment(
                order_id=order.id, engineer_id=order.engineer_id,
                window_start=body.window_start.astimezone(dt.UTC),
                window_end=body.window_end.astimezone(dt.UTC), source=body.source,
                proposed_slots=[{"start": x.start.astimezone(dt.UTC).isoformat(),
                                 "end": x.end.astimezone(dt.UTC).isoformat()} for x in body.proposed_slots],
                service_content=body.service_content, prepare=body.prepare,
                fee_notes=await generated_fee_note(s, order, now.astimezone(tz).date()),
                status="proposed", created_by=actor.id, created_at=now)
            appointment.number = await next_number(s, "AP", now, tz)
            s.add(appointment)
            await s.flush()
            add_event(s, order.id, at=now, user_id=actor.id, action="appointment",
                      note=f"{appointment.number} {_window_text(appointment, tz)}（{body.source}）")
            audit(s, user_id=actor.id, action="create", entity="appointment", entity_id=appointment.id,
                  now=now, detail={"number": appointment.number, "order_id": order.id})
            if body.customer_confirmed:
                await self._confirm(s, appointment, order, version, actor, now)
            else:
                # The timeline line is a change too: later writers must have read it.
                await apply(s, order, version, {}, now)
        return appointment.id

    async def confirm(self, appointment_id: int, actor: CurrentUser, *, version: int | None = None,
                      now: dt.datetime | None = None) -> int:
        """The customer confirmed: the order becomes 已预约 (or, already booked, moves to this
        window). Returns the order id. 409 for an appointment no longer open or a stale order."""
        now = now or utcnow()
        async with self.orders.sessionmaker() as s, s.begin():
            appointment = await s.get(Appointment, appointment_id)
            order = None if appointment is None else await s.get(WorkOrder, appointment.order_id)
            if appointment is None or order is None or not sees_order(actor, order):
                raise NotFound("预约不存在 (no such appointment)", id=appointment_id)
            require(actor, "appointment.write")
            version = check_version(order, version)
            await self._confirm(s, appointment, order, version, actor, now)
            return order.id

    async def _confirm(self, s: AsyncSession, appointment: Appointment, order: WorkOrder,
                       version: int, actor: CurrentUser, now: dt.datetime) -> None:
        if appointment.status != "proposed":
            raise Conflict(f"预约单状态为{appointment.status}，不能确认 (the appointment is {appointment.status})",
                           code="illegal_transition", appointment_status=appointment.status)
        if appointment.window_end.replace(tzinfo=appointment.window_end.tzinfo or dt.UTC) <= now:
            raise Conflict("预约时段已过 (the window is over)", code="window_over")
        await supersede_open(s, order.id, keep=appointment.id)
        appointment.status, appointment.customer_confirmed, appointment.confirmed_at = "confirmed", True, now
        values: dict[str, object] = {"appointment_start": appointment.window_start,
                                     "appointment_end": appointment.window_end,
                                     "reminded_at": None}
        frm = order.status
        if frm == states.BOOKED:
            to = frm  # a new window for a booked visit: no status change
            if order.planned_at is None:
                values["planned_at"] = now
        else:
            facts = replace(await facts_for(s, order), appointment_confirmed=True)
            decision = states.check_transition(order, states.BOOKED, actor_of(actor), facts, now)
            to = decision.to
            values.update(decision.values(milestones(order)))
        await apply(s, order, version, values, now)
        add_event(s, order.id, at=now, user_id=actor.id,
                  action="rebooked" if frm == to else "transition", frm=frm, to=to,
                  note=f"{appointment.number} 客户确认 {_window_text(appointment, self.orders.settings.tz)}")
        audit(s, user_id=actor.id, action="confirm", entity="appointment", entity_id=appointment.id,
              now=now, detail={"number": appointment.number, "order_id": order.id, "from": frm, "to": to})
        settings = self.orders.settings
        queued = await queue_visit_messages(s, appointment, order, vault=self.orders.vault, tz=settings.tz,
                                            hotline=settings.hotline, now=now)
        if queued is None:
            add_event(s, order.id, at=now, user_id=actor.id, action="note",
                      note=f"{appointment.number} 客户无手机号码，预约确认短信未发送，请电话告知")


def _window_text(a: Appointment, tz: dt.tzinfo) -> str:
    start = a.window_start.replace(tzinfo=a.window_start.tzinfo or dt.UTC).astimezone(tz)
    end = a.window_end.replace(tzinfo=a.window_end.tzinfo or dt.UTC).astimezone(tz)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"


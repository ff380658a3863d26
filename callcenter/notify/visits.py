"""The customer's messages about a booked visit: the SA-AP-003 confirmation and the reminder.

:func:`queue_visit_messages` runs in the transaction that confirms an appointment
(``callcenter.orders.appointments``): the confirmation is due at once, the reminder at
:func:`~callcenter.notify.rules.reminder_due` (none when the visit is less than an hour away).
Both go to the order's contact number — the one taken on the intake (SA-CR-001) if it is a
mobile, else the customer's first mobile on file; with no mobile, nothing is queued (the caller
notes it on the order's timeline).

Rebooking or re-dispatching cancels the queued messages of the superseded appointment
(``callcenter.orders.store.supersede_open``); whatever else changed in between (the order
cancelled, the visit started) is caught when the message is due (:meth:`ReminderHooks.still_wanted`).

**Milestones.** A sent confirmation sets ``appointments.sent_at``; a sent reminder sets the SLA
milestone ``work_orders.reminded_at`` — by a conditional update (still unset, the order still
已预约 for this appointment's window, the visit not started) that does **not** bump the order's
``version``. ``version`` guards what people edit: a dispatcher who read version 7 and changes
the order in the same minute must not get a 409 for a system milestone they could not have
conflicted with. Nothing a person writes touches ``reminded_at`` except a rebooking, which
resets it on purpose (``store.apply`` writes only the columns a decision names, so a concurrent
edit neither clobbers nor is clobbered by it); if a rebooking commits first, the conditional
update matches nothing (the window changed), which is right: the new visit needs its own
reminder. The timeline gets no line for a sent message (that would be a change of the order
behind its version); ``GET /api/notifications?order_id=`` lists them.

Texts carry no phone number but the hotline: the customer's and engineer's names masked, free
text (service content, what to prepare) with any number masked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.crypto import PhoneVault, Sealed
from callcenter.db.models import Appointment, Customer, CustomerPhone, IntakeRecord, User, WorkOrder
from callcenter.notify.gateway import format_hotline, is_sms_number
from callcenter.notify.outbox import Outbox
from callcenter.notify.rules import reminder_due
from callcenter.notify.sender import Claimed, KindHooks
from callcenter.privacy import mask_name, mask_numbers_in_text

CONFIRMATION = "appointment.confirmation"
REMINDER = "appointment.reminder"
# Statuses as in callcenter.orders.states (imported by value: orders imports this module).
BOOKED, CANCELLED = "已预约", "已取消"
SIGNATURE = "【家电售后】"
WEEKDAYS = "一二三四五六日"
# Free text longer than this is cut (an SMS is paid per 67 characters).
FREE_TEXT_MAX = 60


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the two texts say (names already masked)."""

    appointment_number: str
    order_number: str
    customer: str
    window_start: dt.datetime
    window_end: dt.datetime
    service_content: str
    prepare: str
    fee_notes: str
    engineer: str
    staff_no: str
    hotline: str


def window_text(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> str:
    """``11月25日（周三）14:00–16:00`` in ``tz`` (the end's date too if it is another day)."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    day = f"{s.month}月{s.day}日（周{WEEKDAYS[s.weekday()]}）"
    end_day = "" if e.date() == s.date() else f"{e.month}月{e.day}日"
    return f"{day}{s:%H:%M}–{end_day}{e:%H:%M}"


def _free(text: str) -> str:
    text = mask_numbers_in_text(" ".join((text or "").split()))
    return text if len(text) <= FREE_TEXT_MAX else text[:FREE_TEXT_MAX - 1] + "…"


def _engineer(v: VisitFacts) -> str:
    if not v.engineer:
        return ""
    return f"{v.engineer}（工号{v.staff_no}）" if v.staff_no else v.engineer


def confirmation_text(v: VisitFacts, tz: dt.tzinfo) -> str:
    """The SA-AP-003 confirmation: numbers, window, service, engineer, what to prepare, fees,
    the hotline."""
    window = window_text(v.window_start, v.window_end, tz)
    head = (f"{SIGNATURE}{v.customer}您好，您的上门服务已预约成功。"
            f"预约单号{v.appointment_number}（工单{v.order_number}），上门时间{window}")
    parts = [head]
    if v.service_content:
        parts.append(f"，服务内容：{_free(v.service_content)}")
    parts.append("。")
    if v.engineer:
        parts.append(f"服务工程师：{_engineer(v)}。")
    if v.prepare:
        parts.append(f"请您准备：{_free(v.prepare)}。")
    if v.fee_notes:
        parts.append(f"费用说明：{v.fee_notes}。")
    parts.append(f"如需改约请致电{v.hotline}。")
    return "".join(parts)


def reminder_text(v: VisitFacts, tz: dt.tzinfo) -> str:
    """The reminder before the visit."""
    who = f"工程师{_engineer(v)}" if v.engineer else "服务工程师"
    what = f"（{_free(v.service_content)}）" if v.service_content else ""
    window = window_text(v.window_start, v.window_end, tz)
    parts = [f"{SIGNATURE}{v.customer}您好，温馨提醒：{who}将于{window}上门服务{what}，预约单号{v.appointment_number}。"]
    if v.prepare:
        parts.append(f"请您准备：{_free(v.prepare)}。")
    parts.append(f"如需改约请致电{v.hotline}。")
    return "".join(parts)


async def visit_recipient(s: AsyncSession, order: WorkOrder, vault: PhoneVault) -> Sealed | None:
    """The mobile the visit's messages go to (sealed as stored), or None: the intake's contact
    number if it is a mobile, else the customer's first mobile number on file."""
    if order.intake_id is not None:
        intake = await s.get(IntakeRecord, order.intake_id)
        if intake is not None and intake.contact_phone_enc and _opens_to_mobile(vault, intake.contact_phone_enc):
            return Sealed(intake.contact_phone_index, intake.contact_phone_enc, intake.contact_phone_masked)
    phones = (await s.execute(select(CustomerPhone).where(
        CustomerPhone.customer_id == order.customer_id, CustomerPhone.kind == "mobile")
        .order_by(CustomerPhone.id))).scalars().all()
    for p in phones:
        if _opens_to_mobile(vault, p.number_enc):
            return Sealed(p.number_index, p.number_enc, p.masked)
    return None


def _opens_to_mobile(vault: PhoneVault, enc: str) -> bool:
    try:
        return is_sms_number(vault.decrypt(enc))
    except ValueError:
        return False


async def queue_visit_messages(s: AsyncSession, appointment: Appointment, order: WorkOrder, *,
                               vault: PhoneVault, tz: dt.tzinfo, hotline: str,
                               now: dt.datetime) -> tuple[int | None, int | None] | None:
    """Queue the confirmation (due ``now``) and the reminder of the just-confirmed
    ``appointment`` in ``s``'s transaction: (confirmation id, reminder id or None when the visit
    is too close), or None when the customer has no mobile number."""
    recipient = await visit_recipient(s, order, vault)
    if recipient is None:
        return None
    customer = await s.get(Customer, order.customer_id)
    engineer = await s.get(User, appointment.engineer_id) if appointment.engineer_id else None
    start = _aware(appointment.window_start)
    facts = VisitFacts(
        appointment_number=appointment.number, order_number=order.number,
        customer=mask_name(customer.name) if customer is not None and customer.name else "客户",
        window_start=start, window_end=_aware(appointment.window_end),
        service_content=appointment.service_content or order.service_type,
        prepare=appointment.prepare, fee_notes=appointment.fee_notes,
        engineer=mask_name(engineer.display_name or engineer.username) if engineer is not None else "",
        staff_no=(engineer.staff_no or "") if engineer is not None else "",
        hotline=format_hotline(hotline))
    common = {"recipient": recipient, "now": now, "order_id": order.id, "appointment_id": appointment.id}
    confirmation = await Outbox.enqueue(s, kind=CONFIRMATION, text=confirmation_text(facts, tz),
                                        dedupe_key=f"{CONFIRMATION}:{appointment.id}", **common)
    due = reminder_due(start, now)
    reminder = None
    if due is not None:
        reminder = await Outbox.enqueue(s, kind=REMINDER, text=reminder_text(facts, tz), due_at=due,
                                        dedupe_key=f"{REMINDER}:{appointment.id}", **common)
    return confirmation, reminder


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


_ap, _wo = Appointment.__table__, WorkOrder.__table__


class ConfirmationHooks:
    """Sent only while the appointment stands; records ``appointments.sent_at``."""

    async def still_wanted(self, session: AsyncSession, row: Claimed) -> bool:
        found = (await session.execute(
            select(_ap.c.id).join(_wo, _wo.c.id == _ap.c.order_id)
            .where(_ap.c.id == row.appointment_id, _ap.c.status == "confirmed", _wo.c.status != CANCELLED)
        )).first()
        return found is not None

    async def sent(self, session: AsyncSession, row: Claimed, at: dt.datetime) -> None:
        await session.execute(update(_ap).where(_ap.c.id == row.appointment_id, _ap.c.sent_at.is_(None))
                              .values(sent_at=at))


def _reminder_applies(appointment_id: int | None) -> ColumnElement[bool]:
    """The order is booked for this confirmed appointment's window and the visit not started."""
    return and_(_wo.c.status == BOOKED, _wo.c.service_started_at.is_(None),
                exists().where(_ap.c.id == appointment_id, _ap.c.order_id == _wo.c.id,
                               _ap.c.status == "confirmed", _ap.c.window_start == _wo.c.appointment_start))


class ReminderHooks:
    """Sent only while the visit it announces is still the order's booked visit; records the SLA
    milestone ``work_orders.reminded_at`` (see the module docstring: no version bump)."""

    async def still_wanted(self, session: AsyncSession, row: Claimed) -> bool:
        found = (await session.execute(
            select(_wo.c.id).where(_wo.c.id == row.order_id, _reminder_applies(row.appointment_id)))).first()
        return found is not None

    async def sent(self, session: AsyncSession, row: Claimed, at: dt.datetime) -> None:
        await session.execute(
            update(_wo).where(_wo.c.id == row.order_id, _wo.c.reminded_at.is_(None),
                              _reminder_applies(row.appointment_id))
            .values(reminded_at=at).execution_options(synchronize_session=False))


def visit_hooks() -> dict[str, KindHooks]:
    return {CONFIRMATION: ConfirmationHooks(), REMINDER: ReminderHooks()}

"""The read side of the order forms: the intake pre-fill, intake and order detail, the
engineer picker. Everything leaves here masked (``callcenter.privacy``); the unmasked values are
only ever served by the audited reveal.

Times: the database holds UTC; SQLite hands back naive datetimes, which :func:`utc` marks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.access import check_order, require, sees_order
from callcenter.auth.identity import CurrentUser
from callcenter.customers.warranty import warranty_kind, warranty_status
from callcenter.db.models import (
    Address, Appliance, Appointment, Call, Customer, CustomerPhone, IntakeRecord, OnsiteRecord,
    OrderEvent, ProductCategory, User, WorkOrder,
)
from callcenter.errors import NotFound, ValidationFailed
from callcenter.orders import states
from callcenter.orders.schemas import (
    AddressOut, ApplianceOut, AppointmentOut, CallOut, CategoryOut, CustomerOut, EngineerOut, EventOut,
    IntakeOut, OnsiteSummaryOut, OrderDetailOut, OrderOut, PhoneOut, PrefillOut, SlotOut,
    StaffOut, WarrantyOut,
)
from callcenter.orders.states import Facts
from callcenter.orders.store import MILESTONES, facts_for
from callcenter.privacy import mask_address, mask_name, mask_numbers_in_text

MAX_EVENTS = 200


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _text(value: str) -> str:
    return mask_numbers_in_text(value or "")


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(id=c.id, name=mask_name(c.name), level=c.level, remarks=_text(c.remarks))


def staff_out(u: User | None) -> StaffOut | None:
    if u is None:
        return None
    return StaffOut(id=u.id, name=mask_name(u.display_name or u.username), role=u.role,
                    staff_no=u.staff_no, mobile=u.mobile_masked or "")


def address_out(a: Address | None) -> AddressOut | None:
    if a is None:
        return None
    return AddressOut(id=a.id, masked=mask_address(a.province, a.city, a.district))


def appliance_out(a: Appliance, today: dt.date, claim: bool = False) -> ApplianceOut:
    w = warranty_status(a.purchase_date, a.warranty_months, today)
    return ApplianceOut(id=a.id, category=a.category, brand=a.brand, model=a.model, serial=a.serial,
                        purchase_date=a.purchase_date,
                        warranty=WarrantyOut(kind=warranty_kind(w, claim), status=w.status,
                                             expires=w.expires, days_left=w.days_left,
                                             months=a.warranty_months))


def order_out(o: WorkOrder) -> OrderOut:
    return OrderOut(
        id=o.id, number=o.number, status=o.status, service_type=o.service_type, urgency=o.urgency,
        warranty=o.warranty, source=o.source, product_model=o.product_model, serial=o.serial,
        problem=_text(o.problem), call_linkedid=o.call_linkedid, intake_id=o.intake_id,
        customer_id=o.customer_id, appliance_id=o.appliance_id, address_id=o.address_id,
        engineer_id=o.engineer_id, appointment_start=utc(o.appointment_start),
        appointment_end=utc(o.appointment_end), accept_due_at=utc(o.accept_due_at), shop_id=o.shop_id,
        cancel_reason=_text(o.cancel_reason),
        created_at=utc(o.created_at), updated_at=utc(o.updated_at),
        completed_at=utc(o.completed_at), version=o.version,
        milestones={m: utc(getattr(o, m)) for m in MILESTONES})


def intake_out(i: IntakeRecord, customer: Customer, agent: User | None,
               order: tuple[int, str] | None) -> IntakeOut:
    return IntakeOut(
        id=i.id, number=i.number, created_at=utc(i.created_at), channel=i.channel,
        customer=customer_out(customer), contact_phone=i.contact_phone_masked,
        appliance_id=i.appliance_id, category=i.category, product_model=i.product_model,
        serial=i.serial, purchase_date=i.purchase_date, warranty=i.warranty,
        request_type=i.request_type, problem=_text(i.problem), urgency=i.urgency, mood=i.mood,
        agent=staff_out(agent), remarks=_text(i.remarks), read_back=i.read_back,
        call_linkedid=i.call_linkedid, order_id=order[0] if order else None,
        order_number=order[1] if order else None)


def appointment_out(a: Appointment, order: WorkOrder, customer: Customer, engineer: User | None,
                    phone: str, address: Address | None) -> AppointmentOut:
    return AppointmentOut(
        id=a.id, number=a.number, order_id=order.id, order_number=order.number,
        customer=customer_out(customer), phone=phone,
        address=address_out(address).masked if address is not None else "",
        window_start=utc(a.window_start), window_end=utc(a.window_end), source=a.source,
        proposed_slots=[SlotOut(start=p["start"], end=p["end"]) for p in a.proposed_slots or []],
        service_content=_text(a.service_content), prepare=_text(a.prepare), fee_notes=a.fee_notes,
        engineer=staff_out(engineer), status=a.status, customer_confirmed=a.customer_confirmed,
        confirmed_at=utc(a.confirmed_at), sent_at=utc(a.sent_at), created_at=utc(a.created_at))


async def _users(s: AsyncSession, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in (await s.execute(select(User).where(User.id.in_(wanted)))).scalars()}


# --- the intake form --------------------------------------------------------------------------


async def prefill(s: AsyncSession, *, customer_id: int | None, linkedid: str | None,
                  today: dt.date) -> PrefillOut:
    """What the 新建受理 form opens with: the customer (from ``customer_id`` or the call's),
    their numbers (the one the call came from marked), addresses and appliances with warranty."""
    call = None
    if linkedid:
        call = (await s.execute(select(Call).where(Call.linkedid == linkedid))).scalar_one_or_none()
        if call is None and customer_id is None:
            raise NotFound("来电不存在 (no such call)", linkedid=linkedid)
        if customer_id is None and call is not None:
            customer_id = call.customer_id
            if customer_id is None and call.caller_index:
                # Recorded before the number was known to belong to anyone (quick-create).
                customer_id = (await s.execute(select(CustomerPhone.customer_id).where(
                    CustomerPhone.number_index == call.caller_index))).scalar()
    if customer_id is None:
        raise ValidationFailed("customer_id", "来电未识别客户，请先新建或选择客户 (choose or create the customer first)")
    customer = await s.get(Customer, customer_id)
    if customer is None:
        raise NotFound("客户不存在 (no such customer)", id=customer_id)
    phones = (await s.execute(select(CustomerPhone).where(CustomerPhone.customer_id == customer_id)
                              .order_by(CustomerPhone.id))).scalars().all()
    addresses = (await s.execute(select(Address).where(Address.customer_id == customer_id)
                                 .order_by(Address.id))).scalars().all()
    appliances = (await s.execute(select(Appliance).where(Appliance.customer_id == customer_id)
                                  .order_by(Appliance.id).limit(50))).scalars().all()
    caller = call.caller_index if call is not None else ""
    categories = (await s.execute(select(ProductCategory.name, ProductCategory.warranty_months)
                                  .order_by(ProductCategory.name))).all()
    return PrefillOut(
        customer=customer_out(customer),
        phones=[PhoneOut(phone_id=p.id, masked=p.masked, kind=p.kind) for p in phones],
        caller_phone_id=next((p.id for p in phones if caller and p.number_index == caller), None),
        addresses=[a for a in (address_out(x) for x in addresses) if a is not None],
        appliances=[appliance_out(a, today) for a in appliances],
        call=None if call is None else CallOut(linkedid=call.linkedid, queue=call.queue,
                                               started_at=utc(call.started_at), outcome=call.outcome),
        categories=[CategoryOut(name=n, warranty_months=m) for n, m in categories])


async def intake_detail(s: AsyncSession, intake_id: int, user: CurrentUser) -> IntakeOut:
    require(user, "intake.read")
    intake = await s.get(IntakeRecord, intake_id)
    if intake is None:
        raise NotFound("受理记录不存在 (no such intake record)", id=intake_id)
    customer = await s.get(Customer, intake.customer_id)
    assert customer is not None
    agent = await s.get(User, intake.agent_id) if intake.agent_id else None
    order = (await s.execute(select(WorkOrder.id, WorkOrder.number)
                             .where(WorkOrder.intake_id == intake.id).limit(1))).first()
    return intake_out(intake, customer, agent, (order.id, order.number) if order else None)


# --- the order page ---------------------------------------------------------------------------


async def order_detail(s: AsyncSession, order_id: int, user: CurrentUser, *, now: dt.datetime,
                       today: dt.date, just_changed: bool = False) -> OrderDetailOut:
    """Everything the order page shows; 404 when absent or not the engineer's own.

    ``just_changed``: the answer to the user's own successful change, shown even if that change
    took the order out of their sight (an engineer refusing it)."""
    order = await s.get(WorkOrder, order_id, populate_existing=True)
    if not (just_changed and order is not None):
        check_order(user, "order.read", order, order_id)
    assert order is not None
    customer = await s.get(Customer, order.customer_id)
    assert customer is not None
    address = await s.get(Address, order.address_id) if order.address_id else None
    appliance = await s.get(Appliance, order.appliance_id) if order.appliance_id else None
    intake = await s.get(IntakeRecord, order.intake_id) if order.intake_id else None
    appointments = (await s.execute(select(Appointment).where(Appointment.order_id == order.id)
                                    .order_by(Appointment.id))).scalars().all()
    onsite = (await s.execute(select(OnsiteRecord).where(OnsiteRecord.order_id == order.id)
                              .order_by(OnsiteRecord.id))).scalars().all()
    events = (await s.execute(select(OrderEvent).where(OrderEvent.order_id == order.id)
                              .order_by(OrderEvent.at, OrderEvent.id).limit(MAX_EVENTS))).scalars().all()
    users = await _users(s, {order.engineer_id, intake.agent_id if intake else None}
                         | {e.user_id for e in events} | {a.engineer_id for a in appointments})
    return detail_out(OrderRecords(order, customer, address, appliance, intake, appointments, onsite,
                                   events, users, await facts_for(s, order)), user, now, today)


@dataclass(frozen=True, slots=True)
class OrderRecords:
    """What the order page shows, as loaded (or as just written: a new order)."""

    order: WorkOrder
    customer: Customer
    address: Address | None
    appliance: Appliance | None
    intake: IntakeRecord | None
    appointments: Sequence[Appointment]
    onsite: Sequence[OnsiteRecord]
    events: Sequence[OrderEvent]
    users: dict[int, User]
    facts: Facts


def detail_out(r: OrderRecords, user: CurrentUser, now: dt.datetime, today: dt.date) -> OrderDetailOut:
    """The order page's answer from its records (no I/O)."""
    order, customer, address, appliance, intake, users = (r.order, r.customer, r.address, r.appliance,
                                                          r.intake, r.users)
    appointments, onsite, events = r.appointments, r.onsite, r.events
    phone = intake.contact_phone_masked if intake else ""
    allowed = states.allowed_transitions(order, states.Actor(user.id, user.role), r.facts, now)
    return OrderDetailOut(
        order=order_out(order), customer=customer_out(customer), address=address_out(address),
        appliance=appliance_out(appliance, today, order.warranty == "理赔机") if appliance else None,
        engineer=staff_out(users.get(order.engineer_id) if order.engineer_id else None),
        intake=intake_out(intake, customer, users.get(intake.agent_id) if intake.agent_id else None,
                          (order.id, order.number)) if intake else None,
        appointments=[appointment_out(a, order, customer, users.get(a.engineer_id) if a.engineer_id else None,
                                      phone, address) for a in appointments],
        onsite=[OnsiteSummaryOut(id=r.id, number=r.number, engineer_id=r.engineer_id,
                                 started_at=utc(r.started_at), ended_at=utc(r.ended_at),
                                 root_cause=_text(r.root_cause), solution=_text(r.solution),
                                 total_fen=r.total_fen, customer_confirmed=r.customer_confirmed,
                                 signed_at=utc(r.signed_at)) for r in onsite],
        events=[EventOut(id=e.id, at=utc(e.at), action=e.action, from_status=e.from_status,
                         to_status=e.to_status, note=_text(e.note),
                         user=staff_out(users.get(e.user_id) if e.user_id else None)) for e in events],
        allowed=allowed, sla=sla_clocks(order, now))


def sla_clocks(order: WorkOrder, now: dt.datetime) -> list[dict[str, Any]] | None:
    """The SLA clocks of the order (``callcenter.sla.rules``), None if that module is absent."""
    try:
        from callcenter.sla import rules
    except ImportError:  # pragma: no cover - the SLA slice ships it
        return None
    return [{"clock": c.name, "label": c.label, "state": c.state, "start": c.start,
             "deadline": c.deadline, "warn_at": c.warn_at, "met_at": c.met_at,
             "ended_at": c.ended_at} for c in rules.clocks(rules.snapshot_of(order), now)]


async def appointment_detail(s: AsyncSession, appointment_id: int, user: CurrentUser) -> AppointmentOut:
    appointment = await s.get(Appointment, appointment_id, populate_existing=True)
    order = None if appointment is None else await s.get(WorkOrder, appointment.order_id,
                                                         populate_existing=True)
    if appointment is None or order is None or not sees_order(user, order):
        raise NotFound("预约不存在 (no such appointment)", id=appointment_id)
    customer = await s.get(Customer, order.customer_id)
    assert customer is not None
    intake = await s.get(IntakeRecord, order.intake_id) if order.intake_id else None
    address = await s.get(Address, order.address_id) if order.address_id else None
    engineer = await s.get(User, appointment.engineer_id) if appointment.engineer_id else None
    return appointment_out(appointment, order, customer, engineer,
                           intake.contact_phone_masked if intake else "", address)


async def engineers(s: AsyncSession) -> list[EngineerOut]:
    """Active engineers for the dispatcher's picker, with their unfinished-order load (the
    process takes a new order only while an engineer has ≤ 3)."""
    rows = (await s.execute(select(User).where(User.role == "engineer", User.active.is_(True))
                            .order_by(User.staff_no, User.id))).scalars().all()
    counts: dict[int, int] = {r[0]: r[1] for r in (await s.execute(
        select(WorkOrder.engineer_id, func.count())
        .where(WorkOrder.engineer_id.in_([u.id for u in rows]),
               WorkOrder.status.not_in(states.CLOSED_STATUSES))
        .group_by(WorkOrder.engineer_id)))} if rows else {}
    return [EngineerOut(id=u.id, name=mask_name(u.display_name or u.username), staff_no=u.staff_no,
                        open_orders=counts.get(u.id, 0)) for u in rows]

"""The customer's messages about a booked visit, on SQLite and PostgreSQL, with an injected clock:
confirming an appointment queues the SA-AP-003 confirmation and the reminder; the sender sends
them and sets ``appointments.sent_at`` and the SLA milestone ``reminded_at`` (without bumping the
order's version), so the SLA reminder alert never fires; rebooking, re-dispatching, cancelling or
starting the visit cancels a pending reminder; no number reaches a log."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from callcenter.db.models import Appointment, OrderEvent, WorkOrder
from callcenter.db.notify import Notification
from callcenter.db.oversight import SlaAlert
from callcenter.notify.rules import REMINDER_HEADROOM
from callcenter.notify.sender import OutboxSender
from callcenter.notify.visits import CONFIRMATION, REMINDER
from callcenter.orders.appointments import AppointmentService
from callcenter.sla.scheduler import SlaScheduler
from tests.apphelpers import fixed_vault, keyed_settings
from tests.notifyworld import (
    CUSTOMER_LANDLINE, CUSTOMER_MOBILE, SECRETS, T0, FlakyGateway, World, seed_world,
)
from tests.privacy_scan import LogScan, find_mobiles

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
# The visit: the next day 14:00–16:00 in Shanghai (06:00 UTC), booked at T0.
VISIT = dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC)
REMINDER_DUE = VISIT - H - REMINDER_HEADROOM


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC)


@pytest.fixture
async def world(sessionmaker) -> World:  # type: ignore[no-untyped-def]
    return await seed_world(sessionmaker, keyed_settings(), fixed_vault())


def _sender(world: World, gateway=None) -> tuple[OutboxSender, FlakyGateway]:  # type: ignore[no-untyped-def]
    gateway = gateway or FlakyGateway()
    return OutboxSender(world.sessionmaker, world.vault, gateway), gateway


async def _messages(world: World) -> list[Notification]:
    async with world.sessionmaker() as s:
        return list((await s.execute(select(Notification).order_by(Notification.id))).scalars())


async def _order(world: World) -> WorkOrder:
    async with world.sessionmaker() as s:
        order = await s.get(WorkOrder, world.order_id)
    assert order is not None
    return order


async def _reminder_alerts(engine) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return [(r.clock, r.level) for r in (await conn.execute(
            select(SlaAlert.clock, SlaAlert.level).where(SlaAlert.clock == "reminder"))).all()]


async def test_confirmation_and_reminder_are_sent_and_recorded(world: World, engine) -> None:
    sender, gateway = _sender(world)
    sla = SlaScheduler(engine, None)
    with LogScan(secrets=SECRETS) as logs:
        appointment_id = await world.book(VISIT, now=T0)
        confirmation, reminder = await _messages(world)
        assert (confirmation.kind, confirmation.status, _utc(confirmation.due_at)) == (CONFIRMATION, "queued", T0)
        assert (reminder.kind, reminder.status, _utc(reminder.due_at)) == (REMINDER, "queued", REMINDER_DUE)
        for m in (confirmation, reminder):
            assert (m.order_id, m.appointment_id, m.recipient_masked) == (world.order_id, appointment_id, "138****8000")
            assert find_mobiles(m.text) == [] and not any(s in m.text for s in SECRETS)
            assert "张**您好" in m.text and "400-800-1234" in m.text and "赵**（工号GY2024001）" in m.text
        async with world.sessionmaker() as s:
            ap = await s.get(Appointment, appointment_id)
        assert ap is not None and ap.number in confirmation.text
        assert "11月25日（周三）14:00–16:00" in confirmation.text and "保修期内" in confirmation.text
        assert "保持空调通电" in confirmation.text and "检修空调不制冷" in confirmation.text

        # The confirmation goes out at once; the appointment records when.
        assert (await sender.run_pass(T0 + 5 * dt.timedelta(seconds=1))).sent == [confirmation.id]
        assert gateway.calls[0][0] == CUSTOMER_MOBILE
        async with world.sessionmaker() as s:
            ap = await s.get(Appointment, appointment_id)
        assert ap is not None and _utc(ap.sent_at) == T0 + 5 * dt.timedelta(seconds=1)
        order = await _order(world)
        version = order.version
        assert (order.status, order.reminded_at) == ("已预约", None)

        # Nothing until the reminder is due; the SLA clock is quiet so far.
        assert (await sender.run_pass(REMINDER_DUE - dt.timedelta(seconds=1))).sent == []
        await sla.run_pass(REMINDER_DUE - dt.timedelta(seconds=1))
        assert await _reminder_alerts(engine) == []
        result = await sender.run_pass(REMINDER_DUE)
        assert result.sent == [reminder.id]
        assert "温馨提醒" in gateway.calls[1][1]
        order = await _order(world)
        assert _utc(order.reminded_at) == REMINDER_DUE
        assert order.version == version, "a system milestone must not bump the version"
        # The SLA reminder clock is met: no alert at its warning time, deadline, or later.
        for at in (VISIT - H - 12 * M, VISIT - H, VISIT - 10 * M):
            await sla.run_pass(at)
        assert await _reminder_alerts(engine) == []
    assert logs.lines and all(CUSTOMER_MOBILE not in line for line in logs.lines)


async def test_without_the_reminder_the_sla_clock_warns(world: World, engine) -> None:
    """The control for the test above: the alert would fire if nobody reminded."""
    await world.book(VISIT, now=T0)
    await SlaScheduler(engine, None).run_pass(VISIT - H - 12 * M)
    assert await _reminder_alerts(engine) == [("reminder", "warning")]


async def test_a_user_edit_read_before_the_reminder_still_goes_through(world: World) -> None:
    """reminded_at is set without bumping the version: the engineer who read the order before
    the reminder went out starts the visit with that version, no 409."""
    await world.book(VISIT, now=T0)
    version = (await _order(world)).version
    sender, _ = _sender(world)
    assert len((await sender.run_pass(REMINDER_DUE)).sent) == 2
    await world.orders.transition(world.order_id, "服务中", world.engineer, version=version,
                                  now=VISIT - 5 * M)
    order = await _order(world)
    assert (order.status, _utc(order.reminded_at)) == ("服务中", REMINDER_DUE)


async def test_rebooking_cancels_the_old_reminder(world: World) -> None:
    sender, gateway = _sender(world)
    first = await world.book(VISIT, now=T0)
    assert len((await sender.run_pass(T0)).sent) == 1  # the first confirmation
    later = VISIT + 24 * H
    second = await world.book(later, now=T0 + H)
    by_appointment = {(m.appointment_id, m.kind): m for m in await _messages(world)}
    assert by_appointment[(first, CONFIRMATION)].status == "sent"
    assert by_appointment[(first, REMINDER)].status == "cancelled"
    assert by_appointment[(second, CONFIRMATION)].status == "queued"
    assert _utc(by_appointment[(second, REMINDER)].due_at) == later - H - REMINDER_HEADROOM
    # At the first visit's reminder time nothing goes out; the second one's goes at its own.
    assert (await sender.run_pass(REMINDER_DUE)).sent == [by_appointment[(second, CONFIRMATION)].id]
    assert (await _order(world)).reminded_at is None
    assert (await sender.run_pass(later - H - REMINDER_HEADROOM)).sent == [by_appointment[(second, REMINDER)].id]
    assert _utc((await _order(world)).reminded_at) == later - H - REMINDER_HEADROOM
    assert len(gateway.calls) == 3


async def test_a_rebooking_before_the_confirmation_went_out_cancels_it_too(world: World) -> None:
    first = await world.book(VISIT, now=T0)
    await world.book(VISIT + 2 * H, now=T0 + M)
    statuses = {(m.appointment_id, m.kind): m.status for m in await _messages(world)}
    assert statuses[(first, CONFIRMATION)] == statuses[(first, REMINDER)] == "cancelled"
    sender, gateway = _sender(world)
    assert len((await sender.run_pass(T0 + 2 * M)).sent) == 1
    assert "16:00–18:00" in gateway.calls[0][1]


async def test_redispatch_cancels_the_pending_reminder(world: World) -> None:
    """Re-dispatch (OrderService / the dispatch engine's manual and automatic paths) drops the
    booked visit through ``store.supersede_open``, in its own transaction."""
    from callcenter.orders.store import supersede_open

    await world.book(VISIT, now=T0)
    sender, _ = _sender(world)
    await sender.run_pass(T0)
    async with world.sessionmaker.begin() as s:
        await supersede_open(s, world.order_id)
    statuses = {m.kind: m.status for m in await _messages(world)}
    assert statuses == {CONFIRMATION: "sent", REMINDER: "cancelled"}
    assert (await sender.run_pass(REMINDER_DUE)).sent == []


@pytest.mark.parametrize("change", ["cancel", "start"])
async def test_a_reminder_for_a_cancelled_order_or_started_visit_is_dropped_when_due(world: World, change: str) -> None:
    await world.book(VISIT, now=T0)
    sender, gateway = _sender(world)
    await sender.run_pass(T0)
    version = (await _order(world)).version
    if change == "cancel":
        await world.orders.transition(world.order_id, "已取消", world.dispatcher, version=version,
                                      reason="客户取消", now=T0 + H)
        # Cancelled with the order, at once (not left queued until due).
        assert {m.kind: m.status for m in await _messages(world)}[REMINDER] == "cancelled"
    else:  # the engineer came early
        await world.orders.transition(world.order_id, "服务中", world.engineer, version=version, now=T0 + H)
    result = await sender.run_pass(REMINDER_DUE)
    assert result.sent == [] and len(result.cancelled) == (0 if change == "cancel" else 1)
    assert len(gateway.calls) == 1
    assert (await _order(world)).reminded_at is None


@pytest.mark.parametrize(("booked", "reminder"), [
    (VISIT - H - 10 * M, VISIT - H - 10 * M),  # inside the last 15 min before the 1 h mark: at once
    (VISIT - 50 * M, None),                     # under an hour ahead: no reminder
])
async def test_short_notice_bookings(world: World, booked: dt.datetime, reminder: dt.datetime | None) -> None:
    await world.book(VISIT, now=booked)
    kinds = {m.kind: _utc(m.due_at) for m in await _messages(world)}
    assert kinds.get(REMINDER) == reminder
    assert kinds[CONFIRMATION] == booked


async def test_a_landline_contact_falls_back_to_the_customers_mobile(sessionmaker) -> None:
    world = await seed_world(sessionmaker, keyed_settings(), fixed_vault(), contact=CUSTOMER_LANDLINE)
    await world.book(VISIT, now=T0)
    messages = await _messages(world)
    assert {m.recipient_masked for m in messages} == {"138****8000"}
    sender, gateway = _sender(world)
    await sender.run_pass(T0)
    assert gateway.calls[0][0] == CUSTOMER_MOBILE


async def test_no_mobile_no_message_and_the_timeline_says_so(sessionmaker) -> None:
    world = await seed_world(sessionmaker, keyed_settings(), fixed_vault(), contact=CUSTOMER_LANDLINE,
                             customer_mobile=False)
    await world.book(VISIT, now=T0)
    assert await _messages(world) == []
    async with sessionmaker() as s:
        notes = (await s.execute(select(OrderEvent.note).where(OrderEvent.order_id == world.order_id,
                                                               OrderEvent.action == "note"))).scalars().all()
    assert any("未发送" in n for n in notes)
    assert (await _order(world)).status == "已预约"  # the booking itself stands


async def test_a_proposal_sends_nothing_until_confirmed(world: World) -> None:
    from callcenter.orders.schemas import AppointmentIn

    body = AppointmentIn(window_start=VISIT, window_end=VISIT + 2 * H, service_content="检修",
                         customer_confirmed=False)
    appointment_id = await world.appointments.create(world.order_id, body, world.engineer, now=T0)
    assert await _messages(world) == []
    await AppointmentService(world.orders).confirm(appointment_id, world.engineer, now=T0 + M)
    assert {m.kind for m in await _messages(world)} == {CONFIRMATION, REMINDER}

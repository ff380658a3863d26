"""The last step of creating an intake and its work order (``callcenter/orders/creation.py``):
one statement on PostgreSQL, one insert at a time on SQLite — the same rows either way, linked
by their ids, the call given to the customer, and nothing at all when any part fails."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Call, IntakeRecord, NumberCounter, OrderEvent, WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.orders import creation
from callcenter.orders.schemas import IntakeIn
from callcenter.orders.services import OrderService
from tests.test_orders_http import SETTINGS_, build_world, intake_body


def _agent(w) -> CurrentUser:  # type: ignore[no-untyped-def]
    return CurrentUser(id=w.users["agent"], username="agent", role="agent", display_name="agent", extension=None)


async def test_the_rows_link_up_and_the_call_is_the_customers(engine, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    w = await build_world(sessionmaker)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0])

    # An agent's text that looks like a placeholder is stored as typed.
    body = IntakeIn.model_validate(intake_body(w, problem="不制冷 @@CR@@ @@WO@@", create_order={"address_id": w.address}))
    try:
        created = await OrderService(sessionmaker, SETTINGS_).create_intake_records(body, _agent(w))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    if engine.dialect.name == "postgresql":
        # The prefetch, then the numbers and everything else: two statements (and, with no
        # transaction needed, no BEGIN and COMMIT).
        assert statements == ["SELECT", "WITH"]
    async with sessionmaker() as s:
        intake = await s.get(IntakeRecord, created.intake.id)
        order = await s.get(WorkOrder, created.order.id)
        [line] = (await s.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id))).all()
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.entity.in_(("intake", "work_order")))
                                   .order_by(AuditEntry.id))).all()
        call = await s.scalar(select(Call).where(Call.linkedid == w.linkedid))
    assert (intake.number, order.number) == (created.intake.number, created.order.number)
    assert order.intake_id == intake.id == created.order.intake_id
    assert intake.problem == order.problem == created.order.problem == "不制冷 @@CR@@ @@WO@@"
    assert (line.action, line.to_status, line.note) == ("created", "待处理", f"由受理记录 {intake.number} 创建")
    assert [(e.entity, e.entity_id, e.detail) for e in entries] == [
        ("intake", str(intake.id), {"number": intake.number, "customer_id": w.customer, "linkedid": w.linkedid}),
        ("work_order", str(order.id), {"number": order.number, "intake": intake.number,
                                       "service_type": order.service_type, "status": "待处理"})]
    assert call.customer_id == w.customer


@pytest.mark.parametrize("failing", ["intake_records", "order_events"])
async def test_a_failing_part_writes_nothing(engine, sessionmaker, monkeypatch, failing: str) -> None:  # type: ignore[no-untyped-def]
    """A NOT NULL broken in the intake or in the timeline line: no intake, order, line, audit
    entry, linked call, and the numbers are given back."""
    w = await build_world(sessionmaker)
    own = creation._own

    def broken(obj, **kw):  # type: ignore[no-untyped-def]
        values = own(obj, **kw)
        if obj.__table__.name == failing:
            values["created_at" if failing == "intake_records" else "at"] = None
        return values

    monkeypatch.setattr(creation, "_own", broken)
    if engine.dialect.name == "sqlite":  # one insert at a time: break the object itself
        monkeypatch.setattr(creation, "insert_row", _breaking_insert(creation.insert_row, failing))
    service = OrderService(sessionmaker, SETTINGS_)
    body = IntakeIn.model_validate(intake_body(w, create_order={"address_id": w.address}))
    with pytest.raises(Exception, match="(?i)null"):
        await service.create_intake_records(body, _agent(w))
    async with sessionmaker() as s:
        for model in (IntakeRecord, WorkOrder, OrderEvent, AuditEntry, NumberCounter):
            assert await s.scalar(select(func.count()).select_from(model)) == 0, model
        assert (await s.scalar(select(Call.customer_id).where(Call.linkedid == w.linkedid))) is None
    monkeypatch.undo()
    created = await service.create_intake_records(body, _agent(w))
    assert created.intake.number.endswith("-001") and created.order.number.endswith("-001")


def _breaking_insert(insert_row, table: str):  # type: ignore[no-untyped-def]
    async def breaking(s, obj):  # type: ignore[no-untyped-def]
        if obj.__table__.name == table:
            setattr(obj, "created_at" if table == "intake_records" else "at", None)
        await insert_row(s, obj)
    return breaking


async def test_an_order_from_a_stored_intake(engine, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """POST /api/orders' path: the order, its line and its audit entry in one statement on
    PostgreSQL; the intake's second order is refused (409) and leaves nothing."""
    from callcenter.errors import Conflict
    from callcenter.orders.schemas import OrderIn

    w = await build_world(sessionmaker)
    service = OrderService(sessionmaker, SETTINGS_)
    made = await service.create_intake_records(IntakeIn.model_validate(intake_body(w)), _agent(w))
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0])

    try:
        records = await service.create_order_records(OrderIn(intake_id=made.intake.id), _agent(w))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    if engine.dialect.name == "postgresql":
        # prefetch (and lock), has it an order yet, the number and the rest
        assert statements == ["SELECT", "SELECT", "WITH"]
    order, [line] = records.order, records.events
    async with sessionmaker() as s:
        stored = await s.get(WorkOrder, order.id)
        assert (stored.intake_id, stored.number, stored.address_id) == (made.intake.id, order.number, w.address)
        assert (await s.get(OrderEvent, line.id)).order_id == order.id
        entry = await s.scalar(select(AuditEntry).where(AuditEntry.entity == "work_order"))
        assert (entry.entity_id, entry.detail["intake"]) == (str(order.id), made.intake.number)
    with pytest.raises(Conflict) as e:
        await service.create_order_records(OrderIn(intake_id=made.intake.id), _agent(w))
    assert e.value.code == "order_exists"
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(WorkOrder)) == 1


async def test_agents_racing_for_one_intake_make_one_order(pg_url) -> None:  # type: ignore[no-untyped-def]
    """A double click, or several agents at once, on PostgreSQL: the intake's lock makes the
    others wait and then refuses them; one order. (Without the lock this fails.)"""
    import asyncio

    from callcenter.db.engine import make_engine, make_sessionmaker, migrate
    from callcenter.errors import Conflict
    from callcenter.orders.schemas import OrderIn

    engine = make_engine(pg_url)
    await migrate(engine)
    try:
        sm = make_sessionmaker(engine)
        w = await build_world(sm)
        service = OrderService(sm, SETTINGS_)
        made = await service.create_intake_records(IntakeIn.model_validate(intake_body(w)), _agent(w))
        for _ in range(5):
            results = await asyncio.gather(*(service.create_order_records(OrderIn(intake_id=made.intake.id), _agent(w))
                                             for _ in range(8)), return_exceptions=True)
            assert sum(isinstance(r, Conflict) for r in results) >= 7, results
        async with sm() as s:
            assert await s.scalar(select(func.count()).select_from(WorkOrder)) == 1
    finally:
        await engine.dispose()


async def test_numbers_widen_past_999_as_numbering_formats_them(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """The statement formats the serial in SQL: it must agree with ``numbering.format_number``."""
    import datetime as dt

    from callcenter.orders.numbering import format_number, local_day

    w = await build_world(sessionmaker)
    now = dt.datetime.now(dt.UTC)
    day = local_day(now, SETTINGS_.tz)
    async with sessionmaker.begin() as s:
        s.add_all([NumberCounter(prefix="CR", day=day, last=998), NumberCounter(prefix="WO", day=day, last=999)])
    body = IntakeIn.model_validate(intake_body(w, create_order={"address_id": w.address}))
    created = await OrderService(sessionmaker, SETTINGS_).create_intake_records(body, _agent(w), now=now)
    assert (created.intake.number, created.order.number) == (format_number("CR", day, 999), format_number("WO", day, 1000))
    assert created.order.number.endswith("-1000")
    async with sessionmaker() as s:
        line = await s.scalar(select(OrderEvent.note).where(OrderEvent.order_id == created.order.id))
        entry = await s.scalar(select(AuditEntry.detail).where(AuditEntry.entity == "work_order"))
    assert line == f"由受理记录 {created.intake.number} 创建"
    assert (entry["number"], entry["intake"]) == (created.order.number, created.intake.number)

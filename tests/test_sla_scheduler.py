"""The SLA scheduler against real SQLite and PostgreSQL, and its pushes through the app."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from callcenter.appkeys import AUTH, ENGINE, MAILBOX, SLA
from callcenter.db.models import Customer, User, WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.sla.scheduler import RedisPassGate, SlaScheduler
from tests import apphelpers as h
from tests.waiting import wait_for

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)


class Posts:
    """A mailbox that records what was posted to whom."""

    def __init__(self) -> None:
        self.posted: list[tuple[int, dict[str, Any]]] = []

    async def post(self, user_id: int, message: dict[str, Any]) -> dict[str, Any]:
        self.posted.append((user_id, message))
        return message

    def to(self, user_id: int) -> list[dict[str, Any]]:
        return [m for u, m in self.posted if u == user_id]


async def add_customer(conn) -> int:  # type: ignore[no-untyped-def]
    return (await conn.execute(insert(Customer).values(name="测试客户", created_at=T0)
                               .returning(Customer.id))).scalar_one()


_serial = iter(range(1, 1_000_000))


async def add_order(engine, **kw) -> int:  # type: ignore[no-untyped-def]
    """An urgent on-site order created at T0 and dispatched at once: only its plan clock runs
    (30 min: warning at T0 + 24 min, breach at T0 + 30 min)."""
    async with engine.begin() as c:
        customer = await add_customer(c)
        values = {"number": f"WO20261123-{next(_serial):03d}", "customer_id": customer, "status": "已派单",
                  "urgency": "紧急", "service_type": "上门维修", "created_at": T0, "dispatched_at": T0 + M} | kw
        return (await c.execute(insert(WorkOrder).values(**values).returning(WorkOrder.id))).scalar_one()


async def set_order(engine, order_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as c:
        await c.execute(update(WorkOrder).where(WorkOrder.id == order_id).values(**values))


async def add_staff(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ids = {}
    async with engine.begin() as c:
        for name, role, active in (("sup", "supervisor", True), ("disp", "dispatcher", True),
                                   ("agent", "agent", True), ("gone", "supervisor", False),
                                   ("eng", "engineer", True)):
            ids[name] = (await c.execute(insert(User).values(
                username=name, password_hash="x", role=role, active=active, created_at=T0)
                .returning(User.id))).scalar_one()
    return ids


async def alerts(engine) -> list[tuple]:  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        return [tuple(r) for r in (await c.execute(
            select(SlaAlert.order_id, SlaAlert.clock, SlaAlert.level, SlaAlert.cleared_at.is_not(None))
            .order_by(SlaAlert.id))).all()]


async def test_warning_once_breach_then_cleared(engine):
    staff = await add_staff(engine)
    order = await add_order(engine)
    posts = Posts()
    s = SlaScheduler(engine, posts)

    assert (await s.run_pass(T0 + 24 * M - dt.timedelta(seconds=1))).raised == []
    first = await s.run_pass(T0 + 24 * M)  # exactly 80 % of 30 min
    assert [(a["order_id"], a["clock"], a["level"]) for a in first.raised] == [(order, "plan", "warning")]
    assert first.raised[0]["deadline"] == "2026-11-23T02:30:00+00:00"
    assert first.raised[0]["order_number"].startswith("WO20261123-")
    assert (await s.run_pass(T0 + 25 * M)).raised == []

    restarted = SlaScheduler(engine, posts)
    assert (await restarted.run_pass(T0 + 26 * M)).raised == []
    assert await alerts(engine) == [(order, "plan", "warning", False)]

    breach = await restarted.run_pass(T0 + 30 * M)
    assert [(a["clock"], a["level"]) for a in breach.raised] == [("plan", "breach")]
    assert await alerts(engine) == [(order, "plan", "warning", False), (order, "plan", "breach", False)]

    await set_order(engine, order, planned_at=T0 + 40 * M, status="已预约")
    gone = await restarted.run_pass(T0 + 41 * M)
    assert gone.raised == [] and sorted(a["level"] for a in gone.cleared) == ["breach", "warning"]
    assert await alerts(engine) == [(order, "plan", "warning", True), (order, "plan", "breach", True)]
    assert (await s.run_pass(T0 + 42 * M)).cleared == []

    # Pushed to active supervisors and dispatchers only, once each.
    for who in ("sup", "disp"):
        assert [(m["type"], m["alert"]["level"]) for m in posts.to(staff[who])] == [
            ("sla.alert", "warning"), ("sla.alert", "breach"), ("sla.cleared", "warning"),
            ("sla.cleared", "breach")]
    assert posts.to(staff["agent"]) == posts.to(staff["gone"]) == posts.to(staff["eng"]) == []


async def test_a_pass_in_the_child_process_does_what_the_pass_in_process_does(db_url, engine):
    """A large centre's passes run in a child process (off the pops' event loop): same alerts,
    same messages, to the same people; a pass stays in process until it would read more than
    ``process_above`` orders."""
    from callcenter.sla.scheduler import PassProcess

    staff = await add_staff(engine)
    first_order = await add_order(engine)
    posts = Posts()
    process = PassProcess(db_url, nice=0)
    try:
        small = SlaScheduler(engine, posts, process=process, process_above=1)
        assert [a["order_id"] for a in (await small.run_pass(T0 + 24 * M)).raised] == [first_order]
        assert not small.in_child and process._pool is None  # one order: no child started
        second = await add_order(engine, created_at=T0 + M)
        s = SlaScheduler(engine, posts, process=process, process_above=1)
        raised = (await s.run_pass(T0 + 31 * M)).raised
        assert s.in_child and process._pool is not None
        assert [(a["order_id"], a["level"]) for a in raised] == [
            (first_order, "breach"), (second, "warning"), (second, "breach")]
        await set_order(engine, first_order, planned_at=T0 + 40 * M, status="已预约")
        gone = await s.run_pass(T0 + 41 * M)
        assert sorted(a["level"] for a in gone.cleared) == ["breach", "warning"] and gone.orders >= 1
        assert await alerts(engine) == [(first_order, "plan", "warning", True), (first_order, "plan", "breach", True),
                                        (second, "plan", "warning", False), (second, "plan", "breach", False)]
        assert [(m["type"], m["alert"]["order_id"], m["alert"]["level"]) for m in posts.to(staff["sup"])] == [
            ("sla.alert", first_order, "warning"), ("sla.alert", first_order, "breach"),
            ("sla.alert", second, "warning"), ("sla.alert", second, "breach"),
            ("sla.cleared", first_order, "warning"), ("sla.cleared", first_order, "breach")]
        assert posts.to(staff["sup"]) == posts.to(staff["disp"]) and posts.to(staff["agent"]) == []
    finally:
        process.close()


async def test_a_pass_read_in_ranges_of_ids_decides_as_one_read_at_once(engine, monkeypatch):
    """Passes read and decide a range of order ids at a time (memory bounded by the range, not
    the backlog): with ranges of 2 ids, every order is decided, and an open alert whose order
    left the watch is cleared whichever range it is in."""
    import callcenter.sla.scheduler as scheduler

    monkeypatch.setattr(scheduler, "_ID_RANGE", 2)
    monkeypatch.setattr(scheduler, "_RANGED_ABOVE", 0)
    orders = [await add_order(engine, created_at=T0 + i * M) for i in range(7)]
    s = SlaScheduler(engine, None)
    first = await s.run_pass(T0 + 31 * M)  # order i: deadline T0 + (30 + i) min
    assert first.orders == 7
    assert sorted((a["order_id"], a["level"]) for a in first.raised) == sorted(
        [(o, "warning") for o in orders] + [(orders[0], "breach"), (orders[1], "breach")])
    for o in (orders[1], orders[4], orders[6]):
        await set_order(engine, o, planned_at=T0 + 32 * M, status="已预约")
    second = await s.run_pass(T0 + 33 * M)
    assert sorted((a["order_id"], a["level"]) for a in second.raised) == [
        (orders[2], "breach"), (orders[3], "breach")]
    assert sorted((a["order_id"], a["level"]) for a in second.cleared) == sorted(
        [(orders[1], "warning"), (orders[1], "breach"), (orders[4], "warning"), (orders[6], "warning")])
    assert (await s.run_pass(T0 + 33 * M)).raised == [] and len(await alerts(engine)) == 11


async def test_order_moving_on_clears_each_clock_and_cancelling_clears_all(engine):
    order = await add_order(engine, dispatched_at=None, urgency="普通")  # plan 2 h, dispatch 5 min
    s = SlaScheduler(engine, None)
    raised = (await s.run_pass(T0 + 6 * M)).raised
    assert {(a["clock"], a["level"]) for a in raised} == {("dispatch", "warning"), ("dispatch", "breach")}
    await set_order(engine, order, dispatched_at=T0 + 7 * M)
    assert {a["clock"] for a in (await s.run_pass(T0 + 8 * M)).cleared} == {"dispatch"}
    assert {(a["clock"], a["level"]) for a in (await s.run_pass(T0 + 100 * M)).raised} == {("plan", "warning")}
    await set_order(engine, order, status="已取消", cancel_reason="客户取消")
    assert [(a["clock"], a["level"]) for a in (await s.run_pass(T0 + 101 * M)).cleared] == [("plan", "warning")]
    assert (await s.run_pass(T0 + 200 * M)).raised == []


async def test_completed_order_keeps_only_its_survey_clock_and_escalation_after_survey(engine):
    order = await add_order(engine, status="已完成", planned_at=T0 + M, completed_at=T0 + H)
    s = SlaScheduler(engine, None)
    day = T0 + H + 24 * H
    assert {(a["clock"], a["level"]) for a in (await s.run_pass(day)).raised} == {
        ("survey", "warning"), ("survey", "breach")}
    await set_order(engine, order, status="已回访", surveyed_at=day, dissatisfied_at=day)
    result = await s.run_pass(day + 48 * M)
    assert {a["clock"] for a in result.cleared} == {"survey"}
    assert [(a["clock"], a["level"]) for a in result.raised] == [("escalation", "warning")]
    await set_order(engine, order, escalated_at=day + 50 * M)
    assert [a["clock"] for a in (await s.run_pass(day + 51 * M)).cleared] == ["escalation"]
    assert (await s.run_pass(day + 99 * H)).orders == 0  # surveyed and escalated: not read


async def test_rebooked_visit_moves_the_reminder_and_a_reset_milestone_raises_again(engine):
    visit = T0 + 5 * H
    order = await add_order(engine, status="已预约", planned_at=T0 + M, appointment_start=visit)
    s = SlaScheduler(engine, None)
    first = (await s.run_pass(visit - 61 * M)).raised
    assert [(a["clock"], a["level"], a["deadline"]) for a in first] == [
        ("reminder", "warning", (visit - H).isoformat())]
    # Rebooked two hours later: the warning is no longer due → cleared; due again → re-raised.
    await set_order(engine, order, appointment_start=visit + 2 * H)
    assert [a["level"] for a in (await s.run_pass(visit - 60 * M)).cleared] == ["warning"]
    again = (await s.run_pass(visit + H - 11 * M)).raised
    assert [(a["level"], a["deadline"]) for a in again] == [("warning", (visit + H).isoformat())]
    # Rebooked 10 min later while the warning is still due: moved, announced again.
    await set_order(engine, order, appointment_start=visit + 2 * H + 10 * M)
    moved = await s.run_pass(visit + H - M)
    assert [(a["level"], a["deadline"]) for a in moved.raised] == [("warning", (visit + H + 10 * M).isoformat())]
    assert moved.cleared == []
    assert await alerts(engine) == [(order, "reminder", "warning", False)]


async def test_concurrent_passes_raise_and_announce_each_alert_once(engine):
    orders = [await add_order(engine) for _ in range(30)]
    posts_a, posts_b = Posts(), Posts()
    staff = await add_staff(engine)
    a, b = SlaScheduler(engine, posts_a), SlaScheduler(engine, posts_b)
    ra, rb = await asyncio.gather(a.run_pass(T0 + 31 * M), b.run_pass(T0 + 31 * M))
    raised = sorted((x["order_id"], x["level"]) for x in ra.raised + rb.raised)
    assert raised == sorted((o, lvl) for o in orders for lvl in ("warning", "breach"))
    async with engine.connect() as c:
        assert await c.scalar(select(func.count()).select_from(SlaAlert)) == 60
    pushed = posts_a.to(staff["sup"]) + posts_b.to(staff["sup"])
    # Each alert announced once: one by one, or in a pass's resync count (over the push limit).
    assert sum(m["raised"] if m["type"] == "sla.resync" else 1 for m in pushed) == 60
    for o in orders:
        await set_order(engine, o, planned_at=T0 + 32 * M)
    ca, cb = await asyncio.gather(a.run_pass(T0 + 33 * M), b.run_pass(T0 + 33 * M))
    assert len(ca.cleared) + len(cb.cleared) == 60


async def test_few_changes_are_pushed_one_by_one_many_as_one_resync(engine):
    staff = await add_staff(engine)
    for _ in range(3):
        await add_order(engine)
    posts = Posts()
    s = SlaScheduler(engine, posts, push_limit=5)
    await s.run_pass(T0 + 25 * M)  # 3 warnings
    await s.run_pass(T0 + 31 * M)  # 3 breaches
    assert [m["type"] for m in posts.to(staff["disp"])] == ["sla.alert"] * 6
    for _ in range(3):
        await add_order(engine)
    await s.run_pass(T0 + 32 * M)  # 6 new
    assert posts.to(staff["disp"])[-1] == {"type": "sla.resync", "raised": 6, "cleared": 0}


async def test_imported_and_carry_in_orders_raise_nothing(engine):
    await add_order(engine, source="import", dispatched_at=None)
    await add_order(engine, service_type="送修", status="待修", dispatched_at=None)
    assert (await SlaScheduler(engine, None).run_pass(T0 + 30 * 24 * H)).raised == []


async def test_a_failing_pass_is_logged_and_retried_and_cancellation_is_clean(sqlite_only_url, caplog):
    from callcenter.db.engine import make_engine, migrate

    engine = make_engine(sqlite_only_url)
    await migrate(engine)
    s = SlaScheduler(engine, None, clock=lambda: T0)
    calls: list[int] = []
    real = s.run_pass

    async def flaky(now=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return await real(now)

    s.run_pass = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="callcenter.sla"):
        task = asyncio.create_task(s.run(0.01))
        await wait_for(lambda: len(calls) >= 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "sla: pass failed" in caplog.text
    await engine.dispose()


async def test_redis_gate_lets_one_instance_pass_per_interval(redis_url):
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        a, b = RedisPassGate(client, 0.3), RedisPassGate(client, 0.3)
        assert [await a.acquire(), await b.acquire(), await a.acquire()] == [True, False, False]
        await wait_for(b.acquire, timeout=3)  # the key expires by itself
    finally:
        await client.aclose()


# --- through the app: websockets and GET /api/alerts -----------------------------------------


async def test_supervisor_and_dispatcher_sockets_get_alerts_agents_do_not(db_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(db_url, 1, sla_interval=0.05))
    app = client.server.app
    now = [T0]
    app[SLA].clock = lambda: now[0]
    users = {}
    for name, role in (("sup1", "supervisor"), ("disp1", "dispatcher"), ("8001", "agent")):
        users[name] = await app[AUTH].add_user(f"agent{name}", role=role, password=h.PASSWORD,
                                               extension="8001" if role == "agent" else None)
    socks = {name: await h.connect(client, name) for name in users}
    try:
        engine = app[ENGINE]
        order = await add_order(engine)
        now[0] = T0 + 25 * M

        def sla(name: str) -> list[dict]:
            return [m for m in socks[name].messages if m["type"].startswith("sla.")]

        for name in ("sup1", "disp1"):
            got = await wait_for(lambda n=name: sla(n), message=f"{name} gets the alert")
            assert got[0]["alert"] | {"id": 0, "raised_at": ""} == {
                "id": 0, "order_id": order, "order_number": got[0]["alert"]["order_number"],
                "urgency": "紧急", "status": "已派单", "clock": "plan", "label": "方案答复",
                "level": "warning", "deadline": "2026-11-23T02:30:00+00:00", "raised_at": ""}
        assert (await app[MAILBOX].since(users["8001"].id, 0))[1] == []
        assert sla("8001") == []

        # The list: supervisors and dispatchers (and admins) only.
        r = await socks["sup1"].session.get(client.make_url("/api/alerts"))
        assert r.status == 200, await r.text()
        page = await r.json()
        assert page["total"] == 1 and page["items"][0]["seconds_overdue"] == -5 * 60
        r = await socks["8001"].session.get(client.make_url("/api/alerts"))
        assert r.status == 403
        r = await socks["disp1"].session.get(client.make_url("/api/alerts?clock=soon"))
        assert r.status == 422 and (await r.json())["details"]["field"] == "clock"

        now[0] = T0 + 27 * M
        await set_order(engine, order, planned_at=T0 + 26 * M, status="已预约")
        await wait_for(lambda: [m["type"] for m in sla("sup1")] == ["sla.alert", "sla.cleared"])
        r = await socks["disp1"].session.get(client.make_url("/api/alerts"))
        assert (await r.json())["total"] == 0
        r = await socks["disp1"].session.get(client.make_url("/api/alerts?state=all&level=warning&clock="))
        items = (await r.json())["items"]
        assert [(i["clock"], i["level"], i["seconds_overdue"]) for i in items] == [("plan", "warning", -180)]
        assert items[0]["cleared_at"] == "2026-11-23T02:27:00Z"
    finally:
        for sock in socks.values():
            await sock.close()


async def test_alert_list_pages_newest_first_and_filters(sqlite_only_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(sqlite_only_url, 1, sla_interval=0))
    app = client.server.app
    engine = app[ENGINE]
    await app[AUTH].add_user("agentadm", role="admin", password=h.PASSWORD)
    session = await h.login(client, "adm")
    try:
        # Plan clocks of 30 min: warnings at 24, 26, 28 min; deadlines at 30, 32, 34 min.
        orders = [await add_order(engine, created_at=T0 + 2 * i * M) for i in range(3)]
        await app[SLA].run_pass(T0 + 25 * M)  # order 0: warning
        await app[SLA].run_pass(T0 + 31 * M)  # orders 1, 2: warning; order 0: breach
        r = await session.get(client.make_url("/api/alerts?page_size=3&page=1"))
        page = await r.json()
        assert page["total"] == 4 and len(page["items"]) == 3
        assert {(i["order_id"], i["level"]) for i in page["items"]} == {
            (orders[0], "breach"), (orders[1], "warning"), (orders[2], "warning")}
        r = await session.get(client.make_url("/api/alerts?page_size=3&page=2"))
        assert [(i["order_id"], i["level"]) for i in (await r.json())["items"]] == [(orders[0], "warning")]
        r = await session.get(client.make_url("/api/alerts?level=breach"))
        assert [i["order_id"] for i in (await r.json())["items"]] == [orders[0]]
        r = await session.get(client.make_url("/api/alerts?state=closed"))
        assert r.status == 422
    finally:
        await session.close()


async def test_the_watch_query_reads_every_order_with_an_alert_due(engine):
    """The SQL pre-filter (bound times per clock) is a superset of what the rules decide, and
    much smaller than the table."""
    from callcenter.sla.rules import SNAPSHOT_FIELDS, alerts_due
    from callcenter.sla.scheduler import WATCHED_STATUSES, watch_query
    from tests.test_sla_rules import random_orders

    orders = random_orders(400, seed=11)
    async with engine.begin() as c:
        customer = await add_customer(c)
        await c.execute(insert(WorkOrder), [
            {n: getattr(o, n) for n in SNAPSHOT_FIELDS} | {"customer_id": customer} for o in orders])
    for now in (T0 - H, T0, T0 + 5 * M, T0 + 2 * H, T0 + 30 * H):
        async with engine.connect() as c:
            read = {r.id for r in await c.execute(watch_query(now))}
        # Closed orders' clocks are history; a dissatisfied one still waits for its escalation.
        due = {o.id for o in orders if alerts_due(o, now) and (
            o.status in WATCHED_STATUSES or (o.dissatisfied_at is not None and o.escalated_at is None))}
        assert due <= read, sorted(due - read)
        assert len(read) < len(orders)

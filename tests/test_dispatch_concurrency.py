"""Dispatch under concurrency on a real PostgreSQL: several dispatchers and several automatic
dispatch loops at once never assign an order twice and never push an engineer over their cap."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from callcenter.auth.identity import CurrentUser
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import WorkOrder
from callcenter.db.workforce import DispatchDecision
from callcenter.dispatch import rules as r
from callcenter.dispatch.candidates import CandidateLoader
from callcenter.dispatch.engine import DispatchEngine
from callcenter.errors import Conflict
from callcenter.orders.states import CLOSED_STATUSES
from tests.dispatchworld import NOW, TZ, build

CAP = 3


@pytest.fixture
async def pg(pg_url):  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    await migrate(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


def engine_of(sessionmaker) -> DispatchEngine:  # type: ignore[no-untyped-def]
    return DispatchEngine(sessionmaker, CandidateLoader(r.RuleConfig(tz=TZ)), None, clock=lambda: NOW)


async def more_orders(sessionmaker, like: int, n: int, *, due: bool) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` new pending orders for the same customer, appliance and address as order ``like``."""
    async with sessionmaker.begin() as s:
        model = await s.get(WorkOrder, like)
        orders = [WorkOrder(number=f"WO20261123-{900 + i:03d}", customer_id=model.customer_id,
                            appliance_id=model.appliance_id, address_id=model.address_id, status="待处理",
                            created_at=NOW, auto_dispatch_due_at=NOW if due else None) for i in range(n)]
        s.add_all(orders)
        await s.flush()
        return [o.id for o in orders]


async def open_orders(sessionmaker) -> Counter:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        rows = await s.execute(select(WorkOrder.engineer_id, func.count()).where(
            WorkOrder.engineer_id.is_not(None), WorkOrder.status.not_in(CLOSED_STATUSES)).group_by(WorkOrder.engineer_id))
        return Counter(dict(rows.all()))


async def test_dispatchers_racing_for_one_engineer_never_pass_the_cap(pg) -> None:  # type: ignore[no-untyped-def]
    w = await build(pg)
    ids = await more_orders(pg, w.orders["main"], 10, due=False)
    dispatcher = CurrentUser(id=w.users["dispatcher"], username="dispatcher", role="dispatcher")
    engines = [engine_of(pg) for _ in range(4)]

    async def one(i: int, order_id: int) -> str:
        try:
            await engines[i % 4].manual(order_id, dispatcher, engineer_id=w.users["best"], reason="并发测试")
        except Conflict as e:
            return e.code
        return "ok"

    results = Counter(await asyncio.gather(*(one(i, o) for i, o in enumerate(ids))))
    assert results == {"ok": CAP, "at_capacity": len(ids) - CAP}
    assert (await open_orders(pg))[w.users["best"]] == CAP


async def test_one_order_raced_by_dispatchers_and_the_loop_is_assigned_once(pg) -> None:  # type: ignore[no-untyped-def]
    w = await build(pg)
    main = w.orders["main"]
    async with pg.begin() as s:
        await s.execute(update(WorkOrder).where(WorkOrder.id == main).values(auto_dispatch_due_at=NOW))
    dispatcher = CurrentUser(id=w.users["dispatcher"], username="dispatcher", role="dispatcher")
    targets = ["best", "corner", "moving", "leave"]

    async def manual(name: str) -> str:
        try:
            await engine_of(pg).manual(main, dispatcher, engineer_id=w.users[name], reason="抢单", version=1)
        except Conflict as e:
            return e.code
        return "ok"

    async def auto() -> str:
        out = await engine_of(pg).auto(main, NOW)
        return "ok" if out is not None else "skipped"

    results = await asyncio.gather(*(manual(n) for n in targets), auto(), auto())
    assert Counter(results)["ok"] == 1, results
    async with pg() as s:
        o = await s.get(WorkOrder, main)
        decisions = (await s.execute(select(DispatchDecision).where(DispatchDecision.order_id == main))).scalars().all()
    assert o.status == "已派单" and o.engineer_id is not None and o.version == 2
    assert [d.engineer_id for d in decisions] == [o.engineer_id]


async def test_several_loops_over_a_burst_assign_each_order_once_within_caps(pg) -> None:  # type: ignore[no-untyped-def]
    w = await build(pg)
    before = await open_orders(pg)
    ids = await more_orders(pg, w.orders["main"], 24, due=True)
    engines = [engine_of(pg) for _ in range(3)]
    results = await asyncio.gather(*(e.run_pass(NOW) for e in engines))
    assert sum(x.dispatched + x.queued for x in results) == len(ids)
    # Each loop claimed its own orders (SKIP LOCKED): none evaluated an order another one took.
    assert sum(x.skipped for x in results) == 0
    async with pg() as s:
        decisions = (await s.execute(select(DispatchDecision.order_id, DispatchDecision.engineer_id)
                                     .where(DispatchDecision.order_id.in_(ids)))).all()
        left = (await s.execute(select(func.count()).where(WorkOrder.id.in_(ids),
                                                           WorkOrder.auto_dispatch_due_at.is_not(None)))).scalar_one()
    assert sorted(o for o, _ in decisions) == sorted(ids)  # one decision per order
    assert left == 0
    after = await open_orders(pg)
    assert all(n <= CAP for n in after.values()), after
    # Everyone eligible was filled to the cap before anything went to the queue.
    assigned = sum(1 for _, e in decisions if e is not None)
    assert assigned == sum(after.values()) - sum(before.values()) > 0
    assert after[w.users["best"]] == CAP

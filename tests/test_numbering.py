"""Form numbers: prefix + local day + serial, unique and gap-free per prefix and day — also with
50 agents saving at once on a real PostgreSQL and with saves rolled back in between."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.auth.identity import CurrentUser
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import IntakeRecord, WorkOrder
from callcenter.orders.numbering import format_number, local_day, next_number, next_numbers
from callcenter.orders.schemas import IntakeIn
from callcenter.orders.services import OrderService
from tests.test_orders_http import SETTINGS_, build_world, intake_body

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC


class Boom(Exception):
    """A save that fails after its number was taken (validation, a lost connection, …)."""


@pytest.mark.parametrize(("now", "day"), [
    (dt.datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC), "20261122"),  # 23:59:59 in Shanghai
    (dt.datetime(2026, 11, 22, 16, 0, 0, tzinfo=UTC), "20261123"),  # midnight in Shanghai
    (dt.datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), "20270101"),
    (dt.datetime(2026, 11, 23, 0, 30, tzinfo=SHANGHAI), "20261123"),
])
def test_local_day(now: dt.datetime, day: str) -> None:
    assert local_day(now, SHANGHAI) == day


@pytest.mark.parametrize(("serial", "number"), [(1, "WO20261122-001"), (999, "WO20261122-999"),
                                                (1000, "WO20261122-1000")])
def test_format(serial: int, number: str) -> None:
    assert format_number("WO", "20261122", serial) == number


async def test_rolled_back_save_leaves_no_gap_and_days_roll_over(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    before = dt.datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC)
    after = before + dt.timedelta(seconds=1)
    async with sessionmaker.begin() as s:
        assert await next_number(s, "WO", before, SHANGHAI) == "WO20261122-001"
    with pytest.raises(Boom):
        async with sessionmaker.begin() as s:
            assert await next_number(s, "WO", before, SHANGHAI) == "WO20261122-002"
            raise Boom
    async with sessionmaker.begin() as s:
        assert await next_number(s, "WO", before, SHANGHAI) == "WO20261122-002"  # given back
        assert await next_number(s, "CR", before, SHANGHAI) == "CR20261122-001"  # per prefix
        assert await next_number(s, "WO", after, SHANGHAI) == "WO20261123-001"  # a new day
    with pytest.raises(ValueError):
        async with sessionmaker.begin() as s:
            await next_number(s, "XX", before, SHANGHAI)


async def test_several_prefixes_in_one_statement(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """An intake and its order take both numbers in one statement; each counter moves alone,
    whichever order the prefixes are asked in, and a rolled-back save gives both back."""
    now = dt.datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    async with sessionmaker.begin() as s:
        assert await next_numbers(s, ("CR", "WO"), now, SHANGHAI) == {"CR": "CR20261122-001", "WO": "WO20261122-001"}
        assert await next_number(s, "WO", now, SHANGHAI) == "WO20261122-002"
        assert await next_numbers(s, ("WO", "CR"), now, SHANGHAI) == {"WO": "WO20261122-003", "CR": "CR20261122-002"}
    with pytest.raises(Boom):
        async with sessionmaker.begin() as s:
            await next_numbers(s, ("CR", "WO"), now, SHANGHAI)
            raise Boom
    async with sessionmaker.begin() as s:
        assert await next_numbers(s, ("CR", "WO"), now, SHANGHAI) == {"CR": "CR20261122-003", "WO": "WO20261122-004"}
        for bad in ((), ("WO", "WO"), ("XX",)):
            with pytest.raises(ValueError):
                await next_numbers(s, bad, now, SHANGHAI)


async def test_fifty_concurrent_intakes_with_orders_on_postgresql(pg_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        world = await build_world(sm)
        service = OrderService(sm, SETTINGS_)
        agent = CurrentUser(id=world.users["agent"], username="agent", role="agent")
        now = dt.datetime.now(UTC)
        body = IntakeIn.model_validate(intake_body(world, create_order={}))
        rng = random.Random(7)

        async def save() -> None:
            await service.create_intake(body, agent, now=now)

        async def save_and_fail() -> None:
            # Takes a WO number, holds it a moment, then rolls back.
            async with sm.begin() as s:
                await next_number(s, "WO", now, SETTINGS_.tz)
                await asyncio.sleep(rng.random() / 100)
                raise Boom

        tasks = [save() for _ in range(50)] + [save_and_fail() for _ in range(10)]
        rng.shuffle(tasks)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [r for r in results if r is not None]
        assert len(failures) == 10 and all(isinstance(r, Boom) for r in failures), failures

        day = local_day(now, SETTINGS_.tz)
        async with sm() as s:
            intakes = (await s.execute(select(IntakeRecord.number))).scalars().all()
            orders = (await s.execute(select(WorkOrder.number))).scalars().all()
        assert sorted(intakes) == [format_number("CR", day, i) for i in range(1, 51)]
        assert sorted(orders) == [format_number("WO", day, i) for i in range(1, 51)]
    finally:
        await engine.dispose()

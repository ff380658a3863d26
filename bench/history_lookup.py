"""Micro-benchmark of the screen-pop lookup (build_caller_context) on a seeded database.

    /tmp/venv/bin/python bench/history_lookup.py                     # SQLite, 100k / 300k
    /tmp/venv/bin/python bench/history_lookup.py --customers 1000000 --orders 3000000
    /tmp/venv/bin/python bench/history_lookup.py --database-url postgresql+asyncpg://…/bench --explain

Seeds N customers (one mobile each, every 5th also a landline, an address, 1–2 appliances),
M work orders and C calls with Core ``insert()`` executemany, runs ANALYZE, then times
``--lookups`` lookups of random numbers (90 % known customers in assorted spellings, 10 %
unknown numbers), each in its own session as the screen-pop does. Prints the machine, the
database, and p50/p90/p99/max in milliseconds. ``--explain`` prints the plan of every query of
one lookup. A PostgreSQL database must be empty (it is migrated to head here); the SQLite file
is a temporary one, removed afterwards. Numbers are sealed with a vault of fresh keys, as the
product stores them (blind index, ciphertext, masked form).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func, insert, select

from callcenter.crypto import PhoneVault, new_key_spec
from callcenter.customers.history import build_caller_context
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Address, Appliance, Call, Customer, CustomerPhone, WorkOrder
from callcenter.settings import Settings

NOW = dt.datetime(2024, 6, 1, 2, 0, tzinfo=dt.UTC)
CHUNK = 20_000  # rows per executemany
STATUSES = ["已完成"] * 6 + ["已回访"] * 2 + ["已取消", "待处理", "已派单", "已预约", "服务中", "待件"]
TYPES = ["上门维修"] * 5 + ["远程支持", "安装", "退换货"]
CATEGORIES = ["空调", "冰箱", "洗衣机", "热水器", "燃气灶"]
VAULT = PhoneVault.from_specs(new_key_spec("d1"), new_key_spec("i1"))


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"nproc={nproc}, cpu={model}, python={platform.python_version()}, {platform.system()}"


def mobile(i: int) -> str:
    return f"13{i:09d}"


def landline(i: int) -> str:
    return f"0755{i:08d}"


async def seed(sm, customers: int, orders: int, calls: int, rng: random.Random) -> None:  # noqa: ANN001
    """Insert the rows chunk by chunk (generators: 3M orders never sit in memory at once)."""

    async def put(model, rows) -> None:  # noqa: ANN001
        while chunk := list(itertools.islice(rows, CHUNK)):
            async with sm() as s, s.begin():
                await s.execute(insert(model.__table__), chunk)

    created = NOW - dt.timedelta(days=800)
    ids = range(1, customers + 1)
    await put(Customer, ({"id": i, "name": f"客户{i}", "level": "", "remarks": "",
                          "created_at": created} for i in ids))
    def phone(cid: int, number: str, kind: str) -> dict[str, object]:
        s = VAULT.seal(number)
        return {"customer_id": cid, "number_index": s.index, "number_enc": s.enc,
                "masked": s.masked, "kind": kind}

    await put(CustomerPhone, itertools.chain(
        (phone(i, mobile(i), "mobile") for i in ids),
        (phone(i, landline(i), "landline") for i in range(5, customers + 1, 5))))
    await put(Address, ({"customer_id": i, "province": "广东省", "city": "深圳市", "district": "南山区",
                         "detail": f"科技园{i}号"} for i in ids))

    # Appliance i belongs to customer i; every 3rd customer has a second one, id customers + i//3.
    def appliances_of(cid: int) -> list[int]:
        return [cid, customers + cid // 3] if cid % 3 == 0 else [cid]

    await put(Appliance, ({"id": aid, "customer_id": cid, "category": rng.choice(CATEGORIES),
                           "brand": "品牌", "model": f"M-{aid % 500}", "serial": f"SN{aid}",
                           "purchase_date": (NOW - dt.timedelta(days=rng.randint(0, 1500))).date(),
                           "warranty_months": rng.choice((12, 24, 36))}
                          for cid in ids for aid in appliances_of(cid)))

    def order(n: int) -> dict[str, object]:
        cid = rng.randint(1, customers)
        return {"id": n, "number": f"WO{n:010d}", "customer_id": cid,
                "appliance_id": rng.choice(appliances_of(cid)), "service_type": rng.choice(TYPES),
                "status": rng.choice(STATUSES), "urgency": "普通", "problem": "不制冷",
                "created_at": NOW - dt.timedelta(minutes=rng.randint(0, 730 * 1440))}

    def call(n: int) -> dict[str, object]:
        cid = rng.randint(1, customers)
        s = VAULT.seal(mobile(cid))
        return {"id": n, "linkedid": f"{1700000000 + n}.{n}", "caller_index": s.index,
                "caller_enc": s.enc, "caller_masked": s.masked, "customer_id": cid if n % 10 else None,
                "queue": "aftersales", "agent_member": "Agent 8001", "state": "ended",
                "outcome": "answered", "rang": [], "talk_s": rng.randint(20, 600),
                "started_at": NOW - dt.timedelta(minutes=rng.randint(1, 60 * 1440))}

    await put(WorkOrder, (order(n) for n in range(1, orders + 1)))
    await put(Call, (call(n) for n in range(1, calls + 1)))


def spellings(number: str) -> list[str]:
    if number.startswith("0"):
        return [number, f"{number[:4]}-{number[4:]}", f"+86 {number[1:4]} {number[4:]}"]
    return [number, f"+86 {number[:3]} {number[3:7]} {number[7:]}", f"0086-{number}",
            f"{number[:3]}-{number[3:7]}-{number[7:]}"]


async def explain(engine, sm, settings: Settings, number: str) -> None:  # noqa: ANN001
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with sm() as s:
        await build_caller_context(s, number, now=NOW, settings=settings, vault=VAULT,
                                   exclude_linkedid="x")
    event.remove(engine.sync_engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    async with engine.connect() as conn:
        for statement, parameters in seen:
            print("\n" + " ".join(statement.split())[:160] + " …")
            for row in await conn.exec_driver_sql(prefix + statement, parameters):
                print("    " + str(row[-1]))


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    tmp = None
    url = args.database_url
    if not url:
        tmp = tempfile.mkdtemp(prefix="history-bench-")
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
    engine = make_engine(url)
    try:
        await migrate(engine, vault=VAULT)
        sm = make_sessionmaker(engine)
        async with sm() as s:
            if (await s.execute(select(func.count()).select_from(Customer))).scalar_one():
                sys.exit("the database is not empty; give an empty one")
        rng = random.Random(args.seed)
        started = time.perf_counter()
        await seed(sm, args.customers, args.orders, args.calls, rng)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        seeded = time.perf_counter() - started
        async with engine.connect() as conn:
            version = (await conn.exec_driver_sql(
                "select sqlite_version()" if engine.dialect.name == "sqlite" else "show server_version"
            )).scalar()
        print(f"machine: {machine()}")
        print(f"database: {engine.dialect.name} {version}; seeded {args.customers} customers, "
              f"{args.orders} work orders, {args.calls} calls in {seeded:.1f} s")
        numbers = []
        for _ in range(args.lookups + args.warmup):
            if rng.random() < 0.9:
                i = rng.randint(1, args.customers)
                number = landline(i) if i % 5 == 0 and rng.random() < 0.5 else mobile(i)
            else:
                number = f"15{rng.randint(0, 10**9 - 1):09d}"  # nobody's
            numbers.append(rng.choice(spellings(number)))
        times = []
        for n, number in enumerate(numbers):
            t0 = time.perf_counter()
            async with sm() as s:
                await build_caller_context(s, number, now=NOW, settings=settings, vault=VAULT,
                                           exclude_linkedid="bench")
            if n >= args.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        q = statistics.quantiles(times, n=100, method="inclusive")
        print(f"build_caller_context over {len(times)} lookups (ms): p50={q[49]:.2f} "
              f"p90={q[89]:.2f} p99={q[98]:.2f} max={times[-1]:.2f} mean={statistics.fmean(times):.2f}")
        if args.explain:
            await explain(engine, sm, settings, mobile(max(1, args.customers // 2)))
    finally:
        await engine.dispose()
        if tmp:
            for f in Path(tmp).iterdir():
                f.unlink()
            Path(tmp).rmdir()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--orders", type=int, default=300_000)
    p.add_argument("--calls", type=int, default=None, help="default: as many as customers")
    p.add_argument("--lookups", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--database-url", help="an EMPTY PostgreSQL database; default: temporary SQLite")
    p.add_argument("--explain", action="store_true", help="print the plan of each query")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.calls is None:
        args.calls = args.customers
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))

"""Benchmark of one dispatch decision (the preview path: ``CandidateLoader.preview``) with 5,000
engineers and 100,000 open orders.

    /tmp/venv/bin/python bench/dispatch.py                          # SQLite and PostgreSQL
    /tmp/venv/bin/python bench/dispatch.py --database sqlite --decisions 200

Seeds, per database (schema from the product's migrations): the product categories (空调 needs
制冷作业证), ``--engineers`` engineers spread uniformly over discs of 25 km around the centres
of the eight cities the bundled geocoder knows, each with 1–3 category skills (10 % of the
air-conditioner certificates expired), 0–4 open orders (so some sit at the cap of 3), working
hours every day 09:00–18:00 (10 % Monday–Friday only), 5 % on leave today; ``--history`` completed
orders per engineer with one on-site record (80 %) or two, half surveyed (10 % of those
unhappy); customers with one address (coordinates set, spread like the engineers) and one appliance
of a category in turn; the rest
of ``--open`` open orders pending with no engineer. ``now`` is a Monday 10:00 in Shanghai.

Then ``--decisions`` pending orders picked at random are evaluated one after the other, each on
a fresh pooled connection as the endpoint does (order facts, candidates in the bounding box,
skills, leave, the record of the eligible, the rules; the widened search when nobody matches).
Prints the machine, and per database p50 / p99 / max, overall and for decisions with a winner
(the widened search runs only when nobody matches). Target: p99 ≤ 20 ms.

Then the **burst** (``--burst``, default 1,000): that many new orders are created at once, due
for automatic dispatch, for customers picked at random; ``--loops`` dispatch engines (each what
one instance runs: ``DispatchEngine.run_pass`` until nothing is due) dispatch them — rules, row
locks, recount, decision, timeline, audit. Prints the seconds until the last one is decided and
how many went to an engineer or to the dispatchers' queue. Target: all within 60 s.

PostgreSQL is the benchmark cluster of ``bench/_seed.py`` in its own folder under ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import _seed
from sla_scheduler import machine
from sqlalchemy import insert, select, text

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Address, Appliance, Customer, User, WorkOrder
from callcenter.db.records import OnsiteRecord, ProductCategory
from callcenter.db.workforce import EngineerLeave, EngineerProfile, EngineerSkill
from callcenter.dispatch import rules as r

from callcenter.dispatch.candidates import CandidateLoader
from callcenter.dispatch.engine import DispatchEngine
from callcenter.geo.distance import KM_PER_DEGREE
from callcenter.geo.geocoding import default_geocoder

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).astimezone(dt.UTC)  # a Monday, 10:00
CITIES = ("北京市", "上海市", "广州市", "深圳市", "杭州市", "成都市", "武汉市", "南京市")
CATEGORIES = (("空调", "制冷作业证"), ("冰箱", ""), ("洗衣机", ""), ("热水器", ""))
CITY_RADIUS_KM = 25.0
CHUNK = 10_000
OPEN_STATUSES = ("已派单", "已预约", "服务中", "待件")


def _in_disc(rng: random.Random, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
    d, a = radius_km * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    return (lat + d * math.cos(a) / KM_PER_DEGREE,
            lon + d * math.sin(a) / (KM_PER_DEGREE * math.cos(math.radians(lat))))


def _centres() -> list[tuple[str, float, float]]:
    g = default_geocoder()
    g.city_fallback = False
    out = []
    for city in CITIES:
        p = g._table[(city[:-1], "")]  # the city rows of the bundled table
        out.append((city, p.lat, p.lon))
    return out


async def _insert(engine, table, rows: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), CHUNK):
        async with engine.begin() as c:
            await c.execute(insert(table), rows[i:i + CHUNK])


async def seed(url: str, n_eng: int, n_open: int, history: int, customers: int) -> float:
    t = time.monotonic()
    rng = random.Random(4)
    engine = make_engine(url)
    try:
        await migrate(engine)
        centres = _centres()
        await _insert(engine, ProductCategory, [{"name": n, "warranty_months": 12, "certificate": c}
                                                for n, c in CATEGORIES])
        await _insert(engine, Customer, [{"id": i, "name": f"客户{i}", "created_at": NOW} for i in range(1, customers + 1)])
        addresses = []
        for i in range(1, customers + 1):
            city, lat, lon = centres[i % len(centres)]
            la, lo = _in_disc(rng, lat, lon, CITY_RADIUS_KM)
            addresses.append({"id": i, "customer_id": i, "province": city, "city": city, "district": "",
                              "detail": "", "lat": la, "lon": lo})
        await _insert(engine, Address, addresses)
        await _insert(engine, Appliance, [{"id": i, "customer_id": i, "category": CATEGORIES[i % len(CATEGORIES)][0],
                                           "brand": "", "model": "M", "serial": "", "warranty_months": 12}
                                          for i in range(1, customers + 1)])
        users, profiles, skills, leave, orders, visits = [], [], [], [], [], []
        order_id = 0

        def order(**kw: Any) -> dict[str, Any]:
            nonlocal order_id
            order_id += 1
            cust = rng.randint(1, customers)
            row = {"id": order_id, "number": f"WO{order_id:012d}", "customer_id": cust, "address_id": cust,
                   "appliance_id": cust,
                   "status": "待处理", "engineer_id": None, "created_at": NOW - dt.timedelta(hours=rng.uniform(0, 72)),
                   "dispatched_at": None, "completed_at": None, "surveyed_at": None, "dissatisfied_at": None}
            row.update(kw)
            return row

        for i in range(n_eng):
            uid = 1000 + i
            city, lat, lon = centres[i % len(centres)]
            la, lo = _in_disc(rng, lat, lon, CITY_RADIUS_KM)
            users.append({"id": uid, "username": f"eng{i}", "display_name": f"工程师{i}", "password_hash": "x",
                          "role": "engineer", "active": True, "created_at": NOW, "staff_no": f"GY{i:07d}"})
            weekdays = range(1, 6) if rng.random() < 0.1 else range(1, 8)
            profiles.append({"user_id": uid, "region": city, "base_lat": la, "base_lon": lo,
                             "last_lat": None, "last_lon": None, "last_seen_at": None, "load_cap": 3,
                             "working_hours": {str(d): [["09:00", "18:00"]] for d in weekdays}, "active": True,
                             "version": 1, "updated_at": None})
            for cat, cert in rng.sample(CATEGORIES, rng.randint(1, 3)):
                expires = NOW.date() + dt.timedelta(days=rng.choice((-30, 400)) if rng.random() < 0.1 else 400)
                skills.append({"engineer_id": uid, "category": cat, "certificate": cert,
                               "certificate_no": f"C{i}" if cert else "", "certificate_expires": expires if cert else None})
            if rng.random() < 0.05:
                leave.append({"engineer_id": uid, "start_date": NOW.date(), "end_date": NOW.date(), "kind": "请假",
                              "note": "", "created_at": NOW})
            for _ in range(rng.choice((0, 0, 1, 1, 2, 2, 3, 4))):
                orders.append(order(status=rng.choice(OPEN_STATUSES), engineer_id=uid,
                                    dispatched_at=NOW - dt.timedelta(hours=rng.uniform(1, 48))))
            for _ in range(history):
                done = NOW - dt.timedelta(days=rng.uniform(1, 90))
                surveyed = rng.random() < 0.5
                o = order(status="已回访" if surveyed else "已完成", engineer_id=uid,
                          dispatched_at=done - dt.timedelta(days=1), completed_at=done,
                          surveyed_at=done + dt.timedelta(hours=5) if surveyed else None,
                          dissatisfied_at=done + dt.timedelta(hours=5) if surveyed and rng.random() < 0.1 else None)
                orders.append(o)
                for k in range(1 if rng.random() < 0.8 else 2):
                    visits.append({"number": f"OS{o['id']:012d}{k}", "order_id": o["id"], "engineer_id": uid,
                                   "created_at": done})
        open_assigned = sum(1 for o in orders if o["completed_at"] is None)
        for _ in range(max(0, n_open - open_assigned)):
            orders.append(order())
        await _insert(engine, User, users)
        await _insert(engine, EngineerProfile, profiles)
        await _insert(engine, EngineerSkill, skills)
        await _insert(engine, EngineerLeave, leave)
        await _insert(engine, WorkOrder, orders)
        await _insert(engine, OnsiteRecord, visits)
        async with engine.begin() as c:
            if engine.dialect.name == "postgresql":
                for table in ("work_orders", "customers", "addresses", "users"):
                    await c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT max(id) FROM {table}))"))
            await c.execute(text("ANALYZE"))
        if engine.dialect.name == "postgresql":
            async with engine.connect() as c:
                await (await c.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
        print(f"  {n_eng:,} engineers, {len(orders):,} orders ({n_open:,} open: {open_assigned:,} assigned), "
              f"{len(visits):,} on-site records, {customers:,} customers", flush=True)
    finally:
        await engine.dispose()
    return time.monotonic() - t


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))]


async def measure(db: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    loader = CandidateLoader(r.RuleConfig(tz=TZ))
    try:
        async with engine.connect() as c:
            pending = list((await c.execute(select(WorkOrder.id).where(WorkOrder.status == "待处理")
                                            .limit(50_000))).scalars())
        picks = random.Random(7).sample(pending, min(args.decisions, len(pending)))
        for oid in picks[:20]:  # warm the pool and the caches
            async with engine.connect() as c:
                await loader.preview(c, oid, NOW)
        all_ms, won_ms, widened_ms, candidates = [], [], [], []
        for oid in picks:
            t0 = time.perf_counter()
            async with engine.connect() as c:
                p = await loader.preview(c, oid, NOW)
            ms = (time.perf_counter() - t0) * 1000
            assert p is not None
            all_ms.append(ms)
            (won_ms if p.evaluation.winner is not None else widened_ms).append(ms)
            candidates.append(len(p.evaluation.candidates))
        burst = await measure_burst(engine, args) if args.burst else {}
    finally:
        await engine.dispose()
    res = {**burst, "database": db, "decisions": len(all_ms), "p50": statistics.median(all_ms), "p99": pct(all_ms, 0.99),
           "max": max(all_ms), "won": len(won_ms), "won_p99": pct(won_ms, 0.99) if won_ms else float("nan"),
           "widened": len(widened_ms), "widened_p50": statistics.median(widened_ms) if widened_ms else float("nan"),
           "candidates": statistics.mean(candidates)}
    print(f"  decisions {res['decisions']}: p50 {res['p50']:.2f} ms, p99 {res['p99']:.2f} ms, max {res['max']:.2f} ms; "
          f"with a winner {res['won']} (p99 {res['won_p99']:.2f} ms), widened {res['widened']} "
          f"(p50 {res['widened_p50']:.2f} ms); {res['candidates']:.1f} candidates on average", flush=True)
    return res


async def measure_burst(engine, args: argparse.Namespace) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``args.burst`` new orders due now, dispatched by ``args.loops`` engines at once."""
    rng = random.Random(11)
    async with engine.begin() as c:
        first = (await c.execute(text("SELECT max(id) FROM work_orders"))).scalar_one() + 1
        customers = (await c.execute(text("SELECT max(id) FROM customers"))).scalar_one()
    ids = list(range(first, first + args.burst))
    rows = []
    for oid in ids:
        cust = rng.randint(1, customers)
        rows.append({"id": oid, "number": f"WO{oid:012d}", "customer_id": cust, "address_id": cust,
                     "appliance_id": cust, "status": "待处理", "created_at": NOW, "auto_dispatch_due_at": NOW})
    await _insert(engine, WorkOrder, rows)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as c:
            await c.execute(text("SELECT setval(pg_get_serial_sequence('work_orders', 'id'), "
                                 "(SELECT max(id) FROM work_orders))"))
    sessionmaker = make_sessionmaker(engine)
    loops = [DispatchEngine(sessionmaker, CandidateLoader(r.RuleConfig(tz=TZ)), None, clock=lambda: NOW)
             for _ in range(args.loops)]

    async def drain(d: DispatchEngine) -> tuple[int, int]:
        dispatched = queued = 0
        while True:
            res = await d.run_pass(NOW)
            dispatched, queued = dispatched + res.dispatched, queued + res.queued
            if res.dispatched + res.queued + res.skipped == 0:
                return dispatched, queued

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(drain(d) for d in loops))
    seconds = time.perf_counter() - t0
    async with engine.connect() as c:
        left = (await c.execute(select(WorkOrder.id).where(WorkOrder.id.in_(ids),
                                                          WorkOrder.auto_dispatch_due_at.is_not(None)))).all()
    dispatched, queued = sum(c[0] for c in counts), sum(c[1] for c in counts)
    assert not left and dispatched + queued == len(ids), (len(left), dispatched, queued)
    print(f"  burst of {len(ids):,} new orders, {args.loops} loop(s): all decided in {seconds:.1f} s "
          f"({dispatched:,} to an engineer, {queued:,} to the dispatchers' queue; "
          f"{seconds / len(ids) * 1000:.1f} ms per order)", flush=True)
    return {"burst": len(ids), "burst_s": seconds, "burst_dispatched": dispatched, "burst_queued": queued}


async def main(args: argparse.Namespace) -> int:
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    sizes = (args.engineers, args.open, args.history, args.customers)
    results = await _seed.seed_and_measure_each(
        args.database, "bench_dispatch", args.data_dir, lambda url: seed(url, *sizes),
        lambda db, url: measure(db, url, args))
    print("\n| database | decisions | p50 ms | p99 ms | max ms | with a winner: p99 ms | widened (share, p50 ms) | candidates avg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for x in results:
        print(f"| {x['database']} | {x['decisions']} | {x['p50']:.2f} | {x['p99']:.2f} | {x['max']:.2f} | "
              f"{x['won_p99']:.2f} | {x['widened'] / x['decisions']:.0%}, {x['widened_p50']:.2f} | {x['candidates']:.1f} |")
    if args.burst:
        print("\n| database | burst | loops | all decided in (s) | to an engineer | to the queue |")
        print("| --- | --- | --- | --- | --- | --- |")
        for x in results:
            print(f"| {x['database']} | {x['burst']:,} | {args.loops} | {x['burst_s']:.1f} | "
                  f"{x['burst_dispatched']:,} | {x['burst_queued']:,} |")
    ok = all(x["p99"] <= 20.0 and x.get("burst_s", 0) <= 60.0 for x in results)
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--engineers", type=int, default=5_000)
    p.add_argument("--open", type=int, default=100_000, help="open orders (assigned ones included)")
    p.add_argument("--history", type=int, default=20, help="completed orders per engineer")
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--decisions", type=int, default=500)
    p.add_argument("--burst", type=int, default=1_000, help="new orders dispatched at once (0: skip)")
    p.add_argument("--loops", type=int, default=1, help="dispatch loops (instances) working the burst")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/callcenter-bench"),
                   help="where the PostgreSQL cluster is kept between runs")
    sys.exit(asyncio.run(main(p.parse_args())))

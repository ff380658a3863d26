"""Benchmark of the outbound dialler (callcenter.outbound): due fetch, sustained pacing, restart.

    /tmp/venv/bin/python bench/outbound.py                                  # full scale, SQLite
    /tmp/venv/bin/python bench/outbound.py --jobs 100000 --rate-seconds 20 --restart-jobs 20000
    /tmp/venv/bin/python bench/outbound.py --database postgresql

Three measurements, each against the product's schema (``migrate``), a private Redis
(``tests.services.RedisServer``) and, for the calls, the AMI simulator in its own process over TCP:

1. **Due fetch** with ``--jobs`` scheduled jobs (default 1,000,000; due times spread over the
   next 7 days, 1 % already due, the three priorities mixed): ``--fetches`` fetches of up to 50
   due ids, from the database (``DbSchedule``: the partial index ``ix_outbound_jobs_due``) and
   from Redis (``RedisSchedule``: the sorted sets, claim into the lease set; put back between
   fetches, untimed). Prints p50 / p99 / max. Target: p99 ≤ 5 ms.
2. **Sustained originates**: ``--rate`` originates/s (default 50) for ``--rate-seconds`` (60)
   seconds: that many jobs due now, numbers on the lab trunk (last digit 1 busy, 2 no answer,
   3 congestion, else answered: a survey call that sends its six digits and hangs up), the
   dialler's token bucket pacing, every claim, attempt row, Originate and outcome real. Prints
   the achieved rate over the steady part (first and last second left out) and the slowest and
   fastest 5-second windows. Target: within ±5 % of the set rate.
3. **Restart**: ``--restart-jobs`` (100,000) scheduled jobs, 1,000 due now, 20 attempts left
   ``dialling`` by a "crashed" process (no channel any more), Redis emptied (the worst case: the
   schedule must be rebuilt). From a fresh dialler's start: AMI login, the open attempts resolved
   from ``CoreShowChannels``, the Redis schedule rebuilt from the database, the first due job
   dialled. Target: ≤ 5 s.

``--json FILE`` writes the figures. The machine is shared: say what the load was.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from sla_scheduler import machine
from sqlalchemy import text

from callcenter.ami.connector import AmiConnector
from callcenter.crypto import PhoneVault
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.outbound import rules
from callcenter.outbound.dialler import OutboundConfig, OutboundDialler
from callcenter.outbound.schedule import DbSchedule, RedisSchedule
from tests import services

UTC = dt.UTC
VAULT = PhoneVault.from_specs("bo1:" + "A" * 43 + "=", "bi1:" + "B" * 43 + "=")
COLUMNS = ("id", "kind", "order_id", "customer_id", "call_linkedid", "dedupe_key", "number_index",
           "number_enc", "number_masked", "reason", "requested_at", "due_at", "deadline_at", "priority",
           "status", "attempts", "last_outcome", "agent_id", "created_by", "created_at", "updated_at",
           "version")

SIMULATOR = """
import asyncio, json, sys
from callcenter.simulator import AmiSimulator, SimulatorConfig
async def main():
    sim = AmiSimulator(SimulatorConfig(port=0, time_scale=float(sys.argv[1])))
    port = await sim.start()
    print(json.dumps({"port": port}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await sim.aclose()
asyncio.run(main())
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


# -- databases ----------------------------------------------------------------------------------

class Databases:
    """A fresh database per measurement: SQLite files in a temp folder, or databases on the
    benchmark PostgreSQL cluster (``bench/_seed.BenchPostgres`` under ``--data-dir``)."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix="cc-bench-outbound-"))
        self.pg: Any = None
        if kind == "postgresql":
            import _seed

            self.pg = _seed.BenchPostgres(data_dir).start()

    def url(self, name: str) -> str:
        if self.pg is None:
            return f"sqlite+aiosqlite:///{self.tmp / (name + '.sqlite3')}"
        self.pg.drop_database(name)
        self.pg.create_database(name)
        return self.pg.url(name)

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()


async def seed_jobs(engine: Any, n: int, now: dt.datetime, *, due_now: int, horizon_days: float = 7) -> None:
    """``n`` scheduled jobs; ``due_now`` of them already due, the rest over ``horizon_days``."""
    rng = random.Random(5)
    sealed = [VAULT.seal(f"1380000{i:04d}") for i in range(200)]
    kinds = [("callback", 0), ("callback", 1), ("survey", 2), ("survey", 2)]
    t0 = time.monotonic()

    def rows(start: int, stop: int) -> list[tuple]:
        out = []
        for i in range(start, stop):
            kind, prio = kinds[i % 4]
            s = sealed[i % 200]
            if i < due_now:
                due = now - dt.timedelta(seconds=rng.randrange(3600))
            else:
                due = now + dt.timedelta(seconds=60 + rng.random() * horizon_days * 86400)
            out.append((i + 1, kind, None, None, "", None, s.index, s.enc, s.masked, "bench", now, due, None,
                        prio, "scheduled", 0, "", None, None, now, now, 1))
        return out

    batch = 50_000
    if engine.dialect.name == "postgresql":
        raw = await engine.raw_connection()
        try:
            con = raw.driver_connection
            for start in range(0, n, batch):
                await con.copy_records_to_table("outbound_jobs", records=rows(start, min(n, start + batch)),
                                                columns=list(COLUMNS))
            await con.execute("SELECT setval(pg_get_serial_sequence('outbound_jobs', 'id'), "
                              "(SELECT max(id) FROM outbound_jobs))")
            await con.execute("ANALYZE outbound_jobs")
        finally:
            raw.close()
    else:
        import sqlite3

        path = engine.url.database
        con = sqlite3.connect(path)
        con.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO outbound_jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

        def conv(r: tuple) -> tuple:
            return tuple(v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime) else v
                         for v in r)
        for start in range(0, n, batch):
            con.execute("BEGIN")
            con.executemany(sql, [conv(r) for r in rows(start, min(n, start + batch))])
            con.execute("COMMIT")
        con.execute("ANALYZE")
        con.close()
    say(f"seed: {n:,} jobs in {time.monotonic() - t0:.1f} s")


async def fresh(dbs: Databases, name: str) -> Any:
    url = dbs.url(name)
    engine = make_engine(url)
    await migrate(engine, vault=VAULT)
    return engine


# -- 1. due fetch -------------------------------------------------------------------------------

async def bench_fetch(dbs: Databases, redis_url: str, jobs: int, fetches: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    engine = await fresh(dbs, "bench_outbound_fetch")
    now = dt.datetime.now(UTC)
    await seed_jobs(engine, jobs, now, due_now=jobs // 100)
    out: dict[str, Any] = {"jobs": jobs, "fetches": fetches}
    db = DbSchedule(engine)
    await db.due(now, 50)  # warm the pool
    times = []
    for _ in range(fetches):
        t = time.perf_counter()
        ids = await db.due(now, 50)
        times.append((time.perf_counter() - t) * 1000)
    assert len(ids) == 50
    out["database"] = {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "max_ms": max(times)}
    say(f"fetch (database): p50 {pct(times, 50):.2f} ms, p99 {pct(times, 99):.2f} ms, max {max(times):.2f} ms")
    client = aioredis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    rs = RedisSchedule(client, engine, prefix="bench:ob:")
    t = time.perf_counter()
    loaded = await rs.ensure()
    out["redis_rebuild_s"] = time.perf_counter() - t
    say(f"fetch (redis): schedule of {loaded:,} jobs built from the database in {out['redis_rebuild_s']:.1f} s")
    times = []
    prio = {}
    async with engine.connect() as conn:
        prio = dict((await conn.execute(text("SELECT id, priority FROM outbound_jobs WHERE due_at <= :now"),
                                        {"now": now})).all()) if dbs.kind == "postgresql" else {}
    for _ in range(fetches):
        t = time.perf_counter()
        ids = await rs.due(now, 50)
        times.append((time.perf_counter() - t) * 1000)
        for i in ids:  # back where they were (untimed)
            await rs.put(i, prio.get(i, 1) if prio else 1, now - dt.timedelta(seconds=1))
    out["redis"] = {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "max_ms": max(times)}
    say(f"fetch (redis): p50 {pct(times, 50):.2f} ms, p99 {pct(times, 99):.2f} ms, max {max(times):.2f} ms")
    await client.flushdb()
    await client.aclose()
    await engine.dispose()
    return out


# -- the simulator and a dialler ----------------------------------------------------------------

class Simulator:
    def __init__(self, time_scale: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SIMULATOR, str(time_scale)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def config(rate: float, max_channels: int) -> OutboundConfig:
    hours = rules.CallingHours(dt.UTC, dt.time(0, 0), dt.time(23, 59, 59))
    return OutboundConfig(hours=hours, rate=rate, max_channels=max_channels, timeout_s=5,
                          create_every=3600)


async def dialler_for(engine: Any, schedule: Any, rate: float, port: int, max_channels: int) -> tuple[OutboundDialler, AmiConnector]:
    connector = AmiConnector("127.0.0.1", port, "callcenter", "s3cret-ami", ping_interval=5, ping_timeout=8)
    dialler = OutboundDialler(make_sessionmaker(engine), VAULT, config(rate, max_channels), schedule)
    dialler.attach(connector)
    return dialler, connector


async def stop(dialler: OutboundDialler, loop: asyncio.Task[None], run: asyncio.Task[None]) -> None:
    """The dialler's tick finishes, then the AMI session closes."""
    dialler.stop()
    await loop
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


# -- 2. sustained originates --------------------------------------------------------------------

async def bench_rate(dbs: Databases, rate: float, seconds: float) -> dict[str, Any]:
    engine = await fresh(dbs, "bench_outbound_rate")
    now = dt.datetime.now(UTC)
    n = int(rate * seconds)
    await seed_jobs(engine, n, now, due_now=n)
    sim = Simulator(time_scale=0.2)
    try:
        dialler, connector = await dialler_for(engine, DbSchedule(engine), rate, sim.port, max_channels=100_000)
        run = asyncio.create_task(connector.run())
        await connector.wait_connected(10)
        loop = asyncio.create_task(dialler.run(0.2, lambda: True))
        t0 = time.monotonic()
        while dialler.originated < n and time.monotonic() - t0 < seconds * 3 + 30:
            await asyncio.sleep(0.5)
        wall = time.monotonic() - t0
        # outcomes still coming in: wait a little for them (not measured)
        deadline = time.monotonic() + 15
        while dialler.live and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await stop(dialler, loop, run)
    finally:
        sim.close()
    ts = sorted(dialler.originate_times)
    start, end = ts[0] + 1.0, ts[-1] - 1.0
    steady = [t for t in ts if start <= t <= end]
    achieved = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    windows = []
    w = start
    while w + 5 <= end:
        windows.append(sum(1 for t in steady if w <= t < w + 5) / 5)
        w += 5
    async with engine.connect() as conn:
        outcomes = dict((await conn.execute(text(
            "SELECT coalesce(outcome, state), count(*) FROM outbound_attempts GROUP BY 1"))).all())
    await engine.dispose()
    out = {"set_rate": rate, "originates": len(ts), "wall_s": wall, "achieved_rate": achieved,
           "deviation_pct": 100 * (achieved - rate) / rate, "window_min": min(windows, default=0),
           "window_max": max(windows, default=0), "outcomes": outcomes, "left_in_flight": len(dialler.live)}
    say(f"rate: set {rate:g}/s, achieved {achieved:.2f}/s ({out['deviation_pct']:+.2f} %) over "
        f"{len(steady)} originates; 5-s windows {out['window_min']:.1f}–{out['window_max']:.1f}/s; "
        f"outcomes {outcomes}")
    return out


# -- 3. restart ---------------------------------------------------------------------------------

async def bench_restart(dbs: Databases, redis_url: str, jobs: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    engine = await fresh(dbs, "bench_outbound_restart")
    now = dt.datetime.now(UTC)
    await seed_jobs(engine, jobs, now, due_now=1000)
    # 20 attempts a crashed process left "dialling" (their channels are gone)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE outbound_jobs SET status = 'dialling', attempts = 1 WHERE id <= 20"))
        for i in range(1, 21):
            await conn.execute(text(
                "INSERT INTO outbound_attempts (id, job_id, seq, state, started_at, channel) "
                "VALUES (:id, :job, 1, 'dialling', :t, '')"),
                {"id": f"ob-{i}-1-{i:08x}", "job": i, "t": now - dt.timedelta(minutes=2)})
    client = aioredis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    sim = Simulator(time_scale=0.2)
    try:
        t0 = time.monotonic()
        schedule = RedisSchedule(client, engine, prefix="bench:restart:")
        dialler, connector = await dialler_for(engine, schedule, 50, sim.port, max_channels=100)
        run = asyncio.create_task(connector.run())
        loop = asyncio.create_task(dialler.run(0.05, lambda: True))
        while dialler.originated == 0 and time.monotonic() - t0 < 60:
            await asyncio.sleep(0.005)
        back = time.monotonic() - t0
        await stop(dialler, loop, run)
    finally:
        sim.close()
    async with engine.connect() as conn:
        unresolved = (await conn.execute(text(
            "SELECT count(*) FROM outbound_attempts WHERE job_id <= 20 AND state <> 'done'"))).scalar_one()
    zcard = sum([await client.zcard(k) for k in schedule.due_keys])
    await client.flushdb()
    await client.aclose()
    await engine.dispose()
    out = {"jobs": jobs, "back_in_service_s": back, "crashed_attempts_unresolved": unresolved,
           "redis_jobs_after": zcard}
    say(f"restart: {jobs:,} jobs, first due job dialled {back:.2f} s after start "
        f"(20 crashed attempts resolved: {20 - unresolved}; {zcard:,} jobs in the Redis schedule)")
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/callcenter-bench"))
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--fetches", type=int, default=2000)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--rate-seconds", type=float, default=60.0)
    p.add_argument("--restart-jobs", type=int, default=100_000)
    p.add_argument("--skip", action="append", default=[], choices=("fetch", "rate", "restart"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    say(f"machine: {machine()}")
    run_dir = services.RunDir()
    redis = services.RedisServer(run_dir).start()
    dbs = Databases(args.database, args.data_dir)
    results: dict[str, Any] = {"machine": machine(), "database": args.database}
    try:
        if "fetch" not in args.skip:
            results["fetch"] = await bench_fetch(dbs, redis.url(0), args.jobs, args.fetches)
        if "rate" not in args.skip:
            results["rate"] = await bench_rate(dbs, args.rate, args.rate_seconds)
        if "restart" not in args.skip:
            results["restart"] = await bench_restart(dbs, redis.url(1), args.restart_jobs)
    finally:
        dbs.close()
        redis.stop()
        run_dir.remove()
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())

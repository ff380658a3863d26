"""Work-order figures of issue 3: search by phone, order number and serial (p99 ≤ 5 ms) and
creating a work order with its number at 50 concurrent agents (p99 ≤ 10 ms), on 1,000,000
customers and 3,000,000 work orders.

One command (seeds on first use and caches the databases under /tmp/callcenter-bench)::

    /tmp/venv/bin/python bench/orders.py --database both --json bench/results/orders.json

What runs: the server is ``callcenter serve`` in its own process (``CALLCENTER_*`` only, the
seeded keys), PostgreSQL (the test suite's cluster, kept between runs) or the SQLite file; this
process is the client. Every request carries a real login session of its own agent.

Search: ``GET /api/orders?phone=|number=|serial=`` for ``--queries`` random seeded customers and
orders (phones in the spellings trunks send: national, +86, 0, 86), one request at a time after
``--warmup`` unmeasured ones; the time is from sending the request to having read the whole
answer. Every query must find its order. "Query alone" runs the same SQL (the product's
``run_search``) in this process, without HTTP, JSON or login; ``--explain`` prints the plans.

Create: ``POST /api/intakes`` with ``create_order`` (the agent's one click: an intake CR… and a
work order WO…, both numbered, one transaction) and ``POST /api/orders`` from an existing intake
(the work order alone). ``--agents`` agents (default 50), each with its own session and
connection: (1) open-loop at ``--rates`` orders/s, arrivals spread at random (Poisson) over
``--create-duration`` s, each sent by the next agent — the latency counts from the moment the
order was due, so queueing is included; (2) agents in a loop (intake + order only): each saves,
thinks (exponential, mean ``--think`` s; ``0`` is the closed-loop worst case: no think time at
all) and saves again, for ``--agent-duration`` s; (3) bursts: every agent saves at the same
instant, ``--bursts`` times. Afterwards the day's numbers must be gap-free and unique.

The server runs as deployed, with its SLA scheduler (a pass every 15 s) unless ``--sla off``;
the scheduler's first pass after the reset raises the seeded backlog of alerts and is waited
for (it is a one-off; the later passes run during the figures). ``--servers N`` runs N server
processes on the same database (agent ``i`` on server ``i mod N``; the scheduler on the first
only, as the Redis pass gate would arrange). ``--worker`` adds one more server process with
``CALLCENTER_INSTANCE_ROLE=worker`` (the AMI session and every background loop; it gets no
agents) and makes the ``--servers`` web instances, all on a Redis the bench starts (the worker
lowers its own priority by ``CALLCENTER_WORKER_NICE``; ``--server-env CALLCENTER_WORKER_NICE=0``
to compare). ``--py-spy PREFIX`` profiles the first web
server; ``--trace-server`` runs the last one under ``_serve_traced.py`` and matches its GC pauses
and loop stalls with the slow saves; ``--server-env CALLCENTER_X=V`` passes more settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(BENCH), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _orders_seed  # noqa: E402
import _seed  # noqa: E402
import screen_pop  # noqa: E402
from _numbers import dialled_spelling, mobile_of  # noqa: E402
from screen_pop import CHILDREN, machine, percentile, product_version  # noqa: E402
from sqlalchemy import delete, func, select, text  # noqa: E402

from callcenter.customers.phones import normalise  # noqa: E402
from callcenter.db.engine import make_engine  # noqa: E402
from callcenter.db.models import Base, WorkOrder  # noqa: E402
from callcenter.orders.search import SearchCriteria, page_query, parse_number  # noqa: E402
from callcenter.orders.search_http import run_search  # noqa: E402
from tests.services import free_port  # noqa: E402

SEARCH_P99_MS = 5.0
CREATE_P99_MS = 10.0
SLA_INTERVAL = 15.0  # the product's default CALLCENTER_SLA_INTERVAL
KINDS = ("phone", "number", "serial")
_WO = re.compile(r"^WO\d{8}-\d{3,}$")


def stats(ms: list[float]) -> dict[str, Any]:
    s = sorted(ms)
    return {"n": len(s), "p50": _ms(percentile(s, 0.50)), "p90": _ms(percentile(s, 0.90)),
            "p99": _ms(percentile(s, 0.99)), "max": _ms(s[-1] if s else None)}


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


# --------------------------------------------------------------------------------------------
# Inputs


async def search_inputs(url: str, sizes: _seed.Sizes, n: int, seed: int) -> dict[str, list[tuple[str, int]]]:
    """``n`` (value, expected order id) per kind, for random seeded orders."""
    rng = random.Random(seed)
    wanted = rng.sample(range(1, sizes.orders + 1), n)
    engine = make_engine(url)
    try:
        async with engine.connect() as c:
            rows = (await c.execute(select(WorkOrder.id, WorkOrder.number, WorkOrder.serial, WorkOrder.customer_id)
                                    .where(WorkOrder.id.in_(wanted)))).all()
    finally:
        await engine.dispose()
    rng.shuffle(rows := list(rows))
    return {
        "phone": [(dialled_spelling(mobile_of(cid), rng), oid) for oid, _, _, cid in rows],
        "number": [(number, oid) for oid, number, _, _ in rows],
        # Typed as printed, or in lower case (the search matches either).
        "serial": [(serial if i % 3 else serial.lower(), oid) for i, (oid, _, serial, _) in enumerate(rows)],
    }


def criteria(kind: str, value: str) -> SearchCriteria:
    if kind == "phone":
        found = normalise(value)
        assert found is not None
        return SearchCriteria(phone_indexes=_seed.bench_vault().indexes(found.number))
    if kind == "number":
        return SearchCriteria(number=parse_number(value))
    return SearchCriteria(serial=value)


# --------------------------------------------------------------------------------------------
# Search


async def search_http(base: str, token: str, inputs: list[tuple[str, int]], kind: str,
                      warmup: int) -> dict[str, Any]:
    lat: list[float] = []
    missed = 0
    async with aiohttp.ClientSession(headers={"Cookie": f"cc_session={token}"},
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        for i, (value, oid) in enumerate(inputs):
            t0 = time.perf_counter()
            async with http.get(f"{base}/api/orders", params={kind: value}) as r:
                body = await r.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status != 200:
                raise RuntimeError(f"search {kind}: HTTP {r.status}: {body[:300]!r}")
            if i < warmup:
                continue
            lat.append(elapsed)
            if oid not in {item["id"] for item in json.loads(body)["items"]}:
                missed += 1
    return {**stats(lat), "missed": missed}


async def search_alone(url: str, inputs: list[tuple[str, int]], kind: str, warmup: int) -> dict[str, Any]:
    engine = make_engine(url)
    lat: list[float] = []
    try:
        async with engine.connect() as conn:
            for i, (value, _) in enumerate(inputs):
                c = criteria(kind, value)
                t0 = time.perf_counter()
                await run_search(conn, c, 1, 20)
                if i >= warmup:
                    lat.append((time.perf_counter() - t0) * 1000)
    finally:
        await engine.dispose()
    return stats(lat)


async def explain(url: str, inputs: dict[str, list[tuple[str, int]]]) -> dict[str, str]:
    engine = make_engine(url)
    plans: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            dialect = engine.dialect.name
            for kind in KINDS:
                stmt = page_query(criteria(kind, inputs[kind][0][0]), dialect, limit=21, offset=0)
                sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
                rows = (await conn.execute(text(prefix + sql))).all()
                plans[kind] = "\n".join(str(r[-1]) for r in rows)
    finally:
        await engine.dispose()
    return plans


# --------------------------------------------------------------------------------------------
# Create


class AgentClients:
    """One HTTP session (own cookie, one connection) per agent; with several servers, agent
    ``i`` talks to server ``i mod n`` (a load balancer with sticky sessions)."""

    def __init__(self, bases: list[str], tokens: list[str]) -> None:
        self.bases = [bases[i % len(bases)] for i in range(len(tokens))]
        self.sessions = [aiohttp.ClientSession(
            headers={"Cookie": f"cc_session={t}"}, cookie_jar=aiohttp.DummyCookieJar(),
            connector=aiohttp.TCPConnector(limit=1)) for t in tokens]

    async def close(self) -> None:
        for s in self.sessions:
            await s.close()

    async def post(self, agent: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        i = agent % len(self.sessions)
        async with self.sessions[i].post(self.bases[i] + path, json=body) as r:
            raw = await r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, {"text": raw[:200].decode(errors="replace")}


def intake_body(cid: int, with_order: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": cid, "phone_id": cid, "appliance_id": cid, "request_type": "维修",
                            "problem": "空调不制冷，外机不转", "urgency": "普通", "mood": "平静", "read_back": True}
    if with_order:
        body["create_order"] = {}
    return body


def order_number(kind: str, status: int, answer: dict[str, Any]) -> str:
    if status not in (200, 201):
        raise RuntimeError(f"{kind}: HTTP {status}: {json.dumps(answer, ensure_ascii=False)[:300]}")
    order = answer.get("order") if "order" in answer else answer
    number = (order or {}).get("number", "")
    if not _WO.match(number):
        raise RuntimeError(f"{kind}: no work-order number in the answer: {json.dumps(answer, ensure_ascii=False)[:300]}")
    return number


class Creator:
    """Sends creations of one kind; the bodies come from random seeded customers."""

    def __init__(self, clients: AgentClients, kind: str, customers: int, seed: int) -> None:
        self.clients, self.kind = clients, kind
        self.rng = random.Random(seed)
        self.customers = customers
        self.intakes: list[int] = []  # for "order": made beforehand, not measured
        self.numbers: list[str] = []
        self.errors: list[str] = []

    async def prepare(self, n: int) -> None:
        if self.kind != "order":
            return
        sem = asyncio.Semaphore(len(self.clients.sessions))

        async def one(i: int) -> None:
            async with sem:
                status, answer = await self.clients.post(i, "/api/intakes", intake_body(self._cid(), False))
                if status not in (200, 201):
                    raise RuntimeError(f"POST /api/intakes: HTTP {status}: {answer}")
                self.intakes.append(answer["intake"]["id"])

        await asyncio.gather(*(one(i) for i in range(n)))

    def _cid(self) -> int:
        return self.rng.randint(1, self.customers)

    async def send(self, agent: int) -> None:
        if self.kind == "order":
            status, answer = await self.clients.post(agent, "/api/orders", {"intake_id": self.intakes.pop()})
        else:
            status, answer = await self.clients.post(agent, "/api/intakes", intake_body(self._cid(), True))
        try:
            self.numbers.append(order_number(self.kind, status, answer))
        except RuntimeError as e:  # counted and shown, the run goes on
            self.errors.append(str(e)[:200])


async def open_loop(creator: Creator, rate: float, duration: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    n_agents = len(creator.clients.sessions)
    due, t = [], 0.0
    while t < duration:
        due.append(t)
        t += rng.expovariate(rate)
    lat: list[float] = []
    t0 = time.perf_counter() + 0.05

    async def one(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
        await creator.send(i % n_agents)
        lat.append((time.perf_counter() - (t0 + at)) * 1000)

    await asyncio.gather(*(one(i, at) for i, at in enumerate(due)))
    return {"mode": f"{rate:g}/s", "rate": rate, **stats(lat), "errors": _take_errors(creator)}


async def agents_loop(creator: Creator, think: float, duration: float, seed: int,
                      trace: Path | None = None) -> dict[str, Any]:
    """Every agent saves, waits a random think time (exponential, mean ``think`` s; 0: none, the
    closed-loop worst case) and saves again, for ``duration`` s. Latency: send to answer. With
    ``trace`` (the server's ``_serve_traced.py`` file), the server's GC pauses and loop stalls
    during the run, and how many of the saves over the target overlapped a stall."""
    n_agents = len(creator.clients.sessions)
    lat: list[float] = []
    spans: list[tuple[int, int]] = []  # monotonic ns of each save, to match with the trace
    end = time.perf_counter() + duration
    window0 = time.monotonic_ns()

    async def agent(a: int) -> None:
        rng = random.Random(seed * 1000 + a)
        await asyncio.sleep(rng.uniform(0, think) if think else 0)  # not all at once
        while time.perf_counter() < end:
            t0, n0 = time.perf_counter(), time.monotonic_ns()
            await creator.send(a)
            lat.append((time.perf_counter() - t0) * 1000)
            spans.append((n0, time.monotonic_ns()))
            if think:
                await asyncio.sleep(rng.expovariate(1 / think))

    t0 = time.perf_counter()
    await asyncio.gather(*(agent(a) for a in range(n_agents)))
    mode = f"think {think:g}s" if think else "closed"
    out = {"mode": mode, "rate": round(len(lat) / (time.perf_counter() - t0), 1), **stats(lat),
           "errors": _take_errors(creator)}
    if trace is not None:
        await asyncio.sleep(1.2)  # the tracer writes once a second
        out["server_trace"] = trace_overlap(trace, window0, time.monotonic_ns(), spans)
    return out


def trace_overlap(trace: Path, t0: int, t1: int, spans: list[tuple[int, int]]) -> dict[str, Any]:
    """The server's GC pauses and loop stalls in ``t0..t1``, and how many saves slower than the
    target overlapped a stall (a stall is recorded when it ends: it covers ``end - lag``)."""
    summary = screen_pop.read_trace(trace, t0, t1)
    stalls: list[tuple[int, int]] = []
    for line in trace.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if "lag" in rec and t0 <= rec["lag"][0] < t1:
                stalls.append((rec["lag"][0] - int(rec["lag"][1] * 1e6) - 10_000_000, rec["lag"][0]))
    slow = [(a, b) for a, b in spans if (b - a) / 1e6 > CREATE_P99_MS]
    hit = sum(1 for a, b in slow if any(s < b and e > a for s, e in stalls))
    summary["slow_saves"] = {"over_target": len(slow), "overlapping_a_stall": hit}
    server_ms = [rec["req"][2] for rec in _trace_lines(trace)
                 if "req" in rec and t0 <= rec["req"][0] < t1 and rec["req"][1] == "POST /api/intakes"]
    summary["server_side_ms"] = stats(server_ms)  # the handler's part of each save
    return summary


def _trace_lines(trace: Path) -> list[dict[str, Any]]:
    out = []
    for line in trace.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


async def bursts(creator: Creator, rounds: int) -> dict[str, Any]:
    n_agents = len(creator.clients.sessions)
    lat: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()

        async def one(agent: int) -> None:
            await creator.send(agent)
            lat.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one(a) for a in range(n_agents)))
        await asyncio.sleep(0.2)
    return {"mode": f"burst x{n_agents}", "rate": None, **stats(lat), "errors": _take_errors(creator)}


def _take_errors(creator: Creator) -> dict[str, Any]:
    errors, creator.errors = creator.errors, []
    return {"count": len(errors), "first": errors[:3]}


async def check_numbers(url: str, numbers: list[str]) -> dict[str, Any]:
    """Every number handed out in this run is unique, and each day's serials are 1..max."""
    engine = make_engine(url)
    out: dict[str, Any] = {"created": len(numbers), "unique": len(set(numbers)) == len(numbers)}
    try:
        async with engine.connect() as c:
            for day in sorted({n[2:10] for n in numbers}):
                serials = sorted(int(n.split("-")[1]) for n in (await c.execute(
                    select(WorkOrder.number).where(WorkOrder.number.like(f"WO{day}-%")))).scalars())
                out[day] = {"orders": len(serials), "gap_free": serials == list(range(1, len(serials) + 1))}
    finally:
        await engine.dispose()
    return out


# --------------------------------------------------------------------------------------------
# A run on one database


async def reset(url: str, seeded_orders: int) -> None:
    """Back to the seeded state: earlier runs' intakes, orders and what hangs off them go; the
    number counters are recomputed from the orders that remain."""
    engine = make_engine(url)
    tables = Base.metadata.tables
    try:
        async with engine.begin() as c:
            for name in ("order_events", "audit_log", "sla_alerts", "appointments", "onsite_records"):
                if name in tables:
                    await c.execute(delete(tables[name]))
            await c.execute(delete(WorkOrder).where(WorkOrder.id > seeded_orders))
            await c.execute(delete(tables["intake_records"]))
            counters = tables["number_counters"]
            await c.execute(delete(counters))
            day = func.substr(WorkOrder.number, 3, 8)
            await c.execute(counters.insert().from_select(
                ["prefix", "day", "last"],
                select(text("'WO'"), day, func.count()).select_from(WorkOrder.__table__).group_by(day)))
    finally:
        await engine.dispose()


async def wait_ready(base: str, token: str, server: Any, log: Path) -> None:
    async with aiohttp.ClientSession(headers={"Cookie": f"cc_session={token}"},
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited ({server.returncode}); see {log}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{base}/api/orders", params={"page_size": "1"}) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"the server did not answer within 180 s; see {log}")


async def bench_database(db: str, args: argparse.Namespace, sizes: _seed.Sizes, data_dir: Path) -> dict[str, Any]:
    print(f"\n=== {db} ===", flush=True)
    pg = None
    if db == "postgresql":
        pg = _seed.BenchPostgres(data_dir / "postgresql")
        CHILDREN.stoppers.append(pg.stop)
        pg.start()
        url, seeded = await _orders_seed.ensure_postgres(pg, sizes)
    else:
        url, seeded = await _orders_seed.ensure_sqlite(data_dir, sizes)
    out: dict[str, Any] = {"database": db, "seed": seeded}
    if args.seed_only:
        return out
    await reset(url, sizes.orders)
    agents, _ = await _seed.prepare_run(url, sizes.agents)
    inputs = await search_inputs(url, sizes, args.queries + args.warmup, seed=7)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}"
    servers, bases = [], []
    redis = run_dir = None
    shared_env = dict(kv.split("=", 1) for kv in args.server_env)
    if args.worker:
        # Web instances and one worker meet in Redis (CALLCENTER_INSTANCE_ROLE).
        from tests import services

        run_dir = services.RunDir()
        redis = services.RedisServer(run_dir).start()
        shared_env["CALLCENTER_REDIS_URL"] = redis.url()
    n = args.servers + (1 if args.worker else 0)
    for i in range(n):
        log = logs / f"orders-server-{db}-{stamp}-{i}.log"
        port = free_port()
        env = dict(shared_env)
        if args.worker:
            # Server 0 is the worker (AMI, SLA scheduler, dispatch loop, …) and gets no agents.
            env["CALLCENTER_INSTANCE_ROLE"] = "worker" if i == 0 else "web"
        # The SLA scheduler on one instance only: with Redis (production) the pass gate lets
        # one instance run each pass; the bench runs no Redis.
        env["CALLCENTER_SLA_INTERVAL"] = str(SLA_INTERVAL if args.sla == "on" and i == 0 else 0)
        trace = logs / f"orders-trace-{db}-{stamp}.jsonl" if args.trace_server and i == n - 1 else None
        if trace is not None:
            args.trace_path = trace
        servers.append((screen_pop.start_server(url, free_port(), port, log, trace, extra_env=env), log))
        bases.append(f"http://127.0.0.1:{port}")
    web_bases = bases[1:] if args.worker else bases
    base = web_bases[0]
    try:
        for (server, log), b in zip(servers, bases, strict=True):
            await wait_ready(b, agents[0].token, server, log)
        out["servers"] = args.servers
        out["worker"] = args.worker
        out["worker_nice"] = (os.getpriority(os.PRIO_PROCESS, servers[0][0].pid) - os.getpriority(os.PRIO_PROCESS, 0)
                              if args.worker else None)  # CALLCENTER_WORKER_NICE, as the worker set it
        out["sla_scheduler"] = args.sla
        if args.sla == "on":
            out["sla_first_pass"] = await wait_first_pass(url)
            print(f"sla: first pass done: {json.dumps(out['sla_first_pass'])}", flush=True)
        out["search"] = {}
        spy = args.py_spy
        web0 = servers[-len(web_bases)][0]  # the first web instance
        with py_spy(web0.pid, spy and spy.with_name(spy.name + "-search.txt")):
            for kind in KINDS:
                http = await search_http(base, agents[0].token, inputs[kind], kind, args.warmup)
                alone = await search_alone(url, inputs[kind], kind, args.warmup)
                out["search"][kind] = {"http": http, "query_alone": alone}
                print(f"search {kind:<7} HTTP p50 {http['p50']:>6} p90 {http['p90']:>6} p99 {http['p99']:>6} "
                      f"max {http['max']:>7} ms (n={http['n']}, missed {http['missed']}) | query alone "
                      f"p50 {alone['p50']} p99 {alone['p99']} ms", flush=True)
        if args.explain:
            out["plans"] = await explain(url, inputs)
            for kind, plan in out["plans"].items():
                print(f"--- plan: {kind}\n{plan}")
        with py_spy(web0.pid, spy and spy.with_name(spy.name + "-create.txt")):
            out["create"] = await bench_create(web_bases, [a.token for a in agents[:args.agents]], sizes, args)
        out["numbers"] = await check_numbers(url, out["create"].pop("numbers"))
        print(f"numbers: {json.dumps(out['numbers'])}", flush=True)
        if args.sla == "on":
            out["sla_alerts_at_end"] = await count_alerts(url)
    finally:
        for server, _ in servers:
            screen_pop.stop_server(server)
        if redis is not None:
            redis.stop()
            run_dir.remove()
        if pg is not None:
            pg.stop()
            CHILDREN.stoppers.remove(pg.stop)
    return out


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None):  # type: ignore[no-untyped-def]
    """``py-spy record`` of the server ``pid`` (raw collapsed stacks in ``out``) while inside."""
    if out is None:
        yield
        return
    import shutil
    import signal
    import subprocess

    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        print(f"py-spy: {out}", flush=True)


async def count_alerts(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as c:
            return int(await c.scalar(text("SELECT count(*) FROM sla_alerts")) or 0)
    finally:
        await engine.dispose()


async def wait_first_pass(url: str) -> dict[str, Any]:
    """The scheduler's first pass after the reset raises the whole seeded backlog (every open
    order is late): a one-off, not the steady state being measured. Wait until the number of
    alerts has stopped moving for 3 s (the later passes, every 15 s, run during the figures)."""
    t0 = time.monotonic()
    last, still = -1, 0.0
    while time.monotonic() - t0 < 600:
        n = await count_alerts(url)
        still = still + 1.0 if n == last and n > 0 else 0.0
        if still >= 3:
            break
        last = n
        await asyncio.sleep(1.0)
    return {"alerts": last, "seconds": round(time.monotonic() - t0, 1)}


async def bench_create(bases: list[str], tokens: list[str], sizes: _seed.Sizes, args: argparse.Namespace) -> dict[str, Any]:
    clients = AgentClients(bases, tokens)
    results: dict[str, Any] = {"runs": [], "numbers": []}
    try:
        probe_status, _ = await clients.post(0, "/api/intakes", {})
        if probe_status == 404:
            print("create: POST /api/intakes is not there yet (slice A): not measured", flush=True)
            results["skipped"] = "POST /api/intakes answered 404"
            return results
        rates = [float(r) for r in args.rates.split(",") if r]
        for kind in ("intake+order", "order"):
            creator = Creator(clients, kind, sizes.customers, seed=11)
            needed = int(sum(r * args.create_duration * 1.3 for r in rates)) + args.bursts * len(tokens) + 100
            await creator.prepare(needed)
            await open_loop(creator, rates[0], 3.0, seed=1)  # warm-up, not reported
            for i, rate in enumerate(rates):
                run = {"kind": kind, **await open_loop(creator, rate, args.create_duration, seed=100 + i)}
                results["runs"].append(run)
                _print_create(run)
            if kind == "intake+order":  # the agent's one click; think time, then none at all
                for i, think in enumerate(float(t) for t in args.think.split(",") if t):
                    run = {"kind": kind, **await agents_loop(creator, think, args.agent_duration, seed=200 + i,
                                                             trace=args.trace_path)}
                    results["runs"].append(run)
                    _print_create(run)
            run = {"kind": kind, **await bursts(creator, args.bursts)}
            results["runs"].append(run)
            _print_create(run)
            results["numbers"] += creator.numbers
    finally:
        await clients.close()
    return results


def _print_create(run: dict[str, Any]) -> None:
    print(f"create {run['kind']:<13} {run['mode']:<10} p50 {run['p50']:>7} p90 {run['p90']:>7} "
          f"p99 {run['p99']:>7} max {run['max']:>8} ms (n={run['n']}, errors {run['errors']['count']})", flush=True)
    if "server_trace" in run:
        print(f"  server: {json.dumps(run['server_trace'])}", flush=True)
    if run["errors"]["count"]:
        print(f"  first errors: {run['errors']['first']}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", choices=("postgresql", "sqlite", "both"), default="postgresql")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=3_000_000)
    ap.add_argument("--agents", type=int, default=50, help="concurrent agents creating orders")
    ap.add_argument("--queries", type=int, default=1000, help="measured searches per kind")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured searches first")
    ap.add_argument("--rates", default="10,25,50", help="open-loop creation rates, orders/s")
    ap.add_argument("--create-duration", type=float, default=20.0, help="seconds per rate")
    ap.add_argument("--bursts", type=int, default=20, help="rounds of every agent saving at once")
    ap.add_argument("--think", default="3,0",
                    help="agents saving in a loop: mean think time(s) between saves, s (0: closed loop)")
    ap.add_argument("--agent-duration", type=float, default=30.0, help="seconds per --think run")
    ap.add_argument("--servers", type=int, default=1, help="server processes (agents spread over them)")
    ap.add_argument("--worker", action="store_true",
                    help="one more server process with CALLCENTER_INSTANCE_ROLE=worker (AMI, SLA scheduler, "
                         "dispatch loop, …; no agents), the --servers as role web; a Redis is started for them")
    ap.add_argument("--sla", choices=("on", "off"), default="on",
                    help=f"the SLA scheduler (a pass every {SLA_INTERVAL:g} s, as deployed) on one server")
    ap.add_argument("--explain", action="store_true", help="print the search plans")
    ap.add_argument("--server-env", action="append", default=[], metavar="CALLCENTER_X=V",
                    help="more settings for the servers (repeatable), e.g. CALLCENTER_DISPATCH_INTERVAL=0")
    ap.add_argument("--trace-server", action="store_true",
                    help="run the first server under bench/_serve_traced.py: its GC pauses and "
                         "event-loop stalls during each --think run, matched with the slow saves")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/callcenter-bench"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seed-only", action="store_true")
    ap.add_argument("--py-spy", type=Path, metavar="PREFIX",
                    help="profile the (first) server with py-spy: PREFIX-search.txt, PREFIX-create.txt")
    return ap.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = _seed.Sizes(args.customers, args.orders, max(args.agents, 50))
    report: dict[str, Any] = {"command": " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
                              "product": product_version(), "sizes": dataclasses.asdict(sizes),
                              "targets_ms": {"search_p99": SEARCH_P99_MS, "create_p99": CREATE_P99_MS},
                              "databases": []}
    m = report["machine"]
    print(f"command: {report['command']}\nmachine: {m['nproc']} cores, {m['cpu_model']}, {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}, load {m['loadavg_at_start']}\nproduct: {report['product']['commit']} "
          f"(+{len(report['product']['uncommitted_product_files'])} uncommitted files)", flush=True)
    for db in (("postgresql", "sqlite") if args.database == "both" else (args.database,)):
        report["databases"].append(await bench_database(db, args, sizes, args.data_dir))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.trace_path = None
    try:
        asyncio.run(amain(args))
    finally:
        CHILDREN.kill_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

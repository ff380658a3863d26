"""The monthly analysis (SA-DA-006, issue 6) over 3,000,000 work orders: target ≤ 10 s on
PostgreSQL.

One command (seeds on first use and caches the database under /tmp/callcenter-bench)::

    /tmp/venv/bin/python bench/monthly_report.py --json bench/results/monthly_report.json

What is measured: ``callcenter.analysis.monthly.monthly_report`` — every figure, breakdown and
chart series of the page and the API — for the last complete month of the seeded data, on one
connection of the product's engine, ``--runs`` times (the first run is reported apart: it reads
the month's pages into the cache). Each SQL statement's time is recorded too; ``--explain``
prints their plans (EXPLAIN ANALYZE). The XLSX export of the same report is timed separately.

The data: ``_orders_seed``'s 1,000,000 customers and 3,000,000 orders over three years (about
2,700 a day, so about 82,000 in the measured month), plus what the report reads and the orders
benchmark does not need, generated here: the milestones (plan, service start, survey, a 6 %
share of dissatisfied surveys) and, for on-site orders completed in the last ``ONSITE_DAYS``
days, their on-site records (one visit, 15 % two) with fee items and, on 40 % of them, a part
line; and survey forms (SA-CS-005) for the orders surveyed in those days (``top_up_surveys``).
Older orders have no on-site records: the report reads on-site records only for the
month's orders (by ``order_id``), so their absence elsewhere changes nothing it does. The
database is its own (``monthly_<sizes>_v<N>`` in the cluster under ``--data-dir``), keyed by the
sizes and ``SEED_VERSION``; a reused seed is first migrated in place to the current migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import random
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(BENCH), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _orders_seed  # noqa: E402
import _seed  # noqa: E402
from screen_pop import machine, product_version  # noqa: E402
from sqlalchemy import DateTime, bindparam, event, insert, text  # noqa: E402

from callcenter.analysis.export import to_xlsx  # noqa: E402
from callcenter.analysis.metrics import previous_month  # noqa: E402
from callcenter.analysis.monthly import monthly_report  # noqa: E402
from callcenter.db.engine import make_engine, migrate  # noqa: E402
from callcenter.db.stock import Part, StockLocation  # noqa: E402
from callcenter.db.survey import SCORE_COLUMNS  # noqa: E402
from callcenter.settings import Settings  # noqa: E402

TARGET_S = 10.0
SEED_VERSION = 1  # bump when the generated milestones or on-site records change
ONSITE_DAYS = 120
ONSITE_KINDS = ("上门维修", "安装", "退换货")
PART_PRICES = (1500, 4500, 12000, 38000)
EXTRA_COLUMNS = ("planned_at", "service_started_at", "surveyed_at", "dissatisfied_at")
ONSITE_COLUMNS = ("id", "number", "order_id", "engineer_id", "started_at", "ended_at", "product_model", "serial",
                  "fault_observed", "root_cause", "solution", "test_result", "customer_feedback", "in_warranty",
                  "category", "fee_items", "visit_fee_fen", "labour_fee_fen", "parts_total_fen", "total_fen",
                  "customer_confirmed", "customer_signature", "engineer_signature", "signed_at", "created_at",
                  "version")
LINE_COLUMNS = ("id", "onsite_id", "part_id", "location_id", "quantity", "unit_price_fen", "free", "total_fen",
                "created_at")
_I = {name: i for i, name in enumerate(_orders_seed.ORDER_COLUMNS)}


class Extras:
    """Adds the milestones to each seeded order and remembers the recent on-site ones."""

    def __init__(self, now: dt.datetime) -> None:
        self.rng = random.Random(9)
        self.since = now - dt.timedelta(days=ONSITE_DAYS)
        self.onsite: list[tuple[int, int, dt.datetime, dt.datetime, str, str, bool]] = []

    def orders(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        rng = self.rng
        for r in rows:
            status, kind, created, completed = r[_I["status"]], r[_I["service_type"]], r[_I["created_at"]], r[_I["completed_at"]]
            planned = started = surveyed = unhappy = None
            if status not in ("待处理", "已取消"):
                planned = created + dt.timedelta(minutes=rng.randint(5, 240))
            if kind in ONSITE_KINDS and status in ("服务中", "待件", "已完成", "已回访"):
                span = (completed - created) if completed else dt.timedelta(hours=48)
                started = created + span * rng.uniform(0.3, 0.9)
            if status == "已回访" and completed is not None:
                surveyed = completed + dt.timedelta(hours=rng.randint(1, 30))
                if rng.random() < 0.06:
                    unhappy = surveyed + dt.timedelta(minutes=1)
            if (completed is not None and completed >= self.since and kind in ONSITE_KINDS
                    and r[_I["engineer_id"]] is not None):
                self.onsite.append((r[_I["id"]], r[_I["engineer_id"]], started or created, completed,
                                    r[_I["product_model"]], r[_I["serial"]], r[_I["warranty"]] == "保内"))
            yield (*r, planned, started, surveyed, unhappy)

    def onsite_rows(self, json_as_text: bool) -> Iterator[tuple]:
        rng = random.Random(10)
        rid = 0
        self.lines: list[tuple] = []
        for oid, eng, started, completed, model, serial, free in self.onsite:
            visits = 2 if rng.random() < 0.15 else 1
            for k in range(visits):
                rid += 1
                at = started + (completed - started) * (k / visits)
                fees: list[dict[str, Any]] = [{"price_item_id": None, "kind": "上门费", "name": "上门检测",
                                               "amount_fen": 5000, "quantity": 1}]
                if rng.random() < 0.5:
                    fees.append({"price_item_id": None, "kind": "工时费", "name": "检修", "amount_fen": 8000,
                                 "quantity": 1})
                listed = sum(f["amount_fen"] for f in fees)
                parts = 0
                if rng.random() < 0.4:
                    qty, price = rng.randint(1, 2), rng.choice(PART_PRICES)
                    parts = qty * price
                    self.lines.append((len(self.lines) + 1, rid, 1, 1, qty, price, free, 0 if free else parts, at))
                charged = 0 if free else listed + parts
                fee_items = json.dumps(fees, ensure_ascii=False) if json_as_text else fees
                yield (rid, f"OS{oid:09d}-{k + 1}", oid, eng, at, at + dt.timedelta(hours=1), model, serial,
                       "故障", "实测", "更换", "正常", "", free, "", fee_items, 0 if free else 5000,
                       0 if free else listed - 5000, 0 if free else parts, charged, True, "客户", "工程师",
                       at + dt.timedelta(hours=1), at, 1)

    def line_rows(self) -> Iterator[tuple]:
        yield from self.lines


def _sources(sizes: _seed.Sizes, now: dt.datetime, engineers: list[int], agents: list[int],
             json_as_text: bool) -> Iterator[tuple[str, tuple[str, ...], Iterator[tuple]]]:
    extras = Extras(now)
    for table, columns, rows in _orders_seed._sources(sizes, now, engineers, agents):
        if table == "work_orders":
            yield table, columns + EXTRA_COLUMNS, extras.orders(rows)
        else:
            yield table, columns, rows
    yield "onsite_records", ONSITE_COLUMNS, extras.onsite_rows(json_as_text)
    yield "onsite_part_lines", LINE_COLUMNS, extras.line_rows()


async def _schema(url: str, sizes: _seed.Sizes) -> tuple[dt.datetime, list[int], list[int]]:
    now, engineers, agents = await _orders_seed._schema_and_users(url, sizes)
    engine = make_engine(url)
    try:
        async with engine.begin() as c:  # the one part and store every seeded line points at (ids 1)
            await c.execute(insert(Part).values(id=1, code="BENCH-1", name="压缩机电容", unit_price_fen=1500))
            await c.execute(insert(StockLocation).values(id=1, code="BENCH-PJK", name="配件库", kind="warehouse",
                                                         warehouse_type="配件库"))
    finally:
        await engine.dispose()
    return now, engineers, agents


def _tag(sizes: _seed.Sizes) -> str:
    return f"monthly_{sizes.tag}_v{SEED_VERSION}"


async def ensure(sizes: _seed.Sizes, pg: _seed.BenchPostgres | None, data_dir: Path) -> tuple[str, dict[str, Any]]:
    """The URL of the seeded database (PostgreSQL on ``pg``, else a SQLite file under
    ``data_dir``) and its marker; seeded first unless a marker with the same sizes, version
    and migrations says it is complete."""
    name = _tag(sizes)
    if pg is not None:
        marker, url = pg.dir / f"seeded-{name}.json", pg.url(name)
        present = pg.database_exists(name)
    else:
        path = data_dir / "sqlite" / f"{name}.sqlite3"
        marker, url, present = path.with_suffix(".seeded.json"), f"sqlite+aiosqlite:///{path}", path.exists()
    if present and (found := await _migrated(marker, sizes, url)) is not None:
        _seed._say(f"seed: reusing {name} (seeded in {found['seconds']} s)")
        return url, found
    marker.unlink(missing_ok=True)
    if pg is not None:
        pg.drop_database(name)
        pg.create_database(name)
    else:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    now, engineers, agents = await _schema(url, sizes)
    sources = _sources(sizes, now, engineers, agents, json_as_text=pg is not None)
    if pg is not None:
        per_table = await _orders_seed._load_postgres(pg, name, sources)
        size_mib = int(pg.psql(f"SELECT pg_database_size('{name}')")) / 2**20
    else:
        per_table = _orders_seed._load_sqlite(path, sources)
        size_mib = path.stat().st_size / 2**20
    seconds = time.monotonic() - t0
    _seed._write_marker(marker, sizes, seconds, per_table)
    _orders_seed._report("PostgreSQL" if pg is not None else "SQLite", sizes, seconds, per_table, size_mib)
    return url, _seed._read_marker(marker, sizes) or {}


async def _migrated(marker: Path, sizes: _seed.Sizes, url: str) -> dict[str, Any] | None:
    """The marker of a complete seed of the same sizes and version, after bringing the database
    up to the current migrations in place (``migrate`` is a no-op when it is already there; new
    columns and indexes are built on the loaded rows, as the loader builds them anyway) instead
    of seeding 3,000,000 orders again. None if there is no such seed."""
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if data.get("sizes") != dataclasses.asdict(sizes) or data.get("version") != _seed.SEED_VERSION:
        return None
    engine = make_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    schema = _seed.schema_fingerprint()
    if data.get("schema") != schema:
        data["migrated_from"] = [*data.get("migrated_from", []), data.get("schema")]
        data["schema"] = schema
        marker.write_text(json.dumps(data, indent=1))
    return data


async def top_up_surveys(url: str) -> int:
    """Survey forms (SA-CS-005, ``survey_results``, added by issue 5 after the first seeds) for
    the orders surveyed in the last ``ONSITE_DAYS`` days, if the table is still empty: one form
    per order at its ``surveyed_at``, scores 2 where the order is dissatisfied, else 4 or 5. One
    ``INSERT … SELECT`` in the database; returns the rows added (0 when already there)."""
    since = await seeded_now(url) - dt.timedelta(days=ONSITE_DAYS)
    score = "CASE WHEN w.dissatisfied_at IS NOT NULL THEN 2 ELSE 4 + w.id % 2 END"
    engine = make_engine(url)
    try:
        async with engine.begin() as c:
            if (await c.execute(text("SELECT 1 FROM survey_results LIMIT 1"))).first() is not None:
                return 0
            cols = ", ".join(SCORE_COLUMNS)
            added = await c.execute(text(
                f"INSERT INTO survey_results (number, order_id, engineer_id, customer_id, channel, answered_at, "
                f"{cols}, comment, created_at) SELECT 'CS' || CAST(w.id AS VARCHAR(20)), w.id, w.engineer_id, "
                f"w.customer_id, 'phone-ivr', w.surveyed_at, {', '.join([score] * len(SCORE_COLUMNS))}, '', "
                "w.surveyed_at FROM work_orders w WHERE w.surveyed_at >= :since"
            ).bindparams(bindparam("since", since, type_=DateTime(timezone=True))))
            n = added.rowcount
        if engine.dialect.name == "postgresql":
            async with engine.connect() as c:
                await c.execution_options(isolation_level="AUTOCOMMIT")
                await c.execute(text("VACUUM ANALYZE survey_results"))
    finally:
        await engine.dispose()
    _seed._say(f"seed: {n:,} survey forms added (orders surveyed since {since:%Y-%m-%d})")
    return n


async def seeded_now(url: str) -> dt.datetime:
    engine = make_engine(url)
    try:
        async with engine.connect() as c:
            latest = (await c.execute(text("SELECT max(created_at) FROM work_orders"))).scalar_one()
    finally:
        await engine.dispose()
    if isinstance(latest, str):  # SQLite through text()
        latest = dt.datetime.fromisoformat(latest)
    return (latest if latest.tzinfo else latest.replace(tzinfo=dt.UTC)) + dt.timedelta(days=1)


async def measure(url: str, month: str, runs: int, explain: bool) -> dict[str, Any]:
    settings = Settings()
    engine = make_engine(url)
    statements: list[tuple[str, Any, float]] = []
    started: dict[int, float] = {}

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        started[id(context)] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, params, time.perf_counter() - started.pop(id(context), time.perf_counter())))

    out: dict[str, Any] = {"month": month, "runs_s": []}
    try:
        report = None
        for i in range(runs):
            statements.clear()
            async with engine.connect() as c:
                t0 = time.perf_counter()
                report = await monthly_report(c, settings, month, dt.datetime.now(dt.UTC))
                elapsed = time.perf_counter() - t0
            out["runs_s"].append(round(elapsed, 3))
            print(f"  run {i + 1}: {elapsed:.2f} s ({len(statements)} statements)", flush=True)
            if i == runs - 1:
                out["statements_s"] = [{"sql": " ".join(s.split())[:90], "s": round(t, 3)} for s, _, t in statements]
        assert report is not None
        out["orders_in_month"] = {"created": report.total.created, "completed": report.total.completed,
                                  "surveyed": report.total.surveyed}
        t0 = time.perf_counter()
        xlsx = to_xlsx(report)
        out["xlsx_s"] = round(time.perf_counter() - t0, 3)
        out["xlsx_bytes"] = len(xlsx)
        out["figures"] = report.total.figures()
        if explain and engine.dialect.name == "postgresql":
            done = list(statements)
            async with engine.connect() as c:
                for sql, params, _ in done:
                    plan = await c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    print("\n" + "\n".join(r[0] for r in plan), flush=True)
    finally:
        await engine.dispose()
    later = out["runs_s"][1:] or out["runs_s"]
    out["first_s"], out["median_s"], out["max_s"] = out["runs_s"][0], statistics.median(later), max(out["runs_s"])
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", choices=("postgresql", "sqlite", "both"), default="postgresql")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--month", help="YYYY-MM (default: the last complete month of the seeded data)")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/callcenter-bench"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seed-only", action="store_true")
    return ap.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = _seed.Sizes(args.customers, args.orders, 50)
    result: dict[str, Any] = {"command": " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
                              "product": product_version(), "sizes": dataclasses.asdict(sizes),
                              "target_s": TARGET_S, "databases": []}
    m = result["machine"]
    print(f"command: {result['command']}\nmachine: {m['nproc']} cores, {m['cpu_model']}, {m['ram_gib']} GiB RAM, "
          f"load {m['loadavg_at_start']}", flush=True)
    for db in (("postgresql", "sqlite") if args.database == "both" else (args.database,)):
        print(f"\n=== {db} ===", flush=True)
        pg = None
        if db == "postgresql":
            pg = _seed.BenchPostgres(args.data_dir / "postgresql-monthly")
            pg.start()
        try:
            url, seeded = await ensure(sizes, pg, args.data_dir)
            entry: dict[str, Any] = {"database": db, "seed": seeded, "surveys_added": await top_up_surveys(url)}
            if not args.seed_only:
                month = args.month or previous_month(await seeded_now(url), Settings().tz)
                entry.update(await measure(url, month, args.runs, args.explain))
                verdict = "OK" if entry["max_s"] <= TARGET_S else "OVER TARGET"
                print(f"  {db}: month {month}, first {entry['first_s']:.2f} s, median {entry['median_s']:.2f} s, "
                      f"max {entry['max_s']:.2f} s (target ≤ {TARGET_S:g} s: {verdict}); "
                      f"xlsx {entry['xlsx_s']:.2f} s", flush=True)
            result["databases"].append(entry)
        finally:
            if pg is not None:
                pg.stop()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return result


def main(argv: list[str] | None = None) -> int:
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

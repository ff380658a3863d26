"""Seeding for the work-order benchmark (bench/orders.py): 1,000,000 customers with sealed
phones, 3,000,000 work orders with real-looking numbers, models, serials and engineers.

Customers, phones (sealed with the fixed benchmark keys, ``_seed.KEY_ENV``), addresses and
appliances come from ``_seed.customer_rows`` — the screen-pop benchmark's data. Work orders are
generated here, day by day over three years, so every day's numbers run ``WO20251124-001``,
``-002`` … gap-free as ``callcenter.orders.numbering`` hands them out, and each order carries
its customer's appliance model and serial (searched by serial) and, once dispatched, one of the
engineers. The schema is the product's (``migrate``), so the indexes are the ones measured.

Loaded like ``_seed``: asyncpg ``COPY`` then ``setval``/``ANALYZE`` on PostgreSQL; stdlib
``executemany`` in 100,000-row transactions with SQLAlchemy's bind processors on SQLite.
Cached under the data folder, keyed by the sizes, ``ORDERS_SEED_VERSION`` and the migrations.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

import _seed
from callcenter.db.engine import make_engine
from callcenter.db.models import Base, User
from callcenter.demo import PROBLEMS
from callcenter.orders.numbering import format_number

ORDERS_SEED_VERSION = 2  # bump when the generated orders change
# A working centre: orders of the last two weeks are often still open (40 %), older ones rarely
# (0.2 %: stragglers, all late); completed orders older than that were surveyed (已回访). Version 1
# left 2 % of three years' orders open and half of the closed ones 已完成 (never surveyed):
# ~1.4 million running survey clocks, 3.1 million SLA alerts on the first pass and every later
# pass re-reading them — a state no centre is in, which swamped the server being measured.
RECENT_DAYS = 14
OLD_CLOSED = tuple("已回访" if s == "已完成" else s for s in _seed.STATUSES_CLOSED)
ENGINEERS = 300
DAYS = 3 * 365
TZ = ZoneInfo("Asia/Shanghai")  # the server's default CALLCENTER_TIMEZONE: numbers use its days
WARRANTY = ("保内", "保内", "保外")

ORDER_COLUMNS = ("id", "number", "customer_id", "appliance_id", "address_id", "product_model", "serial",
                 "warranty", "service_type", "status", "urgency", "problem", "engineer_id",
                 "created_by", "created_at", "updated_at", "completed_at", "dispatched_at")


def staff_no(i: int) -> str:
    """Engineer ``i`` (1-based)'s staff number."""
    return f"GY{2024000 + i}"


class Products:
    """Model and serial of each seeded appliance (id = customer id), recorded while the
    appliances are loaded, so each order can carry its customer's."""

    def __init__(self, n: int) -> None:
        self.model: list[str] = [""] * (n + 1)
        self.serial: list[str] = [""] * (n + 1)

    def record(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        for r in rows:
            self.model[r[0]], self.serial[r[0]] = r[4], r[5]
            yield r


def order_rows(n_orders: int, n_customers: int, now: dt.datetime, products: Products,
               engineer_ids: list[int], agent_ids: list[int], counters: dict[str, int]) -> Iterator[tuple]:
    """``n_orders`` orders over the ``DAYS`` days up to ``now``'s, the same number each day, in
    time order (ids grow with time, as they do in the product); numbers gap-free per day, the
    last serial of each day left in ``counters`` (for ``number_counters``)."""
    rng = random.Random(5)
    per_day, extra = divmod(n_orders, DAYS)
    today = now.astimezone(TZ).date()
    oid = 0
    for d in range(DAYS, 0, -1):  # the centre's local days, oldest first, up to yesterday
        day = dt.datetime.combine(today - dt.timedelta(days=d), dt.time(), TZ)
        k = per_day + (1 if d <= extra else 0)
        times = sorted((day + dt.timedelta(seconds=rng.randrange(86400))).astimezone(dt.UTC)
                       for _ in range(k))
        recent = d <= RECENT_DAYS
        p_open = 0.4 if recent else 0.002
        counters[f"{day:%Y%m%d}"] = k
        for serial_no, created in enumerate(times, start=1):
            oid += 1
            cid = rng.randint(1, n_customers)
            if rng.random() < p_open:
                status, completed = rng.choice(_seed.STATUSES_OPEN), None
            else:
                status = rng.choice(_seed.STATUSES_CLOSED if recent else OLD_CLOSED)
                completed = None if status == "已取消" else created + dt.timedelta(hours=rng.randint(4, 96))
            dispatched = None if status == "待处理" else created + dt.timedelta(minutes=rng.randint(1, 30))
            engineer = None if dispatched is None else rng.choice(engineer_ids)
            yield (oid, format_number("WO", f"{day:%Y%m%d}", serial_no), cid, cid, cid,
                   products.model[cid], products.serial[cid], rng.choice(WARRANTY),
                   rng.choice(_seed.SERVICE_TYPES), status, rng.choice(_seed.URGENCIES),
                   rng.choice(PROBLEMS), engineer, rng.choice(agent_ids), created,
                   completed or dispatched or created, completed, dispatched)


def _sources(sizes: _seed.Sizes, now: dt.datetime, engineer_ids: list[int],
             agent_ids: list[int]) -> Iterator[tuple[str, tuple[str, ...], Iterator[tuple]]]:
    """(table, columns, rows) in load order; the orders read what the appliances recorded."""
    products = Products(sizes.customers)
    rows = _seed.customer_rows(sizes.customers, now)
    for table in ("customers", "customer_phones", "addresses", "appliances"):
        source = products.record(rows[table]) if table == "appliances" else rows[table]
        yield table, _seed.COLUMNS[table], source
    counters: dict[str, int] = {}
    yield "work_orders", ORDER_COLUMNS, order_rows(sizes.orders, sizes.customers, now, products,
                                                   engineer_ids, agent_ids, counters)
    # Where numbering continues from (else today's first new order would get serial 001 again).
    yield "number_counters", ("prefix", "day", "last"), (("WO", d, k) for d, k in counters.items())


async def _schema_and_users(url: str, sizes: _seed.Sizes) -> tuple[dt.datetime, list[int], list[int]]:
    """The product's schema, the agents (``_seed``) and the engineers; their ids."""
    from sqlalchemy import select

    now = await _seed._schema_and_agents(url, sizes)
    engine = make_engine(url)
    try:
        async with engine.begin() as c:
            pw = (await c.execute(select(User.password_hash).limit(1))).scalar_one()
            await c.execute(insert(User), [
                {"username": f"eng{i:04d}", "display_name": f"工程师{i:04d}", "password_hash": pw,
                 "role": "engineer", "active": True, "created_at": now, "staff_no": staff_no(i)}
                for i in range(1, ENGINEERS + 1)])
            users = (await c.execute(select(User.id, User.role))).all()
    finally:
        await engine.dispose()
    return (now, [uid for uid, role in users if role == "engineer"],
            [uid for uid, role in users if role == "agent"])


def _tag(sizes: _seed.Sizes) -> str:
    return f"orders_{sizes.tag}_v{ORDERS_SEED_VERSION}"


def _report(db: str, sizes: _seed.Sizes, seconds: float, per_table: dict[str, float], size_mib: float) -> None:
    _seed._say(f"seed: {db} {sizes.customers:,} customers, {sizes.orders:,} orders in {seconds:.1f} s "
               f"({', '.join(f'{k} {v:.1f} s' for k, v in per_table.items())}); {size_mib:.0f} MiB")


# --------------------------------------------------------------------------------------------
# PostgreSQL


async def ensure_postgres(pg: _seed.BenchPostgres, sizes: _seed.Sizes) -> tuple[str, dict[str, Any]]:
    """The URL of a database seeded for ``sizes`` on the running cluster ``pg`` (reused if its
    marker matches) and the marker."""
    name = _tag(sizes)
    marker = pg.dir / f"seeded-{name}.json"
    found = _seed._read_marker(marker, sizes)
    if found is not None and pg.database_exists(name):
        _seed._say(f"seed: reusing PostgreSQL database {name} (seeded in {found['seconds']} s)")
        return pg.url(name), found
    marker.unlink(missing_ok=True)
    pg.drop_database(name)
    pg.create_database(name)
    url = pg.url(name)
    t0 = time.monotonic()
    now, engineers, agents = await _schema_and_users(url, sizes)
    per_table = await _load_postgres(pg, name, _sources(sizes, now, engineers, agents))
    seconds = time.monotonic() - t0
    _seed._write_marker(marker, sizes, seconds, per_table)
    _report("PostgreSQL", sizes, seconds, per_table, int(pg.psql(f"SELECT pg_database_size('{name}')")) / 2**20)
    return url, _seed._read_marker(marker, sizes) or {}


async def _load_postgres(pg: _seed.BenchPostgres, name: str, sources) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import asyncpg

    con = await asyncpg.connect(user=pg.user, database=name, host=str(pg.socket_dir), port=pg.port)
    per_table: dict[str, float] = {}
    try:
        for table, columns, rows in sources:
            t = time.monotonic()
            # Indexes built once after the load instead of row by row (3,000,000 orders into a
            # dozen indexes on 2 cores took minutes); the same definitions, so the same schema.
            # Those behind constraints (primary key, unique) stay.
            indexes = await con.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)", table)
            for ix in indexes:
                await con.execute(f'DROP INDEX "{ix["indexname"]}"')
            for batch in _seed._batches(rows):
                await con.copy_records_to_table(table, records=batch, columns=list(columns))
            for ix in indexes:
                await con.execute(ix["indexdef"])
            if "id" in columns:
                await con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))")
            per_table[table] = time.monotonic() - t
            _seed._say(f"seed:   {table} {per_table[table]:.1f} s")
        t = time.monotonic()
        await con.execute("VACUUM ANALYZE")
        await con.execute("CHECKPOINT")
        per_table["vacuum_analyze"] = time.monotonic() - t
    finally:
        await con.close()
    return per_table


# --------------------------------------------------------------------------------------------
# SQLite


async def ensure_sqlite(data_dir: Path, sizes: _seed.Sizes) -> tuple[str, dict[str, Any]]:
    """The URL of a SQLite file seeded for ``sizes`` (reused if its marker matches)."""
    path = data_dir / "sqlite" / f"{_tag(sizes)}.sqlite3"
    marker = path.with_suffix(".seeded.json")
    url = f"sqlite+aiosqlite:///{path}"
    found = _seed._read_marker(marker, sizes)
    if found is not None and path.exists():
        _seed._say(f"seed: reusing {path} (seeded in {found['seconds']} s)")
        return url, found
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), marker):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    now, engineers, agents = await _schema_and_users(url, sizes)
    per_table = _load_sqlite(path, _sources(sizes, now, engineers, agents))
    seconds = time.monotonic() - t0
    _seed._write_marker(marker, sizes, seconds, per_table)
    _report("SQLite", sizes, seconds, per_table, path.stat().st_size / 2**20)
    return url, _seed._read_marker(marker, sizes) or {}


def _converters(table: str, columns: tuple[str, ...]) -> list[tuple[int, Callable[[Any], Any]]]:
    """SQLAlchemy's own bind processors (datetimes, dates) by column position."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    dialect = sqlite_dialect.dialect()
    cols = Base.metadata.tables[table].c
    procs = [cols[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    return [(k, f) for k, f in enumerate(procs) if f is not None]


def _load_sqlite(path: Path, sources) -> dict[str, float]:  # type: ignore[no-untyped-def]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1048576")  # 1 GiB page cache while loading
    per_table: dict[str, float] = {}
    try:
        for table, columns, rows in sources:
            t = time.monotonic()
            conv = _converters(table, columns)
            # As on PostgreSQL: the table's own indexes (not the automatic ones of its unique
            # constraints) are dropped during the load and made again from their definitions.
            indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                  "AND sql IS NOT NULL", (table,)).fetchall()
            for name, _ in indexes:
                con.execute(f'DROP INDEX "{name}"')
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for batch in _seed._batches(rows):
                out = []
                for r in batch:
                    r = list(r)
                    for k, f in conv:
                        if r[k] is not None:
                            r[k] = f(r[k])
                    out.append(r)
                con.execute("BEGIN")
                con.executemany(sql, out)
                con.execute("COMMIT")
            for _, ddl in indexes:
                con.execute(ddl)
            per_table[table] = time.monotonic() - t
            _seed._say(f"seed:   {table} {per_table[table]:.1f} s")
        t = time.monotonic()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        per_table["checkpoint"] = time.monotonic() - t
    finally:
        con.close()
    return per_table

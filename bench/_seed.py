"""Seeding for the screen-pop benchmark: customers, work orders and agents, fast, cached.

The schema always comes from ``callcenter.db.engine.migrate``, so the tables and indexes are the
product's. Rows then go in by the fastest honest route for each database:

- SQLite: the stdlib ``sqlite3`` module, ``executemany`` in 100,000-row batches, values
  converted by SQLAlchemy's own bind processors (so the stored text is byte-for-byte what the
  ORM writes and reads back), ``synchronous=OFF`` during the load only;
- PostgreSQL: ``COPY`` through asyncpg's ``copy_records_to_table``, then the id sequences moved
  past the seeded ids and ``ANALYZE`` (what autovacuum would do shortly after a bulk load).

Agents get ONE precomputed argon2 hash (``AuthService.add_user`` would hash 1000 times, ~1 min)
and, for each run, a fresh login session inserted directly (its SHA-256 in ``login_sessions``,
the token in the cookie — exactly what ``POST /api/session`` stores), so 1000 logins do not cost
the server 1000 argon2 verifications before the measurement.

Phone numbers are sealed with fixed benchmark keys (``KEY_ENV``; the server under test gets the
same ones through its environment), so the seeded blind indexes match the callers.

A database is reused when its marker (``<file>.seeded.json`` for SQLite, ``seeded-<db>.json``
beside the PostgreSQL cluster) says it was seeded completely with the same sizes.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import os
import pwd
import random
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, text

from callcenter.crypto import PhoneVault
from callcenter.customers.phones import normalise
from callcenter.db.engine import make_engine, migrate
from callcenter.db.models import Call, LoginSession, User
from callcenter.demo import DISTRICTS, GIVEN, PRODUCTS, PROBLEMS, SURNAMES

from _numbers import mobile_of

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests import services  # noqa: E402  (the test suite's PostgreSQL cluster manager)

BATCH = 100_000
AGENT_PASSWORD = "bench-agent-pw"
SEED_VERSION = 2  # bump when the generated data changes: cached databases are then reseeded

STATUSES_OPEN = ("待处理", "已派单", "已预约", "服务中", "待件")
STATUSES_CLOSED = ("已完成", "已完成", "已完成", "已回访", "已回访", "已取消")
SERVICE_TYPES = ("上门维修",) * 14 + ("远程支持",) * 2 + ("安装",) * 3 + ("退换货",)
URGENCIES = ("普通",) * 8 + ("紧急", "特急")
REMARKS = ("", "", "", "", "", "", "老客户，态度友好", "上次上门师傅迟到，已投诉", "白天上班，晚上7点后联系",
           "备用电话 13912345678")


def _bench_key(kid: str) -> str:
    """A fixed, public key: benchmark data only."""
    return f"{kid}:{base64.b64encode(hashlib.sha256(b'callcenter-bench-' + kid.encode()).digest()).decode()}"


# The phone keys of the seeded data, for the server under test (CALLCENTER_* environment).
KEY_ENV = {"CALLCENTER_DATA_KEYS": _bench_key("bd1"), "CALLCENTER_INDEX_KEYS": _bench_key("bi1")}


@functools.cache
def bench_vault() -> PhoneVault:
    return PhoneVault.from_specs(KEY_ENV["CALLCENTER_DATA_KEYS"], KEY_ENV["CALLCENTER_INDEX_KEYS"])


@dataclass(frozen=True, slots=True)
class Sizes:
    customers: int
    orders: int
    agents: int

    @property
    def tag(self) -> str:
        return f"c{self.customers}_o{self.orders}_a{self.agents}"


def extension_of(i: int) -> str:
    """Agent ``i`` (1-based) has extension 8001, 8002, … (MemberName in the queue)."""
    return str(8000 + i)


# --------------------------------------------------------------------------------------------
# Rows (plain tuples, column order as in COLUMNS)

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "name", "level", "remarks", "created_at"),
    "customer_phones": ("id", "customer_id", "number_index", "number_enc", "masked", "kind"),
    "addresses": ("id", "customer_id", "province", "city", "district", "detail", "lat", "lon"),
    "appliances": ("id", "customer_id", "category", "brand", "model", "serial", "purchase_date",
                   "warranty_months"),
    "work_orders": ("id", "number", "customer_id", "appliance_id", "service_type", "status",
                    "urgency", "problem", "created_at", "completed_at"),
}


def customer_rows(n: int, now: dt.datetime) -> dict[str, Iterator[tuple]]:
    """One customer per id 1..n with one mobile, one address and one appliance (same id)."""
    def customers() -> Iterator[tuple]:
        rng = random.Random(1)
        for i in range(1, n + 1):
            yield (i, rng.choice(SURNAMES) + rng.choice(GIVEN), "VIP" if rng.random() < 0.05 else "",
                   rng.choice(REMARKS), now - dt.timedelta(days=rng.randint(1, 1500)))

    def phones() -> Iterator[tuple]:
        vault = bench_vault()
        for i in range(1, n + 1):
            sealed = vault.seal(mobile_of(i))
            yield (i, i, sealed.index, sealed.enc, sealed.masked, "mobile")

    def addresses() -> Iterator[tuple]:
        rng = random.Random(2)
        for i in range(1, n + 1):
            prov, city, dist = rng.choice(DISTRICTS)
            yield (i, i, prov, city, dist,
                   f"幸福路{rng.randint(1, 300)}号{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室", None, None)

    def appliances() -> Iterator[tuple]:
        rng = random.Random(3)
        for i in range(1, n + 1):
            cat, brand, model, months = rng.choice(PRODUCTS)
            yield (i, i, cat, brand, model, f"SN{rng.randrange(10**9, 10**10)}",
                   (now - dt.timedelta(days=rng.randint(20, 1500))).date(), months)

    return {"customers": customers(), "customer_phones": phones(), "addresses": addresses(),
            "appliances": appliances()}


def order_rows(n_orders: int, n_customers: int, now: dt.datetime) -> Iterator[tuple]:
    """Orders spread uniformly over customers (about 3 each at full size), created over three
    years; an order of the last 60 days is open with probability 0.4, an older one 0.02."""
    rng = random.Random(4)
    for j in range(1, n_orders + 1):
        cid = rng.randint(1, n_customers)
        age = dt.timedelta(seconds=rng.randrange(3 * 365 * 86400))
        created = now - age
        p_open = 0.4 if age < dt.timedelta(days=60) else 0.02
        if rng.random() < p_open:
            status, completed = rng.choice(STATUSES_OPEN), None
        else:
            status = rng.choice(STATUSES_CLOSED)
            completed = None if status == "已取消" else created + dt.timedelta(hours=rng.randint(4, 96))
        yield (j, f"WO{created:%Y%m%d}-{j:08d}", cid, cid, rng.choice(SERVICE_TYPES), status,
               rng.choice(URGENCIES), rng.choice(PROBLEMS), created, completed)


def _batches(rows: Iterator[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_numbers(n: int) -> None:
    """The formula must give exactly the key ``normalise`` gives (else no caller would match)."""
    for i in (1, 2, 3, n // 2 or 1, n):
        num = mobile_of(i)
        found = normalise(num)
        assert found is not None and found.number == num and found.kind == "mobile", num


# --------------------------------------------------------------------------------------------
# Markers


def schema_fingerprint() -> str:
    """SHA-256 of the migration scripts: a cached database made by other migrations (the
    initial one is still being regenerated in place) is reseeded, never measured."""
    from callcenter.db.engine import MIGRATIONS

    h = hashlib.sha256()
    for f in sorted((MIGRATIONS / "versions").glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _read_marker(path: Path, sizes: Sizes) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("sizes") != asdict(sizes) or data.get("version") != SEED_VERSION:
        return None
    if data.get("schema") != schema_fingerprint():
        _say(f"seed: {path.name} was made with other migrations; seeding again")
        return None
    return data


def _write_marker(path: Path, sizes: Sizes, seconds: float, per_table: dict[str, float]) -> None:
    path.write_text(json.dumps({"sizes": asdict(sizes), "version": SEED_VERSION,
                                "schema": schema_fingerprint(),
                                "seconds": round(seconds, 1),
                                "per_table_s": {k: round(v, 1) for k, v in per_table.items()},
                                "at": dt.datetime.now(dt.UTC).isoformat()}, indent=1))


def _agent_rows(agents: int, now: dt.datetime) -> list[dict[str, Any]]:
    from argon2 import PasswordHasher

    pw_hash = PasswordHasher().hash(AGENT_PASSWORD)  # ONE hash, shared by every bench agent
    return [{"username": f"agent{i:04d}", "display_name": f"坐席{i:04d}", "password_hash": pw_hash,
             "role": "agent", "extension": extension_of(i), "active": True, "created_at": now}
            for i in range(1, agents + 1)]


def _say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# SQLite


def sqlite_path(data_dir: Path, sizes: Sizes) -> Path:
    return data_dir / "sqlite" / f"bench_{sizes.tag}.sqlite3"


async def ensure_sqlite(data_dir: Path, sizes: Sizes) -> tuple[str, dict[str, Any]]:
    """The URL of a seeded SQLite file for ``sizes`` (seeding it if needed) and its marker."""
    path = sqlite_path(data_dir, sizes)
    marker = path.with_suffix(".seeded.json")
    url = f"sqlite+aiosqlite:///{path}"
    found = _read_marker(marker, sizes)
    if found is not None and path.exists():
        _say(f"seed: reusing {path} (seeded in {found['seconds']} s)")
        return url, found
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), marker):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_numbers(sizes.customers)
    t0 = time.monotonic()
    now = await _schema_and_agents(url, sizes)
    per_table = _load_sqlite(path, sizes, now)
    seconds = time.monotonic() - t0
    _write_marker(marker, sizes, seconds, per_table)
    _say(f"seed: SQLite {sizes.customers:,} customers, {sizes.orders:,} orders, {sizes.agents} agents "
         f"in {seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in per_table.items())}); "
         f"{path.stat().st_size / 2**20:.0f} MiB")
    return url, _read_marker(marker, sizes) or {}


def _sqlite_converters(table: str) -> list[Callable[[Any], Any] | None]:
    """SQLAlchemy's own bind processors for each column (datetimes, dates, booleans)."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from callcenter.db.models import Base

    dialect = sqlite_dialect.dialect()
    cols = Base.metadata.tables[table].c
    return [cols[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS[table]]


def _load_sqlite(path: Path, sizes: Sizes, now: dt.datetime) -> dict[str, float]:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1048576")  # 1 GiB page cache while loading
    per_table: dict[str, float] = {}
    sources = customer_rows(sizes.customers, now)
    sources["work_orders"] = order_rows(sizes.orders, sizes.customers, now)
    try:
        for table, rows in sources.items():
            t = time.monotonic()
            conv = _sqlite_converters(table)
            idx = [(k, f) for k, f in enumerate(conv) if f is not None]
            cols = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for batch in _batches(rows):
                if idx:
                    out = []
                    for r in batch:
                        r = list(r)
                        for k, f in idx:
                            if r[k] is not None:
                                r[k] = f(r[k])
                        out.append(r)
                    batch = out  # type: ignore[assignment]
                con.execute("BEGIN")
                con.executemany(sql, batch)
                con.execute("COMMIT")
            per_table[table] = time.monotonic() - t
            _say(f"seed:   {table} {per_table[table]:.1f} s")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return per_table


# --------------------------------------------------------------------------------------------
# PostgreSQL


class _Folder:
    """What ``services.PostgresServer`` needs of a run folder, but persistent (the cache)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)

    def subdir(self, name: str, owner: str | None = None) -> Path:
        p = self.path / name
        p.mkdir(mode=0o755, exist_ok=True)
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(p, entry.pw_uid, entry.pw_gid)
        return p


class BenchPostgres(services.PostgresServer):
    """The test suite's throwaway cluster, kept between benchmark runs (initdb only once) and
    started with settings for a benchmark instead of a test run.

    Durability: ``fsync=on`` with ``synchronous_commit=off`` — crash-safe, may lose the last
    few hundred ms of commits on a power cut, like the product's SQLite in WAL with
    ``synchronous=NORMAL``; the two databases are compared at the same durability.
    """

    SETTINGS = {
        "fsync": "on",
        "synchronous_commit": "off",
        "full_page_writes": "on",
        "shared_buffers": "512MB",
        "max_wal_size": "4GB",
        "maintenance_work_mem": "256MB",
        "max_connections": "200",
        "log_min_messages": "warning",
    }

    def __init__(self, data_dir: Path) -> None:
        super().__init__(_Folder(data_dir))  # type: ignore[arg-type]

    def start(self) -> BenchPostgres:
        if not (self.datadir / "PG_VERSION").exists():
            if self.socket_dir.exists():
                self.socket_dir.rmdir()
            super().start()  # initdb + the tests' settings; restarted below with ours
            self.stop()
        if not self.socket_dir.exists():
            self._as_owner_mkdir(self.socket_dir)
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir),
                "-c", "listen_addresses=", "-c", f"port={self.port}",
                "-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in self.SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        self.process = services.ManagedProcess(
            "postgres", argv, log_path=self.dir / "postgres.log", run_as=self.run_as,
            stop_signal=signal.SIGINT, death_signal="QUIT", cwd=self.dir)
        self.process.start()
        self.process.wait_until(self._ready, "accepting connections", timeout=120)
        return self

    def database_exists(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


async def ensure_postgres(pg: BenchPostgres, sizes: Sizes) -> tuple[str, dict[str, Any]]:
    """The URL of a seeded database for ``sizes`` on the running cluster ``pg``."""
    name = f"bench_{sizes.tag}"
    marker = pg.dir / f"seeded-{name}.json"
    found = _read_marker(marker, sizes)
    if found is not None and pg.database_exists(name):
        _say(f"seed: reusing PostgreSQL database {name} (seeded in {found['seconds']} s)")
        return pg.url(name), found
    marker.unlink(missing_ok=True)
    pg.drop_database(name)
    pg.create_database(name)
    _check_numbers(sizes.customers)
    url = pg.url(name)
    t0 = time.monotonic()
    now = await _schema_and_agents(url, sizes)
    per_table = await _load_postgres(pg, name, sizes, now)
    seconds = time.monotonic() - t0
    _write_marker(marker, sizes, seconds, per_table)
    size = pg.psql(f"SELECT pg_database_size('{name}')")
    _say(f"seed: PostgreSQL {sizes.customers:,} customers, {sizes.orders:,} orders, {sizes.agents} agents "
         f"in {seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in per_table.items())}); "
         f"{int(size) / 2**20:.0f} MiB")
    return url, _read_marker(marker, sizes) or {}


async def _load_postgres(pg: BenchPostgres, name: str, sizes: Sizes, now: dt.datetime) -> dict[str, float]:
    import asyncpg

    con = await asyncpg.connect(user=pg.user, database=name, host=str(pg.socket_dir), port=pg.port)
    per_table: dict[str, float] = {}
    sources = customer_rows(sizes.customers, now)
    sources["work_orders"] = order_rows(sizes.orders, sizes.customers, now)
    try:
        for table, rows in sources.items():
            t = time.monotonic()
            for batch in _batches(rows):
                await con.copy_records_to_table(table, records=batch, columns=list(COLUMNS[table]))
            await con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT max(id) FROM {table}))")
            per_table[table] = time.monotonic() - t
            _say(f"seed:   {table} {per_table[table]:.1f} s")
        t = time.monotonic()
        await con.execute("ANALYZE")
        await con.execute("CHECKPOINT")
        per_table["analyze"] = time.monotonic() - t
    finally:
        await con.close()
    return per_table


# --------------------------------------------------------------------------------------------
# Before each run


@dataclass(frozen=True, slots=True)
class Agent:
    user_id: int
    username: str
    extension: str
    token: str  # the cc_session cookie


ADMIN = "bench-admin"


async def prepare_run(url: str, agents: int) -> tuple[list[Agent], str]:
    """Forget the calls and logins of earlier runs (every run starts from the seeded state)
    and open one login session per agent, and one for an admin (``/health`` shows the AMI
    counters to admins only). Returns the agents with their cookies, and the admin's cookie."""
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    try:
        async with engine.begin() as c:
            await c.execute(delete(Call))
            await c.execute(delete(LoginSession))
            admin_id = await c.scalar(select(User.id).where(User.username == ADMIN))
            if admin_id is None:
                row = _agent_rows(1, now)[0] | {"username": ADMIN, "display_name": "bench", "role": "admin",
                                                 "extension": None}
                admin_id = (await c.execute(insert(User).values(**row).returning(User.id))).scalar_one()
            users = (await c.execute(select(User.id, User.username, User.extension)
                                     .where(User.role == "agent").order_by(User.id))).all()
            found = [Agent(uid, name, ext, secrets.token_urlsafe(32)) for uid, name, ext in users][:agents]
            if len(found) < agents:
                raise RuntimeError(f"the database has {len(found)} agents, {agents} wanted")
            admin = Agent(admin_id, ADMIN, "", secrets.token_urlsafe(32))
            await c.execute(insert(LoginSession), [
                {"token_hash": hashlib.sha256(a.token.encode()).hexdigest(), "user_id": a.user_id,
                 "created_at": now, "expires_at": now + dt.timedelta(hours=12)} for a in [*found, admin]])
        if engine.dialect.name == "sqlite":
            async with engine.connect() as c:
                await c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        await engine.dispose()
    return found, admin.token


def member_list(agents: Sequence[Agent]) -> list[str]:
    return [a.extension for a in agents]


async def _schema_and_agents(url: str, sizes) -> dt.datetime:  # type: ignore[no-untyped-def]
    """The product's schema (its migrations, so its indexes) and the agents; returns the
    seeding time used for every row."""
    engine = make_engine(url)
    try:
        await migrate(engine, vault=bench_vault())
        now = dt.datetime.now(dt.UTC)
        async with engine.begin() as c:
            await c.execute(insert(User), _agent_rows(sizes.agents, now))
    finally:
        await engine.dispose()
    return now


async def seed_and_measure_each(database: str, name: str, data_dir: Path,
                                seed: Callable[[str], Awaitable[float]],
                                measure: Callable[[str, str], Awaitable[Any]]) -> list[Any]:
    """For ``database`` (sqlite | postgresql | both): a fresh database named ``name`` (a temporary
    SQLite file, or a database in the kept cluster under ``data_dir``), ``seed(url)`` (returns
    seconds), then ``measure(db, url)``; the measurements in order."""
    results = []
    for db in ("sqlite", "postgresql") if database == "both" else (database,):
        print(f"\n=== {db} ===", flush=True)
        if db == "sqlite":
            with tempfile.TemporaryDirectory(prefix=f"{name}-") as d:
                url = f"sqlite+aiosqlite:///{d}/{name}.sqlite3"
                print(f"  seeded in {await seed(url):.1f} s", flush=True)
                results.append(await measure(db, url))
            continue
        pg = BenchPostgres(data_dir / f"postgresql-{name.removeprefix('bench_')}")
        pg.start()
        try:
            pg.drop_database(name)
            pg.create_database(name)
            url = pg.url(name)
            print(f"  seeded in {await seed(url):.1f} s", flush=True)
            results.append(await measure(db, url))
        finally:
            pg.stop()
    return results

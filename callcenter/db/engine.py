"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg), and migrations."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.sql import sqltypes
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine,
)

if TYPE_CHECKING:
    from callcenter.crypto import PhoneVault

MIGRATIONS = Path(__file__).with_name("migrations")


async def without_transaction(s: AsyncSession | AsyncConnection) -> None:
    """On PostgreSQL, run the statements of ``s`` (a session or a connection) each in its own
    implicit transaction: no BEGIN and COMMIT (or ROLLBACK) round trips around them. For reads
    (a snapshot per statement, as READ COMMITTED gives anyway) or a single atomic write; call
    before the first statement. SQLite keeps its transaction, which costs no round trip there."""
    if isinstance(s, AsyncConnection):
        if s.dialect.name == "postgresql":
            await s.execution_options(isolation_level="AUTOCOMMIT")
    elif s.bind.dialect.name == "postgresql":
        await s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


class _AwareSQLiteDateTime(DATETIME):
    """SQLite keeps no offset: a ``DateTime(timezone=True)`` column read back is naive. Every
    such column holds UTC here, so it comes back aware (UTC), as PostgreSQL gives it — and
    every timestamp in every answer is RFC 3339 with an offset."""

    def result_processor(self, dialect, coltype):  # type: ignore[no-untyped-def]
        base = super().result_processor(dialect, coltype)
        if not self.timezone:
            return base

        def process(value):  # type: ignore[no-untyped-def]
            v = base(value) if base is not None and value is not None else value
            if isinstance(v, dt.datetime) and v.tzinfo is None:
                v = v.replace(tzinfo=dt.UTC)
            return v

        return process


def make_engine(url: str) -> AsyncEngine:
    """Create the engine; for SQLite, make its folder, turn on WAL and foreign keys.

    ``hide_parameters``: a database error's text never carries the statement's values (phone
    numbers, names) into a log line or a traceback."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        dialect = engine.sync_engine.dialect
        dialect.colspecs = {**dialect.colspecs, sqltypes.DateTime: _AwareSQLiteDateTime}

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


# A pooled connection unused for longer than this is checked with a round trip before it is
# handed out (``pool_pre_ping`` would ping at every checkout: a round trip per request).
IDLE_PING_S = 10.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pre-ping only connections that sat idle: a connection returned moments ago is alive, and
    under load every connection is. One that fails the ping is replaced (the pool retries the
    checkout). A database restart while connections are busy is seen by those statements and
    SQLAlchemy then recycles the whole pool, as with ``pool_pre_ping``."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as e:
            raise DisconnectionError("the pooled connection did not answer a ping") from e


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection=None, vault=None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if vault is not None:
        cfg.attributes["vault"] = vault
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "heads", *,
                  vault: PhoneVault | None = None) -> None:
    """Bring the schema to ``revision`` with Alembic (the only way tables are created).

    ``heads``: every branch, so features developed side by side can each add a revision off the
    same parent until a merge revision joins them. ``vault``: the phone keys, for revisions that
    seal existing data (0003); without it such a revision refuses a database holding numbers."""
    from alembic import command

    def _upgrade(sync_conn) -> None:  # type: ignore[no-untyped-def]
        command.upgrade(_alembic_config(sync_conn, vault), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)

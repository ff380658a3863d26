"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg), and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from callcenter.crypto import PhoneVault

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> AsyncEngine:
    """Create the engine; for SQLite, make its folder, turn on WAL and foreign keys.

    ``hide_parameters``: a database error's text never carries the statement's values (phone
    numbers, names) into a log line or a traceback."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                               hide_parameters=True)


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

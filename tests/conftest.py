"""Shared fixtures. Real services only: SQLite files, a real PostgreSQL, a real Redis."""

from __future__ import annotations

import pytest

from callcenter.db.engine import make_engine, make_sessionmaker, migrate

TRANSCRIPTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "asterisk" / "transcripts"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/test.sqlite3"


@pytest.fixture
def db_url(sqlite_url) -> str:
    """The database under test (the infra work parametrises this over SQLite and PostgreSQL)."""
    return sqlite_url


@pytest.fixture
async def engine(db_url):
    eng = make_engine(db_url)
    await migrate(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)

"""Shared fixtures. Real services only: SQLite files, a real PostgreSQL, a real Redis, Chromium.

The processes are managed in ``tests/services.py``; a missing binary fails the test with the
command that installs it (``scripts/test`` installs everything). Nothing here skips.

Fixtures (scope: what you get)
- ``sqlite_url`` / ``sqlite_only_url`` (function): a SQLite file URL in the test's tmp_path.
- ``postgres_server`` (session): the throwaway cluster (``.url(db)``, ``.create_database()``,
  ``.drop_database()``, ``.psql(sql)``).
- ``pg_url`` (function): a fresh empty PostgreSQL database, dropped afterwards.
- ``db_url`` (function, params ``sqlite`` and ``postgresql``): every test using it, or
  ``engine`` / ``sessionmaker``, runs once per backend.
- ``engine`` (function): an AsyncEngine on ``db_url``, migrated to head. ``sessionmaker``: on it.
- ``redis_server`` (session): a private redis-server; ``redis_url`` (function): a URL to an
  emptied database of it.
- ``chromium_executable`` (session): Debian's chromium. ``chromium_server`` (session): one
  headless chromium for the run. ``browser`` (function): Playwright Browser connected to it in
  the test's own event loop. ``page`` (function): a page in a fresh browser context.
"""

from __future__ import annotations

import itertools
import signal
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from tests import services

TRANSCRIPTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "asterisk" / "transcripts"


def pytest_sessionstart(session: pytest.Session) -> None:
    # A CI time-out or `kill` sends SIGTERM: turn it into KeyboardInterrupt so pytest still runs
    # the session teardown that stops the service processes and removes their files.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def _interrupt(signum, frame):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, _interrupt)


def _start(service):  # type: ignore[no-untyped-def]
    """Start a service or fail the test loudly (never skip) with what to install."""
    try:
        return service.start()
    except services.ServiceError as e:
        service.stop()
        pytest.fail(str(e), pytrace=False)


def _make(factory, *args):  # type: ignore[no-untyped-def]
    try:
        return factory(*args)
    except services.ServiceError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def service_run_dir() -> Iterator[services.RunDir]:
    """This run's temp folder for service files; removed at the end."""
    run_dir = services.RunDir()
    yield run_dir
    run_dir.remove()


# --------------------------------------------------------------------------------------------
# Databases


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/test.sqlite3"


@pytest.fixture
def sqlite_only_url(sqlite_url) -> str:
    """For a test that is about SQLite itself: not parametrised over backends."""
    return sqlite_url


@pytest.fixture(scope="session")
def postgres_server(service_run_dir) -> Iterator[services.PostgresServer]:
    server = _make(services.PostgresServer, service_run_dir)
    _start(server)
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (asyncpg URL over the Unix socket)."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """The database under test: each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def engine(db_url):
    eng = make_engine(db_url)
    await migrate(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


# --------------------------------------------------------------------------------------------
# Redis


@pytest.fixture(scope="session")
def redis_server(service_run_dir) -> Iterator[services.RedisServer]:
    server = _make(services.RedisServer, service_run_dir)
    _start(server)
    yield server
    server.stop()


_redis_dbs = itertools.cycle(range(16))


@pytest.fixture
def redis_url(redis_server) -> str:
    """``redis://127.0.0.1:PORT/N`` on the run's redis-server, every database emptied first."""
    with redis_server.client() as r:
        r.flushall()
    return redis_server.url(next(_redis_dbs))


# --------------------------------------------------------------------------------------------
# Browser


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    return _make(services.find_chromium)


@pytest.fixture(scope="session")
def chromium_server(chromium_executable, service_run_dir) -> Iterator[services.ChromiumServer]:
    server = _make(services.ChromiumServer, service_run_dir)
    _start(server)
    yield server
    server.stop()


@pytest.fixture
async def browser(chromium_server) -> AsyncIterator:
    """Playwright ``Browser`` on the run's chromium, connected in this test's event loop.

    Playwright objects belong to the event loop that made them, and pytest-asyncio gives each
    test its own loop, so the connection is per test (about 0.3 s) while chromium itself starts
    once per run.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        connected = await pw.chromium.connect_over_cdp(chromium_server.ws_endpoint)
        try:
            yield connected
        finally:
            await connected.close()  # closes the contexts this test made, then disconnects


@pytest.fixture
async def page(browser) -> AsyncIterator:
    """A Playwright ``Page`` in a fresh context (no cookies or storage from other tests)."""
    context = await browser.new_context()
    context.set_default_timeout(10_000)  # ms: fail in 10 s rather than Playwright's 30 s
    try:
        yield await context.new_page()
    finally:
        await context.close()

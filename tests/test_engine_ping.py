"""``callcenter.db.engine``: pooled PostgreSQL connections idle for a while are pinged before use,
and a dead one is replaced instead of failing the request."""

from __future__ import annotations

from sqlalchemy import text

from callcenter.db import engine as engine_module
from callcenter.db.engine import make_engine
from tests.waiting import wait_for


async def test_a_dead_idle_connection_is_replaced(pg_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every reuse counts as idle
    engine, killer = make_engine(pg_url), make_engine(pg_url)
    try:
        async with engine.connect() as c:
            pid = await c.scalar(text("SELECT pg_backend_pid()"))
        async with killer.connect() as c:  # the server drops it behind the pool's back
            await c.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))

        async def gone() -> bool:
            async with killer.connect() as c:
                return not await c.scalar(text(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {int(pid)}"))

        await wait_for(gone, 5, message="the backend ended")
        async with engine.connect() as c:  # idle ≥ IDLE_PING_S: pinged, replaced, works
            assert await c.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_a_busy_connection_is_not_pinged(pg_url):  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    pings: list[object] = []
    real = engine.dialect.do_ping
    engine.dialect.do_ping = lambda conn: pings.append(conn) or real(conn)  # type: ignore[method-assign]
    try:
        for _ in range(3):
            async with engine.connect() as c:
                await c.execute(text("SELECT 1"))
        assert pings == []
    finally:
        await engine.dispose()

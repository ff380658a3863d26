"""The test fixtures themselves work against real services: Redis, PostgreSQL, Chromium."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests import services
from tests.waiting import wait_for

# --------------------------------------------------------------------------------------------
# Redis


async def test_redis_answers_ping_and_set_get(redis_url):
    r = aioredis.from_url(redis_url)
    try:
        assert await r.ping()
        await r.set("greeting", "你好")
        assert (await r.get("greeting")).decode() == "你好"
    finally:
        await r.aclose()


async def test_redis_url_starts_empty(redis_url, redis_server):
    r = aioredis.from_url(redis_url)
    try:
        assert await r.dbsize() == 0
        await r.set("left-behind", "1")  # the next test's redis_url must not see it
    finally:
        await r.aclose()
    assert redis_url.startswith(f"redis://127.0.0.1:{redis_server.port}/")


def test_missing_redis_server_fails_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(services.ServiceError, match="apt-get install -y redis-server"):
        services.find_redis_server()


# --------------------------------------------------------------------------------------------
# PostgreSQL


async def _scalar(url: str, sql: str):
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


async def test_postgres_answers_through_asyncpg(pg_url):
    assert pg_url.startswith("postgresql+asyncpg://")
    version = await _scalar(pg_url, "select version()")
    assert version.startswith("PostgreSQL ")
    assert await _scalar(pg_url, "show fsync") == "off"


async def test_two_pg_urls_are_distinct_databases(pg_url, postgres_server):
    other = postgres_server.create_database()
    try:
        other_url = postgres_server.url(other)
        assert other_url != pg_url
        assert await _scalar(pg_url, "select current_database()") != other

        engine = create_async_engine(pg_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("create table only_here (id int)"))
        finally:
            await engine.dispose()
        assert await _scalar(pg_url, "select count(*) from pg_tables where tablename = 'only_here'") == 1
        assert await _scalar(other_url, "select count(*) from pg_tables where tablename = 'only_here'") == 0
    finally:
        postgres_server.drop_database(other)


async def test_engine_migrates_on_each_backend(engine, db_url, request):
    backend = request.node.callspec.params["db_url"]
    assert engine.dialect.name == backend
    async with engine.connect() as conn:
        assert await conn.run_sync(lambda sync_conn: inspect(sync_conn).has_table("users"))


# --------------------------------------------------------------------------------------------
# Browser


async def test_browser_reads_an_aiohttp_page(page, aiohttp_server):
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="<h1 id=t>售后服务热线</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", hello)
    server = await aiohttp_server(app, host="127.0.0.1")

    await page.goto(str(server.make_url("/")))
    assert await page.inner_text("#t") == "售后服务热线"


# --------------------------------------------------------------------------------------------
# wait_for


async def test_wait_for_returns_the_truthy_value_of_a_sync_or_async_predicate():
    calls = []

    def sync_predicate():
        calls.append(1)
        return len(calls) >= 3 and "ready"

    async def async_predicate():
        return 42

    assert await wait_for(sync_predicate, timeout=1) == "ready"
    assert await wait_for(async_predicate) == 42


async def test_wait_for_raises_assertion_error_with_the_message():
    with pytest.raises(AssertionError, match="never true"):
        await wait_for(lambda: False, timeout=0.05, message="never true")

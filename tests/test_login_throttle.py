"""Failed logins are throttled per username and per address, in process and in Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from callcenter.auth.throttle import LIMITS, LocalLoginThrottle, RedisLoginThrottle, retry_after
from tests import apphelpers as h


@pytest.mark.parametrize("count,allowed,left,wait", [
    (0, 10, 300, 0), (9, 10, 300, 0), (10, 10, 299.2, 300), (11, 10, 0.1, 1), (50, 50, 12, 12),
])
def test_retry_after(count, allowed, left, wait):
    assert retry_after(count, allowed, left) == wait


@pytest.fixture(params=["local", "redis"])
async def throttle(request):
    if request.param == "local":
        clock = [1000.0]
        t = LocalLoginThrottle(clock=lambda: clock[0])
        t.advance = lambda s: clock.__setitem__(0, clock[0] + s)  # type: ignore[attr-defined]
        yield t
        return
    r = aioredis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    t = RedisLoginThrottle(r)
    yield t
    await r.aclose()


async def test_user_limit_then_success_resets(throttle):
    allowed = LIMITS["user"][0]
    for _ in range(allowed):
        assert await throttle.wait_seconds("Agent1", "10.0.0.1") == 0
        await throttle.failed("Agent1", "10.0.0.1")
    wait = await throttle.wait_seconds("agent1", "10.0.0.9")  # same user, any address, any case
    assert 0 < wait <= LIMITS["user"][1]
    assert await throttle.wait_seconds("agent2", "10.0.0.9") == 0
    if hasattr(throttle, "advance"):
        throttle.advance(LIMITS["user"][1] + 1)  # the window passes
        assert await throttle.wait_seconds("agent1", "10.0.0.9") == 0
    await throttle.succeeded("agent1")
    assert await throttle.wait_seconds("agent1", "10.0.0.9") == 0


async def test_address_limit_across_names(throttle):
    for i in range(LIMITS["ip"][0]):
        await throttle.failed(f"guess{i}", "10.9.9.9")
    assert await throttle.wait_seconds("someone", "10.9.9.9") > 0
    assert await throttle.wait_seconds("someone", "10.9.9.8") == 0


async def test_login_answers_429_after_too_many_failures(sqlite_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await h.add_agents(client, "8001")
    for _ in range(LIMITS["user"][0]):
        r = await client.post("/api/session", json={"username": "agent8001", "password": "wrong-one!"})
        assert r.status == 401
    r = await client.post("/api/session", json={"username": "agent8001", "password": h.PASSWORD})
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert (await r.json())["error"] == "too_many_attempts"

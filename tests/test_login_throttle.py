"""Logins are throttled per username, and per address for names that failed, in process and in
Redis (the race and the lock-out of a whole centre: tests/security/test_login_throttle.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from callcenter.auth.throttle import LIMITS, LocalLoginThrottle, RedisLoginThrottle, client_address, decide, parse_networks, uses_up_name
from tests import apphelpers as h


@pytest.mark.parametrize("attempts,left,wait", [(1, 300, 0), (10, 300, 0), (11, 299.2, 300), (12, 0.1, 1)])
def test_decide(attempts, left, wait):
    assert decide(attempts, left) == wait


@pytest.mark.parametrize("attempts,ip_failures,forfeit", [
    (1, 500, False),  # a name's first failure: never, however busy the address
    (2, 50, False), (2, 51, True), (9, 51, True),
])
def test_uses_up_name(attempts, ip_failures, forfeit):
    assert uses_up_name(attempts, ip_failures) is forfeit


@pytest.mark.parametrize("peer,forwarded,trusted,expected", [
    ("10.0.0.5", ["1.2.3.4"], [], "10.0.0.5"),                      # no trusted proxy: XFF ignored
    ("10.0.0.5", ["1.2.3.4"], ["127.0.0.1"], "10.0.0.5"),           # the peer is not the proxy
    ("127.0.0.1", ["6.6.6.6, 1.2.3.4"], ["127.0.0.1"], "1.2.3.4"),  # the proxy's own entry
    ("127.0.0.1", ["6.6.6.6", "1.2.3.4, 10.1.1.1"], ["127.0.0.1", "10.0.0.0/8"], "1.2.3.4"),
    ("127.0.0.1", [], ["127.0.0.1"], "127.0.0.1"),
    ("127.0.0.1", ["not-an-ip"], ["127.0.0.1"], "127.0.0.1"),
])
def test_client_address(peer, forwarded, trusted, expected):
    assert client_address(peer, forwarded, parse_networks(trusted)) == expected


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
        assert await throttle.attempt("Agent1", "10.0.0.1") == 0
        await throttle.failed("Agent1", "10.0.0.1")
    wait = await throttle.attempt("agent1", "10.0.0.9")  # same user, any address, any case
    assert 0 < wait <= LIMITS["user"][1]
    assert await throttle.attempt("agent2", "10.0.0.9") == 0
    if hasattr(throttle, "advance"):
        throttle.advance(LIMITS["user"][1] + 1)  # the window passes
        assert await throttle.attempt("agent1", "10.0.0.9") == 0
    await throttle.succeeded("agent1")
    assert await throttle.attempt("agent1", "10.0.0.9") == 0


async def test_past_the_address_limit_a_second_failure_uses_up_the_name(throttle):
    for i in range(LIMITS["ip"][0] + 1):
        assert await throttle.attempt(f"guess{i}", "10.9.9.9") == 0
        await throttle.failed(f"guess{i}", "10.9.9.9")
    assert await throttle.attempt("guess1", "10.9.9.9") == 0  # a second guess at a name: checked …
    await throttle.failed("guess1", "10.9.9.9")
    assert await throttle.attempt("guess1", "10.9.9.9") > 0  # … and wrong: that name is done
    assert await throttle.attempt("guess1", "10.9.9.8") > 0  # for the window, from anywhere
    assert await throttle.attempt("someone", "10.9.9.9") == 0  # a name with no failure: allowed
    assert await throttle.attempt("guess2", "10.9.9.9") == 0  # a correct password here is let in
    await throttle.succeeded("guess2")


async def test_login_answers_429_after_too_many_failures(sqlite_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await h.add_agents(client, "8001")
    for _ in range(LIMITS["user"][0]):
        r = await client.post("/api/session", json={"username": "agent8001", "password": "wrong-one!"})
        assert r.status == 401
    r = await client.post("/api/session", json={"username": "agent8001", "password": h.PASSWORD})
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert (await r.json())["error"] == "too_many_attempts"

"""Finding 3 (login throttle): attempts are counted before the password is checked, so a burst
of concurrent guesses gets no more verifications than the limit; and the address limit never
locks out a user because of other users' failures — behind a NAT or a proxy, the whole centre
shares one address."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from callcenter.appkeys import AUTH
from callcenter.auth.throttle import LIMITS
from tests import apphelpers as h


@pytest.fixture(params=["in-process", "redis"])
def throttle_redis(request) -> str | None:  # type: ignore[no-untyped-def]
    return None if request.param == "in-process" else request.getfixturevalue("redis_url")


async def _login(client, username: str, password: str, **headers: str) -> int:  # type: ignore[no-untyped-def]
    r = await client.post("/api/session", json={"username": username, "password": password}, headers=headers)
    return r.status


async def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(
        sqlite_url, throttle_redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, redis_url=throttle_redis))
    await h.add_agents(client, "8001")
    statuses = Counter(await asyncio.gather(*(_login(client, "agent8001", f"wrong-{i}") for i in range(60))))
    assert statuses[401] == LIMITS["user"][0] and statuses[429] == 60 - LIMITS["user"][0], statuses


async def test_other_users_failures_never_refuse_a_correct_password(
        sqlite_url, throttle_redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, redis_url=throttle_redis))
    await h.add_agents(client, "8001", "8002")
    # Everyone here comes from one address (the centre's NAT): far more failures than its limit.
    for i in range(LIMITS["ip"][0] + 5):
        assert await _login(client, f"nobody{i}", "wrong-password") == 401
    assert await _login(client, "agent8001", h.PASSWORD) == 200
    # A user who mistyped while the address is past its limit still gets in with the password …
    assert await _login(client, "agent8002", "typo-password") == 401
    assert await _login(client, "agent8002", h.PASSWORD) == 200
    # … while a second wrong guess at one name, from that address, uses the name up.
    assert await _login(client, "nobody3", "wrong-again") == 401
    assert await _login(client, "nobody3", "third-guess") == 429


async def test_the_proxys_client_address_counts_only_behind_a_trusted_proxy(
        sqlite_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    spray = {"X-Forwarded-For": "203.0.113.7"}
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, trusted_proxies=("127.0.0.1",)))
    await client.server.app[AUTH].add_user("victim", role="agent", password=h.PASSWORD)
    for i in range(LIMITS["ip"][0]):
        assert await _login(client, f"guess{i}", "wrong-password", **spray) == 401
    other = {"X-Forwarded-For": "198.51.100.9"}  # another client behind the same proxy
    assert await _login(client, "colleague", "wrong-password", **other) == 401
    assert await _login(client, "colleague", "wrong-again", **other) == 401
    assert await _login(client, "colleague", "third-try", **other) == 401  # not the sprayer
    assert await _login(client, "victim", "wrong-password", **spray) == 401
    assert await _login(client, "victim", "wrong-again", **spray) == 401
    assert await _login(client, "victim", h.PASSWORD, **spray) == 429  # used up by the sprayer's address

    # Without the setting, X-Forwarded-For is the client's own word: ignored.
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    for i in range(LIMITS["ip"][0]):
        assert await _login(client, f"guess{i}", "wrong-password", **{"X-Forwarded-For": f"10.0.{i}.1"}) == 401
    assert await _login(client, "guess1", "wrong-again", **{"X-Forwarded-For": "10.9.9.9"}) == 401
    assert await _login(client, "guess1", "third-try", **{"X-Forwarded-For": "10.9.9.8"}) == 429

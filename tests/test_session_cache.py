"""The in-process session cache of ``AuthService.authenticate`` (callcenter.auth.services)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update

from callcenter.auth.services import AuthService
from callcenter.db.models import LoginSession, User

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


async def test_cached_session_is_answered_from_memory_until_logout(sessionmaker):  # type: ignore[no-untyped-def]
    now = [T0]
    auth = AuthService(sessionmaker, ttl_s=3600, clock=lambda: now[0], cache_s=60)
    await auth.add_user("agent1", role="agent", password="password-1")
    token, user = await auth.login("agent1", "password-1")
    assert (await auth.authenticate(token)) == user
    async with sessionmaker.begin() as s:  # behind the cache's back (another instance)
        await s.execute(update(User).values(active=False))
    assert (await auth.authenticate(token)) == user  # within cache_s: still the cached answer
    await auth.logout(token)  # this instance's logout: at once
    assert await auth.authenticate(token) is None


async def test_expiry_and_sliding_still_apply_to_cached_sessions(sessionmaker):  # type: ignore[no-untyped-def]
    now = [T0]
    auth = AuthService(sessionmaker, ttl_s=3600, clock=lambda: now[0], cache_s=10**6)
    await auth.add_user("agent1", role="agent", password="password-1")
    token, user = await auth.login("agent1", "password-1")
    assert (await auth.authenticate(token)) == user
    now[0] = T0 + dt.timedelta(minutes=40)  # past half the lifetime: to the database, slides
    assert (await auth.authenticate(token)) == user
    now[0] = T0 + dt.timedelta(minutes=100)  # still valid thanks to the slide
    assert (await auth.authenticate(token)) == user
    now[0] = T0 + dt.timedelta(hours=3)  # expired: refused although it was cached
    assert await auth.authenticate(token) is None


async def test_no_cache_when_turned_off(sessionmaker):  # type: ignore[no-untyped-def]
    auth = AuthService(sessionmaker, ttl_s=3600, cache_s=0)
    await auth.add_user("agent1", role="agent", password="password-1")
    token, user = await auth.login("agent1", "password-1")
    assert (await auth.authenticate(token)) == user
    async with sessionmaker.begin() as s:
        await s.execute(delete(LoginSession))
    assert await auth.authenticate(token) is None

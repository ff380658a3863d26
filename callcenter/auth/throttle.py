"""Failed-login throttling: a fixed window per username and per client address.

Password guessing costs the server an argon2 verification each time (~85 ms of a core), so
after too many failures within the window the login answers 429 without checking. In process
(``LocalLoginThrottle``) or in Redis (``RedisLoginThrottle``), so every instance counts the
same failures.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

# (failures allowed, window in seconds) per kind of key.
LIMITS = {"user": (10, 300), "ip": (50, 300)}


def retry_after(count: int, allowed: int, window_left: float) -> int:
    """Seconds to wait: 0 while ``count`` failures are within ``allowed``. Pure."""
    return 0 if count < allowed else max(1, int(window_left + 0.999))


class LoginThrottle(Protocol):
    async def wait_seconds(self, user: str, ip: str) -> int: ...
    async def failed(self, user: str, ip: str) -> None: ...
    async def succeeded(self, user: str) -> None: ...


def _keys(user: str, ip: str) -> list[tuple[str, str]]:
    return [("user", user.lower()), ("ip", ip)]


class LocalLoginThrottle:
    def __init__(self, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._clock = clock
        # (kind, key) → (window start, failures)
        self._counts: dict[tuple[str, str], tuple[float, int]] = {}

    async def wait_seconds(self, user: str, ip: str) -> int:
        now = self._clock()
        wait = 0
        for kind, key in _keys(user, ip):
            allowed, window = LIMITS[kind]
            start, count = self._counts.get((kind, key), (now, 0))
            if now - start >= window:
                continue
            wait = max(wait, retry_after(count, allowed, window - (now - start)))
        return wait

    async def failed(self, user: str, ip: str) -> None:
        now = self._clock()
        if len(self._counts) > 100_000:  # bounded memory under a spray of names
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < LIMITS[k[0]][1]}
        for kind, key in _keys(user, ip):
            window = LIMITS[kind][1]
            start, count = self._counts.get((kind, key), (now, 0))
            if now - start >= window:
                start, count = now, 0
            self._counts[(kind, key)] = (start, count + 1)

    async def succeeded(self, user: str) -> None:
        self._counts.pop(("user", user.lower()), None)


class RedisLoginThrottle:
    def __init__(self, redis: Any, prefix: str = "cc:login:") -> None:
        self.redis = redis
        self.prefix = prefix

    def _name(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    async def wait_seconds(self, user: str, ip: str) -> int:
        wait = 0
        async with self.redis.pipeline(transaction=False) as p:
            for kind, key in _keys(user, ip):
                p.get(self._name(kind, key))
                p.ttl(self._name(kind, key))
            values = await p.execute()
        for i, (kind, _) in enumerate(_keys(user, ip)):
            count, ttl = int(values[2 * i] or 0), values[2 * i + 1]
            wait = max(wait, retry_after(count, LIMITS[kind][0], max(ttl, 0)))
        return wait

    async def failed(self, user: str, ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            for kind, key in _keys(user, ip):
                p.incr(self._name(kind, key))
                p.expire(self._name(kind, key), LIMITS[kind][1], nx=True)
            await p.execute()

    async def succeeded(self, user: str) -> None:
        await self.redis.delete(self._name("user", user.lower()))

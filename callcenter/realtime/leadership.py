"""Who holds the AMI connection. One instance at a time tracks calls and pushes pops; the
others serve pages and websockets and get the pops through the mailbox.

``LocalLeadership``: a single process is always the leader. ``RedisLeadership``: a key with a
time-to-live, renewed while held; if the leader dies another instance takes over within
``ttl`` seconds and rebuilds the call state from Asterisk (``CoreShowChannels``/``QueueStatus``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger("callcenter.leadership")


class Leadership(Protocol):
    is_leader: bool

    async def acquire(self) -> None:
        """Return once this instance leads (waits while another does)."""
        ...

    async def lost(self) -> None:
        """Return when leadership is lost (never, for a single process)."""
        ...

    async def release(self) -> None: ...


class LocalLeadership:
    is_leader = True

    async def acquire(self) -> None:
        return None

    async def lost(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeadership:
    def __init__(self, redis: Any, *, key: str = "cc:ami-leader", ttl: float = 10.0) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        # Identifies this instance as the holder; never reused across processes.
        self.token = f"{os.getpid()}-{secrets.token_hex(8)}"
        self.is_leader = False
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> None:
        while True:
            try:
                if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
                    self.is_leader = True
                    log.info("leadership: this instance now holds the AMI connection")
                    return
            except (RedisError, OSError) as e:
                log.warning("leadership: redis unavailable (%s)", type(e).__name__)
            await asyncio.sleep(self.ttl_ms / 3000)

    async def lost(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                ok = await self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
            except (RedisError, OSError):
                # Cannot prove we still hold it: another instance may take it when it expires,
                # so stop now rather than risk two instances on AMI.
                ok = 0
            if not ok:
                self.is_leader = False
                log.warning("leadership: lost; stopping the AMI connection")
                return

    async def release(self) -> None:
        if self.is_leader:
            self.is_leader = False
            try:
                await self._release(keys=[self.key], args=[self.token])
            except (RedisError, OSError):
                pass  # it expires by itself within ttl

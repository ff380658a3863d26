"""Where the dialler finds due jobs.

:class:`DbSchedule` (no Redis): the database is the schedule — the partial index
``ix_outbound_jobs_due`` (priority, due_at) over scheduled jobs answers "what is due" with one
short range scan per priority.

:class:`RedisSchedule` (``CALLCENTER_REDIS_URL``): due times live in Redis sorted sets, one per
priority (score = due time in ms), and a job taken by a dialler moves atomically into a lease set
(score = lease expiry), so instances never take the same job; a lease that runs out (its dialler
died) is handed back if the job is still scheduled in the database. A marker key says the sets
were built from the database: if Redis loses them (flush, restart without persistence) the next
:meth:`RedisSchedule.ensure` rebuilds them from the database. Either way the dialler claims the
job row itself (status and version) before dialling: Redis only says where to look.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.outbound import OutboundJob
from callcenter.outbound.rules import PRIORITY

log = logging.getLogger("callcenter.outbound")

_jobs = OutboundJob.__table__
PRIORITIES = tuple(sorted(set(PRIORITY.values())))


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class Schedule(Protocol):
    async def ensure(self) -> int:
        """Make sure the schedule is there; returns how many jobs were (re)loaded."""
        ...

    async def due(self, now: dt.datetime, limit: int) -> list[int]:
        """Up to ``limit`` due job ids, most urgent first, taken for this dialler."""
        ...

    async def put(self, job_id: int, priority: int, due_at: dt.datetime) -> None: ...

    async def done(self, job_id: int) -> None: ...


class DbSchedule:
    """The database as the schedule (one process: nothing to share)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ensure(self) -> int:
        return 0

    async def due(self, now: dt.datetime, limit: int) -> list[int]:
        out: list[int] = []
        if limit <= 0:
            return out
        async with self.engine.connect() as conn:
            for p in PRIORITIES:
                q = (select(_jobs.c.id).where(_jobs.c.status == "scheduled", _jobs.c.priority == p,
                                              _jobs.c.due_at <= now)
                     .order_by(_jobs.c.due_at).limit(limit - len(out)))
                out += (await conn.execute(q)).scalars().all()
                if len(out) >= limit:
                    break
        return out

    async def put(self, job_id: int, priority: int, due_at: dt.datetime) -> None:
        return None

    async def done(self, job_id: int) -> None:
        return None


_CLAIM = """
local out = {}
local n = tonumber(ARGV[2])
local lease = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  if #out >= n then break end
  local ids = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, n - #out)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[i], id)
    redis.call('ZADD', lease, ARGV[3], id)
    table.insert(out, id)
  end
end
return out
"""


class RedisSchedule:
    """Due times and leases in Redis, rebuilt from the database when lost (module docstring)."""

    def __init__(self, redis: Any, engine: AsyncEngine, *, prefix: str = "cc:ob:",
                 lease_s: float = 120.0) -> None:
        self.redis = redis
        self.engine = engine
        self.prefix = prefix
        self.lease_ms = int(lease_s * 1000)
        self.due_keys = [f"{prefix}due:{p}" for p in PRIORITIES]
        self.lease_key = f"{prefix}lease"
        self.built_key = f"{prefix}built"
        self._claim = redis.register_script(_CLAIM)
        self.rebuilds = 0

    def _key(self, priority: int) -> str:
        return f"{self.prefix}due:{priority if priority in PRIORITIES else PRIORITIES[-1]}"

    async def ensure(self) -> int:
        """Rebuild the sets from the database if the marker is gone (one instance at a time)."""
        if await self.redis.exists(self.built_key):
            return 0
        token = secrets.token_hex(8)
        lock = f"{self.prefix}rebuilding"
        if not await self.redis.set(lock, token, nx=True, px=60_000):
            return 0
        try:
            n = await self._rebuild()
            await self.redis.set(self.built_key, "1")
            self.rebuilds += 1
            log.info("outbound: schedule rebuilt in Redis from the database (%d jobs)", n)
            return n
        finally:
            if await self.redis.get(lock) == token:
                await self.redis.delete(lock)

    async def _rebuild(self) -> int:
        n = 0
        q = (select(_jobs.c.id, _jobs.c.priority, _jobs.c.due_at)
             .where(_jobs.c.status == "scheduled"))
        async with self.engine.connect() as conn:
            result = await conn.stream(q.execution_options(yield_per=20_000))
            async for part in result.partitions(20_000):
                by_key: dict[str, dict[str, int]] = {}
                for r in part:
                    due = r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=dt.UTC)
                    by_key.setdefault(self._key(r.priority), {})[str(r.id)] = _ms(due)
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, mapping in by_key.items():
                        pipe.zadd(key, mapping)
                    await pipe.execute()
                n += len(part)
        return n

    async def due(self, now: dt.datetime, limit: int) -> list[int]:
        if limit <= 0:
            return []
        ms = _ms(now)
        ids = await self._claim(keys=[*self.due_keys, self.lease_key],
                                args=[ms, limit, ms + self.lease_ms])
        return [int(i) for i in ids]

    async def put(self, job_id: int, priority: int, due_at: dt.datetime) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.lease_key, str(job_id))
            pipe.zadd(self._key(priority), {str(job_id): _ms(due_at)})
            await pipe.execute()

    async def done(self, job_id: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.lease_key, str(job_id))
            for key in self.due_keys:
                pipe.zrem(key, str(job_id))
            await pipe.execute()

    async def expired_leases(self, now: dt.datetime) -> list[int]:
        """Jobs whose lease ran out (removed from the lease set); the caller puts back those
        the database still has scheduled."""
        ms = _ms(now)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(self.lease_key, "-inf", ms)
            pipe.zremrangebyscore(self.lease_key, "-inf", ms)
            ids, _ = await pipe.execute()
        return [int(i) for i in ids]

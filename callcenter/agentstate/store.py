"""How the live snapshot and the agents' commands travel between instances.

Only the AMI leader sees the events and may send actions; every instance serves supervisors'
wallboards and agents' desktops. Two small interfaces, each in process or in Redis:

- :class:`LocalLiveStore` / :class:`RedisLiveStore`: the leader publishes the snapshot (JSON
  text); every instance keeps the latest one (``latest()``, what a page opened now reads) and
  hands each new one to its ``on_update`` handlers (its websockets). In Redis: ``SET`` (for
  instances that start later) and ``PUBLISH`` in one pipeline.
- :class:`LocalCommandRelay` / :class:`RedisCommandRelay`: an agent's login/pause/resume, taken
  by whichever instance the agent's browser talks to, is carried out by the leader. In Redis: the
  request is ``RPUSH``-ed on a list the leader ``BLPOP``-s; the answer comes back on a per-request
  list with a short expiry. A request older than ``max_age`` when the leader reads it is
  dropped (its requester has given up: never act on a click the user was told had failed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from callcenter.realtime.subscription import subscribe_forever

log = logging.getLogger("callcenter.agentstate")

Execute = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class NoLeader(Exception):
    """No instance answered the command in time (AMI leadership is changing hands)."""


class LiveStore(Protocol):
    async def publish(self, text: str) -> None: ...

    def latest(self) -> str | None: ...

    def on_update(self, handler: Callable[[str], None]) -> None: ...


class LocalLiveStore:
    """The snapshot in this process: what is published is delivered at once."""

    def __init__(self) -> None:
        self._latest: str | None = None
        self._handlers: list[Callable[[str], None]] = []

    def on_update(self, handler: Callable[[str], None]) -> None:
        self._handlers.append(handler)

    def latest(self) -> str | None:
        return self._latest

    def _take(self, text: str) -> None:
        self._latest = text
        for h in self._handlers:
            try:
                h(text)
            except Exception:
                log.exception("wallboard: update handler failed")

    async def publish(self, text: str) -> None:
        self._take(text)


class RedisLiveStore(LocalLiveStore):
    """Published through Redis; ``run()`` is the subscriber task (every instance runs one) that
    takes every snapshot, this instance's own included."""

    def __init__(self, redis: Any, prefix: str = "cc:") -> None:
        super().__init__()
        self.redis = redis
        self.key = prefix + "wallboard:live"
        self.channel = prefix + "wallboard"

    async def publish(self, text: str) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as p:
                p.set(self.key, text, ex=86400)
                p.publish(self.channel, text)
                await p.execute()
        except (RedisError, OSError) as e:
            log.warning("wallboard: publishing the snapshot failed (%s)", type(e).__name__)

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        async def subscribed(first: bool) -> None:
            current = await self.redis.get(self.key)
            if current:
                self._take(current if isinstance(current, str) else current.decode())
            if first and ready is not None:
                ready()

        await subscribe_forever(self.redis, self.channel, self._take, on_subscribed=subscribed,
                                what="wallboard", log=log)


class CommandRelay(Protocol):
    async def call(self, command: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Have the leader execute ``command``; its answer. Raises :class:`NoLeader`."""
        ...


class LocalCommandRelay:
    def __init__(self, execute: Execute) -> None:
        self._execute = execute

    async def call(self, command: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self._execute(command), timeout)


class RedisCommandRelay:
    """``serve()`` runs on every instance and takes requests only while it leads
    (``is_leader()``); ``call()`` executes at once when this instance leads."""

    def __init__(self, redis: Any, execute: Execute, is_leader: Callable[[], bool],
                 prefix: str = "cc:", max_age: float = 4.0) -> None:
        self.redis = redis
        self._execute = execute
        self._is_leader = is_leader
        self.queue = prefix + "agentstate:cmd"
        self.reply_prefix = prefix + "agentstate:reply:"
        self.max_age = max_age

    async def call(self, command: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        if self._is_leader():
            return await asyncio.wait_for(self._execute(command), timeout)
        rid = secrets.token_hex(12)
        body = json.dumps({"id": rid, "at": time.time(), "command": command}, ensure_ascii=False)
        try:
            await self.redis.rpush(self.queue, body)
            got = await self.redis.blpop([self.reply_prefix + rid], timeout=max(1, int(timeout)))
        except (RedisError, OSError) as e:
            raise NoLeader() from e
        if got is None:
            raise NoLeader()
        return json.loads(got[1])

    async def serve(self) -> None:
        while True:
            if not self._is_leader():
                await asyncio.sleep(0.2)
                continue
            try:
                got = await self.redis.blpop([self.queue], timeout=1)
            except (RedisError, OSError) as e:
                log.warning("agentstate: command queue unavailable (%s)", type(e).__name__)
                await asyncio.sleep(1.0)
                continue
            if got is None:
                continue
            try:
                req = json.loads(got[1])
                if time.time() - float(req["at"]) > self.max_age:
                    continue
                answer = await self._execute(req["command"])
                key = self.reply_prefix + str(req["id"])
                async with self.redis.pipeline(transaction=False) as p:
                    p.rpush(key, json.dumps(answer, ensure_ascii=False))
                    p.expire(key, 30)
                    await p.execute()
            except (RedisError, OSError) as e:
                log.warning("agentstate: answering a command failed (%s)", type(e).__name__)
            except Exception:
                log.exception("agentstate: a command failed")

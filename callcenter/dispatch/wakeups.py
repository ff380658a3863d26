"""Waking the dispatch loops of every instance, through Redis.

A new order or a refusal wakes the dispatch loop at once instead of at its next tick. In one
process that is an ``asyncio.Event``; when the web side and the loops run in different
instances (``CALLCENTER_INSTANCE_ROLE`` web / worker), the instance that saved the order
publishes a wake-up on ``CHANNEL`` and every instance running a loop listens. Losing one
(Redis away for a moment) costs nothing but time: the loop still ticks every
``CALLCENTER_DISPATCH_INTERVAL`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from callcenter.realtime.subscription import subscribe_forever

log = logging.getLogger("callcenter.dispatch")

CHANNEL = "cc:dispatch-wake"


class RedisWakeups:
    """Publishes wake-ups (coalesced: at most one in flight, and one more if asked meanwhile)
    and delivers those of every instance to ``wake``."""

    def __init__(self, redis: Any, channel: str = CHANNEL) -> None:
        self.redis = redis
        self.channel = channel
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def publish(self) -> None:
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._publish(), name="dispatch-wake")

    async def _publish(self) -> None:
        while self._again:
            self._again = False
            try:
                await self.redis.publish(self.channel, "1")
            except (RedisError, OSError) as e:
                log.warning("dispatch: wake-up not published (%s); the loops tick anyway", type(e).__name__)
                return

    async def listen(self, wake: Callable[[], None], ready: Callable[[], None] | None = None) -> None:
        """Call ``wake`` for every wake-up any instance publishes, until cancelled; survives
        Redis going away (resubscribes with backoff, and wakes once when back: a wake-up may
        have been lost meanwhile)."""
        async def subscribed(first: bool) -> None:
            if first and ready is not None:
                ready()
            elif not first:
                wake()

        await subscribe_forever(self.redis, self.channel, lambda _: wake(), on_subscribed=subscribed,
                                what="dispatch wake-ups", log=log)

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 2.0)

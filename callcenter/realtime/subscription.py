"""One Redis subscription that outlives Redis going away: what the mailbox, the wallboard
snapshot and the dispatch wake-ups each listen with."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError


async def subscribe_forever(redis: Any, channel: str, on_message: Callable[[str], None], *,
                            on_subscribed: Callable[[bool], Awaitable[None]] | None = None,
                            what: str, log: logging.Logger) -> None:
    """Hand every message published on ``channel`` (as text) to ``on_message``, until
    cancelled. When the subscription is lost it resubscribes with backoff (0.1 s doubling up to
    5 s) and awaits ``on_subscribed(first)`` after each subscription (``first`` the first time):
    the place to catch up on what was published meanwhile."""
    delay, first = 0.1, True
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if on_subscribed is not None:
                await on_subscribed(first)
            first, delay = False, 0.1
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None or msg.get("type") != "message":
                    continue
                data = msg["data"]
                on_message(data if isinstance(data, str) else data.decode())
        except (RedisError, OSError) as e:
            log.warning("%s: redis subscription lost (%s); resubscribing", what, type(e).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

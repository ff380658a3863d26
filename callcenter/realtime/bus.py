"""Event bus between instances: in-process for one process, Redis pub/sub for several.

Messages are JSON objects on named channels. A handler is a plain function called on the event
loop for each message; it must not block (the websocket hub only enqueues).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("callcenter.bus")

Handler = Callable[[dict[str, Any]], None]


class EventBus(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...
    def subscribe(self, channel: str, handler: Handler) -> None: ...


def _call(handlers: list[Handler], message: dict[str, Any], channel: str) -> None:
    for h in handlers:
        try:
            h(message)
        except Exception:
            log.exception("bus handler failed on channel %s", channel)


class InProcessBus:
    """Delivers to this process's subscribers, synchronously and in publish order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        _call(self._handlers.get(channel, []), message, channel)

    def publish_nowait(self, channel: str, message: dict[str, Any]) -> None:
        _call(self._handlers.get(channel, []), message, channel)

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].append(handler)


class RedisBus:
    """Redis pub/sub: every instance subscribed to a channel gets every message.

    ``run()`` is the listener task (started in the app's cleanup_ctx); it reconnects by itself
    (redis-py's PubSub re-subscribes on reconnect).
    """

    def __init__(self, redis: Any, prefix: str = "cc:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self.ready = asyncio.Event()

    def channel_name(self, channel: str) -> str:
        return self.prefix + channel

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self.redis.publish(self.prefix + channel, json.dumps(message, ensure_ascii=False, default=str))

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].append(handler)

    async def run(self) -> None:
        """Listen until cancelled."""
        names = [self.prefix + c for c in self._handlers]
        if not names:
            self.ready.set()
            await asyncio.Event().wait()
        await self._pubsub.subscribe(*names)
        self.ready.set()
        plen = len(self.prefix)
        try:
            while True:
                try:
                    msg = await self._pubsub.get_message(timeout=1.0)
                except (ConnectionError, OSError) as e:
                    log.warning("bus: redis connection problem (%s); retrying", type(e).__name__)
                    await asyncio.sleep(0.5)
                    continue
                if msg is None or msg.get("type") != "message":
                    continue
                channel = msg["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode()
                data = msg["data"]
                try:
                    payload = json.loads(data)
                except ValueError:
                    log.warning("bus: dropped a non-JSON message on %s", channel)
                    continue
                _call(self._handlers.get(channel[plen:], []), payload, channel)
        finally:
            await self._pubsub.aclose()

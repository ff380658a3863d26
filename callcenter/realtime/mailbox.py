"""Per-agent message sequence and replay buffer for the screen-pop websocket.

Every message an agent should see gets the next number of that agent's sequence; the last
``limit`` are kept so a client that reconnects with its last number gets what it missed. Posting
also fans the message out to every instance (``deliver`` handlers), where the websocket hub
hands it to the agent's sockets.

Two implementations behind one interface: in this process (``LocalMailbox``) or in Redis
(``RedisMailbox``: the counter, the bounded list and the publish are one Lua script, so two
instances can never hand out the same number and a message is never published unnumbered).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from callcenter.realtime.subscription import subscribe_forever

log = logging.getLogger("callcenter.mailbox")

Deliver = Callable[[int, dict[str, Any]], None]
SessionEnded = Callable[[str], None]
CHANNEL = "agent-messages"
# On the same channel as the messages (so one subscription carries both): a login session that
# ended, "end-session <session key>"; every instance closes its sockets.
_END_SESSION = "end-session "


class Mailbox(Protocol):
    async def post(self, agent_id: int, message: dict[str, Any]) -> dict[str, Any]:
        """Number ``message`` (adds ``seq``), keep it, deliver it everywhere; returns it."""
        ...

    async def since(self, agent_id: int, seq: int) -> tuple[int, list[dict[str, Any]] | None]:
        """(current seq, messages after ``seq``, each at least ``{"seq", "_text"}``); None
        instead of the list when some of them are no longer kept (the client must reload
        instead of replaying)."""
        ...

    def on_deliver(self, handler: Deliver) -> None: ...

    async def end_session(self, session: str) -> None:
        """Tell every instance that a login session ended (its sockets must close)."""
        ...

    def on_session_end(self, handler: SessionEnded) -> None: ...


def _seq_of(text: str) -> int:
    """The number of a kept message without parsing it: its text is '{"seq":N,…}' (_POST)."""
    end = text.find(",", 7)
    return int(text[7:end if end > 0 else -1])


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)


class LocalMailbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seq: dict[int, int] = {}
        # (seq, JSON text) only: a kept pop is one string, which the garbage collector never
        # has to walk (1000 agents × 200 pops as dicts made every full collection slow).
        self._kept: dict[int, deque[tuple[int, str]]] = {}
        self._deliver: list[Deliver] = []
        self._ended: list[SessionEnded] = []
        # Per agent, the highest number seen on this instance (every instance hears every
        # post), plus one for each post lost while Redis was away: after Redis loses its
        # counters they go on from here, never reusing a number, and a lost message leaves a
        # gap the hub's catch-up turns into a resync.
        self._high: dict[int, int] = {}

    def on_deliver(self, handler: Deliver) -> None:
        self._deliver.append(handler)

    def on_session_end(self, handler: SessionEnded) -> None:
        self._ended.append(handler)

    async def end_session(self, session: str) -> None:
        for h in self._ended:
            h(session)

    async def post(self, agent_id: int, message: dict[str, Any]) -> dict[str, Any]:
        seq = self._seq.get(agent_id, 0) + 1
        self._seq[agent_id] = seq
        numbered = {"seq": seq, **message}
        # Serialised once here; every socket of the agent sends the same text.
        numbered["_text"] = _dumps({k: v for k, v in numbered.items() if k != "_text"})
        kept = self._kept.get(agent_id)
        if kept is None:
            kept = self._kept[agent_id] = deque(maxlen=max(1, self.limit))
        kept.append((seq, numbered["_text"]))
        for h in self._deliver:
            h(agent_id, numbered)
        return numbered

    async def since(self, agent_id: int, seq: int) -> tuple[int, list[dict[str, Any]] | None]:
        current = self._seq.get(agent_id, 0)
        if seq >= current:
            return current, []
        kept = self._kept.get(agent_id, deque())
        missed = [{"seq": s, "_text": text} for s, text in kept if s > seq]
        if not missed or missed[0]["seq"] != seq + 1:
            return current, None
        return current, missed


# KEYS: seq key, list key; ARGV: message JSON (an object, without seq), limit, channel, agent id,
# floor. A missing counter (Redis restarted without persistence, or flushed) starts from the
# floor — the highest number this instance has seen for the agent — so numbers never go back.
_POST = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[5])
end
local seq = redis.call('INCR', KEYS[1])
local body = ARGV[1]
local text
if body == '{}' then
  text = '{"seq":' .. seq .. '}'
else
  text = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
end
redis.call('RPUSH', KEYS[2], text)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. seq .. ' ' .. text)
return seq
"""


class RedisMailbox:
    """Sequence and replay list per agent in Redis; delivery through Redis pub/sub.

    ``run()`` is the subscriber task; it must be running for deliveries to arrive.
    """

    def __init__(self, redis: Any, limit: int, prefix: str = "cc:") -> None:
        self.redis = redis
        self.limit = max(1, limit)
        self.prefix = prefix
        self.channel = prefix + CHANNEL
        self._script = redis.register_script(_POST)
        self._deliver: list[Deliver] = []
        self._ended: list[SessionEnded] = []
        # Per agent, the highest number seen on this instance (every instance hears every
        # post), plus one for each post lost while Redis was away: after Redis loses its
        # counters they go on from here, never reusing a number, and a lost message leaves a
        # gap the hub's catch-up turns into a resync.
        self._high: dict[int, int] = {}

    def on_deliver(self, handler: Deliver) -> None:
        self._deliver.append(handler)

    def on_session_end(self, handler: SessionEnded) -> None:
        self._ended.append(handler)

    async def end_session(self, session: str) -> None:
        await self.redis.publish(self.channel, _END_SESSION + session)

    def _keys(self, agent_id: int) -> list[str]:
        return [f"{self.prefix}agent:{agent_id}:seq", f"{self.prefix}agent:{agent_id}:msgs"]

    async def post(self, agent_id: int, message: dict[str, Any]) -> dict[str, Any]:
        high = self._high.get(agent_id, 0)
        try:
            seq = int(await self._script(keys=self._keys(agent_id),
                                         args=[_dumps(message), self.limit, self.channel, agent_id, high]))
        except Exception:
            self._high[agent_id] = high + 1  # this message is lost: its number is burnt
            log.error("mailbox: a %s for agent %s was lost (Redis unreachable); the agent's "
                      "screen will resynchronise", message.get("type", "message"), agent_id)
            raise
        if seq > self._high.get(agent_id, 0):
            self._high[agent_id] = seq
        return {"seq": seq, **message}

    async def since(self, agent_id: int, seq: int) -> tuple[int, list[dict[str, Any]] | None]:
        seq_key, list_key = self._keys(agent_id)
        async with self.redis.pipeline(transaction=True) as p:
            p.get(seq_key)
            p.lrange(list_key, 0, -1)
            current_raw, items = await p.execute()
        current = max(int(current_raw or 0), self._high.get(agent_id, 0))
        if seq >= current:
            return current, []
        missed = [{"seq": n, "_text": text} for text in items if (n := _seq_of(text)) > seq]
        if not missed or missed[0]["seq"] != seq + 1:
            return current, None
        return current, missed

    async def run(self, ready: Callable[[], None] | None = None,
                  resubscribed: Callable[[], None] | None = None) -> None:
        """Deliver what any instance posts to this instance's handlers, until cancelled.

        Survives Redis going away: it resubscribes with backoff and then calls
        ``resubscribed()`` so the hub can fetch what was published meanwhile (``since``).
        Delivered messages carry only ``seq`` and ``_text`` (the JSON is not parsed here:
        every instance receives every agent's messages).
        """
        async def subscribed(first: bool) -> None:
            if first and ready is not None:
                ready()
            elif not first and resubscribed is not None:
                resubscribed()

        def take(data: str) -> None:
            if data.startswith(_END_SESSION):
                for e in self._ended:
                    e(data[len(_END_SESSION):])
                return
            agent_raw, seq_raw, text = data.split(" ", 2)
            agent_id, message = int(agent_raw), {"seq": int(seq_raw), "_text": text}
            if message["seq"] > self._high.get(agent_id, 0):
                self._high[agent_id] = message["seq"]
            for h in self._deliver:
                h(agent_id, message)

        await subscribe_forever(self.redis, self.channel, take, on_subscribed=subscribed,
                                what="mailbox", log=log)

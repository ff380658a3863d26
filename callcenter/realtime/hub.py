"""Websocket fan-out: each client its own bounded queue; a client that cannot keep up is
dropped, never waited for (one slow browser must not delay another agent's pop)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from aiohttp import WSCloseCode, web

log = logging.getLogger("callcenter.ws")

# Close code for "you fell behind": the browser reconnects and replays from its last seq.
TOO_SLOW = WSCloseCode.TRY_AGAIN_LATER
# Close code for "your login session ended" (logout or expiry): reconnecting gets a 401.
SESSION_ENDED = 4401


class Client:
    """One websocket of one agent."""

    __slots__ = ("ws", "agent_id", "session", "queue", "last_seq", "replaying", "pending", "dropped",
                 "writer")

    def __init__(self, ws: web.WebSocketResponse, agent_id: int, queue_size: int, last_seq: int,
                 session: str | None = None) -> None:
        self.ws = ws
        self.agent_id = agent_id
        # The login session that opened the socket (its key, AuthService.session_key): the
        # socket ends with it (WebsocketHub.end_session).
        self.session = session
        # Texts waiting to be written; bounded so a stalled client costs bounded memory.
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        # Highest seq handed to this client: replay and live delivery never send one twice.
        self.last_seq = last_seq
        # While the missed messages are fetched, live ones wait here so order is kept.
        self.replaying = True
        self.pending: list[dict[str, Any]] = []
        self.dropped = False
        self.writer: asyncio.Task | None = None

    def offer(self, message: dict[str, Any]) -> None:
        if self.dropped:
            return
        if self.replaying:
            self.pending.append(message)
            return
        seq = message.get("seq", 0)
        if seq and seq <= self.last_seq:
            return
        try:
            self.queue.put_nowait(message["_text"])
        except asyncio.QueueFull:
            self.drop()
            return
        if seq:
            self.last_seq = seq

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            log.warning("ws: dropped a client of agent %s that fell %d messages behind",
                        self.agent_id, self.queue.qsize())
            asyncio.get_running_loop().create_task(
                self.ws.close(code=TOO_SLOW, message=b"too slow, reconnect with last seq"))

    def finish_replay(self, missed: list[dict[str, Any]]) -> None:
        self.replaying = False
        pending, self.pending = self.pending, []
        for m in sorted(missed + pending, key=lambda m: m.get("seq", 0)):
            self.offer(m)

    async def write_loop(self) -> None:
        """Send queued texts until cancelled or the socket closes."""
        ws, q = self.ws, self.queue
        while True:
            text = await q.get()
            if ws.closed:
                return
            await ws.send_str(text)


class WebsocketHub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._by_agent: dict[int, set[Client]] = defaultdict(set)

    @property
    def client_count(self) -> int:
        return sum(len(s) for s in self._by_agent.values())

    def deliver(self, agent_id: int, message: dict[str, Any]) -> None:
        """Called (synchronously) for every numbered message posted to ``agent_id``."""
        clients = self._by_agent.get(agent_id)
        if clients:
            for c in tuple(clients):
                c.offer(message)

    def add(self, ws: web.WebSocketResponse, agent_id: int, last_seq: int,
            session: str | None = None) -> Client:
        client = Client(ws, agent_id, self.queue_size, last_seq, session)
        self._by_agent[agent_id].add(client)
        client.writer = asyncio.get_running_loop().create_task(client.write_loop())
        return client

    def remove(self, client: Client) -> None:
        clients = self._by_agent.get(client.agent_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._by_agent[client.agent_id]
        if client.writer is not None:
            client.writer.cancel()

    async def catch_up(self, mailbox: Any) -> None:
        """After a gap in delivery (the Redis subscription was lost), hand every client what
        was posted meanwhile, or tell it to resync if that is no longer kept."""
        for c in [c for s in self._by_agent.values() for c in s]:
            if c.dropped or c.replaying:
                continue
            try:
                current, missed = await mailbox.since(c.agent_id, c.last_seq)
            except Exception:
                log.warning("ws: catch-up for agent %s failed", c.agent_id)
                continue
            if missed is None:
                c.last_seq = current
                try:
                    c.queue.put_nowait(json.dumps({"type": "resync", "seq": current}))
                except asyncio.QueueFull:
                    c.drop()
            else:
                for m in missed:
                    c.offer(m)

    def end_session(self, session: str) -> None:
        """A login session ended (logout on any instance): close its sockets here. Called
        synchronously by the mailbox; the closes run as tasks."""
        for c in [c for s in self._by_agent.values() for c in s if c.session == session]:
            c.dropped = True  # nothing more is queued for it
            asyncio.get_running_loop().create_task(c.ws.close(code=SESSION_ENDED, message=b"session ended"))

    async def close_all(self) -> None:
        """Shutdown: close every socket with GOING_AWAY so browsers reconnect elsewhere."""
        clients = [c for s in self._by_agent.values() for c in s]
        await asyncio.gather(*(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                               for c in clients), return_exceptions=True)
        for c in clients:
            self.remove(c)

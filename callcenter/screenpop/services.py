"""The screen-pop: the caller's context is looked up when the call joins the queue, and handed
to the agent whose phone rings, then followed by answered / missed / abandoned / ended.

Messages for one call go out in the order the tracker produced them (a per-call chain of
tasks), while different calls never wait for each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callcenter.calls.agents import AgentDirectory
from callcenter.calls.tracker import NotifyAgent
from callcenter.clock import Clock, utcnow
from callcenter.privacy import mask_phone
from callcenter.realtime.mailbox import Mailbox

log = logging.getLogger("callcenter.screenpop")

# Seconds the pop waits for a slow lookup before it goes out without the history.
LOOKUP_WAIT = 2.0

Lookup = Callable[[AsyncConnection, str, dt.datetime, str], Awaitable[Any]]


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def call_json(call: dict[str, Any], member: str) -> dict[str, Any]:
    """What an agent's screen gets of a call: the number masked, never the name Asterisk sent."""
    return {
        "id": call["id"],
        "direction": "inbound",
        "queue": call["queue"],
        "did": call["did"],
        "caller": mask_phone(call["caller"]) if call["caller"] else None,
        "anonymous": not call["caller"],
        "state": call["state"],
        "outcome": call["outcome"],
        "member": member,
        "answered_by_me": call["answered_by"] == member,
        "started_at": _iso(call["started_at"]),
        "answered_at": _iso(call["answered_at"]),
        "ended_at": _iso(call["ended_at"]),
        "hold_s": call["hold_s"],
        "talk_s": call["talk_s"],
    }


class ScreenPopService:
    def __init__(self, engine: AsyncEngine, mailbox: Mailbox,
                 agents: AgentDirectory, lookup: Lookup, *, clock: Clock = utcnow,
                 on_customer: Callable[[str, int | None], None] | None = None) -> None:
        self._engine = engine
        self._mailbox = mailbox
        self._agents = agents
        self._lookup = lookup
        self._clock = clock
        self._on_customer = on_customer
        # Linkedid → the lookup task; its result is {"customer": ..., "history": ...}.
        self._contexts: dict[str, asyncio.Task] = {}
        # Linkedid → the last delivery task of that call (the next one waits for it).
        self._chains: dict[str, asyncio.Task] = {}
        self.delivered = 0
        self.unbound_members: set[str] = set()

    @property
    def busy(self) -> bool:
        """Lookups or deliveries still under way."""
        return bool(self._chains) or any(not t.done() for t in self._contexts.values())

    def prepare(self, linkedid: str, caller: str) -> None:
        """Start the caller lookup for a call that just joined a queue (does not wait)."""
        if linkedid not in self._contexts:
            self._contexts[linkedid] = asyncio.get_running_loop().create_task(
                self._build(linkedid, caller), name=f"lookup-{linkedid}")

    async def _build(self, linkedid: str, caller: str) -> dict[str, Any]:
        # A plain connection, not an ORM Session: the lookup is Core selects, and the Session's
        # per-use bookkeeping was over half the server's CPU at 300 calls/s.
        async with self._engine.connect() as conn:
            ctx = await self._lookup(conn, caller, self._clock(), linkedid)
        if self._on_customer is not None:
            self._on_customer(linkedid, ctx.customer_id)
        return ctx.to_json(masked=True)

    def notify(self, effect: NotifyAgent) -> None:
        """Queue a message for the agent behind ``effect.member``, after the call's earlier ones."""
        lid = effect.call["id"]
        prev = self._chains.get(lid)
        task = asyncio.get_running_loop().create_task(self._deliver_after(prev, effect))
        self._chains[lid] = task
        task.add_done_callback(lambda t, lid=lid: self._chain_done(lid, t))

    def _chain_done(self, lid: str, task: asyncio.Task) -> None:
        if self._chains.get(lid) is task:
            del self._chains[lid]
        if not task.cancelled() and task.exception() is not None:
            log.error("screen-pop delivery failed", exc_info=task.exception())

    def forget(self, linkedid: str) -> None:
        """The call ended: drop its context once its last messages are out."""
        prev = self._chains.get(linkedid)
        ctx = self._contexts.get(linkedid)
        if prev is None:
            self._drop(linkedid, ctx)
        else:
            prev.add_done_callback(lambda _t: self._drop(linkedid, ctx))

    def forget_all(self) -> None:
        """Drop every prepared context (messages already queued still go out)."""
        for task in self._contexts.values():
            task.cancel()
        self._contexts.clear()

    def _drop(self, linkedid: str, ctx: asyncio.Task | None) -> None:
        if self._contexts.get(linkedid) is ctx and linkedid not in self._chains:
            self._contexts.pop(linkedid, None)

    async def _deliver_after(self, prev: asyncio.Task | None, e: NotifyAgent) -> None:
        if prev is not None:
            await asyncio.wait([prev])
        agent_id = self._agents.resolve(e.member, e.interface)
        if agent_id is None:
            if e.member not in self.unbound_members:
                self.unbound_members.add(e.member)
                log.warning("screen-pop: queue member %s is bound to no agent", e.member)
            return
        message: dict[str, Any] = {"type": e.type, "call": call_json(e.call, e.member)}
        if e.reason:
            message["reason"] = e.reason
        context = await self._context(e.call["id"], wait=e.type == "call.ringing")
        message["customer"] = context.get("customer") if context else None
        if context and context.get("callback"):  # an outbound callback (callcenter.outbound)
            message["callback"] = context["callback"]
        if e.type == "call.ringing":
            message["history"] = context.get("history") if context else None
            if context is None:
                message["lookup"] = "unavailable"
        await self._mailbox.post(agent_id, message)
        self.delivered += 1

    async def _context(self, linkedid: str, wait: bool) -> dict[str, Any] | None:
        task = self._contexts.get(linkedid)
        if task is None:
            return None
        if not task.done():
            if not wait:
                return None
            done, _ = await asyncio.wait([task], timeout=LOOKUP_WAIT)
            if not done:
                log.warning("screen-pop: caller lookup slower than %.1fs; pop sent without history", LOOKUP_WAIT)
                return None
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("screen-pop: caller lookup failed: %s", type(task.exception()).__name__)
            return None
        return task.result()

    async def close(self) -> None:
        tasks = list(self._chains.values()) + list(self._contexts.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

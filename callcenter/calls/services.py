"""Glue between the AMI connector and the rest: events → tracker → effects carried out."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.ami.codec import Message
from callcenter.ami.connector import AmiConnector
from callcenter.calls.events import to_call_event
from callcenter.calls.recorder import CallRecorder
from callcenter.calls.tracker import CallTracker, Effect, LookUpCaller, NotifyAgent, SaveCall
from callcenter.clock import Clock, utcnow
from callcenter.db.models import Call
from callcenter.screenpop.services import ScreenPopService

log = logging.getLogger("callcenter.calls")


class CallService:
    """Registered as the connector's event handler and login hook."""

    def __init__(self, tracker: CallTracker, recorder: CallRecorder, pops: ScreenPopService,
                 engine: AsyncEngine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self.tracker = tracker
        self.recorder = recorder
        self.pops = pops
        self._clock = clock
        # Called when an abandoned call has ended (callcenter.outbound queues its callback).
        self.on_abandoned: Callable[[], None] | None = None

    def reset(self) -> None:
        """Forget live calls without telling anyone (leadership moved to another instance,
        which rebuilds them from Asterisk and owns their records now)."""
        self.tracker.calls.clear()
        self.pops.forget_all()

    def on_ami_event(self, msg: Message) -> None:
        """Read path: map, apply, schedule. No awaiting here."""
        event = to_call_event(msg)
        if event is None:
            return
        self.carry_out(self.tracker.apply(event, self._clock()))

    def carry_out(self, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, NotifyAgent):
                self.pops.notify(e)
            elif isinstance(e, SaveCall):
                self.recorder.save(e.call)
                if e.call["state"] == "ended":
                    self.pops.forget(e.call["id"])
                    if e.call["outcome"] == "abandoned" and self.on_abandoned is not None:
                        self.on_abandoned()  # issue 5: the abandoned caller gets a callback
            elif isinstance(e, LookUpCaller):
                self.pops.prepare(e.linkedid, e.caller)

    async def resync(self, connector: AmiConnector) -> None:
        """Login hook: rebuild live calls from what Asterisk says is there now."""
        known = set(self.tracker.calls)
        channels = await connector.send_list_action("CoreShowChannels")
        queue_items = await connector.send_list_action("QueueStatus")
        entries = [m for m in queue_items if m.get("Event") == "QueueEntry"]
        members = [m for m in queue_items if m.get("Event") == "QueueMember"]
        effects = self.tracker.resync(channels, entries, members, self._clock(),
                                      known_before=known)
        rebuilt = {lid for lid, c in self.tracker.calls.items() if c.rebuilt and lid not in known}
        # Rebuilt calls are saved once their record's history is merged in (below).
        self.carry_out([e for e in effects if not (isinstance(e, SaveCall) and e.call["id"] in rebuilt)])
        if rebuilt:
            await self._merge_records(rebuilt)
        log.info("AMI resync: %d channels, %d queue callers, %d members, %d live calls",
                 len(channels), len(entries), len(members), len(self.tracker.calls))

    async def _merge_records(self, linkedids: set[str]) -> None:
        """A call rebuilt from the lists knows only the present; its record knows the past
        (when it started, who was rung, when it was answered). Keep both, then save."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(Call.linkedid, Call.started_at, Call.answered_at, Call.hold_s, Call.rang,
                       Call.did, Call.queue).where(Call.linkedid.in_(list(linkedids))))).all()
        for r in rows:
            call = self.tracker.calls.get(r.linkedid)
            if call is None:
                continue
            call.started_at = _aware(r.started_at)
            if r.answered_at is not None and call.answered_by is not None:
                call.answered_at = _aware(r.answered_at)
            if call.hold_s is None:
                call.hold_s = r.hold_s
            call.rang = [{k: v for k, v in ring.items() if k != "agent_id"} for ring in (r.rang or [])] + call.rang
            call.did = call.did or r.did
            call.queue = call.queue or r.queue
        for lid in linkedids:
            call = self.tracker.calls.get(lid)
            if call is not None:
                self.recorder.save(call.snapshot())


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)

"""Glue between the AMI connector and the rest: events → tracker → effects carried out."""

from __future__ import annotations

import logging

from callcenter.ami.codec import Message
from callcenter.ami.connector import AmiConnector
from callcenter.calls.events import to_call_event
from callcenter.calls.recorder import CallRecorder
from callcenter.calls.tracker import CallTracker, Effect, LookUpCaller, NotifyAgent, SaveCall
from callcenter.clock import Clock, utcnow
from callcenter.screenpop.services import ScreenPopService

log = logging.getLogger("callcenter.calls")


class CallService:
    """Registered as the connector's event handler and login hook."""

    def __init__(self, tracker: CallTracker, recorder: CallRecorder, pops: ScreenPopService,
                 *, clock: Clock = utcnow) -> None:
        self.tracker = tracker
        self.recorder = recorder
        self.pops = pops
        self._clock = clock

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
        self.carry_out(effects)
        log.info("AMI resync: %d channels, %d queue callers, %d members, %d live calls",
                 len(channels), len(entries), len(members), len(self.tracker.calls))

"""Call state keyed by Linkedid: domain call events in, effects out. No I/O.

The tracker answers two questions for every event: what changed in the call record, and which
agent's screen must hear about it. The service (``calls.services``) carries the effects out:
it persists, looks the caller up and pushes the pops.

Rules taken from the recordings (``shared/asterisk/transcripts``):
- the caller's channel is the one in ``QueueCallerJoin``; its ``Hangup`` ends the call (the
  Local ``;1`` half and agent legs hang up around it in any order);
- ``QueueCallerLeave`` comes *before* ``AgentConnect`` on an answered call, so leaving the queue
  decides nothing by itself: the outcome is settled when the call ends;
- a ring that ends unanswered is ``AgentRingNoAnswer`` and the queue then rings the next member
  under the same Linkedid;
- ``DialEnd`` (sent twice for one leg: NOANSWER then CANCEL) is not used at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.ami.codec import Message
from callcenter.calls.events import (
    AgentRinging,
    AgentRingNoAnswer,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallEvent,
    CallLeftQueue,
    CallQueued,
    ChannelHungUp,
    caller_id,
    device_of,
)


@dataclass(slots=True)
class LiveCall:
    """What is known of one live queue call."""

    linkedid: str
    caller_uniqueid: str
    caller: str
    caller_name: str
    did: str
    queue: str
    started_at: dt.datetime
    # queued | ringing | answered | ended
    state: str = "queued"
    # member name → interface, for members whose phone rings now
    ringing: dict[str, str] = field(default_factory=dict)
    # every ring, in order: {"member", "result": ringing|answered|no_answer|cancelled, "ring_ms"}
    rang: list[dict] = field(default_factory=list)
    answered_by: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    abandoned: bool = False
    left_queue: bool = False
    # Rebuilt from the list actions after a (re)login: what happened before is in the record.
    rebuilt: bool = False
    hold_s: int | None = None
    talk_s: int | None = None

    @property
    def outcome(self) -> str | None:
        if self.state != "ended":
            return None
        if self.answered_by is not None:
            return "answered"
        if self.abandoned:
            return "abandoned"
        return "unanswered"

    def snapshot(self) -> dict:
        """A plain copy for persistence and messages (the tracker keeps mutating its own)."""
        return {
            "id": self.linkedid,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "did": self.did,
            "queue": self.queue,
            "state": self.state,
            "outcome": self.outcome,
            "answered_by": self.answered_by,
            "rang": [dict(r) for r in self.rang],
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "hold_s": self.hold_s,
            "talk_s": self.talk_s,
        }


@dataclass(frozen=True, slots=True)
class LookUpCaller:
    """Start building the caller's screen-pop now, so it is ready when a phone rings."""

    linkedid: str
    caller: str


@dataclass(frozen=True, slots=True)
class NotifyAgent:
    """Tell the agent behind ``member`` about the call: call.ringing | call.answered |
    call.missed | call.abandoned | call.ended."""

    member: str
    interface: str
    type: str
    call: dict
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SaveCall:
    """Write the call record as it stands (insert or update by Linkedid)."""

    call: dict


Effect = LookUpCaller | NotifyAgent | SaveCall


class CallTracker:
    """Live queue calls by Linkedid. ``apply`` is deterministic: same events, same effects."""

    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}

    def apply(self, event: CallEvent, now: dt.datetime) -> list[Effect]:
        """Apply one event received at ``now``; returns the effects to carry out, in order."""
        if isinstance(event, CallQueued):
            return self._queued(event, now)
        call = self.calls.get(event.linkedid)
        if call is None:
            return []
        if isinstance(event, AgentRinging):
            return self._ringing(call, event)
        if isinstance(event, AgentRingNoAnswer):
            return self._ring_stopped(call, event.member, event.ring_ms, "no_answer")
        if isinstance(event, CallAnswered):
            return self._answered(call, event, now)
        if isinstance(event, CallLeftQueue):
            call.left_queue = True
            return []
        if isinstance(event, CallAbandoned):
            return self._abandoned(call, event)
        if isinstance(event, CallCompleted):
            call.talk_s = event.talk_s
            if event.hold_s is not None:
                call.hold_s = event.hold_s
            return []
        if isinstance(event, ChannelHungUp):
            if event.uniqueid == call.caller_uniqueid:
                return self._ended(call, now)
        return []

    # -- transitions ---------------------------------------------------------------------

    def _queued(self, e: CallQueued, now: dt.datetime) -> list[Effect]:
        call = self.calls.get(e.linkedid)
        if call is not None:
            # The same call moved to another queue (transfer, overflow): same record.
            call.queue = e.queue
            call.left_queue = False
            if call.state != "answered":
                call.state = "queued"
            return [SaveCall(call.snapshot())]
        call = LiveCall(linkedid=e.linkedid, caller_uniqueid=e.uniqueid, caller=e.caller,
                        caller_name=e.caller_name, did=e.did, queue=e.queue, started_at=now)
        self.calls[e.linkedid] = call
        return [LookUpCaller(e.linkedid, e.caller), SaveCall(call.snapshot())]

    def _ringing(self, call: LiveCall, e: AgentRinging) -> list[Effect]:
        if call.state == "ended":
            return []
        call.ringing[e.member] = e.interface
        call.rang.append({"member": e.member, "result": "ringing", "ring_ms": None})
        if call.state == "queued":
            call.state = "ringing"
        return [NotifyAgent(e.member, e.interface, "call.ringing", call.snapshot())]

    def _ring_stopped(self, call: LiveCall, member: str, ring_ms: int | None,
                      reason: str, *, save: bool = True) -> list[Effect]:
        interface = call.ringing.pop(member, None)
        if interface is None:
            return []
        for r in reversed(call.rang):
            if r["member"] == member and r["result"] == "ringing":
                r["result"] = reason
                r["ring_ms"] = ring_ms
                break
        if not call.ringing and call.state == "ringing":
            call.state = "queued"
        snap = call.snapshot()
        return [NotifyAgent(member, interface, "call.missed", snap, reason)] + ([SaveCall(snap)] if save else [])

    def _answered(self, call: LiveCall, e: CallAnswered, now: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        interface = call.ringing.pop(e.member, e.interface)
        for r in reversed(call.rang):
            if r["member"] == e.member and r["result"] == "ringing":
                r["result"] = "answered"
                r["ring_ms"] = e.ring_s * 1000 if e.ring_s is not None else None
                break
        call.answered_by = e.member
        call.answered_at = now
        if e.hold_s is not None:
            call.hold_s = e.hold_s
        # Under ringall the others' phones stop: their pop must go away.
        for member in list(call.ringing):
            effects.extend(self._ring_stopped(call, member, None, "answered_elsewhere", save=False))
        call.state = "answered"
        effects.append(NotifyAgent(e.member, interface, "call.answered", call.snapshot()))
        effects.append(SaveCall(call.snapshot()))
        return effects

    def _abandoned(self, call: LiveCall, e: CallAbandoned) -> list[Effect]:
        call.abandoned = True
        call.hold_s = e.hold_s
        effects: list[Effect] = []
        for member, interface in list(call.ringing.items()):
            for r in call.rang:
                if r["member"] == member and r["result"] == "ringing":
                    r["result"] = "cancelled"
            effects.append(NotifyAgent(member, interface, "call.abandoned", call.snapshot(), "caller_hung_up"))
        call.ringing.clear()
        return effects

    def _ended(self, call: LiveCall, now: dt.datetime) -> list[Effect]:
        effects: list[Effect] = []
        if call.ringing and not call.abandoned:
            # The caller hung up while phones rang but no QueueCallerAbandon came (left the
            # queue first, e.g. timeout): the ringing agents still must drop the pop.
            call.abandoned = call.answered_by is None
            for member, interface in list(call.ringing.items()):
                effects.append(NotifyAgent(member, interface, "call.abandoned", call.snapshot(), "caller_hung_up"))
            call.ringing.clear()
        call.state = "ended"
        call.ended_at = now
        if call.talk_s is None and call.answered_at is not None:
            call.talk_s = max(0, round((now - call.answered_at).total_seconds()))
        snap = call.snapshot()
        if call.answered_by is not None:
            effects.append(NotifyAgent(call.answered_by, "", "call.ended", snap))
        effects.append(SaveCall(snap))
        del self.calls[call.linkedid]
        return effects

    # -- resynchronisation after a (re)login ----------------------------------------------

    def _reconcile(self, call: LiveCall, chans: list[Message],
                   member_by_device: dict[str, tuple[str, str]], now: dt.datetime) -> list[Effect]:
        """A call we knew that is still there: catch up with what happened while we were away
        (a ringing phone answered, or its ring over)."""
        effects: list[Effect] = []
        present = {device_of(c.get("Channel", "")): c for c in chans}
        if call.answered_by is None:
            bridged = next((member_by_device[d] for d, c in present.items()
                            if d in member_by_device and c.get("BridgeId")), None)
            if bridged is not None:
                member, interface = bridged
                effects.extend(self._answered(call, CallAnswered(call.linkedid, call.queue, member,
                                                                 interface, None, None), now))
        for member, interface in list(call.ringing.items()):
            if device_of(interface) not in present:
                effects.extend(self._ring_stopped(call, member, None, "no_answer"))
        return effects

    def resync(self, channels: Iterable[Message], entries: Iterable[Message],
               members: Iterable[Message], now: dt.datetime, *,
               known_before: Iterable[str] | None = None) -> list[Effect]:
        """Rebuild from ``CoreShowChannels`` / ``QueueStatus`` answers read after a login.

        Calls we tracked whose channels are gone ended while we were away; queue callers we
        did not know are picked up (their pop is prepared, no agent is rung retroactively);
        answered calls are tied to the member whose device has a leg in the same Linkedid.

        ``known_before``: the calls tracked when the list actions were sent. Only those can be
        declared ended for missing from the lists: a call whose events arrived while the lists
        were on their way is newer than them.
        """
        by_linkedid: dict[str, list[Message]] = {}
        linkedid_of: dict[str, str] = {}
        for ch in channels:
            lid = ch.get("Linkedid", "")
            by_linkedid.setdefault(lid, []).append(ch)
            linkedid_of[ch.get("Uniqueid", "")] = lid
        member_by_device = {device_of(m.get("Location", "")): (m.get("Name", ""), m.get("Location", ""))
                            for m in members}
        effects: list[Effect] = []
        candidates = self.calls if known_before is None else set(known_before)
        for lid in [lid for lid in candidates if lid in self.calls and lid not in by_linkedid]:
            effects.extend(self._ended(self.calls[lid], now))
        for lid in [lid for lid in candidates if lid in self.calls]:
            effects.extend(self._reconcile(self.calls[lid], by_linkedid[lid], member_by_device, now))
        for entry in entries:
            lid = linkedid_of.get(entry.get("Uniqueid", ""))
            if not lid or lid in self.calls:
                continue
            wait = int(entry.get("Wait", "0") or 0)
            call = LiveCall(linkedid=lid, caller_uniqueid=entry.get("Uniqueid", ""),
                            caller=caller_id(entry.get("CallerIDNum")),
                            caller_name=caller_id(entry.get("CallerIDName")), did="",
                            queue=entry.get("Queue", ""), started_at=now - dt.timedelta(seconds=wait),
                            rebuilt=True)
            for ch in by_linkedid[lid]:
                if ch.get("Uniqueid") == call.caller_uniqueid:
                    call.did = ch.get("Exten", "")
            self.calls[lid] = call
            effects.append(LookUpCaller(lid, call.caller))
            effects.append(SaveCall(call.snapshot()))
        for lid, chans in by_linkedid.items():
            if lid in self.calls:
                continue
            caller = next((c for c in chans if c.get("Application") == "Queue"), None)
            if caller is None or not caller.get("BridgeId"):
                continue
            agent = next((member_by_device[device_of(c.get("Channel", ""))] for c in chans
                          if device_of(c.get("Channel", "")) in member_by_device and c.get("BridgeId")), None)
            if agent is None:
                continue
            seconds = _duration(caller.get("Duration", ""))
            call = LiveCall(linkedid=lid, caller_uniqueid=caller.get("Uniqueid", ""),
                            caller=caller_id(caller.get("CallerIDNum")),
                            caller_name=caller_id(caller.get("CallerIDName")),
                            did=caller.get("Exten", ""), queue="",
                            started_at=now - dt.timedelta(seconds=seconds), state="answered",
                            answered_by=agent[0], answered_at=now, rebuilt=True)
            self.calls[lid] = call
            effects.append(SaveCall(call.snapshot()))
        return effects


def _duration(hms: str) -> int:
    try:
        h, m, s = (int(x) for x in hms.split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + s

"""AMI message → domain call event: a pure function, tested on the recorded frames.

Only the queue events (class ``agent``) and ``Hangup`` carry what the call tracker needs; every
other message maps to None so the read path stays cheap (``DeviceStateChange``, ``VarSet``,
``Newexten`` … are most of a busy stream and are dropped after one dict lookup).

Field notes from the Asterisk 22 recordings:
- ``QueueCallerJoin`` names the caller's channel; ``Exten`` there is the DID dialled.
- ``AgentCalled``/``AgentConnect``/``AgentComplete``/``AgentRingNoAnswer`` carry the caller
  channel's fields (``Linkedid``, ``Uniqueid``) and the agent leg's (``Dest*``) plus
  ``Queue``/``Interface``/``MemberName``.
- ``<unknown>`` (and an empty value) means "no caller id".
"""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.ami.codec import Message

UNKNOWN = "<unknown>"


def caller_id(value: str | None) -> str:
    """A CallerIDNum/Name as the caller sent it, '' when Asterisk had none."""
    if not value or value == UNKNOWN or value == "unknown":
        return ""
    return value


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CallQueued:
    linkedid: str
    uniqueid: str  # the caller's channel: its Hangup ends the call
    channel: str
    caller: str  # '' for anonymous
    caller_name: str
    did: str
    queue: str
    position: int | None


@dataclass(frozen=True, slots=True)
class AgentRinging:
    linkedid: str
    queue: str
    member: str
    interface: str


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer:
    linkedid: str
    queue: str
    member: str
    interface: str
    ring_ms: int | None


@dataclass(frozen=True, slots=True)
class CallAnswered:
    linkedid: str
    queue: str
    member: str
    interface: str
    hold_s: int | None
    ring_s: int | None


@dataclass(frozen=True, slots=True)
class CallLeftQueue:
    linkedid: str
    queue: str


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    linkedid: str
    queue: str
    hold_s: int | None
    position: int | None
    original_position: int | None


@dataclass(frozen=True, slots=True)
class CallCompleted:
    linkedid: str
    queue: str
    member: str
    hold_s: int | None
    talk_s: int | None
    reason: str  # agent | caller | transfer


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    linkedid: str
    uniqueid: str
    cause: int | None


CallEvent = (CallQueued | AgentRinging | AgentRingNoAnswer | CallAnswered | CallLeftQueue
             | CallAbandoned | CallCompleted | ChannelHungUp)


def _queued(m: Message) -> CallQueued:
    return CallQueued(
        linkedid=m.get("Linkedid", ""), uniqueid=m.get("Uniqueid", ""), channel=m.get("Channel", ""),
        caller=caller_id(m.get("CallerIDNum")), caller_name=caller_id(m.get("CallerIDName")),
        did=m.get("Exten", ""), queue=m.get("Queue", ""), position=_int(m.get("Position")))


def _ringing(m: Message) -> AgentRinging:
    return AgentRinging(m.get("Linkedid", ""), m.get("Queue", ""), m.get("MemberName", ""),
                        m.get("Interface", ""))


def _no_answer(m: Message) -> AgentRingNoAnswer:
    return AgentRingNoAnswer(m.get("Linkedid", ""), m.get("Queue", ""), m.get("MemberName", ""),
                             m.get("Interface", ""), _int(m.get("RingTime")))


def _answered(m: Message) -> CallAnswered:
    return CallAnswered(m.get("Linkedid", ""), m.get("Queue", ""), m.get("MemberName", ""),
                        m.get("Interface", ""), _int(m.get("HoldTime")), _int(m.get("RingTime")))


def _left(m: Message) -> CallLeftQueue:
    return CallLeftQueue(m.get("Linkedid", ""), m.get("Queue", ""))


def _abandoned(m: Message) -> CallAbandoned:
    return CallAbandoned(m.get("Linkedid", ""), m.get("Queue", ""), _int(m.get("HoldTime")),
                         _int(m.get("Position")), _int(m.get("OriginalPosition")))


def _completed(m: Message) -> CallCompleted:
    return CallCompleted(m.get("Linkedid", ""), m.get("Queue", ""), m.get("MemberName", ""),
                         _int(m.get("HoldTime")), _int(m.get("TalkTime")), m.get("Reason", ""))


def _hangup(m: Message) -> ChannelHungUp:
    return ChannelHungUp(m.get("Linkedid", ""), m.get("Uniqueid", ""), _int(m.get("Cause")))


_MAPPERS = {
    "QueueCallerJoin": _queued,
    "AgentCalled": _ringing,
    "AgentRingNoAnswer": _no_answer,
    "AgentConnect": _answered,
    "QueueCallerLeave": _left,
    "QueueCallerAbandon": _abandoned,
    "AgentComplete": _completed,
    "Hangup": _hangup,
}

EVENT_NAMES = frozenset(_MAPPERS)


def to_call_event(msg: Message) -> CallEvent | None:
    """Map one AMI event to a domain call event, or None if the tracker does not need it.

    Events without a Linkedid (list answers, malformed ones) map to None as well.
    """
    mapper = _MAPPERS.get(msg.get("Event", ""))
    if mapper is None or not msg.get("Linkedid"):
        return None
    return mapper(msg)


def device_of(channel_or_interface: str) -> str:
    """The device a channel or queue interface belongs to: ``Local/8001@agents``,
    ``IAX2/agent8001``, ``PJSIP/8001`` (used to tie agent legs to members after a resync)."""
    tech, _, rest = channel_or_interface.partition("/")
    resource = rest.split("/", 1)[0]
    if ";" in resource:
        resource = resource.split(";", 1)[0]
    if "-" in resource and channel_or_interface != "":
        head, _, tail = resource.rpartition("-")
        if tail and all(c in "0123456789abcdef" for c in tail.lower()):
            resource = head
    return f"{tech}/{resource}"


def extension_of(interface: str) -> str:
    """The extension part of a queue interface: ``Local/8001@agents/n`` → 8001,
    ``PJSIP/8001`` → 8001, ``IAX2/agent8001/agent8001`` → agent8001."""
    _, _, rest = interface.partition("/")
    resource = rest.split("/", 1)[0]
    return resource.split("@", 1)[0]

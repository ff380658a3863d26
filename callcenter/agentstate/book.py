"""The live picture of the queues, from AMI events (pure, no I/O; ``now`` passed in).

:class:`LiveBook` keeps
- queue members by (queue, interface): paused and why, Asterisk's device status, in call;
- per agent (interface): the state the wallboard shows and since when — talking > ringing >
  paused > unavailable > available — from ``AgentCalled``/``AgentRingNoAnswer``/
  ``AgentConnect``/``AgentComplete`` and the ``QueueMember*`` events;
- callers waiting per queue (by the caller channel's Uniqueid) with when they joined;
- the day's facts per call (Linkedid), summed incrementally per queue and per member.

Field names differ between events and list answers: ``QueueMember*`` events say ``MemberName``
and ``Interface``, the ``QueueMember`` items of a ``QueueStatus`` answer say ``Name`` and
``Location`` (recording ``resync_mid_call``). Both are read here.

Counting follows Asterisk's queue statistics (``QueueParams``), so the service level agrees with
its ``ServicelevelPerf``: a call counts as *completed* when its conversation ends
(``AgentComplete``), *in service level* if its hold time at answer (``HoldTime``, whole seconds)
was ≤ the queue's ``ServiceLevel``; *abandoned* is ``QueueCallerAbandon``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from callcenter.ami.codec import Message

DEFAULT_SERVICE_LEVEL = 20
# Asterisk device states (QueueMember ``Status``) meaning "on a call" / "ringing" / "not there".
_BUSY_STATUS = frozenset({2, 3, 8})
_RINGING_STATUS = frozenset({6, 7})
_UNAVAILABLE_STATUS = frozenset({4, 5})
STATES = ("talking", "ringing", "paused", "unavailable", "available")

EVENT_NAMES = frozenset({
    "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
    "QueueMemberPenalty", "QueueMemberRinginuse",
    "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "Hangup",
})


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


@dataclass(slots=True)
class Member:
    queue: str
    interface: str
    name: str
    paused: bool = False
    reason: str = ""
    status: int = 1
    in_call: bool = False
    membership: str = "static"
    login_time: int = 0
    last_pause: int = 0


@dataclass(slots=True)
class Agent:
    """One interface across its queues, as the wallboard shows it."""

    interface: str
    name: str
    state: str = "available"
    since: float = 0.0
    reason: str = ""
    # Linkedids ringing / talking on this interface now (a Local member may take several).
    ringing: set[str] = field(default_factory=set)
    talking: set[str] = field(default_factory=set)


@dataclass(slots=True)
class CallFact:
    """What the day's figures need to know of one queue call."""

    queue: str
    joined: float
    answered: bool = False
    completed: bool = False
    abandoned: bool = False
    hold_s: int | None = None
    talk_s: int | None = None
    member: str = ""


@dataclass(slots=True)
class Tally:
    """Sums over the day's calls of one queue (or one member)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_in_sl: int = 0
    completed: int = 0
    completed_in_sl: int = 0
    hold_sum: int = 0  # seconds, over answered calls
    talk_sum: int = 0  # seconds, over completed calls

    def add(self, c: tuple[int, ...], sign: int) -> None:
        self.offered += sign * c[0]
        self.answered += sign * c[1]
        self.abandoned += sign * c[2]
        self.abandoned_in_sl += sign * c[3]
        self.completed += sign * c[4]
        self.completed_in_sl += sign * c[5]
        self.hold_sum += sign * c[6]
        self.talk_sum += sign * c[7]

    def as_dict(self) -> dict[str, int]:
        return {"offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
                "abandoned_in_sl": self.abandoned_in_sl, "completed": self.completed,
                "completed_in_sl": self.completed_in_sl, "hold_sum": self.hold_sum,
                "talk_sum": self.talk_sum}


def contribution(f: CallFact, service_level: int) -> tuple[int, ...]:
    """What one call adds to its queue's tally (see :class:`Tally`)."""
    hold = f.hold_s or 0
    in_sl = f.hold_s is not None and f.hold_s <= service_level
    return (1, int(f.answered), int(f.abandoned), int(f.abandoned and in_sl), int(f.completed),
            int(f.completed and in_sl), hold if f.answered else 0, (f.talk_s or 0) if f.completed else 0)


class LiveBook:
    """Deterministic: the same events at the same ``now`` give the same state."""

    def __init__(self, service_levels: Mapping[str, int] | None = None) -> None:
        self.members: dict[tuple[str, str], Member] = {}
        # interface → queue → member: the same members, by agent (read on every event)
        self._by_iface: dict[str, dict[str, Member]] = {}
        self.agents: dict[str, Agent] = {}
        # queue → caller Uniqueid → (Linkedid, joined epoch seconds)
        self.waiting: dict[str, dict[str, tuple[str, float]]] = {}
        # caller Uniqueid → Linkedid, for the calls in a queue or talking (Hangup clean-up)
        self._callers: dict[str, str] = {}
        # Linkedid → the interfaces it rings or talks on: an answer or a hang-up touches those
        # agents only, not every agent of the centre.
        self._on_call: dict[str, set[str]] = {}
        self.service_levels: dict[str, int] = dict(service_levels or {})
        self.queues: set[str] = set(self.service_levels)
        # The day's facts: Linkedid → fact; tallies per queue and per member name.
        self.day_start: float = 0.0
        self.facts: dict[str, CallFact] = {}
        self.by_queue: dict[str, Tally] = {}
        self.by_member: dict[str, Tally] = {}
        # What changed since the reader last took it (:meth:`take_changes`), so a snapshot of
        # 1,000 agents rebuilds only the rows of the few that changed: interfaces whose agent
        # or memberships changed, member names whose day's tally changed, and "everything"
        # (a rebuild, a new day).
        self.changed_interfaces: set[str] = set()
        self.changed_members: set[str] = set()
        self.changed_all = True

    # -- the day ---------------------------------------------------------------------------

    def start_day(self, day_start: float) -> None:
        """Keep only the facts of calls that joined at or after ``day_start`` (epoch s)."""
        if day_start == self.day_start:
            return
        self.day_start = day_start
        self.changed_all = True
        facts = {k: f for k, f in self.facts.items() if f.joined >= day_start}
        self.facts, self.by_queue, self.by_member = {}, {}, {}
        for lid, f in facts.items():
            self._set_fact(lid, f)

    def _sl(self, queue: str) -> int:
        return self.service_levels.get(queue, DEFAULT_SERVICE_LEVEL)

    def _set_fact(self, lid: str, new: CallFact) -> None:
        old = self.facts.get(lid)
        if old is not None:
            self.by_queue.setdefault(old.queue, Tally()).add(contribution(old, self._sl(old.queue)), -1)
            if old.member:
                self.by_member.setdefault(old.member, Tally()).add(contribution(old, self._sl(old.queue)), -1)
                self.changed_members.add(old.member)
        if new.joined < self.day_start:
            self.facts.pop(lid, None)
            return
        self.facts[lid] = new
        c = contribution(new, self._sl(new.queue))
        self.by_queue.setdefault(new.queue, Tally()).add(c, 1)
        if new.member:
            self.by_member.setdefault(new.member, Tally()).add(c, 1)
            self.changed_members.add(new.member)

    def _update_fact(self, lid: str, in_queue: str, now: float, **changes: object) -> None:
        """Change a call's fact; a call not seen joining (it joined before a restart and is
        not in the records yet) starts here, in ``in_queue``."""
        old = self.facts.get(lid)
        if old is None:
            if not in_queue:
                return
            new = CallFact(queue=in_queue, joined=now)
        else:
            new = CallFact(old.queue, old.joined, old.answered, old.completed, old.abandoned,
                           old.hold_s, old.talk_s, old.member)
        for k, v in changes.items():
            setattr(new, k, v)
        self._set_fact(lid, new)

    def seed(self, records: Iterable[Mapping[str, object]]) -> None:
        """Merge the day's call records (``callcenter.db.models.Call`` rows as mappings) with
        what the events said: a record fills in what the book does not know; a flag set by
        either stays set."""
        for r in records:
            lid = str(r["linkedid"])
            started = r["started_at"]
            joined = started.timestamp() if isinstance(started, dt.datetime) else float(started)  # type: ignore[arg-type]
            answered = r.get("answered_at") is not None
            rec = CallFact(queue=str(r.get("queue") or ""), joined=joined, answered=answered,
                           completed=answered and r.get("state") == "ended",
                           abandoned=r.get("outcome") == "abandoned",
                           hold_s=r.get("hold_s"),  # type: ignore[arg-type]
                           talk_s=r.get("talk_s"),  # type: ignore[arg-type]
                           member=str(r.get("agent_member") or ""))
            if not rec.queue:
                continue
            old = self.facts.get(lid)
            if old is not None:
                rec = CallFact(old.queue, min(old.joined, rec.joined), old.answered or rec.answered,
                               old.completed or rec.completed, old.abandoned or rec.abandoned,
                               old.hold_s if old.hold_s is not None else rec.hold_s,
                               old.talk_s if old.talk_s is not None else rec.talk_s,
                               old.member or rec.member)
            self.queues.add(rec.queue)
            self._set_fact(lid, rec)

    # -- agents ----------------------------------------------------------------------------

    def _agent(self, interface: str, name: str, now: float) -> Agent:
        a = self.agents.get(interface)
        if a is None:
            a = self.agents[interface] = Agent(interface, name or interface, since=now)
        elif name:
            a.name = name
        return a

    def memberships(self, interface: str) -> list[Member]:
        """The queue memberships of one interface."""
        return list(self._by_iface.get(interface, {}).values())

    def _restate(self, interface: str, now: float) -> bool:
        """Recompute an agent's state from its memberships and calls; True if it changed."""
        # Every caller changed something of this interface (a membership, a ring, the name).
        self.changed_interfaces.add(interface)
        a = self.agents.get(interface)
        if a is None:
            return False
        ms = self.memberships(interface)
        if not ms and not a.talking and not a.ringing:
            del self.agents[interface]
            return True
        reason = next((m.reason for m in ms if m.paused), "")
        if a.talking or any(m.in_call or m.status in _BUSY_STATUS for m in ms):
            state = "talking"
        elif a.ringing or any(m.status in _RINGING_STATUS for m in ms):
            state = "ringing"
        elif ms and all(m.paused for m in ms):
            state = "paused"
        elif ms and all(m.status in _UNAVAILABLE_STATUS for m in ms):
            state = "unavailable"
        else:
            state = "available"
        changed = state != a.state or (state == "paused" and reason != a.reason)
        if changed:
            a.state, a.since = state, now
        a.reason = reason if state == "paused" else ""
        return changed

    def member_state(self, m: Member) -> str:
        """The state a member counts as in its own queue's tile."""
        a = self.agents.get(m.interface)
        if a is not None and a.state in ("talking", "ringing"):
            return a.state
        if m.paused:
            return "paused"
        if m.status in _UNAVAILABLE_STATUS:
            return "unavailable"
        return "available"

    def _member_event(self, msg: Message, now: float) -> None:
        event = msg.get("Event", "")
        queue = msg.get("Queue", "")
        interface = msg.get("Interface") or msg.get("Location") or ""
        if not queue or not interface:
            return
        key = (queue, interface)
        if event == "QueueMemberRemoved":
            self.members.pop(key, None)
            self._by_iface.get(interface, {}).pop(queue, None)
            self._restate(interface, now)
            return
        name = msg.get("MemberName") or msg.get("Name") or interface
        m = self.members.get(key)
        if m is None:
            m = self.members[key] = Member(queue, interface, name)
            self._by_iface.setdefault(interface, {})[queue] = m
        m.name = name
        m.paused = msg.get("Paused") == "1"
        m.reason = msg.get("PausedReason", "") if m.paused else ""
        m.status = _int(msg.get("Status"), 1)
        m.in_call = msg.get("InCall") == "1"
        m.membership = msg.get("Membership", m.membership)
        m.login_time = _int(msg.get("LoginTime"))
        m.last_pause = _int(msg.get("LastPause"))
        self.queues.add(queue)
        self._agent(interface, name, now)
        self._restate(interface, now)

    # -- events ----------------------------------------------------------------------------

    def apply(self, msg: Message, now: float) -> bool:
        """Apply one AMI event received at ``now`` (epoch seconds); True if anything the
        wallboard shows may have changed."""
        event = msg.get("Event", "")
        if event.startswith("QueueMember"):
            self._member_event(msg, now)
            return True
        if event == "Hangup":
            return self._hangup(msg.get("Uniqueid", ""), now)
        lid = msg.get("Linkedid", "")
        queue = msg.get("Queue", "")
        if not lid:
            return False
        if event == "QueueCallerJoin":
            uid = msg.get("Uniqueid", "")
            self.waiting.setdefault(queue, {})[uid] = (lid, now)
            self._callers[uid] = lid
            self.queues.add(queue)
            old = self.facts.get(lid)
            self._update_fact(lid, queue, now, queue=queue, **({} if old else {"joined": now}))
            return True
        if event in ("QueueCallerLeave", "QueueCallerAbandon"):
            self.waiting.get(queue, {}).pop(msg.get("Uniqueid", ""), None)
            if event == "QueueCallerAbandon":
                self._clear_rings(lid, now)
                self._update_fact(lid, queue, now, abandoned=True, hold_s=_int(msg.get("HoldTime")))
            return True
        interface = msg.get("Interface", "")
        member = msg.get("MemberName", "")
        if not interface:
            return False
        if event == "AgentCalled":
            self._agent(interface, member, now).ringing.add(lid)
            self._on_call.setdefault(lid, set()).add(interface)
            self._restate(interface, now)
        elif event == "AgentRingNoAnswer":
            a = self.agents.get(interface)
            if a is not None:
                a.ringing.discard(lid)
                self._off_call(lid, a)
                self._restate(interface, now)
        elif event == "AgentConnect":
            self._clear_rings(lid, now)
            self._agent(interface, member, now).talking.add(lid)
            self._on_call.setdefault(lid, set()).add(interface)
            self._restate(interface, now)
            self._update_fact(lid, queue, now, answered=True, hold_s=_int(msg.get("HoldTime")),
                              member=member)
        elif event == "AgentComplete":
            a = self.agents.get(interface)
            if a is not None:
                a.talking.discard(lid)
                self._off_call(lid, a)
                self._restate(interface, now)
            old = self.facts.get(lid)
            hold = old.hold_s if old is not None and old.hold_s is not None else _int(msg.get("HoldTime"))
            self._update_fact(lid, queue, now, answered=True, completed=True, hold_s=hold,
                              talk_s=_int(msg.get("TalkTime")), member=member)
        else:
            return False
        return True

    def _off_call(self, lid: str, a: Agent) -> None:
        """``lid`` neither rings nor talks on ``a`` any more (if so): out of the index."""
        if lid in a.ringing or lid in a.talking:
            return
        interfaces = self._on_call.get(lid)
        if interfaces is not None:
            interfaces.discard(a.interface)
            if not interfaces:
                del self._on_call[lid]

    def _clear_rings(self, lid: str, now: float) -> None:
        for interface in list(self._on_call.get(lid, ())):
            a = self.agents.get(interface)
            if a is not None and lid in a.ringing:
                a.ringing.discard(lid)
                self._off_call(lid, a)
                self._restate(a.interface, now)

    def _hangup(self, uid: str, now: float) -> bool:
        """The caller's channel hung up: nothing of that call rings, talks or waits any more."""
        lid = self._callers.pop(uid, None)
        if lid is None:
            return False
        for waiting in self.waiting.values():
            waiting.pop(uid, None)
        for interface in self._on_call.pop(lid, ()):
            a = self.agents.get(interface)
            if a is not None and (lid in a.ringing or lid in a.talking):
                a.ringing.discard(lid)
                a.talking.discard(lid)
                self._restate(a.interface, now)
        return True

    def take_changes(self) -> tuple[bool, set[str], set[str]]:
        """(everything, interfaces, member names) changed since the last call; resets them."""
        out = (self.changed_all, self.changed_interfaces, self.changed_members)
        self.changed_all, self.changed_interfaces, self.changed_members = False, set(), set()
        return out

    # -- rebuild after a (re)login ---------------------------------------------------------

    def rebuild(self, items: Iterable[Message], channels: Iterable[Message], now: float) -> None:
        """Replace the live part (members, agents, waiting callers) with a ``QueueStatus``
        answer's items; ``channels`` (``CoreShowChannels``) tie talking agents to calls. The
        day's facts stay (they come from events and records).

        Time in state after a rebuild: paused since ``LastPause``; available since the later of
        ``LastCall`` and ``LoginTime``; anything else since now (Asterisk does not say).
        """
        old_agents = self.agents
        self.changed_all = True
        self.members, self.agents, self.waiting, self._by_iface = {}, {}, {}, {}
        self._on_call = {}
        last_call: dict[str, int] = {}
        for msg in items:
            event = msg.get("Event")
            if event == "QueueParams":
                q = msg.get("Queue", "")
                self.queues.add(q)
                self.service_levels[q] = _int(msg.get("ServiceLevel"), DEFAULT_SERVICE_LEVEL)
            elif event == "QueueMember":
                self._member_event(msg, now)
                iface = msg.get("Location", "")
                last_call[iface] = max(last_call.get(iface, 0), _int(msg.get("LastCall")))
            elif event == "QueueEntry":
                wait = _int(msg.get("Wait"))
                uid = msg.get("Uniqueid", "")
                lid = next((c.get("Linkedid", "") for c in channels if c.get("Uniqueid") == uid), uid)
                self.waiting.setdefault(msg.get("Queue", ""), {})[uid] = (lid, now - wait)
                self._callers[uid] = lid
        for iface, a in self.agents.items():
            before = old_agents.get(iface)
            ms = self.memberships(iface)
            if before is not None and before.state == a.state:
                a.since = before.since
            elif a.state == "paused":
                a.since = float(max((m.last_pause for m in ms), default=0)) or now
            elif a.state == "available":
                a.since = float(max([last_call.get(iface, 0)] + [m.login_time for m in ms])) or now

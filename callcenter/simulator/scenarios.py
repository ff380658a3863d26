"""Inbound call flows: a caller arrives, joins a queue, members ring, one answers, talk, hangup.

Each step emits the frames Asterisk 22 emits for it, in the recorded order (see
``inbound_answered``, ``inbound_ring_no_answer``, ``inbound_abandoned``, ``burst_10_calls`` and
``iax_inbound_answered``). Durations are simulated seconds (``Engine.sleep`` scales them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import frames as F
from .engine import Engine
from .frames import Event
from .state import UNKNOWN, Channel, Entry, Member, QueueState, device_of


@dataclass(frozen=True, slots=True)
class CallPlan:
    """How the people on one call behave (simulated seconds)."""

    answer_after: float = 2.0
    talk: float = 6.0
    abandon_after: float | None = None
    no_answer_members: frozenset[str] = frozenset()
    # Who ends the conversation: "agent" or "caller" (AgentComplete's Reason).
    hangup_by: str = "agent"


@dataclass(slots=True, eq=False)
class QueueCaller:
    """The party in the queue: ``chan`` sits in Queue(); ``other`` is its Local partner half."""

    chan: Channel
    other: Channel | None
    # Devices whose DeviceStateChange NOT_INUSE closes the call (twice for Local, as recorded).
    end_devices: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class AgentLeg:
    member: Member
    device: str
    dest: Channel  # the channel the queue dials (Local ;1 or the IAX2 device channel)
    far: Channel | None  # Local ;2 (runs the agent's dialplan); None for a device channel
    rang_at: float


def _split_local(interface: str) -> tuple[str, str]:
    """``Local/8001@agents/n`` → (``8001``, ``agents``)."""
    resource = interface.partition("/")[2].split("/", 1)[0]
    exten, _, context = resource.partition("@")
    return exten, context or "default"


# ---- caller arrival -----------------------------------------------------------------------

def arrive_local(eng: Engine, number: str | None, name: str, did: str) -> QueueCaller:
    """The lab's PSTN stand-in: ``Local/<number>@pstn-in`` halves, the ;2 half runs the hotline
    dialplan (recorded in inbound_answered before QueueCallerJoin)."""
    exten = number or "anonymous"
    seq = eng.ids.local_seq()
    c1 = eng.new_channel(f"Local/{exten}@pstn-in-{seq};1", "Local")
    c2 = eng.new_channel(f"Local/{exten}@pstn-in-{seq};2", "Local", c1.linkedid)
    for c in (c1, c2):
        c.context, c.exten = "pstn-in", exten
    c2.state = 4
    c1.app, c1.app_data = "Wait", "60"
    dial_string = f"{exten}@pstn-in/n"
    ev: list[Event] = [
        F.chan_event("Newchannel", c1),
        F.chan_event("Newchannel", c2),
        F.local_bridge(c1, c2, False),
        F.dial("DialBegin", None, F.snapshot(c1, "Dest"), ("DialString", dial_string)),
    ]
    if number:
        c2.cid_num, c2.cid_name = number, name or UNKNOWN
        ev.append(F.newcallerid(c2))
    else:
        ev.append(F.newcallerid(c2, F.PRES_RESTRICTED))
    c2.state, c2.context, c2.exten, c2.priority = 6, "from-pstn", did, 2
    c1.state = 6
    device = f"Local/{exten}@pstn-in"
    ev += [
        F.chan_event("Newstate", c2),
        F.chan_event("Newstate", c1),
        F.dial("DialEnd", None, F.snapshot(c1, "Dest"), ("DialStatus", "ANSWER")),
        F.device_state(device, "INUSE"),
        F.device_state(device, "INUSE"),
    ]
    eng.emit(ev)
    return QueueCaller(c2, c1, [device, device])


def arrive_iax(eng: Engine, number: str | None, name: str, did: str) -> QueueCaller:
    """A call over a real channel driver trunk (``IAX2/loop-NNNN``), as in iax_inbound_answered
    minus the lab's own loop-back legs."""
    ch = eng.new_channel(f"IAX2/loop-{eng.ids.iax_callno()}", "IAX2")
    ch.state, ch.context, ch.exten = 4, "from-pstn", did
    if number:
        ch.cid_num, ch.cid_name = number, name or UNKNOWN
    ev: list[Event] = [F.chan_event("Newchannel", ch), F.newexten(ch, "Answer", "")]
    ch.state = 6
    ev += [F.chan_event("Newstate", ch), F.device_state("IAX2/loop", "INUSE")]
    eng.emit(ev)
    return QueueCaller(ch, None, ["IAX2/loop"])


# ---- the queue ----------------------------------------------------------------------------

def join(eng: Engine, caller: QueueCaller, q: QueueState, priority: int,
         after: list[Event] | None = None) -> Entry:
    """Enter the queue; ``after`` is emitted in the same batch (the callback's
    OriginateResponse follows QueueCallerJoin in originate_callback)."""
    ch = caller.chan
    ch.priority = priority
    ch.app, ch.app_data = "Queue", f"{q.name},t,,,{int(q.max_wait)}"
    ev: list[Event] = []
    if ch.tech == "IAX2":
        ev.append(F.newexten(ch, "Queue", ch.app_data))
        ev += [F.varset(ch, v, "") for v in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME",
                                             "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")]
    entry = Entry(ch, eng.now(), len(q.entries) + 1)
    q.entries.append(entry)
    if len(q.entries) == 1:
        ev.append(F.device_state(f"Queue:{q.name}", "RINGING"))
    ev.append(F.queue_caller("QueueCallerJoin", ch, q.name, ("Position", str(len(q.entries))),
                             ("Count", str(len(q.entries)))))
    if after:
        ev += after
    eng.emit(ev)
    return entry


def _leave(q: QueueState, entry: Entry, ev: list[Event]) -> None:
    pos = q.entries.index(entry) + 1
    q.entries.remove(entry)
    if not q.entries:
        ev.append(F.device_state(f"Queue:{q.name}", "NOT_INUSE"))
    ev.append(F.queue_caller("QueueCallerLeave", entry.channel, q.name, ("Position", str(pos)),
                             ("Count", str(len(q.entries)))))


def pick_member(eng: Engine, q: QueueState, entry: Entry) -> Member | None:
    """Round-robin (rrmemory: the queue remembers who rang last) over members neither paused
    nor busy; ``linear`` goes down the member list in order for each caller."""
    n = len(q.members)
    linear = q.strategy == "linear"
    start = (entry.last_tried if linear else q.rr_last) + 1
    for i in range(n):
        idx = (start + i) % n
        m = q.members[idx]
        if not m.paused and not eng.is_busy(m.interface):
            q.rr_last = entry.last_tried = idx
            return m
    return None


def ring(eng: Engine, caller: QueueCaller, q: QueueState, m: Member) -> AgentLeg:
    c = caller.chan
    eng.set_busy(m.interface, +1)
    device = device_of(m.interface)
    if m.interface.startswith("Local/"):
        exten, context = _split_local(m.interface)
        seq = eng.ids.local_seq()
        a1 = eng.new_channel(f"Local/{exten}@{context}-{seq};1", "Local", c.linkedid)
        a2 = eng.new_channel(f"Local/{exten}@{context}-{seq};2", "Local", c.linkedid)
        for a in (a1, a2):
            a.context, a.exten = context, exten
        a2.state = 4
        a1.app, a1.app_data = "AppQueue", "(Outgoing Line)"
        a2.app, a2.app_data = "Wait", "30"
        ev: list[Event] = [F.chan_event("Newchannel", a1), F.chan_event("Newchannel", a2)]
        # Queue() gives the agent leg the caller's connected line, else the dialled exten.
        if c.conn_num != UNKNOWN:
            a1.cid_num, a1.cid_name = c.conn_num, c.conn_name
        else:
            a1.cid_num = c.exten
        ev.append(F.newcallerid(a1))
        # Queue() hands the caller's inheritable (``__``) variables to the leg it dials, and
        # the Local driver copies them to ;2: from here on both halves show them
        # (project_dialplans_session lines 326-333).
        a1.inherit_from(c)
        a2.inherit_from(c)
        a2.cid_num, a2.cid_name = c.cid_num, c.cid_name
        a2.conn_num, a2.conn_name = a1.cid_num, a1.cid_name
        ev += [F.newcallerid(a2), F.chan_event("NewConnectedLine", a2),
               F.local_bridge(a1, a2, False)]
        a1.exten = c.exten
        a1.conn_num, a1.conn_name = c.cid_num, c.cid_name
        leg = AgentLeg(m, device, a1, a2, eng.now())
        ev += [
            F.queue_agent_event("AgentCalled", c, a1, q.name, m),
            F.dial("DialBegin", c, F.snapshot(a1, "Dest", exten=exten, conn=(UNKNOWN, UNKNOWN)),
                   ("DialString", m.interface)),
        ]
    else:
        peer = device.partition("/")[2]
        a = eng.new_channel(f"{device}-{eng.ids.iax_callno()}", device.partition("/")[0],
                            c.linkedid)
        a.context, a.exten = "default", "s"
        a.app, a.app_data = "AppQueue", "(Outgoing Line)"
        ev = [F.chan_event("Newchannel", a)]
        a.inherit_from(c)
        a.context = ""
        ev.append(F.varset(a, "DIALEDPEERNUMBER", f"{peer}/{peer}"))
        a.state, a.exten = 5, c.exten
        a.conn_num, a.conn_name = c.cid_num, c.cid_name
        ev += [F.chan_event("Newstate", a), F.newexten(a, "AppQueue", "(Outgoing Line)"),
               F.chan_event("NewConnectedLine", a)]
        leg = AgentLeg(m, device, a, None, eng.now())
        ev += [
            F.queue_agent_event("AgentCalled", c, a, q.name, m),
            F.dial("DialBegin", c, F.snapshot(a, "Dest"), ("DialString", m.interface)),
            F.device_state(device, "RINGING"),
            F.dial("DialState", c, F.snapshot(a, "Dest"), ("DialStatus", "RINGING")),
        ]
    eng.emit(ev)
    return leg


def _drop_leg(eng: Engine, caller: QueueCaller, leg: AgentLeg, status: str,
              ring_ms: int | None, q: QueueState) -> None:
    """The member did not answer (``ring_ms`` set: AgentRingNoAnswer) or the caller went away
    while it rang: DialEnd(s) and the agent leg's hangups (inbound_ring_no_answer)."""
    c, a1, a2 = caller.chan, leg.dest, leg.far
    ev: list[Event] = []
    if ring_ms is not None:
        ev.append(F.queue_agent_event("AgentRingNoAnswer", c, a1, q.name, leg.member,
                                      ("RingTime", str(ring_ms))))
        ev.append(F.dial("DialEnd", c, F.snapshot(a1, "Dest"), ("DialStatus", "NOANSWER")))
    ev.append(F.dial("DialEnd", c, F.snapshot(a1, "Dest"), ("DialStatus", status)))
    if a2 is not None:
        ev += [F.hangup_request(a2, 0), F.hangup(a1, 0), F.chan_event("NewConnectedLine", a1),
               F.hangup_request(a2, 16, soft=True), F.device_state(leg.device, "NOT_INUSE"),
               F.hangup(a2, 0), F.device_state(leg.device, "NOT_INUSE")]
    else:
        ev += [F.hangup_request(a1, 0), F.hangup(a1, 0), F.device_state(leg.device, "NOT_INUSE")]
    eng.drop(a1, a2)
    eng.set_busy(leg.member.interface, -1)
    eng.emit(ev)


def _member_status(eng: Engine, interface: str, in_call_queue: str | None) -> list[Event]:
    status = 2 if in_call_queue is not None else 1
    return [F.queue_member_event("QueueMemberStatus", q.name, m, status, q.name == in_call_queue)
            for q, m in eng.queues_of(interface)]


def connect(eng: Engine, caller: QueueCaller, q: QueueState, entry: Entry, leg: AgentLeg) -> str:
    """The member answered: DialEnd ANSWER → QueueCallerLeave → AgentConnect → bridge.
    Returns the bridge id."""
    c, a1, a2 = caller.chan, leg.dest, leg.far
    now = eng.now()
    ev: list[Event] = []
    if a2 is not None:
        a2.state, a2.priority = 6, 2
        a1.state = 6
        ev += [F.chan_event("Newstate", a2), F.chan_event("Newstate", a1),
               F.chan_event("NewConnectedLine", a1),
               F.dial("DialEnd", c, F.snapshot(a1, "Dest"), ("DialStatus", "ANSWER"))]
    else:
        a1.state = 6
        ev += [F.chan_event("Newstate", a1),
               F.dial("DialEnd", c, F.snapshot(a1, "Dest"), ("DialStatus", "ANSWER")),
               F.device_state(leg.device, "INUSE")]
    pos = q.entries.index(entry) + 1
    _leave(q, entry, ev)
    hold = now - entry.joined
    if a2 is None:
        ev += [F.varset(c, "QUEUEPOSITION", str(pos)), F.varset(c, "QUEUEWAIT", str(int(hold))),
               F.varset(c, "QUEUEWAIT_MS", str(int(hold * 1000)))]
    ev.append(F.queue_agent_event("AgentConnect", c, a1, q.name, leg.member,
                                  ("HoldTime", str(int(hold))),
                                  ("RingTime", str(int(now - leg.rang_at)))))
    bridge = eng.ids.bridge_uuid()
    ev.append(F.bridge_event("BridgeCreate", bridge, 0))
    if a2 is not None:
        ev += [F.device_state(leg.device, "INUSE"), F.device_state(leg.device, "INUSE")]
    a1.bridge_id = c.bridge_id = bridge
    ev.append(F.bridge_event("BridgeEnter", bridge, 1, a1))
    ev += _member_status(eng, leg.member.interface, q.name)
    ev.append(F.bridge_event("BridgeEnter", bridge, 2, c))
    if a2 is None:
        ev += [F.varset(a1, "BRIDGEPEER", c.name), F.varset(c, "BRIDGEPEER", a1.name)]
    q.total_hold += hold
    eng.emit(ev)
    return bridge


def complete(eng: Engine, caller: QueueCaller, q: QueueState, entry: Entry, leg: AgentLeg,
             bridge: str, talk_start: float, hangup_by: str) -> None:
    """The conversation ends: AgentComplete and every leg's hangups, in the order recorded for
    an agent hangup (inbound_ring_no_answer) or a caller hangup (burst_10_calls)."""
    c, o, a1, a2 = caller.chan, caller.other, leg.dest, leg.far
    now = eng.now()
    talk = now - talk_start
    hold = talk_start - entry.joined
    m = leg.member
    m.calls_taken += 1
    m.last_call = int(now)
    q.completed += 1
    q.total_talk += talk
    # Asterisk's update_queue() at the end of the call: in service level by the hold at answer.
    if int(hold) <= q.service_level:
        q.within_sl += 1
    done = F.queue_agent_event("AgentComplete", c, a1, q.name, m, ("HoldTime", str(int(hold))),
                               ("TalkTime", str(int(talk))), ("Reason", hangup_by))
    ev: list[Event] = []
    if hangup_by == "agent":
        if a2 is not None:
            a2.priority = 4
            ev += [F.hangup_request(a2, 16, soft=True), F.hangup_request(a1, 16),
                   F.hangup(a2, 16), done, F.device_state(leg.device, "NOT_INUSE"),
                   F.bridge_event("BridgeLeave", bridge, 1, a1), F.hangup(a1, 16)]
        else:
            ev += [F.hangup_request(a1, 16), F.varset(a1, "BRIDGEPEER", ""),
                   F.varset(c, "BRIDGEPEER", ""), F.bridge_event("BridgeLeave", bridge, 1, a1),
                   done, F.hangup_request(a1, 16)]
        ev += _member_status(eng, m.interface, None)
        ev.append(F.bridge_event("BridgeLeave", bridge, 0, c))
        if a2 is None:
            ev += _answered_vars(c, talk, now - entry.joined)
        ev.append(F.bridge_event("BridgeDestroy", bridge, 0))
        ev += _caller_teardown(c, o, 16)
        if a2 is None:
            ev += [F.hangup(a1, 16), F.device_state(leg.device, "NOT_INUSE")]
    else:
        ev.append(F.hangup_request(c, 0))
        if o is not None:
            ev.append(F.hangup(o, 0))
        ev += [F.bridge_event("BridgeLeave", bridge, 1, c), F.hangup_request(c, 16, soft=True),
               F.bridge_event("BridgeLeave", bridge, 0, a1),
               F.bridge_event("BridgeDestroy", bridge, 0), done]
        if a2 is not None:
            ev += [F.hangup_request(a2, 16), F.hangup_request(a2, 16, soft=True),
                   F.hangup(a1, 16), F.hangup(a2, 16)]
        else:
            ev += [F.hangup_request(a1, 16), F.hangup(a1, 16)]
        ev.append(F.hangup(c, 16))
        ev.append(F.device_state(leg.device, "NOT_INUSE"))
        ev += _member_status(eng, m.interface, None)
    ev += [F.device_state(d, "NOT_INUSE") for d in caller.end_devices]
    eng.drop(c, o, a1, a2)
    eng.set_busy(m.interface, -1)
    eng.emit(ev)


def _answered_vars(c: Channel, talk: float, dialed: float) -> list[Event]:
    return [F.varset(c, "ANSWEREDTIME", str(int(talk))),
            F.varset(c, "ANSWEREDTIME_MS", str(int(talk * 1000))),
            F.varset(c, "DIALEDTIME", str(int(dialed))),
            F.varset(c, "DIALEDTIME_MS", str(int(dialed * 1000)))]


def _caller_teardown(c: Channel, o: Channel | None, cause: int) -> list[Event]:
    ev = [F.hangup_request(c, cause, soft=True)]
    if o is not None:
        ev.append(F.hangup_request(o, cause))
    ev.append(F.hangup(c, cause))
    if o is not None:
        ev.append(F.hangup(o, cause))
    return ev


def give_up(eng: Engine, caller: QueueCaller, q: QueueState, entry: Entry, abandon: bool) -> None:
    """The caller leaves without an agent: hangs up (QueueCallerAbandon, inbound_abandoned) or
    the Queue() timeout expires (QueueCallerLeave, then the dialplan hangs up)."""
    c, o = caller.chan, caller.other
    ev: list[Event] = []
    if abandon:
        pos = q.entries.index(entry) + 1
        ev.append(F.hangup_request(c, 0))
        if o is not None:
            ev.append(F.hangup(o, 0))
        ev.append(F.queue_caller("QueueCallerAbandon", c, q.name, ("Position", str(pos)),
                                 ("OriginalPosition", str(entry.original_position)),
                                 ("HoldTime", str(int(eng.now() - entry.joined)))))
        _leave(q, entry, ev)
        ev += [F.hangup_request(c, 16, soft=True), F.hangup(c, 0)]
        q.abandoned += 1
        if int(eng.now() - entry.joined) <= q.service_level:
            q.abandoned_within_sl += 1
    else:
        _leave(q, entry, ev)
        ev += _caller_teardown(c, o, 16)
    ev += [F.device_state(d, "NOT_INUSE") for d in caller.end_devices]
    eng.drop(c, o)
    eng.emit(ev)


async def queue_call(eng: Engine, caller: QueueCaller, q: QueueState, plan: CallPlan,
                     priority: int, after_join: list[Event] | None = None) -> str:
    """Run one caller through ``q`` until answered-and-finished, abandoned or timed out.

    Returns "completed", "abandoned" or "timeout". Cancellation (simulator stop) leaves the
    call where it is, without emitting hangups.
    """
    entry = join(eng, caller, q, priority, after_join)
    end = entry.joined + q.max_wait
    abandon_at = None if plan.abandon_after is None else entry.joined + plan.abandon_after
    if abandon_at is not None and abandon_at < end:
        end = abandon_at
    while True:
        remaining = end - eng.now()
        if remaining <= 0:
            break
        m = pick_member(eng, q, entry)
        if m is None:
            await eng.wait_members_changed(min(remaining, q.retry))
            continue
        leg = ring(eng, caller, q, m)
        answer_in = None if m.name in plan.no_answer_members else plan.answer_after
        if answer_in is not None and answer_in <= min(q.ring_timeout, remaining):
            await eng.sleep(answer_in)
            bridge = connect(eng, caller, q, entry, leg)
            talk_start = eng.now()
            await eng.sleep(plan.talk)
            complete(eng, caller, q, entry, leg, bridge, talk_start, plan.hangup_by)
            return "completed"
        if q.ring_timeout < remaining:
            await eng.sleep(q.ring_timeout)
            _drop_leg(eng, caller, leg, "CANCEL", int(q.ring_timeout * 1000), q)
            await eng.sleep(min(q.retry, max(end - eng.now(), 0)))
            continue
        await eng.sleep(remaining)
        _drop_leg(eng, caller, leg, "CANCEL", None, q)
        break
    abandoned = abandon_at is not None and end == abandon_at
    give_up(eng, caller, q, entry, abandoned)
    return "abandoned" if abandoned else "timeout"

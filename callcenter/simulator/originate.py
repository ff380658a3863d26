"""The Originate action: outbound calls through the simulated trunk.

Shapes from ``originate_failures`` (busy 5, no answer 3, congestion 8, bad technology 0, a
synchronous failure), ``survey_completed`` (DTMF + ``UserEvent: SurveyResult``) and
``originate_callback`` (the answered customer joins a queue). The trunk's behaviour per dialled
number comes from ``SimulatorConfig.originate_rule``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callcenter.ami.codec import Message, split_list

from . import frames as F
from .engine import Engine
from .frames import Event, Fields
from .scenarios import CallPlan, QueueCaller, queue_call
from .state import UNKNOWN, Channel

KNOWN_TECHS = frozenset({"Local", "IAX2", "PJSIP", "SIP"})
# (Reason, DialStatus, hangup cause, ;2 priority) per failed outcome.
_FAILURES = {"busy": (5, "BUSY", 17, 11), "congestion": (8, "CONGESTION", 34, 13)}
_CID = re.compile(r'^\s*(?:"?([^"<]*?)"?\s*)?<([^>]*)>\s*$')


@dataclass(slots=True)
class OriginateRequest:
    action_id: str | None
    channel: str
    target: Fields  # [Context, Exten] or [Application, Data], as OriginateResponse repeats them
    context: str
    is_async: bool
    timeout: float  # seconds
    cid_num: str
    cid_name: str
    variables: dict[str, str] = field(default_factory=dict)
    # ``ChannelId``: the Uniqueid (and so the Linkedid) the caller chose for the first channel;
    # "" lets the simulator number it.
    channel_id: str = ""

    @property
    def tech(self) -> str:
        return self.channel.partition("/")[0]


def parse_callerid(value: str) -> tuple[str, str]:
    """``"400 hotline" <4008001234>`` → (num, name); missing parts are ``<unknown>``."""
    if not value:
        return UNKNOWN, UNKNOWN
    m = _CID.match(value)
    if m is None:
        return value.strip() or UNKNOWN, UNKNOWN
    return (m.group(2).strip() or UNKNOWN), (m.group(1) or "").strip() or UNKNOWN


def parse_variables(value: str) -> dict[str, str]:
    """``Variable: A=1,B=2`` and repeated ``Variable:`` lines (joined by the codec with '\\n')."""
    out = {}
    for line in split_list(value):
        for part in line.split(","):
            k, sep, v = part.partition("=")
            if sep and k.strip():
                out[k.strip()] = v
    return out


def parse_originate(msg: Message) -> OriginateRequest:
    """Raises ValueError("Channel not specified") when there is no Channel."""
    channel = msg.get("Channel", "").strip()
    if not channel:
        raise ValueError("Channel not specified")
    if "Application" in msg:
        target = [("Application", msg["Application"]), ("Data", msg.get("Data", ""))]
        context = ""
    else:
        context = msg.get("Context", "")
        target = [("Context", context), ("Exten", msg.get("Exten", ""))]
    try:
        timeout = int(msg.get("Timeout", "30000")) / 1000
    except ValueError:
        timeout = 30.0
    num, name = parse_callerid(msg.get("CallerID", ""))
    return OriginateRequest(
        msg.get("ActionID"), channel, target, context,
        msg.get("Async", "").lower() in ("true", "yes", "1", "on"), timeout, num, name,
        parse_variables(msg.get("Variable", "")), msg.get("ChannelId", "").strip(),
    )


def dialled_number(channel: str) -> str:
    """``Local/13800000001@outbound-trunk/n`` or ``PJSIP/trunk/13800000001`` → the number."""
    resource = channel.partition("/")[2]
    if channel.startswith("Local/"):
        return resource.partition("@")[0]
    return resource.rstrip("/").rsplit("/", 1)[-1].partition("@")[0]


def _set_cid(ch: Channel, req: OriginateRequest) -> None:
    ch.cid_num, ch.cid_name = req.cid_num, req.cid_name
    ch.conn_num, ch.conn_name = req.cid_num, req.cid_name


async def originate(eng: Engine, req: OriginateRequest) -> bool:
    """Run one origination to its end (answered flows run until the customer hangs up).

    Emits OriginateResponse for async requests. Returns True if the customer answered; the
    caller (the action handler) uses it to answer a synchronous Originate.
    """
    fail_cid = (req.cid_num, req.cid_name)
    if req.tech not in KNOWN_TECHS:
        if req.is_async:
            eng.emit([F.originate_response(req.action_id, False, req.channel, req.target, 0,
                                           UNKNOWN, *fail_cid)])
        return False
    number = dialled_number(req.channel)
    outcome = eng.config.originate_rule(number)
    o1, o2, device = _dial(eng, req, number)
    if outcome == "noanswer":
        await eng.sleep(req.timeout)
        if o2 is not None:
            o2.priority = 12
        ev: list[Event] = []
        if o2 is not None:
            ev += [F.hangup_request(o2, 19), F.hangup_request(o2, 16, soft=True)]
        if req.is_async:
            ev.append(F.originate_response(req.action_id, False, req.channel, req.target, 3,
                                           UNKNOWN, *fail_cid))
        ev.append(F.hangup(o1, 19))
        if o2 is not None:
            ev.append(F.hangup(o2, 19))
        ev += [F.device_state(device, "NOT_INUSE")] * 2
        eng.drop(o1, o2)
        eng.emit(ev)
        return False
    if outcome in _FAILURES:
        reason, dial_status, cause, prio = _FAILURES[outcome]
        await eng.sleep(0.5)
        ev = []
        if o2 is not None:
            o2.state, o2.priority = 7, prio
            ev.append(F.chan_event("Newstate", o2))
        ev += [F.device_state(device, "INUSE"),
               F.dial("DialEnd", None, F.snapshot(o1, "Dest"), ("DialStatus", dial_status))]
        if o2 is not None:
            ev.append(F.hangup_request(o2, 0))
        if req.is_async:
            ev.append(F.originate_response(req.action_id, False, req.channel, req.target, reason,
                                           UNKNOWN, *fail_cid))
        ev += [F.hangup(o1, 0 if o2 is not None else cause), F.device_state(device, "NOT_INUSE")]
        if o2 is not None:
            ev += [F.hangup_request(o2, 16, soft=True), F.hangup(o2, cause),
                   F.device_state(device, "NOT_INUSE")]
        eng.drop(o1, o2)
        eng.emit(ev)
        return False
    await eng.sleep(1.0)  # the trunk's Wait(1) before Answer()
    ev = []
    if o2 is not None:
        o2.state, o2.priority = 6, 6
        ev += [F.chan_event("Newstate", o2), F.device_state(device, "INUSE")]
    o1.state = 6
    ev += [F.chan_event("Newstate", o1),
           F.dial("DialEnd", None, F.snapshot(o1, "Dest"), ("DialStatus", "ANSWER"))]
    response = (
        [F.originate_response(req.action_id, True, o1.name, req.target, 4, o1.uniqueid,
                              o1.cid_num, o1.cid_name, o1)]
        if req.is_async else []
    )
    if req.context == "callback" and eng.config.callback_queue in eng.queues:
        eng.emit(ev)
        o1.context, o1.exten = "callback", "s"
        # dialplans/callback.conf: Set(__CALLBACK_JOB=…), Set(__WORK_ORDER=…): the agent's
        # leg inherits both (project_dialplans_session lines 330-333).
        for name in ("CALLBACK_JOB", "WORK_ORDER"):
            o1.set_var("__" + name, o1.variables.get(name, ""))
        if o2 is not None:
            o2.priority = 9
        q = eng.queues[eng.config.callback_queue]
        eng.spawn(queue_call(eng, QueueCaller(o1, o2, [device, device]), q, CallPlan(), 2,
                             response + [F.device_state(device, "INUSE")] * 2))
        return True
    eng.emit(ev + response + [F.device_state(device, "INUSE")])
    eng.spawn(_after_answer(eng, req, o1, o2, device))
    return True


def _set_variables(req: OriginateRequest, *chans: Channel | None) -> None:
    for ch in chans:
        if ch is not None:
            for name, value in req.variables.items():
                ch.set_var(name, value)


def _dial(eng: Engine, req: OriginateRequest, number: str) -> tuple[Channel, Channel | None, str]:
    """Create the outbound channel(s) and emit up to DialBegin (survey_completed's start)."""
    ev: list[Event] = []
    if req.tech == "Local":
        resource = req.channel.partition("/")[2]
        keep = resource.endswith("/n")
        base = resource[:-2] if keep else resource
        context = base.partition("@")[2] or "default"
        seq = eng.ids.local_seq()
        o1 = eng.new_channel(f"Local/{base}-{seq};1", "Local", uniqueid=req.channel_id or None)
        # With a ChannelId (and no OtherChannelId) Asterisk names the ;2 half "<ChannelId>;2"
        # (project_dialplans_session line 281).
        o2 = eng.new_channel(f"Local/{base}-{seq};2", "Local", o1.linkedid,
                             uniqueid=f"{req.channel_id};2" if req.channel_id else None)
        for o in (o1, o2):
            o.context, o.exten = context, number
        o2.state = 4
        ev += [F.chan_event("Newchannel", o1), F.chan_event("Newchannel", o2)]
        # The Originate's variables are set once both halves exist (the Local driver gives
        # ;2 a copy): Newchannel shows them empty, every later event of either half set
        # (project_dialplans_session lines 172-179, 310-317).
        _set_variables(req, o1, o2)
        if req.cid_num != UNKNOWN:
            _set_cid(o1, req)
            o1.conn_num = o1.cid_num
            ev += [F.newcallerid(o1), F.chan_event("NewConnectedLine", o1)]
            _set_cid(o2, req)
            ev += [F.newcallerid(o2), F.chan_event("NewConnectedLine", o2)]
        ev.append(F.local_bridge(o1, o2, not keep))
        ev.append(F.dial("DialBegin", None, F.snapshot(o1, "Dest"), ("DialString", resource)))
        device = f"Local/{base}"
    else:
        resource = req.channel.partition("/")[2]
        peer = resource.split("/", 1)[0].partition("@")[0]
        o1 = eng.new_channel(f"{req.tech}/{peer}-{eng.ids.iax_callno()}", req.tech,
                             uniqueid=req.channel_id or None)
        o1.context, o1.exten = "default", "s"
        o2 = None
        ev.append(F.chan_event("Newchannel", o1))
        _set_variables(req, o1)
        if req.cid_num != UNKNOWN:
            _set_cid(o1, req)
            ev += [F.newcallerid(o1), F.chan_event("NewConnectedLine", o1)]
        o1.state = 5
        ev += [F.chan_event("Newstate", o1),
               F.dial("DialBegin", None, F.snapshot(o1, "Dest"), ("DialString", resource))]
        device = f"{req.tech}/{peer}"
        ev.append(F.device_state(device, "RINGING"))
    o1.app, o1.app_data = ("AppDial2", "(Outgoing Line)")
    eng.emit(ev)
    return o1, o2, device


async def _after_answer(eng: Engine, req: OriginateRequest, o1: Channel, o2: Channel | None,
                        device: str) -> None:
    """What the answered call does next: a survey (DTMF + SurveyResult) or just talk."""
    if req.context == "survey":
        o1.context, o1.exten, o1.priority = "survey", "s", 4
        o1.app, o1.app_data = "Read", "q,,1,,1,3"
        digits = list(eng.config.survey_rule(req.variables.get("SURVEY_JOB", "")))[:6]
        await eng.sleep(1.6)  # the prompts before the first question
        for i, digit in enumerate(digits):
            if i:
                await eng.sleep(0.75)
            eng.emit([F.dtmf(o1, digit, end=False)])
            await eng.sleep(0.1)
            eng.emit([F.dtmf(o1, digit, end=True)])
        o1.priority = 7
        body = [("Job", req.variables.get("SURVEY_JOB", "")),
                ("WorkOrder", req.variables.get("WORK_ORDER", ""))]
        body += [(f"Q{i + 1}", d) for i, d in enumerate(digits)]
        ev = [F.user_event(o1, "SurveyResult", body)]
        o1.priority = 8
    else:
        await eng.sleep(15.0)  # the trunk's Wait(15), then the customer hangs up
        ev = []
    if o2 is not None:
        o2.priority = 8
        ev += [F.hangup_request(o1, 16, soft=True), F.hangup_request(o2, 16),
               F.hangup_request(o2, 16, soft=True), F.hangup(o2, 16), F.hangup(o1, 16),
               F.device_state(device, "NOT_INUSE"), F.device_state(device, "NOT_INUSE")]
    else:
        ev += [F.hangup_request(o1, 16, soft=True), F.hangup(o1, 16),
               F.device_state(device, "NOT_INUSE")]
    eng.drop(o1, o2)
    eng.emit(ev)

"""Event builders: channel state → AMI header lists in the exact order Asterisk 22 writes them.

Pure functions, no I/O. Each returns an :data:`Event` ``(name, privilege, fields)``; the server
prepends ``Event:`` and ``Privilege:`` and encodes. Header orders are copied from the
recordings in ``shared/asterisk/transcripts`` (the conformance tests compare them).
"""

from __future__ import annotations

from .state import STATE_DESC, UNKNOWN, Channel, Member

Fields = list[tuple[str, str]]
Event = tuple[str, str, Fields]

CALL = "call,all"
AGENT = "agent,all"
DIALPLAN = "dialplan,all"
DTMF = "dtmf,all"
USER = "user,all"
SYSTEM = "system,all"
SECURITY = "security,all"

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    34: "Circuit/channel congestion",
}
PRES_ALLOWED = "0 (Presentation Allowed, Not Screened)"
PRES_RESTRICTED = "32 (Presentation Restricted, Not Screened)"


def snapshot(
    ch: Channel,
    prefix: str = "",
    *,
    exten: str | None = None,
    conn: tuple[str, str] | None = None,
    state: int | None = None,
) -> Fields:
    """The 14-header channel block (``Channel`` … ``Linkedid``), optionally prefixed
    (``Dest``, ``LocalOne``), then one ``{prefix}ChanVariable: NAME=value`` per manager.conf
    ``channelvars`` entry (``ast_manager_build_channel_state_string_prefix``; none when
    channelvars is empty). ``exten``/``conn``/``state`` override what one event shows: Asterisk
    publishes slightly different snapshots of the same channel to different events."""
    st = ch.state if state is None else state
    cn, cna = (ch.conn_num, ch.conn_name) if conn is None else conn
    p = prefix
    fields = [
        (p + "Channel", ch.name),
        (p + "ChannelState", str(st)),
        (p + "ChannelStateDesc", STATE_DESC[st]),
        (p + "CallerIDNum", ch.cid_num),
        (p + "CallerIDName", ch.cid_name),
        (p + "ConnectedLineNum", cn),
        (p + "ConnectedLineName", cna),
        (p + "Language", "en"),
        (p + "AccountCode", ""),
        (p + "Context", ch.context),
        (p + "Exten", ch.exten if exten is None else exten),
        (p + "Priority", str(ch.priority)),
        (p + "Uniqueid", ch.uniqueid),
        (p + "Linkedid", ch.linkedid),
    ]
    if ch.manager_vars:
        fields += ch.manager_var_fields(p)
    return fields


def chan_event(name: str, ch: Channel, *extra: tuple[str, str], priv: str = CALL) -> Event:
    """Newchannel, Newstate, NewConnectedLine, … : the snapshot plus optional trailing headers."""
    fields = snapshot(ch)
    fields.extend(extra)
    return (name, priv, fields)


def newcallerid(ch: Channel, pres: str = PRES_ALLOWED) -> Event:
    return chan_event("NewCallerid", ch, ("CID-CallingPres", pres))


def hangup(ch: Channel, cause: int) -> Event:
    return chan_event("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT[cause]))


def hangup_request(ch: Channel, cause: int, *, soft: bool = False) -> Event:
    return chan_event("SoftHangupRequest" if soft else "HangupRequest", ch, ("Cause", str(cause)))


def varset(ch: Channel, variable: str, value: str) -> Event:
    return chan_event("VarSet", ch, ("Variable", variable), ("Value", value), priv=DIALPLAN)


def newexten(ch: Channel, app: str, app_data: str) -> Event:
    return chan_event(
        "Newexten", ch, ("Extension", ch.exten), ("Application", app), ("AppData", app_data),
        priv=DIALPLAN,
    )


def local_bridge(one: Channel, two: Channel, optimization: bool) -> Event:
    fields = snapshot(one, "LocalOne") + snapshot(two, "LocalTwo")
    fields += [
        ("Context", one.context),
        ("Exten", one.exten),
        ("LocalOptimization", "Yes" if optimization else "No"),
    ]
    return ("LocalBridge", CALL, fields)


def dial(name: str, caller: Channel | None, dest: Fields, last: tuple[str, str]) -> Event:
    """DialBegin / DialEnd / DialState. ``caller`` is None for an Originate (no calling channel:
    the frame starts at ``DestChannel``). ``dest`` is ``snapshot(ch, "Dest", …)``."""
    fields = snapshot(caller) if caller is not None else []
    fields += dest
    fields.append(last)
    return (name, CALL, fields)


def queue_agent_event(
    name: str, caller: Channel, dest: Channel, queue: str, member: Member, *extra: tuple[str, str]
) -> Event:
    """AgentCalled / AgentRingNoAnswer / AgentConnect / AgentComplete."""
    fields = snapshot(caller) + snapshot(dest, "Dest")
    fields += [("Queue", queue), ("Interface", member.interface), ("MemberName", member.name)]
    fields.extend(extra)
    return (name, AGENT, fields)


def queue_caller(name: str, ch: Channel, queue: str, *extra: tuple[str, str]) -> Event:
    """QueueCallerJoin / QueueCallerLeave / QueueCallerAbandon."""
    fields = snapshot(ch)
    fields.append(("Queue", queue))
    fields.extend(extra)
    return (name, AGENT, fields)


def device_state(device: str, state: str) -> Event:
    return ("DeviceStateChange", CALL, [("Device", device), ("State", state)])


def member_fields(queue: str, m: Member, status: int, in_call: bool) -> Fields:
    return [
        ("Queue", queue),
        ("MemberName", m.name),
        ("Interface", m.interface),
        ("StateInterface", m.interface),
        ("Membership", m.membership),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", "1" if in_call else "0"),
        ("Status", str(status)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.paused_reason),
        ("Ringinuse", "0"),
        ("Wrapuptime", "0"),
    ]


def queue_member_event(name: str, queue: str, m: Member, status: int, in_call: bool) -> Event:
    """QueueMemberStatus / QueueMemberAdded / QueueMemberRemoved / QueueMemberPause."""
    return (name, AGENT, member_fields(queue, m, status, in_call))


def bridge_fields(bridge_id: str, count: int) -> Fields:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", UNKNOWN),
        ("BridgeName", UNKNOWN),
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]


def bridge_event(name: str, bridge_id: str, count: int, ch: Channel | None = None) -> Event:
    """BridgeCreate / BridgeDestroy (no channel) and BridgeEnter / BridgeLeave (with one)."""
    fields = bridge_fields(bridge_id, count)
    if ch is not None:
        fields += snapshot(ch)
    return (name, CALL, fields)


def dtmf(ch: Channel, digit: str, *, end: bool) -> Event:
    if end:
        return chan_event(
            "DTMFEnd", ch, ("Digit", digit), ("DurationMs", "100"), ("Direction", "Received"),
            priv=DTMF,
        )
    return chan_event("DTMFBegin", ch, ("Digit", digit), ("Direction", "Received"), priv=DTMF)


def user_event(ch: Channel, user_event_name: str, body: Fields) -> Event:
    return chan_event("UserEvent", ch, ("UserEvent", user_event_name), *body, priv=USER)


def originate_response(
    action_id: str | None,
    success: bool,
    channel: str,
    target: Fields,
    reason: int,
    uniqueid: str,
    cid_num: str,
    cid_name: str,
    chan: Channel | None = None,
) -> Event:
    """``target`` is ``[Context, Exten]`` or ``[Application, Data]`` as the Originate gave them.

    ``chan`` is the answered channel: OriginateResponse goes through Asterisk's older
    ``manager_event`` path, which names the channel in the key of each channelvars header,
    ``ChanVariable(<channel name>): NAME=value``, after every other header
    (project_dialplans_session line 318). A failure has no channel, so no such header."""
    fields: Fields = [("ActionID", action_id)] if action_id is not None else []
    fields += [("Response", "Success" if success else "Failure"), ("Channel", channel)]
    fields += target
    fields += [
        ("Reason", str(reason)),
        ("Uniqueid", uniqueid),
        ("CallerIDNum", cid_num),
        ("CallerIDName", cid_name),
    ]
    if chan is not None:
        key = f"ChanVariable({chan.name})"
        fields += [(key, f"{n}={chan.variables.get(n, '')}") for n in chan.manager_vars]
    return ("OriginateResponse", CALL, fields)


def shutdown(restart: bool) -> Event:
    """What ``core restart now`` / ``core stop now`` sends before closing every manager
    session (project_dialplans_session line 381)."""
    return ("Shutdown", SYSTEM,
            [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")])


def fully_booted(uptime: int, last_reload: int) -> Event:
    return (
        "FullyBooted",
        SYSTEM,
        [("Uptime", str(uptime)), ("LastReload", str(last_reload)), ("Status", "Fully Booted")],
    )

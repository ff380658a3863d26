"""Manager actions a logged-in client may send, answered as Asterisk 22 answers them.

Each handler gets the engine, the session (to reply to) and the message with canonical header
names. Texts come from the recordings (``agent_state``, ``bad_actions``, ``originate_failures``).
"""

from __future__ import annotations

import time
from typing import Protocol

from callcenter.ami.codec import Message

from . import frames as F
from .engine import Engine, log
from .frames import Event, Fields
from .listing import LIST_ACTIONS
from .originate import originate, parse_originate
from .state import Member, QueueState
from .traffic import mask_phone


class Replier(Protocol):
    def reply(self, fields: Fields, events: list[Fields] | None = None) -> None: ...


def _aid(msg: Message) -> Fields:
    return [("ActionID", msg["ActionID"])] if "ActionID" in msg else []


def success(msg: Message, message: str) -> Fields:
    return [("Response", "Success"), *_aid(msg), ("Message", message)]


def error(msg: Message, message: str) -> Fields:
    return [("Response", "Error"), *_aid(msg), ("Message", message)]


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1", "on", "y", "t")


def ping(eng: Engine, s: Replier, msg: Message) -> None:
    s.reply([("Response", "Success"), *_aid(msg), ("Ping", "Pong"),
             ("Timestamp", f"{time.time():.6f}")])


def originate_action(eng: Engine, s: Replier, msg: Message) -> None:
    try:
        req = parse_originate(msg)
    except ValueError as e:
        s.reply(error(msg, str(e)))
        return
    log.debug("originate to %s (%s)", mask_channel(req.channel), "async" if req.is_async else "sync")
    if req.is_async:
        s.reply(success(msg, "Originate successfully queued"))
        eng.spawn(originate(eng, req))
        return

    async def sync() -> None:
        answered = await originate(eng, req)
        s.reply(success(msg, "Originate successfully queued") if answered
                else error(msg, "Originate failed"))

    eng.spawn(sync())


def _member_status(eng: Engine, m: Member) -> int:
    return 2 if eng.is_busy(m.interface) else 1


def _available(eng: Engine, q: QueueState) -> bool:
    return any(not m.paused and not eng.is_busy(m.interface) for m in q.members)


def queue_add(eng: Engine, s: Replier, msg: Message) -> None:
    qname, iface = msg.get("Queue", ""), msg.get("Interface", "")
    if not qname or not iface:
        s.reply(error(msg, "'Queue' and 'Interface' not specified."))
        return
    q = eng.queues.get(qname)
    if q is None:
        s.reply(error(msg, "Unable to add interface to queue: No such queue"))
        return
    if q.member(iface) is not None:
        s.reply(error(msg, "Unable to add interface: Already there"))
        return
    paused = _truthy(msg.get("Paused", "false"))
    now = int(eng.now())
    penalty = msg.get("Penalty", "0")
    # Asterisk 22's QueueAdd takes the pause reason too (app_queue.c manager_add_queue_member:
    # "Reason", passed to add_to_queue): the service restores a paused agent with it.
    m = Member(msg.get("MemberName") or iface, iface, membership="dynamic",
               penalty=int(penalty) if penalty.isdigit() else 0, login_time=now, paused=paused,
               last_pause=now if paused else 0, paused_reason=msg.get("Reason", "") if paused else "")
    q.members.append(m)
    s.reply(success(msg, "Added interface to queue"))
    eng.emit([F.device_state(f"Queue:{q.name}_pause_{iface}", "INUSE" if paused else "NOT_INUSE"),
              F.queue_member_event("QueueMemberAdded", q.name, m, _member_status(eng, m), False)])
    eng.members_changed()


def queue_remove(eng: Engine, s: Replier, msg: Message) -> None:
    q = eng.queues.get(msg.get("Queue", ""))
    if q is None:
        s.reply(error(msg, "Unable to remove interface from queue: No such queue"))
        return
    m = q.member(msg.get("Interface", ""))
    if m is None:
        s.reply(error(msg, "Unable to remove interface: Not there"))
        return
    if m.membership != "dynamic":
        s.reply(error(msg, "Member not dynamic"))
        return
    q.members.remove(m)
    s.reply(success(msg, "Removed interface from queue"))
    eng.emit([F.queue_member_event("QueueMemberRemoved", q.name, m, _member_status(eng, m),
                                   False)])
    eng.members_changed()


def queue_pause(eng: Engine, s: Replier, msg: Message) -> None:
    iface = msg.get("Interface", "")
    if not iface or "Paused" not in msg:
        s.reply(error(msg, "Need 'Interface' and 'Paused' parameters."))
        return
    paused = _truthy(msg["Paused"])
    qname = msg.get("Queue") or None
    targets = [(q, m) for q, m in eng.queues_of(iface) if qname is None or q.name == qname]
    if not targets:
        s.reply(error(msg, "Interface not found"))
        return
    reason = msg.get("Reason", "") if paused else ""
    s.reply(success(msg, "Interface paused successfully" if paused
                    else "Interface unpaused successfully"))
    ev: list[Event] = []
    now = int(eng.now())
    for q, m in targets:
        was_available = _available(eng, q)
        m.paused, m.paused_reason = paused, reason
        if paused:
            m.last_pause = now
        ev.append(F.device_state(f"Queue:{q.name}_pause_{iface}",
                                 "INUSE" if paused else "NOT_INUSE"))
        if was_available != _available(eng, q):
            ev.append(F.device_state(f"Queue:{q.name}_avail",
                                     "NOT_INUSE" if not was_available else "INUSE"))
        ev.append(F.queue_member_event("QueueMemberPause", q.name, m, _member_status(eng, m),
                                       False))
    eng.emit(ev)
    eng.members_changed()


def list_action(eng: Engine, s: Replier, msg: Message) -> None:
    build = LIST_ACTIONS[msg["Action"].lower()]
    response, items = build(eng, msg)
    s.reply(response, items)


def mask_channel(channel: str) -> str:
    """Mask the digits of a phone number inside a channel name for logs."""
    head, sep, rest = channel.partition("/")
    number, at, tail = rest.partition("@")
    return f"{head}{sep}{mask_phone(number)}{at}{tail}"


HANDLERS = {
    "ping": ping,
    "originate": originate_action,
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    **{name: list_action for name in LIST_ACTIONS},
}

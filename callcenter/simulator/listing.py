"""Answers to the list actions a (re)connecting client uses to rebuild its state.

Shapes from ``resync_mid_call``: ``Response: Success`` + ``EventList: start``, the item events
(mostly without ``Privilege``, ``ActionID`` at the end — except CoreShowChannel where it comes
first), then ``…Complete`` with ``ListItems``. Header orders are the recorded ones.
"""

from __future__ import annotations

from callcenter.ami.codec import Message

from .engine import Engine
from .frames import Fields, snapshot
from .state import UNKNOWN, Channel, QueueState

ListAnswer = tuple[Fields, list[Fields]]
"""(the response's fields, the events' fields including ``Event:`` and the Complete event)."""


def _aid(action_id: str | None) -> Fields:
    return [("ActionID", action_id)] if action_id is not None else []


def _start(action_id: str | None, message: str) -> Fields:
    return [("Response", "Success"), *_aid(action_id), ("EventList", "start"),
            ("Message", message)]


def _complete(name: str, action_id: str | None, count: int, *extra: tuple[str, str]) -> Fields:
    return [("Event", name), *_aid(action_id), ("EventList", "Complete"),
            ("ListItems", str(count)), *extra]


def _avg(total: float, n: int) -> int:
    return int(total / n) if n else 0


def _queue_params(q: QueueState, aid: Fields) -> Fields:
    # app_queue.c: ServicelevelPerf = completed in SL / completed; ServicelevelPerf2 counts
    # the callers who abandoned within the service level as served in time.
    perf = f"{100.0 * q.within_sl / q.completed:.1f}" if q.completed else "0.0"
    done = q.completed + q.abandoned
    perf2 = f"{100.0 * (q.within_sl + q.abandoned_within_sl) / done:.1f}" if done else "0.0"
    return [("Event", "QueueParams"), ("Queue", q.name), ("Max", "0"), ("Strategy", q.strategy),
            ("Calls", str(len(q.entries))), ("Holdtime", str(_avg(q.total_hold, q.completed))),
            ("TalkTime", str(_avg(q.total_talk, q.completed))),
            ("Completed", str(q.completed)), ("Abandoned", str(q.abandoned)),
            ("ServiceLevel", str(q.service_level)), ("ServicelevelPerf", perf),
            ("ServicelevelPerf2", perf2), ("Weight", "0"), *aid]


def _bare(value: str) -> str:
    """QueueEntry writes the placeholder without brackets."""
    return "unknown" if value == UNKNOWN else value


def queue_status(eng: Engine, msg: Message) -> ListAnswer:
    aid = msg.get("ActionID")
    only = msg.get("Queue") or None
    tail = _aid(aid)
    items: list[Fields] = []
    now = eng.now()
    for q in eng.queues.values():
        if only is not None and q.name != only:
            continue
        items.append(_queue_params(q, tail))
        for m in q.members:
            status = 2 if eng.is_busy(m.interface) else 1
            items.append([
                ("Event", "QueueMember"), ("Queue", q.name), ("Name", m.name),
                ("Location", m.interface), ("StateInterface", m.interface),
                ("Membership", m.membership), ("Penalty", str(m.penalty)),
                ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)),
                ("LastPause", str(m.last_pause)), ("LoginTime", str(m.login_time)),
                ("InCall", "0"), ("Status", str(status)), ("Paused", "1" if m.paused else "0"),
                ("PausedReason", m.paused_reason), ("Wrapuptime", "0"), *tail,
            ])
        for pos, e in enumerate(q.entries, 1):
            c = e.channel
            items.append([
                ("Event", "QueueEntry"), ("Queue", q.name), ("Position", str(pos)),
                ("Channel", c.name), ("Uniqueid", c.uniqueid),
                ("CallerIDNum", _bare(c.cid_num)), ("CallerIDName", _bare(c.cid_name)),
                ("ConnectedLineNum", _bare(c.conn_num)),
                ("ConnectedLineName", _bare(c.conn_name)),
                ("Wait", str(int(now - e.joined))), ("Priority", "0"), *tail,
            ])
    items.append(_complete("QueueStatusComplete", aid, len(items)))
    return _start(aid, "Queue status will follow"), items


def queue_summary(eng: Engine, msg: Message) -> ListAnswer:
    aid = msg.get("ActionID")
    only = msg.get("Queue") or None
    items: list[Fields] = []
    now = eng.now()
    for q in eng.queues.values():
        if only is not None and q.name != only:
            continue
        available = sum(1 for m in q.members if not m.paused and not eng.is_busy(m.interface))
        longest = max((int(now - e.joined) for e in q.entries), default=0)
        items.append([
            ("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", str(len(q.members))),
            ("Available", str(available)), ("Callers", str(len(q.entries))),
            ("HoldTime", str(_avg(q.total_hold, q.completed))),
            ("TalkTime", str(_avg(q.total_talk, q.completed))),
            ("LongestHoldTime", str(longest)), *_aid(aid),
        ])
    items.append(_complete("QueueSummaryComplete", aid, len(items)))
    return _start(aid, "Queue summary will follow"), items


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def core_show_channels(eng: Engine, msg: Message) -> ListAnswer:
    aid = msg.get("ActionID")
    now = eng.now()
    items: list[Fields] = []
    for c in eng.channels.values():
        items.append([("Event", "CoreShowChannel"), *_aid(aid), *snapshot(c),
                      ("Application", c.app), ("ApplicationData", c.app_data),
                      ("Duration", _duration(now - c.created)), ("BridgeId", c.bridge_id)])
    items.append(_complete("CoreShowChannelsComplete", aid, len(items)))
    return _start(aid, "Channels will follow"), items


def _status_item(c: Channel, now: float, aid: Fields) -> Fields:
    fmt = "slin" if c.tech == "Local" else "ulaw"
    return [("Event", "Status"), ("Privilege", "Call"), *snapshot(c), ("Type", c.tech),
            ("DNID", ""), ("EffectiveConnectedLineNum", c.conn_num),
            ("EffectiveConnectedLineName", c.conn_name), ("TimeToHangup", "0"),
            ("BridgeID", c.bridge_id), ("Application", c.app), ("Data", c.app_data),
            ("Nativeformats", f"({fmt})"), ("Readformat", fmt), ("Readtrans", ""),
            ("Writeformat", fmt), ("Writetrans", ""), ("Callgroup", "0"), ("Pickupgroup", "0"),
            ("Seconds", str(int(now - c.created))), *aid]


def status(eng: Engine, msg: Message) -> ListAnswer:
    """``Status`` lists every channel, or the one named by ``Channel``."""
    aid = msg.get("ActionID")
    only = msg.get("Channel") or None
    now = eng.now()
    items = [_status_item(c, now, _aid(aid)) for c in eng.channels.values()
             if only is None or c.name == only]
    n = len(items)
    items.append(_complete("StatusComplete", aid, n, ("Items", str(n))))
    return _start(aid, "Channel status will follow"), items


LIST_ACTIONS = {
    "queuestatus": queue_status,
    "queuesummary": queue_summary,
    "coreshowchannels": core_show_channels,
    "status": status,
}

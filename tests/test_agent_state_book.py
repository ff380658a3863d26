"""The live book (callcenter.agentstate.book) fed by the recordings: the numbers the wallboard
shows, and Asterisk's own ServicelevelPerf."""

from __future__ import annotations

import pytest

from callcenter.agentstate.book import LiveBook
from callcenter.agentstate.rules import (
    check_interface,
    check_queue,
    check_reason,
    interface_for,
    parse_reasons,
)
from callcenter.errors import ValidationFailed
from callcenter.wallboard.metrics import (
    queue_figures,
    service_level,
    service_level_with_abandoned,
)
from tests.transcripts import load

T0 = 1_795_343_000.0


def feed(book: LiveBook, name: str, *, until_action: str | None = None) -> list[dict]:
    """Apply a recording's events at their recorded times; returns the list answers' items of
    ``until_action`` (and stops there) if given."""
    frames = load(name)
    pending: str | None = None
    items: list[dict] = []
    for f in frames:
        if f.msg is None:
            continue
        if f.dir == "out":
            if until_action and f.msg.get("Action") == until_action:
                pending = f.msg["ActionID"]
            continue
        if pending is not None and f.msg.get("ActionID") == pending:
            if "Event" in f.msg:
                if f.msg.get("EventList") == "Complete":
                    return items
                items.append(f.msg)
            continue
        if "Event" in f.msg:
            book.apply(f.msg, T0 + f.t_ms / 1000)
    return items


def test_burst_of_ten_calls_gives_the_day_figures() -> None:
    book = LiveBook()
    feed(book, "burst_10_calls")
    t = book.by_queue["bulk"]
    assert (t.offered, t.answered, t.abandoned, t.completed) == (10, 8, 2, 8)
    assert (t.hold_sum, t.talk_sum, t.completed_in_sl, t.abandoned_in_sl) == (49, 32, 8, 2)
    assert queue_figures(t.as_dict()) == {"service_level": 100.0, "service_level2": 100.0,
                                          "asa": 6.1, "aht": 4.0, "abandon_rate": 20.0}
    # Member 8027 took the eight calls; 8013 was rung twice, both callers gave up.
    assert (book.by_member["8027"].answered, book.by_member["8027"].talk_sum) == (8, 32)
    assert "8013" not in book.by_member
    assert book.waiting["bulk"] == {}
    assert all(not a.ringing and not a.talking for a in book.agents.values())


def test_burst_mid_way_shows_waiting_ringing_and_talking() -> None:
    book = LiveBook()
    frames = [f for f in load("burst_10_calls") if f.dir == "in" and f.msg and "Event" in f.msg]
    for f in frames:
        if f.t_ms > 3000:
            break
        book.apply(f.msg, T0 + f.t_ms / 1000)
    # At 3.0 s: calls 1-8 joined, the first answered at 2.8 s; 8027 talks, and rings no more.
    assert len(book.waiting["bulk"]) == 7
    assert book.agents["Local/8027@agents/n"].state == "talking"
    assert min(j for _, j in book.waiting["bulk"].values()) == pytest.approx(T0 + 1.1053)


def test_agent_state_recording_pause_reason_and_time_in_state() -> None:
    book = LiveBook()
    iface = "Local/8004@agents/n"
    states = []
    for f in load("agent_state"):
        if f.dir == "in" and f.msg and "Event" in f.msg:
            book.apply(f.msg, T0 + f.t_ms / 1000)
            a = book.agents.get(iface)
            states.append((f.msg["Event"], a.state if a else None, a.reason if a else None,
                           round(a.since - T0, 4) if a else None))
    assert [s for s in states if s[0].startswith("QueueMember")] == [
        ("QueueMemberAdded", "available", "", 0.3024),
        ("QueueMemberPause", "paused", "after-call-work", 0.8037),
        ("QueueMemberPause", "available", "", 1.305),
        ("QueueMemberRemoved", None, None, None),
    ]


def test_resync_rebuilds_from_queue_status_list_fields() -> None:
    """QueueStatus items say Name/Location (events say MemberName/Interface)."""
    book = LiveBook()
    items = feed(book, "resync_mid_call", until_action="QueueStatus")
    now = T0 + 4.0
    book.rebuild(items, [], now)
    assert book.queues == {"aircon", "bulk", "escalation", "aftersales"}
    assert book.members[("aftersales", "Local/8001@agents/n")].name == "8001"
    assert len([k for k in book.members if k[0] == "bulk"]) == 20
    assert book.service_levels == {"aircon": 20, "bulk": 20, "escalation": 20, "aftersales": 20}
    # One caller waits in aftersales and one in escalation, 3 s each (QueueEntry Wait).
    assert [j for _, j in book.waiting["aftersales"].values()] == [now - 3]
    assert [j for _, j in book.waiting["escalation"].values()] == [now - 3]
    # Available since the later of LastCall and LoginTime.
    assert book.agents["Local/8001@agents/n"].since == 1795342993


def test_service_level_agrees_with_asterisks_servicelevelperf() -> None:
    """One Asterisk ran these scenarios in this order (their Uptime); the QueueStatus answer in
    resync_mid_call reports its ServicelevelPerf(2) per queue. The recordings stop before some
    conversations end (inbound_answered logs off mid-call; Asterisk counts a call *completed* at
    its end), so here the recorded answers are compared: each queue's share answered within its
    ServiceLevel agrees with Asterisk's figure (no answered call: Asterisk prints 0.0). The exact
    counters are compared against the simulator (test_wallboard_live.py)."""
    book = LiveBook({"aftersales": 20, "escalation": 20, "aircon": 20, "bulk": 20})
    for name in ("inbound_answered", "inbound_abandoned", "inbound_ring_no_answer"):
        feed(book, name)
    items = feed(book, "resync_mid_call", until_action="QueueStatus")
    params = {m["Queue"]: m for m in items if m["Event"] == "QueueParams"}
    assert set(params) == {"aircon", "bulk", "escalation", "aftersales"}
    for queue, p in params.items():
        answered = [f for f in book.facts.values() if f.queue == queue and f.answered]
        in_sl = [f for f in answered if f.hold_s is not None and f.hold_s <= int(p["ServiceLevel"])]
        ours = service_level(len(in_sl), len(answered))
        assert f"{ours or 0.0:.1f}" == p["ServicelevelPerf"], queue
        t = book.by_queue.get(queue)
        if t is not None and t.abandoned:
            ours2 = service_level_with_abandoned(len(in_sl), t.abandoned_in_sl, len(answered), t.abandoned)
            assert f"{ours2:.1f}" == p["ServicelevelPerf2"], queue
    assert book.by_queue["aftersales"].answered == 1 and book.by_queue["aftersales"].abandoned == 1


def test_records_seed_the_day_and_events_win() -> None:
    import datetime as dt

    book = LiveBook()
    book.start_day(T0 - 3600)
    at = dt.datetime.fromtimestamp(T0 - 60, dt.UTC)
    book.seed([
        {"linkedid": "a", "queue": "q", "started_at": at, "answered_at": at, "state": "ended",
         "outcome": "answered", "hold_s": 30, "talk_s": 100, "agent_member": "8001"},
        {"linkedid": "b", "queue": "q", "started_at": at, "answered_at": None, "state": "ended",
         "outcome": "abandoned", "hold_s": 5, "talk_s": None, "agent_member": ""},
        {"linkedid": "old", "queue": "q", "started_at": dt.datetime.fromtimestamp(T0 - 7200, dt.UTC),
         "answered_at": None, "state": "ended", "outcome": "abandoned", "hold_s": 5, "talk_s": None,
         "agent_member": ""},
    ])
    t = book.by_queue["q"]
    assert (t.offered, t.answered, t.completed, t.completed_in_sl, t.abandoned) == (2, 1, 1, 0, 1)
    # The same call seen again by the records (a later read) is not counted twice.
    book.seed([{"linkedid": "a", "queue": "q", "started_at": at, "answered_at": at, "state": "ended",
                "outcome": "answered", "hold_s": 30, "talk_s": 100, "agent_member": "8001"}])
    assert (t.offered, t.talk_sum, book.by_member["8001"].answered) == (2, 100, 1)
    # The day changes: yesterday's calls leave the figures.
    book.start_day(T0 + 1)
    assert book.by_queue.get("q") is None or book.by_queue["q"].offered == 0


@pytest.mark.parametrize("value", ["aftersales", "bulk-2", "q_1"])
def test_good_queue_names(value: str) -> None:
    assert check_queue(value) == value


@pytest.mark.parametrize("value", ["", "after sales", "a\r\nAction: Originate", "队列", "x" * 65, None, 5])
def test_bad_queue_names(value: object) -> None:
    with pytest.raises(ValidationFailed):
        check_queue(value)


@pytest.mark.parametrize("value", ["Local/8001@agents/n", "PJSIP/8001", "IAX2/agent8001/agent8001", "SIP/8001"])
def test_good_interfaces(value: str) -> None:
    assert check_interface(value) == value


@pytest.mark.parametrize("value", ["8001", "PJSIP/", "PJSIP/8001\r\nAction: Logoff", "Foo/8001",
                                   "PJSIP/80 01", "Local/8001@agents/n/x"])
def test_bad_interfaces(value: str) -> None:
    with pytest.raises(ValidationFailed):
        check_interface(value)


def test_reasons_come_from_the_list() -> None:
    allowed = ("小休", "午餐", "培训", "话后处理")
    assert check_reason("午餐", allowed) == "午餐"
    for bad in ("lunch", "午餐\r\nAction: Logoff", "", None):
        with pytest.raises(ValidationFailed):
            check_reason(bad, allowed)
    assert parse_reasons(" 小休 , 午餐,培训") == ("小休", "午餐", "培训")
    for bad in ("", "a,a", "x" * 33, "a\x07"):
        with pytest.raises(ValueError):
            parse_reasons(bad)
    assert interface_for("8001", "PJSIP/{extension}") == "PJSIP/8001"
    with pytest.raises(ValidationFailed):
        interface_for("80\r\n01", "PJSIP/{extension}")

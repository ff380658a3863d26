"""The pure path AMI message → call event → tracker effects, on every recording."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from callcenter.calls.events import device_of, extension_of, to_call_event
from callcenter.calls.tracker import CallTracker, LookUpCaller, NotifyAgent, SaveCall
from tests.transcripts import NAMES, events, load

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def run(name: str):
    tracker = CallTracker()
    effects = []
    for f in load(name):
        if f.dir != "in" or f.msg is None or "Event" not in f.msg:
            continue
        ev = to_call_event(f.msg)
        if ev is not None:
            effects.extend(tracker.apply(ev, T0 + dt.timedelta(milliseconds=f.t_ms)))
    pops = defaultdict(list)
    for e in effects:
        if isinstance(e, NotifyAgent):
            pops[e.member].append((e.call["id"], e.type, e.reason))
    saved = {}
    for e in effects:
        if isinstance(e, SaveCall):
            saved[e.call["id"]] = e.call
    return tracker, effects, dict(pops), saved


def test_every_recording_parses_and_maps():
    for name in NAMES:
        for msg in events(name):
            to_call_event(msg)  # never raises


def test_inbound_answered_rings_8002_then_8001_answers():
    tracker, effects, pops, saved = run("inbound_answered")
    lid = "1795342910.6"
    assert pops == {
        "8002": [(lid, "call.ringing", None), (lid, "call.missed", "no_answer")],
        "8001": [(lid, "call.ringing", None), (lid, "call.answered", None)],
    }
    assert isinstance(effects[0], LookUpCaller) and effects[0].caller == "13800138000"
    call = saved[lid]
    assert call["caller"] == "13800138000" and call["did"] == "4008001234" and call["queue"] == "aftersales"
    assert call["state"] == "answered" and call["answered_by"] == "8001" and call["hold_s"] == 7
    assert [(r["member"], r["result"]) for r in call["rang"]] == [("8002", "no_answer"), ("8001", "answered")]
    assert call["rang"][0]["ring_ms"] == 4000
    # The recording stops while they talk: the call is still live.
    assert lid in tracker.calls


def test_inbound_abandoned_while_all_paused():
    tracker, effects, pops, saved = run("inbound_abandoned")
    assert pops == {}
    call = saved["1795342940.18"]
    assert call["outcome"] == "abandoned" and call["hold_s"] == 4 and call["state"] == "ended"
    assert call["caller"] == "13700001111" and call["rang"] == []
    assert tracker.calls == {}


def test_ring_no_answer_then_next_agent_then_complete():
    tracker, effects, pops, saved = run("inbound_ring_no_answer")
    lid = "1795342952.20"
    assert pops["8002"] == [(lid, "call.ringing", None), (lid, "call.missed", "no_answer")]
    assert pops["8001"] == [(lid, "call.ringing", None), (lid, "call.answered", None), (lid, "call.ended", None)]
    call = saved[lid]
    assert call["outcome"] == "answered" and call["queue"] == "escalation" and call["did"] == "4008007777"
    assert call["talk_s"] is not None and call["talk_s"] >= 6
    assert tracker.calls == {}


def test_iax2_device_channels():
    tracker, effects, pops, saved = run("iax_inbound_answered")
    lid = "1795343892.639"
    assert pops == {"8001": [(lid, "call.ringing", None), (lid, "call.answered", None), (lid, "call.ended", None)]}
    assert saved[lid]["queue"] == "hotline" and saved[lid]["outcome"] == "answered"
    assert saved[lid]["did"] == "4008006666"


def test_callback_call_rings_agents_like_inbound():
    tracker, effects, pops, saved = run("originate_callback")
    lid = "1795343025.48"
    assert [t for _, t, _ in pops["8002"]] == ["call.ringing", "call.missed"]
    assert [t for _, t, _ in pops["8001"]] == ["call.ringing", "call.answered", "call.ended"]
    assert saved[lid]["outcome"] == "answered"


def test_two_concurrent_calls_in_resync_recording():
    tracker, effects, pops, saved = run("resync_mid_call")
    a, b = "1795343003.36", "1795343003.38"
    assert [(i, t) for i, t, _ in pops["8002"]] == [(a, "call.ringing"), (b, "call.ringing"),
                                                    (a, "call.missed"), (b, "call.missed")]
    assert sorted((i, t) for i, t, _ in pops["8001"]) == sorted(
        [(a, "call.ringing"), (b, "call.ringing"), (a, "call.answered"), (b, "call.answered"),
         (a, "call.ended"), (b, "call.ended")])
    assert saved[a]["outcome"] == saved[b]["outcome"] == "answered"
    assert saved[b]["queue"] == "escalation"


def test_burst_of_ten_interleaved_calls():
    tracker, effects, pops, saved = run("burst_10_calls")
    joins = [m for m in events("burst_10_calls") if m["Event"] == "QueueCallerJoin"]
    assert len(saved) == len(joins) == 10
    connects = {m["Linkedid"]: m["MemberName"] for m in events("burst_10_calls") if m["Event"] == "AgentConnect"}
    abandons = {m["Linkedid"] for m in events("burst_10_calls") if m["Event"] == "QueueCallerAbandon"}
    for lid, call in saved.items():
        if lid in connects:
            assert call["outcome"] == "answered" and call["answered_by"] == connects[lid]
            assert (lid, "call.answered", None) in pops[connects[lid]]
        elif lid in abandons:
            assert call["outcome"] in ("abandoned", None)
    # every ring an agent saw was closed by missed/answered/abandoned
    for member, seq in pops.items():
        rings = [i for i, t, _ in seq if t == "call.ringing"]
        closed = [i for i, t, _ in seq if t in ("call.missed", "call.answered", "call.abandoned")]
        assert sorted(rings) == sorted(closed), member


def test_anonymous_caller_maps_to_empty_number():
    msg = dict(next(m for m in events("inbound_answered") if m["Event"] == "QueueCallerJoin"))
    msg["CallerIDNum"] = "<unknown>"
    ev = to_call_event(msg)
    assert ev.caller == ""
    msg["CallerIDNum"] = ""
    assert to_call_event(msg).caller == ""


def test_resync_rebuilds_live_calls_from_list_answers():
    frames = events("resync_mid_call")
    channels = [m for m in frames if m["Event"] == "CoreShowChannel"]
    entries = [m for m in frames if m["Event"] == "QueueEntry"]
    members = [m for m in frames if m["Event"] == "QueueMember"]
    tracker = CallTracker()
    effects = tracker.resync(channels, entries, members, T0)
    # both callers were waiting in a queue (QueueEntry) when the lists were read
    assert set(tracker.calls) == {"1795343003.36", "1795343003.38"}
    lookups = [e for e in effects if isinstance(e, LookUpCaller)]
    assert {e.caller for e in lookups} == {"13700001111", "13800138000"}
    assert tracker.calls["1795343003.38"].queue == "escalation"
    assert tracker.calls["1795343003.38"].did == "4008007777"
    # a call we tracked that has no channel any more ends on resync
    tracker2 = CallTracker()
    run_tracker, *_ = run("inbound_answered")
    tracker2.calls = run_tracker.calls
    effects2 = tracker2.resync([], [], members, T0)
    assert any(isinstance(e, SaveCall) and e.call["state"] == "ended" for e in effects2)
    assert any(isinstance(e, NotifyAgent) and e.type == "call.ended" and e.member == "8001" for e in effects2)


@pytest.mark.parametrize("value,device", [
    ("Local/8002@agents-00000015;1", "Local/8002@agents"),
    ("Local/8002@agents/n", "Local/8002@agents"),
    ("IAX2/agent8001-15390", "IAX2/agent8001"),
    ("IAX2/agent8001/agent8001", "IAX2/agent8001"),
    ("PJSIP/8001-0000001a", "PJSIP/8001"),
    ("PJSIP/8001", "PJSIP/8001"),
])
def test_device_of(value, device):
    assert device_of(value) == device


@pytest.mark.parametrize("interface,ext", [
    ("Local/8001@agents/n", "8001"), ("PJSIP/8001", "8001"), ("IAX2/agent8001/agent8001", "agent8001"),
    ("SIP/8003", "8003"),
])
def test_extension_of(interface, ext):
    assert extension_of(interface) == ext


def _until(name: str, stop) -> CallTracker:  # type: ignore[no-untyped-def]
    tracker = CallTracker()
    for msg in events(name):
        ev = to_call_event(msg)
        if ev is not None:
            tracker.apply(ev, T0)
        if stop(msg):
            break
    return tracker


def _chan(channel: str, linkedid: str, bridged: bool) -> dict:
    return {"Event": "CoreShowChannel", "Channel": channel, "Linkedid": linkedid,
            "Uniqueid": channel, "BridgeId": "b1" if bridged else ""}


def test_resync_catches_up_with_an_answer_made_while_away():
    # 8001 was ringing when the connection dropped; the lists say its leg is now bridged
    tracker = _until("inbound_answered", lambda m: m["Event"] == "AgentCalled" and m["MemberName"] == "8001")
    lid = "1795342910.6"
    assert tracker.calls[lid].ringing == {"8001": "Local/8001@agents/n"}
    members = [{"Name": "8001", "Location": "Local/8001@agents/n"}, {"Name": "8002", "Location": "Local/8002@agents/n"}]
    chans = [_chan("Local/13800138000@pstn-in-00000003;2", lid, True),
             _chan("Local/8001@agents-00000005;1", lid, True)]
    effects = tracker.resync(chans, [], members, T0, known_before=[lid])
    notes = [(e.member, e.type) for e in effects if isinstance(e, NotifyAgent)]
    assert notes == [("8001", "call.answered")]
    assert tracker.calls[lid].answered_by == "8001" and tracker.calls[lid].state == "answered"


def test_resync_ends_a_ring_whose_leg_is_gone():
    tracker = _until("inbound_answered", lambda m: m["Event"] == "AgentCalled" and m["MemberName"] == "8002")
    lid = "1795342910.6"
    chans = [_chan("Local/13800138000@pstn-in-00000003;2", lid, False)]
    effects = tracker.resync(chans, [], [], T0, known_before=[lid])
    assert [(e.member, e.type, e.reason) for e in effects if isinstance(e, NotifyAgent)] == [
        ("8002", "call.missed", "no_answer")]
    assert tracker.calls[lid].state == "queued"

"""The attempt's own channel as evidence (callcenter.outbound.evidence), on the real recording
of the project against Asterisk 22 and as a rule table."""

from __future__ import annotations

import pytest

from callcenter.outbound.evidence import Evidence, better_cause, evidence_of, settle
from tests.transcripts import events

ATTEMPT = "ob-8-1-b2efd778"  # the answered callback of project_dialplans_session (line 308)


def test_the_recorded_answered_callback_leaves_answered_evidence_and_its_agent():
    everything = [e for m in events("project_dialplans_session") if (e := evidence_of(m)) is not None]
    # The two callbacks to abandoned callers failed (no answer, congestion): causes, no answer.
    failed = {e.attempt_id: e.hangup_cause for e in everything if e.attempt_id != ATTEMPT and e.hangup_cause}
    assert sorted(failed.values()) == [19, 34]
    assert not any(e.answered for e in everything if e.attempt_id != ATTEMPT)
    found = [e for e in everything if e.attempt_id == ATTEMPT]
    assert any(e.answered for e in found)
    # AgentConnect (MemberName 8001) names who took it.
    assert {e.agent for e in found if e.agent} == {"8001"}
    # Both halves hung up with Normal Clearing while up.
    assert {e.hangup_cause for e in found if e.hangup_cause} == {16}
    assert all(e.answered for e in found if e.hangup_cause and e.channel)
    # Answered even without the OriginateResponse (what the codec once dropped).
    without = [e for m in events("project_dialplans_session") if m.get("Event") != "OriginateResponse"
               and (e := evidence_of(m)) is not None and e.answered]
    assert without


def test_failed_originates_never_look_answered():
    # The lab's busy / no answer / congestion attempts, renamed as the service names them.
    for m in events("originate_failures"):
        m = dict(m)
        for key in ("Uniqueid", "Linkedid", "DestUniqueid"):
            if m.get(key, "").startswith("17"):
                m[key] = "ob-1-1-aaaa" + (";2" if m[key].endswith(("55", "57", "59", "61")) else "")
        e = evidence_of(m)
        assert e is None or not e.answered, m


@pytest.mark.parametrize("msg,expected", [
    ({"Event": "Newstate", "Uniqueid": "ob-1-1-x", "ChannelState": "6", "Channel": "Local/1@t-1;1"},
     Evidence("ob-1-1-x", answered=True, channel="Local/1@t-1;1")),
    # The ;2 half going up is the far end's dialplan, not the Originate's answer.
    ({"Event": "Newstate", "Uniqueid": "ob-1-1-x;2", "ChannelState": "6"}, None),
    ({"Event": "Newstate", "Uniqueid": "ob-1-1-x", "ChannelState": "5"}, None),
    ({"Event": "QueueCallerJoin", "Uniqueid": "ob-1-1-x", "ChannelState": "4", "Context": "callback-queue"},
     Evidence("ob-1-1-x", answered=True)),
    ({"Event": "Hangup", "Uniqueid": "ob-1-1-x;2", "ChannelState": "7", "Cause": "17"},
     Evidence("ob-1-1-x", hangup_cause=17)),
    ({"Event": "Hangup", "Uniqueid": "ob-1-1-x", "ChannelState": "0", "Cause": "0", "Channel": "L;1"},
     Evidence("ob-1-1-x", hangup_cause=0, channel="L;1")),
    ({"Event": "DialEnd", "DestUniqueid": "ob-1-1-x", "DialStatus": "ANSWER", "DestChannel": "L;1"},
     Evidence("ob-1-1-x", answered=True, channel="L;1")),
    ({"Event": "DialEnd", "DestUniqueid": "ob-1-1-x", "DialStatus": "BUSY"}, None),
    # The answered customer rang the chosen agent directly (dialplans/callback.conf, exten agent).
    ({"Event": "DialEnd", "Uniqueid": "ob-1-1-x", "Channel": "L;1", "DialStatus": "ANSWER",
      "DestUniqueid": "1796.9", "DestChannel": "Local/8002@callcenter-agents-0000003a;1"},
     Evidence("ob-1-1-x", answered=True, agent="8002", channel="L;1")),
    ({"Event": "AgentConnect", "Uniqueid": "ob-1-1-x", "Linkedid": "ob-1-1-x", "MemberName": "8001"},
     Evidence("ob-1-1-x", answered=True, agent="8001")),
    ({"Event": "Newstate", "Uniqueid": "1796661907.54", "ChannelState": "6"}, None),
])
def test_evidence_rules(msg, expected):
    assert evidence_of(msg) == expected


@pytest.mark.parametrize("reported,answered,cause,outcome", [
    ("failure", True, None, "answered"),  # answered evidence wins over any response
    ("unknown", True, 16, "answered"),
    ("unknown", False, 17, "busy"),
    ("unknown", False, 19, "no_answer"),
    ("unknown", False, 34, "congestion"),
    ("unknown", False, None, "unknown"),  # nothing known: a person decides
    ("unknown", False, 0, "unknown"),
    ("busy", False, 16, "busy"),  # a response that came is kept
])
def test_settle(reported, answered, cause, outcome):
    assert settle(reported, answered=answered, hangup_cause=cause) == outcome


def test_the_more_telling_cause_is_kept():
    assert better_cause(None, 0) is None
    assert better_cause(0, 17) == 17
    assert better_cause(16, 17) == 17
    assert better_cause(17, 16) == 17

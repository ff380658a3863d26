"""What an outbound attempt's own channel tells about it, as pure functions of AMI events.

An attempt's outcome normally comes from its ``OriginateResponse``. That one event is not
enough to decide whether a customer may be called again: a real Asterisk once sent it in a form
the codec skipped, the attempt stayed open, was resolved as ``unknown`` and retried — and a
customer who had already talked to an agent was called a second time. So the attempt's channel
is evidence too. The ``Originate`` sets ``ChannelId`` to the attempt id, so the originated
channel's ``Uniqueid`` *is* the attempt id (a Local channel's other half is ``<id>;2``) and
every channel of the call has it as ``Linkedid``
(``shared/asterisk/transcripts/project_dialplans_session.jsonl`` lines 308–373):

- the channel went up (``ChannelState: 6`` on any event of it — ``Newstate``, ``Hangup`` …),
  or the Originate's own dial ended ``DialStatus: ANSWER`` (line 322), or the channel runs in
  a context it can only enter once answered (``callback``, ``callback-queue``, ``survey`` …:
  an Originate to a context starts the dialplan only on answer) → **answered**;
- an agent took it: ``AgentConnect`` (``MemberName``) for a queued callback, or a ``DialEnd``
  ``ANSWER`` from the attempt channel to an agent's extension for one that rang a chosen
  agent → **answered, by that agent**;
- the channel hung up: its ``Cause`` (the ``;2`` half of a Local channel carries the
  carrier's cause, e.g. 17 busy, while ``;1`` says 0).

:func:`settle` turns what is known into the outcome to record; an answered attempt is never
retried whatever its ``OriginateResponse`` said, and one about which nothing at all is known
is ``unknown`` — which the dialler does not retry by itself (a person decides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ATTEMPT_PREFIX = "ob-"
UP = "6"
# Contexts an originated channel enters only once the customer answered (dialplans/).
ANSWERED_CONTEXTS = frozenset({"callback", "callback-queue", "survey", "survey-question"})
# Q.850 hangup causes that say how an unanswered attempt ended.
CAUSE_OUTCOMES = {
    17: "busy",
    18: "no_answer", 19: "no_answer", 21: "no_answer",
    34: "congestion", 38: "congestion", 41: "congestion", 42: "congestion", 44: "congestion",
    1: "failure", 3: "failure", 22: "failure", 27: "failure", 28: "failure", 58: "failure",
    16: "hangup",
}
EVENTS = frozenset({"Newstate", "Hangup", "DialEnd", "AgentConnect", "QueueCallerJoin"})
_AGENT_CHANNEL = re.compile(r"^(?:Local|PJSIP|SIP|IAX2)/(\d{2,16})(?:@|-)")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one event says of one attempt (``attempt_id``)."""

    attempt_id: str
    answered: bool = False
    # The agent's queue member name / extension, when the event names who took the call.
    agent: str | None = None
    # A hangup cause of the attempt's channel (either half), when the event is a Hangup.
    hangup_cause: int | None = None
    # The attempt channel's name (numbers are masked by the caller before storing it).
    channel: str = ""


def attempt_of(uniqueid: str | None) -> str | None:
    """The attempt id a channel belongs to: ``ob-…`` itself, or ``ob-…;2`` (a Local half)."""
    if not uniqueid or not uniqueid.startswith(ATTEMPT_PREFIX):
        return None
    return uniqueid.partition(";")[0]


def evidence_of(msg: Mapping[str, str],
                answered_contexts: frozenset[str] = ANSWERED_CONTEXTS) -> Evidence | None:
    """The evidence an event carries about an outbound attempt, or None."""
    name = msg.get("Event")
    if name == "OriginateResponse":
        # Reported, not evidence: a failed one names the Originate's Context too (lines 194, 282).
        return None
    uid = msg.get("Uniqueid", "")
    own = attempt_of(uid)
    first_half = own is not None and uid == own
    if name == "AgentConnect":
        attempt = attempt_of(msg.get("Linkedid")) or own
        if attempt is None:
            return None
        return Evidence(attempt, answered=True, agent=msg.get("MemberName") or None)
    if name == "DialEnd":
        dest = attempt_of(msg.get("DestUniqueid"))
        if dest is not None and msg.get("DestUniqueid") == dest:
            # The Originate's own dial of the customer (no caller side).
            if msg.get("DialStatus") == "ANSWER":
                return Evidence(dest, answered=True, channel=msg.get("DestChannel", ""))
            return None
        if first_half and msg.get("DialStatus") == "ANSWER":
            # The answered customer rang a chosen agent, who took it.
            m = _AGENT_CHANNEL.match(msg.get("DestChannel", ""))
            return Evidence(own, answered=True, agent=m.group(1) if m else None,  # type: ignore[arg-type]
                            channel=msg.get("Channel", ""))
        return None
    if own is None:
        return None
    up = first_half and (msg.get("ChannelState") == UP or msg.get("Context", "") in answered_contexts)
    if name == "Hangup":
        cause = msg.get("Cause", "")
        return Evidence(own, answered=up, hangup_cause=int(cause) if cause.isdigit() else None,
                        channel=msg.get("Channel", "") if first_half else "")
    if up:
        return Evidence(own, answered=True, channel=msg.get("Channel", ""))
    return None


def better_cause(known: int | None, new: int | None) -> int | None:
    """Keep the more telling of two hangup causes (0 and unknown say nothing)."""
    if not new:
        return known
    if not known or (known == 16 and new in CAUSE_OUTCOMES):
        return new
    return known


def settle(reported: str, *, answered: bool, hangup_cause: int | None) -> str:
    """The outcome to record: ``reported`` (from the OriginateResponse, or ``unknown`` when
    none came) corrected by the channel's evidence. Answered evidence always wins; a lost
    response with a telling hangup cause takes that cause's outcome."""
    if answered:
        return "answered"
    if reported == "unknown" and hangup_cause:
        return CAUSE_OUTCOMES.get(hangup_cause, "unknown")
    return reported

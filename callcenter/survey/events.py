"""The survey IVR's report, as AMI delivers it (pure).

``dialplans/survey.conf`` ends every survey call with one ``UserEvent(SurveyResult,…)``; Asterisk
sends it as (``shared/asterisk/transcripts/survey_completed``)::

    Event: UserEvent
    Privilege: user,all
    Channel: Local/13800138005@outbound-trunk-0000001f;1
    …
    UserEvent: SurveyResult
    Job: sv-2001
    WorkOrder: WO20261121-003
    Q1: 5
    Q2: 4
    …
    Q6: 4

``Q1``…``Q6`` are the six SA-CS-005 questions in order (``rules.QUESTIONS``). A question the
customer did not answer with 1–5 after the re-ask is reported empty (``Q4: ``); a customer who
hangs up mid-survey sends no event at all. Either way the order stays due on the survey agents'
list (``/survey``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callcenter.errors import ValidationFailed
from callcenter.survey.rules import HIGHEST, KEYS, LOWEST

EVENT = "UserEvent"
NAME = "SurveyResult"
# The headers the dialplan sets, in order (tests/test_dialplans.py checks survey.conf against them).
HEADERS = ("Job", "WorkOrder", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6")
QUESTION_HEADERS = HEADERS[2:]


def is_survey_result(message: Mapping[str, str]) -> bool:
    return message.get("Event") == EVENT and message.get("UserEvent") == NAME


def answers_from_user_event(message: Mapping[str, str]) -> dict[str, int]:
    """The answered questions of a ``SurveyResult`` event as ``{key: 1..5}`` (``rules.KEYS``):
    ``{"response_speed": 5, "professionalism": 4, …}``; unanswered (empty) ones are left out,
    so a complete survey has six keys.

    Raises ValidationFailed (field ``Q3`` …) for a value that is not one digit 1–5, and for a
    message that is not a ``SurveyResult`` user event (field ``UserEvent``).
    """
    if not is_survey_result(message):
        raise ValidationFailed("UserEvent", f"not a {NAME} user event")
    out: dict[str, int] = {}
    for header, key in zip(QUESTION_HEADERS, KEYS, strict=True):
        raw = (message.get(header) or "").strip()
        if not raw:
            continue
        if not (len(raw) == 1 and raw.isascii() and raw.isdigit() and LOWEST <= int(raw) <= HIGHEST):
            raise ValidationFailed(header, "one digit 1-5")
        out[key] = int(raw)
    return out


@dataclass(frozen=True, slots=True)
class SurveyEvent:
    """The whole report: the dialler's job reference and the order number as the dialplan
    received them (channel variables ``SURVEY_JOB`` and ``WORK_ORDER``), and the answers."""

    job: str
    work_order: str
    answers: dict[str, int]

    @property
    def complete(self) -> bool:
        return len(self.answers) == len(KEYS)


def parse_survey_event(message: Mapping[str, str]) -> SurveyEvent:
    """:func:`answers_from_user_event` with the job and order references (stripped)."""
    answers = answers_from_user_event(message)
    return SurveyEvent((message.get("Job") or "").strip(), (message.get("WorkOrder") or "").strip(), answers)

"""The satisfaction survey's rules (SA-CS-005), pure: no I/O, ``now`` is an argument.

- Six questions, each scored 1–5 (one DTMF digit on the automated call, the same six on the
  survey agent's form). Every score is required; anything else is refused with the question
  named (422).
- A score of **3 or less** on any question — or a complaint the survey agent records with good
  scores — opens a complaint follow-up (stage 6 of the process: "any score ≤ 3 or a complaint →
  handed to the supervisor within 1 h; the supervisor contacts the customer within 24 h").
- Its problem class (响应慢 / 专业不足 / 态度差 / 费用争议 / 其他) is the one the survey agent
  chose, or else the class of the lowest score (ties: the question asked first): a low response
  speed is 响应慢, professionalism or resolution 专业不足, attitude 态度差, overall and
  recommendation alone 其他. 费用争议 is a person's judgement, never derived.
- Deadlines: a supervisor takes it within 1 h of the survey (the order's escalation clock runs
  from ``dissatisfied_at``); the customer is contacted within 24 h.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from callcenter.db.survey import CHANNELS, SCORE_COLUMNS
from callcenter.errors import ValidationFailed

# (key, label) in the order the IVR asks them: Q1 … Q6.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("response_speed", "响应及时性"),
    ("professionalism", "服务专业性"),
    ("attitude", "态度友好度"),
    ("resolution", "问题解决效果"),
    ("overall", "整体体验"),
    ("recommend", "推荐意愿"),
)
KEYS: tuple[str, ...] = tuple(k for k, _ in QUESTIONS)
assert KEYS == SCORE_COLUMNS
LABELS = dict(QUESTIONS)
LOWEST, HIGHEST = 1, 5
# A score at or below this is dissatisfaction.
DISSATISFIED_AT_MOST = 3

SLOW, UNSKILLED, RUDE, FEE_DISPUTE, OTHER = "响应慢", "专业不足", "态度差", "费用争议", "其他"
PROBLEM_CLASSES = (SLOW, UNSKILLED, RUDE, FEE_DISPUTE, OTHER)
# The problem a low score points at.
SCORE_PROBLEM = {"response_speed": SLOW, "professionalism": UNSKILLED, "resolution": UNSKILLED,
                 "attitude": RUDE, "overall": OTHER, "recommend": OTHER}

TAKE_WITHIN = dt.timedelta(hours=1)
CONTACT_WITHIN = dt.timedelta(hours=24)

PHONE_IVR, SMS, AGENT = CHANNELS
CHANNEL_LABELS = {PHONE_IVR: "电话语音", SMS: "短信", AGENT: "人工电话"}


def validate_scores(answers: Mapping[str, object]) -> dict[str, int]:
    """The six scores as ``{key: 1..5}`` in question order.

    Raises ValidationFailed naming the first question that is missing, not an integer (a bool
    or "5" is not one) or outside 1–5, or an unknown key.
    """
    unknown = sorted(set(answers) - set(KEYS))
    if unknown:
        raise ValidationFailed(f"answers.{unknown[0]}", f"未知的问题 (unknown question; one of {', '.join(KEYS)})")
    out: dict[str, int] = {}
    for key in KEYS:
        value = answers.get(key)
        if value is None:
            raise ValidationFailed(f"answers.{key}", f"{LABELS[key]}未评分 (required)")
        if isinstance(value, bool) or not isinstance(value, int) or not LOWEST <= value <= HIGHEST:
            raise ValidationFailed(f"answers.{key}", f"{LABELS[key]}须为 1–5 分 (an integer from 1 to 5)")
        out[key] = value
    return out


def validate_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValidationFailed("channel", f"one of {', '.join(CHANNELS)}")
    return channel


def low_scores(scores: Mapping[str, int]) -> tuple[str, ...]:
    """The questions scored ≤ 3, in question order."""
    return tuple(k for k in KEYS if k in scores and scores[k] <= DISSATISFIED_AT_MOST)


def average(scores: Mapping[str, int]) -> float:
    """The mean of the scores given, to two decimals (0.0 for none)."""
    values = [scores[k] for k in KEYS if k in scores]
    return round(sum(values) / len(values), 2) if values else 0.0


def derived_problem_class(scores: Mapping[str, int]) -> str:
    """The class of the lowest score (ties: the question asked first); 其他 without low scores."""
    low = low_scores(scores)
    if not low:
        return OTHER
    lowest = min(scores[k] for k in low)
    return SCORE_PROBLEM[next(k for k in low if scores[k] == lowest)]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a survey result calls for."""

    low: tuple[str, ...]
    # A complaint follow-up is opened (and the order's dissatisfied_at set).
    complaint: bool
    problem_class: str | None


def judge(scores: Mapping[str, int], *, complaint: bool = False, problem_class: str | None = None) -> Verdict:
    """The rule: any score ≤ 3, or a complaint recorded by the survey agent, opens a follow-up
    of the given problem class or the derived one. ValidationFailed for an unknown class."""
    if problem_class is not None and problem_class not in PROBLEM_CLASSES:
        raise ValidationFailed("problem_class", f"one of {', '.join(PROBLEM_CLASSES)}")
    low = low_scores(scores)
    opens = bool(low) or complaint or problem_class is not None
    if not opens:
        return Verdict(low, False, None)
    return Verdict(low, True, problem_class or derived_problem_class(scores))


@dataclass(frozen=True, slots=True)
class Deadlines:
    take_by: dt.datetime  # a supervisor takes it (the escalation clock)
    contact_by: dt.datetime  # the customer is contacted


def deadlines(opened_at: dt.datetime) -> Deadlines:
    return Deadlines(opened_at + TAKE_WITHIN, opened_at + CONTACT_WITHIN)


def overdue_s(deadline: dt.datetime, now: dt.datetime, done_at: dt.datetime | None = None) -> int:
    """Seconds past ``deadline`` (negative: still ahead), measured at ``done_at`` once done."""
    return int(((done_at or now) - deadline).total_seconds())

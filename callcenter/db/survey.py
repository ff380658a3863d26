"""SA-CS-005 客户满意度调查表 and the complaint follow-ups it opens (``callcenter.survey``).

A survey result is one per work order (``uq_survey_results_order``): the automated call, an SMS
answer or a survey agent typing a phone survey in — whichever comes first is the record; a
repeat of the same delivery (the same dialler job) finds it again. Scores are 1–5.

A complaint follow-up is opened when any score is ≤ 3 (or the survey agent records a
complaint): the problem class, the follow-up action and its owner, the customer-contact
deadline (24 h), the resolution. ``alerted_at`` marks that supervisors were told (the push is
sent after the commit by ``callcenter.survey.alerts``; a row without it is pushed by the next
pass, so an alert survives a crash between the commit and the push).

Times are aware UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId

# The six scores of SA-CS-005, in the order the IVR asks them (Q1 … Q6).
SCORE_COLUMNS = ("response_speed", "professionalism", "attitude", "resolution", "overall", "recommend")
CHANNELS = ("phone-ivr", "sms", "agent")
COMPLAINT_STATUSES = ("open", "in_progress", "resolved")


def _score_checks() -> tuple[CheckConstraint, ...]:
    return tuple(CheckConstraint(f"{c} BETWEEN 1 AND 5", name=f"ck_survey_results_{c}") for c in SCORE_COLUMNS)


class SurveyResult(Base):
    """SA-CS-005: the customer's six scores for one work order."""

    __tablename__ = "survey_results"
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_survey_results_order"),
        UniqueConstraint("number", name="uq_survey_results_number"),
        Index("ix_survey_results_engineer_answered", "engineer_id", "answered_at"),
        Index("ix_survey_results_answered", "answered_at"),
        *_score_checks(),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # CS20261123-001
    number: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_survey_results_order"))
    # The order's engineer when the survey was taken (the per-engineer figures).
    engineer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_survey_results_engineer"))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE", name="fk_survey_results_customer"), index=True)
    # phone-ivr (the automated call) | sms (the link sent when the call failed) | agent (typed in)
    channel: Mapped[str] = mapped_column(String(12))
    # When the customer answered (the form's time).
    answered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    response_speed: Mapped[int] = mapped_column(Integer)  # 响应及时性
    professionalism: Mapped[int] = mapped_column(Integer)  # 服务专业性
    attitude: Mapped[int] = mapped_column(Integer)  # 态度友好度
    resolution: Mapped[int] = mapped_column(Integer)  # 问题解决效果
    overall: Mapped[int] = mapped_column(Integer)  # 整体体验
    recommend: Mapped[int] = mapped_column(Integer)  # 推荐意愿
    # What the customer said, verbatim (phone numbers in it are masked on the way out).
    comment: Mapped[str] = mapped_column(Text, default="")
    # The outbound dialler's job that produced it (None when typed in by a survey agent).
    job_id: Mapped[int | None] = mapped_column(BigId)
    # The survey agent who entered it (None for the automated call / SMS).
    recorded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_survey_results_recorded_by"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ComplaintFollowUp(Base):
    """The follow-up of a dissatisfied customer (SA-CS-005's lower part): handed to a
    supervisor within 1 h (the order's escalation clock), the customer contacted within 24 h."""

    __tablename__ = "complaint_followups"
    __table_args__ = (
        # One follow-up per order: a second low survey on the same order is the same complaint.
        UniqueConstraint("order_id", name="uq_complaint_followups_order"),
        Index("ix_complaint_followups_status_opened", "status", "opened_at"),
        Index("ix_complaint_followups_owner_status", "owner_id", "status"),
        # The alert pass reads only the few rows not pushed yet.
        Index("ix_complaint_followups_unalerted", "opened_at",
              postgresql_where=text("alerted_at IS NULL"), sqlite_where=text("alerted_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_complaint_followups_order"))
    survey_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_results.id", ondelete="SET NULL", name="fk_complaint_followups_survey"))
    # The engineer the complaint is about (the order's), for the per-engineer figures.
    engineer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_complaint_followups_engineer"))
    # 响应慢 / 专业不足 / 态度差 / 费用争议 / 其他
    problem_class: Mapped[str] = mapped_column(String(8))
    # The scores that opened it ("attitude,overall"), "" for a complaint without low scores.
    low_scores: Mapped[str] = mapped_column(String(128), default="")
    # The follow-up action (apology, voucher, free re-check …) as the owner plans it.
    action: Mapped[str] = mapped_column(Text, default="")
    # open → in_progress (a supervisor took it; owner set) → resolved
    status: Mapped[str] = mapped_column(String(12), default="open")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_complaint_followups_owner"))
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # The customer must be contacted by then (opened + 24 h).
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    taken_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_complaint_followups_taken_by"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str] = mapped_column(Text, default="")
    # Supervisors were pushed the alert (``callcenter.survey.alerts``).
    alerted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change (assign / resolve name the version they read).
    version: Mapped[int] = mapped_column(Integer, default=1)

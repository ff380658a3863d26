"""Outbound calls (``callcenter.outbound``): callback and survey jobs, one row per dial, and the
do-not-call list. The job row is the truth; Redis (when configured) only mirrors the due times.

A job's status: ``scheduled`` (waiting for ``due_at``) → ``dialling`` (one attempt in flight) →
``answered`` | back to ``scheduled`` with a later ``due_at`` after a failed attempt (busy, no
answer, congestion …) | ``exhausted`` (no attempts left, or past its deadline) | ``cancelled``
(by a supervisor, or refused by the rules: do-not-call, bad number) | ``review`` (an attempt's
outcome could not be known — no response, no trace of its channel: the customer may have been
helped already, so it is not dialled again by itself; a supervisor re-dials or closes it on the
outbound board). ``attempts`` counts the dials started.

An attempt's id (``ob-…``) is the ``ActionID`` and the ``ChannelId`` of its ``Originate``: the
``OriginateResponse`` names it, and after a crash or a lost AMI session the live channel is
found by it (its ``Uniqueid``). Its ``state``: ``dialling`` (sent, outcome not known yet),
``unknown`` (the AMI session dropped before the answer; resolved from the channel list, never
sent again), ``done``. What the attempt's own channel showed is kept as it happens
(``answered_at``, ``agent_member``, ``hangup_cause``: ``callcenter.outbound.evidence``), so an
answered attempt is recorded answered even when its ``OriginateResponse`` never arrives.

Numbers are sealed like ``customer_phones`` (``callcenter.crypto``: blind index, ciphertext,
masked form; key rotation finds the ``number_*`` columns by their names).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
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

JOB_KINDS = ("callback", "survey")
JOB_STATUSES = ("scheduled", "dialling", "answered", "exhausted", "cancelled", "review")
ATTEMPT_STATES = ("dialling", "unknown", "done")


class OutboundJob(Base):
    __tablename__ = "outbound_jobs"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbound_jobs_dedupe_key"),
        # The dialler's queue: only scheduled rows, by priority then due time.
        Index("ix_outbound_jobs_due", "priority", "due_at",
              postgresql_where=text("status = 'scheduled'"), sqlite_where=text("status = 'scheduled'")),
        # Attempts in flight (crash recovery reads these at start-up).
        Index("ix_outbound_jobs_dialling", "updated_at",
              postgresql_where=text("status = 'dialling'"), sqlite_where=text("status = 'dialling'")),
        Index("ix_outbound_jobs_status_updated", "status", "updated_at"),
        Index("ix_outbound_jobs_order", "order_id"),
        Index("ix_outbound_jobs_customer", "customer_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # callback | survey
    kind: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_outbound_jobs_order"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE", name="fk_outbound_jobs_customer"))
    # The abandoned inbound call this callback answers (its Linkedid), "" otherwise.
    call_linkedid: Mapped[str] = mapped_column(String(64), default="")
    # One job per cause: "survey:<order id>", "abandoned:<linkedid>"; NULL for callbacks booked
    # by an agent (each booking is its own job).
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    number_index: Mapped[str] = mapped_column(String(64))
    number_enc: Mapped[str] = mapped_column(Text)
    number_masked: Mapped[str] = mapped_column(String(32))
    # Why we call (shown on the agent's pop): "来电未接通回拨", the agent's note …; no numbers.
    reason: Mapped[str] = mapped_column(String(200), default="")
    # The time the customer asked for (callbacks) or the order's completion (surveys).
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Not dialled before this (UTC); moved on by each retry.
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Not dialled after this (a survey's 24 h); None = no deadline.
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Lower is dialled first among due jobs (callcenter.outbound.rules.PRIORITY): a callback for
    # an abandoned call keeps the caller's place ahead of newer work.
    priority: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The last attempt's outcome (answered, busy, no_answer, congestion, failure, unknown) or
    # why the job stopped (dnc, invalid_number, expired, cancelled).
    last_outcome: Mapped[str] = mapped_column(String(20), default="")
    # A callback may go to a chosen agent (their queue member name) instead of the queue.
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_outbound_jobs_agent"))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_outbound_jobs_created_by"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Bumped on every change: the dialler claims a job only at the version it read.
    version: Mapped[int] = mapped_column(Integer, default=1)


class OutboundAttempt(Base):
    __tablename__ = "outbound_attempts"
    __table_args__ = (
        UniqueConstraint("job_id", "seq", name="uq_outbound_attempts_job_seq"),
        Index("ix_outbound_attempts_open", "started_at",
              postgresql_where=text("state <> 'done'"), sqlite_where=text("state <> 'done'")),
    )
    # "ob-<job>-<seq>-<random>": the Originate's ActionID and ChannelId.
    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_jobs.id", ondelete="CASCADE", name="fk_outbound_attempts_job"))
    # 1, 2, 3 … within the job (unique: one job never has two attempts of the same rank).
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), default="dialling")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # answered | busy | no_answer | congestion | failure | hangup | unknown; None while dialling.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # OriginateResponse's Reason (0, 1, 3, 4, 5, 8); None when not known from Asterisk.
    reason_code: Mapped[int | None] = mapped_column(Integer)
    # The channel Asterisk reported (Local/…;1), numbers masked.
    channel: Mapped[str] = mapped_column(String(128), default="")
    # The survey's answers from its UserEvent ({"Q1": "5", …}) until callcenter.survey keeps them.
    answers: Mapped[dict | None] = mapped_column(JSON)
    # When the attempt's channel was seen answered (evidence, whatever the OriginateResponse).
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The queue member name (extension) of the agent who took the callback.
    agent_member: Mapped[str | None] = mapped_column(String(64))
    # The most telling Q.850 cause the attempt's channel hung up with (17 busy, 19 no answer …).
    hangup_cause: Mapped[int | None] = mapped_column(Integer)


class DoNotCall(Base):
    """A number never dialled by the outbound service (opt-out, complaint, supervisor's choice)."""

    __tablename__ = "outbound_dnc"
    __table_args__ = (UniqueConstraint("number_index", name="uq_outbound_dnc_number_index"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number_index: Mapped[str] = mapped_column(String(64))
    number_enc: Mapped[str] = mapped_column(Text)
    number_masked: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200), default="")
    # supervisor | call (a refusal captured during a call)
    source: Mapped[str] = mapped_column(String(16), default="supervisor")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_outbound_dnc_created_by"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

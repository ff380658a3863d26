"""Who did what (the audit log) and which SLA clocks are running late (alerts)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId


class AuditEntry(Base):
    """Every change and every unmasked view. ``detail`` names fields, never their personal values."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # None for the system.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # create / update / transition / delete / reveal / import / …
    action: Mapped[str] = mapped_column(String(32))
    # customer / work_order / intake / appointment / onsite / part / stock / user / …
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    # Why (required for a reveal).
    reason: Mapped[str] = mapped_column(Text, default="")


class SlaAlert(Base):
    """An SLA clock nearing (``warning``, at 80 % of the allowance) or past (``breach``) its
    deadline. Unique per order, clock and level: raised once, even across restarts and
    instances; ``cleared_at`` is set when the order moves on."""

    __tablename__ = "sla_alerts"
    __table_args__ = (UniqueConstraint("order_id", "clock", "level"),
                      Index("ix_sla_alerts_open", "cleared_at", "raised_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"))
    # plan / dispatch / contact / reminder / signoff / survey / escalation
    clock: Mapped[str] = mapped_column(String(16))
    # warning | breach
    level: Mapped[str] = mapped_column(String(8))
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

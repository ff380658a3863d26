"""The field workforce as dispatch sees it (issue 4): engineer profiles, skills with their
certificates, leave, partner service shops, and the dispatch decisions and refusals.

Coordinates are WGS-84 degrees (``callcenter.geo``); dates of leave and certificate expiry are
calendar days in the centre's time zone (``settings.tz``); times are aware UTC. Contact numbers
are sealed like every other number (``callcenter.crypto``): ciphertext and the masked form.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId

# Working hours when a profile says nothing else: every day 09:00–18:00 (ISO weekday → intervals
# "HH:MM"–"HH:MM" in the centre's time zone; ``callcenter.dispatch.rules.parse_working_hours``).
DEFAULT_WORKING_HOURS: dict[str, list[list[str]]] = {str(d): [["09:00", "18:00"]] for d in range(1, 8)}


def _default_hours() -> dict[str, list[list[str]]]:
    return {k: [list(i) for i in v] for k, v in DEFAULT_WORKING_HOURS.items()}


class EngineerProfile(Base):
    """What dispatch knows about an engineer (a ``users`` row with role ``engineer``), 1:1."""

    __tablename__ = "engineer_profiles"
    __table_args__ = (
        # The candidate loader's bounding boxes (callcenter.dispatch.candidates).
        Index("ix_engineer_profiles_base", "base_lat", "base_lon"),
        Index("ix_engineer_profiles_last", "last_lat", "last_lon"),
        CheckConstraint("load_cap >= 1", name="ck_engineer_profiles_load_cap"),
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", name="fk_engineer_profiles_user"), primary_key=True)
    # The city (or area) the engineer belongs to, e.g. 北京市: an order elsewhere is cross-region.
    region: Mapped[str] = mapped_column(String(32), default="", index=True)
    # Where the engineer starts from (home or station).
    base_lat: Mapped[float | None] = mapped_column(Float)
    base_lon: Mapped[float | None] = mapped_column(Float)
    # The latest position the engineer's phone reported, and when; preferred over the base while
    # fresh (callcenter.dispatch.rules.RuleConfig.position_max_age).
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Unfinished orders the engineer may hold; a new one only while below it (the centre: 3).
    load_cap: Mapped[int] = mapped_column(Integer, default=3)
    # {"1": [["09:00", "18:00"]], …, "7": []} — ISO weekday → intervals, centre's time zone.
    working_hours: Mapped[dict] = mapped_column(JSON, default=_default_hours)
    # False: not dispatched to automatically (suspended, training…); the user may still log in.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change (optimistic locking for the admin's edits).
    version: Mapped[int] = mapped_column(Integer, default=1)


class EngineerSkill(Base):
    """An engineer may repair a product category; the certificate it needs where the category
    requires one (``product_categories.certificate``, e.g. 制冷作业证 for 空调)."""

    __tablename__ = "engineer_skills"
    __table_args__ = (
        UniqueConstraint("engineer_id", "category", name="uq_engineer_skills_engineer_category"),
        Index("ix_engineer_skills_category", "category", "engineer_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    engineer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", name="fk_engineer_skills_engineer"))
    category: Mapped[str] = mapped_column(String(32))
    # The certificate held for it ("" if none), its number, and the last day it is valid.
    certificate: Mapped[str] = mapped_column(String(64), default="")
    certificate_no: Mapped[str] = mapped_column(String(64), default="")
    certificate_expires: Mapped[dt.date | None] = mapped_column(Date)


class EngineerLeave(Base):
    """Days an engineer is not available: 休息 (day off), 请假 (leave), 培训 (training);
    ``start_date``..``end_date`` inclusive, centre's time zone."""

    __tablename__ = "engineer_leave"
    __table_args__ = (
        Index("ix_engineer_leave_engineer_end", "engineer_id", "end_date"),
        CheckConstraint("end_date >= start_date", name="ck_engineer_leave_dates"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    engineer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", name="fk_engineer_leave_engineer"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8), default="请假")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_engineer_leave_created_by"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ServiceShop(Base):
    """A partner service shop (合作网点): a dispatch target when no engineer of ours fits."""

    __tablename__ = "service_shops"
    __table_args__ = (
        UniqueConstraint("name", name="uq_service_shops_name"),
        Index("ix_service_shops_position", "lat", "lon"),
        CheckConstraint("capacity >= 0", name="ck_service_shops_capacity"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32), default="", index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Product categories it repairs: ["空调", "冰箱"].
    categories: Mapped[list] = mapped_column(JSON, default=list)
    # Open orders it takes at once.
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    # The shop's contact number, sealed (callcenter.crypto): ciphertext and masked form.
    contact_phone_enc: Mapped[str] = mapped_column(Text, default="")
    contact_phone_masked: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class DispatchDecision(Base):
    """One dispatch of an order, automatic or by hand, with everything needed to explain it."""

    __tablename__ = "dispatch_decisions"
    __table_args__ = (
        Index("ix_dispatch_decisions_order_at", "order_id", "at"),
        Index("ix_dispatch_decisions_shop", "shop_id"),
        CheckConstraint("mode IN ('auto', 'manual')", name="ck_dispatch_decisions_mode"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_dispatch_decisions_order"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # auto | manual
    mode: Mapped[str] = mapped_column(String(8))
    # The engineer or the shop chosen; both None: nobody matched (the order went to the queue).
    engineer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_dispatch_decisions_engineer"), index=True)
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_shops.id", ondelete="SET NULL", name="fk_dispatch_decisions_shop"))
    # Every candidate considered: [{"engineer_id", "distance_km", "exclusions": [{"code",
    # "reason"}], "score": {...} | null, "rank"}] (callcenter.dispatch.rules.Evaluation.to_json).
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    # The winner's score breakdown ({} for none): {"total", "components": {name: {...}}}.
    score: Mapped[dict] = mapped_column(JSON, default=dict)
    # callcenter.dispatch.rules.RULES_VERSION and the weights in force.
    rule_version: Mapped[str] = mapped_column(String(32), default="")
    weights: Mapped[dict] = mapped_column(JSON, default=dict)
    # Manual dispatch: who, and why (required there).
    decided_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_dispatch_decisions_decided_by"))
    reason: Mapped[str] = mapped_column(Text, default="")


class DispatchRefusal(Base):
    """An engineer refused an order, or let the 15 minutes pass (``timed_out``)."""

    __tablename__ = "dispatch_refusals"
    __table_args__ = (
        Index("ix_dispatch_refusals_order", "order_id"),
        Index("ix_dispatch_refusals_engineer_at", "engineer_id", "at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_dispatch_refusals_order"))
    engineer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", name="fk_dispatch_refusals_engineer"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # 技能不符 / 时间冲突 / 其他 (callcenter.dispatch.rules.REFUSAL_REASONS)
    reason: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    timed_out: Mapped[bool] = mapped_column(Boolean, default=False)


# Indexes on work_orders the candidate loader needs (revision 0009): an engineer's last N
# completed orders (first-time-fix and satisfaction rates) and the last order dispatched to them
# (idle time). Declared here so the work-order slice's model stays untouched; this import runs
# after the classes above, so it is safe whichever of the two modules is imported first.
from callcenter.db.models import WorkOrder

Index("ix_work_orders_engineer_completed", WorkOrder.engineer_id, WorkOrder.completed_at)
Index("ix_work_orders_engineer_dispatched", WorkOrder.engineer_id, WorkOrder.dispatched_at)

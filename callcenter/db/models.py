"""The records. One module so Alembic sees every table; each feature owns its services.

Times are stored as timezone-aware UTC (``DateTime(timezone=True)``); phone numbers are stored
sealed (``callcenter.crypto.PhoneVault``): a keyed blind index of the normalised number
(``callcenter.customers.phones.normalise``) that every lookup goes through, the ciphertext, and the
masked form screens show. Never the number itself (``docs/privacy.md``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, BigId


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    # agent | dispatcher | engineer | survey | supervisor | admin
    role: Mapped[str] = mapped_column(String(16), index=True)
    # The agent's phone extension; matched to a queue member's MemberName or to the extension
    # part of its Interface (Local/8001@agents/n, PJSIP/8001, IAX2/agent8001/...).
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Engineers' staff number as printed on the forms (GY2024001); unique when set.
    staff_no: Mapped[str | None] = mapped_column(String(16), unique=True)
    # The engineer's (or any staff member's) mobile, sealed like customers' numbers
    # (callcenter.crypto): ciphertext and the masked form shown on SA-AP-003.
    mobile_enc: Mapped[str] = mapped_column(Text, default="")
    mobile_masked: Mapped[str] = mapped_column(String(32), default="")


class LoginSession(Base):
    """A login: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "login_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class CallQueue(Base):
    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    # Seconds within which an answered call counts toward the service level.
    service_level_s: Mapped[int] = mapped_column(Integer, default=20)


class AgentMember(Base):
    """An agent's membership of a queue, as Asterisk names it."""

    __tablename__ = "agent_members"
    __table_args__ = (UniqueConstraint("queue_id", "interface"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    member_name: Mapped[str] = mapped_column(String(64), index=True)
    interface: Mapped[str] = mapped_column(String(128), index=True)
    penalty: Mapped[int] = mapped_column(Integer, default=0)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # 普通 / VIP / 经销商 … free classification the centre uses.
    level: Mapped[str] = mapped_column(String(16), default="")
    remarks: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerPhone.id")
    addresses: Mapped[list[Address]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Address.id")
    appliances: Mapped[list[Appliance]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Appliance.id")


class CustomerPhone(Base):
    __tablename__ = "customer_phones"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # Blind index (HMAC) of the normalised number (customers.phones.normalise): the lookup key,
    # queried as ``IN vault.indexes(n)`` so lookups work during an index-key rotation. Unique: a
    # number identifies one customer, so two agents saving it at once cannot both succeed.
    number_index: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    # The normalised number, encrypted ("<key id>:<base64>", callcenter.crypto).
    number_enc: Mapped[str] = mapped_column(Text)
    # What screens show: 138****5678.
    masked: Mapped[str] = mapped_column(String(32))
    # mobile | landline | service | other
    kind: Mapped[str] = mapped_column(String(16), default="mobile")
    customer: Mapped[Customer] = relationship(back_populates="phones")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    district: Mapped[str] = mapped_column(String(32), default="")
    # Street, building and door number.
    detail: Mapped[str] = mapped_column(String(255), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    customer: Mapped[Customer] = relationship(back_populates="addresses")


class Appliance(Base):
    __tablename__ = "appliances"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # 空调 / 冰箱 / 洗衣机 / 热水器 / 燃气灶 …
    category: Mapped[str] = mapped_column(String(32))
    brand: Mapped[str] = mapped_column(String(32), default="")
    model: Mapped[str] = mapped_column(String(64), index=True)
    serial: Mapped[str] = mapped_column(String(64), default="", index=True)
    purchase_date: Mapped[dt.date | None] = mapped_column(Date)
    # Months of warranty from the purchase date (per category, usually 12–36).
    warranty_months: Mapped[int] = mapped_column(Integer, default=12)
    customer: Mapped[Customer] = relationship(back_populates="appliances")


class WorkOrder(Base):
    """SA-WO-002 售后服务工单. Its status follows ``callcenter.orders.states``; every change of
    status is an :class:`~callcenter.db.records.OrderEvent`; the SLA clocks read the ``*_at``
    milestones below (``callcenter.sla.rules``)."""

    __tablename__ = "work_orders"
    __table_args__ = (Index("ix_work_orders_customer_created", "customer_id", "created_at"),
                      Index("ix_work_orders_status_urgency", "status", "urgency"),
                      Index("ix_work_orders_engineer_status", "engineer_id", "status"),
                      # The dispatch loop's two queues (callcenter.dispatch.engine): partial,
                      # only the few rows with a due time are in them.
                      Index("ix_work_orders_auto_dispatch_due", "auto_dispatch_due_at",
                            postgresql_where=text("auto_dispatch_due_at IS NOT NULL"),
                            sqlite_where=text("auto_dispatch_due_at IS NOT NULL")),
                      Index("ix_work_orders_accept_due", "accept_due_at",
                            postgresql_where=text("accept_due_at IS NOT NULL"),
                            sqlite_where=text("accept_due_at IS NOT NULL")))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    appliance_id: Mapped[int | None] = mapped_column(ForeignKey("appliances.id", ondelete="SET NULL"), index=True)
    # The intake record (CR…) it was created from; None for imported past orders.
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_records.id", ondelete="SET NULL"), index=True)
    # The service address (to the door number).
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"))
    # The inbound call it came from (Asterisk Linkedid), "" if none.
    call_linkedid: Mapped[str] = mapped_column(String(64), default="", index=True)
    # hotline | import | app | ecommerce | wechat — where the order came from.
    source: Mapped[str] = mapped_column(String(16), default="hotline")
    # Product as on the proof of purchase (copied so the order stays right if the appliance
    # record is later corrected); searched by model and serial.
    product_model: Mapped[str] = mapped_column(String(64), default="", index=True)
    serial: Mapped[str] = mapped_column(String(64), default="", index=True)
    # 保内 / 保外 / 理赔机, decided at creation from the purchase date.
    warranty: Mapped[str] = mapped_column(String(8), default="保外")
    # 上门维修 / 远程支持 / 安装 / 退换货 / 送修 (carry-in: its own states)
    service_type: Mapped[str] = mapped_column(String(16), default="上门维修")
    # On-site: 待处理 / 已派单 / 已预约 / 服务中 / 待件 / 已完成 / 已回访 / 已取消;
    # carry-in: 待修 / 修理中 / 待件 / 难修 / 待取 / 已取 / 已取消.
    status: Mapped[str] = mapped_column(String(16), default="待处理")
    # 普通 / 紧急 / 特急
    urgency: Mapped[str] = mapped_column(String(8), default="普通")
    problem: Mapped[str] = mapped_column(Text, default="")
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The booked visit (to the hour), from the confirmed SA-AP-003.
    appointment_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    appointment_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change: an update names the version it read (optimistic locking).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Milestones the SLA clocks measure (UTC). planned_at: a plan was given to the customer
    # (booked visit, remote-support session or the emergency process started).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    contacted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    planned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    service_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    service_finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    surveyed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # A survey score ≤ 3 or a complaint; escalated_at: a supervisor took it.
    dissatisfied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Dispatch (callcenter.dispatch.engine). auto_dispatch_due_at: the rules are to pick an
    # engineer from then on (set at creation and after a refusal or a timeout; cleared by the
    # decision). accept_due_at: the engineer must accept by then (dispatched_at + 15 min;
    # cleared on accepting, refusing or re-dispatch). shop_id: dispatched to a partner shop.
    auto_dispatch_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accept_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_shops.id", ondelete="SET NULL", name="fk_work_orders_shop"))


class Call(Base):
    """One call, keyed by Asterisk's Linkedid (shared by every channel of the call)."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_caller_started", "caller_index", "started_at"),
                      Index("ix_calls_customer_started", "customer_id", "started_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    # inbound | outbound
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    # The caller's normalised number, sealed (callcenter.crypto): blind index (the repeat-caller
    # lookup), ciphertext and masked form; all "" for anonymous callers.
    caller_index: Mapped[str] = mapped_column(String(64), default="")
    caller_enc: Mapped[str] = mapped_column(Text, default="")
    caller_masked: Mapped[str] = mapped_column(String(32), default="")
    # The hotline number dialled (DID), e.g. 4008001234.
    did: Mapped[str] = mapped_column(String(32), default="")
    queue: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # The agent who answered (None if nobody did).
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    agent_member: Mapped[str] = mapped_column(String(64), default="")
    # queued | ringing | answered | ended
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # answered | abandoned | unanswered (left the queue, nobody answered) | None while live
    outcome: Mapped[str | None] = mapped_column(String(16))
    # Member names rung, in order, with their result: [{"member", "agent_id", "result", "ring_ms"}]
    rang: Mapped[list] = mapped_column(JSON, default=list)
    # The same members as ",8002,8001," so "calls that rang me" is a plain LIKE within a day.
    rang_members: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Seconds in the queue before answer or abandon (Asterisk's HoldTime).
    hold_s: Mapped[int | None] = mapped_column(Integer)
    # Seconds talking (Asterisk's TalkTime, AgentComplete).
    talk_s: Mapped[int | None] = mapped_column(Integer)


# The other table modules register themselves on Base.metadata when imported; importing them
# here keeps "from callcenter.db.models import X" working for every table.
from callcenter.db.agentstate import QueueLogin  # noqa: E402
from callcenter.db.notify import Notification  # noqa: E402
from callcenter.db.outbound import DoNotCall, OutboundAttempt, OutboundJob  # noqa: E402,F401 (issue 5)
from callcenter.db.oversight import AuditEntry, SlaAlert  # noqa: E402
from callcenter.db.records import (  # noqa: E402
    Appointment, IntakeRecord, NumberCounter, OnsiteRecord, OrderEvent, ProductCategory,
)
from callcenter.db.stock import (  # noqa: E402
    OnsitePartLine, Part, PriceItem, StockLevel, StockLocation, StockMovement,
)
from callcenter.db.workforce import (  # noqa: E402
    DispatchDecision, DispatchRefusal, EngineerLeave, EngineerProfile, EngineerSkill, ServiceShop,
)
from callcenter.db.survey import ComplaintFollowUp, SurveyResult  # noqa: E402

__all__ = [
    "Address", "AgentMember", "Appliance", "Appointment", "AuditEntry", "Base", "BigId", "Call",
    "CallQueue", "Customer", "CustomerPhone", "DispatchDecision", "DispatchRefusal", "EngineerLeave",
    "EngineerProfile", "EngineerSkill", "IntakeRecord", "LoginSession", "Notification", "NumberCounter",
    "OnsitePartLine", "OnsiteRecord", "OrderEvent", "Part", "PriceItem", "ProductCategory",
    "ServiceShop", "SlaAlert", "StockLevel", "StockLocation", "StockMovement", "User", "WorkOrder",
    "ComplaintFollowUp", "SurveyResult", "QueueLogin",
]

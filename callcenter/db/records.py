"""The after-sales forms as records: intake (SA-CR-001), appointment (SA-AP-003), on-site record
(SA-OS-004), the work order's timeline, product categories, and the number counters.

Money is integer fen (分) everywhere: sums are exact and never typed by a person.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId


class ProductCategory(Base):
    """空调 / 冰箱 / 洗衣机 …: the warranty a category carries and the certificate its repair needs."""

    __tablename__ = "product_categories"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    # Months of warranty from the purchase date when the appliance record says nothing else.
    warranty_months: Mapped[int] = mapped_column(Integer, default=12)
    # The certificate an engineer needs to repair it ("制冷作业证" for air-conditioners), "" if none.
    certificate: Mapped[str] = mapped_column(String(64), default="")


class NumberCounter(Base):
    """The last serial handed out per prefix and day (``WO20261122-001``).

    Incremented inside the transaction that inserts the record, so a rolled-back record gives
    its serial back: numbers are gap-free per prefix and day (``callcenter.orders.numbering``)."""

    __tablename__ = "number_counters"
    prefix: Mapped[str] = mapped_column(String(4), primary_key=True)
    # YYYYMMDD in the centre's time zone.
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class IntakeRecord(Base):
    """SA-CR-001 受理记录."""

    __tablename__ = "intake_records"
    __table_args__ = (Index("ix_intake_records_customer_created", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # To the minute (stored exactly; shown to the minute).
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # 电话 / APP / 电商 / 公众号
    channel: Mapped[str] = mapped_column(String(8), default="电话")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The number the customer called from or gave, sealed (callcenter.crypto): blind index,
    # ciphertext, and the masked form every screen shows.
    contact_phone_index: Mapped[str] = mapped_column(String(64), default="", index=True)
    contact_phone_enc: Mapped[str] = mapped_column(Text, default="")
    contact_phone_masked: Mapped[str] = mapped_column(String(32), default="")
    appliance_id: Mapped[int | None] = mapped_column(ForeignKey("appliances.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(32), default="")
    # Required; must match the proof of purchase (KFR-35GW/ABC123).
    product_model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64), default="")
    purchase_date: Mapped[dt.date | None] = mapped_column(Date)
    # 保内 / 保外 / 理赔机, from the purchase date and the category's warranty months.
    warranty: Mapped[str] = mapped_column(String(8), default="保外")
    # 维修 / 安装 / 退换货 / 咨询
    request_type: Mapped[str] = mapped_column(String(8))
    problem: Mapped[str] = mapped_column(Text)
    # 普通 / 紧急 / 特急
    urgency: Mapped[str] = mapped_column(String(8), default="普通")
    # 平静 / 焦虑 / 愤怒
    mood: Mapped[str] = mapped_column(String(8), default="平静")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    remarks: Mapped[str] = mapped_column(Text, default="")
    # The key facts were read back to the customer before saving (the process requires it).
    read_back: Mapped[bool] = mapped_column(Boolean, default=False)
    # The inbound call (Asterisk Linkedid) it was taken on, "" if none.
    call_linkedid: Mapped[str] = mapped_column(String(64), default="", index=True)


class OrderEvent(Base):
    """One line of a work order's timeline: a status change or a recorded action."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_at", "order_id", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # None for the system (scheduler, automatic dispatch, survey).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # created / transition / assigned / appointment / onsite / note / …
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16), default="")
    to_status: Mapped[str] = mapped_column(String(16), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class Appointment(Base):
    """SA-AP-003 服务预约确认单."""

    __tablename__ = "appointments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # 客户意愿 (the customer's wish) / 工程师建议 (the engineer's proposal)
    source: Mapped[str] = mapped_column(String(8), default="工程师建议")
    # Other windows offered: [{"start": iso, "end": iso}, …] (the engineer offers 2–3).
    proposed_slots: Mapped[list] = mapped_column(JSON, default=list)
    service_content: Mapped[str] = mapped_column(Text, default="")
    # What the customer should prepare ("keep the AC powered, clear 1 m around the outdoor unit").
    prepare: Mapped[str] = mapped_column(Text, default="")
    # "out of warranty since 2023-08-15: parts quoted before repair"
    fee_notes: Mapped[str] = mapped_column(Text, default="")
    # proposed / confirmed / cancelled / superseded
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    customer_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the confirmation went to the customer (SMS/app), None until sent.
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OnsiteRecord(Base):
    """SA-OS-004 上门服务记录单. Fees are computed (``callcenter.parts.fees``), never typed."""

    __tablename__ = "onsite_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    product_model: Mapped[str] = mapped_column(String(64), default="")
    serial: Mapped[str] = mapped_column(String(64), default="")
    fault_observed: Mapped[str] = mapped_column(Text, default="")
    # Measured, not guessed: "capacitor reads 0 µF".
    root_cause: Mapped[str] = mapped_column(Text, default="")
    solution: Mapped[str] = mapped_column(Text, default="")
    # Measured: "outlet 16 °C at 30 °C room".
    test_result: Mapped[str] = mapped_column(Text, default="")
    customer_feedback: Mapped[str] = mapped_column(Text, default="")
    # Free of charge (保内): parts and fees are 0 whatever the price list says.
    in_warranty: Mapped[bool] = mapped_column(Boolean, default=False)
    # The product category whose price list applies (from the order's appliance or intake).
    category: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # The visit fee and labour items chosen from the price list, as charged (a snapshot, so a
    # later price change does not rewrite a signed record): [{"price_item_id", "kind", "name",
    # "amount_fen", "quantity"}, …] (revision 0006).
    fee_items: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    visit_fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    labour_fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    parts_total_fen: Mapped[int] = mapped_column(Integer, default=0)
    total_fen: Mapped[int] = mapped_column(Integer, default=0)
    customer_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The signer's name as written, or a drawn signature as a data: URL (bounded in size).
    customer_signature: Mapped[str] = mapped_column(Text, default="")
    engineer_signature: Mapped[str] = mapped_column(Text, default="")
    signed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

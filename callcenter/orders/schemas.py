"""Request and response models of the work-order API (SA-CR-001, SA-WO-002, SA-AP-003).

Requests refuse unknown fields and strip strings (:class:`ApiModel`); a bad field is a 422
naming it. Responses are what the views build — every personal value already masked: names
张*, phones 138****5678, addresses to the district, numbers inside free text.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from callcenter.web.api import ApiModel

Channel = Literal["电话", "APP", "电商", "公众号"]
RequestType = Literal["维修", "安装", "退换货", "咨询"]
Urgency = Literal["普通", "紧急", "特急"]
Mood = Literal["平静", "焦虑", "愤怒"]
ServiceType = Literal["上门维修", "远程支持", "安装", "退换货", "送修"]
AppointmentSource = Literal["客户意愿", "工程师建议"]
PosId = Annotated[int, Field(gt=0, lt=2**63)]


# --- requests -------------------------------------------------------------------------------


class NewApplianceIn(ApiModel):
    """An appliance the customer's list does not have yet; added to the customer."""

    category: str = Field(min_length=1, max_length=32)
    brand: str = Field(default="", max_length=32)
    model: str = Field(min_length=1, max_length=64, description="须与购买凭证一致 (as on the proof of purchase)")
    serial: str = Field(default="", max_length=64)
    purchase_date: dt.date | None = None
    warranty_months: int | None = Field(default=None, ge=0, le=120,
                                        description="默认按品类保修月数 (default: the category's)")


class OrderFromIntakeIn(ApiModel):
    """SA-WO-002 fields an intake does not already hold."""

    service_type: ServiceType | None = Field(
        default=None, description="默认由受理类型推出: 维修→上门维修, 安装→安装, 退换货→退换货")
    address_id: PosId | None = Field(default=None,
                                   description="客户的地址之一; 上门类必填 (required for on-site kinds "
                                               "unless the customer has exactly one address)")
    urgency: Urgency | None = None
    problem: str | None = Field(default=None, min_length=1, max_length=2000)


class IntakeIn(ApiModel):
    """SA-CR-001 受理记录. Time, number and agent are the server's."""

    customer_id: PosId
    channel: Channel = "电话"
    linkedid: str = Field(default="", max_length=64, description="来电 Linkedid")
    phone_id: PosId | None = Field(default=None, description="客户的号码之一")
    contact_phone: str | None = Field(default=None, min_length=3, max_length=64,
                                      description="或另给的联系电话 (or another number)")
    appliance_id: PosId | None = Field(default=None)
    new_appliance: NewApplianceIn | None = None
    request_type: RequestType
    problem: str = Field(min_length=1, max_length=2000)
    urgency: Urgency = "普通"
    mood: Mood = "平静"
    remarks: str = Field(default="", max_length=1000)
    claim: bool = Field(default=False, description="理赔机 (chosen explicitly)")
    read_back: bool = Field(description="已向客户复述关键信息 (must be true)")
    create_order: OrderFromIntakeIn | None = Field(
        default=None, description="同时创建工单 (create the work order in the same transaction)")

    @field_validator("read_back")
    @classmethod
    def _read_back(cls, v: bool) -> bool:
        if not v:
            raise ValueError("保存前须向客户复述关键信息 (read the key facts back to the customer first)")
        return v


class OrderIn(OrderFromIntakeIn):
    intake_id: PosId


class TransitionIn(ApiModel):
    to: str = Field(min_length=1, max_length=16)
    note: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=500)
    version: int = Field(ge=1, description="读到的版本 (the version read; 409 when stale)")


class AssignIn(ApiModel):
    engineer_id: PosId
    note: str = Field(default="", max_length=2000)
    version: int = Field(ge=1)


class StepIn(ApiModel):
    """Accept / contacted: the version is optional (the one read now when omitted)."""

    version: int | None = Field(default=None, ge=1)
    note: str = Field(default="", max_length=2000)


class SlotIn(ApiModel):
    start: AwareDatetime
    end: AwareDatetime


class AppointmentIn(ApiModel):
    """SA-AP-003 服务预约确认单. Fee notes, engineer and customer come from the order."""

    window_start: AwareDatetime = Field(description="整点 (on the hour, centre's time zone)")
    window_end: AwareDatetime
    source: AppointmentSource = "工程师建议"
    proposed_slots: list[SlotIn] = Field(default_factory=list, max_length=3,
                                         description="提供给客户的其他时段 (2–3 offered)")
    service_content: str = Field(min_length=1, max_length=1000)
    prepare: str = Field(default="", max_length=1000, description="客户需准备")
    customer_confirmed: bool = Field(default=False, description="客户已确认: confirm at once")
    version: int | None = Field(default=None, ge=1)


class ConfirmIn(ApiModel):
    version: int | None = Field(default=None, ge=1, description="the order's version")


class PrefillQuery(ApiModel):
    linkedid: str | None = Field(default=None, max_length=64)
    customer_id: PosId | None = Field(default=None)


# --- responses ------------------------------------------------------------------------------


class CustomerOut(BaseModel):
    id: int
    name: str
    level: str
    remarks: str


class PhoneOut(BaseModel):
    phone_id: int
    masked: str
    kind: str


class AddressOut(BaseModel):
    id: int
    masked: str


class WarrantyOut(BaseModel):
    kind: str = Field(description="保内 / 保外 / 理赔机")
    status: str = Field(description="in / out / unknown")
    expires: dt.date | None
    days_left: int | None
    months: int


class ApplianceOut(BaseModel):
    id: int
    category: str
    brand: str
    model: str
    serial: str
    purchase_date: dt.date | None
    warranty: WarrantyOut


class CallOut(BaseModel):
    linkedid: str
    queue: str
    started_at: dt.datetime
    outcome: str | None


class CategoryOut(BaseModel):
    name: str
    warranty_months: int


class PrefillOut(BaseModel):
    customer: CustomerOut
    phones: list[PhoneOut]
    caller_phone_id: int | None = Field(description="the phone the call came from, if one of the customer's")
    addresses: list[AddressOut]
    appliances: list[ApplianceOut]
    call: CallOut | None
    categories: list[CategoryOut] = Field(
        default_factory=list, description="product categories with their warranty months (for a new appliance)")


class StaffOut(BaseModel):
    id: int
    name: str
    role: str
    staff_no: str | None
    mobile: str


class IntakeOut(BaseModel):
    id: int
    number: str
    created_at: dt.datetime
    channel: str
    customer: CustomerOut
    contact_phone: str
    appliance_id: int | None
    category: str
    product_model: str
    serial: str
    purchase_date: dt.date | None
    warranty: str
    request_type: str
    problem: str
    urgency: str
    mood: str
    agent: StaffOut | None
    remarks: str
    read_back: bool
    call_linkedid: str
    order_id: int | None
    order_number: str | None


class OrderOut(BaseModel):
    id: int
    number: str
    status: str
    service_type: str
    urgency: str
    warranty: str
    source: str
    product_model: str
    serial: str
    problem: str
    call_linkedid: str
    intake_id: int | None
    customer_id: int
    appliance_id: int | None
    address_id: int | None
    engineer_id: int | None
    appointment_start: dt.datetime | None
    appointment_end: dt.datetime | None
    # Dispatch: the engineer must accept by then (15 min after dispatch; None once accepted or
    # refused); the partner shop it was dispatched to.
    accept_due_at: dt.datetime | None = None
    shop_id: int | None = None
    cancel_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    completed_at: dt.datetime | None
    version: int
    milestones: dict[str, dt.datetime | None]


class IntakeCreatedOut(BaseModel):
    intake: IntakeOut
    order: OrderOut | None


class SlotOut(BaseModel):
    start: dt.datetime
    end: dt.datetime


class AppointmentOut(BaseModel):
    id: int
    number: str
    order_id: int
    order_number: str
    customer: CustomerOut
    phone: str
    address: str
    window_start: dt.datetime
    window_end: dt.datetime
    source: str
    proposed_slots: list[SlotOut]
    service_content: str
    prepare: str
    fee_notes: str
    engineer: StaffOut | None
    status: str
    customer_confirmed: bool
    confirmed_at: dt.datetime | None
    sent_at: dt.datetime | None
    created_at: dt.datetime


class AppointmentResultOut(BaseModel):
    appointment: AppointmentOut
    order: OrderOut


class OnsiteSummaryOut(BaseModel):
    id: int
    number: str
    engineer_id: int | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    root_cause: str
    solution: str
    total_fen: int
    customer_confirmed: bool
    signed_at: dt.datetime | None


class EventOut(BaseModel):
    id: int
    at: dt.datetime
    action: str
    from_status: str
    to_status: str
    note: str
    user: StaffOut | None


class OrderDetailOut(BaseModel):
    order: OrderOut
    customer: CustomerOut
    address: AddressOut | None
    appliance: ApplianceOut | None
    engineer: StaffOut | None
    intake: IntakeOut | None
    appointments: list[AppointmentOut]
    onsite: list[OnsiteSummaryOut]
    events: list[EventOut]
    allowed: list[str] = Field(description="statuses this user may move the order to now")
    sla: Any = Field(default=None, description="SLA clocks (callcenter.sla), when available")


class EngineerOut(BaseModel):
    id: int
    name: str
    staff_no: str | None
    open_orders: int


class EngineersOut(BaseModel):
    engineers: list[EngineerOut]

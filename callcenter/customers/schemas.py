"""Request and response models of the customer API (what ``/api/openapi.json`` describes).

The request model only takes the *shape* of a new customer (which fields, lists, objects); the
rules themselves — lengths, storable numbers, duplicates, date formats, warranty months — live
in :mod:`callcenter.customers.validation`, shared with the importer, and answer 422 with the
field's path (``phones[1]``, ``appliances[0].model``). Responses are masked: names 张*, numbers
138****5678, addresses to the district, numbers inside free text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from callcenter.web.api import ApiModel

# --- requests -------------------------------------------------------------------------------


class AddressIn(ApiModel):
    province: str | None = Field(default=None, description="省 (at most 32)")
    city: str | None = Field(default=None, description="市 (at most 32)")
    district: str | None = Field(default=None, description="区/县 (at most 32)")
    detail: str | None = Field(default=None, description="详细地址 (at most 255)")


class ApplianceIn(ApiModel):
    category: str | None = Field(default=None, description="品类 空调/冰箱/… (at most 32)")
    brand: str | None = Field(default=None, description="at most 32")
    model: str | None = Field(default=None, description="型号, required (at most 64)")
    serial: str | None = Field(default=None, description="at most 64")
    purchase_date: str | None = Field(default=None, description="YYYY-MM-DD (also 2024/5/20, 20240520); "
                                                                "not in the future")
    warranty_months: int | None = Field(default=None, description="0–120, default 12")


class CustomerIn(ApiModel):
    """A new customer (checked by ``customers.validation``)."""

    name: str | None = Field(default=None, description="姓名, required (at most 64)")
    level: str | None = Field(default=None, description="客户等级 (at most 16)")
    remarks: str | None = Field(default=None, description="备注 (at most 2000)")
    phones: list[str] | None = Field(default=None, description="1–5 numbers in any spelling, none "
                                                               "already another customer's (409)")
    address: AddressIn | None = None
    appliances: list[ApplianceIn] | None = Field(default=None, description="at most 20")


class PhoneLookupQuery(ApiModel):
    phone: str = Field(min_length=1, max_length=64, description="来电号码 in any spelling")


# --- responses ------------------------------------------------------------------------------


class WarrantyStatusOut(BaseModel):
    status: str = Field(description="保内 / 保外 / 未知")
    expires: str | None
    days_left: int | None


class CustomerApplianceOut(BaseModel):
    id: int
    category: str
    brand: str
    model: str
    serial: str
    purchase_date: str | None
    warranty_months: int
    warranty: WarrantyStatusOut


class CustomerCardOut(BaseModel):
    id: int
    name: str = Field(description="脱敏姓名 (张*)")
    level: str
    phones: list[str] = Field(description="脱敏号码 (138****5678)")
    address: str | None = Field(description="to the district")
    remarks: str = Field(description="numbers inside masked")


class CreatedCustomerOut(CustomerCardOut):
    appliances: list[CustomerApplianceOut]


class OrderBriefOut(BaseModel):
    number: str
    status: str
    urgency: str
    service_type: str
    problem: str
    created_at: str | None
    appliance_id: int | None


class IntakeBriefOut(BaseModel):
    number: str
    request_type: str
    urgency: str
    problem: str
    product_model: str
    created_at: str | None
    appliance_id: int | None
    call_id: str | None


class CallBriefOut(BaseModel):
    id: str
    started_at: str | None
    outcome: str | None
    queue: str
    agent_member: str
    talk_s: int | None
    intakes: list[str]
    orders: list[str]


class HistoryOut(BaseModel):
    anonymous: bool
    new_caller: bool
    caller: str | None = Field(description="脱敏来电号码")
    caller_kind: str | None
    appliances: list[CustomerApplianceOut]
    open_orders: list[OrderBriefOut]
    recent_orders: list[OrderBriefOut]
    recent_intakes: list[IntakeBriefOut]
    recent_calls: list[CallBriefOut]
    calls_30d: int
    repeat_caller: bool
    repeat_repair: bool
    repeat_repair_appliance_ids: list[int]


class CustomerContextOut(BaseModel):
    """What the screen-pop shows."""

    customer: CustomerCardOut | None
    history: HistoryOut


class CallerLookupOut(CustomerContextOut):
    customer_id: int | None = Field(description="null: an unknown number (history.new_caller)")

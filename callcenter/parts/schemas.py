"""Request and response models of the parts endpoints (pydantic; 422 names the field)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from callcenter.parts.fees import FEE_KINDS
from callcenter.parts.rules import WAREHOUSE_TYPES
from callcenter.web.api import ApiModel, PatchModel

Fen = Annotated[int, Field(ge=0, le=100_000_000)]  # up to 1,000,000 元
Quantity = Annotated[int, Field(ge=1, le=999)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Text = Annotated[str, Field(max_length=2000)]
Short = Annotated[str, Field(max_length=64)]
Category = Annotated[str, Field(min_length=1, max_length=32)]
FeeKind = Literal[FEE_KINDS]  # type: ignore[valid-type]
WarehouseType = Literal[WAREHOUSE_TYPES]  # type: ignore[valid-type]


# ---- on-site record ----------------------------------------------------------------------

class LabourChoice(ApiModel):
    price_item_id: Id
    quantity: Quantity = 1


class OnsiteCreate(ApiModel):
    """Optional first facts; the engineer, product and warranty come from the order."""

    started_at: dt.datetime | None = None
    fault_observed: Text = ""


class OnsiteUpdate(PatchModel):
    """Only the fields sent are changed. Totals are not fields: they are always computed. Null
    only for the times (not known yet) and the visit fee (none)."""

    NULLABLE = frozenset({"started_at", "ended_at", "visit_item_id"})

    version: Id
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    product_model: Short | None = None
    serial: Short | None = None
    fault_observed: Text | None = None
    root_cause: Text | None = None
    solution: Text | None = None
    test_result: Text | None = None
    customer_feedback: Text | None = None
    # A 上门费 item of the record's category, or null for none (e.g. remote support).
    visit_item_id: Id | None = None
    # 工时费 items of the record's category; replaces the whole list.
    labour_items: Annotated[list[LabourChoice], Field(max_length=20)] | None = None


class PartIssue(ApiModel):
    part_id: Id
    location_id: Id
    quantity: Quantity


class PartLineUpdate(PatchModel):
    quantity: Quantity


class SignOff(ApiModel):
    version: Id
    customer_confirmed: Literal[True]
    # A typed name or a drawn signature as a data:image/png|jpeg|webp;base64 URL.
    customer_signature: Annotated[str, Field(max_length=200_000)]
    engineer_signature: Annotated[str, Field(max_length=200_000)]
    # The end of the visit if not recorded yet (default: now, to the minute).
    ended_at: dt.datetime | None = None


class Reopen(ApiModel):
    version: Id
    reason: Annotated[str, Field(min_length=2, max_length=500)]


class Signature(BaseModel):
    kind: Literal["none", "typed", "drawn"]
    # A typed name, masked (张*); "" otherwise. A drawn image is not sent back.
    text: str


class PartLineOut(BaseModel):
    id: int
    part_id: int
    code: str
    name: str
    model: str
    location_id: int
    location_name: str
    quantity: int
    unit_price_fen: int  # the list price when issued (shown in warranty too)
    free: bool
    total_fen: int


class FeeItemOut(BaseModel):
    price_item_id: int
    kind: str
    name: str
    amount_fen: int
    quantity: int
    free: bool
    total_fen: int


class TotalsOut(BaseModel):
    parts_fen: int
    visit_fee_fen: int
    labour_fee_fen: int
    total_fen: int
    list_total_fen: int


class OrderRef(BaseModel):
    id: int
    number: str
    status: str
    service_type: str
    warranty: str


class OnsiteEngineerOut(BaseModel):
    id: int | None
    name: str  # masked
    staff_no: str


class OnsiteOut(BaseModel):
    id: int
    number: str
    order: OrderRef
    engineer: OnsiteEngineerOut
    category: str
    product_model: str
    serial: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    fault_observed: str
    root_cause: str
    solution: str
    test_result: str
    customer_feedback: str
    in_warranty: bool
    parts: list[PartLineOut]
    fee_items: list[FeeItemOut]
    totals: TotalsOut
    customer_confirmed: bool
    customer_signature: Signature
    engineer_signature: Signature
    signed_at: dt.datetime | None
    locked: bool
    created_at: dt.datetime
    updated_at: dt.datetime | None
    version: int


class OnsiteList(BaseModel):
    items: list[OnsiteOut]


# ---- catalogue -----------------------------------------------------------------------------

class PartIn(ApiModel):
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    model: Short = ""
    category: Annotated[str, Field(max_length=32)] = ""
    unit_price_fen: Fen
    active: bool = True


class PartPatch(PatchModel):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    model: Short | None = None
    category: Annotated[str, Field(max_length=32)] | None = None
    unit_price_fen: Fen | None = None
    active: bool | None = None


class PartOut(BaseModel):
    id: int
    code: str
    name: str
    model: str
    category: str
    unit_price_fen: int
    active: bool


class PartsQuery(ApiModel):
    q: Annotated[str, Field(max_length=64)] = ""
    category: Annotated[str, Field(max_length=32)] = ""
    include_inactive: bool = False


class PartList(BaseModel):
    items: list[PartOut]


class PriceItemIn(ApiModel):
    category: Category
    kind: FeeKind
    name: Annotated[str, Field(min_length=1, max_length=64)]
    amount_fen: Fen
    active: bool = True


class PriceItemPatch(PatchModel):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    amount_fen: Fen | None = None
    active: bool | None = None


class PriceItemOut(BaseModel):
    id: int
    category: str
    kind: str
    name: str
    amount_fen: int
    active: bool


class PriceItemsQuery(ApiModel):
    category: Annotated[str, Field(max_length=32)] = ""
    kind: FeeKind | None = None
    include_inactive: bool = False


class PriceItemList(BaseModel):
    items: list[PriceItemOut]


# ---- stock ---------------------------------------------------------------------------------

class LocationIn(ApiModel):
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["warehouse", "van"]
    # Required for a warehouse; must be absent for a van.
    warehouse_type: WarehouseType | None = None
    # Required for a van (an engineer); must be absent for a warehouse.
    engineer_id: Id | None = None


class LocationOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    warehouse_type: str
    engineer_id: int | None


class LocationList(BaseModel):
    items: list[LocationOut]


class Receipt(ApiModel):
    location_id: Id
    part_id: Id
    quantity: Quantity
    note: Annotated[str, Field(max_length=500)] = ""


class Transfer(ApiModel):
    from_location_id: Id
    to_location_id: Id
    part_id: Id
    quantity: Quantity
    note: Annotated[str, Field(max_length=500)] = ""


class Adjustment(ApiModel):
    location_id: Id
    part_id: Id
    # Signed: a count found more (+) or fewer (−) than the books.
    delta: Annotated[int, Field(ge=-9999, le=9999)]
    reason: Annotated[str, Field(min_length=2, max_length=500)]


class SafetyStock(ApiModel):
    location_id: Id
    part_id: Id
    safety_stock: Annotated[int, Field(ge=0, le=99_999)]


class StockQuery(ApiModel):
    location_id: Id | None = None
    part_id: Id | None = None
    category: Annotated[str, Field(max_length=32)] = ""
    below_safety: bool = False
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50


class LevelOut(BaseModel):
    location: LocationOut
    part: PartOut
    quantity: int
    safety_stock: int
    below_safety: bool
    alert_raised_at: dt.datetime | None


class LevelList(BaseModel):
    items: list[LevelOut]
    total: int
    page: int
    page_size: int


class LevelsChanged(BaseModel):
    """The levels a stock operation touched, after it."""

    levels: list[LevelOut]


class MovementsQuery(ApiModel):
    location_id: Id | None = None
    part_id: Id | None = None
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50


class MovementOut(BaseModel):
    id: int
    at: dt.datetime
    part_id: int
    location_id: int
    delta: int
    reason: str
    onsite_line_id: int | None
    user_id: int | None
    note: str


class MovementList(BaseModel):
    items: list[MovementOut]
    page: int
    page_size: int

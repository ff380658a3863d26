"""``GET /api/orders``: search work orders (the order list and search page, the screen-pop's
"orders of this caller"). The query is built in :mod:`callcenter.orders.search`.

Every row is masked (customer 张*, phone 138****5678, address to the district). An engineer sees
only the orders assigned to them: the filter is added, so others' orders simply do not appear.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from callcenter.access import ACTIONS
from callcenter.appkeys import ENGINE, SETTINGS, VAULT
from callcenter.auth.identity import CurrentUser
from callcenter.db.engine import without_transaction
from callcenter.customers.phones import normalise
from callcenter.errors import ValidationFailed
from callcenter.orders.search import (
    COUNT_CAP, MAX_PAGE_SIZE, STATUSES, URGENCIES, SearchCriteria, count_query, local_day_bounds,
    page_query, parse_engineer, parse_number, to_item,
)
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()

# Offset paging walks the skipped rows: past this many a person should narrow the search.
MAX_OFFSET = 10_000

Status = Literal[STATUSES]  # type: ignore[valid-type]
Urgency = Literal[URGENCIES]  # type: ignore[valid-type]


def _as_list(value: object) -> object:
    """``status=a&status=b`` arrives as a list, ``status=a,b`` as one string: both → a list."""
    if isinstance(value, str):
        return [v for v in (p.strip() for p in value.replace("，", ",").split(",")) if v]
    return value


class OrderSearchQuery(ApiModel):
    phone: str | None = Field(None, min_length=1, max_length=64,
                              description="客户电话，任意写法 (+86 138 0013 8000, 013800138000 …)")
    name: str | None = Field(None, min_length=1, max_length=64, description="客户姓名或姓名开头 (张 / 张三)")
    number: str | None = Field(None, min_length=2, max_length=32,
                               description="工单号 WO… 或受理单号 CR…；完整号码精确匹配，否则按开头匹配 (WO20261123)")
    model: str | None = Field(None, min_length=1, max_length=64, description="产品型号或型号开头")
    serial: str | None = Field(None, min_length=1, max_length=64, description="机身序列号（精确）")
    engineer: str | None = Field(None, min_length=1, max_length=16, description="工程师用户 id 或工号 (GY2024001)")
    status: list[Status] | None = Field(None, description="工单状态，可多个 (status=待处理&status=已派单 或 待处理,已派单)")
    urgency: list[Urgency] | None = Field(None, description="紧急程度，可多个")
    from_: dt.date | None = Field(None, alias="from", description="创建日期起 (含，本中心时区) YYYY-MM-DD")
    to: dt.date | None = Field(None, description="创建日期止 (含，本中心时区) YYYY-MM-DD")
    page: int = Field(1, ge=1, description="页码，从 1 开始")
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, description="每页条数 (≤ 100)")

    _lists = field_validator("status", "urgency", mode="before")(_as_list)

    @field_validator("number")
    @classmethod
    def _number(cls, v: str | None) -> str | None:
        return None if v is None else parse_number(v)

    @field_validator("engineer")
    @classmethod
    def _engineer(cls, v: str | None) -> str | None:
        return None if v is None else parse_engineer(v)

    @model_validator(mode="after")
    def _ranges(self) -> OrderSearchQuery:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValidationFailed("to", "must not be before from")
        if (self.page - 1) * self.page_size > MAX_OFFSET:
            raise ValidationFailed("page", f"too deep (more than {MAX_OFFSET} rows skipped): narrow the search")
        return self


class CustomerRef(BaseModel):
    id: int
    name: str = Field(description="脱敏姓名 (张*)")
    phone: str = Field(description="脱敏电话 (138****5678)")


class EngineerRef(BaseModel):
    id: int
    name: str
    staff_no: str | None


class OrderSummary(BaseModel):
    id: int
    number: str
    status: str
    urgency: str
    service_type: str
    warranty: str
    product_model: str
    serial: str
    problem: str = Field(description="故障描述开头，号码已脱敏")
    created_at: str = Field(description="ISO 8601，本中心时区")
    appointment_start: str | None
    customer: CustomerRef
    address: str = Field(description="地址到区县")
    engineer: EngineerRef | None


class OrderSearchPage(BaseModel):
    items: list[OrderSummary]
    page: int
    page_size: int
    has_more: bool
    total: int = Field(description=f"匹配的工单数，最多数到 {COUNT_CAP}")
    total_capped: bool = Field(description=f"true: 实际多于 {COUNT_CAP} 条")


def criteria_for(query: OrderSearchQuery, user: CurrentUser, request: web.Request) -> SearchCriteria:
    settings = request.app[SETTINGS]
    indexes: tuple[str, ...] = ()
    if query.phone is not None:
        found = normalise(query.phone, settings.local_area_code)
        if found is None:
            raise ValidationFailed("phone", "not a phone number")
        indexes = request.app[VAULT].indexes(found.number)
    created_from, created_before = local_day_bounds(query.from_, query.to, settings.tz)
    return SearchCriteria(
        phone_indexes=indexes, name=query.name or "", number=query.number or "",
        model=query.model or "", serial=query.serial or "", engineer=query.engineer or "",
        statuses=tuple(query.status or ()), urgencies=tuple(query.urgency or ()),
        created_from=created_from, created_before=created_before,
        visible_to_engineer=user.id if user.role == "engineer" else None)


@routes.get("/api/orders")
@endpoint("搜索工单 Search work orders", roles=ACTIONS["order.search"], query=OrderSearchQuery,
          response=OrderSearchPage, tag="orders",
          description="按电话、姓名、单号、型号、序列号、工程师、状态、紧急程度、创建日期搜索，"
                      "最新的在前，分页。工程师只看到派给自己的工单。结果已脱敏。")
async def search_orders(request: web.Request, user: CurrentUser, query: OrderSearchQuery) -> web.Response:
    criteria = criteria_for(query, user, request)
    async with request.app[ENGINE].connect() as conn:
        await without_transaction(conn)  # reads only: no BEGIN / ROLLBACK round trips
        rows, has_more, total = await run_search(conn, criteria, query.page, query.page_size)
    tz = request.app[SETTINGS].tz
    body: dict[str, Any] = {
        "items": [to_item(r, tz) for r in rows], "page": query.page,
        "page_size": query.page_size, "has_more": has_more,
        "total": min(total, COUNT_CAP), "total_capped": total > COUNT_CAP}
    return json_response(body)


async def run_search(conn: AsyncConnection, criteria: SearchCriteria, page: int,
                     page_size: int) -> tuple[list[RowMapping], bool, int]:
    """The page's rows, whether more follow, and the count (up to ``COUNT_CAP + 1``). The count
    query runs only when the page does not already tell it (a last page, or page 1 not full)."""
    dialect = conn.dialect.name
    offset = (page - 1) * page_size
    rows = list((await conn.execute(page_query(criteria, dialect, limit=page_size + 1,
                                               offset=offset))).mappings().all())
    has_more = len(rows) > page_size
    if not has_more and (rows or offset == 0):
        total = offset + len(rows)
    else:
        total = await conn.scalar(count_query(criteria, dialect)) or 0
    return rows[:page_size], has_more, total

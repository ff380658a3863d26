"""Work-order search: criteria → one page query and one capped count (pure, no I/O).

Every filter is answered from an index on 3,000,000 orders (bench/orders.py measures it):

=========  ======================================================================  ==========================
filter     matches                                                                  index
=========  ======================================================================  ==========================
phone      the customer holding the number: ``customer_phones.number_index IN``     number_index (unique),
           the number's blind indexes (every index key, for rotations)              (customer_id, created_at)
name       customer name prefix (``张`` finds 张三, 张小明; a full name finds itself) name pattern (0007)
number     ``WO…`` the order, ``CR…`` the orders made from that intake; a complete  number unique / pattern
           number (``WO20261123-001``) exactly, anything shorter as a prefix        (0007)
           (``WO20261123`` = that day's orders)
model      product model prefix, as typed or upper-cased                            product_model
serial     exact, as typed, upper- or lower-cased (serials are stored as printed)   serial
engineer   the assigned engineer, by user id (digits) or staff number (GY2024001)   (engineer_id, status)
status     any of several; urgency likewise                                         (status, urgency)
from/to    created on these local days (the centre's time zone), both inclusive     created_at
=========  ======================================================================  ==========================

Results come newest first, ties by id (``created_at DESC, id DESC``): a stable order for
offset paging. Prefix matching is ``LIKE 'p%'`` on PostgreSQL (``varchar_pattern_ops``
indexes) and ``GLOB 'p*'`` on SQLite (its LIKE is case-insensitive and skips the index).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from callcenter.db.models import Address, Customer, CustomerPhone, IntakeRecord, User, WorkOrder
from callcenter.privacy import mask_address, mask_name, mask_numbers_in_text

ONSITE_STATUSES = ("待处理", "已派单", "已预约", "服务中", "待件", "已完成", "已回访", "已取消")
CARRY_IN_STATUSES = ("待修", "修理中", "难修", "待取", "已取")
STATUSES = ONSITE_STATUSES + CARRY_IN_STATUSES
URGENCIES = ("普通", "紧急", "特急")
MAX_PAGE_SIZE = 100
# The count stops here: "more than 1000" is all a person paging needs, and counting every
# match of a broad filter over millions of orders would cost far more than the page itself.
COUNT_CAP = 1000
# How much of the problem description a list row shows.
PROBLEM_PREVIEW = 60

# WO/CR + up to 8 date digits, then (only after all 8) a dash and serial digits.
_NUMBER = re.compile(r"^(WO|CR)(\d{0,7}|\d{8}(-\d*)?)$")
# A complete number: the serial has at least 3 digits (format_number pads to 3, and a wider
# serial never starts with 0), so it names one record.
_COMPLETE = re.compile(r"^(WO|CR)\d{8}-\d{3,}$")
_STAFF_NO = re.compile(r"^[A-Za-z0-9-]{1,16}$")


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """What to look for; empty fields do not filter. Times are aware UTC."""

    phone_indexes: tuple[str, ...] = ()
    name: str = ""
    number: str = ""
    model: str = ""
    serial: str = ""
    engineer: str = ""
    statuses: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    created_from: dt.datetime | None = None  # inclusive
    created_before: dt.datetime | None = None  # exclusive
    # Set when the viewer is an engineer: only the orders assigned to them (a filter, not 404s).
    visible_to_engineer: int | None = None


def parse_number(text: str) -> str:
    """The order/intake number or prefix, upper-cased; ValueError if it cannot be one."""
    number = text.strip().upper()
    if not _NUMBER.match(number):
        raise ValueError("expected WO… or CR… (a number such as WO20261123-001, or its beginning)")
    return number


def parse_engineer(text: str) -> str:
    """A user id (digits) or a staff number; ValueError otherwise."""
    value = text.strip()
    if not _STAFF_NO.match(value):
        raise ValueError("expected an engineer's user id or staff number")
    return value


def local_day_bounds(first: dt.date | None, last: dt.date | None,
                     tz: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[first 00:00, last+1 00:00)`` in ``tz``, as UTC. A day is 23–25 h across DST shifts."""
    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)

    return (midnight(first) if first else None,
            midnight(last + dt.timedelta(days=1)) if last else None)


def _glob_literal(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _like_literal(text: str) -> str:
    # Backslash is PostgreSQL's default LIKE escape; no ESCAPE clause, so the planner sees a
    # plain prefix pattern and uses the pattern index.
    return re.sub(r"([\\%_])", r"\\\1", text)


def prefix_match(column: InstrumentedAttribute[str] | ColumnElement[str], prefix: str,
                 dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, in the form the dialect answers from an index."""
    if dialect == "sqlite":
        return column.op("GLOB")(_glob_literal(prefix) + "*")
    return column.like(_like_literal(prefix) + "%")


def _variants(text: str) -> list[str]:
    return list(dict.fromkeys((text, text.upper(), text.lower())))


def _number_clause(number: str, dialect: str) -> ColumnElement[bool]:
    complete = bool(_COMPLETE.match(number))
    if number.startswith("CR"):
        col = IntakeRecord.number
        match = col == number if complete else prefix_match(col, number, dialect)
        return WorkOrder.intake_id.in_(select(IntakeRecord.id).where(match))
    return WorkOrder.number == number if complete else prefix_match(WorkOrder.number, number, dialect)


def where_clauses(c: SearchCriteria, dialect: str) -> list[ColumnElement[bool]]:
    """The WHERE conditions for ``c`` on ``work_orders`` (ANDed)."""
    out: list[ColumnElement[bool]] = []
    if c.visible_to_engineer is not None:
        out.append(WorkOrder.engineer_id == c.visible_to_engineer)
    if c.phone_indexes:
        out.append(WorkOrder.customer_id.in_(
            select(CustomerPhone.customer_id).where(CustomerPhone.number_index.in_(c.phone_indexes))))
    if c.name:
        out.append(WorkOrder.customer_id.in_(
            select(Customer.id).where(prefix_match(Customer.name, c.name, dialect))))
    if c.number:
        out.append(_number_clause(c.number, dialect))
    if c.model:
        out.append(or_(*(prefix_match(WorkOrder.product_model, v, dialect)
                         for v in dict.fromkeys((c.model, c.model.upper())))))
    if c.serial:
        out.append(WorkOrder.serial.in_(_variants(c.serial)))
    if c.engineer:
        if c.engineer.isdigit():
            out.append(WorkOrder.engineer_id == int(c.engineer))
        else:
            out.append(WorkOrder.engineer_id.in_(
                select(User.id).where(User.staff_no.in_(_variants(c.engineer)))))
    if c.statuses:
        out.append(WorkOrder.status.in_(c.statuses))
    if c.urgencies:
        out.append(WorkOrder.urgency.in_(c.urgencies))
    if c.created_from is not None:
        out.append(WorkOrder.created_at >= c.created_from)
    if c.created_before is not None:
        out.append(WorkOrder.created_at < c.created_before)
    return out


# Built once: constructing them is a good part of a search's Python time (they are immutable).
_ENGINEER = aliased(User, name="engineer")
_FIRST_PHONE = (select(CustomerPhone.masked).where(CustomerPhone.customer_id == WorkOrder.customer_id)
                .order_by(CustomerPhone.id).limit(1).scalar_subquery())


def page_query(c: SearchCriteria, dialect: str, *, limit: int, offset: int) -> Select[Any]:
    """One page of matches with what a list row shows. The page's ids are chosen first (filters
    and order on ``work_orders`` alone, so the planner keeps to its indexes), then joined."""
    page = (select(WorkOrder.id, WorkOrder.created_at).where(*where_clauses(c, dialect))
            .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
            .limit(limit).offset(offset).subquery("page"))
    engineer, phone = _ENGINEER, _FIRST_PHONE
    return (select(WorkOrder.id, WorkOrder.number, WorkOrder.status, WorkOrder.urgency,
                   WorkOrder.service_type, WorkOrder.warranty, WorkOrder.product_model,
                   WorkOrder.serial, WorkOrder.problem, WorkOrder.created_at,
                   WorkOrder.appointment_start, WorkOrder.customer_id,
                   Customer.name.label("customer_name"), phone.label("phone_masked"),
                   Address.province, Address.city, Address.district,
                   WorkOrder.engineer_id, engineer.display_name.label("engineer_name"),
                   engineer.staff_no.label("engineer_staff_no"))
            .select_from(page)
            .join(WorkOrder, WorkOrder.id == page.c.id)
            .join(Customer, Customer.id == WorkOrder.customer_id)
            .outerjoin(Address, Address.id == WorkOrder.address_id)
            .outerjoin(engineer, engineer.id == WorkOrder.engineer_id)
            .order_by(page.c.created_at.desc(), page.c.id.desc()))


def count_query(c: SearchCriteria, dialect: str, cap: int = COUNT_CAP) -> Select[Any]:
    """How many orders match, counting at most ``cap + 1``."""
    capped = select(WorkOrder.id).where(*where_clauses(c, dialect)).limit(cap + 1).subquery()
    return select(func.count()).select_from(capped)


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _local(value: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else _utc(value).astimezone(tz).isoformat()


def to_item(row: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A result row as the API shows it: name, phone and address masked; times in ``tz``."""
    problem = mask_numbers_in_text(row["problem"] or "")
    engineer = None
    if row["engineer_id"] is not None:
        engineer = {"id": row["engineer_id"], "name": mask_name(row["engineer_name"] or ""),
                    "staff_no": row["engineer_staff_no"]}
    return {
        "id": row["id"], "number": row["number"], "status": row["status"], "urgency": row["urgency"],
        "service_type": row["service_type"], "warranty": row["warranty"],
        "product_model": row["product_model"], "serial": row["serial"],
        "problem": problem[:PROBLEM_PREVIEW] + ("…" if len(problem) > PROBLEM_PREVIEW else ""),
        "created_at": _local(row["created_at"], tz),
        "appointment_start": _local(row["appointment_start"], tz),
        "customer": {"id": row["customer_id"], "name": mask_name(row["customer_name"] or ""),
                     "phone": row["phone_masked"] or ""},
        "address": mask_address(row["province"] or "", row["city"] or "", row["district"] or ""),
        "engineer": engineer,
    }

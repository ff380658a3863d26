"""The caller context: what the agent sees about a caller before picking up (the screen-pop).

Runs on every inbound call between QueueCallerJoin and AgentCalled, so it must be fast at a
million customers: a fixed, small number of queries, each an indexed lookup bounded by a LIMIT
or a time window, never a scan and never one query per row:

=========================  ================================================================
query                      index used
=========================  ================================================================
customer and its phones    customer_phones(number_index) → customers primary key;
                           customer_phones(customer_id)
first address              addresses(customer_id)
appliances (≤ 50)          appliances(customer_id)
orders, one UNION ALL of:  work_orders(customer_id, created_at) for each order part,
  open (≤ 20), last 5,     intake_records(customer_id, created_at) for the intakes
  repairs since now − 2×window, last 5 intakes
calls (≤ 10, 30 days),     calls(customer_id, started_at) — or (caller_index, started_at) if
  with the intake and      unknown; intake_records(call_linkedid), work_orders(call_linkedid)
  order numbers linked     for the links, in the same statement
=========================  ================================================================

That is 5 queries for a known caller, 2 for an unknown number, none for an anonymous one.

Numbers are stored sealed (``callcenter.crypto``): the caller is found by the blind index of the
normalised number, ``IN vault.indexes(n)`` (every index key, so an index-key rotation in progress
changes nothing), and the customer's numbers come back masked; ``to_json(masked=False, vault=…)``
decrypts them (tests, tools — the API's unmasked values go through the audited reveal).

Times: the database holds UTC; naive values read back from SQLite are taken as UTC; the JSON
gives ISO-8601 with the offset (``+00:00``). ``today`` for the warranty is the date of ``now``
in the centre's zone (``settings.tz``, Asia/Shanghai by default).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, func, literal, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# The queries are plain Core selects: a Connection (what the pop path uses: no ORM Session
# bookkeeping per call) or a Session both run them.
Db = AsyncConnection | AsyncSession

from callcenter.customers.phones import PhoneNumber, normalise
from callcenter.customers.warranty import Warranty, warranty_status
from callcenter.crypto import PhoneVault
from callcenter.db.models import Address, Appliance, Call, Customer, CustomerPhone, IntakeRecord, WorkOrder
from callcenter.privacy import full_address, mask_address, mask_name, mask_numbers_in_text, mask_phone
from callcenter.settings import Settings

# Statuses after which an order needs nothing more from the centre.
CLOSED_STATUSES = ("已完成", "已回访", "已取消")
# Service types that are a repair of the appliance (install and return/exchange are not).
REPAIR_TYPES = ("上门维修", "远程支持")
CANCELLED = "已取消"
RECENT_ORDERS = 5
MAX_OPEN_ORDERS = 20
MAX_APPLIANCES = 50
RECENT_CALLS = 10
RECENT_INTAKES = 5
CALLS_LOOKBACK = dt.timedelta(days=30)


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; SQLite gives naive datetimes, which we stored as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat()


@dataclass(frozen=True, slots=True)
class StoredPhone:
    """A customer's number as stored: masked form, kind, ciphertext (opened only on demand)."""

    masked: str
    kind: str
    enc: str


def _vault_for_unmasked(vault: PhoneVault | None) -> PhoneVault:
    if vault is None:
        raise ValueError("to_json(masked=False) needs the vault to open the numbers")
    return vault


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: int
    name: str
    level: str
    remarks: str
    phones: tuple[StoredPhone, ...]
    # (province, city, district, detail) of the first address, None when there is none.
    address: tuple[str, str, str, str] | None

    def to_json(self, masked: bool = True, vault: PhoneVault | None = None) -> dict[str, Any]:
        if self.address is None:
            address = None
        else:
            address = (mask_address if masked else full_address)(*self.address) or None
        if masked:
            phones = [p.masked for p in self.phones]
        else:
            opener = _vault_for_unmasked(vault)
            phones = [opener.decrypt(p.enc) for p in self.phones]
        return {
            "id": self.id,
            "name": mask_name(self.name) if masked else self.name,
            "level": self.level,
            "phones": phones,
            "address": address,
            "remarks": mask_numbers_in_text(self.remarks) if masked else self.remarks,
        }


@dataclass(frozen=True, slots=True)
class ApplianceView:
    id: int
    category: str
    brand: str
    model: str
    serial: str
    purchase_date: dt.date | None
    warranty_months: int
    warranty: Warranty

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "brand": self.brand,
                "model": self.model, "serial": self.serial,
                "purchase_date": self.purchase_date.isoformat() if self.purchase_date else None,
                "warranty_months": self.warranty_months, "warranty": self.warranty.to_json()}


@dataclass(frozen=True, slots=True)
class OrderView:
    number: str
    status: str
    urgency: str
    service_type: str
    problem: str
    created_at: dt.datetime
    appliance_id: int | None

    def to_json(self, masked: bool = True) -> dict[str, Any]:
        return {"number": self.number, "status": self.status, "urgency": self.urgency,
                "service_type": self.service_type,
                "problem": mask_numbers_in_text(self.problem) if masked else self.problem,
                "created_at": _iso(self.created_at), "appliance_id": self.appliance_id}


@dataclass(frozen=True, slots=True)
class IntakeView:
    """A recent intake record (SA-CR-001) of the customer."""

    number: str
    request_type: str
    urgency: str
    problem: str
    product_model: str
    created_at: dt.datetime
    appliance_id: int | None
    call_linkedid: str

    def to_json(self, masked: bool = True) -> dict[str, Any]:
        return {"number": self.number, "request_type": self.request_type, "urgency": self.urgency,
                "problem": mask_numbers_in_text(self.problem) if masked else self.problem,
                "product_model": self.product_model, "created_at": _iso(self.created_at),
                "appliance_id": self.appliance_id, "call_id": self.call_linkedid or None}


@dataclass(frozen=True, slots=True)
class CallView:
    linkedid: str
    started_at: dt.datetime
    outcome: str | None
    queue: str
    agent_member: str
    talk_s: int | None
    # The intake records (CR…) and work orders (WO…) taken on this call.
    intakes: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.linkedid, "started_at": _iso(self.started_at), "outcome": self.outcome,
                "queue": self.queue, "agent_member": self.agent_member, "talk_s": self.talk_s,
                "intakes": list(self.intakes), "orders": list(self.orders)}


@dataclass(frozen=True, slots=True)
class CallerContext:
    """Everything the screen-pop shows; ``to_json(masked=True)`` is what goes to the agent."""

    customer_id: int | None
    customer: CustomerView | None
    anonymous: bool
    new_caller: bool
    caller: PhoneNumber | None
    appliances: tuple[ApplianceView, ...] = ()
    open_orders: tuple[OrderView, ...] = ()
    recent_orders: tuple[OrderView, ...] = ()
    recent_intakes: tuple[IntakeView, ...] = ()
    recent_calls: tuple[CallView, ...] = ()
    calls_30d: int = 0
    repeat_caller: bool = False
    repeat_repair: bool = False
    repeat_repair_appliance_ids: tuple[int, ...] = ()

    def to_json(self, masked: bool = True, vault: PhoneVault | None = None) -> dict[str, Any]:
        """``masked=False`` (never an API answer: tools and tests) needs ``vault`` to open the
        customer's numbers; the caller's number is the one the call came from."""
        caller = None
        if self.caller is not None:
            caller = mask_phone(self.caller.number) if masked else self.caller.number
        return {
            "customer": None if self.customer is None else self.customer.to_json(masked, vault),
            "history": {
                "anonymous": self.anonymous,
                "new_caller": self.new_caller,
                "caller": caller,
                "caller_kind": None if self.caller is None else self.caller.kind,
                "appliances": [a.to_json() for a in self.appliances],
                "open_orders": [o.to_json(masked) for o in self.open_orders],
                "recent_orders": [o.to_json(masked) for o in self.recent_orders],
                "recent_intakes": [i.to_json(masked) for i in self.recent_intakes],
                "recent_calls": [c.to_json() for c in self.recent_calls],
                "calls_30d": self.calls_30d,
                "repeat_caller": self.repeat_caller,
                "repeat_repair": self.repeat_repair,
                "repeat_repair_appliance_ids": list(self.repeat_repair_appliance_ids),
            },
        }


async def build_caller_context(session: Db, raw_number: str, *, now: dt.datetime,
                               settings: Settings, vault: PhoneVault,
                               exclude_linkedid: str | None = None) -> CallerContext:
    """The context for an inbound call from ``raw_number`` (CallerIDNum as Asterisk gave it).

    ``now`` (timezone-aware) is the moment of the call; ``exclude_linkedid`` is the current
    call, which is not a "previous" call. Anonymous numbers give ``anonymous`` and no history;
    an unknown number gives ``new_caller`` with the calls made from that number. Read-only;
    cancellation just abandons the queries.
    """
    caller = normalise(raw_number, settings.local_area_code)
    if caller is None:
        return CallerContext(customer_id=None, customer=None, anonymous=True, new_caller=False,
                             caller=None)
    indexes = list(vault.indexes(caller.number))
    rows = (await session.execute(_BY_NUMBER, {"indexes": indexes})).all()
    if not rows:
        calls, calls_30d, repeat = await _calls(session, False, indexes, now, settings,
                                                exclude_linkedid)
        return CallerContext(customer_id=None, customer=None, anonymous=False, new_caller=True,
                             caller=caller, recent_calls=calls, calls_30d=calls_30d,
                             repeat_caller=repeat)
    return await _known(session, rows, caller, now, settings, exclude_linkedid)


async def build_customer_context(session: Db, customer_id: int, *, now: dt.datetime,
                                 settings: Settings,
                                 exclude_linkedid: str | None = None) -> CallerContext:
    """The same context for a customer picked by id (no caller); ``customer_id`` None if absent."""
    rows = (await session.execute(_BY_ID, {"cid": customer_id})).all()
    if not rows:
        return CallerContext(customer_id=None, customer=None, anonymous=False, new_caller=False,
                             caller=None)
    return await _known(session, rows, None, now, settings, exclude_linkedid)


# The statements are built once, with bound parameters: building a UNION of subqueries costs
# more CPU than running it (bench/screen_pop.py profile), and SQLAlchemy then reuses the
# compiled form from its cache.
_OWNER_OF = (select(CustomerPhone.customer_id)
             .where(CustomerPhone.number_index.in_(bindparam("indexes", expanding=True)))
             .order_by(CustomerPhone.customer_id).limit(1).scalar_subquery())


def _customer_with_phones(customer_id: Any) -> Select[Any]:
    """One row per phone of the customer (one row with NULL phone if it has none)."""
    return (select(Customer.id, Customer.name, Customer.level, Customer.remarks,
                   CustomerPhone.masked, CustomerPhone.kind, CustomerPhone.number_enc)
            .select_from(Customer)
            .outerjoin(CustomerPhone, CustomerPhone.customer_id == Customer.id)
            .where(Customer.id == customer_id).order_by(CustomerPhone.id))


# Lowest id wins should two customers share a number (impossible while
# customer_phones.number_index is unique; during an index-key rotation a number could match
# a row under the old and another under the new key only if it were stored twice).
_BY_NUMBER = _customer_with_phones(_OWNER_OF)
_BY_ID = _customer_with_phones(bindparam("cid"))
_ADDRESS = (select(Address.province, Address.city, Address.district, Address.detail)
            .where(Address.customer_id == bindparam("cid")).order_by(Address.id).limit(1))
_APPLIANCES = (select(Appliance.id, Appliance.category, Appliance.brand, Appliance.model,
                      Appliance.serial, Appliance.purchase_date, Appliance.warranty_months)
               .where(Appliance.customer_id == bindparam("cid")).order_by(Appliance.id)
               .limit(MAX_APPLIANCES))

_ORDER_COLUMNS = (WorkOrder.id, WorkOrder.number, WorkOrder.status, WorkOrder.urgency,
                  WorkOrder.service_type, WorkOrder.problem, WorkOrder.created_at,
                  WorkOrder.appliance_id, WorkOrder.product_model, WorkOrder.call_linkedid)
# The intake records in the same shape (request_type in the service_type column, no status).
_INTAKE_COLUMNS = (IntakeRecord.id, IntakeRecord.number, literal("", String).label("status"),
                   IntakeRecord.urgency, IntakeRecord.request_type.label("service_type"),
                   IntakeRecord.problem, IntakeRecord.created_at, IntakeRecord.appliance_id,
                   IntakeRecord.product_model, IntakeRecord.call_linkedid)


def _orders_stmt() -> Any:
    """Open orders, the last orders, the recent repair orders and the last intake records,
    tagged, in one round trip (parameters ``cid`` and ``repairs_since``).

    Each part is its own indexed, limited subquery; UNION ALL promises no row order, so the
    caller sorts each part again.
    """
    newest_first = (WorkOrder.created_at.desc(), WorkOrder.id.desc())
    mine = WorkOrder.customer_id == bindparam("cid")
    parts = {
        "open": select(*_ORDER_COLUMNS).where(mine, WorkOrder.status.not_in(CLOSED_STATUSES))
        .order_by(*newest_first).limit(MAX_OPEN_ORDERS),
        "recent": select(*_ORDER_COLUMNS).where(mine).order_by(*newest_first).limit(RECENT_ORDERS),
        "repair": select(*_ORDER_COLUMNS).where(
            mine, WorkOrder.created_at >= bindparam("repairs_since"),
            WorkOrder.service_type.in_(REPAIR_TYPES),
            WorkOrder.status != CANCELLED, WorkOrder.appliance_id.is_not(None)),
        "intake": select(*_INTAKE_COLUMNS).where(IntakeRecord.customer_id == bindparam("cid"))
        .order_by(IntakeRecord.created_at.desc(), IntakeRecord.id.desc()).limit(RECENT_INTAKES),
    }
    tagged = []
    for tag, stmt in parts.items():
        sub = stmt.subquery()
        tagged.append(select(literal(tag, String).label("part"), *sub.c))
    return union_all(*tagged)


_ORDERS = _orders_stmt()


def _calls_stmt(who: Any) -> Any:
    """Previous calls (parameters ``since``, ``until``, ``exclude``), newest first, ≤ 10, each
    row with the total (count(*) OVER () is computed before LIMIT) — and, in the same round
    trip, the intake (``CR``) and order (``WO``) numbers linked to those calls, as extra rows
    tagged by ``part`` that carry the call's linkedid and the ``number``."""
    recent = (select(Call.linkedid, Call.started_at, Call.outcome, Call.queue, Call.agent_member,
                     Call.talk_s, func.count().over().label("total"))
              .where(who, Call.started_at >= bindparam("since"), Call.started_at <= bindparam("until"),
                     Call.linkedid != bindparam("exclude"))
              .order_by(Call.started_at.desc()).limit(RECENT_CALLS).cte("recent_calls"))
    linked = select(recent.c.linkedid)
    blanks = (null(),) * (len(recent.c) - 1)
    return union_all(
        select(literal("call", String).label("part"), *recent.c, cast(null(), String).label("number")),
        *(select(literal(tag, String), table.call_linkedid, *blanks, table.number)
          .where(_rarely_true(table.call_linkedid.in_(linked)))
          for tag, table in (("CR", IntakeRecord), ("WO", WorkOrder))))


class _rarely_true(FunctionElement[Any]):
    """A condition that holds for few rows. SQLite's planner judges an index by its average rows
    per key (ANALYZE), and ``call_linkedid`` is mostly "" where orders were imported or typed
    in: it would scan the table. ``likelihood()`` tells it better; other databases see the bare
    condition (PostgreSQL's statistics know the common value)."""

    inherit_cache = True


@compiles(_rarely_true)
def _rarely_true_default(element: _rarely_true, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_rarely_true, "sqlite")
def _rarely_true_sqlite(element: _rarely_true, compiler: Any, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.clauses, **kw)}, 0.001)"


def _any_call_stmt(who: Any) -> Any:
    return (select(Call.id).where(who, Call.started_at >= bindparam("since"),
                                  Call.started_at <= bindparam("until"),
                                  Call.linkedid != bindparam("exclude")).limit(1))


_OF_NUMBER = Call.caller_index.in_(bindparam("who", expanding=True))
_CALLS_OF_CUSTOMER = _calls_stmt(Call.customer_id == bindparam("who"))
_CALLS_OF_NUMBER = _calls_stmt(_OF_NUMBER)
_ANY_CALL_OF_CUSTOMER = _any_call_stmt(Call.customer_id == bindparam("who"))
_ANY_CALL_OF_NUMBER = _any_call_stmt(_OF_NUMBER)


def _newest(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (_utc(r.created_at), r.id), reverse=True)


def _newest_first(rows: list[Any]) -> tuple[OrderView, ...]:
    return tuple(OrderView(r.number, r.status, r.urgency, r.service_type, r.problem,
                           _utc(r.created_at), r.appliance_id) for r in _newest(rows))


async def _known(session: Db, rows: list[Any], caller: PhoneNumber | None,
                 now: dt.datetime, settings: Settings, exclude_linkedid: str | None) -> CallerContext:
    first = rows[0]
    cid = first.id
    now_utc = _utc(now)
    today = now_utc.astimezone(settings.tz).date()
    phones = tuple(StoredPhone(r.masked, r.kind, r.number_enc) for r in rows if r.masked is not None)
    addr = (await session.execute(_ADDRESS, {"cid": cid})).first()
    appliances = tuple(
        ApplianceView(a.id, a.category, a.brand, a.model, a.serial, a.purchase_date,
                      a.warranty_months, warranty_status(a.purchase_date, a.warranty_months, today))
        for a in await session.execute(_APPLIANCES, {"cid": cid}))
    window = dt.timedelta(days=settings.repeat_repair_days)
    by_part: dict[str, list[Any]] = {"open": [], "recent": [], "repair": [], "intake": []}
    for r in await session.execute(_ORDERS, {"cid": cid, "repairs_since": now_utc - 2 * window}):
        by_part[r.part].append(r)
    repeated = repeat_repairs([(r.appliance_id, _utc(r.created_at)) for r in by_part["repair"]],
                              now=now_utc, window=window)
    intakes = tuple(IntakeView(r.number, r.service_type, r.urgency, r.problem, r.product_model,
                               _utc(r.created_at), r.appliance_id, r.call_linkedid)
                    for r in _newest(by_part["intake"]))
    calls, calls_30d, repeat = await _calls(session, True, cid, now, settings, exclude_linkedid)
    return CallerContext(
        customer_id=cid,
        customer=CustomerView(cid, first.name, first.level, first.remarks, phones,
                              None if addr is None else tuple(addr)),  # type: ignore[arg-type]
        anonymous=False, new_caller=False, caller=caller, appliances=appliances,
        open_orders=_newest_first(by_part["open"]), recent_orders=_newest_first(by_part["recent"]),
        recent_intakes=intakes, recent_calls=calls, calls_30d=calls_30d, repeat_caller=repeat,
        repeat_repair=bool(repeated), repeat_repair_appliance_ids=repeated)


async def _calls(session: Db, by_customer: bool, who: Any, now: dt.datetime,
                 settings: Settings, exclude_linkedid: str | None) -> tuple[tuple[CallView, ...], int, bool]:
    """Previous calls of the last 30 days (newest first, ≤ 10) with their linked intake and
    order numbers, their count, the repeat-caller flag. ``who``: a customer id
    (``by_customer``) or the blind indexes of a number (``vault.indexes``)."""
    now_utc = _utc(now)
    params = {"who": who, "since": now_utc - CALLS_LOOKBACK, "until": now_utc,
              "exclude": exclude_linkedid or ""}
    rows = (await session.execute(_CALLS_OF_CUSTOMER if by_customer else _CALLS_OF_NUMBER,
                                  params)).all()
    links: dict[tuple[str, str], list[str]] = defaultdict(list)
    call_rows = []
    for r in rows:
        if r.part == "call":
            call_rows.append(r)
        else:
            links[r.part, r.linkedid].append(r.number)
    call_rows.sort(key=lambda r: _utc(r.started_at), reverse=True)
    calls = tuple(CallView(r.linkedid, _utc(r.started_at), r.outcome, r.queue, r.agent_member,
                           r.talk_s, tuple(sorted(links.get(("CR", r.linkedid), ()))),
                           tuple(sorted(links.get(("WO", r.linkedid), ()))))
                  for r in call_rows)
    window = dt.timedelta(seconds=settings.repeat_caller_window)
    if window <= CALLS_LOOKBACK:
        repeat = bool(calls) and calls[0].started_at >= now_utc - window
    else:  # a window longer than the 30 days fetched: ask once more
        params["since"] = now_utc - window
        repeat = (await session.execute(_ANY_CALL_OF_CUSTOMER if by_customer else _ANY_CALL_OF_NUMBER,
                                        params)).first() is not None
    return calls, (call_rows[0].total if call_rows else 0), repeat


def repeat_repairs(orders: list[tuple[int, dt.datetime]], *, now: dt.datetime,
                   window: dt.timedelta) -> tuple[int, ...]:
    """Appliances with two repair orders created within ``window`` of each other, the later
    of the two within ``window`` of ``now``. ``orders``: (appliance_id, created_at) pairs.
    Pure; returns the appliance ids in ascending order.
    """
    by_appliance: dict[int, list[dt.datetime]] = defaultdict(list)
    for appliance_id, created in orders:
        by_appliance[appliance_id].append(created)
    flagged = []
    for appliance_id, times in by_appliance.items():
        times.sort()
        if any(later - earlier <= window and later >= now - window
               for earlier, later in zip(times, times[1:])):
            flagged.append(appliance_id)
    return tuple(sorted(flagged))

"""Numbering and writing a new intake (SA-CR-001), its work order (SA-WO-002), the order's first
timeline line, their audit entries and the call they came from: the last step of the agent's
one click (or of making the order of an intake stored earlier).

Everything here is already decided (``services.OrderService`` checks and builds the records,
with the placeholders :data:`TOKENS` where the numbers go: the numbers themselves, the line's
note, the audit details). What is left is to take the numbers and insert rows that need each
other's ids. On PostgreSQL that is **one statement** of data-modifying CTEs::

    WITH n AS (INSERT INTO number_counters … ON CONFLICT … DO UPDATE SET last = last + 1
               RETURNING prefix, last),
         num AS (SELECT 'CR' || :day || '-' || lpad(last …) AS cr, … FROM n),
         i AS (INSERT INTO intake_records (…, number) SELECT …, num.cr FROM num RETURNING id, number),
         o AS (INSERT INTO work_orders (…, intake_id, number) SELECT …, i.id, num.wo … RETURNING …),
         e AS (INSERT INTO order_events (…, order_id, note) SELECT …, o.id, replace(:note, …) …),
         a AS (INSERT INTO audit_log (…, entity_id, detail) SELECT …, i.id, replace(:detail, …) …),
         c AS (UPDATE calls SET customer_id = … WHERE linkedid = … AND customer_id IS NULL …)
    SELECT i.id, i.number, o.id, o.number, e.id FROM …

A statement is atomic, so the numbers stay gap-free (a failing insert takes its serial back
with it) and, with nothing else to write, the save needs no transaction: the prefetch and this
statement are its only round trips (there were 36 at first). Each round trip costs a socket write
and a wake-up of two processes, and on a small machine shared with the database that, more than
the SQL, is what a save waits for (docs/benchmarks.md). The statement is built once per shape
(which columns each record has) and executed with the values. SQLite, which cannot modify data
in a CTE, takes the numbers (``numbering.next_numbers``) and inserts the same rows one at a time,
in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON, String, Table, Text, bindparam, case, cast, func, insert, literal, select, true, union_all, update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from callcenter.db.models import Call, IntakeRecord, OrderEvent, WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.rows import insert_row, insert_rows, row_values
from callcenter.orders.numbering import counters_upsert, local_day, next_numbers

# Where a record's number goes until it is taken (never in what an agent types: only the number
# columns, the order's first timeline note and the audit details, which carry no free text).
TOKENS = {"CR": "@@CR@@", "WO": "@@WO@@"}
# Filled in from the ids the statement hands out.
_LINKS = {"work_orders": ("intake_id",), "order_events": ("order_id",), "audit_log": ("entity_id",)}


async def write_created(s: AsyncSession, intake: IntakeRecord | None, order: WorkOrder | None,
                        event: OrderEvent | None, entries: list[AuditEntry], *, now: dt.datetime,
                        tz: ZoneInfo, linkedid: str | None = None) -> None:
    """Number and insert ``intake`` (and ``order`` with its ``event``), the ``entries`` (one per
    record, in that order), and give the call ``linkedid`` to the intake's customer if it has
    none. With ``intake`` None, ``order`` belongs to an intake stored earlier (``order.intake_id``
    set). Sets the numbers and ids on the records."""
    records = [r for r in (intake, order) if r is not None]
    prefixes = tuple(p for p, r in (("CR", intake), ("WO", order)) if r is not None)
    objs = [*records, *([event] if event is not None else []), *entries]
    if s.bind.dialect.name != "postgresql":
        _fill(objs, await next_numbers(s, prefixes, now, tz))
        await _one_by_one(s, intake, order, event, entries, linkedid)
        return
    values: dict[str, dict[str, Any]] = {}
    if intake is not None:
        values |= {"i": _own(intake), "a0": _own(entries[0])}
    if order is not None:
        assert event is not None
        values |= {"o": _own(order, linked=intake is not None), "e": _own(event),
                   "a1": _own(entries[len(records) - 1])}
    shape = tuple((name, tuple(sorted(v)), _tokenised(v)) for name, v in values.items())
    counters, params = counters_upsert("postgresql", prefixes, local_day(now, tz))
    params |= {f"{name}_{k}": v for name, row in values.items() for k, v in row.items()}
    link = bool(linkedid) and intake is not None
    if link:
        params |= {"call_linkedid": linkedid, "call_customer_id": intake.customer_id}  # type: ignore[union-attr]
    row = list((await s.execute(_statement(shape, prefixes, link), params)).one())
    numbers: dict[str, str] = {}
    if intake is not None:
        intake.id, numbers["CR"] = row.pop(0), row.pop(0)
    if order is not None and event is not None:
        order.id, numbers["WO"], event.id = row
        if intake is not None:
            order.intake_id = intake.id
        event.order_id = order.id
    _fill(objs, numbers)
    for record, entry in zip(records, entries, strict=True):
        entry.entity_id = str(record.id)


def _fill(objs: list[Any], numbers: dict[str, str]) -> None:
    """Put the numbers where their placeholders are (the number columns, the note, details)."""
    def sub(v: Any) -> Any:
        if isinstance(v, str):
            for prefix, number in numbers.items():
                v = v.replace(TOKENS[prefix], number)
        return v

    for obj in objs:
        for key in _NUMBERED[:2]:
            if isinstance(obj.__dict__.get(key), str):
                setattr(obj, key, sub(obj.__dict__[key]))
        if isinstance(obj.__dict__.get("detail"), dict):
            obj.detail = {k: sub(v) for k, v in obj.detail.items()}


async def _one_by_one(s: AsyncSession, intake: IntakeRecord | None, order: WorkOrder | None,
                      event: OrderEvent | None, entries: list[AuditEntry], linkedid: str | None) -> None:
    if intake is not None:
        if linkedid:
            await s.execute(_link_call().values(customer_id=intake.customer_id), {"call_linkedid": linkedid})
        await insert_row(s, intake)
    if order is not None and event is not None:
        if intake is not None:
            order.intake_id = intake.id
        await insert_row(s, order)
        event.order_id = order.id
        await insert_row(s, event)
    for record, entry in zip([r for r in (intake, order) if r is not None], entries, strict=True):
        entry.entity_id = str(record.id)
    await insert_rows(s, entries)


def _own(obj: Any, *, linked: bool = True) -> dict[str, Any]:
    """The row's values but its id and (``linked``) the ids it gets from the others."""
    links = _LINKS.get(obj.__table__.name, ()) if linked else ()
    return {k: v for k, v in row_values(obj).items() if k not in links and k != "id"}


# The only columns a placeholder may stand in (an agent's text that happens to contain one is
# stored as typed, on either database).
_NUMBERED = ("number", "note", "detail")


def _tokenised(values: dict[str, Any]) -> tuple[str, ...]:
    """The columns whose value holds a number's placeholder."""
    def has(v: Any) -> bool:
        text = v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict) else ""
        return any(t in text for t in TOKENS.values())

    return tuple(sorted(k for k, v in values.items() if k in _NUMBERED and has(v)))


def _link_call():  # type: ignore[no-untyped-def]
    calls = Call.__table__
    return update(calls).where(calls.c.linkedid == bindparam("call_linkedid"), calls.c.customer_id.is_(None))


def _select(table: Table, name: str, keys: tuple[str, ...], tokenised: tuple[str, ...], num: Any,
            *linked: Any) -> Select:
    """``SELECT CAST(:name_k AS type) …, linked …`` — typed, so PostgreSQL knows each parameter;
    a column holding a placeholder gets ``replace(…, '@@CR@@', num.cr)`` for each number."""
    cols = []
    for k in keys:
        ctype = table.c[k].type
        value: Any = bindparam(f"{name}_{k}", type_=ctype)
        if k in tokenised:
            text = cast(value, Text)
            for prefix, token in TOKENS.items():
                if prefix.lower() in num.c:
                    text = func.replace(text, token, num.c[prefix.lower()])
            value = cast(text, JSON) if isinstance(ctype, JSON) else text
        cols.append(cast(value, ctype).label(k))
    return select(*cols, *linked)


def _numbers_cte(prefixes: tuple[str, ...]) -> Any:
    """``n``: the counters moved; ``num``: one row, a column per prefix with its number."""
    counters, _ = counters_upsert("postgresql", prefixes, "")
    n = counters.cte("n")
    last = cast(n.c.last, Text)
    serial = func.lpad(last, func.greatest(3, func.length(last)), "0")  # numbering.format_number
    return select(*[func.max(case((n.c.prefix == p, func.concat(p, bindparam("day", type_=String), "-", serial))))
                    .label(p.lower()) for p in prefixes]).select_from(n).cte("num")


@functools.lru_cache(maxsize=32)
def _statement(shape: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...], prefixes: tuple[str, ...],
               link_call: bool) -> Select:
    keys = {name: k for name, k, _ in shape}
    tok = {name: t for name, _, t in shape}
    it, ot, et, at = (IntakeRecord.__table__, WorkOrder.__table__, OrderEvent.__table__, AuditEntry.__table__)
    num = _numbers_cte(prefixes)
    audit_rows: list[Select] = []
    out: list[Any] = []
    stmt: Select
    if "i" in keys:
        i = (insert(it).from_select(list(keys["i"]), _select(it, "i", keys["i"], tok["i"], num).select_from(num))
             .returning(it.c.id, it.c.number).cte("i"))
        audit_rows.append(_select(at, "a0", keys["a0"], tok["a0"], num, cast(i.c.id, String).label("entity_id"))
                          .select_from(i).join(num, true()))
        out += [i.c.id, i.c.number]
        stmt = select(*out).select_from(i)
    if "o" in keys:
        if "i" in keys:
            source = _select(ot, "o", keys["o"], tok["o"], num, i.c.id).select_from(i).join(num, true())
            columns = [*keys["o"], "intake_id"]
        else:
            source, columns = _select(ot, "o", keys["o"], tok["o"], num).select_from(num), list(keys["o"])
        o = insert(ot).from_select(columns, source).returning(ot.c.id, ot.c.number).cte("o")
        e = (insert(et).from_select([*keys["e"], "order_id"], _select(et, "e", keys["e"], tok["e"], num, o.c.id)
                                    .select_from(o).join(num, true()))
             .returning(et.c.id).cte("e"))
        audit_rows.append(_select(at, "a1", keys["a1"], tok["a1"], num, cast(o.c.id, String).label("entity_id"))
                          .select_from(o).join(num, true()))
        out += [o.c.id, o.c.number, e.c.id]
        stmt = (select(*out).select_from(i).join(o, true()) if "i" in keys
                else select(*out).select_from(o)).join(e, true())
    audit_keys = keys["a0" if "a0" in keys else "a1"]
    a = (insert(at).from_select([*audit_keys, "entity_id"], union_all(*audit_rows) if len(audit_rows) > 1
                                else audit_rows[0]).returning(at.c.id).cte("a"))
    ctes = [a]
    if link_call:
        ctes.append(_link_call().values(customer_id=bindparam("call_customer_id"))
                    .returning(literal(1)).cte("c"))
    return stmt.add_cte(*ctes)

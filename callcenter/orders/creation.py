"""Writing a new intake (SA-CR-001), its work order (SA-WO-002), the order's first timeline line,
their audit entries and the call they came from: the last step of the agent's one click.

Everything here is already decided and numbered (``services.OrderService.create_intake_records``
checks, numbers and builds the records); what is left is to insert rows that need each other's
ids (or, for a work order made later from a stored intake, the order, its line and its audit
entry). On PostgreSQL that is **one statement**: data-modifying CTEs pass the intake's id to the
order, the order's to its timeline line, both to the audit entries::

    WITH i AS (INSERT INTO intake_records … RETURNING id),
         o AS (INSERT INTO work_orders (…, intake_id) SELECT …, i.id FROM i RETURNING id),
         e AS (INSERT INTO order_events (…, order_id) SELECT …, o.id FROM o RETURNING id),
         a AS (INSERT INTO audit_log (…, entity_id) SELECT …, i.id FROM i UNION ALL … FROM o …),
         c AS (UPDATE calls SET customer_id = … WHERE linkedid = … AND customer_id IS NULL …)
    SELECT i.id, o.id, e.id FROM i, o, e

— one round trip instead of five. Each round trip to PostgreSQL costs a socket write and a
wake-up of both processes, and on a small machine shared with the database that, more than the
SQL, is what a save waits for (docs/benchmarks.md). The statement is built once per shape (which
columns each record has) and executed with the values; SQLite, which cannot modify data in a
CTE, gets the same rows one insert at a time.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import String, Table, bindparam, cast, insert, literal, select, true, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from callcenter.db.models import Call, IntakeRecord, OrderEvent, WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.rows import insert_row, insert_rows, row_values

# Filled in from the ids the statement hands out.
_LINKS = {"work_orders": ("intake_id",), "order_events": ("order_id",), "audit_log": ("entity_id",)}


async def write_created(s: AsyncSession, intake: IntakeRecord | None, order: WorkOrder | None,
                        event: OrderEvent | None, entries: list[AuditEntry], *,
                        linkedid: str | None = None) -> None:
    """Insert ``intake`` (and ``order`` with its ``event``), the ``entries`` (one per record, in
    that order), and give the call ``linkedid`` to the intake's customer if it has none. With
    ``intake`` None, ``order`` is the work order of an intake stored earlier (``order.intake_id``
    set). Sets the ids on the records. In ``s``'s transaction."""
    records = [r for r in (intake, order) if r is not None]
    if s.bind.dialect.name != "postgresql":
        await _one_by_one(s, intake, order, event, entries, linkedid)
        return
    values: dict[str, dict[str, Any]] = {}
    if intake is not None:
        values |= {"i": _own(intake), "a0": _own(entries[0])}
    if order is not None:
        assert event is not None
        values |= {"o": _own(order, linked=intake is not None), "e": _own(event),
                   "a1": _own(entries[len(records) - 1])}
    shape = tuple((name, tuple(sorted(v))) for name, v in values.items())
    params = {f"{name}_{k}": v for name, row in values.items() for k, v in row.items()}
    if linkedid and intake is not None:
        params |= {"call_linkedid": linkedid, "call_customer_id": intake.customer_id}
    ids = list((await s.execute(_statement(shape, bool(linkedid) and intake is not None), params)).one())
    if intake is not None:
        intake.id = ids.pop(0)
    if order is not None and event is not None:
        order.id, event.id = ids
        if intake is not None:
            order.intake_id = intake.id
        event.order_id = order.id
    for record, entry in zip(records, entries, strict=True):
        entry.entity_id = str(record.id)


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


def _link_call():  # type: ignore[no-untyped-def]
    calls = Call.__table__
    return update(calls).where(calls.c.linkedid == bindparam("call_linkedid"), calls.c.customer_id.is_(None))


def _select(table: Table, name: str, keys: tuple[str, ...], *linked: Any) -> Select:
    """``SELECT CAST(:name_k AS type) …, linked …`` — typed, so PostgreSQL knows each parameter."""
    cols = [cast(bindparam(f"{name}_{k}", type_=table.c[k].type), table.c[k].type).label(k) for k in keys]
    return select(*cols, *linked)


@functools.lru_cache(maxsize=32)
def _statement(shape: tuple[tuple[str, tuple[str, ...]], ...], link_call: bool) -> Select:
    keys = dict(shape)
    it, ot, et, at = (IntakeRecord.__table__, WorkOrder.__table__, OrderEvent.__table__, AuditEntry.__table__)
    audit_rows: list[Select] = []
    out: list[Any] = []
    first: Any = None
    if "i" in keys:
        i = first = insert(it).from_select(list(keys["i"]), _select(it, "i", keys["i"])).returning(it.c.id).cte("i")
        audit_rows.append(_select(at, "a0", keys["a0"], cast(i.c.id, String).label("entity_id")).select_from(i))
        out.append(i.c.id)
    if "o" in keys:
        source = (_select(ot, "o", keys["o"], i.c.id).select_from(i) if "i" in keys
                  else _select(ot, "o", keys["o"]))
        columns = [*keys["o"], "intake_id"] if "i" in keys else list(keys["o"])
        o = insert(ot).from_select(columns, source).returning(ot.c.id).cte("o")
        e = (insert(et).from_select([*keys["e"], "order_id"], _select(et, "e", keys["e"], o.c.id).select_from(o))
             .returning(et.c.id).cte("e"))
        audit_rows.append(_select(at, "a1", keys["a1"], cast(o.c.id, String).label("entity_id")).select_from(o))
        out += [o.c.id, e.c.id]
        stmt = (select(*out).select_from(i).join(o, true()) if first is not None
                else select(*out).select_from(o)).join(e, true())
    else:
        stmt = select(*out).select_from(first)
    audit_keys = keys["a0" if "a0" in keys else "a1"]
    a = (insert(at).from_select([*audit_keys, "entity_id"], union_all(*audit_rows) if len(audit_rows) > 1
                                else audit_rows[0]).returning(at.c.id).cte("a"))
    ctes = [a]
    if link_call:
        ctes.append(_link_call().values(customer_id=bindparam("call_customer_id"))
                    .returning(literal(1)).cte("c"))
    return stmt.add_cte(*ctes)

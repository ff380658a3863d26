"""Form numbers: prefix + local date + serial (``WO20261122-001``), gap-free per prefix and day.

The serial comes from ``number_counters`` through one upsert (``INSERT … ON CONFLICT DO UPDATE
SET last = last + 1 RETURNING last``) executed **inside the transaction that inserts the record**:
on PostgreSQL the counter row stays locked until that transaction ends, so concurrent savers
queue on it and a rolled-back save gives its serial back; SQLite serialises writers anyway.
Call :func:`next_number` as late as possible in the transaction (right before the insert and the
commit) so the row is held for the shortest time.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, bindparam, literal, select, true, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.records import NumberCounter

PREFIXES = ("CR", "WO", "AP", "OS", "CS", "DA")


def format_number(prefix: str, day: str, serial: int) -> str:
    """``("WO", "20261122", 7)`` → ``WO20261122-007``; more than 999 a day widens the serial."""
    return f"{prefix}{day}-{serial:03d}"


def local_day(now: dt.datetime, tz: ZoneInfo) -> str:
    """The centre's calendar day of ``now`` (aware) as YYYYMMDD."""
    return now.astimezone(tz).strftime("%Y%m%d")


async def next_number(session: AsyncSession, prefix: str, now: dt.datetime, tz: ZoneInfo) -> str:
    """The next number for ``prefix`` on ``now``'s local day, reserved in ``session``'s transaction."""
    return (await next_numbers(session, (prefix,), now, tz))[prefix]


async def next_numbers(session: AsyncSession, prefixes: tuple[str, ...], now: dt.datetime,
                       tz: ZoneInfo) -> dict[str, str]:
    """The next number of each of ``prefixes`` on ``now``'s local day, reserved in ``session``'s
    transaction by one statement (one round trip for an intake and its work order). The counter
    rows are locked in the fixed order of :data:`PREFIXES`, whatever order they are asked in, so
    two savers never wait on each other's rows crosswise."""
    stmt, params = counters_upsert(session.bind.dialect.name, prefixes, local_day(now, tz))
    rows = (await session.execute(stmt, params)).all()
    serials = {prefix: last for prefix, last in rows}
    return {p: format_number(p, params["day"], serials[p]) for p in prefixes}


def counters_upsert(dialect: str, prefixes: tuple[str, ...], day: str) -> tuple[Insert, dict[str, str]]:
    """The statement that moves the counters of ``prefixes`` on ``day`` (returning ``prefix,
    last``) and its parameters; also a CTE of ``callcenter.orders.creation``'s one statement."""
    unknown = [p for p in prefixes if p not in PREFIXES]
    if unknown or not prefixes or len(set(prefixes)) != len(prefixes):
        raise ValueError(f"number prefixes must be distinct and known: {prefixes!r}")
    ordered = tuple(p for p in PREFIXES if p in prefixes)
    return _upsert(dialect, len(ordered)), {"day": day, **{f"p{i}": p for i, p in enumerate(ordered)}}


@functools.lru_cache(maxsize=16)
def _upsert(dialect: str, n: int) -> Insert:
    """``INSERT … SELECT :p0, :day, 1 UNION ALL … ON CONFLICT (prefix, day) DO UPDATE SET
    last = last + 1 RETURNING prefix, last``, built once per dialect and size. (``SELECT``
    rather than a multi-row ``VALUES``: SQLAlchemy does not cache the compiled form of the
    latter, and compiling it cost more than the statement.)"""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = NumberCounter.__table__  # Core: the ORM's bulk mode would drop the named parameters
    rows = [select(bindparam(f"p{i}", type_=String), bindparam("day", type_=String), literal(1, Integer))
            for i in range(n)]
    source = union_all(*rows) if n > 1 else rows[0]
    # "WHERE true": SQLite's parser needs it to tell the upsert from a join's ON.
    return (insert(table).from_select(["prefix", "day", "last"], source.where(true()) if n == 1 else source)
            .on_conflict_do_update(index_elements=["prefix", "day"], set_={"last": table.c.last + 1})
            .returning(table.c.prefix, table.c.last))

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
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
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
    if prefix not in PREFIXES:
        raise ValueError(f"unknown number prefix {prefix!r}")
    day = local_day(now, tz)
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(NumberCounter).values(prefix=prefix, day=day, last=1)
            .on_conflict_do_update(index_elements=["prefix", "day"], set_={"last": NumberCounter.last + 1})
            .returning(NumberCounter.last))
    serial = (await session.execute(stmt)).scalar_one()
    return format_number(prefix, day, serial)

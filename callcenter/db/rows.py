"""Writing new records through Core on the hot paths (a work order's creation, a dispatch
decision): one prepared ``INSERT`` per table, built once, executed with the row's values.

The unit of work's flush of one new record costs about 1 ms of CPU here (more than the statement
itself), and building ``insert(table).values({...})`` anew for each row costs another ~0.3 ms of
coercion and cache-key work; a statement built once with the values passed at execution costs
neither. The records stay outside the session (transient): attribute holders for the answer.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def row_values(obj: Any) -> dict[str, Any]:
    """The row of the new ``obj``: what it was given, and the column defaults (set on it too)."""
    values: dict[str, Any] = {}
    for c in obj.__table__.columns:
        if c.key in obj.__dict__:
            values[c.key] = obj.__dict__[c.key]
        elif c.default is not None and c.default.is_scalar:
            values[c.key] = c.default.arg
            setattr(obj, c.key, c.default.arg)
    return values


@functools.lru_cache(maxsize=64)
def _insert(table: Table, returning_id: bool) -> Insert:
    stmt = insert(table)
    return stmt.returning(table.c.id) if returning_id else stmt


async def insert_row(s: AsyncSession, obj: Any) -> None:
    """``INSERT … RETURNING id`` of the new ``obj`` in ``s``'s transaction; sets ``obj.id``."""
    table = obj.__table__
    obj.id = (await s.execute(_insert(table, True), row_values(obj))).scalar_one()


async def insert_rows(s: AsyncSession, objs: list[Any]) -> None:
    """The new ``objs`` (one table; their ids are not needed) in one ``executemany``: one round
    trip on PostgreSQL however many rows."""
    if not objs:
        return
    tables = {o.__table__ for o in objs}
    if len(tables) != 1:
        raise ValueError("insert_rows takes records of one table")
    rows = [row_values(o) for o in objs]
    if len({frozenset(r) for r in rows}) != 1:
        for o in objs:  # rows naming different columns cannot share one statement
            await insert_row(s, o)
        return
    await s.execute(_insert(tables.pop(), False), rows)

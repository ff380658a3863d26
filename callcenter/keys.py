"""Key rotation for sealed personal data (``callcenter keys rotate``; ``docs/privacy.md``).

Every ``*_enc`` column of every table is re-encrypted under the current data key, and the
``*_index`` column beside it (same prefix: ``number_enc`` ↔ ``number_index``) re-computed under
the current index key. The columns are found in the table metadata, so a table added later is
rotated too.

* In batches by primary key, one transaction per batch: the tables are never locked for long.
* Idempotent and resumable: a row already under the current keys is left alone, so running it
  again (after a crash, or to check) only reads.
* Safe while the application runs: each update names the ciphertext it read
  (``WHERE id = :id AND enc = :old``), so a row rewritten meanwhile is skipped, not clobbered;
  and lookups query every index key (``vault.indexes``), so callers are found throughout.
* A ciphertext no key opens is counted and reported by table and id, never its content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Column, Table, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.crypto import PhoneVault
from callcenter.db.base import Base

log = logging.getLogger("callcenter.keys")

BATCH = 500


@dataclass(frozen=True, slots=True)
class SealedColumns:
    table: Table
    enc: Column
    index: Column | None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.enc.name}"


@dataclass(slots=True)
class RotationReport:
    scanned: int = 0
    # Rows needing new ciphertext, a new index, or both (in a ``check`` run: still to do).
    rows: int = 0
    reencrypted: int = 0
    reindexed: int = 0
    # Changed by someone else between our read and our write: done by them, or left for next run.
    skipped: int = 0
    # (column, row id) whose ciphertext no configured data key opens.
    unreadable: list[tuple[str, object]] = field(default_factory=list)
    per_column: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"scanned {self.scanned} sealed values, {self.rows} under old keys: "
                f"{self.reencrypted} re-encrypted, "
                f"{self.reindexed} re-indexed, {self.skipped} changed meanwhile, "
                f"{len(self.unreadable)} unreadable")


def sealed_columns() -> list[SealedColumns]:
    """Every ``*_enc`` column with its ``*_index`` partner (if any), in a stable order."""
    import callcenter.db.models  # noqa: F401  (registers every table module)

    found = []
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        if "id" not in table.c:
            continue
        for col in table.c:
            if col.name.endswith("_enc"):
                partner = table.c.get(col.name[:-4] + "_index")
                found.append(SealedColumns(table, col, partner))
    return found


async def rotate(engine: AsyncEngine, vault: PhoneVault, *, batch: int = BATCH, check: bool = False,
                 progress: Callable[[str], None] | None = None) -> RotationReport:
    """Bring every sealed value under the vault's current keys (``check``: only count)."""
    report = RotationReport()
    for cols in sealed_columns():
        before = report.rows
        await _rotate_column(engine, vault, cols, batch, check, report)
        report.per_column[cols.name] = report.rows - before
        if progress is not None:
            progress(f"{cols.name}: {report.per_column[cols.name]} "
                     f"{'to rotate' if check else 'rotated'}")
    log.info("key rotation%s: %s", " check" if check else "", report.summary())
    return report


async def _rotate_column(engine: AsyncEngine, vault: PhoneVault, cols: SealedColumns, batch: int,
                         check: bool, report: RotationReport) -> None:
    table, enc = cols.table, cols.enc
    pk = table.c.id
    wanted = [pk, enc] + ([cols.index] if cols.index is not None else [])
    after: object = None
    stmt = update(table).where(and_(pk == bindparam("_id"), enc == bindparam("_old")))
    while True:
        q = select(*wanted).where(enc != "").order_by(pk).limit(batch)
        if after is not None:
            q = q.where(pk > after)
        async with engine.begin() as conn:
            rows = (await conn.execute(q)).all()
            if not rows:
                return
            after = rows[-1][0]
            changes = []
            for row in rows:
                report.scanned += 1
                change = _change(vault, cols, row, report)
                if change is not None:
                    changes.append(change)
            if changes and not check:
                for change in changes:
                    result = await conn.execute(stmt.values(
                        {k: v for k, v in change.items() if not k.startswith("_")}),
                        {"_id": change["_id"], "_old": change["_old"]})
                    if result.rowcount != 1:
                        report.skipped += 1


def _change(vault: PhoneVault, cols: SealedColumns, row: object,
            report: RotationReport) -> dict[str, object] | None:
    """What to write for one row (None: already under the current keys)."""
    row_id, token = row[0], row[1]  # type: ignore[index]
    try:
        plain = vault.decrypt(token)
    except ValueError:
        report.unreadable.append((cols.name, row_id))
        log.error("key rotation: %s of row %s cannot be opened", cols.name, row_id)
        return None
    change: dict[str, object] = {}
    if vault.needs_reencryption(token):
        change[cols.enc.name] = vault.encrypt(plain)
        report.reencrypted += 1
    if cols.index is not None:
        index = vault.index(plain)
        if row[2] != index:  # type: ignore[index]
            change[cols.index.name] = index
            report.reindexed += 1
    if not change:
        return None
    report.rows += 1
    return {**change, "_id": row_id, "_old": token}

"""Bulk import of customers from CSV or XLSX (a migration from the old after-sales system).

File format
-----------
Read by ``callcenter.imports.tabular`` (CSV in UTF-8/BOM/GBK, comma or tab; XLSX; header aliases).
Chinese or English header names are accepted (see ``COLUMNS``).
Required columns: name/姓名 and phone/电话. A phone cell may hold several numbers separated by
``;`` ``/`` ``,`` ``、`` (also full-width); phone2/备用电话 adds more. Optional: 省/市/区/详细地址,
级别, 备注, and one appliance per row: 品类, 品牌, 型号 (required when any appliance column is
filled), 序列号, 购买日期 (2024-05-20, 2024/5/20, 20240520 or an Excel date), 保修月数 (0–120,
default 12).

What a row does
---------------
* One row = one customer with at most one appliance.
* A row any of whose numbers already belongs to a customer (stored before, or an earlier row of
  this file) is **merged** into that customer: its appliance is added unless that customer
  already has one with the same model, serial and purchase date, and its numbers not yet on
  file are added to that customer. Name and address of the existing customer stay unchanged.
  So importing the same file twice adds nothing the second time.
* A row whose numbers belong to two different customers is rejected.
* Rejected rows are reported by spreadsheet row number (the header is row 1) with the reason;
  a reason never contains a full phone number.
* Rows are saved in batches of ``BATCH_ROWS`` per transaction: a failure loses at most the
  batch being saved, never half a customer.
* Numbers are stored sealed (``callcenter.crypto``) and matched by their blind index under every
  index key, so an import during a key rotation still merges into existing customers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crypto import PhoneVault
from callcenter.customers import validation
from callcenter.customers.validation import AddressInput, ApplianceInput, PhoneInput
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from callcenter.imports import tabular
from callcenter.imports.matching import address_row, chunks, customers_by_number
from callcenter.imports.tabular import (
    APPLIANCE_COLUMNS,
    APPLIANCE_FIELDS,
    BATCH_ROWS,
    PERSON_COLUMNS,
)
from callcenter.settings import Settings

__all__ = ["BATCH_ROWS", "COLUMNS", "CustomerImportReport", "ImportReport", "import_customers",
           "parse_row"]

# Canonical field → accepted header spellings (compared lower-cased, spaces and _ removed).
COLUMNS: dict[str, tuple[str, ...]] = {
    **PERSON_COLUMNS,
    "level": ("level", "级别", "客户级别", "客户等级"),
    "remarks": ("remarks", "remark", "note", "notes", "备注"),
    **APPLIANCE_COLUMNS,
}
REQUIRED = {"name": "name/姓名", "phone": "phone/电话"}


@dataclass
class CustomerImportReport(tabular.Report):
    KIND = "customers"
    COUNTS = (("loaded", "导入"), ("merged", "合并"))

    loaded: int = 0  # rows that created a customer
    merged: int = 0  # rows added to a customer who already had one of their numbers


ImportReport = CustomerImportReport  # the name earlier code imports


@dataclass(frozen=True, slots=True)
class RowInput:
    """One valid row, ready to save."""

    row: int
    name: str
    level: str
    remarks: str
    phones: tuple[PhoneInput, ...]
    address: AddressInput | None
    appliance: ApplianceInput | None


def parse_row(row: int, cells: dict[str, object], *, local_area_code: str,
              today: dt.date) -> RowInput:
    """Check one row (pure); raises ValidationFailed whose reason names the column."""
    phones = tabular.parse_phones(cells, local_area_code)
    cell = tabular.cell_text
    return RowInput(
        row=row,
        name=tabular.text(cells, "name", max_len=64, required=True),
        level=tabular.text(cells, "level", max_len=16),
        remarks=tabular.text(cells, "remarks", max_len=2000, multiline=True),
        phones=phones,
        address=validation.address({k: cell(cells.get(k)) or "" for k in tabular.ADDRESS_FIELDS},
                                   "address"),
        appliance=validation.appliance({k: cell(cells.get(k)) for k in APPLIANCE_FIELDS},
                                       "appliance", today)
        if tabular.has_any(cells, APPLIANCE_FIELDS) else None,
    )


# ---------------------------------------------------------------------------------------------
# Saving


@dataclass(eq=False)
class _Target:
    """A customer rows are added to: a new one (id None until inserted) or a stored one."""

    id: int | None
    row: RowInput | None = None
    numbers: set[str] = field(default_factory=set)
    new_phones: list[PhoneInput] = field(default_factory=list)
    appliances: list[ApplianceInput] = field(default_factory=list)
    appliance_keys: set[tuple[str, str, dt.date | None]] = field(default_factory=set)


def _appliance_key(model: str, serial: str, purchase_date: dt.date | None) -> tuple[str, str, dt.date | None]:
    return model.strip().lower(), serial.strip().lower(), purchase_date


async def _save_batch(session: AsyncSession, rows: list[RowInput], report: CustomerImportReport,
                      created_at: dt.datetime, vault: PhoneVault) -> None:
    owner: dict[str, _Target] = {}
    stored: dict[int, _Target] = {}
    found = await customers_by_number(session, vault, (p.number for r in rows for p in r.phones))
    for number, cid in sorted(found.items(), key=lambda item: item[1]):
        target = stored.setdefault(cid, _Target(id=cid))
        target.numbers.add(number)
        owner[number] = target
    for chunk in chunks(sorted(stored)):
        for a in await session.execute(
                select(Appliance.customer_id, Appliance.model, Appliance.serial, Appliance.purchase_date)
                .where(Appliance.customer_id.in_(chunk))):
            stored[a.customer_id].appliance_keys.add(_appliance_key(a.model, a.serial, a.purchase_date))

    new: list[_Target] = []
    touched: dict[int, _Target] = {}  # id(target) → target: each one written once
    for r in rows:
        targets = {id(owner[p.number]): owner[p.number] for p in r.phones if p.number in owner}
        if len(targets) > 1:
            report.rejected.append((r.row, "phone: numbers belong to different customers"))
            continue
        if targets:
            target = next(iter(targets.values()))
            report.merged += 1
        else:
            target = _Target(id=None, row=r)
            new.append(target)
            report.loaded += 1
        touched[id(target)] = target
        for p in r.phones:
            if p.number not in target.numbers:
                target.numbers.add(p.number)
                target.new_phones.append(p)
                owner[p.number] = target
        a = r.appliance
        if a is not None and _appliance_key(a.model, a.serial, a.purchase_date) not in target.appliance_keys:
            target.appliance_keys.add(_appliance_key(a.model, a.serial, a.purchase_date))
            target.appliances.append(a)

    if new:
        customers = Customer.__table__
        values = [{"name": t.row.name, "level": t.row.level,  # type: ignore[union-attr]
                   "remarks": t.row.remarks, "created_at": created_at} for t in new]  # type: ignore[union-attr]
        if session.bind.dialect.name == "sqlite":
            # SQLite gives RETURNING rows in no promised order, and SQLAlchemy's ordered mode there
            # is one statement per row (100× slower). One INSERT statement assigns rowids in
            # ascending order of its VALUES rows (writers are serialised), so sorted ids match.
            ids = sorted((await session.execute(insert(customers).returning(customers.c.id),
                                                values)).scalars().all())
        else:
            ids = list((await session.execute(
                insert(customers).returning(customers.c.id, sort_by_parameter_order=True),
                values)).scalars().all())
        for t, cid in zip(new, ids, strict=True):
            t.id = cid
    phones = [{"customer_id": t.id, "number_index": s.index, "number_enc": s.enc,
               "masked": s.masked, "kind": p.kind}
              for t in touched.values() for p in t.new_phones for s in [vault.seal(p.number)]]
    addresses = [address_row(t.id, a)  # type: ignore[arg-type]
                 for t in new if (a := t.row.address) is not None]  # type: ignore[union-attr]
    appliances = [{"customer_id": t.id, "category": a.category, "brand": a.brand, "model": a.model,
                   "serial": a.serial, "purchase_date": a.purchase_date,
                   "warranty_months": a.warranty_months} for t in touched.values() for a in t.appliances]
    for model, rows_ in ((CustomerPhone, phones), (Address, addresses), (Appliance, appliances)):
        if rows_:
            await session.execute(insert(model.__table__), rows_)  # Core executemany: no ORM cost


async def import_customers(sessionmaker: async_sessionmaker[AsyncSession], path: Path | str,
                           settings: Settings, *, vault: PhoneVault | None = None,
                           now: dt.datetime | None = None, batch_rows: int = BATCH_ROWS,
                           dry_run: bool = False, actor_id: int | None = None,
                           via: str = "") -> CustomerImportReport:
    """Import ``path`` (CSV or XLSX); see the module text for the rules.

    ``vault``: the phone keys (default: ``settings.phone_vault()``). ``dry_run``: report what
    would happen, save nothing. ``actor_id`` / ``via``: who imports, for the audit log.

    ``now`` (aware; default the current time) stamps ``created_at`` and, as a date in
    ``settings.tz``, bounds purchase dates. Reading the file runs in a worker thread, batch by
    batch. Cancelled: the batch being saved is rolled back; earlier batches stay.
    """
    now = now or dt.datetime.now(dt.UTC)
    vault = vault or settings.phone_vault()
    source = tabular.Source(COLUMNS, REQUIRED, functools.partial(
        parse_row, local_area_code=settings.local_area_code, today=now.astimezone(settings.tz).date()))

    async def save(session: AsyncSession, rows: list[RowInput], report: CustomerImportReport) -> None:
        await _save_batch(session, rows, report, now.astimezone(dt.UTC), vault)

    return await tabular.run_import(sessionmaker, Path(path), source, save,
                                    CustomerImportReport(dry_run=dry_run), now=now,
                                    batch_rows=batch_rows, actor_id=actor_id, via=via)


def main(argv: list[str] | None = None) -> int:
    """``python -m callcenter.customers.importer FILE [--database-url URL]``.

    Exit status 0 when something was imported or nothing was rejected, else 1.
    """
    from callcenter.db.engine import make_engine, make_sessionmaker
    from callcenter.settings import SettingsError

    parser = argparse.ArgumentParser(description="Import customers from CSV or XLSX")
    parser.add_argument("file", type=Path)
    parser.add_argument("--database-url", help="default: CALLCENTER_DATABASE_URL")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"callcenter: {e}", file=sys.stderr)
        return 2

    async def run() -> CustomerImportReport:
        engine = make_engine(args.database_url or settings.database_url)
        try:
            return await import_customers(make_sessionmaker(engine), args.file, settings, via="cli")
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    print("\n".join(report.lines()))
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())

"""Bulk import of customers from CSV or XLSX (a migration from the old after-sales system).

File format
-----------
The first non-empty row is the header; Chinese or English names are accepted (see ``COLUMNS``).
Required columns: name/姓名 and phone/电话. A phone cell may hold several numbers separated by
``;`` ``/`` ``,`` ``、`` (also full-width); phone2/备用电话 adds more. Optional: 省/市/区/详细地址,
级别, 备注, and one appliance per row: 品类, 品牌, 型号 (required when any appliance column is
filled), 序列号, 购买日期 (2024-05-20, 2024/5/20, 20240520 or an Excel date), 保修月数 (0–120,
default 12). CSV: UTF-8 with or without BOM, else GBK (read as GB18030, its superset); comma-
or tab-separated. XLSX: the first sheet, read in openpyxl's read-only mode.

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
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import csv
import datetime as dt
import itertools
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.customers import validation
from callcenter.customers.phones import normalise
from callcenter.customers.validation import AddressInput, ApplianceInput, PhoneInput
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from callcenter.errors import ValidationFailed
from callcenter.privacy import mask_phone
from callcenter.settings import Settings

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
# Numbers per IN (...) list: well under SQLite's and asyncpg's bind-parameter limits.
IN_CHUNK = 500

# Canonical field → accepted header spellings (compared lower-cased, spaces and _ removed).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "customer", "customername", "姓名", "客户姓名", "客户名称", "名字", "联系人"),
    "phone": ("phone", "phones", "mobile", "tel", "telephone", "电话", "手机", "手机号", "手机号码",
              "联系电话", "电话号码"),
    "phone2": ("phone2", "tel2", "mobile2", "电话2", "备用电话", "其他电话", "固定电话", "座机"),
    "province": ("province", "省", "省份"),
    "city": ("city", "市", "城市"),
    "district": ("district", "county", "区", "区县", "县区", "区/县"),
    "detail": ("detail", "address", "street", "详细地址", "地址", "街道地址"),
    "level": ("level", "级别", "客户级别", "客户等级"),
    "remarks": ("remarks", "remark", "note", "notes", "备注"),
    "category": ("category", "品类", "产品类别", "类别", "产品品类"),
    "brand": ("brand", "品牌"),
    "model": ("model", "型号", "产品型号", "机型"),
    "serial": ("serial", "sn", "serialnumber", "serialno", "序列号", "机身编码", "条码", "产品编号"),
    "purchase_date": ("purchasedate", "purchased", "购买日期", "购机日期", "购买时间"),
    "warranty_months": ("warrantymonths", "warranty", "保修月数", "保修期(月)", "保修期（月）", "保修期"),
}
APPLIANCE_FIELDS = ("category", "brand", "model", "serial", "purchase_date", "warranty_months")
_HEADER_INDEX = {spelling: key for key, names in COLUMNS.items() for spelling in names}
_PHONE_SPLIT = re.compile(r"[;/,，；、|]+")


@dataclass
class ImportReport:
    loaded: int = 0  # rows that created a customer
    merged: int = 0  # rows added to a customer who already had one of their numbers
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)

    def summary(self) -> str:
        n = len(self.rejected)
        return (f"导入 {self.loaded} 条，合并 {self.merged} 条，拒绝 {n} 条 / "
                f"loaded {self.loaded}, merged {self.merged}, rejected {n}")


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


def _header_key(cell: object) -> str | None:
    text = "" if cell is None else str(cell)
    return _HEADER_INDEX.get(re.sub(r"[\s_\-]+", "", text.strip().lstrip("\ufeff")).lower())


def _cell_text(value: object) -> object:
    """Spreadsheet cells as the validators expect them: numbers as digit strings, dates kept."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return value


def parse_row(row: int, cells: dict[str, object], *, local_area_code: str,
              today: dt.date) -> RowInput:
    """Check one row (pure); raises ValidationFailed whose reason names the column."""
    raw_numbers = []
    for column in ("phone", "phone2"):
        value = _cell_text(cells.get(column))
        if value is None:
            continue
        raw_numbers += [p.strip() for p in _PHONE_SPLIT.split(str(value)) if p.strip()]
    unique: dict[str, str] = {}
    for raw in raw_numbers:
        found = normalise(raw, local_area_code)
        unique.setdefault(found.number if found else f"?{len(unique)}", raw)  # same number twice: once
    if not unique:
        raise ValidationFailed("phone", "no phone number")
    given = list(unique.values())
    try:
        phones = validation.phones(given, "phone", local_area_code)
    except ValidationFailed as e:
        field_name, reason = e.details["field"], e.details["reason"]
        masked = mask_phone(given[int(field_name[6:-1])]) if field_name.startswith("phone[") else ""
        if masked:  # name the number, masked, so the operator can find the cell
            reason += f" ({masked})"
        raise ValidationFailed(field_name, reason) from None
    has_appliance = any(cells.get(f) not in (None, "") for f in APPLIANCE_FIELDS)
    return RowInput(
        row=row,
        name=validation.text(_cell_text(cells.get("name")), "name", max_len=64, required=True),
        level=validation.text(_cell_text(cells.get("level")), "level", max_len=16),
        remarks=validation.text(_cell_text(cells.get("remarks")), "remarks", max_len=2000,
                                multiline=True),
        phones=phones,
        address=validation.address({k: _cell_text(cells.get(k)) or "" for k in
                                    ("province", "city", "district", "detail")}, "address"),
        appliance=validation.appliance({k: _cell_text(cells.get(k)) for k in APPLIANCE_FIELDS},
                                       "appliance", today) if has_appliance else None,
    )


# ---------------------------------------------------------------------------------------------
# Reading files


def _encoding(path: Path) -> str:
    """utf-8-sig when the whole file decodes as UTF-8, else gb18030 (GBK's superset)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _csv_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    with path.open(encoding=_encoding(path), newline="") as f:
        first = f.readline()
        f.seek(0)
        delimiter = "\t" if "\t" in first and "," not in first else ","
        reader = csv.reader(f, delimiter=delimiter)
        for cells in reader:
            yield reader.line_num, list(cells)


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        book.close()


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, object]] | tuple[int, str]]:
    """(row number, {field: value}) per data row; a (1, reason) first if the header is unusable."""
    raw = _xlsx_rows(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _csv_rows(path)
    keys: list[str | None] | None = None
    for number, cells in raw:
        if not any(c not in (None, "") for c in cells):
            continue  # blank line
        if keys is None:
            keys = [_header_key(c) for c in cells]
            missing = [label for k, label in (("name", "name/姓名"), ("phone", "phone/电话"))
                       if k not in keys]
            if missing:
                yield number, f"header: missing column {', '.join(missing)}"
                return
            continue
        yield number, {k: v for k, v in zip(keys, cells, strict=False) if k is not None}


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


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def _save_batch(session: AsyncSession, rows: list[RowInput], report: ImportReport,
                      created_at: dt.datetime) -> None:
    numbers = sorted({p.number for r in rows for p in r.phones})
    owner: dict[str, _Target] = {}
    stored: dict[int, _Target] = {}
    for chunk in _chunks(numbers, IN_CHUNK):
        for number, cid in await session.execute(
                select(CustomerPhone.number, CustomerPhone.customer_id)
                .where(CustomerPhone.number.in_(chunk)).order_by(CustomerPhone.customer_id)):
            target = stored.setdefault(cid, _Target(id=cid))
            target.numbers.add(number)
            owner.setdefault(number, target)
    for chunk in _chunks(sorted(stored), IN_CHUNK):
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
    phones = [{"customer_id": t.id, "number": p.number, "raw": p.raw[:64], "kind": p.kind}
              for t in touched.values() for p in t.new_phones]
    addresses = [{"customer_id": t.id, "province": a.province, "city": a.city,
                  "district": a.district, "detail": a.detail}
                 for t in new if (a := t.row.address) is not None]  # type: ignore[union-attr]
    appliances = [{"customer_id": t.id, "category": a.category, "brand": a.brand, "model": a.model,
                   "serial": a.serial, "purchase_date": a.purchase_date,
                   "warranty_months": a.warranty_months} for t in touched.values() for a in t.appliances]
    for model, rows_ in ((CustomerPhone, phones), (Address, addresses), (Appliance, appliances)):
        if rows_:
            await session.execute(insert(model.__table__), rows_)  # Core executemany: no ORM cost


async def import_customers(sessionmaker: async_sessionmaker[AsyncSession], path: Path | str,
                           settings: Settings, *, now: dt.datetime | None = None,
                           batch_rows: int = BATCH_ROWS) -> ImportReport:
    """Import ``path`` (CSV or XLSX); see the module text for the rules.

    ``now`` (aware; default the current time) stamps ``created_at`` and, as a date in
    ``settings.tz``, bounds purchase dates. Reading the file runs in a worker thread, batch by
    batch. Cancelled: the batch being saved is rolled back; earlier batches stay.
    """
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(settings.tz).date()
    report = ImportReport()
    rows = read_rows(Path(path))
    try:
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(rows, batch_rows))):
            valid = []
            for number, cells in batch:
                if isinstance(cells, str):
                    report.rejected.append((number, cells))
                    continue
                try:
                    valid.append(parse_row(number, cells, local_area_code=settings.local_area_code,
                                           today=today))
                except ValidationFailed as e:
                    report.rejected.append((number, f"{e.details['field']}: {e.details['reason']}"))
            if valid:
                async with sessionmaker() as session, session.begin():
                    await _save_batch(session, valid, report, now.astimezone(dt.UTC))
    finally:
        rows.close()
    log.info("customer import: %s", report.summary())
    return report


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

    async def run() -> ImportReport:
        engine = make_engine(args.database_url or settings.database_url)
        try:
            return await import_customers(make_sessionmaker(engine), args.file, settings)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    print(report.summary())
    for row, reason in report.rejected:
        print(f"  row {row}: {reason}")
    return 0 if report.loaded or report.merged or not report.rejected else 1


if __name__ == "__main__":
    sys.exit(main())

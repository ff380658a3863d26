"""What every import shares: reading CSV/XLSX, header aliases, cell conversion, the report and
the batch loop.

Files
-----
* CSV: UTF-8 with or without BOM, else GBK (read as GB18030, its superset); comma- or
  tab-separated (tab when the first line has tabs and no comma).
* XLSX: the first sheet, in openpyxl's read-only mode.
* The first non-empty row is the header. A header cell is compared with each importer's aliases
  lower-cased with spaces, ``_`` and ``-`` removed (``Purchase date`` = ``purchase_date`` =
  ``purchasedate``); unknown columns are ignored. Blank rows are skipped.
* Rows are numbered as the spreadsheet shows them (the header is row 1; a CSV cell holding a
  line break counts the lines it spans), so a rejected row can be found in the file.

Cells
-----
XLSX cells arrive typed: integral numbers become digit strings (a phone typed as a number),
date cells arrive as datetimes. Dates and times (:func:`parse_datetime`) also accept an Excel
serial number (days since 1899-12-30) from a cell that lost its date format. Money
(:func:`parse_fen`) is integer fen in a column named for fen (``上门费(分)``), else yuan with at
most two decimals (``128.50``, ``¥1,280``).

Batches
-------
:func:`run_import` reads ``batch_rows`` rows at a time in a worker thread, checks each row (pure),
and saves the valid ones in one transaction per batch together with an audit entry for the batch
(who, kind, counts: never personal data). A batch that meets a concurrent change (a unique
index: someone saved the same number meanwhile) is rolled back and retried one row per
transaction, so only the conflicting row is rejected and nothing is half-written. A dry run saves
everything in one transaction and rolls it back at the end, so its report says exactly what the
import would do; it holds the rows it wrote (new customers' numbers) until it ends.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import datetime as dt
import itertools
import logging
import re
import secrets
import zipfile
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import audit as audit_log
from callcenter.customers import validation
from callcenter.customers.phones import normalise
from callcenter.customers.validation import PhoneInput
from callcenter.errors import ValidationFailed
from callcenter.privacy import mask_phone

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
# Rejected rows and notes printed / answered in full; the counts always cover all of them.
REPORT_LIMIT = 200

Columns = Mapping[str, Sequence[str]]

# The customer's columns, shared by every import that names a customer.
PERSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "customer", "customername", "姓名", "客户姓名", "客户名称", "名字", "联系人"),
    "phone": ("phone", "phones", "mobile", "tel", "telephone", "电话", "手机", "手机号", "手机号码",
              "联系电话", "电话号码"),
    "phone2": ("phone2", "tel2", "mobile2", "电话2", "备用电话", "其他电话", "固定电话", "座机"),
    "province": ("province", "省", "省份"),
    "city": ("city", "市", "城市"),
    "district": ("district", "county", "区", "区县", "县区", "区/县"),
    "detail": ("detail", "address", "street", "详细地址", "地址", "街道地址"),
}
# One appliance per row.
APPLIANCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "category": ("category", "品类", "产品类别", "类别", "产品品类"),
    "brand": ("brand", "品牌"),
    "model": ("model", "型号", "产品型号", "机型"),
    "serial": ("serial", "sn", "serialnumber", "serialno", "序列号", "机身编码", "条码", "产品编号"),
    "purchase_date": ("purchasedate", "purchased", "购买日期", "购机日期", "购买时间"),
    "warranty_months": ("warrantymonths", "warranty", "保修月数", "保修期(月)", "保修期（月）", "保修期"),
}
APPLIANCE_FIELDS = tuple(APPLIANCE_COLUMNS)
PHONE_FIELDS = ("phone", "phone2")
ADDRESS_FIELDS = ("province", "city", "district", "detail")
_PHONE_SPLIT = re.compile(r"[;/,，；、|]+")


# ---------------------------------------------------------------------------------------------
# Reading files


def header_spelling(cell: object) -> str:
    text = "" if cell is None else str(cell)
    return re.sub(r"[\s_\-]+", "", text.strip().lstrip("\ufeff")).lower()


def header_index(columns: Columns) -> dict[str, str]:
    """Normalised spelling → canonical field."""
    return {header_spelling(s): key for key, names in columns.items() for s in names}


def detect_encoding(path: Path) -> str:
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
    with path.open(encoding=detect_encoding(path), newline="") as f:
        first = f.readline()
        f.seek(0)
        delimiter = "\t" if "\t" in first and "," not in first else ","
        reader = csv.reader(f, delimiter=delimiter)
        for cells in reader:
            yield reader.line_num, list(cells)


# An XLSX is a zip: a small upload can inflate to gigabytes (a 200 KB file held one 200 MB cell).
# What its members may inflate to, in all, before a byte is parsed; zipfile never inflates a
# member past its declared size, so the check bounds what reading can take.
MAX_XLSX_UNZIPPED = 64 * 1024**2


def check_xlsx_size(path: Path, limit: int = MAX_XLSX_UNZIPPED) -> None:
    """ValueError unless ``path`` is a zip whose members inflate to at most ``limit`` bytes."""
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise ValueError("not an XLSX (zip) file") from e
    if total > limit:
        raise ValueError(f"XLSX inflates to {total} bytes, more than {limit}")


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    """The first sheet's rows; ValueError for a file that is no readable workbook (broken,
    empty, truncated, too large once inflated) — the callers answer that with a 4xx."""
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_xlsx_size(path)
    unreadable = (zipfile.BadZipFile, zlib.error, ParseError, InvalidFileException, EOFError, IndexError)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except unreadable as e:
        raise ValueError(f"unreadable XLSX ({type(e).__name__})") from e
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    except unreadable as e:
        raise ValueError(f"unreadable XLSX ({type(e).__name__})") from e
    finally:
        book.close()


def is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm")


def read_rows(path: Path, columns: Columns,
              required: Mapping[str, str]) -> Iterator[tuple[int, dict[str, object] | str]]:
    """(row number, {field: value}) per data row; a single (row, reason) if the header lacks a
    ``required`` field (field → how the reason names it, e.g. ``"phone/电话"``)."""
    index = header_index(columns)
    raw = _xlsx_rows(path) if is_xlsx(path) else _csv_rows(path)
    keys: list[str | None] | None = None
    for number, cells in raw:
        if not any(c not in (None, "") for c in cells):
            continue  # blank line
        if keys is None:
            keys = [index.get(header_spelling(c)) for c in cells]
            missing = [label for k, label in required.items() if k not in keys]
            if missing:
                yield number, f"header: missing column {', '.join(missing)}"
                return
            continue
        yield number, {k: v for k, v in zip(keys, cells, strict=False) if k is not None}


# ---------------------------------------------------------------------------------------------
# Cells


def cell_text(value: object) -> object:
    """Spreadsheet cells as the validators expect them: numbers as digit strings, dates kept."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return value


def text(cells: Mapping[str, object], key: str, *, max_len: int, required: bool = False,
         multiline: bool = False) -> str:
    return validation.text(cell_text(cells.get(key)), key, max_len=max_len, required=required,
                           multiline=multiline)


def has_any(cells: Mapping[str, object], keys: Sequence[str]) -> bool:
    return any(cells.get(k) not in (None, "") for k in keys)


# Excel serial day numbers of 1950-01-01 … 2099-12-31: a number in that range in a date column
# is a date cell that lost its format; anything else is not a date.
_SERIAL_MIN, _SERIAL_MAX = 18264, 73050
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def excel_serial(value: object) -> dt.datetime | None:
    """A naive datetime for an Excel serial number (a spreadsheet number, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not _SERIAL_MIN <= value <= _SERIAL_MAX:
        return None
    return _EXCEL_EPOCH + dt.timedelta(seconds=round(value * 86400))


def excel_dates(cells: Mapping[str, object], keys: Sequence[str]) -> dict[str, object]:
    """``cells`` with Excel serial numbers in ``keys`` turned into datetimes."""
    out = dict(cells)
    for k in keys:
        day = excel_serial(out.get(k))
        if day is not None:
            out[k] = day
    return out


_TIME_FORMATS = tuple(f"{d} {t}" for d in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d")
                      for t in ("%H:%M:%S", "%H:%M")) + ("%Y%m%d %H:%M", "%Y%m%d%H%M%S", "%Y%m%d%H%M")
_DAY_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
EARLIEST = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)


def parse_datetime(value: object, key: str, tz: ZoneInfo, *, now: dt.datetime,
                   required: bool = False) -> dt.datetime | None:
    """A date and time (aware UTC) from a cell: a datetime/date cell, an Excel serial number, or
    text ``2024-05-20 14:30[:00]`` (also ``/`` or ``.`` between parts, ISO 8601 with ``T`` and an
    offset). Times without an offset are the centre's (``tz``); a date alone is its midnight.
    Not after ``now``, not before 1980."""
    value = excel_serial(value) or value
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if required:
            raise ValidationFailed(key, "required")
        return None
    when: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        for fmt in _TIME_FORMATS + _DAY_FORMATS:
            try:
                when = dt.datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        if when is None:
            try:
                when = dt.datetime.fromisoformat(value)
            except ValueError:
                pass
    if when is None:
        raise ValidationFailed(key, "not a date and time (expected YYYY-MM-DD HH:MM)")
    when = (when if when.tzinfo else when.replace(tzinfo=tz)).astimezone(dt.UTC)
    if when > now:
        raise ValidationFailed(key, "in the future")
    if when < EARLIEST:
        raise ValidationFailed(key, f"before {EARLIEST.date().isoformat()}")
    return when


_MONEY_JUNK = re.compile(r"[\s,，¥￥元]")
MAX_FEE_FEN = 10_000_000  # 100,000 yuan: more is a typo, not a service fee


def parse_fen(value: object, key: str, *, in_fen: bool) -> int | None:
    """Money as integer fen: ``in_fen`` whole fen, else yuan with at most two decimals. None
    when empty; negative or absurd amounts are refused."""
    if isinstance(value, bool):
        raise ValidationFailed(key, "not an amount")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    raw = repr(value) if isinstance(value, float) else _MONEY_JUNK.sub("", str(value))
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValidationFailed(key, "not an amount") from None
    if not amount.is_finite():
        raise ValidationFailed(key, "not an amount")
    fen = amount if in_fen else amount * 100
    if fen != fen.to_integral_value():
        raise ValidationFailed(key, "whole fen only" if in_fen else "at most two decimals")
    if fen < 0:
        raise ValidationFailed(key, "must not be negative")
    if fen > MAX_FEE_FEN:
        raise ValidationFailed(key, f"at most {MAX_FEE_FEN // 100} yuan")
    return int(fen)


def parse_phones(cells: Mapping[str, object], local_area_code: str,
                 keys: Sequence[str] = PHONE_FIELDS) -> tuple[PhoneInput, ...]:
    """The numbers of a row: each phone cell may hold several, separated by ``;`` ``/`` ``,``
    ``、`` ``|`` (also full-width); a number given twice counts once. A bad number is named
    masked in the reason so the operator can find the cell."""
    raw_numbers = []
    for column in keys:
        value = cell_text(cells.get(column))
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
        return validation.phones(given, "phone", local_area_code)
    except ValidationFailed as e:
        field_name, reason = e.details["field"], e.details["reason"]
        masked = mask_phone(given[int(field_name[6:-1])]) if field_name.startswith("phone[") else ""
        if masked:
            reason += f" ({masked})"
        raise ValidationFailed(field_name, reason) from None


def masked_numbers(phones: Sequence[PhoneInput]) -> str:
    return ", ".join(mask_phone(p.number) for p in phones)


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class Report:
    """What an import did. Subclasses add their counters (int fields) and name them in
    ``COUNTS`` as (field, Chinese label); ``rejected`` and ``notes`` are (row number, text) in
    file order, and never hold a full phone number."""

    KIND: ClassVar[str] = ""
    COUNTS: ClassVar[tuple[tuple[str, str], ...]] = ()

    rejected: list[tuple[int, str]] = field(default_factory=list)
    # Rows imported with a remark (an engineer not found, a number not kept …).
    notes: list[tuple[int, str]] = field(default_factory=list)
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name, _ in self.COUNTS}

    def fresh(self) -> Report:
        """An empty report of the same kind (one batch's result, merged on commit)."""
        return type(self)(dry_run=self.dry_run)

    def merge(self, other: Report) -> None:
        for name, _ in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected.extend(other.rejected)
        self.notes.extend(other.notes)

    def summary(self) -> str:
        n = len(self.rejected)
        zh = "，".join(f"{label} {getattr(self, name)} 条" for name, label in self.COUNTS)
        en = ", ".join(f"{name.replace('_', ' ')} {getattr(self, name)}" for name, _ in self.COUNTS)
        line = f"{zh}，拒绝 {n} 条 / {en}, rejected {n}"
        return line + (" (试运行，未保存 / dry run, nothing saved)" if self.dry_run else "")

    def lines(self, limit: int = REPORT_LIMIT) -> list[str]:
        """The summary, then rejected rows and notes (at most ``limit`` of each)."""
        out = [self.summary()]
        for title, items in (("rejected", self.rejected), ("note", self.notes)):
            out += [f"  row {row}: {text}" if title == "rejected" else f"  row {row} ({title}): {text}"
                    for row, text in items[:limit]]
            if len(items) > limit:
                out.append(f"  … and {len(items) - limit} more ({title})")
        return out

    def to_json(self, limit: int = 1000) -> dict[str, Any]:
        return {"kind": self.KIND, "dry_run": self.dry_run, "counts": self.counts(),
                "rejected_count": len(self.rejected), "summary": self.summary(),
                "rejected": [{"row": r, "reason": t} for r, t in self.rejected[:limit]],
                "notes": [{"row": r, "note": t} for r, t in self.notes[:limit]]}

    def ok(self) -> bool:
        """Something was done, or nothing was wrong (the CLI's exit status)."""
        return any(self.counts().values()) or not self.rejected


# ---------------------------------------------------------------------------------------------
# The batch loop

CONFLICT = "conflict: changed by someone else meanwhile; import the file again"

T = TypeVar("T")
R = TypeVar("R", bound=Report)


@dataclass(frozen=True, slots=True)
class Source(Generic[T]):
    """How one kind of file is read: its columns, those required, and the pure row check
    (``parse(row number, cells)`` raising ValidationFailed)."""

    columns: Columns
    required: Mapping[str, str]
    parse: Callable[[int, dict[str, object]], T]


# save(session, valid rows, report of this batch): writes the rows, counts into the report.
Saver = Callable[[AsyncSession, list[T], R], Awaitable[None]]


async def run_import(sessionmaker: async_sessionmaker[AsyncSession], path: Path, source: Source[T],
                     save: Saver[T, R], report: R, *, now: dt.datetime, batch_rows: int = BATCH_ROWS,
                     actor_id: int | None = None, via: str = "") -> R:
    """Read ``path`` batch by batch, check every row, save the valid ones (module text).

    ``report.dry_run``: everything in one transaction, rolled back at the end. ``actor_id`` /
    ``via`` (``cli``, ``http``) go into the audit entries, one per saved batch plus one for the
    whole run. Reading runs in a worker thread. Cancelled: the batch being saved is rolled back,
    earlier batches stay (a dry run rolls back everything)."""
    run = secrets.token_hex(6)
    rows = read_rows(path, source.columns, source.required)
    dry: AsyncSession | None = None
    try:
        if report.dry_run:
            dry = sessionmaker()
            await dry.begin()
        for batch_no in itertools.count(1):
            batch = await asyncio.to_thread(lambda: list(itertools.islice(rows, batch_rows)))
            if not batch:
                break
            valid: list[T] = []
            for number, cells in batch:
                if isinstance(cells, str):
                    report.rejected.append((number, cells))
                    continue
                try:
                    valid.append(source.parse(number, cells))
                except ValidationFailed as e:
                    report.rejected.append((number, f"{e.details['field']}: {e.details['reason']}"))
            if not valid:
                continue
            if dry is not None:
                delta = report.fresh()
                await save(dry, valid, delta)  # type: ignore[arg-type]
                report.merge(delta)
                continue
            await _save_committed(sessionmaker, valid, save, report, now=now, actor_id=actor_id,
                                  audit_detail={"kind": report.KIND, "run": run, "batch": batch_no,
                                                "via": via})
    finally:
        rows.close()
        if dry is not None:
            await dry.rollback()
            await dry.close()
    async with sessionmaker() as s, s.begin():
        audit_log.audit(s, user_id=actor_id, action="import.done", entity="import", entity_id=run,
                        now=now, detail={"kind": report.KIND, "via": via, "dry_run": report.dry_run,
                                         **report.counts(), "rejected": len(report.rejected)})
    log.info("%s import: %s", report.KIND, report.summary())
    return report


async def _save_committed(sessionmaker: async_sessionmaker[AsyncSession], valid: list[T],
                          save: Saver[T, R], report: R, *, now: dt.datetime, actor_id: int | None,
                          audit_detail: dict[str, Any]) -> None:
    async def attempt(rows: list[T]) -> R:
        delta: R = report.fresh()  # type: ignore[assignment]
        async with sessionmaker() as s, s.begin():
            await save(s, rows, delta)
            if any(delta.counts().values()):
                audit_log.audit(s, user_id=actor_id, action="import", entity="import",
                                entity_id=audit_detail["run"], now=now,
                                detail={**audit_detail, **delta.counts()})
        return delta

    try:
        report.merge(await attempt(valid))
        return
    except IntegrityError:
        log.warning("%s import: batch %s met a concurrent change; saving it row by row",
                    report.KIND, audit_detail["batch"])
    for item in valid:
        try:
            report.merge(await attempt([item]))
        except IntegrityError:
            report.rejected.append((_row_of(item), CONFLICT))
    report.rejected.sort(key=lambda r: r[0])


def _row_of(item: object) -> int:
    return int(getattr(item, "row", 0))

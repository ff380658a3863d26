"""Bulk import of appliances for customers already on file (CSV or XLSX).

Columns (read by ``callcenter.imports.tabular``; Chinese or English headers): phone/电话
(required; several numbers per cell allowed, phone2/备用电话 adds more), and one appliance per
row: 品类, 品牌, 型号 (required), 序列号, 购买日期 (a date cell, an Excel serial, 2024-05-20,
2024/5/20, 20240520), 保修月数 (0–120, default 12).

What a row does
---------------
* Its numbers name the customer (blind index, every index key). An unknown number is rejected
  (``phone: no customer with this number``, masked); numbers of two customers are rejected.
* The appliance is added to that customer unless it already has it — the same serial, or with
  no serial the same model and purchase date (``callcenter.imports.matching``) — in which case
  the row counts as ``skipped``. So importing the same file twice adds nothing the second time.
* Batches, transactions, dry runs and the audit: ``callcenter.imports.tabular``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crypto import PhoneVault
from callcenter.customers import validation
from callcenter.customers.validation import ApplianceInput, PhoneInput
from callcenter.imports import matching, tabular
from callcenter.settings import Settings

COLUMNS = {"phone": tabular.PERSON_COLUMNS["phone"], "phone2": tabular.PERSON_COLUMNS["phone2"],
           **tabular.APPLIANCE_COLUMNS}
REQUIRED = {"phone": "phone/电话", "model": "model/型号"}


@dataclass
class ApplianceImportReport(tabular.Report):
    KIND = "appliances"
    COUNTS = (("loaded", "新增"), ("skipped", "已有跳过"))

    loaded: int = 0  # appliances added
    skipped: int = 0  # the customer already had it


@dataclass(frozen=True, slots=True)
class ApplianceRow:
    row: int
    phones: tuple[PhoneInput, ...]
    appliance: ApplianceInput


def parse_row(row: int, cells: dict[str, object], *, local_area_code: str,
              today: dt.date) -> ApplianceRow:
    """Check one row (pure); raises ValidationFailed naming the column."""
    cells = tabular.excel_dates(cells, ("purchase_date",))
    return ApplianceRow(row, tabular.parse_phones(cells, local_area_code), parse_appliance(cells, today))


def parse_appliance(cells: dict[str, object], today: dt.date) -> ApplianceInput:
    return validation.appliance({k: tabular.cell_text(cells.get(k)) for k in tabular.APPLIANCE_FIELDS},
                                "appliance", today)


def unknown_customer(phones: tuple[PhoneInput, ...]) -> str:
    return f"phone: no customer with this number ({tabular.masked_numbers(phones)})"


TWO_CUSTOMERS = "phone: numbers belong to different customers"


async def _save(session: AsyncSession, rows: list[ApplianceRow], report: ApplianceImportReport,
                vault: PhoneVault) -> None:
    owners = await matching.customers_by_number(session, vault, (p.number for r in rows for p in r.phones))
    stored = await matching.appliances_of(session, owners.values())
    for r in rows:
        cids = matching.owner_of(r.phones, owners)
        if not cids:
            report.rejected.append((r.row, unknown_customer(r.phones)))
            continue
        if len(cids) > 1:
            report.rejected.append((r.row, TWO_CUSTOMERS))
            continue
        cid = cids.pop()
        theirs = stored.setdefault(cid, [])
        if matching.match_appliance(theirs, r.appliance) is not None:
            report.skipped += 1
            continue
        theirs.append(await matching.add_appliance(session, cid, r.appliance))
        report.loaded += 1


async def import_appliances(sessionmaker: async_sessionmaker[AsyncSession], path: Path | str,
                            settings: Settings, *, vault: PhoneVault | None = None,
                            now: dt.datetime | None = None, batch_rows: int = tabular.BATCH_ROWS,
                            dry_run: bool = False, actor_id: int | None = None,
                            via: str = "") -> ApplianceImportReport:
    """Import ``path`` (module text). ``now`` (aware, default the current time) bounds purchase
    dates as a date in ``settings.tz``; ``vault`` default ``settings.phone_vault()``."""
    now = now or dt.datetime.now(dt.UTC)
    vault = vault or settings.phone_vault()
    source = tabular.Source(COLUMNS, REQUIRED, functools.partial(
        parse_row, local_area_code=settings.local_area_code, today=now.astimezone(settings.tz).date()))
    return await tabular.run_import(
        sessionmaker, Path(path), source, functools.partial(_save, vault=vault),
        ApplianceImportReport(dry_run=dry_run), now=now, batch_rows=batch_rows, actor_id=actor_id,
        via=via)

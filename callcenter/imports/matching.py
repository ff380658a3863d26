"""Finding what a row refers to (customers by number, their appliances and addresses) and adding
what is missing, in the importing transaction. Shared by the appliance and work-order imports
(the customer import keeps its own batched inserts, tuned for 100,000s of new customers).

Appliance identity: the same serial number (case-insensitive) when the row has one; else the
same model (case-insensitive) and purchase date (both may be empty).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.crypto import PhoneVault
from callcenter.customers.validation import AddressInput, ApplianceInput, PhoneInput
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from callcenter.geo.geocoding import default_geocoder

# Values per IN (...) list: well under SQLite's and asyncpg's bind-parameter limits.
IN_CHUNK = 500


def chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def insert_id(session: AsyncSession, table: Any, values: dict[str, Any]) -> int:
    """INSERT one row (Core: no ORM cost) and return its id."""
    return (await session.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()


async def customers_by_number(session: AsyncSession, vault: PhoneVault,
                              numbers: Iterable[str]) -> dict[str, int]:
    """Normalised number → the id of the customer it belongs to (looked up by its blind index
    under every index key; the lowest id if, mid-rotation, two rows hold it)."""
    number_of = {ix: n for n in set(numbers) for ix in vault.indexes(n)}
    found: dict[str, int] = {}
    for chunk in chunks(sorted(number_of)):
        for index, cid in await session.execute(
                select(CustomerPhone.number_index, CustomerPhone.customer_id)
                .where(CustomerPhone.number_index.in_(chunk)).order_by(CustomerPhone.customer_id)):
            found.setdefault(number_of[index], cid)
    return found


def owner_of(phones: Iterable[PhoneInput], owners: dict[str, int]) -> set[int]:
    """The customers a row's numbers belong to (none, one, or — a conflict — several)."""
    return {owners[p.number] for p in phones if p.number in owners}


@dataclass(slots=True)
class StoredAppliance:
    id: int
    model: str
    serial: str
    purchase_date: dt.date | None
    warranty_months: int


async def _by_customer(session: AsyncSession, model: Any, columns: tuple[Any, ...],
                       customer_ids: Iterable[int]) -> dict[int, list[tuple[Any, ...]]]:
    """(id, *columns) of ``model``'s rows per customer, oldest first."""
    out: dict[int, list[tuple[Any, ...]]] = {}
    for chunk in chunks(sorted(set(customer_ids))):
        for cid, *values in await session.execute(
                select(model.customer_id, model.id, *columns)
                .where(model.customer_id.in_(chunk)).order_by(model.id)):
            out.setdefault(cid, []).append(tuple(values))
    return out


async def appliances_of(session: AsyncSession,
                        customer_ids: Iterable[int]) -> dict[int, list[StoredAppliance]]:
    rows = await _by_customer(session, Appliance, (Appliance.model, Appliance.serial,
                                                   Appliance.purchase_date, Appliance.warranty_months),
                              customer_ids)
    return {cid: [StoredAppliance(*r) for r in found] for cid, found in rows.items()}


def match_appliance(stored: Iterable[StoredAppliance], a: ApplianceInput) -> StoredAppliance | None:
    """The customer's appliance this row names (module text), or None."""
    stored = list(stored)
    serial = a.serial.strip().lower()
    if serial:
        return next((s for s in stored if s.serial.strip().lower() == serial), None)
    model = a.model.strip().lower()
    return next((s for s in stored if s.model.strip().lower() == model
                 and s.purchase_date == a.purchase_date), None)


async def add_appliance(session: AsyncSession, customer_id: int, a: ApplianceInput) -> StoredAppliance:
    new_id = await insert_id(session, Appliance.__table__, {
        "customer_id": customer_id, "category": a.category, "brand": a.brand, "model": a.model,
        "serial": a.serial, "purchase_date": a.purchase_date, "warranty_months": a.warranty_months})
    return StoredAppliance(new_id, a.model, a.serial, a.purchase_date, a.warranty_months)


async def add_customer(session: AsyncSession, vault: PhoneVault, *, name: str,
                       phones: Iterable[PhoneInput], created_at: dt.datetime) -> int:
    """A new customer with its numbers (sealed); returns its id."""
    cid = await insert_id(session, Customer.__table__, {
        "name": name, "level": "", "remarks": "", "created_at": created_at})
    rows = [{"customer_id": cid, "number_index": s.index, "number_enc": s.enc, "masked": s.masked,
             "kind": p.kind} for p in phones for s in [vault.seal(p.number)]]
    await session.execute(insert(CustomerPhone.__table__), rows)
    return cid


@dataclass(slots=True)
class StoredAddress:
    id: int
    parts: tuple[str, str, str, str]


async def addresses_of(session: AsyncSession,
                       customer_ids: Iterable[int]) -> dict[int, list[StoredAddress]]:
    rows = await _by_customer(session, Address, (Address.province, Address.city, Address.district,
                                                 Address.detail), customer_ids)
    return {cid: [StoredAddress(r[0], r[1:]) for r in found] for cid, found in rows.items()}


def address_parts(a: AddressInput) -> tuple[str, str, str, str]:
    return a.province, a.city, a.district, a.detail


def address_row(customer_id: int, a: AddressInput) -> dict[str, Any]:
    """The ``addresses`` row of an imported address, placed at its district's centre (the
    bundled table) so dispatch can measure distances; no coordinates if the district is unknown."""
    point = default_geocoder().lookup(a.province, a.city, a.district)
    return {"customer_id": customer_id, "province": a.province, "city": a.city,
            "district": a.district, "detail": a.detail,
            "lat": point.lat if point else None, "lon": point.lon if point else None}


async def add_address(session: AsyncSession, customer_id: int, a: AddressInput) -> StoredAddress:
    new_id = await insert_id(session, Address.__table__, address_row(customer_id, a))
    return StoredAddress(new_id, address_parts(a))

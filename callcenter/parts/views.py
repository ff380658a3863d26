"""The on-site record as the API shows it: masked, with its part lines, fee items and totals
(computed by :mod:`callcenter.parts.fees`, never read from input)."""

from __future__ import annotations

import dataclasses

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.models import User, WorkOrder
from callcenter.db.records import OnsiteRecord
from callcenter.db.stock import OnsitePartLine, Part, StockLocation
from callcenter.parts.fees import (
    FeeCharge,
    PartCharge,
    Totals,
    compute_totals,
    line_total,
)
from callcenter.parts.rules import signature_kind
from callcenter.privacy import mask_name, mask_numbers_in_text

TEXT_FIELDS = ("fault_observed", "root_cause", "solution", "test_result", "customer_feedback")


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: they are UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


async def part_lines(s: AsyncSession, onsite_id: int) -> list[tuple[OnsitePartLine, Part, StockLocation]]:
    rows = await s.execute(
        select(OnsitePartLine, Part, StockLocation)
        .join(Part, Part.id == OnsitePartLine.part_id)
        .join(StockLocation, StockLocation.id == OnsitePartLine.location_id)
        .where(OnsitePartLine.onsite_id == onsite_id).order_by(OnsitePartLine.id))
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def totals_of(record: OnsiteRecord, lines: list[OnsitePartLine]) -> Totals:
    return compute_totals(
        [PartCharge(line.unit_price_fen, line.quantity) for line in lines],
        [FeeCharge(f["kind"], f["amount_fen"], f["quantity"]) for f in record.fee_items or []],
        in_warranty=record.in_warranty)


def apply_totals(record: OnsiteRecord, totals: Totals) -> None:
    record.parts_total_fen = totals.parts_fen
    record.visit_fee_fen = totals.visit_fee_fen
    record.labour_fee_fen = totals.labour_fee_fen
    record.total_fen = totals.total_fen


def _signature(value: str) -> dict[str, str]:
    kind = signature_kind(value)
    return {"kind": kind, "text": mask_name(value) if kind == "typed" else ""}


async def record_json(s: AsyncSession, record: OnsiteRecord, order: WorkOrder) -> dict[str, Any]:
    rows = await part_lines(s, record.id)
    engineer = await s.get(User, record.engineer_id) if record.engineer_id is not None else None
    totals = totals_of(record, [line for line, _, _ in rows])
    if not rows and record.parts_total_fen and totals.parts_fen == 0:
        # Imported from the old system: its parts charge came as one amount, without lines.
        totals = dataclasses.replace(
            totals, parts_fen=record.parts_total_fen, total_fen=totals.total_fen + record.parts_total_fen,
            list_total_fen=totals.list_total_fen + record.parts_total_fen)
    free = record.in_warranty
    return {
        "id": record.id, "number": record.number,
        "order": {"id": order.id, "number": order.number, "status": order.status,
                  "service_type": order.service_type, "warranty": order.warranty},
        "engineer": {"id": record.engineer_id,
                     "name": mask_name(engineer.display_name or engineer.username) if engineer else "",
                     "staff_no": (engineer.staff_no or "") if engineer else ""},
        "category": record.category, "product_model": record.product_model, "serial": record.serial,
        "started_at": utc(record.started_at), "ended_at": utc(record.ended_at),
        **{f: mask_numbers_in_text(getattr(record, f)) for f in TEXT_FIELDS},
        "in_warranty": free,
        "parts": [{"id": line.id, "part_id": part.id, "code": part.code, "name": part.name, "model": part.model,
                   "location_id": loc.id, "location_name": loc.name, "quantity": line.quantity,
                   "unit_price_fen": line.unit_price_fen, "free": line.free, "total_fen": line.total_fen}
                  for line, part, loc in rows],
        "fee_items": [{**f, "free": free, "total_fen": line_total(f["amount_fen"], f["quantity"], free=free)}
                      for f in record.fee_items or []],
        "totals": totals.to_json(),
        "customer_confirmed": record.customer_confirmed,
        "customer_signature": _signature(record.customer_signature),
        "engineer_signature": _signature(record.engineer_signature),
        "signed_at": utc(record.signed_at), "locked": record.signed_at is not None,
        "created_at": utc(record.created_at), "updated_at": utc(record.updated_at),
        "version": record.version,
    }


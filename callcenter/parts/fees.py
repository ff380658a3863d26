"""What an on-site record costs (pure): parts + visit fee + labour, free in warranty.

Money is integer fen (分): sums are exact. The totals are always computed here from the part
lines and the price-list items chosen, never typed by a person or taken from a request.
In warranty (保内) every line is free — marked 免费, charged 0 — but keeps its list price, so
the record still shows what the visit would have cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

VISIT_FEE = "上门费"
LABOUR = "工时费"
FEE_KINDS = (VISIT_FEE, LABOUR)
# Only 保内 is free for the customer; 保外 pays, and 理赔机 (an insurance-claim machine) is
# billed like 保外 (the claim is settled outside the on-site record).
FREE_WARRANTY = "保内"


def is_free(warranty: str) -> bool:
    """True if an order with this warranty status (保内 / 保外 / 理赔机) is free of charge."""
    return warranty == FREE_WARRANTY


def line_total(unit_price_fen: int, quantity: int, *, free: bool) -> int:
    """What one line charges: 0 when free, else unit price × quantity.

    Raises ValueError for a negative price or a quantity below 1 (the services validate input
    before; this is the last guard)."""
    if unit_price_fen < 0:
        raise ValueError("unit price must not be negative")
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    return 0 if free else unit_price_fen * quantity


@dataclass(frozen=True, slots=True)
class PartCharge:
    unit_price_fen: int
    quantity: int


@dataclass(frozen=True, slots=True)
class FeeCharge:
    """A price-list item as chosen: kind 上门费 or 工时费."""

    kind: str
    amount_fen: int
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Totals:
    parts_fen: int
    visit_fee_fen: int
    labour_fee_fen: int
    # parts + visit fee + labour: what the customer pays.
    total_fen: int
    # The same at list prices (what it would cost out of warranty): shown on a free record.
    list_total_fen: int

    def to_json(self) -> dict[str, int]:
        return {"parts_fen": self.parts_fen, "visit_fee_fen": self.visit_fee_fen,
                "labour_fee_fen": self.labour_fee_fen, "total_fen": self.total_fen,
                "list_total_fen": self.list_total_fen}


def compute_totals(parts: Iterable[PartCharge], fees: Iterable[FeeCharge], *, in_warranty: bool) -> Totals:
    """Totals of an on-site record from its part lines and the fee items chosen.

    Raises ValueError for an unknown fee kind, a negative amount or a quantity below 1."""
    parts_fen = parts_list = 0
    for p in parts:
        parts_fen += line_total(p.unit_price_fen, p.quantity, free=in_warranty)
        parts_list += line_total(p.unit_price_fen, p.quantity, free=False)
    by_kind = dict.fromkeys(FEE_KINDS, 0)
    fees_list = 0
    for f in fees:
        if f.kind not in by_kind:
            raise ValueError(f"unknown fee kind {f.kind!r}")
        by_kind[f.kind] += line_total(f.amount_fen, f.quantity, free=in_warranty)
        fees_list += line_total(f.amount_fen, f.quantity, free=False)
    visit, labour = by_kind[VISIT_FEE], by_kind[LABOUR]
    return Totals(parts_fen=parts_fen, visit_fee_fen=visit, labour_fee_fen=labour,
                  total_fen=parts_fen + visit + labour, list_total_fen=parts_list + fees_list)


def yuan(fen: int) -> str:
    """``12850`` → ``"128.50"`` (for display; arithmetic stays in fen)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"

"""Warranty status of an appliance from its purchase date (pure; ``today`` is an argument).

Rules:
  * expiry = purchase date + ``warranty_months`` calendar months; when the target month is
    shorter the day is clamped to its last day (2024-01-31 + 1 month = 2024-02-29,
    2024-02-29 + 12 months = 2025-02-28).
  * The expiry day itself is still covered: "in" while ``today <= expires``, "out" from the
    day after. ``days_left`` counts the whole days from today to the expiry (0 on the last
    covered day); when "out" it is negative, the days since the expiry (-1 the day after).
  * 0 months means covered on the purchase day only (expires = purchase date).
  * No purchase date, or a negative/absent number of months → "unknown", expires and
    days_left None. A purchase date in the future (a typo, a clock off by a day) is taken as
    it is: "in", with more days left than the warranty length.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

IN = "in"
OUT = "out"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Warranty:
    status: str  # "in" | "out" | "unknown"
    expires: dt.date | None  # last covered day
    days_left: int | None  # days from today to `expires`; negative once out

    def to_json(self) -> dict[str, object]:
        return {"status": self.status,
                "expires": self.expires.isoformat() if self.expires else None,
                "days_left": self.days_left}


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months, clamped to the end of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_status(purchase_date: dt.date | None, warranty_months: int | None,
                    today: dt.date) -> Warranty:
    """The warranty of an appliance bought on ``purchase_date`` as seen on ``today``."""
    if purchase_date is None or warranty_months is None or warranty_months < 0:
        return Warranty(UNKNOWN, None, None)
    expires = add_months(purchase_date, warranty_months)
    days_left = (expires - today).days
    return Warranty(IN if days_left >= 0 else OUT, expires, days_left)


# --- The work-order view: 保内 / 保外 / 理赔机 (SA-CR-001, SA-WO-002, SA-AP-003) ---------------

IN_WARRANTY, OUT_OF_WARRANTY, CLAIM = "保内", "保外", "理赔机"
WARRANTY_KINDS = (IN_WARRANTY, OUT_OF_WARRANTY, CLAIM)
# When neither the appliance nor its category says anything.
DEFAULT_MONTHS = 12


def effective_months(appliance_months: int | None, category_months: int | None) -> int:
    """The appliance's own warranty months when it has them (an extended warranty, a special
    contract), else its category's (``product_categories``), else 12."""
    if appliance_months is not None and appliance_months >= 0:
        return appliance_months
    if category_months is not None and category_months >= 0:
        return category_months
    return DEFAULT_MONTHS


def warranty_kind(warranty: Warranty, claim: bool = False) -> str:
    """保内 while covered, 保外 once out — and also when the purchase date is unknown (no proof
    of purchase, no free repair); 理赔机 only when chosen explicitly (an insurance/claim unit)."""
    if claim:
        return CLAIM
    return IN_WARRANTY if warranty.status == IN else OUT_OF_WARRANTY


def fee_note(kind: str, expires: dt.date | None) -> str:
    """The fee line of the appointment form (SA-AP-003), from the warranty."""
    if kind == CLAIM:
        return "理赔机：费用按理赔流程结算，更换配件前先报价"
    if kind == IN_WARRANTY:
        until = f"（至{expires.isoformat()}）" if expires else ""
        return f"保修期内{until}：上门费、人工与配件免费"
    if expires is None:
        return "无购买凭证日期，按保外处理：更换配件前先报价，费用按官方价目表"
    return f"保修已于{expires.isoformat()}到期：更换配件前先报价，费用按官方价目表"

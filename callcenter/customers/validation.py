"""Checking a new customer's fields (pure): the API and the importer share these rules.

Every function raises :class:`callcenter.errors.ValidationFailed` with the field's path
(``name``, ``phones[1]``, ``appliances[0].model``) and a reason that never repeats a full phone
number. Limits follow the columns in ``callcenter.db.models``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from callcenter.customers.phones import is_valid_for_storage, normalise
from callcenter.errors import ValidationFailed
from callcenter.privacy import mask_phone

MAX_PHONES = 5
MAX_APPLIANCES = 20
MAX_WARRANTY_MONTHS = 120
DEFAULT_WARRANTY_MONTHS = 12
# Nobody registers an appliance bought before this for after-sales service.
EARLIEST_PURCHASE = dt.date(1980, 1, 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")


@dataclass(frozen=True, slots=True)
class PhoneInput:
    number: str  # normalised key
    kind: str
    raw: str  # as given, trimmed


@dataclass(frozen=True, slots=True)
class AddressInput:
    province: str
    city: str
    district: str
    detail: str


@dataclass(frozen=True, slots=True)
class ApplianceInput:
    category: str
    brand: str
    model: str
    serial: str
    purchase_date: dt.date | None
    warranty_months: int


@dataclass(frozen=True, slots=True)
class CustomerInput:
    name: str
    level: str
    remarks: str
    phones: tuple[PhoneInput, ...]
    address: AddressInput | None
    appliances: tuple[ApplianceInput, ...]


def text(value: object, field: str, *, max_len: int, required: bool = False,
         multiline: bool = False) -> str:
    """A trimmed string of at most ``max_len`` characters ("" when absent and not required)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise ValidationFailed(field, "required")
    if len(value) > max_len:
        raise ValidationFailed(field, f"at most {max_len} characters")
    if _CONTROL.search(value.replace("\n", "").replace("\t", "") if multiline else value):
        raise ValidationFailed(field, "control characters are not allowed")
    return value


def phones(values: object, field: str, local_area_code: str) -> tuple[PhoneInput, ...]:
    """1–5 storable numbers, normalised, with no number given twice."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationFailed(field, "must be a list of phone numbers")
    if not 1 <= len(values) <= MAX_PHONES:
        raise ValidationFailed(field, f"between 1 and {MAX_PHONES} numbers")
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(values):
        where = f"{field}[{i}]"
        if not isinstance(raw, str):
            raise ValidationFailed(where, "must be a string")
        ok, reason = is_valid_for_storage(raw, local_area_code)
        if not ok:
            raise ValidationFailed(where, reason)
        found = normalise(raw, local_area_code)
        assert found is not None  # is_valid_for_storage said so
        if found.number in seen:
            raise ValidationFailed(where, f"same number as {field}[{seen[found.number]}]",
                                   phone=mask_phone(found.number))
        seen[found.number] = i
        out.append(PhoneInput(found.number, found.kind, raw.strip()))
    return tuple(out)


def address(data: object, field: str) -> AddressInput | None:
    """Address parts; None when absent or all empty."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValidationFailed(field, "must be an object")
    parts = AddressInput(
        province=text(data.get("province"), f"{field}.province", max_len=32),
        city=text(data.get("city"), f"{field}.city", max_len=32),
        district=text(data.get("district"), f"{field}.district", max_len=32),
        detail=text(data.get("detail"), f"{field}.detail", max_len=255),
    )
    return parts if any((parts.province, parts.city, parts.district, parts.detail)) else None


def purchase_date(value: object, field: str, today: dt.date) -> dt.date | None:
    """ISO date (also 2024/5/20, 2024.5.20, 20240520; a date object passes), not after today."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        day = _parse_date(value.strip())
        if day is None:
            raise ValidationFailed(field, "not a date (expected YYYY-MM-DD)")
    else:
        raise ValidationFailed(field, "not a date (expected YYYY-MM-DD)")
    if day > today:
        raise ValidationFailed(field, "in the future")
    if day < EARLIEST_PURCHASE:
        raise ValidationFailed(field, f"before {EARLIEST_PURCHASE.isoformat()}")
    return day


def _parse_date(value: str) -> dt.date | None:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def warranty_months(value: object, field: str) -> int:
    """Whole months 0–120 (a digit string or an integral float from a spreadsheet passes)."""
    if value is None or value == "":
        return DEFAULT_WARRANTY_MONTHS
    if isinstance(value, bool):
        raise ValidationFailed(field, "must be a whole number of months")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise ValidationFailed(field, "must be a whole number of months")
    if not 0 <= value <= MAX_WARRANTY_MONTHS:
        raise ValidationFailed(field, f"between 0 and {MAX_WARRANTY_MONTHS}")
    return value


def appliance(data: object, field: str, today: dt.date) -> ApplianceInput:
    if not isinstance(data, Mapping):
        raise ValidationFailed(field, "must be an object")
    return ApplianceInput(
        category=text(data.get("category"), f"{field}.category", max_len=32),
        brand=text(data.get("brand"), f"{field}.brand", max_len=32),
        model=text(data.get("model"), f"{field}.model", max_len=64, required=True),
        serial=text(data.get("serial"), f"{field}.serial", max_len=64),
        purchase_date=purchase_date(data.get("purchase_date"), f"{field}.purchase_date", today),
        warranty_months=warranty_months(data.get("warranty_months"), f"{field}.warranty_months"),
    )


def customer(data: object, *, local_area_code: str, today: dt.date) -> CustomerInput:
    """A whole new customer from a JSON object; ``today`` bounds purchase dates."""
    if not isinstance(data, Mapping):
        raise ValidationFailed("body", "must be a JSON object")
    raw_appliances = data.get("appliances") or []
    if isinstance(raw_appliances, (str, Mapping)) or not isinstance(raw_appliances, Sequence):
        raise ValidationFailed("appliances", "must be a list")
    if len(raw_appliances) > MAX_APPLIANCES:
        raise ValidationFailed("appliances", f"at most {MAX_APPLIANCES}")
    return CustomerInput(
        name=text(data.get("name"), "name", max_len=64, required=True),
        level=text(data.get("level"), "level", max_len=16),
        remarks=text(data.get("remarks"), "remarks", max_len=2000, multiline=True),
        phones=phones(data.get("phones"), "phones", local_area_code),
        address=address(data.get("address"), "address"),
        appliances=tuple(appliance(a, f"appliances[{i}]", today) for i, a in enumerate(raw_appliances)),
    )

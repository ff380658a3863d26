"""The on-site record's rules (pure): when it may be written, where parts may come from, what
a signature may be, and its times (to the minute).

Where parts come from (decided for this centre): a part issued to an order comes either from
a 配件库 (the parts warehouse) or from the van of **the order's engineer** — never from another
engineer's van, and never from the other warehouse types (成品库 finished goods, 待修库 awaiting
repair, 样品库 samples, 报损库 scrap, 商返库 returns), which hold appliances, not spare parts.
The rule is the same whoever records the issue (the engineer or a supervisor on their behalf).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from zoneinfo import ZoneInfo

from callcenter.errors import ValidationFailed

# The order's statuses in which its on-site record may be created or changed: the engineer is
# on site (服务中) or waiting for a part (待件). Status changes themselves belong to the orders
# slice (callcenter.orders.states); the on-site record only reads the status.
WRITABLE_STATUSES = ("服务中", "待件")
# A signed record may be reopened by a supervisor only while the order is still open.
CLOSED_STATUSES = ("已完成", "已回访", "已取消", "已取")

WAREHOUSE_TYPES = ("成品库", "待修库", "样品库", "报损库", "商返库", "配件库")
PARTS_WAREHOUSE = "配件库"
LOCATION_KINDS = ("warehouse", "van")

# The customer signs within 10 min of finishing (SLA; measured by callcenter.sla, not refused).
SIGN_OFF_WITHIN = dt.timedelta(minutes=10)
# A typed signature is a name; a drawn one a data: URL of a PNG/JPEG/WebP image.
TYPED_SIGNATURE_MAX = 64
DRAWN_SIGNATURE_MAX = 200_000  # characters of the data: URL (about 150 KB of image)
_DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,([A-Za-z0-9+/=]+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Times in the future are refused beyond this slack (a phone's clock a little ahead).
CLOCK_SLACK = dt.timedelta(minutes=5)


def may_issue_from(location_kind: str, warehouse_type: str, van_engineer_id: int | None,
                   order_engineer_id: int | None) -> bool:
    """True if a part for an order of ``order_engineer_id`` may be issued from this location."""
    if location_kind == "warehouse":
        return warehouse_type == PARTS_WAREHOUSE
    return location_kind == "van" and van_engineer_id is not None and van_engineer_id == order_engineer_id


def signature_kind(value: str) -> str:
    """``"none"``, ``"typed"`` or ``"drawn"`` for a stored signature."""
    if not value:
        return "none"
    return "drawn" if value.startswith("data:") else "typed"


def check_signature(value: str, field: str) -> str:
    """The signature as it will be stored: a typed name (1–64 characters, no control
    characters) or a drawn one as ``data:image/png|jpeg|webp;base64,…`` (bounded, valid base64).

    Raises ValidationFailed naming ``field``."""
    value = value.strip()
    if not value:
        raise ValidationFailed(field, "required")
    if value.startswith("data:"):
        if len(value) > DRAWN_SIGNATURE_MAX:
            raise ValidationFailed(field, f"drawn signature larger than {DRAWN_SIGNATURE_MAX} characters")
        m = _DATA_URL.fullmatch(value)
        if m is None:
            raise ValidationFailed(field, "must be a data:image/png, jpeg or webp base64 URL")
        try:
            base64.b64decode(m.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(field, "not valid base64") from None
        return value
    if len(value) > TYPED_SIGNATURE_MAX:
        raise ValidationFailed(field, f"at most {TYPED_SIGNATURE_MAX} characters")
    if _CONTROL.search(value):
        raise ValidationFailed(field, "control characters not allowed")
    return value


def to_minute(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """An aware UTC time to the minute; a naive one is the centre's local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(dt.UTC).replace(second=0, microsecond=0)


def check_times(started_at: dt.datetime | None, ended_at: dt.datetime | None, now: dt.datetime) -> None:
    """Start and end of the visit: not in the future, end not before start.

    Raises ValidationFailed naming ``started_at`` or ``ended_at``."""
    limit = now + CLOCK_SLACK
    if started_at is not None and started_at > limit:
        raise ValidationFailed("started_at", "must not be in the future")
    if ended_at is not None:
        if ended_at > limit:
            raise ValidationFailed("ended_at", "must not be in the future")
        if started_at is not None and ended_at < started_at:
            raise ValidationFailed("ended_at", "must not be before started_at")

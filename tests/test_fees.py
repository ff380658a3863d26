"""Fee rules of the on-site record (pure), as tables: parts + visit fee + labour, in fen, free
in warranty with list prices kept; signatures, times and where parts may come from."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.errors import ValidationFailed
from callcenter.parts.fees import (
    LABOUR,
    VISIT_FEE,
    FeeCharge,
    PartCharge,
    compute_totals,
    is_free,
    line_total,
    yuan,
)
from callcenter.parts.rules import (
    check_signature,
    check_times,
    may_issue_from,
    signature_kind,
    to_minute,
)

P = PartCharge
V = lambda fen, q=1: FeeCharge(VISIT_FEE, fen, q)
L = lambda fen, q=1: FeeCharge(LABOUR, fen, q)


@pytest.mark.parametrize(("parts", "fees", "in_warranty", "expected"), [
    # nothing at all
    ([], [], False, (0, 0, 0, 0, 0)),
    # visit fee only (a diagnosis visit)
    ([], [V(5000)], False, (0, 5000, 0, 5000, 5000)),
    # one capacitor, visit fee, one labour item
    ([P(3500, 1)], [V(5000), L(8000)], False, (3500, 5000, 8000, 16500, 16500)),
    # quantities multiply; two labour items add up
    ([P(3500, 2), P(1299, 3)], [V(5000), L(8000), L(15000, 2)], False,
     (7000 + 3897, 5000, 38000, 7000 + 3897 + 5000 + 38000, 7000 + 3897 + 5000 + 38000)),
    # in warranty: everything free, the list total still shown
    ([P(3500, 2)], [V(5000), L(8000)], True, (0, 0, 0, 0, 20000)),
    ([], [V(5000)], True, (0, 0, 0, 0, 5000)),
    # free items on the price list (0 fen) cost nothing either way
    ([P(0, 4)], [L(0)], False, (0, 0, 0, 0, 0)),
    # large but exact (no float rounding): 99 × 999,999.99 元
    ([P(99_999_999, 99)], [], False, (9_899_999_901, 0, 0, 9_899_999_901, 9_899_999_901)),
])
def test_totals(parts, fees, in_warranty, expected):
    t = compute_totals(parts, fees, in_warranty=in_warranty)
    assert (t.parts_fen, t.visit_fee_fen, t.labour_fee_fen, t.total_fen, t.list_total_fen) == expected
    assert t.total_fen == t.parts_fen + t.visit_fee_fen + t.labour_fee_fen
    assert t.to_json()["total_fen"] == t.total_fen


@pytest.mark.parametrize(("unit", "qty", "free", "total"), [
    (3500, 1, False, 3500), (3500, 3, False, 10500), (3500, 3, True, 0), (0, 1, False, 0),
])
def test_line_total(unit, qty, free, total):
    assert line_total(unit, qty, free=free) == total


@pytest.mark.parametrize(("unit", "qty"), [(-1, 1), (100, 0), (100, -2)])
def test_line_total_refuses_nonsense(unit, qty):
    with pytest.raises(ValueError):
        line_total(unit, qty, free=False)


def test_unknown_fee_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fee kind"):
        compute_totals([], [FeeCharge("材料费", 100)], in_warranty=False)


@pytest.mark.parametrize(("warranty", "free"), [("保内", True), ("保外", False), ("理赔机", False), ("", False)])
def test_only_in_warranty_is_free(warranty, free):
    assert is_free(warranty) is free


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (5, "0.05"), (12850, "128.50"), (-300, "-3.00")])
def test_yuan(fen, text):
    assert yuan(fen) == text


# ---- where parts come from ---------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "wtype", "van_engineer", "order_engineer", "ok"), [
    ("warehouse", "配件库", None, 7, True),
    ("warehouse", "成品库", None, 7, False),
    ("warehouse", "待修库", None, 7, False),
    ("warehouse", "样品库", None, 7, False),
    ("warehouse", "报损库", None, 7, False),
    ("warehouse", "商返库", None, 7, False),
    ("van", "", 7, 7, True),       # the order engineer's own van
    ("van", "", 8, 7, False),      # another engineer's van
    ("van", "", None, 7, False),   # a van nobody drives
    ("van", "", 7, None, False),   # an order without engineer
])
def test_may_issue_from(kind, wtype, van_engineer, order_engineer, ok):
    assert may_issue_from(kind, wtype, van_engineer, order_engineer) is ok


# ---- signatures --------------------------------------------------------------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(("value", "stored", "kind"), [
    ("张三", "张三", "typed"), ("  王小明 ", "王小明", "typed"), (PNG, PNG, "drawn"),
    ("data:image/jpeg;base64,/9j/4AAQ", "data:image/jpeg;base64,/9j/4AAQ", "drawn"),
])
def test_signature_accepted(value, stored, kind):
    assert check_signature(value, "customer_signature") == stored
    assert signature_kind(stored) == kind


@pytest.mark.parametrize(("value", "reason"), [
    ("", "required"), ("   ", "required"),
    ("x" * 65, "at most 64"),
    ("张\x00三", "control characters"),
    ("data:image/svg+xml;base64,PHN2Zz4=", "png, jpeg or webp"),
    ("data:text/html;base64,PHA+", "png, jpeg or webp"),
    ("data:image/png;base64,@@@", "png, jpeg or webp"),
    ("data:image/png;base64,abc", "not valid base64"),
    ("data:image/png;base64," + "A" * 200_000, "larger than"),
])
def test_signature_refused_names_the_field(value, reason):
    with pytest.raises(ValidationFailed) as e:
        check_signature(value, "engineer_signature")
    assert e.value.details["field"] == "engineer_signature"
    assert reason in e.value.details["reason"]


# ---- times -------------------------------------------------------------------------------------

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 6, 30, 45, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2026, 11, 23, 6, 30, 45, 123, tzinfo=dt.UTC), dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC)),
    # naive = the centre's local time (UTC+8)
    (dt.datetime(2026, 11, 23, 14, 5, 59), dt.datetime(2026, 11, 23, 6, 5, tzinfo=dt.UTC)),
    (dt.datetime(2026, 11, 23, 14, 5, tzinfo=SH), dt.datetime(2026, 11, 23, 6, 5, tzinfo=dt.UTC)),
])
def test_to_minute(value, expected):
    assert to_minute(value, SH) == expected


M = dt.timedelta(minutes=1)


@pytest.mark.parametrize(("start", "end", "field"), [
    (NOW - 60 * M, NOW - 5 * M, None),
    (NOW - 60 * M, None, None),
    (None, NOW, None),
    (NOW + 4 * M, None, None),               # a phone clock a little ahead
    (NOW + 10 * M, None, "started_at"),
    (NOW - 60 * M, NOW + 10 * M, "ended_at"),
    (NOW - 5 * M, NOW - 60 * M, "ended_at"),  # ends before it starts
])
def test_check_times(start, end, field):
    if field is None:
        check_times(start, end, NOW)
        return
    with pytest.raises(ValidationFailed) as e:
        check_times(start, end, NOW)
    assert e.value.details["field"] == field

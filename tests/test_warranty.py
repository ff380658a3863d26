"""Warranty status (table tests: dates in, status out; no clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from callcenter.customers.warranty import Warranty, add_months, warranty_status

D = dt.date


@pytest.mark.parametrize(("day", "months", "expected"), [
    (D(2024, 1, 31), 1, D(2024, 2, 29)),
    (D(2023, 1, 31), 1, D(2023, 2, 28)),
    (D(2024, 2, 29), 12, D(2025, 2, 28)),
    (D(2024, 2, 29), 48, D(2028, 2, 29)),
    (D(2024, 3, 31), 1, D(2024, 4, 30)),
    (D(2024, 5, 20), 12, D(2025, 5, 20)),
    (D(2024, 11, 30), 3, D(2025, 2, 28)),
    (D(2024, 12, 15), 1, D(2025, 1, 15)),
    (D(2024, 5, 20), 0, D(2024, 5, 20)),
    (D(2024, 5, 20), 120, D(2034, 5, 20)),
])
def test_add_months(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(("purchase", "months", "today", "expected"), [
    (D(2024, 5, 20), 12, D(2024, 5, 20), Warranty("in", D(2025, 5, 20), 365)),
    (D(2024, 5, 20), 12, D(2025, 5, 19), Warranty("in", D(2025, 5, 20), 1)),
    (D(2024, 5, 20), 12, D(2025, 5, 20), Warranty("in", D(2025, 5, 20), 0)),  # expiry day covered
    (D(2024, 5, 20), 12, D(2025, 5, 21), Warranty("out", D(2025, 5, 20), -1)),
    (D(2022, 8, 15), 12, D(2024, 5, 20), Warranty("out", D(2023, 8, 15), -279)),
    (D(2024, 1, 31), 1, D(2024, 2, 29), Warranty("in", D(2024, 2, 29), 0)),
    (D(2024, 1, 31), 1, D(2024, 3, 1), Warranty("out", D(2024, 2, 29), -1)),
    (D(2024, 5, 20), 0, D(2024, 5, 20), Warranty("in", D(2024, 5, 20), 0)),
    (D(2024, 5, 20), 0, D(2024, 5, 21), Warranty("out", D(2024, 5, 20), -1)),
    (D(2024, 5, 20), 36, D(2026, 1, 1), Warranty("in", D(2027, 5, 20), 504)),
    (D(2025, 1, 1), 12, D(2024, 12, 31), Warranty("in", D(2026, 1, 1), 366)),  # future purchase
    (None, 12, D(2024, 5, 20), Warranty("unknown", None, None)),
    (D(2024, 5, 20), None, D(2024, 5, 20), Warranty("unknown", None, None)),
    (D(2024, 5, 20), -1, D(2024, 5, 20), Warranty("unknown", None, None)),
])
def test_warranty_status(purchase: dt.date | None, months: int | None, today: dt.date,
                         expected: Warranty) -> None:
    assert warranty_status(purchase, months, today) == expected


def test_to_json() -> None:
    assert warranty_status(D(2024, 5, 20), 12, D(2025, 5, 21)).to_json() == {
        "status": "out", "expires": "2025-05-20", "days_left": -1}
    assert warranty_status(None, 12, D(2025, 5, 21)).to_json() == {
        "status": "unknown", "expires": None, "days_left": None}

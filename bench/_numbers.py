"""The seeded customers' phone numbers, shared by the seeder and the simulator runner.

Customer ``i`` (1-based, its id) has the mobile :func:`mobile_of`. The mapping is a bijection
(an affine map mod 10**9 with a multiplier coprime to 10), so 1,000,000 customers get
1,000,000 distinct numbers, and the simulator can draw a caller by drawing an id — no list of a
million strings to ship between processes. Numbers are scattered, so the ``customer_phones``
index order has nothing to do with the id order (as in real data).
"""

from __future__ import annotations

import random

_MULT = 123_456_791  # odd, not a multiple of 5: coprime to 10**9
_ADD = 987_654_321


def mobile_of(customer_id: int) -> str:
    """The normalised 11-digit mobile of seeded customer ``customer_id`` (1-based)."""
    i = customer_id - 1
    return f"1{3 + i % 7}{(i * _MULT + _ADD) % 10**9:09d}"


def dialled_spelling(number: str, rng: random.Random) -> str:
    """How the trunk presents ``number`` as CallerIDNum: mostly national, sometimes with a
    country code or a trunk 0 — every spelling normalises to the same key."""
    r = rng.random()
    if r < 0.6:
        return number
    if r < 0.8:
        return "+86" + number
    if r < 0.9:
        return "0" + number
    return "86" + number


def random_mobile(rng: random.Random) -> str:
    """A mobile that is (with overwhelming probability) no seeded customer's."""
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"

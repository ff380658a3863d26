"""The outbox's time rules (pure: ``now`` is an argument; aware UTC datetimes).

Retries: a retryable failure is tried again 1, 5 and 15 minutes after the failed attempt; the
fourth failure is final. Reminders: see :func:`reminder_due`.
"""

from __future__ import annotations

import datetime as dt

from callcenter.sla.rules import REMINDER_LEAD

MIN = dt.timedelta(minutes=1)
# Delay before attempt n + 1 after attempt n failed (n = 1, 2, 3).
RETRY_DELAYS = (1 * MIN, 5 * MIN, 15 * MIN)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# How long a sender's claim on a row lasts; a send must finish well within it (SEND_TIMEOUT).
LEASE = dt.timedelta(seconds=60)
SEND_TIMEOUT_S = 20.0
# The reminder is queued this long before the SLA reminder deadline (visit − 1 h): the SLA clock
# warns 12 min before that deadline (80 % of its 1-hour window), and a message due exactly at the
# deadline would be sent a sender tick after it (late-met, a breach alert). 15 min leaves a
# retry (+1 min) and several ticks before the warning.
REMINDER_HEADROOM = dt.timedelta(minutes=15)


def retry_at(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try again after attempt number ``attempts`` (1 = the first) failed at ``now``
    with a retryable error; None: no more attempts (the message has failed)."""
    if attempts < 1:
        raise ValueError(f"attempts counts from 1, got {attempts}")
    if attempts > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts - 1]


def reminder_due(window_start: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """When the visit reminder goes out for a visit starting at ``window_start``, booked at
    ``now``: :data:`REMINDER_HEADROOM` before the SLA reminder deadline (``window_start`` − 1 h),
    at once if the booking came later than that but before the deadline, and None (no reminder:
    the booking call itself was less than an hour before the visit) from the deadline on — as the
    SLA reminder clock of a visit booked that late (``callcenter.sla.rules.reminder_window``)."""
    deadline = window_start - REMINDER_LEAD
    if now >= deadline:
        return None
    return max(deadline - REMINDER_HEADROOM, now)

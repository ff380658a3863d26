"""When dispatch acts (pure: ``now`` is an argument).

* An on-site order (上门维修 / 安装 / 退换货) created 待处理 is due for **automatic dispatch** at
  once (the centre's rule: an engineer within 5 minutes of creation). Carry-in (送修) and remote
  support (远程支持) orders are not dispatched to the field.
* The engineer has :data:`ACCEPT_WINDOW` (15 minutes) to accept a dispatched order; silence
  counts as a refusal and the order is matched again at once, without them.
"""

from __future__ import annotations

import datetime as dt

from callcenter.orders import states

ACCEPT_WINDOW = dt.timedelta(minutes=15)
# What a timeout is recorded as (dispatch_refusals.reason / note).
TIMEOUT_REASON, TIMEOUT_NOTE = "其他", "15分钟内未接单"


def auto_dispatch_due(service_type: str, status: str, created_at: dt.datetime) -> dt.datetime | None:
    """When a new order is due for automatic dispatch (None: never automatically)."""
    if service_type in states.ONSITE_KINDS and status == states.PENDING:
        return created_at
    return None


def accept_deadline(dispatched_at: dt.datetime) -> dt.datetime:
    """The last moment the engineer may accept an order dispatched at ``dispatched_at``."""
    return dispatched_at + ACCEPT_WINDOW


def timed_out(accept_due_at: dt.datetime | None, accepted_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an order waiting for its engineer's answer has waited too long: due, unanswered,
    and ``now`` at or past the deadline."""
    return accept_due_at is not None and accepted_at is None and now >= accept_due_at

"""Who may do what, and to which object (pure).

Roles answer "may this kind of user do this at all"; objects answer "this one?". Every endpoint
that takes an id calls :func:`check_order` (or its sibling) with the loaded row, so an engineer
who guesses another engineer's order id gets the same 404 as for an id that does not exist: the
existence of others' records is not disclosed.
"""

from __future__ import annotations

from typing import Protocol

from callcenter.auth.identity import CurrentUser
from callcenter.errors import Forbidden, NotFound

ALL = ("agent", "dispatcher", "engineer", "survey", "supervisor", "admin")

# action → roles that may perform it (before the object check).
ACTIONS: dict[str, tuple[str, ...]] = {
    "intake.create": ("agent", "supervisor", "admin"),
    "intake.read": ("agent", "dispatcher", "supervisor", "admin"),
    "order.create": ("agent", "supervisor", "admin"),
    "order.read": ALL,
    "order.search": ("agent", "dispatcher", "engineer", "survey", "supervisor", "admin"),
    "order.update": ("agent", "dispatcher", "supervisor", "admin"),
    "order.assign": ("dispatcher", "supervisor", "admin"),
    # The engineer's accept / contacted steps (a dispatcher may record them from a phone call).
    "order.accept": ("engineer", "dispatcher", "supervisor", "admin"),
    "engineer.list": ("agent", "dispatcher", "supervisor", "admin"),
    "order.cancel": ("agent", "dispatcher", "supervisor", "admin"),
    "appointment.write": ("engineer", "dispatcher", "agent", "supervisor", "admin"),
    # The free windows of the order's engineer's calendar (callcenter.dispatch.slots_http).
    "appointment.slots": ("engineer", "dispatcher", "supervisor", "admin"),
    "onsite.write": ("engineer", "supervisor", "admin"),
    "onsite.read": ALL,
    # Unlock a signed on-site record (audited with a reason).
    "onsite.reopen": ("supervisor", "admin"),
    "survey.record": ("survey", "supervisor", "admin"),
    # An order's SA-CS-005 and complaint follow-up (callcenter.survey); per-engineer results.
    "survey.read": ("agent", "dispatcher", "survey", "supervisor", "admin"),
    "survey.report": ("survey", "supervisor", "admin"),
    "escalation.take": ("supervisor", "admin"),
    "alerts.read": ("dispatcher", "supervisor", "admin"),
    # The monthly analysis SA-DA-006 (callcenter.analysis): page and exports.
    "report.monthly": ("supervisor", "admin"),
    # The outbox list (GET /api/notifications); a dispatcher only with an order_id.
    "notifications.read": ("dispatcher", "supervisor", "admin"),
    "stock.read": ("engineer", "dispatcher", "supervisor", "admin"),
    "stock.write": ("supervisor", "admin"),
    "catalogue.write": ("admin",),
    # The unmasked view of a name, number or address: audited with a reason.
    "personal.reveal": ("agent", "dispatcher", "engineer", "supervisor", "admin"),
    "audit.read": ("admin",),
    "import.run": ("admin",),
    # Dispatch: engineers' profiles, skills, leave and partner shops; the rules' preview.
    "dispatch.profiles.read": ("dispatcher", "admin"),
    "dispatch.profiles.write": ("admin",),
    "dispatch.preview": ("dispatcher", "supervisor", "admin"),
    # The live wallboard (callcenter.wallboard).
    "wallboard.read": ("supervisor", "admin"),
    # The dispatcher's board (派单台) and the refusal figures.
    "dispatch.board": ("dispatcher", "supervisor", "admin"),
    # Outbound calls (callcenter.outbound): book a callback; the board; cancel and the DNC list.
    "outbound.callback": ("agent", "survey", "supervisor", "admin"),
    "outbound.board": ("survey", "supervisor", "admin"),
    "outbound.manage": ("supervisor", "admin"),
}


class OwnedOrder(Protocol):
    id: int
    engineer_id: int | None


def allowed(user: CurrentUser, action: str) -> bool:
    return user.role in ACTIONS[action]


def require(user: CurrentUser, action: str) -> None:
    """403 unless the user's role may perform ``action``."""
    if not allowed(user, action):
        raise Forbidden("无权限 (your role may not do this)", role=user.role, action=action)


def sees_order(user: CurrentUser, order: OwnedOrder) -> bool:
    """Engineers see only the orders assigned to them; every other role sees all orders."""
    return user.role != "engineer" or order.engineer_id == user.id


def check_order(user: CurrentUser, action: str, order: OwnedOrder | None, order_id: object) -> OwnedOrder:
    """The order if ``user`` may perform ``action`` on it: 404 if absent *or not theirs to see*,
    403 if they see it but their role may not do this."""
    if order is None or not sees_order(user, order):
        raise NotFound("工单不存在 (no such work order)", id=order_id)
    require(user, action)
    return order

"""``GET /api/orders/{id}/appointment/slots``: the 2–3 visit windows the order's engineer can offer
the customer (SA-AP-003), from their calendar (``callcenter.dispatch.calendar``).

The calendar: the engineer's working hours (their dispatch profile, or the defaults when none is
saved; unreadable hours give no windows), their leave from today on, and their booked visits —
the appointment window of each of their other open orders and every confirmed appointment of
theirs on an open order they still hold. The order's own booked window is not "busy": offering
slots for it is rebooking it. An order not yet booked that carries a window (the customer's
wish) has it offered first.

Who: the order's engineer (another engineer gets 404, as for an order that does not exist),
dispatchers, supervisors and admins. 409 when the order has no engineer.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.access import ACTIONS
from callcenter.appkeys import SESSIONMAKER, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.db.models import Appointment, WorkOrder
from callcenter.db.workforce import DEFAULT_WORKING_HOURS, EngineerLeave, EngineerProfile
from callcenter.dispatch import calendar as cal
from callcenter.dispatch.rules import Leave, WorkingHours, parse_working_hours
from callcenter.errors import Conflict
from callcenter.orders import states
from callcenter.orders.store import load_order
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()
ACTION = "appointment.slots"
# How far ahead windows are looked for (calendar days, today included).
HORIZON_DAYS = 7


class SlotsQuery(ApiModel):
    hours: int = Field(2, ge=1, le=4, description="时段长度（小时，整点）(window length, whole hours)")


class ProposedSlotOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    label: str = Field(description="如 明天（周二）09:00–11:00 (centre's time zone)")


class AppointmentSlotsOut(BaseModel):
    slots: list[ProposedSlotOut]
    engineer_id: int


def _utc(t: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


async def engineer_calendar(s: AsyncSession, engineer_id: int, order_id: int, now: dt.datetime,
                            tz: dt.tzinfo) -> tuple[WorkingHours, list[Leave], list[cal.Window]]:
    """The engineer's working hours, leave (from today, within the horizon) and busy windows
    (their booked visits but this order's)."""
    profile = await s.get(EngineerProfile, engineer_id)
    try:
        hours = parse_working_hours(profile.working_hours if profile is not None else DEFAULT_WORKING_HOURS)
    except ValueError:
        hours = {}  # unreadable (edited outside the API): no windows rather than wrong ones
    today = now.astimezone(tz).date()
    leave = [Leave(row.start_date, row.end_date, row.kind) for row in (await s.execute(
        select(EngineerLeave.start_date, EngineerLeave.end_date, EngineerLeave.kind)
        .where(EngineerLeave.engineer_id == engineer_id, EngineerLeave.end_date >= today,
               EngineerLeave.start_date <= today + dt.timedelta(days=HORIZON_DAYS))))]
    open_order = (WorkOrder.engineer_id == engineer_id, WorkOrder.id != order_id,
                  WorkOrder.status.not_in(states.CLOSED_STATUSES))
    booked = (await s.execute(
        select(WorkOrder.appointment_start, WorkOrder.appointment_end)
        .where(*open_order, WorkOrder.appointment_start.is_not(None), WorkOrder.appointment_end > now))).all()
    confirmed = (await s.execute(
        select(Appointment.window_start, Appointment.window_end)
        .join(WorkOrder, WorkOrder.id == Appointment.order_id)
        .where(*open_order, Appointment.engineer_id == engineer_id, Appointment.status == "confirmed",
               Appointment.window_end > now))).all()
    busy = sorted({(_utc(a), _utc(b)) for a, b in [*booked, *confirmed]})
    return hours, leave, busy


@routes.get(r"/api/orders/{id:\d{1,18}}/appointment/slots")
@endpoint("预约可选时段 Visit windows the order's engineer can offer (2–3, from their calendar)",
          roles=ACTIONS[ACTION], query=SlotsQuery, response=AppointmentSlotsOut, tag="dispatch",
          description="Whole hours in the centre's time zone, inside the engineer's working hours, not on "
                      "leave, not overlapping their booked visits, spread over half-days; the order's "
                      "requested window first when it has one. 404 for an engineer's order not theirs, "
                      "409 when no engineer is assigned.")
async def appointment_slots(request: web.Request, user: CurrentUser, query: SlotsQuery) -> web.Response:
    order_id = int(request.match_info["id"])
    tz = request.app[SETTINGS].tz
    now = utcnow()
    async with request.app[SESSIONMAKER]() as s:
        order = await load_order(s, order_id, user, ACTION)
        engineer_id = order.engineer_id
        if engineer_id is None:
            raise Conflict("需先指派工程师 (an engineer must be assigned first)",
                           code="requirement_missing", requires="engineer")
        requested = None
        if (order.status != states.BOOKED and order.appointment_start is not None
                and order.appointment_end is not None):
            requested = (_utc(order.appointment_start), _utc(order.appointment_end))
        hours, leave, busy = await engineer_calendar(s, engineer_id, order.id, now, tz)
    slots = cal.free_slots(hours, leave, busy, now, tz, length=dt.timedelta(hours=query.hours),
                           horizon_days=HORIZON_DAYS, requested=requested)
    return json_response(AppointmentSlotsOut(
        slots=[ProposedSlotOut(start=x.start, end=x.end, label=x.label) for x in slots],
        engineer_id=engineer_id))

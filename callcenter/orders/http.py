"""HTTP interface of intake records, work orders and appointments (all declared endpoints).

Every id is checked against the user (``callcenter.access``): an engineer asking for another
engineer's order gets 404, as for an order that does not exist; a role that may not act gets
403. Writes answer 409 for an illegal or stale change (``details.frm``/``to``/``requires``, or
``code: stale_version``) and 422 naming the field. Every answer is masked.
"""

from __future__ import annotations

import logging

from aiohttp import web

from callcenter.access import ACTIONS
from callcenter.appkeys import DISPATCH, ORDERS
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.orders import views
from callcenter.orders.appointments import AppointmentService
from callcenter.orders.schemas import (
    AppointmentIn, AppointmentOut, AppointmentResultOut, AssignIn, ConfirmIn, EngineersOut,
    IntakeCreatedOut, IntakeIn, IntakeOut, OrderDetailOut, OrderIn, PrefillOut, PrefillQuery,
    StepIn, TransitionIn,
)
from callcenter.orders.services import OrderService
from callcenter.web.api import endpoint, json_response

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
ID = r"{id:\d{1,18}}"
TAG = "orders"


def _service(request: web.Request) -> OrderService:
    return request.app[ORDERS]


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _detail(request: web.Request, user: CurrentUser, order_id: int, status: int = 200, *,
                  just_changed: bool = False) -> web.Response:
    service = _service(request)
    now = utcnow()
    async with service.sessionmaker() as s:
        detail = await views.order_detail(s, order_id, user, now=now, today=service.today(now),
                                          just_changed=just_changed)
    return json_response(detail, status)


def _nudge_dispatch(request: web.Request) -> None:
    """A new order: the dispatch loop runs now rather than at its next tick."""
    engine = request.app.get(DISPATCH)
    if engine is not None:
        engine.nudge()


# --- intake -----------------------------------------------------------------------------------


@routes.get("/api/intakes/prefill")
@endpoint("受理单预填 Pre-fill the intake form from the call / customer",
          roles=ACTIONS["intake.create"], query=PrefillQuery, response=PrefillOut, tag=TAG)
async def intake_prefill(request: web.Request, user: CurrentUser, query: PrefillQuery) -> web.Response:
    service = _service(request)
    async with service.sessionmaker() as s:
        out = await views.prefill(s, customer_id=query.customer_id, linkedid=query.linkedid,
                                  today=service.today(utcnow()))
    return json_response(out)


@routes.post("/api/intakes")
@endpoint("新建受理记录 Create an intake record (SA-CR-001), optionally with its work order",
          roles=ACTIONS["intake.create"], body=IntakeIn, response=IntakeCreatedOut, status=201, tag=TAG)
async def create_intake(request: web.Request, user: CurrentUser, body: IntakeIn) -> web.Response:
    # The answer is built from what was just written: no read-back after the commit.
    c = await _service(request).create_intake_records(body, user)
    order = c.order
    _nudge_dispatch(request)
    intake = views.intake_out(c.intake, c.customer, c.agent,
                              (order.id, order.number) if order is not None else None)
    return json_response(IntakeCreatedOut(intake=intake, order=views.order_out(order) if order else None), 201)


@routes.get(f"/api/intakes/{ID}")
@endpoint("受理记录 An intake record", roles=ACTIONS["intake.read"], response=IntakeOut, tag=TAG)
async def get_intake(request: web.Request, user: CurrentUser) -> web.Response:
    async with _service(request).sessionmaker() as s:
        return json_response(await views.intake_detail(s, _id(request), user))


# --- orders -----------------------------------------------------------------------------------


@routes.post("/api/orders")
@endpoint("由受理记录创建工单 Create a work order (SA-WO-002) from an intake",
          roles=ACTIONS["order.create"], body=OrderIn, response=OrderDetailOut, status=201, tag=TAG)
async def create_order(request: web.Request, user: CurrentUser, body: OrderIn) -> web.Response:
    # The answer is built from what was just written: no read-back after the commit.
    service = _service(request)
    records = await service.create_order_records(body, user)
    _nudge_dispatch(request)
    now = utcnow()
    return json_response(views.detail_out(records, user, now, service.today(now)), 201)


@routes.get(f"/api/orders/{ID}")
@endpoint("工单详情 Work order with customer, appliance, intake, appointments, on-site records, "
          "timeline, allowed transitions and SLA clocks", response=OrderDetailOut, tag=TAG)
async def get_order(request: web.Request, user: CurrentUser) -> web.Response:
    return await _detail(request, user, _id(request))


@routes.post(f"/api/orders/{ID}/transitions")
@endpoint("工单状态变更 Change the status (409 illegal or stale, 422 reason/note)",
          body=TransitionIn, response=OrderDetailOut, tag=TAG)
async def transition(request: web.Request, user: CurrentUser, body: TransitionIn) -> web.Response:
    order_id = _id(request)
    await _service(request).transition(order_id, body.to, user, version=body.version,
                                       note=body.note, reason=body.reason)
    return await _detail(request, user, order_id, just_changed=True)


@routes.post(f"/api/orders/{ID}/assign")
@endpoint("派单/改派 Dispatch (or re-dispatch) to an engineer", roles=ACTIONS["order.assign"],
          body=AssignIn, response=OrderDetailOut, tag=TAG)
async def assign(request: web.Request, user: CurrentUser, body: AssignIn) -> web.Response:
    order_id = _id(request)
    # The same manual dispatch as POST /api/orders/{id}/dispatch (cap checked under lock, the
    # decision recorded, the engineer told); the note is its reason.
    await request.app[DISPATCH].manual(order_id, user, engineer_id=body.engineer_id, version=body.version,
                                       reason=body.note.strip() or "人工派单")
    return await _detail(request, user, order_id, just_changed=True)


@routes.post(f"/api/orders/{ID}/accept")
@endpoint("工程师接单 The engineer accepts the dispatched order", roles=ACTIONS["order.accept"],
          body=StepIn, response=OrderDetailOut, tag=TAG)
async def accept(request: web.Request, user: CurrentUser, body: StepIn) -> web.Response:
    order_id = _id(request)
    await _service(request).accept(order_id, user, version=body.version, note=body.note)
    return await _detail(request, user, order_id, just_changed=True)


@routes.post(f"/api/orders/{ID}/contacted")
@endpoint("已联系客户 The engineer called the customer", roles=ACTIONS["order.accept"],
          body=StepIn, response=OrderDetailOut, tag=TAG)
async def contacted(request: web.Request, user: CurrentUser, body: StepIn) -> web.Response:
    order_id = _id(request)
    await _service(request).contacted(order_id, user, version=body.version, note=body.note)
    return await _detail(request, user, order_id, just_changed=True)


# --- appointments -----------------------------------------------------------------------------


async def _appointment_result(request: web.Request, user: CurrentUser, appointment_id: int,
                              order_id: int, status: int) -> web.Response:
    service = _service(request)
    now = utcnow()
    async with service.sessionmaker() as s:
        appointment = await views.appointment_detail(s, appointment_id, user)
        order = (await views.order_detail(s, order_id, user, now=now, today=service.today(now))).order
    return json_response(AppointmentResultOut(appointment=appointment, order=order), status)


@routes.post(f"/api/orders/{ID}/appointments")
@endpoint("服务预约确认单 Propose a visit window (SA-AP-003); customer_confirmed books it at once",
          roles=ACTIONS["appointment.write"], body=AppointmentIn, response=AppointmentResultOut,
          status=201, tag=TAG)
async def create_appointment(request: web.Request, user: CurrentUser, body: AppointmentIn) -> web.Response:
    order_id = _id(request)
    appointment_id = await AppointmentService(_service(request)).create(order_id, body, user)
    return await _appointment_result(request, user, appointment_id, order_id, 201)


@routes.get(f"/api/appointments/{ID}")
@endpoint("预约确认单 An appointment (SA-AP-003)", roles=ACTIONS["appointment.write"],
          response=AppointmentOut, tag=TAG)
async def get_appointment(request: web.Request, user: CurrentUser) -> web.Response:
    async with _service(request).sessionmaker() as s:
        return json_response(await views.appointment_detail(s, _id(request), user))


@routes.post(f"/api/appointments/{ID}/confirm")
@endpoint("客户确认预约 The customer confirmed: the order is 已预约", roles=ACTIONS["appointment.write"],
          body=ConfirmIn, response=AppointmentResultOut, tag=TAG)
async def confirm_appointment(request: web.Request, user: CurrentUser, body: ConfirmIn) -> web.Response:
    appointment_id = _id(request)
    order_id = await AppointmentService(_service(request)).confirm(appointment_id, user, version=body.version)
    return await _appointment_result(request, user, appointment_id, order_id, 200)


# --- engineers --------------------------------------------------------------------------------


@routes.get("/api/engineers")
@endpoint("工程师列表 Engineers for the dispatch picker (masked name, staff no., open orders)",
          roles=ACTIONS["engineer.list"], response=EngineersOut, tag=TAG)
async def list_engineers(request: web.Request, user: CurrentUser) -> web.Response:
    async with _service(request).sessionmaker() as s:
        return json_response(EngineersOut(engineers=await views.engineers(s)))

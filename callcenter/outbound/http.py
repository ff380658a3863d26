"""Outbound calls over HTTP: book a callback (agents), the board (supervisors: due, dialling,
outcomes, cancel), the do-not-call list, and the ``/outbound`` page. Numbers always masked."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from callcenter.access import ACTIONS
from callcenter.appkeys import OUTBOUND, SESSIONMAKER, SETTINGS, VAULT
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.customers.phones import normalise
from callcenter.db.models import Call, CustomerPhone
from callcenter.db.outbound import DoNotCall
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.outbound import services
from callcenter.web.api import ApiModel, PageQuery, endpoint, json_response

routes = web.RouteTableDef()

JobStatus = Literal["scheduled", "dialling", "answered", "exhausted", "cancelled", "review"]


class CallbackIn(ApiModel):
    customer_id: int = Field(ge=1)
    # The number to call: one of the customer's phones, or the one the call ``call_id`` came
    # from; neither: the customer's first mobile.
    phone_id: int | None = Field(None, ge=1)
    call_id: str | None = Field(None, max_length=64, pattern=r"^[0-9A-Za-z.\-]+$")
    order_id: int | None = Field(None, ge=1)
    # When the customer wants to be called (ISO 8601 with offset); default now.
    at: dt.datetime | None = None
    reason: str = Field(min_length=1, max_length=200)
    # Ring the booking agent instead of the queue.
    to_me: bool = False

    @field_validator("at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-24T10:00:00+08:00")
        return v

    @field_validator("reason")
    @classmethod
    def _no_controls(cls, v: str) -> str:
        if any(ord(c) < 32 for c in v):
            raise ValueError("no control characters")
        return v


class CallbackOut(BaseModel):
    id: int
    due_at: dt.datetime
    # The asked time was outside calling hours: moved to the next opening.
    moved: bool


class JobsQuery(PageQuery):
    status: JobStatus | None = None
    kind: Literal["callback", "survey"] | None = None


class AttemptOut(BaseModel):
    id: str
    seq: int
    state: str
    outcome: str | None
    reason_code: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    channel: str
    answered_survey: bool
    # When the channel was seen answered, and who took the callback (name, or extension).
    answered_at: dt.datetime | None = None
    agent_member: str | None = None
    agent: str | None = None
    hangup_cause: int | None = None


class JobOut(BaseModel):
    id: int
    kind: str
    status: str
    priority: int
    order_id: int | None
    order_number: str | None
    customer_id: int | None
    customer: str | None  # masked name
    number: str  # masked
    reason: str
    requested_at: dt.datetime
    due_at: dt.datetime
    deadline_at: dt.datetime | None
    attempts: int
    last_outcome: str
    version: int
    updated_at: dt.datetime
    attempt_log: list[AttemptOut]


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    page: int
    page_size: int
    counts: dict[str, int]
    # The dialler on this instance: originates in flight (0 where it does not lead).
    dialling_now: int


class CancelIn(ApiModel):
    reason: str = Field("", max_length=200)


class DncIn(ApiModel):
    number: str = Field(min_length=3, max_length=32)
    reason: str = Field("", max_length=200)


class DncOut(BaseModel):
    id: int
    number: str  # masked
    reason: str
    source: str
    created_at: dt.datetime


class DncList(BaseModel):
    items: list[DncOut]
    total: int


def _now() -> dt.datetime:
    return utcnow()


def _config(request: web.Request):  # type: ignore[no-untyped-def]
    dialler = request.app.get(OUTBOUND)
    if dialler is not None:
        return dialler.config
    from callcenter.outbound.dialler import OutboundConfig

    return OutboundConfig.from_settings(request.app[SETTINGS])


@routes.post("/api/outbound/callbacks")
@endpoint("预约回拨 Book a callback to a customer", roles=ACTIONS["outbound.callback"],
          body=CallbackIn, response=CallbackOut, status=201, tag="outbound",
          description="At the customer's chosen time (moved into calling hours); 404 unknown "
                      "customer/phone/order, 409 the number is on the do-not-call list, 422 a "
                      "number that cannot be dialled or a time in the past.")
async def book_callback(request: web.Request, user: CurrentUser, body: CallbackIn) -> web.Response:
    now = _now()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        phone_id = body.phone_id
        if phone_id is None:
            phone_id = await _phone_for(s, body.customer_id, body.call_id)
        booked = await services.book_callback(
            s, user, customer_id=body.customer_id, phone_id=phone_id, at=body.at or now,
            reason=body.reason, order_id=body.order_id, to_me=body.to_me,
            vault=request.app[VAULT], config=_config(request), now=now)
    dialler = request.app.get(OUTBOUND)
    if dialler is not None:
        await dialler.schedule.put(booked.id, booked.priority, booked.due_at)
        dialler.wake()
    return json_response(CallbackOut(id=booked.id, due_at=booked.due_at, moved=booked.moved), 201)


async def _phone_for(s, customer_id: int, call_id: str | None) -> int:  # type: ignore[no-untyped-def]
    cp = CustomerPhone
    if call_id:
        index = (await s.execute(select(Call.caller_index).where(Call.linkedid == call_id))).scalar_one_or_none()
        if index:
            pid = (await s.execute(select(cp.id).where(cp.customer_id == customer_id,
                                                       cp.number_index == index))).scalar_one_or_none()
            if pid is not None:
                return pid
    pid = (await s.execute(select(cp.id).where(cp.customer_id == customer_id)
                           .order_by((cp.kind != "mobile"), cp.id).limit(1))).scalar_one_or_none()
    if pid is None:
        raise NotFound("该客户没有登记电话 (the customer has no phone)")
    return pid


@routes.get("/api/outbound/jobs")
@endpoint("外呼任务 Outbound jobs: due, dialling, outcomes", roles=ACTIONS["outbound.board"],
          query=JobsQuery, response=JobPage, tag="outbound",
          description="Filter by status and kind; due/dialling jobs by due time, others newest "
                      "first; every attempt with its outcome. Numbers and names masked.")
async def list_jobs(request: web.Request, user: CurrentUser, query: JobsQuery) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        items, total, counts = await services.list_jobs(s, status=query.status, kind=query.kind,
                                                        page=query.page, page_size=query.page_size)
    dialler = request.app.get(OUTBOUND)
    return json_response(JobPage(items=[JobOut(**i) for i in items], total=total, page=query.page,
                                 page_size=query.page_size, counts=counts,
                                 dialling_now=len(dialler.live) if dialler is not None else 0))


@routes.post("/api/outbound/jobs/{id}/cancel")
@endpoint("取消外呼任务 Cancel a scheduled job", roles=ACTIONS["outbound.manage"], body=CancelIn,
          tag="outbound", description="A scheduled job, or one waiting for review (closed without another call); "
                                      "409 otherwise (a job being dialled finishes first).")
async def cancel_job(request: web.Request, user: CurrentUser, body: CancelIn) -> web.Response:
    job_id = _int_id(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        await services.cancel_job(s, user, job_id, reason=body.reason, now=_now())
    dialler = request.app.get(OUTBOUND)
    if dialler is not None:
        await dialler.schedule.done(job_id)
    return json_response({"id": job_id, "status": "cancelled"})


@routes.post("/api/outbound/jobs/{id}/redial")
@endpoint("重新拨打 Re-dial a job waiting for review", roles=ACTIONS["outbound.manage"], body=CancelIn,
          tag="outbound",
          description="A job whose last attempt left no trace (status review) is dialled again at "
                      "the next opening of the calling hours; 404 unknown, 409 unless in review.")
async def redial_job(request: web.Request, user: CurrentUser, body: CancelIn) -> web.Response:
    job_id = _int_id(request)
    config = _config(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        job = await services.redial_job(s, user, job_id, reason=body.reason, now=_now(),
                                        hours=config.hours)
        due, priority = job.due_at, job.priority
    dialler = request.app.get(OUTBOUND)
    if dialler is not None:
        await dialler.schedule.put(job_id, priority, due)
        dialler.wake()
    return json_response({"id": job_id, "status": "scheduled", "due_at": due.isoformat()})


@routes.get("/api/outbound/dnc")
@endpoint("免打扰名单 The do-not-call list", roles=ACTIONS["outbound.manage"], response=DncList,
          tag="outbound")
async def list_dnc(request: web.Request, user: CurrentUser) -> web.Response:
    t = DoNotCall.__table__
    async with request.app[SESSIONMAKER]() as s:
        rows = (await s.execute(select(t).order_by(t.c.created_at.desc()).limit(500))).all()
        total = (await s.execute(select(func.count()).select_from(t))).scalar_one()
    return json_response(DncList(items=[DncOut(id=r.id, number=r.number_masked, reason=r.reason,
                                               source=r.source, created_at=services._aware(r.created_at))
                                        for r in rows], total=total))


@routes.post("/api/outbound/dnc")
@endpoint("加入免打扰名单 Add a number to the do-not-call list", roles=ACTIONS["outbound.manage"],
          body=DncIn, response=DncOut, status=201, tag="outbound",
          description="Its scheduled jobs are cancelled. 409 if it is there already.")
async def add_dnc(request: web.Request, user: CurrentUser, body: DncIn) -> web.Response:
    phone = normalise(body.number)
    if phone is None or any(c in body.number for c in "\r\n\x00"):
        raise ValidationFailed("number", "不是电话号码 (not a phone number)")
    sealed = request.app[VAULT].seal(phone.number)
    now = _now()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        new_id = await services.add_dnc(s, sealed, reason=body.reason, source="supervisor",
                                        user_id=user.id, now=now)
        if new_id is None:
            raise Conflict("号码已在免打扰名单中 (already on the list)", code="already_listed")
    return json_response(DncOut(id=new_id, number=sealed.masked, reason=body.reason,
                                source="supervisor", created_at=now), 201)


@routes.delete("/api/outbound/dnc/{id}")
@endpoint("移出免打扰名单 Remove a number from the do-not-call list",
          roles=ACTIONS["outbound.manage"], tag="outbound")
async def remove_dnc(request: web.Request, user: CurrentUser) -> web.Response:
    dnc_id = _int_id(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        row = await s.get(DoNotCall, dnc_id)
        if row is None:
            raise NotFound("名单中没有这一项 (no such entry)")
        await s.delete(row)
        audit(s, user_id=user.id, action="outbound.dnc.remove", entity="outbound_dnc",
              entity_id=dnc_id, now=_now(), detail={"source": row.source})
    return json_response({"id": dnc_id, "removed": True})


def _int_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound("不存在 (not found)")
    return int(raw)


@routes.get("/outbound")
@aiohttp_jinja2.template("outbound.html")
async def outbound_page(request: web.Request) -> dict:
    from callcenter.web.order_pages import page_context, page_user

    user = page_user(request, "outbound.board")
    from callcenter.access import allowed

    return page_context(request, user, "outbound", may_manage=allowed(user, "outbound.manage"))

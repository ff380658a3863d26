"""The dispatcher's board over HTTP: ``GET /api/dispatch/board`` and ``GET /api/dispatch/refusals``
(dispatchers, supervisors, admins). Read only; everything masked (``callcenter.dispatch.board``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from callcenter.access import ACTIONS
from callcenter.appkeys import ENGINE, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.dispatch.board import BoardPage, DispatchBoard
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()
TAG = "dispatch"
ROLES = ACTIONS["dispatch.board"]


class BoardQuery(ApiModel):
    section: Literal["undispatched", "awaiting", "at_risk"] | None = Field(
        None, description="only this section, paged; without it every section's first page")
    urgency: Literal["特急", "紧急", "普通"] | None = None
    page: int = Field(1, ge=1, le=10_000)
    page_size: int = Field(50, ge=1, le=200)


class BoardPerson(BaseModel):
    id: int
    # Masked (李*).
    name: str
    staff_no: str | None


class ReasonCount(BaseModel):
    code: str
    label: str
    count: int


class DecisionSummary(BaseModel):
    id: int
    at: dt.datetime
    mode: Literal["auto", "manual"]
    # An engineer or a shop was chosen (False: nobody matched, the order went to the queue).
    matched: bool
    engineer: BoardPerson | None
    shop_id: int | None
    shop_name: str | None
    reason: str
    # How many engineers the rules weighed.
    candidates: int
    # The commonest exclusion reasons among them.
    reasons: list[ReasonCount]
    # One line: "5公里内无可派工程师（4人均不符合）：不在工作时间 3人，…".
    summary: str


class BoardOrderRow(BaseModel):
    order_id: int
    number: str
    status: str
    urgency: str
    service_type: str
    category: str
    # To the district.
    address: str
    window: list[dt.datetime | None] | None


class RefusalBrief(BaseModel):
    engineer: BoardPerson
    at: dt.datetime
    reason: str
    timed_out: bool


class UndispatchedRow(BoardOrderRow):
    created_at: dt.datetime
    waiting_s: int | None
    # Automatic dispatch still due; False: in the dispatcher's queue.
    auto: bool
    auto_dispatch_due_at: dt.datetime | None
    last_decision: DecisionSummary | None
    refusals: int
    last_refusal: RefusalBrief | None


class AwaitingRow(BoardOrderRow):
    created_at: dt.datetime
    engineer: BoardPerson | None
    shop_id: int | None
    shop_name: str | None
    dispatched_at: dt.datetime | None
    accept_due_at: dt.datetime | None
    # Until the acceptance deadline (negative: past it).
    seconds_left: int | None


class AtRiskRow(BoardOrderRow):
    alert_id: int
    clock: str
    label: str
    level: Literal["warning", "breach"]
    deadline: dt.datetime
    raised_at: dt.datetime
    seconds_overdue: int
    engineer: BoardPerson | None


class UndispatchedSection(BaseModel):
    items: list[UndispatchedRow]
    total: int
    page: int
    page_size: int


class AwaitingSection(BaseModel):
    items: list[AwaitingRow]
    total: int
    page: int
    page_size: int


class AtRiskSection(BaseModel):
    items: list[AtRiskRow]
    total: int
    page: int
    page_size: int


class BoardCounts(BaseModel):
    undispatched: int
    # Of the undispatched: automatic dispatch still due / in the dispatcher's queue.
    auto_pending: int
    queued: int
    awaiting: int
    # Of those awaiting: past the acceptance deadline.
    awaiting_overdue: int
    at_risk: int
    breached: int


class BoardOut(BaseModel):
    now: dt.datetime
    radius_km: float
    urgency: str | None
    counts: BoardCounts
    undispatched: UndispatchedSection | None
    awaiting: AwaitingSection | None
    at_risk: AtRiskSection | None


class RefusalQuery(ApiModel):
    days: int = Field(30, ge=1, le=366, description="the period ending now (ignored with since)")
    since: dt.date | None = Field(None, description="first day, centre's time zone")
    until: dt.date | None = Field(None, description="last day (inclusive), centre's time zone; default today")

    @model_validator(mode="after")
    def _order(self) -> RefusalQuery:
        if self.since and self.until and self.until < self.since:
            raise ValueError("until must not be before since")
        if self.since and self.until and (self.until - self.since).days > 366:
            raise ValueError("at most a year at once")
        return self


class EngineerRefusals(BoardPerson):
    engineer_id: int
    refused: int
    timed_out: int
    total: int
    # 技能不符 / 时间冲突 / 其他 → refusals (timeouts apart).
    reasons: dict[str, int]
    last_at: dt.datetime | None


class RefusalsOut(BaseModel):
    since: dt.datetime
    until: dt.datetime
    engineers: list[EngineerRefusals]
    total: int
    timed_out: int


def _board(request: web.Request) -> DispatchBoard:
    return DispatchBoard(request.app[ENGINE], request.app[SETTINGS].dispatch_radius_km)


@routes.get("/api/dispatch/board")
@endpoint("派单台 The dispatcher's board", roles=ROLES, query=BoardQuery, response=BoardOut, tag=TAG,
          description="Counts of every section and its first page (or one section, paged): on-site orders "
                      "waiting for an engineer (automatic dispatch due, or in the dispatcher's queue, with "
                      "the last decision's summary: nobody within 5 km and the commonest reasons), orders "
                      "waiting for the engineer to accept (minutes left), open SLA alerts by urgency then "
                      "deadline. Names masked, addresses to the district.")
async def board(request: web.Request, user: CurrentUser, query: BoardQuery) -> web.Response:
    want = BoardPage(query.section, query.page, query.page_size, query.urgency)
    return json_response(await _board(request).board(want, utcnow()))


@routes.get("/api/dispatch/refusals")
@endpoint("拒单统计 Refusals and timeouts per engineer", roles=ROLES, query=RefusalQuery, response=RefusalsOut,
          tag=TAG, description="Per engineer over the period (default: the last 30 days): refusals by reason "
                               "(技能不符, 时间冲突, 其他) and acceptance timeouts; most first.")
async def refusals(request: web.Request, user: CurrentUser, query: RefusalQuery) -> web.Response:
    now = utcnow()
    since, until = period(query, now, request.app[SETTINGS].tz)
    return json_response(await _board(request).refusals(since, until))


def period(q: RefusalQuery, now: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """``[since, until)`` in aware UTC: whole local days when dates are given, else ``days`` back
    from ``now``."""
    def start_of(d: dt.date) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(), tz).astimezone(dt.UTC)

    until = start_of(q.until + dt.timedelta(days=1)) if q.until else now
    since = start_of(q.since) if q.since else until - dt.timedelta(days=q.days)
    return since, until

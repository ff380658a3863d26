"""HTTP interface of the satisfaction survey (SA-CS-005) and the complaint follow-ups, and the two
pages: ``/survey`` (the survey agent's list of orders due and the form) and ``/complaints`` (the
supervisors' follow-ups).

Every answer is masked; every write is one transaction (the survey, the order's move to 已回访,
the complaint, timeline and audit — or nothing).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from callcenter.access import ACTIONS, allowed, check_order
from callcenter.appkeys import SESSIONMAKER, SETTINGS, SURVEY_ALERTS
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.db.models import WorkOrder
from callcenter.errors import NotFound
from callcenter.survey import views
from callcenter.survey.rules import AGENT
from callcenter.survey.schemas import (
    ComplaintAssignIn,
    ComplaintOut,
    ComplaintOwnersOut,
    ComplaintResolveIn,
    ComplaintsOut,
    ComplaintsQuery,
    EngineerSatisfactionOut,
    OrderSurveyOut,
    SurveyDueOut,
    SurveyIn,
    SurveyPageQuery,
    SurveyResultsOut,
    SurveyResultsQuery,
    SurveyStatsQuery,
)
from callcenter.survey.services import (
    assign_complaint,
    record_survey_result,
    resolve_complaint,
)
from callcenter.web.api import endpoint, json_response
from callcenter.web.order_pages import page_context, page_user

routes = web.RouteTableDef()
ID = r"{id:\d{1,18}}"
TAG = "survey"


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _wake_alerts(request: web.Request) -> None:
    alerter = request.app.get(SURVEY_ALERTS)
    if alerter is not None:
        alerter.wake()


@routes.post(f"/api/orders/{ID}/survey")
@endpoint("录入回访结果 Enter a phone survey (SA-CS-005) by hand; a score ≤ 3 opens a complaint follow-up",
          roles=ACTIONS["survey.record"], body=SurveyIn, response=OrderSurveyOut, status=201, tag=TAG,
          description="Moves the order 已完成 → 已回访. 409 survey_exists / illegal_transition; 422 naming the score.")
async def post_survey(request: web.Request, user: CurrentUser, body: SurveyIn) -> web.Response:
    order_id, now = _id(request), utcnow()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        check_order(user, "survey.record", await s.get(WorkOrder, order_id), order_id)
        await record_survey_result(
            s, order_id=order_id, answers=body.answers.model_dump(), channel=AGENT, now=now, user_id=user.id,
            comment=body.comment, complaint=body.complaint, problem_class=body.problem_class, action=body.action,
            tz=request.app[SETTINGS].tz)
    _wake_alerts(request)
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.order_survey(s, order_id, user, now), 201)


@routes.get(f"/api/orders/{ID}/survey")
@endpoint("工单回访结果 The order's survey result and complaint follow-up (null until recorded)",
          roles=ACTIONS["survey.read"], response=OrderSurveyOut, tag=TAG)
async def get_survey(request: web.Request, user: CurrentUser) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.order_survey(s, _id(request), user, utcnow()))


@routes.get("/api/survey/due")
@endpoint("待回访工单 Completed orders without a survey result, earliest completed first",
          roles=ACTIONS["survey.record"], query=SurveyPageQuery, response=SurveyDueOut, tag=TAG)
async def survey_due(request: web.Request, user: CurrentUser, query: SurveyPageQuery) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.due_orders(s, utcnow(), query.page, query.page_size))


@routes.get("/api/survey/results")
@endpoint("回访结果 Survey results, newest first (optionally one engineer's)",
          roles=ACTIONS["survey.report"], query=SurveyResultsQuery, response=SurveyResultsOut, tag=TAG)
async def survey_results(request: web.Request, user: CurrentUser, query: SurveyResultsQuery) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.results(s, query.engineer_id, query.page, query.page_size))


@routes.get("/api/survey/engineers")
@endpoint("工程师满意度 Average scores per engineer (lowest first), surveys with a score ≤ 3, complaints",
          roles=ACTIONS["survey.report"], query=SurveyStatsQuery, response=EngineerSatisfactionOut, tag=TAG)
async def survey_engineers(request: web.Request, user: CurrentUser, query: SurveyStatsQuery) -> web.Response:
    start, end = views.local_range(query.date_from, query.date_to, request.app[SETTINGS].tz)
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.engineer_stats(s, start, end))


@routes.get("/api/complaints")
@endpoint("投诉跟进 Complaint follow-ups, newest first", roles=ACTIONS["escalation.take"],
          query=ComplaintsQuery, response=ComplaintsOut, tag=TAG)
async def list_complaints(request: web.Request, user: CurrentUser, query: ComplaintsQuery) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        return json_response(await views.complaints(s, query.status, utcnow(), query.page, query.page_size))


@routes.get("/api/complaints/owners")
@endpoint("可指派的跟进负责人 Staff a follow-up can be given to", roles=ACTIONS["escalation.take"],
          response=ComplaintOwnersOut, tag=TAG)
async def complaint_owners(request: web.Request, user: CurrentUser) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        return json_response(ComplaintOwnersOut(items=await views.owners(s)))


async def _complaint_answer(request: web.Request, complaint_id: int) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        out = await views.complaint(s, complaint_id, utcnow())
    if out is None:
        raise NotFound("投诉跟进不存在 (no such complaint follow-up)", id=complaint_id)
    return json_response(out)


@routes.post(f"/api/complaints/{ID}/assign")
@endpoint("接手/指派投诉跟进 Take a complaint follow-up and name its owner (meets the 1-hour escalation clock)",
          roles=ACTIONS["escalation.take"], body=ComplaintAssignIn, response=ComplaintOut, tag=TAG)
async def assign(request: web.Request, user: CurrentUser, body: ComplaintAssignIn) -> web.Response:
    complaint_id = _id(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        await assign_complaint(s, complaint_id, user, owner_id=body.owner_id, now=utcnow(), version=body.version,
                               action=body.action, problem_class=body.problem_class)
    return await _complaint_answer(request, complaint_id)


@routes.post(f"/api/complaints/{ID}/resolve")
@endpoint("投诉跟进结案 Resolve a complaint follow-up with what was done", roles=ACTIONS["escalation.take"],
          body=ComplaintResolveIn, response=ComplaintOut, tag=TAG)
async def resolve(request: web.Request, user: CurrentUser, body: ComplaintResolveIn) -> web.Response:
    complaint_id = _id(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        await resolve_complaint(s, complaint_id, user, resolution=body.resolution, now=utcnow(),
                                version=body.version, action=body.action)
    return await _complaint_answer(request, complaint_id)


# --- pages ------------------------------------------------------------------------------------


@routes.get("/survey")
@aiohttp_jinja2.template("survey.html")
async def survey_page(request: web.Request) -> dict:
    user = page_user(request, "survey.record")
    return page_context(request, user, "survey", may_report=allowed(user, "survey.report"))


@routes.get("/complaints")
@aiohttp_jinja2.template("complaints.html")
async def complaints_page(request: web.Request) -> dict:
    return page_context(request, page_user(request, "escalation.take"), "complaints")

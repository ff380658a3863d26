"""Dispatch endpoints that act: manual dispatch and re-dispatch, the rules on demand, the
engineer's refusal, and the record of every decision and refusal of an order
(``callcenter.dispatch.engine``). Names masked; every change audited in its own transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select, update

from callcenter.access import ACTIONS, check_order
from callcenter.appkeys import DISPATCH, SESSIONMAKER
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import User, WorkOrder
from callcenter.db.workforce import DispatchDecision, DispatchRefusal, EngineerProfile, ServiceShop
from callcenter.dispatch.engine import DispatchEngine
from callcenter.errors import Conflict, ValidationFailed
from callcenter.privacy import mask_name, mask_numbers_in_text
from callcenter.sla.rules import aware
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()
ID = r"{id:\d{1,18}}"
TAG = "dispatch"
DISPATCHERS = ACTIONS["order.assign"]


def _engine(request: web.Request) -> DispatchEngine:
    return request.app[DISPATCH]


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


class DispatchIn(ApiModel):
    engineer_id: int | None = Field(default=None, ge=1)
    shop_id: int | None = Field(default=None, ge=1)
    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_target(self) -> DispatchIn:
        if (self.engineer_id is None) == (self.shop_id is None):
            raise ValueError("give exactly one of engineer_id, shop_id (须指定工程师或合作网点之一)")
        return self


class RefuseIn(ApiModel):
    reason: Literal["技能不符", "时间冲突", "其他"]
    note: str = Field(default="", max_length=500)
    version: int | None = Field(default=None, ge=1)


class PositionIn(ApiModel):
    """Where the engineer's phone is (WGS-84)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class OutcomeOut(BaseModel):
    order_id: int
    number: str
    decision_id: int | None
    status: str
    engineer_id: int | None
    shop_id: int | None
    version: int
    queued: bool
    accept_due_at: dt.datetime | None


class DecisionsOut(BaseModel):
    decisions: list[dict[str, Any]]
    refusals: list[dict[str, Any]]
    # Every engineer named above: {"<id>": {"name" (masked), "staff_no"}}.
    people: dict[str, dict[str, Any]]


@routes.post(f"/api/orders/{ID}/dispatch")
@endpoint("人工派单/改派 Dispatch or re-dispatch an order to an engineer or a partner shop, with a reason",
          roles=DISPATCHERS, body=DispatchIn, response=OutcomeOut, tag=TAG,
          description="409 `at_capacity` when the engineer already holds their cap of open orders (checked "
                      "under a lock on the engineer), `stale_version`, `illegal_transition`; 422 for an "
                      "inactive engineer or shop. The decision is recorded with the rules' evaluation.")
async def dispatch(request: web.Request, user: CurrentUser, body: DispatchIn) -> web.Response:
    outcome = await _engine(request).manual(_id(request), user, engineer_id=body.engineer_id, shop_id=body.shop_id,
                                            reason=body.reason, version=body.version)
    return json_response(outcome.to_json())


@routes.post(f"/api/orders/{ID}/dispatch/auto")
@endpoint("自动派单 Let the rules dispatch an undispatched order now", roles=DISPATCHERS,
          response=OutcomeOut, tag=TAG,
          description="The winner gets the order; nobody matching leaves it in the dispatchers' queue "
                      "(`queued`). 409 when the order is not undispatched (待处理, no engineer, no shop).")
async def dispatch_auto(request: web.Request, user: CurrentUser) -> web.Response:
    order_id = _id(request)
    async with request.app[SESSIONMAKER]() as s:
        check_order(user, "order.assign", await s.get(WorkOrder, order_id), order_id)
    outcome = await _engine(request).auto(order_id, actor=user, queued_only=False)
    if outcome is None:
        raise Conflict("工单不在待派状态 (the order is not waiting for dispatch)", code="illegal_transition")
    return json_response(outcome.to_json())


@routes.post(f"/api/orders/{ID}/refuse")
@endpoint("拒单 The engineer refuses a dispatched order (within 15 minutes, before accepting)",
          roles=ACTIONS["order.accept"], body=RefuseIn, response=OutcomeOut, tag=TAG,
          description="Reason 技能不符 / 时间冲突 / 其他 (a note required for 其他). The refusal is kept and "
                      "counted for the engineer; the order goes back to 待处理 and is matched again at once "
                      "without everyone who refused it.")
async def refuse(request: web.Request, user: CurrentUser, body: RefuseIn) -> web.Response:
    if body.reason == "其他" and not body.note.strip():
        raise ValidationFailed("note", "选择“其他”时须说明原因 (say why)")
    outcome = await _engine(request).refuse(_id(request), user, reason=body.reason, note=body.note,
                                            version=body.version)
    return json_response(outcome.to_json())


@routes.get(f"/api/orders/{ID}/dispatch/decisions")
@endpoint("派单记录 Every dispatch decision and refusal of an order", roles=ACTIONS["dispatch.preview"],
          response=DecisionsOut, tag=TAG,
          description="Newest first: automatic or manual, who and why, the rules' version and weights, the "
                      "winner's score breakdown and every candidate considered with why each was excluded.")
async def decisions(request: web.Request, user: CurrentUser) -> web.Response:
    order_id = _id(request)
    async with request.app[SESSIONMAKER]() as s:
        check_order(user, "dispatch.preview", await s.get(WorkOrder, order_id), order_id)
        rows = (await s.execute(select(DispatchDecision, ServiceShop.name)
                                .outerjoin(ServiceShop, ServiceShop.id == DispatchDecision.shop_id)
                                .where(DispatchDecision.order_id == order_id)
                                .order_by(DispatchDecision.at.desc(), DispatchDecision.id.desc()))).all()
        refusals = (await s.execute(select(DispatchRefusal).where(DispatchRefusal.order_id == order_id)
                                    .order_by(DispatchRefusal.at.desc(), DispatchRefusal.id.desc()))).scalars().all()
        ids = {d.engineer_id for d, _ in rows if d.engineer_id} | {d.decided_by for d, _ in rows if d.decided_by}
        ids |= {c.get("engineer_id") for d, _ in rows for c in d.candidates if c.get("engineer_id")}
        ids |= {x.engineer_id for x in refusals}
        people = {u.id: u for u in (await s.execute(select(User).where(User.id.in_(ids)))).scalars()} if ids else {}

    def who(user_id: int | None) -> dict[str, Any] | None:
        u = people.get(user_id) if user_id is not None else None
        return None if u is None else {"name": mask_name(u.display_name), "staff_no": u.staff_no}

    return json_response(DecisionsOut(
        decisions=[{"id": d.id, "at": aware(d.at), "mode": d.mode, "engineer_id": d.engineer_id, "engineer": who(d.engineer_id),
                    "shop_id": d.shop_id, "shop_name": shop, "reason": mask_numbers_in_text(d.reason), "decided_by": who(d.decided_by),
                    "rule_version": d.rule_version, "weights": d.weights, "score": d.score,
                    "candidates": d.candidates} for d, shop in rows],
        refusals=[{"engineer_id": x.engineer_id, "engineer": who(x.engineer_id), "at": aware(x.at), "reason": x.reason,
                   "note": mask_numbers_in_text(x.note), "timed_out": x.timed_out} for x in refusals],
        people={str(i): who(i) for i in sorted(people)}))


@routes.post("/api/dispatch/position")
@endpoint("上报位置 The engineer's phone reports where it is", roles=("engineer",), body=PositionIn, status=204,
          tag=TAG, description="Kept as the engineer's latest position; dispatch prefers it to the base while "
                               "it is fresh (4 h). Not logged, not audited: the engineer's own position, "
                               "overwritten by the next report.")
async def report_position(request: web.Request, user: CurrentUser, body: PositionIn) -> web.Response:
    values = {"last_lat": body.lat, "last_lon": body.lon, "last_seen_at": request.app[DISPATCH].clock()}
    async with request.app[SESSIONMAKER].begin() as s:
        changed = (await s.execute(update(EngineerProfile).where(EngineerProfile.user_id == user.id)
                                   .values(**values).returning(EngineerProfile.user_id))).first()
        if changed is None:
            s.add(EngineerProfile(user_id=user.id, **values))
    return web.Response(status=204)

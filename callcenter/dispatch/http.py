"""Dispatch endpoints: engineers' profiles, skills and certificates, leave, partner shops
(dispatchers and admins read, admins write), and the rules' preview for one order.

All JSON, declared with ``@endpoint``; names and numbers masked; every write audited in its own
transaction (``callcenter.dispatch.profiles``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from callcenter.access import ACTIONS
from callcenter.appkeys import ENGINE, GEOCODER, SESSIONMAKER, SETTINGS, VAULT
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.dispatch import rules as r
from callcenter.dispatch import schemas as sc
from callcenter.dispatch.candidates import CandidateLoader, Preview
from callcenter.dispatch.profiles import WorkforceService
from callcenter.errors import NotFound
from callcenter.geo.geocoding import Geocoder, default_geocoder
from callcenter.privacy import mask_name
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()

ID = r"{id:\d{1,18}}"
READ = ACTIONS["dispatch.profiles.read"]
WRITE = ACTIONS["dispatch.profiles.write"]
TAG = "dispatch"


def _geocoder(request: web.Request) -> Geocoder:
    return request.app.get(GEOCODER) or default_geocoder()


def _service(request: web.Request) -> WorkforceService:
    app = request.app
    return WorkforceService(app[SESSIONMAKER], app[SETTINGS], app[VAULT], _geocoder(request))


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


class LeaveQuery(ApiModel):
    since: dt.date | None = None


# ---- engineers --------------------------------------------------------------------------------

@routes.get("/api/dispatch/engineers")
@endpoint("工程师派单资料 Engineers' dispatch profiles", roles=READ, query=sc.EngineerQuery,
          response=sc.ProfilePage, tag=TAG,
          description="Every engineer, with their profile (or the defaults when none is saved), skills "
                      "and open orders; filter by region and active.")
async def list_engineers(request: web.Request, user: CurrentUser, query: sc.EngineerQuery) -> web.Response:
    return json_response(await _service(request).list_engineers(query, utcnow()))


@routes.get(f"/api/dispatch/engineers/{ID}")
@endpoint("工程师派单资料 One engineer's profile, skills and coming leave", roles=READ,
          response=sc.ProfileOut, tag=TAG)
async def get_engineer(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response(await _service(request).get_engineer(_id(request), utcnow()))


@routes.patch(f"/api/dispatch/engineers/{ID}")
@endpoint("修改工程师派单资料 Update an engineer's profile", roles=WRITE, body=sc.ProfileUpdate,
          response=sc.ProfileOut, tag=TAG,
          description="Only the fields given change; the profile is created on first update. base_place "
                      "is geocoded to its district centre (422 if unknown). 409 on a stale version.")
async def update_engineer(request: web.Request, user: CurrentUser, body: sc.ProfileUpdate) -> web.Response:
    return json_response(await _service(request).update_profile(user, _id(request), body, utcnow()))


@routes.put(f"/api/dispatch/engineers/{ID}/skills")
@endpoint("设置工程师技能与证书 Replace an engineer's skills and certificates", roles=WRITE, body=sc.SkillsIn,
          response=sc.ProfileOut, tag=TAG,
          description="The skills become exactly the list given (one per product category).")
async def put_skills(request: web.Request, user: CurrentUser, body: sc.SkillsIn) -> web.Response:
    return json_response(await _service(request).replace_skills(user, _id(request), body, utcnow()))


@routes.get(f"/api/dispatch/engineers/{ID}/leave")
@endpoint("工程师休假 An engineer's days off and leave", roles=READ, query=LeaveQuery,
          response=sc.LeaveList, tag=TAG, description="Leave ending on or after `since` (default: today).")
async def list_leave(request: web.Request, user: CurrentUser, query: LeaveQuery) -> web.Response:
    since = query.since or utcnow().astimezone(request.app[SETTINGS].tz).date()
    return json_response(await _service(request).list_leave(_id(request), since))


@routes.post(f"/api/dispatch/engineers/{ID}/leave")
@endpoint("登记休假 Record a day off or leave", roles=WRITE, body=sc.LeaveIn, response=sc.LeaveOut,
          status=201, tag=TAG)
async def add_leave(request: web.Request, user: CurrentUser, body: sc.LeaveIn) -> web.Response:
    return json_response(await _service(request).add_leave(user, _id(request), body, utcnow()), 201)


@routes.delete(f"/api/dispatch/leave/{ID}")
@endpoint("取消休假 Delete a leave entry", roles=WRITE, status=204, tag=TAG)
async def delete_leave(request: web.Request, user: CurrentUser) -> web.Response:
    await _service(request).delete_leave(user, _id(request), utcnow())
    return web.Response(status=204)


# ---- partner shops ----------------------------------------------------------------------------

@routes.get("/api/dispatch/shops")
@endpoint("合作网点 Partner service shops", roles=READ, response=sc.ShopList, tag=TAG)
async def list_shops(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response(await _service(request).list_shops())


@routes.post("/api/dispatch/shops")
@endpoint("新增合作网点 Add a partner service shop", roles=WRITE, body=sc.ShopIn, response=sc.ShopOut,
          status=201, tag=TAG, description="lat/lon, or place geocoded to its district centre; the "
                                           "contact number is stored sealed and shown masked.")
async def create_shop(request: web.Request, user: CurrentUser, body: sc.ShopIn) -> web.Response:
    return json_response(await _service(request).create_shop(user, body, utcnow()), 201)


@routes.get(f"/api/dispatch/shops/{ID}")
@endpoint("合作网点 One partner shop", roles=READ, response=sc.ShopOut, tag=TAG)
async def get_shop(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response(await _service(request).get_shop(_id(request)))


@routes.patch(f"/api/dispatch/shops/{ID}")
@endpoint("修改合作网点 Update a partner shop", roles=WRITE, body=sc.ShopUpdate, response=sc.ShopOut, tag=TAG)
async def update_shop(request: web.Request, user: CurrentUser, body: sc.ShopUpdate) -> web.Response:
    return json_response(await _service(request).update_shop(user, _id(request), body, utcnow()))


# ---- preview ----------------------------------------------------------------------------------

def loader_for(app: web.Application) -> CandidateLoader:
    """The candidate loader with the app's settings and geocoder (the dispatch loop uses it too)."""
    return CandidateLoader(r.config_from(app[SETTINGS]), app.get(GEOCODER))


def preview_json(p: Preview) -> dict[str, Any]:
    """A :class:`Preview` as the endpoint answers it (names masked)."""
    o = p.order
    return {"order_id": o.id, "status": p.status, "category": o.category, "required_certificate": o.certificate,
            "located": o.location is not None, "window": list(o.window) if o.window else None,
            "people": {str(i): {"name": mask_name(x.display_name), "staff_no": x.staff_no}
                       for i, x in sorted(p.people.items())},
            "evaluation": p.evaluation.to_json(),
            "widened": None if p.tiers is None else [t.to_json() for t in p.tiers]}


@routes.get(f"/api/orders/{ID}/dispatch/preview")
@endpoint("派单预览 The dispatch rules' evaluation of an order now, without assigning",
          roles=ACTIONS["dispatch.preview"], response=sc.PreviewOut, tag=TAG,
          description="Every candidate near the customer with why each is excluded or its score breakdown, "
                      "the winner, and — when nobody matches — the widened search (10 km, 20 km, other "
                      "regions, partner shops). Rules: callcenter/dispatch/rules.py.")
async def preview(request: web.Request, user: CurrentUser) -> web.Response:
    order_id = _id(request)
    async with request.app[ENGINE].connect() as conn:
        p = await loader_for(request.app).preview(conn, order_id, utcnow())
    if p is None:
        raise NotFound("工单不存在 (no such work order)", id=order_id)
    return json_response(preview_json(p))

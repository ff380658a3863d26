"""GET /api/calls — the call list of a day: an agent sees the calls that rang or reached them
(answered, missed, abandoned while ringing);
supervisors and admins see all. Numbers (stored sealed: only the masked form is read) and names
masked."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from callcenter.appkeys import AGENTS, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Call, Customer
from callcenter.errors import ValidationFailed
from callcenter.privacy import mask_name
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()
SEE_ALL = ("supervisor", "admin")
MAX_LIMIT = 500


class CallsQuery(ApiModel):
    date: dt.date | None = Field(default=None, description="YYYY-MM-DD in the centre's time zone (default today)")
    # Out-of-range values are clamped to 1–500, not refused.
    limit: int = Field(default=200, description=f"at most this many, newest first (1–{MAX_LIMIT})")


class CallCustomerOut(BaseModel):
    id: int
    name: str = Field(description="脱敏姓名")


class CallListItemOut(BaseModel):
    id: str = Field(description="Linkedid")
    direction: str
    queue: str
    did: str
    caller: str | None = Field(description="脱敏号码 (masked)")
    anonymous: bool
    customer: CallCustomerOut | None
    state: str
    outcome: str | None
    agent_member: str
    started_at: str | None
    answered_at: str | None
    ended_at: str | None
    hold_s: int | None
    talk_s: int | None


class CallsOut(BaseModel):
    date: str
    calls: list[CallListItemOut]


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


@routes.get("/api/calls")
@endpoint("来电记录 The day's calls (an agent sees the calls that rang or reached them)",
          roles=("agent", "supervisor", "admin"), query=CallsQuery, response=CallsOut, tag="calls")
async def list_calls(request: web.Request, user: CurrentUser, query: CallsQuery) -> web.Response:
    settings = request.app[SETTINGS]
    day = query.date or dt.datetime.now(settings.tz).date()
    try:
        start = dt.datetime.combine(day, dt.time(0), settings.tz).astimezone(dt.UTC)
        end = start + dt.timedelta(days=1)
    except (ValueError, OverflowError):
        raise ValidationFailed("date", "YYYY-MM-DD") from None
    limit = min(MAX_LIMIT, max(1, query.limit))
    q = (select(Call, Customer.name).outerjoin(Customer, Customer.id == Call.customer_id)
         .where(Call.started_at >= start, Call.started_at < end)
         .order_by(Call.started_at.desc()).limit(limit))
    if user.role not in SEE_ALL:
        members = request.app[AGENTS].members_of(user.id) or {user.extension or "\x00"}
        q = q.where(or_(Call.agent_id == user.id, Call.agent_member.in_(members),
                        *(Call.rang_members.contains(f",{m},", autoescape=True) for m in members)))
    async with request.app[SESSIONMAKER]() as s:
        rows = (await s.execute(q)).all()
    calls = [{
        "id": c.linkedid, "direction": c.direction, "queue": c.queue, "did": c.did,
        "caller": c.caller_masked or None,
        "anonymous": not c.caller_index, "customer": ({"id": c.customer_id, "name": mask_name(name)}
                                                  if c.customer_id else None),
        "state": c.state, "outcome": c.outcome, "agent_member": c.agent_member,
        "started_at": _iso(c.started_at), "answered_at": _iso(c.answered_at), "ended_at": _iso(c.ended_at),
        "hold_s": c.hold_s, "talk_s": c.talk_s,
    } for c, name in rows]
    return json_response({"date": day.isoformat(), "calls": calls})

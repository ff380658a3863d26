"""GET /api/calls — the call list of a day: an agent sees the calls that rang or reached them
(answered, missed, abandoned while ringing);
supervisors and admins see all. Numbers (stored sealed: only the masked form is read) and names
masked."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy import or_, select

from callcenter.appkeys import AGENTS, SESSIONMAKER, SETTINGS
from callcenter.db.models import Call, Customer
from callcenter.errors import ValidationFailed
from callcenter.privacy import mask_name
from callcenter.web.middleware import current_user

routes = web.RouteTableDef()
SEE_ALL = ("supervisor", "admin")


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


@routes.get("/api/calls")
async def list_calls(request: web.Request) -> web.Response:
    user = current_user(request, "agent", "supervisor", "admin")
    settings = request.app[SETTINGS]
    raw = request.query.get("date")
    try:
        day = dt.date.fromisoformat(raw) if raw else dt.datetime.now(settings.tz).date()
        start = dt.datetime.combine(day, dt.time(0), settings.tz).astimezone(dt.UTC)
        end = start + dt.timedelta(days=1)
    except (ValueError, OverflowError):
        raise ValidationFailed("date", "YYYY-MM-DD") from None
    try:
        limit = min(500, max(1, int(request.query.get("limit", "200"))))
    except ValueError:
        raise ValidationFailed("limit", "a whole number 1–500") from None
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
    return web.json_response({"date": day.isoformat(), "calls": calls})

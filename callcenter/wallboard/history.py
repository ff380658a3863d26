"""History of a day from the call records: per queue and hour, and per agent (pure aggregation
plus one query). The figures are the wallboard's (``metrics.py``, ``docs/metrics.md``), summed
with the same per-call contribution as the live book, so a closed hour reads as the live tile
read at its end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from callcenter.agentstate.book import (
    DEFAULT_SERVICE_LEVEL,
    CallFact,
    Tally,
    contribution,
)
from callcenter.db.models import Call
from callcenter.wallboard.metrics import average, queue_figures


def fact_of(r: Mapping[str, Any]) -> CallFact:
    """A call record as the live book counts it."""
    answered = r.get("answered_at") is not None
    return CallFact(queue=str(r.get("queue") or ""), joined=0.0, answered=answered,
                    completed=answered and r.get("state") == "ended",
                    abandoned=r.get("outcome") == "abandoned", hold_s=r.get("hold_s"),
                    talk_s=r.get("talk_s"), member=str(r.get("agent_member") or ""))


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def summarise(records: Iterable[Mapping[str, Any]], tz: dt.tzinfo,
              service_levels: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``records``: call rows (``linkedid``, ``queue``, ``started_at``, ``answered_at``,
    ``state``, ``outcome``, ``hold_s``, ``talk_s``, ``agent_member``). Returns
    ``{"hours": [...], "agents": [...]}``: one row per queue and local hour with calls, with the
    day tally and the figures; one row per answering member (answered, talk time, AHT)."""
    levels = service_levels or {}
    by_hour: dict[tuple[str, int], Tally] = {}
    by_member: dict[str, Tally] = {}
    for r in records:
        f = fact_of(r)
        if not f.queue:
            continue
        c = contribution(f, levels.get(f.queue, DEFAULT_SERVICE_LEVEL))
        hour = _aware(r["started_at"]).astimezone(tz).hour
        by_hour.setdefault((f.queue, hour), Tally()).add(c, 1)
        if f.member:
            by_member.setdefault(f.member, Tally()).add(c, 1)
    hours = [{"queue": q, "hour": hour, **t.as_dict(), **queue_figures(t.as_dict())}
             for (q, hour), t in sorted(by_hour.items())]
    agents = [{"member": m, "answered": t.answered, "completed": t.completed, "talk_s": t.talk_sum,
               "aht": average(t.talk_sum, t.completed)} for m, t in sorted(by_member.items())]
    return {"hours": hours, "agents": agents}


async def day_history(conn: AsyncConnection, day: dt.date, tz: dt.tzinfo,
                      service_levels: Mapping[str, int] | None = None,
                      queue: str | None = None) -> dict[str, Any]:
    start = dt.datetime.combine(day, dt.time(0), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).astimezone(dt.UTC)
    q = (select(Call.linkedid, Call.queue, Call.started_at, Call.answered_at, Call.state, Call.outcome,
                Call.hold_s, Call.talk_s, Call.agent_member)
         .where(Call.started_at >= start, Call.started_at < end, Call.direction == "inbound"))
    if queue:
        q = q.where(Call.queue == queue)
    rows = (await conn.execute(q)).mappings().all()
    return {"date": day.isoformat(), **summarise(rows, tz, service_levels)}

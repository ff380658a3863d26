"""Supervisors hear of a new complaint follow-up at once: ``complaint.opened`` on their websockets.

The follow-up row is the durable part (written with the survey, ``alerted_at`` empty); a pass
claims the rows not yet pushed (a conditional ``UPDATE … WHERE alerted_at IS NULL``, so with
several instances each row is claimed once), commits, then posts one message per active
supervisor through the mailbox. A pass runs every ``interval`` seconds and at once when
:meth:`ComplaintAlerter.wake` is called (the survey form does after its commit; the outbound
dialler may). A push lost after the claim (the process died in between) is covered by the SLA
escalation clock, whose warning and breach alerts reach the same supervisors.

Message::

    {"type": "complaint.opened", "complaint": {"id", "order_id", "order_number", "problem_class",
     "low_scores": ["态度友好度", …], "opened_at", "take_by", "deadline", "engineer": "赵* GY2024001"}}
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock, utcnow
from callcenter.db.models import User, WorkOrder
from callcenter.db.survey import ComplaintFollowUp
from callcenter.privacy import mask_name
from callcenter.sla.rules import aware
from callcenter.survey import rules

log = logging.getLogger(__name__)
MESSAGE_TYPE = "complaint.opened"
RECIPIENT_ROLES = ("supervisor",)
# Rows claimed per pass (the rest in the next one).
BATCH = 100


def engineer_text(user: User | None) -> str:
    """``赵* GY2024001`` (masked name and staff number), "" for none."""
    if user is None:
        return ""
    return " ".join(p for p in (mask_name(user.display_name or user.username), user.staff_no or "") if p)


def complaint_message(c: ComplaintFollowUp, order_number: str, engineer: User | None) -> dict[str, Any]:
    opened = aware(c.opened_at)
    d = rules.deadlines(opened)
    return {"type": MESSAGE_TYPE, "complaint": {
        "id": c.id, "order_id": c.order_id, "order_number": order_number, "problem_class": c.problem_class,
        "low_scores": [rules.LABELS[k] for k in c.low_scores.split(",") if k in rules.LABELS],
        "opened_at": opened.isoformat(), "take_by": d.take_by.isoformat(), "deadline": d.contact_by.isoformat(),
        "engineer": engineer_text(engineer)}}


class ComplaintAlerter:
    """Pushes new complaint follow-ups to supervisors (see the module docstring)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], mailbox: Any, *,
                 clock: Clock = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.mailbox = mailbox
        self.clock = clock
        # Set by wake(): the loop runs a pass now instead of at its next tick.
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def push_due(self, now: dt.datetime | None = None) -> int:
        """One pass: claim the follow-ups not yet pushed, then tell every active supervisor.
        Returns how many were pushed."""
        now = now or self.clock()
        async with self.sessionmaker() as s, s.begin():
            ids = (await s.execute(select(ComplaintFollowUp.id).where(ComplaintFollowUp.alerted_at.is_(None))
                                   .order_by(ComplaintFollowUp.opened_at).limit(BATCH))).scalars().all()
            if not ids:
                return 0
            claimed = (await s.execute(
                update(ComplaintFollowUp).where(ComplaintFollowUp.id.in_(ids), ComplaintFollowUp.alerted_at.is_(None))
                .values(alerted_at=now).returning(ComplaintFollowUp.id)
                .execution_options(synchronize_session=False))).scalars().all()
            if not claimed:
                return 0
            rows = (await s.execute(
                select(ComplaintFollowUp, WorkOrder.number, User)
                .join(WorkOrder, WorkOrder.id == ComplaintFollowUp.order_id)
                .outerjoin(User, User.id == ComplaintFollowUp.engineer_id)
                .where(ComplaintFollowUp.id.in_(claimed)).order_by(ComplaintFollowUp.opened_at))).all()
            messages = [complaint_message(c, number, eng) for c, number, eng in rows]
            recipients = (await s.execute(select(User.id).where(User.role.in_(RECIPIENT_ROLES),
                                                                User.active.is_(True)))).scalars().all()
        for message in messages:
            for uid in recipients:
                await self.mailbox.post(uid, message)
        log.info("complaint alerts pushed: %d follow-ups to %d supervisors", len(messages), len(recipients))
        return len(messages)

    async def run(self, interval: float) -> None:
        """Passes until cancelled: at start, every ``interval`` s and when woken. A failing pass
        is logged and retried at the next tick."""
        while True:
            self._woken.clear()
            try:
                await self.push_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("complaint alert pass failed")
            try:
                await asyncio.wait_for(self._woken.wait(), interval)
            except TimeoutError:
                pass


# Seconds between passes when nobody wakes the alerter (the dialler's results are picked up
# within this; the survey form wakes it at once).
INTERVAL = 2.0


async def survey_ctx(app: web.Application) -> AsyncIterator[None]:
    """The complaint alerter and its loop (a cleanup_ctx, after the database and the mailbox)."""
    from callcenter.app import _stop
    from callcenter.appkeys import MAILBOX, SESSIONMAKER, SETTINGS, SURVEY_ALERTS

    app[SURVEY_ALERTS] = alerter = ComplaintAlerter(app[SESSIONMAKER], app[MAILBOX])
    tasks = ([asyncio.create_task(alerter.run(INTERVAL), name="complaint-alerts")]
             if app[SETTINGS].background else [])
    yield
    await _stop(*tasks)

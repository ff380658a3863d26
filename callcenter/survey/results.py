"""The outbound dialler's hand-over of a survey call's result (``callcenter.outbound.dialler``
imports this module by name and calls :func:`record_survey_result` when the survey IVR's
``UserEvent: SurveyResult`` arrives).

It parses the event (``events.parse_survey_event``), and for a complete survey stores it through
:func:`callcenter.survey.services.record_survey_result` in its own transaction, channel
``phone-ivr``, idempotent per outbound job (the job id is the middle of the attempt id
``ob-<job>-<seq>-<hex>``). An incomplete survey (a question left unanswered) is not stored: the
order stays on the survey agents' list for a person to call. Supervisors are alerted by the
complaint alerter's next pass (within ``alerts.INTERVAL`` seconds).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.survey import services
from callcenter.survey.events import parse_survey_event
from callcenter.survey.rules import PHONE_IVR

log = logging.getLogger(__name__)
_ATTEMPT = re.compile(r"^ob-([0-9]{1,18})-")


def job_of(attempt_id: str) -> int | None:
    """The outbound job id of an attempt id (``ob-42-1-1a2b3c4d`` → 42), None if not one."""
    m = _ATTEMPT.match(attempt_id or "")
    return int(m.group(1)) if m else None


def _centre_tz() -> ZoneInfo | None:
    """The centre's zone for the CS number's day (``CALLCENTER_TIMEZONE``, as the settings read it)."""
    name = os.environ.get("CALLCENTER_TIMEZONE", "").strip()
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


async def record_survey_result(sessionmaker: async_sessionmaker[AsyncSession], msg: Mapping[str, str], *,
                               order_id: int | None, attempt_id: str, now: dt.datetime) -> int | None:
    """Store the IVR's result of ``order_id``; the survey id, or None when there is nothing to
    store (no order, an incomplete survey). Raises ValidationFailed for a malformed event and
    what :func:`services.record_survey_result` raises (Conflict: the order already has another
    result or is not completed); nothing is written then."""
    if order_id is None:
        log.warning("survey result of attempt %s has no work order", attempt_id)
        return None
    event = parse_survey_event(msg)
    if not event.complete:
        log.info("survey of order %s incomplete (%d of 6 answered): left for a survey agent",
                 order_id, len(event.answers))
        return None
    async with sessionmaker() as s, s.begin():
        return await services.record_survey_result(
            s, order_id=order_id, answers=event.answers, channel=PHONE_IVR, now=now, job_id=job_of(attempt_id),
            tz=_centre_tz())

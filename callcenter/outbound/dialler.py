"""The dialler: takes due jobs, applies the rules, originates through AMI, records outcomes.

Runs only on the instance that holds AMI (``app[LEADERSHIP]``), from ``outbound_ctx`` in
``callcenter/app.py``. One tick (:meth:`OutboundDialler.tick`):

1. after start-up and after every AMI login, attempts whose outcome is open (``dialling`` or
   ``unknown`` in the database, not being sent by this process) are **resolved from the channel
   list** (``CoreShowChannels``; the attempt id is the channel's Uniqueid through ``ChannelId``):
   a live channel that is up → answered; a live channel still ringing → wait for its
   ``OriginateResponse``; no channel → the call is over: its outcome is what its channel's
   evidence says (answered, or the hangup cause), and with no evidence at all ``unknown``: the
   job goes to ``review`` (a person decides; never dialled again by itself);
2. the creation passes (surveys for orders that reached 已完成, callbacks for abandoned calls
   from known customers: ``callcenter.outbound.services``);
3. due jobs from the schedule, up to the free channels, each paced by the token bucket: the
   rules decide (do-not-call, calling hours, deadline, a valid number), then in **one
   transaction** the job is claimed (``scheduled`` → ``dialling`` at the version read) and its
   attempt row inserted; only after that commit is the ``Originate`` written, once. A crash
   after the commit leaves an attempt ``dialling`` that step 1 resolves; a crash before it
   leaves the job scheduled: nothing was sent.

The connector never re-sends an action after a reconnect (``callcenter.ami.connector``: unlike
panoramisk's, which re-sends pending actions on ``FullyBooted``); an Originate whose answer was
lost with the session fails with ``AmiConnectionLost`` here and its attempt is marked
``unknown`` for step 1.

Outcomes come from ``OriginateResponse`` (``Reason`` 4 answered, 5 busy, 3 no answer,
8 congestion, 0 failure, 1 hung up) and, for surveys, the ``UserEvent: SurveyResult`` whose
``Job`` is the attempt id — and never from that one event alone: what the attempt's own channel
shows (up, in the callback context, taken by an agent, hung up with a cause;
``callcenter.outbound.evidence``) is written on the attempt as it happens and corrects the
outcome. An attempt whose channel was answered is recorded answered and never retried, whatever
happens to its ``OriginateResponse``; one that stays truly unknown (no response, no trace of
its channel) puts its job in ``review`` for a person to decide on the outbound board — a late
callback is bad, two calls to a customer who was already helped is worse. Event handlers run on
the AMI read path: they only schedule tasks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.codec import Message
from callcenter.ami.connector import (
    AmiConnectionLost,
    AmiConnector,
    AmiError,
    AmiNotConnected,
)
from callcenter.clock import Clock, utcnow
from callcenter.crypto import PhoneVault, Sealed
from callcenter.db.models import WorkOrder
from callcenter.db.outbound import DoNotCall, OutboundAttempt, OutboundJob
from callcenter.outbound import evidence, rules
from callcenter.outbound.schedule import DbSchedule, RedisSchedule, Schedule
from callcenter.privacy import mask_phone

log = logging.getLogger("callcenter.outbound")

_jobs = OutboundJob.__table__
_att = OutboundAttempt.__table__
_dnc = DoNotCall.__table__
EVENTS = frozenset({"OriginateResponse", "UserEvent"}) | evidence.EVENTS
# Seconds after its Originate an attempt with no channel and no answer is not yet judged lost
# (Asterisk creates the channel just after "successfully queued").
GRACE_S = 3.0


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """What the dialler needs from the settings (``callcenter.settings``: CALLCENTER_OUTBOUND_*)."""

    hours: rules.CallingHours
    rate: float = 2.0  # originates per second, at most
    max_channels: int = 10  # concurrent outbound channels on the trunk
    channel_template: str = "Local/{number}@outbound-trunk"
    caller_id: str = "4008001234"
    callback_context: str = "callback"
    survey_context: str = "survey"
    # Contexts the originated channel enters only once answered (evidence of an answer).
    answered_contexts: frozenset[str] = evidence.ANSWERED_CONTEXTS
    timeout_s: float = 30.0  # ring time before "no answer"
    max_attempts: int = rules.MAX_ATTEMPTS
    # A survey is due this long after completion and must be made within survey_window.
    survey_delay: dt.timedelta = dt.timedelta(minutes=30)
    survey_window: dt.timedelta = dt.timedelta(hours=24)
    # Seconds between creation passes (they query orders and calls).
    create_every: float = 5.0
    prefixes: tuple[str, ...] = rules.DEFAULT_PREFIXES

    @classmethod
    def from_settings(cls, s: Any) -> OutboundConfig:
        start, end = rules.parse_window(s.outbound_hours)
        hours = rules.CallingHours(s.tz, start, end, rules.parse_holidays(s.outbound_holidays))
        return cls(hours=hours, rate=s.outbound_rate, max_channels=s.outbound_max_channels,
                   channel_template=s.outbound_channel, caller_id=s.hotline)


@dataclass(slots=True)
class _Live:
    """An attempt this process is following (sent or being sent)."""

    job_id: int
    kind: str
    # True while send_action has not returned: its outcome is not knowable yet.
    sending: bool = True
    # Monotonic seconds when this process started following it.
    started: float = field(default_factory=time.monotonic)


def new_attempt_id(job_id: int, seq: int) -> str:
    return f"ob-{job_id}-{seq}-{secrets.token_hex(4)}"


def make_schedule(redis: Any, engine: Any) -> Schedule:
    return DbSchedule(engine) if redis is None else RedisSchedule(redis, engine)


class OutboundDialler:
    """See the module docstring. ``clock`` gives aware UTC "now" (tests move it);
    ``monotonic`` paces originates."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], vault: PhoneVault,
                 config: OutboundConfig, schedule: Schedule, *, clock: Clock = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sessionmaker = sessionmaker
        self.vault = vault
        self.config = config
        self.schedule = schedule
        self.clock = clock
        self.monotonic = monotonic
        self.connector: AmiConnector | None = None
        self.live: dict[str, _Live] = {}
        self.bucket = rules.Bucket(1.0, monotonic())
        # Resolve open attempts at the next tick (start-up, a lost answer).
        self._resolve_due = True
        self._last_create = float("-inf")
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._stopping = False
        # Counters (health, tests, the benchmark).
        self.originated = 0
        self.refused = 0
        self.resolved = 0
        self.originate_times: list[float] = []

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, connector: AmiConnector) -> None:
        self.connector = connector
        connector.add_event_handler(self.on_ami_event, EVENTS)
        connector.add_login_hook(self.on_login)

    def wake(self) -> None:
        """Run a tick now (a job was booked, an abandoned call ended)."""
        self._wake.set()

    async def run(self, interval: float, is_leader: Callable[[], bool]) -> None:
        """Tick every ``interval`` s (or when woken) while this instance leads and AMI is up,
        until :meth:`stop` (the tick under way finishes) or cancellation (it is cut short: its
        transaction rolls back; the database stays consistent, see the module docstring)."""
        try:
            while not self._stopping:
                try:
                    c = self.connector
                    if is_leader() and c is not None and c.connected:
                        await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbound: tick failed; trying again in %.1f s", interval)
                try:
                    await asyncio.wait_for(self._wake.wait(), interval)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            if self._tasks:
                # Outcomes being written: let them finish (a cut transaction rolls back, and
                # the attempt would only be resolved again at the next start).
                await asyncio.wait(list(self._tasks), timeout=2.0)
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the tick under way."""
        self._stopping = True
        self._wake.set()

    def abandoned_call_ended(self) -> None:
        """An abandoned call ended: run the creation pass soon (once the recorder has written
        the call, within its flush interval) instead of at the pass's usual pace."""
        self._last_create = float("-inf")
        asyncio.get_running_loop().call_later(0.5, self.wake)

    def reset(self) -> None:
        """Leadership moved: forget what we followed (the next leader resolves it)."""
        self.live.clear()
        self._resolve_due = True

    # -- one tick -------------------------------------------------------------------------------

    async def tick(self) -> int:
        """One pass; returns the number of originates started."""
        overdue = self.monotonic() - (self.config.timeout_s + 60.0)
        if any(not a.sending and a.started < overdue for a in self.live.values()):
            self._resolve_due = True  # an answer that never came (lost between two sessions)
        if self._resolve_due:
            self._resolve_due = False
            await self.resolve_open()
        if self.monotonic() - self._last_create >= self.config.create_every:
            self._last_create = self.monotonic()
            from callcenter.outbound.services import create_due_jobs

            created = await create_due_jobs(self.sessionmaker, self.config, self.clock())
            for job_id, priority, due in created:
                await self.schedule.put(job_id, priority, due)
        await self.schedule.ensure()
        if isinstance(self.schedule, RedisSchedule):
            await self._return_expired_leases()
        return await self.dial_due()

    async def dial_due(self) -> int:
        started = 0
        while True:
            free = rules.free_channels(len(self.live), self.config.max_channels)
            if free <= 0:
                return started
            ids = await self.schedule.due(self.clock(), min(free, 50))
            if not ids:
                return started
            for job_id in ids:
                c = self.connector
                if c is None or not c.connected:
                    # AMI went away mid-tick: hand the rest back, dial again once it is back.
                    for rest in ids[ids.index(job_id):]:
                        await self.schedule.put(rest, *await self._due_of(rest))
                    return started
                await self._pace()
                if await self._start(job_id):
                    started += 1

    async def _pace(self) -> None:
        while True:
            # Burst 2: a wake-up a little late (asyncio's sleep overshoots by ~1 ms) is made up at
            # the next originate instead of lost, so the long-run rate is the set one; any
            # one-second window still holds at most rate + 1 originates.
            wait, self.bucket = rules.take_token(self.bucket, self.monotonic(), self.config.rate, 2.0)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _due_of(self, job_id: int) -> tuple[int, dt.datetime]:
        async with self.sessionmaker() as s:
            row = (await s.execute(select(_jobs.c.priority, _jobs.c.due_at)
                                   .where(_jobs.c.id == job_id))).first()
        return (row.priority, _aware(row.due_at)) if row else (1, self.clock())

    async def _return_expired_leases(self) -> None:
        assert isinstance(self.schedule, RedisSchedule)
        ids = await self.schedule.expired_leases(self.clock())
        if not ids:
            return
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(_jobs.c.id, _jobs.c.priority, _jobs.c.due_at).where(
                _jobs.c.id.in_(ids), _jobs.c.status == "scheduled"))).all()
        for r in rows:
            await self.schedule.put(r.id, r.priority, _aware(r.due_at))

    # -- starting an attempt --------------------------------------------------------------------

    async def _start(self, job_id: int) -> bool:
        """Claim the job and insert its attempt (one transaction), then send the Originate."""
        now = self.clock()
        async with self.sessionmaker() as s, s.begin():
            job = (await s.execute(select(OutboundJob).where(OutboundJob.id == job_id))).scalar_one_or_none()
            if job is None or job.status != "scheduled":
                await self.schedule.done(job_id)
                return False
            if _aware(job.due_at) > now:  # moved on since the schedule saw it
                await self.schedule.put(job.id, job.priority, _aware(job.due_at))
                return False
            try:
                number = self.vault.decrypt(job.number_enc)
            except ValueError:
                number = ""  # refused below, as an invalid number
            indexes = {job.number_index, *(self.vault.indexes(number) if number else ())}
            on_dnc = (await s.execute(select(func.count()).select_from(_dnc).where(
                _dnc.c.number_index.in_(indexes)))).scalar_one() > 0
            decision = rules.may_dial(now, self.config.hours, on_dnc=on_dnc,
                                      deadline=_aware(job.deadline_at) if job.deadline_at else None)
            if decision.dial:
                from callcenter.outbound.services import no_longer_wanted

                moot = await no_longer_wanted(s, job)
                if moot:
                    decision = rules.Decision(False, stop=moot)
            headers: dict[str, object] | None = None
            later: dt.datetime | None = None
            attempt_id = new_attempt_id(job.id, job.attempts + 1)
            if decision.dial:
                try:
                    headers = await self._headers(s, job, attempt_id, number)
                except rules.Refused as e:
                    decision = rules.Decision(False, stop=e.code)
                    log.warning("outbound: job %d refused before dialling (%s: %s)", job.id, e.code, e)
            if not decision.dial:
                values: dict[str, Any] = {"updated_at": now, "version": job.version + 1}
                if decision.later is not None:
                    values["due_at"] = decision.later
                else:
                    # A job the dialler cannot place for a reason of its own making (a value it
                    # cannot pass to Asterisk) waits for a person; the rules' own refusals end it.
                    status = ("exhausted" if decision.stop == "expired"
                              else "review" if decision.stop == "header" else "cancelled")
                    values.update(status=status, last_outcome=decision.stop)
                    self.refused += 1
                await s.execute(update(_jobs).where(_jobs.c.id == job.id, _jobs.c.version == job.version)
                                .values(**values))
                later = decision.later
            else:
                claimed = await s.execute(
                    update(_jobs).where(_jobs.c.id == job.id, _jobs.c.status == "scheduled",
                                        _jobs.c.version == job.version)
                    .values(status="dialling", attempts=job.attempts + 1, updated_at=now,
                            version=job.version + 1).returning(_jobs.c.id))
                if claimed.first() is None:
                    return False  # another dialler took it
                await s.execute(insert(_att).values(id=attempt_id, job_id=job.id, seq=job.attempts + 1,
                                                    state="dialling", started_at=now, channel=""))
            kind, priority = job.kind, job.priority
        # Committed.
        if not decision.dial:
            if later is not None:
                await self.schedule.put(job_id, priority, later)
            else:
                await self.schedule.done(job_id)
                await self._after_end(job_id, now)
            return False
        assert headers is not None
        self.live[attempt_id] = _Live(job_id, kind)
        self._spawn(self._send(attempt_id, headers))
        return True

    async def _headers(self, s: AsyncSession, job: OutboundJob, attempt_id: str,
                       number: str) -> dict[str, object]:
        order_number = ""
        if job.order_id is not None:
            order_number = (await s.execute(select(WorkOrder.number).where(
                WorkOrder.id == job.order_id))).scalar_one_or_none() or ""
        c = self.config
        if order_number and not rules.is_token(order_number):
            # An imported order's old number may hold "/" or "#": not something to put on a
            # channel. The order travels by the attempt id anyway (the pop and the survey find
            # it from the job); WORK_ORDER is only shown in the dialplan's logs.
            log.info("outbound: job %d's order number is not a plain token; dialled without WORK_ORDER",
                     job.id)
            order_number = ""
        if job.kind == "survey":
            variables = {"SURVEY_JOB": attempt_id, "WORK_ORDER": order_number}
            context = c.survey_context
        else:
            variables = {"CALLBACK_JOB": attempt_id}
            if order_number:
                variables["WORK_ORDER"] = order_number
            if job.agent_id is not None:
                from callcenter.db.models import User

                ext = (await s.execute(select(User.extension).where(User.id == job.agent_id))).scalar_one_or_none()
                if ext:
                    variables["CALLBACK_AGENT"] = ext
            context = c.callback_context
        variables = {k: v for k, v in variables.items() if v}
        return rules.originate_headers(
            attempt_id=attempt_id, number=number, channel_template=c.channel_template,
            context=context, caller_id=c.caller_id, timeout_s=c.timeout_s, variables=variables,
            prefixes=c.prefixes)

    async def _send(self, attempt_id: str, headers: dict[str, object]) -> None:
        c = self.connector
        live = self.live.get(attempt_id)
        try:
            if c is None:
                raise AmiNotConnected("Originate")
            self.originated += 1
            self.originate_times.append(self.monotonic())
            await c.send_action("Originate", headers, action_id=attempt_id, timeout=10.0)
        except AmiNotConnected:
            # Nothing was written: the attempt did not happen (the session dropped between the
            # claim and the send). Its row goes, the job is due again.
            self.originated -= 1
            await self._unsend(attempt_id)
        except AmiError:
            # Asterisk refused the action (Response: Error): no call was placed.
            await self.finish(attempt_id, "failure", None)
        except (AmiConnectionLost, TimeoutError):
            # Written, answer lost: Asterisk may be dialling. Never re-sent: resolved from the
            # channel list once the session is back (resolve_open).
            await self._mark_unknown(attempt_id)
        finally:
            if live is not None:
                live.sending = False

    async def _unsend(self, attempt_id: str) -> None:
        now = self.clock()
        async with self._lock, self.sessionmaker() as s, s.begin():
            row = (await s.execute(sa_delete(_att).where(_att.c.id == attempt_id, _att.c.state == "dialling")
                                   .returning(_att.c.job_id))).first()
            put = None
            if row is not None:
                put = (await s.execute(update(_jobs).where(_jobs.c.id == row.job_id, _jobs.c.status == "dialling")
                                       .values(status="scheduled", attempts=_jobs.c.attempts - 1,
                                               due_at=now, updated_at=now, version=_jobs.c.version + 1)
                                       .returning(_jobs.c.id, _jobs.c.priority))).first()
        self.live.pop(attempt_id, None)
        if put is not None:
            await self.schedule.put(put.id, put.priority, now)

    async def _mark_unknown(self, attempt_id: str) -> None:
        async with self.sessionmaker() as s, s.begin():
            await s.execute(update(_att).where(_att.c.id == attempt_id, _att.c.state == "dialling")
                            .values(state="unknown"))
        self._resolve_due = True
        self.wake()

    # -- events (read path) ---------------------------------------------------------------------

    def on_ami_event(self, msg: Message) -> None:
        name = msg.get("Event")
        if name == "OriginateResponse":
            aid = msg.get("ActionID", "")
            if aid.startswith("ob-"):
                outcome = rules.outcome_of(msg.get("Reason"))
                reason = msg.get("Reason")
                self._spawn(self.finish(aid, outcome, int(reason) if (reason or "").isdigit() else None,
                                        _mask_channel(msg.get("Channel", ""))))
        elif name == "UserEvent" and msg.get("UserEvent") in ("SurveyResult", "OptOut"):
            job = msg.get("Job", "")
            if job.startswith("ob-"):
                self._spawn(self.on_user_event(dict(msg)))
        else:
            ev = evidence.evidence_of(msg, self.config.answered_contexts)
            if ev is not None:
                self._spawn(self.note(ev))

    async def note(self, ev: evidence.Evidence) -> None:
        """Write what the attempt's channel showed on its row; an answer settles the attempt
        as answered at once (its OriginateResponse, if it comes, changes nothing)."""
        now = self.clock()
        async with self._lock:
            async with self.sessionmaker() as s, s.begin():
                row = (await s.execute(select(_att.c.state, _att.c.answered_at, _att.c.agent_member,
                                              _att.c.hangup_cause, _att.c.channel)
                                       .where(_att.c.id == ev.attempt_id))).first()
                if row is None:
                    return  # not ours (another system's ob- id), or long gone
                values: dict[str, Any] = {}
                if ev.answered and row.answered_at is None:
                    values["answered_at"] = now
                if ev.agent and row.agent_member != ev.agent:
                    values["agent_member"] = ev.agent[:64]
                cause = evidence.better_cause(row.hangup_cause, ev.hangup_cause)
                if cause != row.hangup_cause:
                    values["hangup_cause"] = cause
                if ev.channel and not row.channel:
                    values["channel"] = _mask_channel(ev.channel)[:128]
                if values:
                    await s.execute(update(_att).where(_att.c.id == ev.attempt_id).values(**values))
            settle_now = ev.answered and row.state != "done"
        if settle_now:
            await self.finish(ev.attempt_id, "answered", None, _mask_channel(ev.channel))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbound: task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the event tasks under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- outcomes -------------------------------------------------------------------------------

    async def finish(self, attempt_id: str, outcome: str, reason_code: int | None,
                     channel: str = "") -> bool:
        """Record an attempt's outcome and move its job on (answered, retry, exhausted); once
        per attempt (a second outcome for it is ignored). Returns True if this call recorded it."""
        now = self.clock()
        async with self._lock:
            async with self.sessionmaker() as s, s.begin():
                seen = (await s.execute(select(_att.c.answered_at, _att.c.hangup_cause, _att.c.channel)
                                        .where(_att.c.id == attempt_id, _att.c.state != "done"))).first()
                if seen is None:
                    self.live.pop(attempt_id, None)
                    return False
                # The channel's own evidence corrects what was reported (evidence module).
                outcome = evidence.settle(outcome, answered=seen.answered_at is not None,
                                          hangup_cause=seen.hangup_cause)
                att_values: dict[str, Any] = {"state": "done", "outcome": outcome,
                                              "reason_code": reason_code, "finished_at": now,
                                              "channel": (channel or seen.channel)[:128]}
                if outcome == "answered" and seen.answered_at is None:
                    att_values["answered_at"] = now
                done = (await s.execute(
                    update(_att).where(_att.c.id == attempt_id, _att.c.state != "done")
                    .values(**att_values).returning(_att.c.job_id))).first()
                if done is None:
                    self.live.pop(attempt_id, None)
                    return False
                job = (await s.execute(select(OutboundJob).where(OutboundJob.id == done.job_id))).scalar_one()
                values: dict[str, Any] = {"updated_at": now, "version": job.version + 1,
                                          "last_outcome": outcome}
                put: tuple[int, dt.datetime] | None = None
                if outcome == "answered":
                    values["status"] = "answered"
                elif outcome == "unknown":
                    # Nothing says whether the customer was reached: a person decides.
                    values["status"] = "review"
                    log.warning("outbound: attempt %s of job %d ended with no trace; the job waits "
                                "for a person on the outbound board", attempt_id, job.id)
                else:
                    later = rules.next_retry(
                        outcome, job.attempts, now, self.config.hours,
                        deadline=_aware(job.deadline_at) if job.deadline_at else None,
                        max_attempts=self.config.max_attempts)
                    if later is None:
                        values["status"] = "exhausted"
                    else:
                        values.update(status="scheduled", due_at=later)
                        put = (job.priority, later)
                moved = (await s.execute(update(_jobs).where(
                    _jobs.c.id == job.id, _jobs.c.status == "dialling").values(**values)
                    .returning(_jobs.c.id))).first()
                exhausted = moved is not None and values.get("status") == "exhausted"
            self.live.pop(attempt_id, None)
        if moved is not None and put is not None:
            await self.schedule.put(job.id, *put)
        elif moved is not None:
            await self.schedule.done(job.id)
        if exhausted:
            await self._after_end(job.id, now)
        self.resolved += 1
        self.wake()  # a channel is free
        return True

    async def _after_end(self, job_id: int, now: dt.datetime) -> None:
        """An exhausted survey falls back to an SMS with a link (the notification outbox)."""
        try:
            outbox = importlib.import_module("callcenter.notify.outbox").Outbox
        except ImportError:
            return
        async with self.sessionmaker() as s, s.begin():
            job = (await s.execute(select(OutboundJob).where(OutboundJob.id == job_id))).scalar_one_or_none()
            if job is None or job.kind != "survey" or job.status != "exhausted" or job.order_id is None:
                return
            if not job.number_masked.startswith("1"):  # a landline cannot take an SMS
                return
            number = (await s.execute(select(WorkOrder.number).where(WorkOrder.id == job.order_id))).scalar_one()
            text = (f"【售后服务】您好，工单{number}的服务已完成，我们未能电话联系到您。"
                    f"请点击链接为本次服务评价：/survey/s/{number}")
            try:
                await outbox.enqueue(s, kind="survey.link", recipient=Sealed(job.number_index, job.number_enc,
                                                                           job.number_masked),
                                     text=text[:400], dedupe_key=f"survey.link:{job.order_id}", now=now,
                                     order_id=job.order_id)
            except ValueError as e:
                log.warning("outbound: survey SMS for job %d not queued (%s)", job_id, e)

    async def on_user_event(self, msg: dict[str, str]) -> None:
        """``SurveyResult``: keep the answers (and hand them to callcenter.survey when it is
        there); ``OptOut``: the customer refused further calls — the number joins the DNC list."""
        attempt_id = msg["Job"]
        now = self.clock()
        async with self.sessionmaker() as s, s.begin():
            row = (await s.execute(select(_att.c.job_id).where(_att.c.id == attempt_id))).first()
            if row is None:
                log.warning("outbound: user event for an unknown attempt")
                return
            job = (await s.execute(select(OutboundJob).where(OutboundJob.id == row.job_id))).scalar_one()
            if msg.get("UserEvent") == "OptOut":
                from callcenter.outbound.services import add_dnc

                await add_dnc(s, Sealed(job.number_index, job.number_enc, job.number_masked),
                              reason="通话中拒绝再次来电", source="call", user_id=None, now=now)
                return
            answers = {k: msg.get(k, "") for k in ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6")}
            await s.execute(update(_att).where(_att.c.id == attempt_id).values(answers=answers))
            order_id = job.order_id
        if order_id is not None:
            await record_survey(self.sessionmaker, msg, order_id=order_id, attempt_id=attempt_id, now=now)

    # -- resolving open attempts ----------------------------------------------------------------

    async def on_login(self, connector: AmiConnector) -> None:
        """Login hook: every attempt whose outcome is open is resolved from the channels."""
        await self.resolve_open(connector)

    async def resolve_open(self, connector: AmiConnector | None = None) -> int:
        """Resolve attempts ``dialling``/``unknown`` that this process is not sending right now
        (see the module docstring); returns how many were settled."""
        c = connector or self.connector
        if c is None or not c.connected:
            self._resolve_due = True
            return 0
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(_att.c.id, _att.c.job_id, _att.c.state, _att.c.started_at)
                                    .where(_att.c.state != "done"))).all()
        if not rows:
            return 0
        channels = await c.send_list_action("CoreShowChannels")
        by_id: dict[str, Message] = {}
        for ch in channels:
            for key in ("Uniqueid", "Linkedid"):
                v = ch.get(key)
                # A Local channel's ;2 half shares the Linkedid; the ;1 half (Uniqueid) wins.
                if v and v.startswith("ob-") and (key == "Uniqueid" or v not in by_id):
                    by_id[v] = ch
        now = self.clock()
        settled = 0
        for r in rows:
            live = self.live.get(r.id)
            if live is not None and live.sending:
                continue  # its send_action will tell
            ch = by_id.get(r.id)
            if ch is not None:
                if ch.get("ChannelState") == "6":
                    settled += await self.finish(r.id, "answered", None, _mask_channel(ch.get("Channel", "")))
                elif r.id not in self.live:
                    self.live[r.id] = _Live(r.job_id, "", sending=False)  # its answer will come
                else:
                    self.live[r.id].started = time.monotonic()  # still ringing: look again later
                continue
            age = (now - _aware(r.started_at)).total_seconds()
            if age < GRACE_S and r.state == "dialling" and live is not None:
                self._resolve_due = True  # look again at the next tick
                continue
            settled += await self.finish(r.id, "unknown", None)
        if settled:
            log.info("outbound: %d open attempts resolved from the channel list", settled)
        return settled


async def record_survey(sessionmaker: async_sessionmaker[AsyncSession], msg: dict[str, str], *,
                        order_id: int | None, attempt_id: str, now: dt.datetime) -> None:
    """Hand a SurveyResult to ``callcenter.survey.results.record_survey_result`` when that
    module exists (the survey slice: the SA-CS-005 record); until then the answers stay on the
    attempt row."""
    try:
        results = importlib.import_module("callcenter.survey.results")
    except ImportError:
        return
    record = getattr(results, "record_survey_result", None)
    if record is None:
        return
    try:
        await record(sessionmaker, msg, order_id=order_id, attempt_id=attempt_id, now=now)
    except Exception:
        log.exception("outbound: the survey result of attempt %s was not recorded", attempt_id)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _mask_channel(channel: str) -> str:
    """``Local/13800138000@outbound-trunk-00000018;1`` with the number masked."""
    head, sep, rest = channel.partition("/")
    number, at, tail = rest.partition("@")
    return f"{head}{sep}{mask_phone(number) if number.isdigit() else number}{at}{tail}"

"""The outbox sender: claims due messages, sends them, records what happened.

A pass (:meth:`OutboxSender.run_pass`) at ``now``:

1. **claims** up to ``batch`` rows in one transaction — queued rows due by ``now``, and rows
   another sender claimed whose lease ran out (it died mid-send) — with a conditional
   ``UPDATE … SET status = 'sending', lease_until = now + lease, attempts = attempts + 1
   WHERE id IN (…) AND <still claimable> RETURNING …``: on PostgreSQL the ids come from a
   ``SELECT … FOR UPDATE SKIP LOCKED`` just before (concurrent senders skip each other's
   batches), on SQLite from a subquery of the same statement (one writer at a time). So of
   several senders (instances) exactly one holds a row. In the same transaction each kind's
   :meth:`KindHooks.still_wanted` may cancel what no longer applies (a reminder for a visit
   rebooked, started or cancelled);
2. **sends** outside any transaction (no lock is held during the gateway's round trip): decrypts
   the number, checks it is a mainland mobile (else: failed, not retried), calls the gateway with
   a timeout;
3. **records** each outcome in its own transaction, conditional on still holding the claim
   (``status = 'sending' AND attempts = <ours>``): ``sent`` (+ the kind's :meth:`KindHooks.sent`,
   e.g. the SLA milestone, in the same transaction), back to ``queued`` at
   :func:`~callcenter.notify.rules.retry_at` after a retryable error, else ``failed``.

A pass drains: it claims again while a batch came back full. Delivery is at least once: a
sender that dies after the gateway accepted a message but before recording it leaves a row
whose lease runs out and is sent again (under the same reference ``ntf-<id>``, which a gateway
with client references uses to drop the repeat). Nothing here logs a number or a text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock, utcnow
from callcenter.crypto import PhoneVault
from callcenter.db.notify import Notification
from callcenter.notify.gateway import GatewayError, SmsGateway, is_sms_number
from callcenter.notify.rules import LEASE, MAX_ATTEMPTS, SEND_TIMEOUT_S, retry_at
from callcenter.privacy import mask_numbers_in_text

log = logging.getLogger("callcenter.notify")

_nt = Notification.__table__


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this sender holds (``attempts``: including the one under way)."""

    id: int
    kind: str
    recipient_enc: str
    recipient_masked: str
    text: str
    attempts: int
    order_id: int | None
    appointment_id: int | None

    @property
    def ref(self) -> str:
        return f"ntf-{self.id}"


class KindHooks(Protocol):
    """What one kind of message does around its sending (``visits.py`` for appointments)."""

    async def still_wanted(self, session: AsyncSession, row: Claimed) -> bool:
        """False cancels the message instead of sending it (in the claim's transaction)."""
        ...

    async def sent(self, session: AsyncSession, row: Claimed, at: dt.datetime) -> None:
        """The gateway accepted it at ``at``: record what that means (in the transaction that
        marks the row sent)."""
        ...


@dataclass(slots=True)
class PassResult:
    """Ids of the messages a pass sent, put back for a retry, failed for good, cancelled."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str  # sent | retry | failed
    gateway_id: str = ""
    error: str = ""


def _error_text(code: str, message: str) -> str:
    """``last_error``: the code and the gateway's words, any number in them masked."""
    return mask_numbers_in_text(f"{code}: {message}" if message else code)[:200]


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    """Due queued rows, and claimed rows whose lease ran out with attempts left."""
    c = _nt.c
    return or_(and_(c.status == "queued", c.due_at <= now),
               and_(c.status == "sending", c.lease_until <= now, c.attempts < MAX_ATTEMPTS))


class OutboxSender:
    """Sends the outbox. ``hooks``: kind → :class:`KindHooks` (a kind without hooks is always
    wanted and needs nothing recorded); ``clock``: what :meth:`run` takes as now."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], vault: PhoneVault,
                 gateway: SmsGateway, *, hooks: Mapping[str, KindHooks] | None = None,
                 clock: Clock = utcnow, batch: int = 50, concurrency: int = 8,
                 lease: dt.timedelta = LEASE, send_timeout: float = SEND_TIMEOUT_S) -> None:
        if hooks is None:
            from callcenter.notify.visits import visit_hooks

            hooks = visit_hooks()
        self.sessionmaker = sessionmaker
        self.vault = vault
        self.gateway = gateway
        self.hooks: dict[str, KindHooks] = dict(hooks)
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.send_timeout = send_timeout
        self._slots = asyncio.Semaphore(concurrency)

    def register(self, kind: str, hooks: KindHooks) -> None:
        """Hooks for another kind of message (e.g. issue 5's ``survey.link``)."""
        self.hooks[kind] = hooks

    async def run(self, interval: float) -> None:
        """A pass now and then every ``interval`` seconds, until cancelled. A failed pass is
        logged and the next tick tries again. Cancellation: a send under way is abandoned; its
        row keeps its claim until the lease runs out, then it is sent again."""
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notify: pass failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def run_pass(self, now: dt.datetime | None = None) -> PassResult:
        """Send everything due at ``now`` (default: the clock); what was done."""
        now = (now or self.clock()).astimezone(dt.UTC)
        result = PassResult()
        while True:
            claimed, cancelled, expired = await self.claim(now)
            result.cancelled += cancelled
            result.failed += expired
            outcomes = await asyncio.gather(*(self._send(row) for row in claimed))
            for row, outcome in zip(claimed, outcomes):
                status = await self._record(row, outcome, now)
                if status is not None:
                    {"sent": result.sent, "retry": result.retried, "failed": result.failed}[status].append(row.id)
            if len(claimed) + len(cancelled) < self.batch:
                return result

    async def claim(self, now: dt.datetime) -> tuple[list[Claimed], list[int], list[int]]:
        """(rows now held by this sender, ids cancelled as no longer wanted, ids failed because
        their last attempt's lease ran out) — one transaction."""
        c = _nt.c
        async with self.sessionmaker() as s, s.begin():
            expired = list((await s.execute(
                update(_nt).where(c.status == "sending", c.lease_until <= now, c.attempts >= MAX_ATTEMPTS)
                .values(status="failed", lease_until=None,
                        last_error="lease_expired: the last attempt's outcome is unknown")
                .returning(c.id))).scalars())
            rows = await self._take(s, now)
            claimed, cancelled = [], []
            for r in sorted(rows, key=lambda r: r.id):
                row = Claimed(*r)
                hooks = self.hooks.get(row.kind)
                if hooks is not None and not await hooks.still_wanted(s, row):
                    cancelled.append(row.id)
                else:
                    claimed.append(row)
            if cancelled:
                await s.execute(update(_nt).where(c.id.in_(cancelled))
                                .values(status="cancelled", lease_until=None))
        for i in expired:
            log.warning("notification %s failed: its last attempt's lease ran out", i)
        return claimed, cancelled, expired

    async def _take(self, s: AsyncSession, now: dt.datetime) -> Sequence[Row[Any]]:
        """Mark up to ``batch`` claimable rows ``sending`` for this sender (lease, one more
        attempt) in ``s``'s transaction; the rows taken."""
        c = _nt.c
        pick = select(c.id).where(_claimable(now)).order_by(c.due_at, c.id).limit(self.batch)
        if s.bind.dialect.name == "postgresql":
            # Lock the batch first (other senders skip it), then update it. Not as one
            # ``IN (SELECT … SKIP LOCKED LIMIT n)``: PostgreSQL may run that subquery again
            # while updating, and each run skips what the last one took — more than n rows.
            ids = list((await s.execute(pick.with_for_update(skip_locked=True))).scalars())
            if not ids:
                return []
            target = c.id.in_(ids)
        else:
            # One statement: SQLite takes the write lock at its start, so the rows it reads
            # cannot change under it (a read first would fail to upgrade if they had).
            target = c.id.in_(pick.scalar_subquery())
        return (await s.execute(
            update(_nt).where(target, _claimable(now))
            .values(status="sending", lease_until=now + self.lease, attempts=c.attempts + 1)
            .returning(c.id, c.kind, c.recipient_enc, c.recipient_masked, c.text, c.attempts,
                       c.order_id, c.appointment_id)
            .execution_options(synchronize_session=False))).all()

    async def _send(self, row: Claimed) -> _Outcome:
        try:
            number = self.vault.decrypt(row.recipient_enc)
        except ValueError:
            return _Outcome("failed", error="unreadable_number: no key opens the stored number")
        if not is_sms_number(number):
            return _Outcome("failed", error="invalid_number: not a mainland mobile number")
        async with self._slots:
            try:
                gateway_id = await asyncio.wait_for(self.gateway.send(number, row.text, row.ref),
                                                    self.send_timeout)
            except GatewayError as e:
                code = _error_text(e.code, str(e))
                return _Outcome("retry" if e.retryable else "failed", error=code)
            except TimeoutError:
                return _Outcome("retry", error=f"timeout: no answer within {self.send_timeout:.0f} s")
            except Exception as e:  # noqa: BLE001 - a gateway's own failure (socket, HTTP…): retried
                # Only the type: a library's message may quote the request, number included.
                return _Outcome("retry", error=f"error: {type(e).__name__}")
        return _Outcome("sent", gateway_id=str(gateway_id)[:64])

    async def _record(self, row: Claimed, outcome: _Outcome, now: dt.datetime) -> str | None:
        """Write the outcome (``sent_at``: the pass's ``now``) if the claim is still ours; the
        status written (sent | retry | failed), or None if the claim was lost."""
        c = _nt.c
        values: dict[str, object] = {"lease_until": None}
        if outcome.status == "sent":
            values.update(status="sent", sent_at=now, gateway_id=outcome.gateway_id, last_error="")
        else:
            again = retry_at(row.attempts, now) if outcome.status == "retry" else None
            if again is None:
                outcome = _Outcome("failed", error=outcome.error)
                values.update(status="failed", last_error=outcome.error)
            else:
                values.update(status="queued", due_at=again, last_error=outcome.error)
        async with self.sessionmaker() as s, s.begin():
            done = (await s.execute(
                update(_nt).where(c.id == row.id, c.status == "sending", c.attempts == row.attempts)
                .values(**values).returning(c.id))).scalar_one_or_none()
            if done is None:
                # Our lease ran out and another sender took the row over: theirs to record.
                log.warning("notification %s: claim lost before its outcome was recorded", row.id)
                return None
            hooks = self.hooks.get(row.kind)
            if outcome.status == "sent" and hooks is not None:
                await hooks.sent(s, row, now)
        if outcome.status == "sent":
            log.info("notification %s (%s) sent to %s", row.id, row.kind, row.recipient_masked)
        else:
            log.warning("notification %s (%s) attempt %d %s: %s", row.id, row.kind, row.attempts,
                        "failed for good" if outcome.status == "failed" else "failed, will retry",
                        outcome.error)
        return outcome.status

"""The SLA scheduler: raises alerts as clocks near and pass their deadlines, clears them when the
order moves on, and pushes both to every active supervisor's and dispatcher's websocket.

A pass (:meth:`SlaScheduler.run_pass`):

1. reads the snapshots of the orders that matter now — one Core select of the snapshot
   columns only (:func:`watch_query`): in the watched statuses (open, and 已完成 awaiting its
   survey) through ``ix_work_orders_status_urgency``, plus dissatisfied orders not yet
   escalated through ``ix_work_orders_unescalated`` (migration 0005), and of those only the
   ones with a clock that may be at its warning time or with an open alert — and the open
   alerts (``ix_sla_alerts_open``). Orders in other statuses (已回访, 已取, 已取消) are not
   watched: their clocks are history, except a dissatisfied customer's escalation. Above
   :data:`_RANGED_ABOVE` watched orders, read and decided in ranges of :data:`_ID_RANGE` order
   ids (each range: its open alerts, then its orders), so a pass's memory does not grow with
   the backlog;
2. decides, without I/O (:func:`plan_pass`), what to raise, move and clear;
3. writes it in one transaction, every statement naming the state it expects and returning the
   rows it changed:

   - raise: ``INSERT … ON CONFLICT (order_id, clock, level) DO NOTHING RETURNING`` — an alert is
     raised once per order, clock and level, also across restarts;
   - re-raise: a cleared alert whose clock runs late again (a milestone was reset, e.g. the order
     went to another engineer) is reopened (``… WHERE cleared_at IS NOT NULL``);
   - move: an open alert whose deadline changed (the visit was rebooked) takes the new deadline
     if it is still due, and is pushed again; otherwise it is cleared;
   - clear: open alerts whose clock no longer runs (met, ended, order cancelled or closed) get
     ``cleared_at`` (``… WHERE cleared_at IS NULL``);

4. after the commit, pushes ``sla.alert`` / ``sla.cleared`` through the mailbox (so the rows are
   visible to a client that reloads the list on the message). Only the pass whose statement
   changed a row pushes it: when passes overlap, each alert is announced exactly once. More than
   :data:`PUSH_LIMIT` changes in one pass (the first pass over a backlog) are announced as one
   ``sla.resync`` message (reload the list) instead of a flood.

**Several instances.** Every instance may run passes: the unique key and the conditional writes
make concurrent passes safe (no duplicate alert, no double push). To avoid the wasted work, with
Redis each pass is gated by a short lock (:class:`RedisPassGate`, ``SET NX PX`` for 90 % of the
interval, never released early): whichever instance ticks first after it expires runs the pass,
the others skip that tick. So the cluster runs about one pass per interval, and an instance that
dies costs at most one interval — no lease to renew or hand over. If Redis does not answer, the
instance runs the pass anyway (safe, only redundant). The AMI leadership (``app[LEADERSHIP]``)
is deliberately not used: it follows the Asterisk connection — its holder is the busiest
instance, and the SLA clock has nothing to do with whether Asterisk is reachable.

**Off the serving process.** A pass reads every watched order — with a backlog, every open
order of the centre (100,000+), each decoded and decided, seconds of CPU every interval — and the
process that runs it also serves the screen pops, whose latency is counted in milliseconds. On
the event loop, in slices, the pass took turns with the pops and stretched their p99 by two
orders of magnitude (``docs/benchmarks.md``); in a thread, the GIL would make every request wait
for it. So the instance that runs passes (``callcenter serve``) gives the reading, deciding and
writing (steps 1–3) to one child process of its own (:class:`PassProcess`, started with
``spawn``, its CPU priority lowered by :data:`PASS_NICE`, its own database engine): the server
process only awaits the outcome and pushes the messages (step 4). Nothing of the pass stays in
the server's heap, and a child is replaced after :data:`PASSES_PER_CHILD` passes so its memory
cannot creep either. A small centre does not need one: until a pass would read more than
:data:`PROCESS_ABOVE` orders (a ``count(*)``, which the database computes, not the loop), passes
run in process and no child is started; from the first larger one on, every pass goes to the
child. A scheduler built without one (tests, tools) always runs the pass in process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import multiprocessing
import os
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import CompoundSelect, and_, func, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callcenter.clock import Clock as WallClock
from callcenter.clock import utcnow
from callcenter.db.models import User, WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.sla.rules import (
    ALLOWANCES,
    LABELS,
    LEVELS,
    NO_DISPATCH,
    NO_PLAN,
    NO_SURVEY,
    PLAN_ALLOWANCES,
    REMINDER_LEAD,
    SNAPSHOT_FIELDS,
    OrderSnapshot,
    aware,
    running_levels,
    warning_offset,
)

log = logging.getLogger("callcenter.sla")

# Statuses whose clocks may run: open on-site and carry-in orders, and 已完成 (awaiting the survey).
WATCHED_STATUSES = ("待处理", "已派单", "已预约", "服务中", "待件", "已完成", "待修", "修理中", "难修", "待取")
# Who is told about alerts.
RECIPIENT_ROLES = ("supervisor", "dispatcher")
# More changes than this in one pass go out as one ``sla.resync`` message per recipient.
PUSH_LIMIT = 50
_CHUNK = 200  # ids per ``IN (…)`` and rows per insert batch
# Rows read, or orders decided, between two yields to the event loop: a pass over 100,000
# orders is seconds of CPU in a backlog; in slices of 1–3 ms requests are served between them
# (deciding costs ~20 µs per order, decoding a row a few µs).
_SLICE = 500
_PLAN_SLICE = 100
# Order ids read and decided together (see ``change``): memory of a pass ∝ this, not the backlog.
_ID_RANGE = 50_000
# Watched orders (as the last pass found them) above which a pass reads in ranges; below, one
# read through the status index is faster (a range is a primary-key scan of its ids).
_RANGED_ABOVE = 100_000

# Niceness of the pass's child process: its seconds of CPU give way to the pops' milliseconds.
PASS_NICE = 10
# Passes a child runs before it is replaced by a fresh one (its heap can only grow so far).
PASSES_PER_CHILD = 100
# Watched orders above which a pass goes to the child process (below, it costs the loop a few
# ms in slices; above, tens of ms per 1,000 orders).
PROCESS_ABOVE = 2000

_wo = WorkOrder.__table__
_al = SlaAlert.__table__
_TIME_IDX = tuple(i for i, n in enumerate(SNAPSHOT_FIELDS) if n.endswith(("_at", "_start")))


def watch_query(now: dt.datetime, ids: tuple[int, int] | None = None) -> CompoundSelect:
    """The snapshots a pass at ``now`` must look at: orders with a clock that may be at or past
    its warning time, and orders with an open alert (to clear or keep it). One statement, two
    disjoint branches so each uses its index: the watched statuses
    (``ix_work_orders_status_urgency``), and dissatisfied orders not yet escalated in any other
    status (``ix_work_orders_unescalated``). The clock conditions compare each start milestone
    with ``now`` minus that clock's warning offset (bound parameters, no date arithmetic in
    SQL): a superset of what :func:`callcenter.sla.rules.alerts_due` finds, which decides.
    ``ids``: [low, high) — only the orders with ids in that range."""
    c = _wo.c
    now = now.astimezone(dt.UTC)
    not_done = c.completed_at.is_(None)

    def warned(start: Any, clock: str) -> Any:
        return start <= now - warning_offset(ALLOWANCES[clock])

    special = [u for u in PLAN_ALLOWANCES if u != "普通"]  # anything else counts as 普通
    plan_due = or_(*(and_(c.urgency == u, c.created_at <= now - warning_offset(PLAN_ALLOWANCES[u]))
                     for u in special),
                   and_(c.urgency.not_in(special), c.created_at <= now - warning_offset(PLAN_ALLOWANCES["普通"])))
    window = ALLOWANCES["reminder"]
    may_be_due = or_(
        and_(c.planned_at.is_(None), not_done, c.service_type.not_in(NO_PLAN), plan_due),
        and_(c.dispatched_at.is_(None), not_done, c.service_type.not_in(NO_DISPATCH),
             warned(c.created_at, "dispatch")),
        and_(c.contacted_at.is_(None), not_done, warned(c.accepted_at, "contact")),
        # The reminder warns at the earliest 12 min before it is due (its window starts 1 h
        # before that, or later at the booking).
        and_(c.reminded_at.is_(None), c.service_started_at.is_(None), not_done,
             c.appointment_start <= now + REMINDER_LEAD + window - warning_offset(window)),
        and_(c.signed_at.is_(None), not_done, warned(c.service_finished_at, "signoff")),
        and_(c.surveyed_at.is_(None), c.service_type.not_in(NO_SURVEY), warned(c.completed_at, "survey")),
        and_(c.escalated_at.is_(None), warned(c.dissatisfied_at, "escalation")),
        c.id.in_(select(_al.c.order_id).where(*open_alerts_in(ids))),
    )
    cols = [c[n] for n in SNAPSHOT_FIELDS]
    unescalated = and_(c.dissatisfied_at.is_not(None), c.escalated_at.is_(None))
    if ids is None:
        return union_all(select(*cols).where(c.status.in_(WATCHED_STATUSES), may_be_due),
                         select(*cols).where(unescalated, c.status.not_in(WATCHED_STATUSES), may_be_due))
    # One range of ids: read through the primary key. The status test is written so that no
    # index can serve it (``coalesce`` of the column with itself: the same value), or SQLite
    # would pick the status index and walk every watched order of the centre for each range.
    in_range = (c.id >= ids[0], c.id < ids[1])
    return union_all(
        select(*cols).where(func.coalesce(c.status, c.status).in_(WATCHED_STATUSES), may_be_due, *in_range),
        select(*cols).where(unescalated, c.status.not_in(WATCHED_STATUSES), may_be_due, *in_range))


def open_alerts_in(ids: tuple[int, int] | None) -> tuple[Any, ...]:
    """The conditions of the open alerts of the orders with ids in [low, high) (all: ``None``).
    In a range, ``cleared_at IS NULL`` is written so that no index can serve it (``coalesce``
    of the column with itself, the same value): the range is then read through the
    ``(order_id, clock, level)`` key instead of every open alert of the centre."""
    if ids is None:
        return (_al.c.cleared_at.is_(None),)
    return (func.coalesce(_al.c.cleared_at, _al.c.cleared_at).is_(None),
            _al.c.order_id >= ids[0], _al.c.order_id < ids[1])


OPEN_ALERTS_QUERY = select(_al.c.id, _al.c.order_id, _al.c.clock, _al.c.level, _al.c.deadline).where(
    _al.c.cleared_at.is_(None))


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    order_id: int
    clock: str
    level: str
    deadline: dt.datetime


@dataclass(frozen=True, slots=True)
class NewAlert:
    order: OrderSnapshot
    clock: str
    level: str
    deadline: dt.datetime


@dataclass(slots=True)
class PassPlan:
    raise_: list[NewAlert] = field(default_factory=list)
    # (open alert, the alert as it is due now: same order, clock and level, a new deadline)
    move: list[tuple[OpenAlert, NewAlert]] = field(default_factory=list)
    clear: list[OpenAlert] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass did: the messages' ``alert`` payloads it pushed, and its size."""

    raised: list[dict[str, Any]]
    cleared: list[dict[str, Any]]
    orders: int
    seconds: float


def plan_pass(orders: Iterable[OrderSnapshot], open_alerts: Iterable[OpenAlert], now: dt.datetime) -> PassPlan:
    """What a pass must change so the open alerts are those due (pure).

    A due (clock, level) with no open alert is raised; an open alert whose clock still runs with
    the same deadline is kept (even if its level is not due by this instance's ``now``: clocks of
    instances may differ slightly, a running clock never un-warns); one whose deadline changed is
    moved if still due, cleared otherwise; every other open alert is cleared.
    """
    planner = Planner(now)
    planner.add_alerts(open_alerts)
    planner.add_orders(orders)
    return planner.finish()


class Planner:
    """:func:`plan_pass` in steps (all the open alerts first, then the orders in any slices), so
    a pass can give the event loop back between slices."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.plan = PassPlan()
        self.open_by_key: dict[tuple[int, str, str], OpenAlert] = {}

    def add_alerts(self, open_alerts: Iterable[OpenAlert]) -> None:
        self.open_by_key.update(((a.order_id, a.clock, a.level), a) for a in open_alerts)

    def add_orders(self, orders: Iterable[OrderSnapshot]) -> None:
        plan, open_by_key, now = self.plan, self.open_by_key, self.now
        for o in orders:
            for clock, deadline, top in running_levels(o, now):
                for level in LEVELS:
                    due = top is not None and (level == "warning" or top == "breach")
                    a = open_by_key.pop((o.id, clock, level), None)
                    if a is None:
                        if due:
                            plan.raise_.append(NewAlert(o, clock, level, deadline))
                    elif a.deadline != deadline:
                        if due:
                            plan.move.append((a, NewAlert(o, clock, level, deadline)))
                        else:
                            plan.clear.append(a)

    def finish(self) -> PassPlan:
        self.plan.clear.extend(self.open_by_key.values())
        self.open_by_key = {}
        return self.plan


class PassGate(Protocol):
    async def acquire(self) -> bool:
        """True if this instance should run the pass of this tick."""
        ...


class LocalPassGate:
    """One process: every tick runs a pass."""

    async def acquire(self) -> bool:
        return True


class RedisPassGate:
    """At most one pass per ``ttl`` seconds across the instances sharing ``redis`` (see the
    module docstring). The key is never released: it is the rate, not a mutex."""

    def __init__(self, redis: Any, ttl: float, *, key: str = "cc:sla-pass") -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = f"{os.getpid()}-{secrets.token_hex(8)}"

    async def acquire(self) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except (RedisError, OSError) as e:
            log.warning("sla: redis unavailable (%s); running the pass anyway", type(e).__name__)
            return True


def pass_gate(redis: Any, interval: float) -> PassGate:
    return LocalPassGate() if redis is None else RedisPassGate(redis, 0.9 * interval)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat()


def alert_message(alert_id: int, a: NewAlert, raised_at: dt.datetime) -> dict[str, Any]:
    """The ``alert`` of an ``sla.alert`` message. Nothing personal: order number, clock, level."""
    o = a.order
    return {"id": alert_id, "order_id": o.id, "order_number": o.number, "urgency": o.urgency,
            "status": o.status, "clock": a.clock, "label": LABELS[a.clock], "level": a.level,
            "deadline": _iso(a.deadline), "raised_at": _iso(raised_at)}


def cleared_message(a: OpenAlert, number: str, cleared_at: dt.datetime) -> dict[str, Any]:
    return {"id": a.id, "order_id": a.order_id, "order_number": number, "clock": a.clock,
            "label": LABELS[a.clock], "level": a.level, "deadline": _iso(a.deadline),
            "cleared_at": _iso(cleared_at)}


class Mailbox(Protocol):
    async def post(self, user_id: int, message: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PassChanges:
    """What the database part of a pass (steps 1–3) did: the ``alert`` payloads of the alerts
    it raised or moved and of those it cleared, who is to be told, and how many orders it read."""

    raised: list[dict[str, Any]]
    cleared: list[dict[str, Any]]
    recipients: list[int]
    orders: int


# The child process's own scheduler and event loop (one of each per child, see PassProcess).
_child: tuple[asyncio.AbstractEventLoop, SlaScheduler] | None = None


def _child_start(url: str, nice: int) -> None:
    """Initialiser of a :class:`PassProcess` child: lower its priority, build its engine."""
    global _child
    import signal

    from callcenter.db.engine import make_engine

    # Ctrl-C reaches the whole process group: the parent stops this child (PassProcess.close).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _child = (loop, SlaScheduler(make_engine(url), None))


def _child_pass(now: dt.datetime, recipients: bool) -> PassChanges:
    assert _child is not None, "PassProcess child not initialised"
    loop, scheduler = _child
    return loop.run_until_complete(scheduler.change(now, recipients=recipients))


class PassProcess:
    """The child process that runs the database part of the passes (see the module docstring)
    for the database at ``url``; started on the first pass, replaced when it dies."""

    def __init__(self, url: str, *, nice: int = PASS_NICE, passes_per_child: int = PASSES_PER_CHILD) -> None:
        self.url = url
        self.nice = nice
        self.passes_per_child = passes_per_child
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_start, initargs=(self.url, self.nice),
                max_tasks_per_child=self.passes_per_child)
        return self._pool

    async def change(self, now: dt.datetime, *, recipients: bool) -> PassChanges:
        """Run steps 1–3 of a pass at ``now`` in the child. Raises what the pass raised there
        (``BrokenProcessPool`` if the child died: the next pass starts a new one).
        Cancellation: the pass goes on in the child to its end (its writes are conditional, the
        next pass finds them done); its messages are not pushed."""
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _child_pass, now, recipients)
        except concurrent.futures.process.BrokenProcessPool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        """Stop the child now; a pass in progress there rolls back (its transaction never commits)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(5)


class SlaScheduler:
    """Runs passes over the database ``engine`` and posts what changed to ``mailbox``.

    ``clock`` is read once per pass (tests replace it to move time on: ``scheduler.clock =
    lambda: t``); ``gate`` decides whether this instance runs a given tick; ``process``: run the
    database part of each pass there (see the module docstring) instead of on this event loop.
    """

    def __init__(self, engine: AsyncEngine, mailbox: Mailbox | None, *, clock: WallClock = utcnow,
                 gate: PassGate | None = None, push_limit: int = PUSH_LIMIT,
                 process: PassProcess | None = None, process_above: int = PROCESS_ABOVE) -> None:
        self.engine = engine
        self.mailbox = mailbox
        self.clock = clock
        self.gate = gate or LocalPassGate()
        self.push_limit = push_limit
        self.process = process
        self.process_above = process_above
        # True once a pass was large enough for the child: every later pass goes there too.
        self.in_child = False
        # Watched orders the last pass read (None: no pass yet).
        self._watched: int | None = None
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def run(self, interval: float) -> None:
        """A pass now and then every ``interval`` seconds, until cancelled. A pass that fails is
        logged and tried again at the next tick. Cancellation: a pass in progress stops; its
        transaction rolls back (nothing half-written) unless it had committed, in which case
        some of its messages may not have gone out (the alerts are in the list)."""
        while True:
            try:
                if await self.gate.acquire():
                    await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sla: pass failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def load(self, conn: AsyncConnection, now: dt.datetime, ids: tuple[int, int] | None = None,
                   ) -> tuple[list[OrderSnapshot], list[OpenAlert]]:
        """The snapshots of the orders to look at (:func:`watch_query`) and the open alerts
        (UTC-aware on every backend); with ``ids`` = [low, high), of those orders only. The alerts are read first: under READ COMMITTED each
        statement has its own snapshot, and the watch query must include the order of every
        alert this pass may clear (an alert another instance raises in between is not in the
        list, so it is not cleared; raising it again here is a no-op)."""
        alerts: list[OpenAlert] = []
        alerts_query = OPEN_ALERTS_QUERY if ids is None else (
            select(_al.c.id, _al.c.order_id, _al.c.clock, _al.c.level, _al.c.deadline).where(*open_alerts_in(ids)))
        async for part in (await conn.stream(alerts_query)).partitions(_SLICE):
            alerts += [OpenAlert(a.id, a.order_id, a.clock, a.level, aware(a.deadline))  # type: ignore[arg-type]
                       for a in part]
            await asyncio.sleep(0)
        orders: list[OrderSnapshot] = []
        naive = conn.dialect.name == "sqlite"  # naive datetimes back: they were stored as UTC
        async for part in (await conn.stream(watch_query(now, ids))).partitions(_SLICE):
            if naive:
                for r in part:
                    v = list(r)
                    for i in _TIME_IDX:
                        if v[i] is not None:
                            v[i] = v[i].replace(tzinfo=dt.UTC)
                    orders.append(OrderSnapshot(*v))
            else:
                orders += [OrderSnapshot(*r) for r in part]
            await asyncio.sleep(0)
        return orders, alerts

    async def run_pass(self, now: dt.datetime | None = None) -> PassResult:
        """One pass at ``now`` (default: the scheduler's clock). Raises what the database raises
        (nothing is half-written: the changes are one transaction)."""
        now = (now or self.clock()).astimezone(dt.UTC)
        t0 = time.perf_counter()
        wanted = self.mailbox is not None
        if self.process is not None and not self.in_child:
            async with self.engine.connect() as conn:
                watched = await conn.scalar(select(func.count()).select_from(watch_query(now).subquery()))
            self.in_child = (watched or 0) > self.process_above
            self._watched = watched or 0
        if self.process is not None and self.in_child:
            changes = await self.process.change(now, recipients=wanted)
        else:
            changes = await self.change(now, recipients=wanted)
        raised, cleared = changes.raised, changes.cleared
        seconds = time.perf_counter() - t0
        if raised or cleared:
            log.info("sla: %d alert(s) raised, %d cleared; %d order(s) in %.3f s",
                     len(raised), len(cleared), changes.orders, seconds)
            await self._push(changes.recipients, raised, cleared)
        else:
            log.debug("sla: nothing changed; %d order(s) in %.3f s", changes.orders, seconds)
        return PassResult(raised, cleared, changes.orders, seconds)

    async def change(self, now: dt.datetime, *, recipients: bool) -> PassChanges:
        """Steps 1–3 of a pass at ``now`` (UTC): read, decide, write; with ``recipients``, also
        who is to be told of what changed."""
        # Deciding is pure CPU over every watched order (tens of ms per 10,000): in slices, so
        # that on the loop (a small centre's passes) requests are served between them. Read
        # and decided one range of order ids at a time: an order's decision needs only its own
        # snapshot and alerts, and a backlog of a million watched orders never sits in memory
        # at once (the planner keeps only the open alerts not yet matched).
        planner = Planner(now)
        watched = 0
        async with self.engine.connect() as conn:
            if self._watched is None:
                self._watched = await conn.scalar(
                    select(func.count()).select_from(watch_query(now).subquery())) or 0
            ranges: list[tuple[int, int] | None] = [None]
            if self._watched > _RANGED_ABOVE:
                top = await conn.scalar(select(func.max(_wo.c.id))) or 0
                ranges = [(low, min(low + _ID_RANGE, top + 1)) for low in range(0, top + 1, _ID_RANGE)]
            for ids in ranges:
                orders, open_alerts = await self.load(conn, now, ids)
                watched += len(orders)
                for alerts in _chunks(open_alerts, 4 * _SLICE):
                    planner.add_alerts(alerts)
                    await asyncio.sleep(0)
                del open_alerts
                for chunk in _chunks(orders, _PLAN_SLICE):
                    planner.add_orders(chunk)
                    await asyncio.sleep(0)
                del orders
        plan = planner.finish()
        raised: list[dict[str, Any]] = []
        cleared: list[dict[str, Any]] = []
        told: list[int] = []
        if plan.raise_ or plan.move or plan.clear:
            async with self.engine.begin() as conn:
                raised += await self._raise(conn, plan.raise_, now)
                for a, new in plan.move:
                    moved = await conn.scalar(
                        update(_al).where(_al.c.id == a.id, _al.c.cleared_at.is_(None),
                                          _al.c.deadline == a.deadline)
                        .values(deadline=new.deadline, raised_at=now).returning(_al.c.id))
                    if moved is not None:
                        raised.append(alert_message(moved, new, now))
                cleared += await self._clear(conn, plan.clear, now)
                if (raised or cleared) and recipients:
                    told = list((await conn.scalars(
                        select(User.id).where(User.role.in_(RECIPIENT_ROLES), User.active.is_(True))
                        .order_by(User.id))).all())
        self._watched = watched
        return PassChanges(raised, cleared, told, watched)

    async def _raise(self, conn: AsyncConnection, new: list[NewAlert], now: dt.datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        stmt = (self._insert(_al).on_conflict_do_nothing(index_elements=["order_id", "clock", "level"])
                .returning(_al.c.id, _al.c.order_id, _al.c.clock, _al.c.level))
        for batch in _chunks(new):
            rows = (await conn.execute(stmt, [
                {"order_id": a.order.id, "clock": a.clock, "level": a.level, "deadline": a.deadline,
                 "raised_at": now, "cleared_at": None} for a in batch])).all()
            inserted = {(r.order_id, r.clock, r.level): r.id for r in rows}
            for a in batch:
                alert_id = inserted.get((a.order.id, a.clock, a.level))
                if alert_id is None:
                    # Taken: by a concurrent pass (open: nothing to do) or cleared earlier and
                    # running late again — reopen it, once.
                    alert_id = await conn.scalar(
                        update(_al).where(_al.c.order_id == a.order.id, _al.c.clock == a.clock,
                                          _al.c.level == a.level, _al.c.cleared_at.is_not(None))
                        .values(cleared_at=None, raised_at=now, deadline=a.deadline).returning(_al.c.id))
                if alert_id is not None:
                    out.append(alert_message(alert_id, a, now))
            await asyncio.sleep(0)
        return out

    async def _clear(self, conn: AsyncConnection, alerts: list[OpenAlert], now: dt.datetime) -> list[dict[str, Any]]:
        by_id = {a.id: a for a in alerts}
        done: list[OpenAlert] = []
        for ids in _chunks(sorted(by_id)):
            done += [by_id[i] for i in sorted((await conn.scalars(
                update(_al).where(_al.c.id.in_(ids), _al.c.cleared_at.is_(None))
                .values(cleared_at=now).returning(_al.c.id))).all())]
            await asyncio.sleep(0)
        numbers: dict[int, str] = {}
        for order_ids in _chunks(sorted({a.order_id for a in done})):
            rows = await conn.execute(select(_wo.c.id, _wo.c.number).where(_wo.c.id.in_(order_ids)))
            numbers.update((order_id, number) for order_id, number in rows)
        return [cleared_message(a, numbers.get(a.order_id, ""), now) for a in done]

    async def _push(self, recipients: list[int], raised: list[dict[str, Any]],
                    cleared: list[dict[str, Any]]) -> None:
        if self.mailbox is None or not recipients:
            return
        if len(raised) + len(cleared) > self.push_limit:
            messages = [{"type": "sla.resync", "raised": len(raised), "cleared": len(cleared)}]
        else:
            messages = ([{"type": "sla.alert", "alert": a} for a in raised]
                        + [{"type": "sla.cleared", "alert": a} for a in cleared])
        try:
            for user_id in recipients:
                for m in messages:
                    await self.mailbox.post(user_id, m)
        except Exception:
            # The alerts are stored and listed; a lost push must not fail the pass (nor be
            # retried: the next pass would not know what went out).
            log.exception("sla: could not post the alerts to user %d", user_id)

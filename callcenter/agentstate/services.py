"""Agent states on the AMI leader: events → :class:`LiveBook` → a published snapshot; the
agents' queue login/logout, pause and resume sent as actions; the automatic wrap-up.

Read path (``on_ami_event``): apply to the book, then only *schedule* the snapshot (coalesced for
``COALESCE_S``, so a burst of events makes one snapshot); the snapshot goes to every instance
through the :class:`~callcenter.agentstate.store.LiveStore`. The leader also tells each agent
whose state changed (``agent.state`` through the mailbox, to their desk) and every supervisor
when a queue crosses a threshold (``wallboard.alert`` / ``wallboard.cleared``).

After every (re)login the book's live part is rebuilt from ``QueueStatus`` and
``CoreShowChannels`` (the connector holds the events meanwhile) and the day's figures are seeded
from the call records, so a new leader — or a page opened mid-day — shows the whole day.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.agentstate.book import EVENT_NAMES, STATES, LiveBook, Member, Tally
from callcenter.agentstate.rules import (
    WRAPUP_REASON,
    check_interface,
    check_member_name,
    check_queue,
    check_reason,
    interface_for,
)
from callcenter.agentstate.restore import QueueTruth, plan, queue_add_headers
from callcenter.ami.codec import AmiInjectionError
from callcenter.ami.connector import AmiConnector, AmiError, AmiNotConnected
from callcenter.calls.agents import AgentDirectory
from callcenter.db.models import Call, User
from callcenter.errors import Conflict, DomainError, ValidationFailed
from callcenter.wallboard.metrics import (
    Thresholds,
    breaches,
    longest_wait,
    queue_figures,
)

log = logging.getLogger("callcenter.agentstate")

# Seconds events are gathered into one snapshot after a quiet spell, and the least time between
# two snapshots under load: a burst costs one publish, a busy hotline at most 1/MIN_INTERVAL_S
# snapshots a second (each goes to every supervisor's socket), and the wallboard still hears of
# an event well within its 500 ms.
COALESCE_S = 0.02
MIN_INTERVAL_S = 0.15
# Seconds between republishing an unchanged snapshot (a heartbeat: readers see it is fresh).
HEARTBEAT_S = 5.0
# Seconds the wallboard shows "Asterisk restarted: N agents restored, M failed".
RESTART_SHOWN_S = 3600.0
# Seconds an agent's own action waits for Asterisk's event before answering with the state.
ACTION_SETTLE_S = 1.0


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def _json(value: Any) -> str:
    """The snapshot's JSON form (compact, UTF-8 text as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))




class Unavailable(DomainError):
    status = 503
    code = "ami_unavailable"


class AgentStateService:
    """Owns the :class:`LiveBook` of this instance (filled only while it leads)."""

    def __init__(self, *, agents: AgentDirectory, store: Any, mailbox: Any, engine: AsyncEngine,
                 tz: dt.tzinfo, reasons: tuple[str, ...], wrapup_s: int,
                 interface_template: str, thresholds: Thresholds,
                 clock: Callable[[], float] = time.time) -> None:
        self.book = LiveBook()
        self.agents = agents
        self.store = store
        self.mailbox = mailbox
        self._engine = engine
        self._tz = tz
        self.reasons = reasons
        self.wrapup_s = wrapup_s
        self.interface_template = interface_template
        self.thresholds = thresholds
        self._clock = clock
        self.connector: AmiConnector | None = None
        self._day: tuple[float, float] = (0.0, 0.0)
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_publish = 0.0
        self._last_publish_mono = 0.0
        # (queue, metric) past its threshold, as last announced.
        self._breaches: set[tuple[str, str]] = set()
        # user id → what their desk was last told (state, reason, since, queues).
        self._told: dict[int, tuple] = {}
        self._wrapups: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._supervisors: tuple[float, list[int]] = (0.0, [])
        # interface → its agent row as last built, for the book it was built from: a snapshot
        # rebuilds only the rows of agents that changed since (the book says which), so a
        # publish costs the changes, not the 1,000 agents (bench/screen_pop.py).
        self._rows: dict[str, tuple[dict[str, Any], str, tuple[int | None, tuple]]] = {}
        self._rows_book: LiveBook | None = None
        self._rows_directory: object = None
        # The same rows as three lists in interface order (what a snapshot joins), and where
        # each interface is in them.
        self._row_lists: tuple[list[dict[str, Any]], list[str], list[tuple[int | None, tuple]]] = ([], [], [])
        self._row_index: dict[str, int] = {}
        # The service's record of queue logins, restored into Asterisk after it restarts.
        self.truth = QueueTruth(engine, agents.resolve)
        # The last restoration after an Asterisk restart (shown on the wallboard).
        self.last_restore: dict[str, Any] | None = None
        # Seconds a (re)connect waits for FullyBooted before restoring anyway is not done:
        # an Asterisk that is not booted has no queues to restore members into.
        self.boot_wait_s = 120.0
        # Counters for tests and the benchmark.
        self.published = 0
        self.events = 0

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, connector: AmiConnector) -> None:
        self.connector = connector
        connector.add_event_handler(self.on_ami_event, EVENT_NAMES)
        connector.add_login_hook(self.resync)

    def reset(self) -> None:
        """Leadership moved: another instance rebuilds and publishes now."""
        self.book = LiveBook()
        self._day = (0.0, 0.0)
        for h in self._wrapups.values():
            h.cancel()
        self._wrapups.clear()
        self._breaches.clear()
        self._told.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.truth.close()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        for h in self._wrapups.values():
            h.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the day ---------------------------------------------------------------------------

    def day_bounds(self, now: float) -> tuple[float, float]:
        """[start, end) of the centre's day containing ``now`` (epoch seconds)."""
        if not self._day[0] <= now < self._day[1]:
            local = dt.datetime.fromtimestamp(now, self._tz).date()
            start = dt.datetime.combine(local, dt.time(0), self._tz)
            end = dt.datetime.combine(local + dt.timedelta(days=1), dt.time(0), self._tz)
            self._day = (start.timestamp(), end.timestamp())
            self.book.start_day(self._day[0])
        return self._day

    # -- read path -------------------------------------------------------------------------

    def on_ami_event(self, msg: dict[str, str]) -> None:
        now = self._clock()
        self.day_bounds(now)
        self.events += 1
        if self.book.apply(msg, now):
            self.changed()
        if msg.get("Event", "").startswith("QueueMember") and msg.get("Event") != "QueueMemberStatus":
            self.truth.on_member_event(msg, getattr(self.connector, "booted_at", None))
        if self.wrapup_s > 0 and msg.get("Event") == "AgentComplete":
            self._start_wrapup(msg.get("Interface", ""))

    def changed(self) -> None:
        """Something shown changed: publish soon (one snapshot per burst)."""
        if self._flush_handle is None:
            wait = max(COALESCE_S, self._last_publish_mono + MIN_INTERVAL_S - time.monotonic())
            self._flush_handle = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self.publish_now()

    def publish_now(self) -> dict[str, Any]:
        now = self._clock()
        self.day_bounds(now)
        snap, text, told = self._snapshot(now)
        self._last_publish = now
        self._last_publish_mono = time.monotonic()
        self.published += 1
        self._spawn(self.store.publish(text))
        self._announce(snap, told)
        return snap

    async def resync(self, connector: AmiConnector) -> None:
        """Login hook: rebuild the live part from the lists, seed the day from the records."""
        items = await connector.send_list_action("QueueStatus")
        channels = await connector.send_list_action("CoreShowChannels")
        now = self._clock()
        start, _ = self.day_bounds(now)
        self.book.rebuild(items, channels, now)
        await self.seed(start)
        self._resume_wrapups(now)
        self.publish_now()
        log.info("agent states rebuilt: %d members, %d agents, %d queues",
                 len(self.book.members), len(self.book.agents), len(self.book.queues))
        # Not awaited here: the connector holds every event (pops too) until the login hooks
        # return, and a restarting Asterisk may take a while to say it is fully booted.
        self._spawn(self.restore(connector))

    async def restore(self, connector: AmiConnector) -> dict[str, Any] | None:
        """Once Asterisk is fully booted, make its dynamic members what the record says
        (``callcenter.agentstate.restore``). Returns the report when members were restored."""
        try:
            boot = await connector.wait_booted(self.boot_wait_s)
            await self.truth.settled()
            items = await connector.send_list_action("QueueStatus")
            p = plan(await self.truth.rows(), items, boot)
            restored, failed = [], []
            for row in p.restore:
                try:
                    await connector.send_action("QueueAdd", queue_add_headers(row), timeout=5.0)
                    restored.append(row)
                except AmiError as e:
                    if "Already there" in e.message:
                        restored.append(row)
                    else:
                        log.warning("agentstate: restoring %s to %s refused (%s)", row.member_name,
                                    row.queue, e.message)
                        failed.append(row)
                except AmiInjectionError:
                    failed.append(row)
            await self.truth.upsert([*p.confirm, *p.adopt,
                                     *(dataclasses.replace(r, seen_boot=boot) for r in restored)])
            await self.truth.remove([(r.queue, r.interface) for r in p.drop])
        except (TimeoutError, ConnectionError) as e:
            log.warning("agentstate: queue members not compared with Asterisk (%s)", type(e).__name__)
            return None
        except Exception:
            log.exception("agentstate: restoring queue members failed")
            return None
        if p.drop:
            log.info("agentstate: %d queue logins removed in Asterisk while away: the record follows",
                     len(p.drop))
        if not p.restore:
            return None
        names = lambda rows: sorted({self._name(r.user_id if r.user_id is not None  # noqa: E731
                                                else self._user_of(r.member_name, r.interface),
                                                r.member_name) for r in rows})
        report = {"type": "wallboard.alert", "queue": "", "metric": "asterisk_restart",
                  "at_ms": _ms(self._clock()), "restored": names(restored), "failed": names(failed),
                  "restored_members": len(restored), "failed_members": len(failed)}
        self.last_restore = report
        log.warning("Asterisk restarted: %d agents restored, %d failed", len(report["restored"]),
                    len(report["failed"]))
        self.publish_now()
        await self._post([(None, report)])
        return report

    async def seed(self, day_start: float) -> None:
        since = dt.datetime.fromtimestamp(day_start, dt.UTC)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(Call.linkedid, Call.queue, Call.started_at, Call.answered_at, Call.state,
                       Call.outcome, Call.hold_s, Call.talk_s, Call.agent_member)
                .where(Call.started_at >= since, Call.direction == "inbound"))).mappings().all()
        self.book.seed([{**r, "started_at": _aware(r["started_at"])} for r in rows])

    async def tick(self) -> None:
        """Once a second on the leader: day change, waits crossing the threshold, heartbeat."""
        if self.connector is None or not self.connector.connected:
            return
        now = self._clock()
        self.day_bounds(now)
        if self.last_restore is not None and now * 1000 - self.last_restore["at_ms"] > RESTART_SHOWN_S * 1000:
            self.last_restore = None
            self.publish_now()
        if now - self._last_publish >= HEARTBEAT_S or self._breach_set(now) != self._breaches:
            self.publish_now()

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except Exception:
                log.exception("agentstate: tick failed")

    # -- the snapshot ----------------------------------------------------------------------

    def _user_of(self, name: str, interface: str) -> int | None:
        return self.agents.resolve(name, interface)

    def _name(self, uid: int | None, fallback: str) -> str:
        return (self.agents.names.get(uid) if uid is not None else None) or fallback

    def _queue_row(self, q: str, now: float) -> dict[str, Any]:
        b = self.book
        counts = dict.fromkeys(STATES, 0)
        paused = []
        members: list[Member] = [m for (qq, _), m in b.members.items() if qq == q]
        for m in members:
            state = b.member_state(m)
            counts[state] += 1
            if state == "paused":
                a = b.agents.get(m.interface)
                since = a.since if a is not None and a.state == "paused" else (m.last_pause or now)
                paused.append({"member": m.name, "name": self._name(self._user_of(m.name, m.interface), m.name),
                               "reason": m.reason, "since_ms": _ms(since)})
        waiting = b.waiting.get(q, {})
        joined = [j for _, j in waiting.values()]
        tally = b.by_queue.get(q, Tally()).as_dict()
        figures = queue_figures(tally)
        lw = longest_wait(joined, now)
        return {
            "name": q, "service_level_s": b._sl(q), "waiting": len(waiting),
            "longest_wait_s": lw, "longest_wait_since_ms": _ms(min(joined)) if joined else None,
            "agents": {"logged_in": len(members), **counts}, "paused": paused,
            "day": tally, "figures": figures,
            "breaches": breaches(lw, figures["service_level"], self.thresholds),
        }

    def agent_row(self, interface: str) -> dict[str, Any] | None:
        b = self.book
        a = b.agents.get(interface)
        if a is None:
            return None
        uid = self._user_of(a.name, interface)
        tally = b.by_member.get(a.name, Tally())
        return {
            "interface": interface, "member": a.name, "user_id": uid, "name": self._name(uid, a.name),
            "state": a.state, "reason": a.reason, "since_ms": _ms(a.since),
            "queues": sorted(({"queue": m.queue, "paused": m.paused, "reason": m.reason,
                               "dynamic": m.membership == "dynamic"} for m in b.memberships(interface)),
                             key=lambda r: r["queue"]),
            "calls_today": tally.answered, "talk_s": tally.talk_sum,
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        return self._snapshot(now)[0]

    def _agent_rows(self) -> tuple[list[dict[str, Any]], list[str], list[tuple[int | None, tuple]]]:
        """Every agent's row, its JSON text and (user id, what its desk is told), in interface
        order. Only the rows of agents that changed since the last call are built again (all of
        them after a rebuild, a new day or a refresh of the directory); the lists are kept and
        patched in place, so an unchanged agent costs nothing."""
        b = self.book
        everything, interfaces, names = b.take_changes()
        # The directory's generation (bumped by each refresh): unchanged, the user id and name
        # of an unchanged agent are too. A directory without one is asked for every row.
        generation = getattr(self.agents, "generation", None)
        rows = self._rows
        reset = everything or b is not self._rows_book or generation is None or generation != self._rows_directory
        if reset:
            rows = self._rows = {}
            self._rows_book, self._rows_directory = b, generation
        elif names:  # a day's tally moved: the rows of the agents with that member name
            interfaces |= {i for i, a in b.agents.items() if a.name in names}
        for i in interfaces:
            rows.pop(i, None)
        lists = self._row_lists
        index = self._row_index
        if reset or any((i in b.agents) != (i in index) for i in interfaces):
            order = sorted(b.agents)
            self._row_index = {i: k for k, i in enumerate(order)}
            for i in list(rows):
                if i not in b.agents:
                    del rows[i]
            built = [rows[i] if i in rows else self._build_row(i) for i in order]
            self._row_lists = lists = ([c[0] for c in built], [c[1] for c in built], [c[2] for c in built])
        else:
            for i in interfaces:
                k = index.get(i)
                if k is not None:
                    lists[0][k], lists[1][k], lists[2][k] = self._build_row(i)
        return lists

    def _build_row(self, interface: str) -> tuple[dict[str, Any], str, tuple[int | None, tuple]]:
        row = self.agent_row(interface)
        assert row is not None
        told = tuple((q["queue"], q["paused"], q["reason"], q["dynamic"]) for q in row["queues"])
        cached = self._rows[interface] = (row, _json(row), (row["user_id"], told))
        return cached

    def _snapshot(self, now: float) -> tuple[dict[str, Any], str, list[tuple[int | None, tuple]]]:
        """The snapshot, its JSON text (the agents' parts reused from the cache) and, per agent
        row, (user id, what the desk is told)."""
        start, _ = self.day_bounds(now)
        queues = [self._queue_row(q, now) for q in sorted(self.book.queues) if q]
        rows, texts, told = self._agent_rows()
        head = {
            "type": "wallboard.live", "at_ms": _ms(now), "day_start_ms": _ms(start),
            "ami": self.connector.state if self.connector is not None else "disconnected",
            "thresholds": {"max_wait_s": self.thresholds.max_wait_s,
                           "min_service_level": self.thresholds.min_service_level},
            "queues": queues,
        }
        tail = {"alerts": [{"queue": q["name"], "metric": m} for q in queues for m in q["breaches"]],
                "restart": self.last_restore}
        # Byte for byte what ``_json(snap)`` gives, without encoding 1,000 unchanged rows again.
        text = _json(head)[:-1] + ',"agents":[' + ",".join(texts) + "]," + _json(tail)[1:]
        snap = {**head, "agents": list(rows), **tail}
        return snap, text, list(told)

    def _breach_set(self, now: float) -> set[tuple[str, str]]:
        out = set()
        for q in self.book.queues:
            waiting = self.book.waiting.get(q, {})
            lw = longest_wait((j for _, j in waiting.values()), now)
            sl = queue_figures(self.book.by_queue.get(q, Tally()).as_dict())["service_level"]
            out.update((q, m) for m in breaches(lw, sl, self.thresholds))
        return out

    # -- telling people --------------------------------------------------------------------

    def _announce(self, snap: dict[str, Any], told: list[tuple[int | None, tuple]]) -> None:
        """Per-agent ``agent.state`` to their desk when their memberships or pauses change;
        ``wallboard.alert``/``.cleared`` to every
        supervisor when a queue crosses a threshold (posted by the leader only, once).
        ``told``: per row of ``snap["agents"]``, (user id, what the desk shows of it)."""
        messages: list[tuple[int | None, dict[str, Any]]] = []
        shown = {uid for uid, _ in told}
        for uid in [u for u, key in self._told.items() if key and u not in shown]:
            # Out of every queue (logged out, or Asterisk restarted and forgot them): the desk
            # must not go on saying "available". Remembered as "in none", so coming back is a
            # change the desk hears of too.
            self._told[uid] = ()
            messages.append((uid, {"type": "agent.state", "agent": None}))
        for row, (uid, key) in zip(snap["agents"], told):
            if uid is None:
                continue
            # Only what the desk shows (memberships and their pauses): ringing and talking
            # reach the agent as pops already, and must not take numbers of the pop sequence.
            before = self._told.get(uid)
            self._told[uid] = key
            # First sight (start, a new leader): the desk reads its state on (re)connect.
            if before is not None and before != key:
                messages.append((uid, {"type": "agent.state", "agent": row}))
        now_set = {(a["queue"], a["metric"]) for a in snap["alerts"]}
        by_queue = {q["name"]: q for q in snap["queues"]}
        for queue, metric in sorted(now_set - self._breaches):
            q = by_queue[queue]
            value = q["longest_wait_s"] if metric == "longest_wait" else q["figures"]["service_level"]
            limit = self.thresholds.max_wait_s if metric == "longest_wait" else self.thresholds.min_service_level
            messages.append((None, {"type": "wallboard.alert", "queue": queue, "metric": metric,
                                    "value": value, "threshold": limit}))
        for queue, metric in sorted(self._breaches - now_set):
            messages.append((None, {"type": "wallboard.cleared", "queue": queue, "metric": metric}))
        self._breaches = now_set
        if messages:
            self._spawn(self._post(messages))

    async def _supervisor_ids(self) -> list[int]:
        at, ids = self._supervisors
        if time.monotonic() - at > 30:
            async with self._engine.connect() as conn:
                ids = list((await conn.execute(select(User.id).where(
                    User.role == "supervisor", User.active.is_(True)))).scalars())
            self._supervisors = (time.monotonic(), ids)
        return ids

    async def _post(self, messages: list[tuple[int | None, dict[str, Any]]]) -> None:
        try:
            for uid, msg in messages:
                if uid is not None:
                    await self.mailbox.post(uid, msg)
                else:
                    for sid in await self._supervisor_ids():
                        await self.mailbox.post(sid, msg)
        except Exception:
            log.exception("agentstate: posting state messages failed")

    # -- the agents' actions (on the leader) -----------------------------------------------

    def interfaces_of(self, user_id: int) -> list[str]:
        """The interfaces a user is a queue member with now."""
        return sorted({i for (_, i), m in self.book.members.items() if self._user_of(m.name, i) == user_id})

    async def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one agent command; never raises a DomainError (it is answered as
        ``{"ok": False, "status", "error"}`` so it can travel back through Redis)."""
        try:
            return {"ok": True, "agent": await self._execute(command)}
        except DomainError as e:
            return {"ok": False, "status": e.status, "error": e.to_json()}

    async def _send(self, action: str, headers: dict[str, object]) -> None:
        conn = self.connector
        if conn is None or not conn.connected:
            raise Unavailable("电话系统未连接，请稍后再试")
        try:
            await conn.send_action(action, headers, timeout=5.0)
        except AmiError as e:
            raise Conflict(f"电话系统拒绝了操作: {e.message}", code="ami_refused", action=action) from e
        except (AmiNotConnected, ConnectionError, TimeoutError) as e:
            raise Unavailable("电话系统未连接，请稍后再试") from e

    async def _execute(self, cmd: dict[str, Any]) -> dict[str, Any] | None:
        op, uid = cmd.get("op"), int(cmd.get("user_id", 0))
        ifaces = self.interfaces_of(uid)
        if op == "login":
            queues = [check_queue(q, "queues") for q in cmd.get("queues") or []]
            unknown = [q for q in queues if q not in self.book.queues]
            if not queues or unknown:
                raise ValidationFailed("queues", "没有这个队列 (unknown queue)", unknown=unknown)
            ext = self.agents.extension_of(uid)
            if ifaces:
                iface = ifaces[0]
            elif bound := self.agents.interfaces_of(uid):
                iface = bound[0]
            elif ext:
                iface = interface_for(ext, self.interface_template)
            else:
                raise Conflict("该账号没有绑定分机，不能登录队列", code="no_extension")
            check_interface(iface)
            member = check_member_name(ext or iface.rpartition("/")[2], "member")
            for q in queues:
                if (q, iface) not in self.book.members:
                    await self._send("QueueAdd", {"Queue": q, "Interface": iface, "MemberName": member,
                                                  "Penalty": 0, "Paused": "false"})
            await self._settle(lambda: all((q, iface) in self.book.members for q in queues))
            return self.agent_row(iface)
        if not ifaces:
            raise Conflict("尚未登录任何队列", code="not_logged_in")
        if op == "logout":
            queues = [check_queue(q, "queues") for q in cmd.get("queues") or []]
            targets = [(q, i) for q in queues for i in ifaces if (q, i) in self.book.members]
            if not targets:
                raise ValidationFailed("queues", "不在这些队列中 (not a member)")
            for q, i in targets:
                if self.book.members[(q, i)].membership != "dynamic":
                    raise Conflict("固定成员不能退出队列 (static member)", code="static_member", queue=q)
            if not self._ami_up():
                # Asterisk is away: the record says logged out, so the restore after it comes
                # back leaves this agent out.
                await self.truth.remove(targets)
                now = self._clock()
                for q, i in targets:
                    self.book.apply({"Event": "QueueMemberRemoved", "Queue": q, "Interface": i}, now)
                self.changed()
                return self.agent_row(ifaces[0])
            for q, i in targets:
                await self._send("QueueRemove", {"Queue": q, "Interface": i})
            await self._settle(lambda: all(t not in self.book.members for t in targets))
            return self.agent_row(ifaces[0])
        if op in ("pause", "resume") and not self._ami_up():
            # Asterisk is away: recorded, and restored that way when it comes back.
            reason = check_reason(cmd.get("reason"), self.reasons) if op == "pause" else ""
            await self.truth.set_paused(ifaces, op == "pause", reason)
            self._set_paused_offline(ifaces, op == "pause", reason)
            return self.agent_row(ifaces[0])
        if op == "pause":
            reason = check_reason(cmd.get("reason"), self.reasons)
            for i in ifaces:
                await self._send("QueuePause", {"Interface": i, "Paused": "true", "Reason": reason})
            await self._settle(lambda: self._paused(ifaces, reason))
            return self.agent_row(ifaces[0])
        if op == "resume":
            for i in ifaces:
                self._cancel_wrapup(i)
                await self._send("QueuePause", {"Interface": i, "Paused": "false"})
            await self._settle(lambda: self._paused(ifaces, None))
            return self.agent_row(ifaces[0])
        raise ValidationFailed("op", "unknown operation")

    def _ami_up(self) -> bool:
        return self.connector is not None and self.connector.connected

    def _set_paused_offline(self, ifaces: list[str], paused: bool, reason: str) -> None:
        now = self._clock()
        for i in ifaces:
            for m in list(self.book.memberships(i)):
                self.book.apply({"Event": "QueueMemberPause", "Queue": m.queue, "Interface": i,
                                 "MemberName": m.name, "Membership": m.membership,
                                 "Paused": "1" if paused else "0", "PausedReason": reason,
                                 "Status": str(m.status), "InCall": "1" if m.in_call else "0",
                                 "LoginTime": str(m.login_time),
                                 "LastPause": str(int(now)) if paused else str(m.last_pause)}, now)
        self.changed()

    def _paused(self, ifaces: list[str], reason: str | None) -> bool:
        ms = [m for i in ifaces for m in self.book.memberships(i)]
        if reason is None:
            return all(not m.paused for m in ms)
        return all(m.paused and m.reason == reason for m in ms)

    async def _settle(self, done: Callable[[], bool]) -> None:
        """Wait (bounded) for the events that follow a successful action, so the answer shows
        the new state; the events are applied on the read path meanwhile."""
        deadline = time.monotonic() + ACTION_SETTLE_S
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    # -- automatic wrap-up -----------------------------------------------------------------

    def _start_wrapup(self, interface: str) -> None:
        """After a call: pause in every queue with 话后处理 for ``wrapup_s``, unless the agent
        is paused already (their own reason stays)."""
        ms = self.book.memberships(interface)
        if not interface or not ms or any(m.paused for m in ms):
            return

        async def go() -> None:
            try:
                await self._send("QueuePause", {"Interface": interface, "Paused": "true",
                                                "Reason": WRAPUP_REASON})
            except DomainError as e:
                log.warning("wrap-up pause failed: %s", e.code)
                return
            self._schedule_end(interface, self.wrapup_s)

        self._spawn(go())

    def _schedule_end(self, interface: str, delay: float) -> None:
        self._cancel_wrapup(interface)
        self._wrapups[interface] = asyncio.get_running_loop().call_later(
            max(0.0, delay), lambda: self._spawn(self._end_wrapup(interface)))

    def _cancel_wrapup(self, interface: str) -> None:
        h = self._wrapups.pop(interface, None)
        if h is not None:
            h.cancel()

    async def _end_wrapup(self, interface: str) -> None:
        self._wrapups.pop(interface, None)
        ms = self.book.memberships(interface)
        # The agent chose another pause (or resumed) meanwhile: theirs wins.
        if not ms or not all(m.paused and m.reason == WRAPUP_REASON for m in ms):
            return
        try:
            await self._send("QueuePause", {"Interface": interface, "Paused": "false"})
        except DomainError as e:
            log.warning("ending the wrap-up failed: %s", e.code)

    def _resume_wrapups(self, now: float) -> None:
        """After a (re)login: wrap-ups a previous leader started end on time here."""
        if self.wrapup_s <= 0:
            return
        for iface in {i for (_, i) in self.book.members}:
            ms = self.book.memberships(iface)
            if ms and all(m.paused and m.reason == WRAPUP_REASON for m in ms):
                started = max(m.last_pause for m in ms) or now
                self._schedule_end(iface, started + self.wrapup_s - now)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)

"""The service's record of queue logins, and putting Asterisk back in line with it.

Dynamic queue members do not survive an Asterisk restart: after ``core restart now`` a real
Asterisk 22 came back with every queue empty while the desks still said "available"
(``shared/asterisk/transcripts/project_dialplans_session.jsonl`` lines 380–417). The record
(table ``queue_logins``, ``callcenter.db.agentstate``) is the truth of who is logged in to which
queue and who is paused with which reason:

- it follows Asterisk's member events (``QueueMemberAdded`` / ``Removed`` / ``Pause`` of dynamic
  members), whoever caused them — the desk, the wrap-up timer, or someone on the Asterisk CLI;
- an agent who logs out or pauses while Asterisk is unreachable is written here directly, so
  they are not restored logged in, or restored available;
- after every (re)connect, once Asterisk says it is fully booted, :func:`plan` compares
  ``QueueStatus`` with the record: members missing after a restart are added back
  (``QueueAdd`` with member name, state interface, paused and reason), members missing from the
  *same* Asterisk were removed there while the service was away (the record follows), dynamic
  members the record does not know are adopted, static members are left alone.

:func:`plan` is pure; :class:`QueueTruth` is its I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.agentstate import QueueLogin

log = logging.getLogger("callcenter.agentstate")

_t = QueueLogin.__table__
# Seconds two FullyBooted-derived start times may differ and still be the same Asterisk
# (Uptime is whole seconds, read at slightly different moments: they differ by at most 1). A
# restart less than 2 s after the previous start is taken for the same Asterisk.
SAME_BOOT_S = 1.5


@dataclass(frozen=True, slots=True)
class Login:
    """One row of the record."""

    queue: str
    interface: str
    member_name: str
    state_interface: str = ""
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    user_id: int | None = None
    seen_boot: float | None = None


@dataclass(slots=True)
class Plan:
    restore: list[Login] = field(default_factory=list)  # QueueAdd these
    confirm: list[Login] = field(default_factory=list)  # present: record what Asterisk shows
    drop: list[Login] = field(default_factory=list)  # removed in Asterisk while we were away
    adopt: list[Login] = field(default_factory=list)  # dynamic members we did not know of


def same_boot(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= SAME_BOOT_S


def member_of(item: Mapping[str, str], boot: float | None) -> Login | None:
    """A dynamic member from a ``QueueMember`` list item or a ``QueueMember*`` event."""
    if item.get("Membership", "dynamic") != "dynamic":
        return None
    queue = item.get("Queue", "")
    interface = item.get("Interface") or item.get("Location") or ""
    if not queue or not interface:
        return None
    paused = item.get("Paused") == "1"
    try:
        penalty = int(item.get("Penalty") or 0)
    except ValueError:
        penalty = 0
    return Login(queue, interface, item.get("MemberName") or item.get("Name") or interface,
                 item.get("StateInterface", "") or "", penalty, paused,
                 item.get("PausedReason", "") if paused else "", None, boot)


def plan(record: Iterable[Login], items: Iterable[Mapping[str, str]], boot: float) -> Plan:
    """What to do after a (re)connect to the Asterisk that started at ``boot``, given the record
    and ``QueueStatus``'s items."""
    present: dict[tuple[str, str], Login] = {}
    for item in items:
        if item.get("Event") == "QueueMember":
            m = member_of(item, boot)
            if m is not None:
                present[(m.queue, m.interface)] = m
    out = Plan()
    known = set()
    for row in record:
        key = (row.queue, row.interface)
        known.add(key)
        there = present.get(key)
        if there is not None:
            out.confirm.append(Login(row.queue, row.interface, there.member_name,
                                     there.state_interface or row.state_interface, there.penalty,
                                     there.paused, there.reason, row.user_id, boot))
        elif same_boot(row.seen_boot, boot):
            out.drop.append(row)
        else:
            out.restore.append(row)
    out.adopt = [m for key, m in present.items() if key not in known]
    return out


def queue_add_headers(row: Login) -> dict[str, object]:
    headers: dict[str, object] = {"Queue": row.queue, "Interface": row.interface,
                                  "MemberName": row.member_name, "Penalty": row.penalty,
                                  "Paused": "true" if row.paused else "false"}
    if row.state_interface and row.state_interface != row.interface:
        headers["StateInterface"] = row.state_interface
    if row.paused and row.reason:
        headers["Reason"] = row.reason
    return headers


def _row(r: Any) -> Login:
    return Login(r.queue, r.interface, r.member_name, r.state_interface, r.penalty, r.paused,
                 r.reason, r.user_id, float(r.seen_boot) if r.seen_boot is not None else None)


class QueueTruth:
    """The ``queue_logins`` table. Writes from member events go through one queue, in arrival
    order, off the AMI read path."""

    def __init__(self, engine: AsyncEngine, resolve_user: Callable[[str, str], int | None],
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.engine = engine
        self.resolve_user = resolve_user
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._queue: asyncio.Queue[tuple[str, Login]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def rows(self) -> list[Login]:
        async with self.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(select(_t))).all()]

    # -- from events (read path) -----------------------------------------------------------

    def on_member_event(self, msg: Mapping[str, str], boot: float | None) -> None:
        event = msg.get("Event")
        if event not in ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause"):
            return
        m = member_of(msg, boot)
        if m is None:
            return
        self._queue.put_nowait(("remove" if event == "QueueMemberRemoved" else "upsert", m))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain(), name="queue-truth")

    async def settled(self) -> None:
        """Wait until every event-driven write so far is done."""
        while self._worker is not None and not self._worker.done() and not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._worker is not None and not self._worker.done():
            await asyncio.wait([self._worker], timeout=5)

    async def _drain(self) -> None:
        while not self._queue.empty():
            op, m = self._queue.get_nowait()
            try:
                if op == "remove":
                    await self.remove([(m.queue, m.interface)])
                else:
                    await self.upsert([m])
            except Exception:
                log.exception("agentstate: recording a queue member change failed")

    async def close(self) -> None:
        if self._worker is not None:
            await asyncio.wait([self._worker], timeout=2)
            self._worker.cancel()

    # -- writes ----------------------------------------------------------------------------

    async def upsert(self, logins: Iterable[Login]) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            for m in logins:
                uid = m.user_id if m.user_id is not None else self.resolve_user(m.member_name, m.interface)
                values = {"member_name": m.member_name[:64], "state_interface": m.state_interface[:128],
                          "penalty": m.penalty, "paused": m.paused, "reason": m.reason[:64],
                          "user_id": uid, "updated_at": now,
                          "seen_boot": int(m.seen_boot) if m.seen_boot is not None else None}
                done = await conn.execute(update(_t).where(_t.c.queue == m.queue, _t.c.interface == m.interface)
                                          .values(**values))
                if done.rowcount == 0:
                    await conn.execute(_t.insert().values(queue=m.queue[:64], interface=m.interface[:128],
                                                          **values))

    async def remove(self, keys: Iterable[tuple[str, str]]) -> None:
        async with self.engine.begin() as conn:
            for queue, interface in keys:
                await conn.execute(delete(_t).where(_t.c.queue == queue, _t.c.interface == interface))

    async def set_paused(self, interfaces: Iterable[str], paused: bool, reason: str) -> int:
        """An agent paused or resumed while Asterisk was unreachable: restored that way."""
        async with self.engine.begin() as conn:
            done = await conn.execute(update(_t).where(_t.c.interface.in_(list(interfaces)))
                                      .values(paused=paused, reason=reason if paused else "",
                                              updated_at=self.clock()))
        return int(done.rowcount or 0)

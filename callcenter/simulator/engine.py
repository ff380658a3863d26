"""The simulator's core: simulated clock, live state, and fan-out of events to sessions.

The call flows (``scenarios.py``, ``originate.py``) and the action handlers change state and
call :meth:`Engine.emit`; the TCP side (``server.py``) registers logged-in sessions here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Protocol

from callcenter.ami.codec import encode_message

from .config import SimulatorConfig
from .frames import DIALPLAN, Event
from .state import Channel, Ids, Member, QueueState, device_of

log = logging.getLogger("callcenter.simulator")

OnSent = Callable[[str, dict[str, str], int], None]
"""``on_sent(event_name, fields, t_monotonic_ns)``: called once per event right after its frame
was handed to every logged-in client's transport."""


class Sink(Protocol):
    """A logged-in client as the engine sees it."""

    def send(self, data: bytes) -> None: ...


class Engine:
    """Owns the state of one simulated Asterisk. Not thread-safe: one event loop."""

    def __init__(self, config: SimulatorConfig, on_sent: OnSent | None = None) -> None:
        self.config = config
        self.on_sent = on_sent
        self.ids = Ids()
        self._loop_t0 = time.monotonic()
        # Simulated epoch at start: real wall clock, so Uniqueids look like Asterisk's.
        self._epoch0 = time.time()
        self.started = int(self._epoch0)
        # Wall-clock (monotonic) instant of the last (re)start: FullyBooted's Uptime.
        self.booted = time.monotonic()
        # Live channels by Uniqueid, in creation order (CoreShowChannels/Status list them so).
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, QueueState] = {}
        # Device → number of agent legs ringing or talking on it (ringinuse=no: busy if > 0).
        self.busy: dict[str, int] = {}
        self._load_queues()
        self.sinks: set[Sink] = set()
        self._members_changed = asyncio.Event()
        # Background call flows; cancelled by the simulator's stop() and restart().
        self.tasks: set[asyncio.Task[object]] = set()
        # The part of ``tasks`` a restart leaves running (the traffic generator).
        self.persistent: set[asyncio.Task[object]] = set()

    def _load_queues(self) -> None:
        """queues.conf as at boot: static members only, every counter at zero."""
        self.queues = {}
        for q in self.config.queues:
            qs = QueueState(q.name, q.strategy, q.ring_timeout, q.retry, q.max_wait,
                            q.service_level)
            for m in q.members:
                qs.members.append(Member(m.name, m.interface, login_time=self.started))
            self.queues[q.name] = qs

    def forget(self) -> None:
        """What a restarting Asterisk loses: every channel and waiting caller, the dynamic
        queue members (``persistentmembers = no``), queue counters, id counters."""
        self.channels.clear()
        self.busy.clear()
        self.ids = Ids()
        self._load_queues()
        self.members_changed()

    def boot(self, *, fresh: bool = False) -> None:
        """Start counting Uptime from now. ``fresh`` (after :meth:`forget`): the queues are
        loaded again, their static members logged in now."""
        self.booted = time.monotonic()
        if fresh:
            self.started = int(self.now())
            self._load_queues()

    def uptime(self) -> int:
        """Wall-clock seconds since the (re)start, as FullyBooted's Uptime reports them."""
        return int(time.monotonic() - self.booted)

    def spawn(self, coro: Coroutine[object, object, object], *,
              persistent: bool = False) -> asyncio.Task[object]:
        """Run a call flow in the background; its failure is logged, never silent.
        ``persistent``: not a call (the traffic generator), so a restart does not end it."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        if persistent:
            self.persistent.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        self.persistent.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulated call flow failed", exc_info=task.exception())

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated epoch seconds: runs 1/time_scale times faster than the wall clock."""
        return self._epoch0 + (time.monotonic() - self._loop_t0) / self.config.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time. Cancellable like asyncio.sleep."""
        if sim_seconds > 0:
            await asyncio.sleep(sim_seconds * self.config.time_scale)

    # -- channels ---------------------------------------------------------------------------
    def new_channel(self, name: str, tech: str, linkedid: str | None = None,
                    uniqueid: str | None = None) -> Channel:
        """``uniqueid``: the one an Originate's ``ChannelId`` chose (default: the next one)."""
        now = self.now()
        uid = uniqueid or self.ids.uniqueid(now)
        ch = Channel(name, uid, linkedid or uid, now, tech, manager_vars=self.config.channelvars)
        self.channels[uid] = ch
        return ch

    def drop(self, *chans: Channel | None) -> None:
        for ch in chans:
            if ch is not None:
                self.channels.pop(ch.uniqueid, None)

    # -- members ----------------------------------------------------------------------------
    def is_busy(self, interface: str) -> bool:
        return self.busy.get(device_of(interface), 0) > 0

    def set_busy(self, interface: str, delta: int) -> None:
        dev = device_of(interface)
        n = self.busy.get(dev, 0) + delta
        if n > 0:
            self.busy[dev] = n
        else:
            self.busy.pop(dev, None)
        if delta < 0:
            self.members_changed()

    def members_changed(self) -> None:
        """Wake callers waiting for a free member (pause, unpause, add, hangup)."""
        self._members_changed.set()
        self._members_changed = asyncio.Event()

    async def wait_members_changed(self, sim_timeout: float) -> None:
        """Return when member availability may have changed, or after ``sim_timeout``."""
        ev = self._members_changed
        try:
            await asyncio.wait_for(ev.wait(), max(sim_timeout, 0) * self.config.time_scale)
        except TimeoutError:
            pass

    def queues_of(self, interface: str) -> list[tuple[QueueState, Member]]:
        out = []
        for q in self.queues.values():
            m = q.member(interface)
            if m is not None:
                out.append((q, m))
        return out

    # -- fan-out ----------------------------------------------------------------------------
    def emit(self, events: Iterable[Event]) -> None:
        """Encode ``events`` and write them, as one batch, to every logged-in client.

        Dialplan-class events are dropped unless ``full_events``. Never blocks: a client whose
        buffer overflows is dropped by its session (see ``server.Session.send``).
        """
        full = self.config.full_events
        parts = []
        sent: list[Event] = []
        hook = self.on_sent
        for ev in events:
            name, priv, fields = ev
            if priv == DIALPLAN and not full:
                continue
            parts.append(encode_message([("Event", name), ("Privilege", priv), *fields]))
            if hook is not None:
                sent.append(ev)
        if not parts:
            return
        data = b"".join(parts)
        for sink in list(self.sinks):
            sink.send(data)
        if hook is not None:
            t = time.monotonic_ns()
            for name, _priv, fields in sent:
                try:
                    hook(name, dict(fields), t)
                except Exception:  # a test hook must never break the call flow
                    log.exception("on_sent hook failed for %s", name)

"""The TCP side: one :class:`Session` per client, and :class:`AmiSimulator`, the public API.

Sessions are asyncio Protocols: a write never waits for the client. A client whose transport
buffer exceeds ``max_client_buffer`` is dropped, as Asterisk drops a manager session that does
not drain within ``writetimeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Sequence

from callcenter.ami.codec import FrameDecoder, Malformed, Message, encode_message

from . import frames as F
from .actions import HANDLERS, error
from .config import SimulatorConfig
from .engine import Engine, OnSent, log
from .frames import Fields
from .scenarios import CallPlan, arrive_iax, arrive_local, queue_call
from .traffic import TrafficProfile, mask_phone, run_traffic

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
# Header names as handlers spell them; AMI header names are case-insensitive.
_CANONICAL = {k.lower(): k for k in (
    "Action", "ActionID", "Username", "Secret", "Channel", "Context", "Exten", "Priority",
    "Application", "Data", "Async", "Timeout", "CallerID", "Variable", "Queue", "Interface",
    "MemberName", "Penalty", "Paused", "Reason", "StateInterface", "ChannelId",
)}


def canonical(msg: Message) -> Message:
    return {_CANONICAL.get(k.lower(), k): v for k, v in msg.items()}


class Session(asyncio.Protocol):
    """One manager connection: login, actions, and (once logged in) the event stream."""

    def __init__(self, sim: AmiSimulator) -> None:
        self._sim = sim
        self._eng = sim.engine
        self._decoder = FrameDecoder(expect_banner=False)
        self.transport: asyncio.Transport | None = None
        self.logged_in = False
        # Set while a failed login waits out its delay: nothing more is answered.
        self._closing = False

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._sim.sessions.add(self)
        transport.write(BANNER)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sim.sessions.discard(self)
        self._eng.sinks.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        for msg in self._decoder.feed(data):
            if self._closing or self.transport is None:
                return
            if isinstance(msg, Malformed):
                log.warning("malformed action from client: %s (%d bytes)", msg.reason, msg.size)
                continue
            msg = canonical(msg)
            try:
                self._handle(msg)
            except Exception:  # one bad action must not kill the session (nor the simulator)
                log.exception("action %s failed", msg.get("Action", "?"))
                self.reply(error(msg, "Internal error"))

    # -- output -----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(data)
        if t.get_write_buffer_size() > self._eng.config.max_client_buffer:
            log.warning("client does not read its events; dropping it")
            self._eng.sinks.discard(self)
            t.abort()

    def reply(self, fields: Fields, events: list[Fields] | None = None) -> None:
        data = encode_message(fields)
        if events:
            data += b"".join(encode_message(e) for e in events)
        self.send(data)

    def close(self) -> None:
        self._eng.sinks.discard(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._eng.sinks.discard(self)
        if self.transport is not None:
            self.transport.abort()

    # -- actions ----------------------------------------------------------------------------
    def _handle(self, msg: Message) -> None:
        action = msg.get("Action", "")
        key = action.lower()
        if key == "login":
            self._login(msg)
        elif key == "logoff":
            self.reply([("Response", "Goodbye"), *_aid(msg),
                        ("Message", "Thanks for all the fish.")])
            self.close()
        elif not self.logged_in:
            self.reply(error(msg, "Permission denied"))
        elif key in HANDLERS:
            HANDLERS[key](self._eng, self, msg)
        else:
            self.reply(error(msg, f"Invalid/unknown command: {action}. "
                                  "Use Action: ListCommands to show available commands."))

    def _successful_auth(self) -> Fields:
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname") or ("127.0.0.1", 0)
        peer = self.transport.get_extra_info("peername") or ("127.0.0.1", 0)
        now = time.time()
        tv = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"
        return [("Event", "SuccessfulAuth"), ("Privilege", F.SECURITY), ("EventTV", tv),
                ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1"),
                ("AccountID", self._eng.config.username), ("SessionID", f"0x{id(self):x}"),
                ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"), ("UsingPassword", "0"),
                ("SessionTV", tv)]

    def _login(self, msg: Message) -> None:
        cfg = self._eng.config
        if msg.get("Username") == cfg.username and msg.get("Secret") == cfg.secret:
            self.logged_in = True
            log.info("manager user %s logged in", cfg.username)
            self.reply([("Response", "Success"), *_aid(msg),
                        ("Message", "Authentication accepted")])
            # Seconds since the simulator (re)started: 0 right after a restart, which is how
            # a client tells a restarted Asterisk from a dropped connection.
            uptime = self._eng.uptime()
            name, priv, fields = F.fully_booted(uptime, uptime)
            data = encode_message([("Event", name), ("Privilege", priv), *fields])
            if cfg.full_events:  # the security class, which a ``read = all`` user also gets
                data += encode_message(self._successful_auth())
            self.send(data)
            self._eng.sinks.add(self)
            return
        log.warning("manager login failed for user %r", msg.get("Username", ""))
        self._closing = True

        async def refuse() -> None:
            # Asterisk waits before refusing, to slow down password guessing.
            await asyncio.sleep(cfg.failed_login_delay)
            self.reply([("Response", "Error"), *_aid(msg), ("Message", "Authentication failed")])
            self.close()

        self._eng.spawn(refuse())


def _aid(msg: Message) -> Fields:
    return [("ActionID", msg["ActionID"])] if "ActionID" in msg else []


class AmiSimulator:
    """A simulated Asterisk 22 manager interface with queues, agents and a trunk.

    Usage::

        sim = AmiSimulator(SimulatorConfig(port=0, time_scale=0.01))
        port = await sim.start()
        linkedid = await sim.place_call(caller="13800138000", caller_name="Zhang San")
        await sim.wait_call(linkedid)
        await sim.restart(down_for=1.0)  # like ``core restart now``
        await sim.aclose()
    """

    def __init__(self, config: SimulatorConfig | None = None, *,
                 on_sent: OnSent | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.engine = Engine(self.config, on_sent)
        # Every open connection, logged in or not (drop_clients() closes them all).
        self.sessions: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._calls: dict[str, asyncio.Task[object]] = {}
        self.port: int | None = None
        # Set while restart() has the simulated Asterisk down.
        self._restarting = False
        self._restart_task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> int:
        """Listen on ``config.host``/``config.port`` (0 = any free port); returns the port.
        Raises OSError if the address is taken."""
        self._stopped = False
        await self._listen(self.config.port)
        self.engine.boot()
        assert self.port is not None
        log.info("AMI simulator listening on %s:%d (style %s, full events %s, channelvars %s)",
                 self.config.host, self.port, self.config.style, self.config.full_events,
                 ",".join(self.config.channelvars) or "-")
        return self.port

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Session(self), self.config.host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def restarting(self) -> bool:
        """True while :meth:`restart` has the simulated Asterisk down."""
        return self._restarting

    @property
    def is_up(self) -> bool:
        """Listening (started, not stopped, not down for a restart)."""
        return self._server is not None

    async def restart(self, down_for: float = 1.0) -> None:
        """Restart the simulated Asterisk as ``core restart now`` does (project_dialplans_session
        lines 380-417).

        Every logged-in client gets ``Event: Shutdown`` (``Shutdown: Cleanly``,
        ``Restart: True``), then every client socket is closed and the port stops listening;
        call flows end without further events and the simulator forgets every channel, waiting
        caller and dynamic queue member (static members from the config stay, with their
        counters back at zero, as do the queues' counters). For ``down_for`` wall seconds
        connections are refused; then it listens again on the same port, and FullyBooted
        reports ``Uptime: 0`` / ``LastReload: 0``, counting from there. The traffic generator
        keeps its schedule but places no calls while the simulator is down.

        Returns once it listens again. Raises RuntimeError if the simulator is not started,
        OSError if the port cannot be bound again. A restart already under way is awaited,
        not repeated."""
        if self._restart_task is None or self._restart_task.done():
            if self._server is None:
                raise RuntimeError("the simulator is not listening")
            self._restart_task = asyncio.get_running_loop().create_task(self._restart(down_for))
        await asyncio.shield(self._restart_task)

    async def _restart(self, down_for: float) -> None:
        eng = self.engine
        log.warning("simulated Asterisk restarting (down for %.1f s)", down_for)
        self._restarting = True
        try:
            server, self._server = self._server, None
            if server is not None:
                server.close()  # refuse new connections from now on
            eng.emit([F.shutdown(restart=True)])
            for s in list(self.sessions):
                s.close()  # after the Shutdown frame is flushed
            flows = [t for t in eng.tasks if t not in eng.persistent]
            for t in flows:
                t.cancel()
            await asyncio.gather(*flows, return_exceptions=True)
            eng.forget()
            await asyncio.sleep(max(down_for, 0.0))
            if self._stopped:
                return
            assert self.port is not None
            eng.boot(fresh=True)
            await self._listen(self.port)
            log.warning("simulated Asterisk up again on %s:%d", self.config.host, self.port)
        finally:
            self._restarting = False

    @property
    def clients(self) -> int:
        """Logged-in clients."""
        return len(self.engine.sinks)

    async def place_call(
        self,
        caller: str | None = "13800138000",
        caller_name: str = "",
        did: str | None = None,
        queue: str = "aftersales",
        answer_after: float = 2.0,
        talk: float = 6.0,
        abandon_after: float | None = None,
        no_answer_members: Sequence[str] = (),
        hangup_by: str = "agent",
    ) -> str:
        """Start one inbound call into ``queue`` and return its Linkedid at once (the call's
        channels exist and their first events are written before this returns).

        ``caller=None`` is an anonymous caller (``<unknown>``). Durations are simulated
        seconds. Members named in ``no_answer_members`` ring until AgentRingNoAnswer; with
        ``abandon_after`` the caller hangs up after that long in the queue. Raises KeyError for
        an unknown queue, RuntimeError while a :meth:`restart` has the simulator down. Follow
        the call with :meth:`wait_call`.
        """
        if self._restarting:
            raise RuntimeError("the simulated Asterisk is restarting")
        eng = self.engine
        q = eng.queues[queue]
        did = did or self.config.hotline
        if self.config.style == "iax2":
            qc = arrive_iax(eng, caller, caller_name, did)
            priority = 2
        else:
            qc = arrive_local(eng, caller, caller_name, did)
            priority = 4
        plan = CallPlan(answer_after, talk, abandon_after, frozenset(no_answer_members),
                        hangup_by)
        log.debug("inbound call from %s to queue %s", mask_phone(caller or ""), queue)

        async def flow() -> str:
            await eng.sleep(0.5)  # the hotline dialplan's Answer()/Set() before Queue()
            return await queue_call(eng, qc, q, plan, priority)

        linkedid = qc.chan.linkedid
        task = eng.spawn(flow())
        self._calls[linkedid] = task
        task.add_done_callback(lambda _t: self._calls.pop(linkedid, None))
        return linkedid

    async def wait_call(self, linkedid: str) -> str | None:
        """Wait for the call's flow to end; returns "completed", "abandoned", "timeout", or
        None if the call is unknown, already over, or cut by a restart or stop. Wrap in
        ``asyncio.timeout`` to bound it."""
        task = self._calls.get(linkedid)
        if task is None:
            return None
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and (me is None or not me.cancelling()):
                return None
            raise
        return str(result)

    async def run_traffic(self, rate: float, duration: float | None = None,
                          callers: Sequence[str] = (), **profile: object) -> int:
        """Place calls at ``rate`` calls per wall-clock second for ``duration`` wall seconds
        (None: until cancelled). ``profile`` keys are :class:`TrafficProfile` fields
        (``unknown_ratio``, ``anonymous_ratio``, ``abandon_ratio``, ``queue``, ``seed``…).
        Returns the number of calls placed. Cancelling stops placing calls; calls in progress
        go on."""
        prof = TrafficProfile(**profile)  # type: ignore[arg-type]
        return await run_traffic(self, rate, duration, callers, prof)

    async def drop_clients(self) -> None:
        """Abort every client connection at once (no Goodbye), like a crashed Asterisk."""
        for s in list(self.sessions):
            s.abort()
        await asyncio.sleep(0)

    def start_traffic(self, rate: float, duration: float | None = None,
                      callers: Sequence[str] = (), **profile: object) -> asyncio.Task[object]:
        """:meth:`run_traffic` in the background; :meth:`stop` cancels it (a restart does not)."""
        return self.engine.spawn(self.run_traffic(rate, duration, callers, **profile),
                                 persistent=True)

    def stop(self) -> _Stopped:
        """Stop listening, abort clients, cancel every call flow and generator. Idempotent.

        Takes effect at once; the result may be awaited to wait until the cancelled tasks
        have finished (``sim.stop()`` and ``await sim.stop()`` both work)."""
        self._stopped = True
        if self._restart_task is not None and not self._restart_task.done():
            self._restart_task.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
            log.info("AMI simulator stopped")
        for s in list(self.sessions):
            s.abort()
        tasks = list(self.engine.tasks)
        for t in tasks:
            t.cancel()
        return _Stopped(tasks)

    async def aclose(self) -> None:
        """``await stop()``."""
        await self.stop()

    async def __aenter__(self) -> AmiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Stopped:
    """What :meth:`AmiSimulator.stop` returns: awaiting it waits for the cancelled tasks."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: list[asyncio.Task[object]]) -> None:
        self._tasks = tasks

    def __await__(self) -> Generator[object, None, None]:
        if self._tasks:
            yield from asyncio.gather(*self._tasks, return_exceptions=True).__await__()

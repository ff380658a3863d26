"""One logged-in AMI session, kept alive; every event handed over in arrival order.

Built on panoramisk's ``AMIProtocol`` (the asyncio protocol class) with its weak parts replaced —
each replacement says why:

- framing and decoding: ``callcenter.ami.codec`` (panoramisk decodes each TCP chunk alone with
  ``errors='ignore'`` and dies on a duplicated ``Event:`` header);
- event dispatch: handlers are plain functions called synchronously from ``data_received``, in
  arrival order (panoramisk wraps coroutine callbacks in ``ensure_future`` and never awaits them,
  so two events of one call can be handled out of order);
- reconnect: exponential backoff with jitter (panoramisk retries every 2 s, forever, in step
  with every other client);
- liveness: a ping whose answer must arrive within a deadline, or the socket is aborted
  (panoramisk's ping has no deadline, a half-open TCP connection is never noticed);
- actions are never re-sent after a reconnect (panoramisk queues unanswered actions — Originate
  included — and re-sends them on ``FullyBooted``: a customer dialled twice). A pending action
  fails with :class:`AmiConnectionLost`; whether it reached Asterisk is for its caller to resolve.

Handlers must be quick and must not block: they run on the read path. Slow work (database,
lookups, websocket fan-out) is scheduled by them as tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from panoramisk.ami_protocol import AMIProtocol

from callcenter.ami.codec import BANNER_PREFIX, FrameDecoder, Malformed, Message, encode_action

log = logging.getLogger("callcenter.ami")

EventHandler = Callable[[Message], None]
LoginHook = Callable[["AmiConnector"], Awaitable[None]]


class AmiError(Exception):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class AmiNotConnected(ConnectionError):
    """No logged-in AMI session right now; nothing was sent."""


class _SessionEnded(ConnectionError):
    """The logged-in session closed; ``last_error`` already says why."""


class AmiConnectionLost(ConnectionError):
    """The session dropped after the action was written and before its answer came.
    Asterisk may or may not have carried it out; it is never re-sent."""


class AmiAuthenticationFailed(Exception):
    pass


@dataclass(slots=True)
class _Pending:
    action: str
    future: asyncio.Future
    # List actions (EventList) collect their events until the "...Complete" event.
    is_list: bool = False
    items: list[Message] = field(default_factory=list)


class _Protocol(AMIProtocol):
    """panoramisk's protocol with our framing; feeds the connector synchronously."""

    def __init__(self, connector: AmiConnector) -> None:
        self.connector = connector
        self.decoder = FrameDecoder(wanted=connector.wanted_events)
        self.banner_seen = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        self.closed = False

    def data_received(self, data: bytes) -> None:
        decoder = self.decoder
        items = decoder.feed(data)
        if not self.banner_seen.done() and decoder.banner is not None:
            self.banner_seen.set_result(decoder.banner)
        on_message = self.connector._on_message
        for item in items:
            if type(item) is Malformed:
                self.connector._skipped(item)  # type: ignore[arg-type]
                continue
            on_message(item)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.banner_seen.done():
            self.banner_seen.set_exception(ConnectionError("closed before the banner"))
        self.connector._on_connection_lost(self, exc)

    def send_bytes(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


class AmiConnector:
    """Connects, logs in, pings, resyncs through ``on_login`` hooks, reconnects.

    ``state`` is one of ``connecting``, ``connected`` (logged in), ``disconnected``;
    ``last_error`` says why the last attempt or session ended (no secrets, no numbers).
    """

    def __init__(self, host: str, port: int, username: str, secret: str, *,
                 ping_interval: float = 5.0, ping_timeout: float = 8.0,
                 reconnect_min: float = 0.5, reconnect_max: float = 30.0,
                 connect_timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.connect_timeout = connect_timeout
        self.state = "disconnected"
        self.last_error: str | None = None
        self.connected_since: float | None = None
        # Counters for /health and the benchmarks (events parsed; see events_total).
        self.events_received = 0
        self.malformed = 0
        # Frames skipped as unreadable, by (event name or "", reason): for /health and /metrics.
        self.skipped_frames: Counter[tuple[str, str]] = Counter()
        self.sessions = 0
        self._handlers: list[EventHandler] = []
        # Union of the events the handlers asked for; None once any handler wants them all.
        self.wanted_events: frozenset[str] | None = frozenset({"FullyBooted"})
        self._login_hooks: list[LoginHook] = []
        self._pending: dict[str, _Pending] = {}
        self._protocol: _Protocol | None = None
        # ActionIDs unique across processes and reconnects: another client's answers (or a
        # replayed recording's) can never be taken for ours.
        self._ids = itertools.count(1)
        self._id_prefix = f"cc{os.getpid():x}{random.getrandbits(24):06x}"
        self._logged_in = asyncio.Event()
        # Asterisk's own start (epoch seconds, from FullyBooted's Uptime) in this session, set
        # once it says it is fully booted (right after login, or later while it still boots):
        # a different value from one session to the next means Asterisk restarted meanwhile.
        self.booted_at: float | None = None
        self._booted = asyncio.Event()
        self._session_ended: asyncio.Event | None = None
        # Events that arrive while the login hooks rebuild state from the list actions; they
        # are newer than nothing the hooks read, so they are handed over after the hooks, in
        # order. None outside that window.
        self._held: list[Message] | None = None

    # -- public interface ----------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler, events: frozenset[str] | None = None) -> None:
        """``handler(message)`` is called for every event (or only those named in ``events``;
        others may be passed over unparsed), in arrival order, on the read path. Takes effect
        from the next session."""
        self._handlers.append(handler)
        if events is None or self.wanted_events is None:
            self.wanted_events = None
        else:
            self.wanted_events = self.wanted_events | events

    def add_login_hook(self, hook: LoginHook) -> None:
        """``await hook(connector)`` after every successful login (resync state there)."""
        self._login_hooks.append(hook)

    @property
    def events_total(self) -> int:
        """Events read in this session, parsed or passed over."""
        p = self._protocol
        return self.events_received + (p.decoder.skipped if p is not None else 0)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._logged_in.wait(), timeout)

    async def wait_booted(self, timeout: float | None = None) -> float:
        """Asterisk's start time once this session's ``FullyBooted`` has arrived (at once if it
        has). TimeoutError after ``timeout``; ConnectionError if the session ends first."""
        if self._booted.is_set() and self.booted_at is not None:
            return self.booted_at
        ended = self._session_ended
        waiters = [asyncio.ensure_future(self._booted.wait())]
        if ended is not None:
            waiters.append(asyncio.ensure_future(ended.wait()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._booted.is_set() and self.booted_at is not None:
            return self.booted_at
        if not done:
            raise TimeoutError("Asterisk did not say it is fully booted")
        raise AmiNotConnected("session ended before FullyBooted")

    async def send_action(self, action: str, headers: dict[str, object] | None = None, *,
                          timeout: float = 10.0, action_id: str | None = None) -> Message:
        """Send one action and return its response.

        Raises :class:`~callcenter.ami.codec.AmiInjectionError` (nothing sent) for a header that
        would break framing, :class:`AmiNotConnected` (nothing sent), :class:`AmiError` for
        ``Response: Error``, :class:`AmiConnectionLost` if the session dropped before the answer,
        ``TimeoutError`` after ``timeout`` seconds. Cancelling it forgets the answer; it does not
        un-send the action. ``action_id``: the caller's own id (an outbound attempt's id, so the
        ``OriginateResponse`` names it); default a fresh connector id. ValueError (nothing sent)
        if that id is already waiting for an answer.
        """
        return await self._send(action, headers, timeout, is_list=False, action_id=action_id)

    async def send_list_action(self, action: str, headers: dict[str, object] | None = None, *,
                               timeout: float = 10.0) -> list[Message]:
        """Send a list action (``QueueStatus``, ``CoreShowChannels`` …) and return its items."""
        return await self._send(action, headers, timeout, is_list=True)

    async def run(self) -> None:
        """Keep a session up until cancelled. Cancelling closes the socket."""
        attempt = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._session()
                except asyncio.CancelledError:
                    raise
                except AmiAuthenticationFailed:
                    self.last_error = "authentication failed"
                    log.error("AMI: authentication failed for user %r", self._username)
                except _SessionEnded:
                    log.warning("AMI: session to %s:%s ended (%s)", self.host, self.port, self.last_error)
                except (OSError, ConnectionError, TimeoutError) as e:
                    self.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                    log.warning("AMI: %s:%s unreachable or lost (%s)", self.host, self.port, self.last_error)
                self.state = "disconnected"
                if time.monotonic() - started > 30:
                    attempt = 0  # a session that lasted starts the backoff afresh
                delay = min(self.reconnect_max, self.reconnect_min * 2 ** attempt)
                delay *= random.uniform(0.5, 1.5)
                attempt = min(attempt + 1, 30)
                await asyncio.sleep(delay)
        finally:
            self.state = "disconnected"
            if self._protocol is not None:
                self._protocol.close()

    # -- one session ---------------------------------------------------------------------

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        self.state = "connecting"
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port), self.connect_timeout)
        self._protocol = protocol
        self._session_ended = ended = asyncio.Event()
        self._booted.clear()
        self.booted_at = None
        self._held = []
        pinger: asyncio.Task | None = None
        try:
            banner = await asyncio.wait_for(protocol.banner_seen, self.connect_timeout)
            if not banner.startswith(BANNER_PREFIX):
                raise ConnectionError("not an Asterisk manager port")
            try:
                await self._send("Login", {"Username": self._username, "Secret": self._secret,
                                           "Events": "on"}, self.connect_timeout, is_list=False,
                                 before_login=True)
            except AmiError as e:
                raise AmiAuthenticationFailed() from e
            self.state = "connected"
            self.sessions += 1
            self.connected_since = time.time()
            self.last_error = None
            self._logged_in.set()
            log.info("AMI: logged in to %s:%s (%s)", self.host, self.port, banner)
            pinger = asyncio.create_task(self._ping_loop(protocol), name="ami-ping")
            for hook in self._login_hooks:
                try:
                    await hook(self)
                except (AmiError, ConnectionError, TimeoutError) as e:
                    log.warning("AMI: resync after login failed: %s", type(e).__name__)
                except Exception:
                    # A bug in one hook must not take the telephony link down with it.
                    log.exception("AMI: login hook failed")
            self._release_held()
            await ended.wait()
            if self.last_error is None:
                self.last_error = "connection closed by Asterisk"
            raise _SessionEnded(self.last_error)
        finally:
            self._held = None
            self._logged_in.clear()
            if pinger is not None:
                pinger.cancel()
            if not protocol.closed and self.state == "connected":
                # Stopping (cancelled): say goodbye, best effort and not awaited, so Asterisk
                # logs a clean logoff rather than a dropped manager session.
                protocol.send_bytes(encode_action("Logoff", f"{self._id_prefix}-bye"))
            protocol.close()
            if not ended.is_set():
                self._fail_pending(AmiConnectionLost("session closed"))
            self.connected_since = None

    async def _ping_loop(self, protocol: _Protocol) -> None:
        while not protocol.closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._send("Ping", None, self.ping_timeout, is_list=False)
            except (TimeoutError, AmiError):
                self.last_error = f"no answer to ping within {self.ping_timeout:g}s"
                log.warning("AMI: %s; dropping the connection", self.last_error)
                protocol.transport.abort()
                return
            except (AmiConnectionLost, AmiNotConnected):
                return

    async def _send(self, action: str, headers: dict[str, object] | None, timeout: float, *,
                    is_list: bool, before_login: bool = False,
                    action_id: str | None = None):  # type: ignore[no-untyped-def]
        protocol = self._protocol
        if action_id is None:
            action_id = f"{self._id_prefix}-{next(self._ids)}"
        elif action_id in self._pending:
            raise ValueError("ActionID already waiting for an answer")
        data = encode_action(action, action_id, headers)  # validates before anything is sent
        if protocol is None or protocol.closed or (not before_login and self.state != "connected"):
            raise AmiNotConnected(action)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(action, fut, is_list)
        protocol.send_bytes(data)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(action_id, None)

    # -- called by the protocol ----------------------------------------------------------

    def _skipped(self, item: Malformed) -> None:
        self.malformed += 1
        reason = item.reason if not item.reason.startswith("duplicate header") else "duplicate header"
        self.skipped_frames[(item.event or "", reason)] += 1
        # Never the payload (it may hold a caller's number); the event name and the reason only.
        log.warning("AMI: skipped an unreadable frame (event %s, %s, %d bytes)",
                    item.event or "?", item.reason, item.size)

    def _on_message(self, msg: Message) -> None:
        action_id = msg.get("ActionID")
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and self._resolve(pending, msg):
                return
        if "Event" in msg:
            self.events_received += 1
            if msg["Event"] == "FullyBooted" and not self._booted.is_set():
                try:
                    uptime = max(0, int(msg.get("Uptime") or 0))
                except ValueError:
                    uptime = 0
                self.booted_at = float(int(time.time()) - uptime)
                self._booted.set()
            if self._held is not None:
                self._held.append(msg)
                return
            self._dispatch(msg)

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        for msg in held:
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        for handler in self._handlers:
            try:
                handler(msg)
            except Exception:
                # One bad handler must not cost the connection or the other handlers.
                log.exception("AMI: event handler failed on %s", msg.get("Event"))

    def _resolve(self, p: _Pending, msg: Message) -> bool:
        """Route an answer to its pending action; False if it is an ordinary event."""
        fut = p.future
        if "Response" in msg and "Event" not in msg:  # OriginateResponse has both: an event
            if fut.done():
                return True
            if msg["Response"] == "Error":
                fut.set_exception(AmiError(p.action, msg.get("Message", "")))
            elif p.is_list and msg.get("EventList") == "start":
                return True
            elif p.is_list:
                fut.set_result([])
            else:
                fut.set_result(msg)
            return True
        if p.is_list:
            if msg.get("EventList") == "Complete":
                if not fut.done():
                    fut.set_result(p.items)
            else:
                p.items.append(msg)
            return True
        return False  # e.g. OriginateResponse: an event for the handlers

    def _on_connection_lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        if exc is not None:
            self.last_error = f"{type(exc).__name__}: {exc}"
        self._fail_pending(AmiConnectionLost("connection lost"))
        if self._session_ended is not None:
            self._session_ended.set()

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)
                # Retrieved by the awaiting caller; keep asyncio from warning if it was cancelled.
                p.future.exception()

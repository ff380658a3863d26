"""The application factory: every connection and background task lives in a cleanup_ctx."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from callcenter.ami.connector import AmiConnector
from callcenter.appkeys import (
    AGENT_STATE, AGENTS, AUTH, CALLS, CONNECTOR, CUSTOMER_SERVICE, DISPATCH, ENGINE, HUB, LEADERSHIP, LOGIN_THROTTLE, MAILBOX,
    GEOCODER, NOTIFY, ORDERS, OUTBOUND, POPS, RECORDER, REDIS, SESSIONMAKER, SETTINGS, SLA, VAULT,
)
from callcenter.auth.services import AuthService
from callcenter.auth.throttle import LocalLoginThrottle, RedisLoginThrottle
from callcenter.calls.agents import AgentDirectory
from callcenter.calls.events import EVENT_NAMES
from callcenter.calls.recorder import CallRecorder
from callcenter.calls.services import CallService
from callcenter.calls.tracker import CallTracker
from callcenter.customers.services import CustomerService
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.orders.services import OrderService
from callcenter.realtime.hub import WebsocketHub
from callcenter.realtime.leadership import LocalLeadership, RedisLeadership
from callcenter.realtime.mailbox import LocalMailbox, RedisMailbox
from callcenter.screenpop.services import ScreenPopService
from callcenter.settings import Settings
from callcenter.wallboard.services import wallboard_ctx

log = logging.getLogger("callcenter")


async def _stop(*tasks: asyncio.Task) -> None:
    """Cancel and await; a task that had failed is logged, not re-raised into the caller."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("background task %s failed", t.get_name())


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[VAULT] = vault = settings.phone_vault()
    engine = make_engine(settings.database_url)
    await migrate(engine, vault=vault)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    app[AUTH] = AuthService(app[SESSIONMAKER], ttl_s=settings.session_ttl)
    app[CUSTOMER_SERVICE] = CustomerService(app[SESSIONMAKER], settings, vault)
    app[ORDERS] = OrderService(app[SESSIONMAKER], settings, vault)
    yield
    await engine.dispose()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis_url
    if url is None:
        app[REDIS] = None
        yield
        return
    import redis.asyncio as aioredis

    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # A command on a connection Redis dropped (restart, failover) is retried on a fresh one
    # instead of losing, say, a pop.
    client = aioredis.from_url(url, decode_responses=True, health_check_interval=10,
                               retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 5),
                               retry_on_error=[RedisConnectionError, RedisTimeoutError])
    try:
        await client.ping()
    except (RedisError, OSError) as e:
        await client.aclose()
        raise RuntimeError(f"CALLCENTER_REDIS_URL: Redis does not answer ({type(e).__name__})") from e
    app[REDIS] = client
    yield
    await client.aclose()


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, redis = app[SETTINGS], app[REDIS]
    hub = WebsocketHub(settings.ws_queue_size)
    tasks: list[asyncio.Task] = []
    if redis is None:
        mailbox = LocalMailbox(settings.pop_replay_limit)
        app[LEADERSHIP] = LocalLeadership()
        app[LOGIN_THROTTLE] = LocalLoginThrottle()
    else:
        mailbox = RedisMailbox(redis, settings.pop_replay_limit)
        app[LEADERSHIP] = RedisLeadership(redis, ttl=settings.leader_ttl)
        app[LOGIN_THROTTLE] = RedisLoginThrottle(redis)
        ready = asyncio.Event()

        def resubscribed() -> None:
            tasks.append(asyncio.create_task(hub.catch_up(mailbox), name="ws-catch-up"))

        tasks.append(asyncio.create_task(mailbox.run(ready.set, resubscribed), name="mailbox"))
        await asyncio.wait_for(ready.wait(), 10)
    mailbox.on_deliver(hub.deliver)
    mailbox.on_session_end(hub.end_session)  # a logout on any instance closes its sockets here
    app[MAILBOX], app[HUB] = mailbox, hub
    yield
    await _stop(*tasks)


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    from callcenter.customers.history import build_caller_context

    settings = app[SETTINGS]
    agents = AgentDirectory(app[SESSIONMAKER])
    await agents.refresh()
    recorder = CallRecorder(app[ENGINE], agents, app[VAULT], local_area_code=settings.local_area_code)
    tracker = CallTracker()

    async def lookup(conn, caller, now, linkedid):  # type: ignore[no-untyped-def]
        if linkedid.startswith("ob-"):  # an answered outbound callback (callcenter.outbound)
            from callcenter.outbound.services import callback_context

            ctx = await callback_context(conn, linkedid, now=now, settings=settings)
            if ctx is not None:
                return ctx
        return await build_caller_context(conn, caller, now=now, settings=settings,
                                          vault=app[VAULT], exclude_linkedid=linkedid)

    def on_customer(linkedid: str, customer_id: int | None) -> None:
        live = tracker.calls.get(linkedid)
        recorder.set_customer(linkedid, customer_id, live.snapshot() if live else None)

    pops = ScreenPopService(app[ENGINE], app[MAILBOX], agents, lookup, on_customer=on_customer)
    app[AGENTS], app[RECORDER], app[POPS] = agents, recorder, pops
    app[CALLS] = CallService(tracker, recorder, pops, app[ENGINE])
    tasks = [asyncio.create_task(agents.run(), name="agents-refresh"),
             asyncio.create_task(recorder.run(), name="call-recorder")]
    yield
    await _stop(*tasks)
    await pops.close()
    await recorder.flush()


async def outbound_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbound dialler (callcenter.outbound.dialler): callbacks and survey calls, ticking
    every ``CALLCENTER_OUTBOUND_INTERVAL`` s while this instance holds AMI (attached to the
    connector in ami_ctx, which comes after)."""
    from callcenter.outbound.dialler import OutboundConfig, OutboundDialler, make_schedule

    settings = app[SETTINGS]
    app[OUTBOUND] = dialler = OutboundDialler(
        app[SESSIONMAKER], app[VAULT], OutboundConfig.from_settings(settings),
        make_schedule(app[REDIS], app[ENGINE]))
    app[CALLS].on_abandoned = dialler.abandoned_call_ended
    interval = settings.outbound_interval if settings.background else 0
    leadership = app[LEADERSHIP]
    tasks = ([asyncio.create_task(dialler.run(interval, lambda: leadership.is_leader), name="outbound")]
             if interval > 0 else [])
    yield
    dialler.stop()  # the tick under way finishes its transaction first
    if tasks:
        await asyncio.wait(tasks, timeout=5.0)
    await _stop(*tasks)


async def ami_ctx(app: web.Application) -> AsyncIterator[None]:
    """Holds the AMI session while this instance leads; the web side serves regardless."""
    s = app[SETTINGS]
    connector = AmiConnector(s.ami_host, s.ami_port, s.ami_username, s.ami_secret,
                             ping_interval=s.ami_ping_interval, ping_timeout=s.ami_ping_timeout,
                             reconnect_min=s.ami_reconnect_min, reconnect_max=s.ami_reconnect_max)
    calls = app[CALLS]
    connector.add_event_handler(calls.on_ami_event, EVENT_NAMES)
    connector.add_login_hook(calls.resync)
    app[AGENT_STATE].attach(connector)  # agent states and the wallboard (callcenter.agentstate)
    app[OUTBOUND].attach(connector)  # outbound callbacks and surveys (callcenter.outbound)
    app[CONNECTOR] = connector
    leadership = app[LEADERSHIP]

    async def lead() -> None:
        while True:
            try:
                await leadership.acquire()
                runner = asyncio.create_task(connector.run(), name="ami")
                lost = asyncio.create_task(leadership.lost(), name="leadership")
                try:
                    await asyncio.wait([runner, lost], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    # Also on cancellation (shutdown): the AMI session ends before the lease
                    # is released, so two instances never hold AMI at once.
                    await _stop(runner, lost)
                    # Another instance follows the calls now; what we knew goes stale.
                    calls.reset()
                    app[AGENT_STATE].reset()
                    app[OUTBOUND].reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("AMI leadership loop failed; retrying")
                await asyncio.sleep(1.0)

    if not s.background:  # instance role web: the worker instances hold AMI
        yield
        return
    task = asyncio.create_task(lead(), name="ami-leader")
    yield
    await _stop(task)
    await leadership.release()


async def sla_ctx(app: web.Application) -> AsyncIterator[None]:
    """The SLA scheduler (callcenter.sla.scheduler): a pass at start and every
    ``CALLCENTER_SLA_INTERVAL`` s; with Redis, about one pass per interval across instances."""
    from callcenter.sla.scheduler import PassProcess, SlaScheduler, pass_gate

    settings = app[SETTINGS]
    interval = settings.sla_interval if settings.background else 0
    # An instance that runs passes reads and decides them in a child process, off the event
    # loop that serves the pops (an in-memory SQLite database cannot be shared with one).
    process = (PassProcess(settings.database_url)
               if interval > 0 and ":memory:" not in settings.database_url else None)
    app[SLA] = scheduler = SlaScheduler(app[ENGINE], app[MAILBOX], gate=pass_gate(app[REDIS], interval),
                                        process=process)
    tasks = [asyncio.create_task(scheduler.run(interval), name="sla")] if interval > 0 else []
    yield
    await _stop(*tasks)
    if process is not None:
        process.close()


async def dispatch_ctx(app: web.Application) -> AsyncIterator[None]:
    """The dispatch engine (callcenter.dispatch.engine) and its loop: automatic dispatch of new
    orders and the 15-minute acceptance timeout, every ``CALLCENTER_DISPATCH_INTERVAL`` s or at
    once when a new order or a refusal wakes it."""
    from callcenter.dispatch.engine import engine_for

    from callcenter.dispatch.wakeups import RedisWakeups

    settings, redis = app[SETTINGS], app[REDIS]
    app[DISPATCH] = engine = engine_for(app[SESSIONMAKER], settings, app[MAILBOX], app.get(GEOCODER))
    interval = settings.dispatch_interval if settings.background else 0
    tasks = [asyncio.create_task(engine.run(interval), name="dispatch")] if interval > 0 else []
    wakeups = None
    if redis is not None:
        # With several instances, a new order saved anywhere wakes the loops everywhere.
        wakeups = RedisWakeups(redis)
        engine.publish = wakeups.publish
        if tasks:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(wakeups.listen(engine.wake, ready.set), name="dispatch-wakeups"))
            await asyncio.wait_for(ready.wait(), 10)
    yield
    await _stop(*tasks)
    if wakeups is not None:
        await wakeups.close()


async def notify_ctx(app: web.Application) -> AsyncIterator[None]:
    """The notification sender (callcenter.notify.sender): a pass at start and every
    ``CALLCENTER_NOTIFY_INTERVAL`` s; safe with several instances (rows are claimed under a lease)."""
    from callcenter.notify.gateway import make_gateway
    from callcenter.notify.sender import OutboxSender

    settings = app[SETTINGS]
    app[NOTIFY] = sender = OutboxSender(app[SESSIONMAKER], app[VAULT], make_gateway(settings.sms_gateway))
    interval = settings.notify_interval if settings.background else 0
    tasks = [asyncio.create_task(sender.run(interval), name="notify")] if interval > 0 else []
    yield
    await _stop(*tasks)


async def _close_websockets(app: web.Application) -> None:
    await app[HUB].close_all()


async def gc_ctx(app: web.Application) -> AsyncIterator[None]:
    """Freeze what start-up allocated (modules, ORM mappings, connections) out of the garbage
    collector's reach. CPython stops the event loop for every full collection, and walking the
    start-up heap each time cost pops up to ~150 ms at p99 (bench/screen_pop.py); frozen, a full
    collection walks only what serving allocates."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def init_app(settings: Settings) -> web.Application:
    """Build the application; nothing connects until it starts (cleanup_ctx)."""
    from callcenter.agentstate.http import routes as agentstate_routes
    from callcenter.analysis.http import routes as report_routes
    from callcenter.auth.http import routes as auth_routes
    from callcenter.calls.http import routes as call_routes
    from callcenter.customers.http import routes as customer_routes
    from callcenter.dispatch.board_http import routes as board_routes
    from callcenter.dispatch.flow_http import routes as dispatch_flow_routes
    from callcenter.dispatch.http import routes as dispatch_routes
    from callcenter.dispatch.slots_http import routes as slots_routes
    from callcenter.imports.http import routes as import_routes
    from callcenter.notify.http import routes as notify_routes
    from callcenter.orders.http import routes as order_routes
    from callcenter.orders.search_http import routes as order_search_routes
    from callcenter.outbound.http import routes as outbound_routes
    from callcenter.parts.http import routes as parts_routes
    from callcenter.privacy_http import routes as privacy_routes
    from callcenter.realtime.http import routes as ws_routes
    from callcenter.sla.http import routes as sla_routes
    from callcenter.survey.alerts import survey_ctx
    from callcenter.survey.http import routes as survey_routes
    from callcenter.wallboard.http import routes as wallboard_routes
    from callcenter.web import openapi_http
    from callcenter.web.dispatch_pages import routes as dispatch_page_routes
    from callcenter.web.health import routes as health_routes
    from callcenter.web.middleware import auth_middleware, error_middleware
    from callcenter.web import headers as security_headers
    from callcenter.web.origins import csrf_middleware
    from callcenter.web.order_pages import setup as setup_order_pages
    from callcenter.web.pages import routes as page_routes

    # csrf_middleware: an unsafe request from a page not on the origin allow-list is refused
    # before anything reads its cookie (callcenter.web.origins, docs/security.md).
    app = web.Application(middlewares=[error_middleware, csrf_middleware, auth_middleware],
                          client_max_size=2 * 1024**2)
    app[SETTINGS] = settings
    # In start order (and stopped in reverse): the database and Redis first, the AMI session
    # after everything that listens to it, the background loops last.
    app.cleanup_ctx.extend([database_ctx, redis_ctx, realtime_ctx, calls_ctx, wallboard_ctx, outbound_ctx,
                            ami_ctx, sla_ctx, dispatch_ctx, notify_ctx, survey_ctx, gc_ctx])
    # Open websockets would hold the server's shutdown until its timeout: close them first
    # (GOING_AWAY, so browsers reconnect to another instance at once).
    app.on_shutdown.append(_close_websockets)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(settings.web_dir / "templates")),
                         autoescape=jinja2.select_autoescape(["html"]))
    for r in (auth_routes, call_routes, customer_routes, ws_routes, health_routes, page_routes,
              # work orders, fees and parts, privacy, imports, SLA alerts (issue 3)
              order_routes, order_search_routes, sla_routes, parts_routes, privacy_routes, import_routes,
              # dispatch, the engineer's calendar, the board, notifications (issue 4)
              dispatch_routes, dispatch_flow_routes, slots_routes, board_routes, dispatch_page_routes,
              notify_routes,
              # outbound calls and the survey (issue 5)
              outbound_routes, survey_routes,
              # agent states, the wallboard, the monthly analysis (issue 6)
              agentstate_routes, wallboard_routes, report_routes):
        app.add_routes(r)
    openapi_http.setup(app)
    security_headers.setup(app)  # X-Frame-Options, CSP … on every answer (docs/security.md)
    setup_order_pages(app)
    app.router.add_static("/static", settings.web_dir / "static")
    return app

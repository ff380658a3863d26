"""GET /health — is this instance serving, and is Asterisk reachable? GET /metrics — the same
counters for Prometheus.

Always 200 while the process serves (AMI down is "degraded", not "dead": pages, search and
work orders still work); the body says what is wrong. Without a supervisor or admin login it
names no addresses or counters.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy import text

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from callcenter.appkeys import CONNECTOR, ENGINE, HUB, LEADERSHIP, OUTBOUND, REDIS
from callcenter.auth.identity import USER

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    app = request.app
    body: dict = {"status": "ok"}
    try:
        async with app[ENGINE].connect() as conn:
            await conn.execute(text("select 1"))
        body["database"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        body["database"] = f"error: {type(e).__name__}"
        body["status"] = "degraded"
    redis = app[REDIS]
    if redis is not None:
        try:
            await redis.ping()
            body["redis"] = "ok"
        except Exception as e:  # noqa: BLE001
            body["redis"] = f"error: {type(e).__name__}"
            body["status"] = "degraded"
    leader = app[LEADERSHIP].is_leader
    c = app[CONNECTOR]
    ami: dict = {"leader": leader, "state": c.state if leader else "held by another instance"}
    if c.last_error:
        # The kind of failure only: addresses and details are for operators (below).
        ami["last_error"] = c.last_error.split(":", 1)[0]
    user = request.get(USER)
    if user is not None and user.role in ("supervisor", "admin"):
        ami.update({"host": c.host, "port": c.port, "error_detail": c.last_error,
                    "events": c.events_total, "malformed_frames": c.malformed, "sessions": c.sessions})
        if c.connected_since:
            ami["connected_since"] = dt.datetime.fromtimestamp(c.connected_since, dt.UTC).isoformat()
    # Frames skipped as unreadable are counted for everyone to see (a skipped OriginateResponse
    # once cost a second call to a customer); which events, for operators only.
    ami["skipped_frames"] = c.malformed
    if user is not None and user.role in ("supervisor", "admin"):
        ami["skipped_by_event"] = [{"event": e or None, "reason": r, "count": n}
                                   for (e, r), n in sorted(c.skipped_frames.items())]
    body["ami"] = ami
    if leader and c.state != "connected":
        body["status"] = "degraded"
    body["websockets"] = app[HUB].client_count
    return web.json_response(body)


class _AppCollector:
    """Read at scrape time from this instance's live objects (nothing personal: event names,
    reasons and counts only)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self):  # type: ignore[no-untyped-def]
        app = self.app
        c = app[CONNECTOR]
        leader = app[LEADERSHIP].is_leader
        yield GaugeMetricFamily("callcenter_ami_leader", "1 if this instance holds the AMI session",
                                value=1 if leader else 0)
        yield GaugeMetricFamily("callcenter_ami_connected", "1 while this instance is logged in to AMI",
                                value=1 if c.connected else 0)
        yield CounterMetricFamily("callcenter_ami_sessions", "AMI logins since start", value=c.sessions)
        yield CounterMetricFamily("callcenter_ami_events", "AMI events read in the current session",
                                  value=c.events_total)
        skipped = CounterMetricFamily(
            "callcenter_ami_frames_skipped", "AMI frames skipped as unreadable, by event and reason",
            labels=["event", "reason"])
        for (event, reason), n in sorted(c.skipped_frames.items()):
            skipped.add_metric([event, reason], n)
        yield skipped
        yield GaugeMetricFamily("callcenter_websockets", "open websockets on this instance",
                                value=app[HUB].client_count)
        dialler = app.get(OUTBOUND)
        if dialler is not None:
            yield GaugeMetricFamily("callcenter_outbound_dialling", "outbound attempts in flight",
                                    value=len(dialler.live))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AppCollector(request.app))  # type: ignore[arg-type]
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

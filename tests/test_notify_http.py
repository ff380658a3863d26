"""The outbox in the running application: the sender's loop (``notify_ctx``) sends a booked
visit's confirmation through the default recording gateway, and ``GET /api/notifications``
lists the messages — masked, filtered, paged, for supervisors and admins, and for a dispatcher
only by order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.appkeys import AUTH, NOTIFY, SESSIONMAKER, SETTINGS, VAULT
from callcenter.clock import utcnow
from callcenter.db.models import Appointment
from callcenter.db.notify import Notification
from callcenter.notify.gateway import RecordingGateway
from tests import apphelpers as h
from tests.fullflow import Centre
from tests.notifyworld import CUSTOMER_MOBILE, SECRETS, T0, World, seed_world
from tests.privacy_scan import LogScan, ScanningClient
from tests.services import free_port
from tests.waiting import wait_for

H = dt.timedelta(hours=1)
VISIT = dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC)
ROLES = {"supervisor": "supervisor", "admin": "admin", "dispatcher": "dispatcher", "agent": "agent",
         "survey": "survey"}


async def _start(aiohttp_client, db_url: str, **extra) -> tuple[Centre, World]:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(db_url, free_port(), sla_interval=0.0, **extra))
    app = client.server.app
    users = {}
    for username, role in ROLES.items():
        users[username] = (await app[AUTH].add_user(username, role=role, password=h.PASSWORD)).id
    world = await seed_world(app[SESSIONMAKER], app[SETTINGS], app[VAULT])
    return Centre(client, users, {}, {}), world


async def test_the_loop_sends_the_confirmation_through_the_recording_gateway(aiohttp_client, db_url) -> None:
    centre, world = await _start(aiohttp_client, db_url, notify_interval=0.05)
    sender = centre.client.server.app[NOTIFY]
    assert isinstance(sender.gateway, RecordingGateway)
    tz = centre.client.server.app[SETTINGS].tz
    tomorrow = (dt.datetime.now(tz) + dt.timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    with LogScan(secrets=SECRETS) as logs:
        appointment_id = await world.book(tomorrow, now=utcnow())

        async def sent_at() -> dt.datetime | None:
            async with world.sessionmaker() as s:
                return (await s.get(Appointment, appointment_id, populate_existing=True)).sent_at  # type: ignore[union-attr]

        await wait_for(sent_at, timeout=10, message="the confirmation was not sent")
        async with world.sessionmaker() as s:
            row = (await s.execute(select(Notification).where(Notification.kind == "appointment.confirmation"))).scalar_one()
        assert (row.status, row.gateway_id) == ("sent", f"rec-ntf-{row.id}")
    recorded = [line for line in logs.lines if f"ntf-{row.id}" in line and "recorded" in line]
    assert recorded and "138****8000" in recorded[0]
    assert all(CUSTOMER_MOBILE not in line for line in logs.lines)
    await centre.close()


async def test_the_list_is_masked_filtered_and_paged(aiohttp_client, db_url) -> None:
    centre, world = await _start(aiohttp_client, db_url, notify_interval=0.0)
    await world.book(VISIT, now=T0)
    result = await centre.client.server.app[NOTIFY].run_pass(T0)
    assert len(result.sent) == 1
    session = await centre.as_("supervisor")
    api = ScanningClient(centre.client, secrets=SECRETS, session=session)
    r = await api.get("/api/notifications")
    assert r.status == 200
    page = await r.json()
    assert page["total"] == 2 and [i["kind"] for i in page["items"]] == ["appointment.reminder",
                                                                          "appointment.confirmation"]
    reminder, confirmation = page["items"]
    assert confirmation["status"] == "sent" and confirmation["recipient"] == "138****8000"
    assert confirmation["order_number"] == "WO20261124-001" and confirmation["order_id"] == world.order_id
    assert confirmation["attempts"] == 1 and confirmation["sent_at"] is not None
    assert "张**您好" in confirmation["text"]
    assert reminder["status"] == "queued" and reminder["sent_at"] is None
    for query, kinds in (("?status=queued", ["appointment.reminder"]),
                         ("?kind=appointment.confirmation", ["appointment.confirmation"]),
                         (f"?order_id={world.order_id}&status=sent", ["appointment.confirmation"]),
                         (f"?order_id={world.order_id + 1000}", []),
                         ("?status=", ["appointment.reminder", "appointment.confirmation"])):
        r = await api.get("/api/notifications" + query)
        assert [i["kind"] for i in (await r.json())["items"]] == kinds, query
    r = await api.get("/api/notifications?page=2&page_size=1")
    body = await r.json()
    assert (body["total"], len(body["items"]), body["items"][0]["kind"]) == (2, 1, "appointment.confirmation")
    for bad in ("?status=bogus", "?page=0", "?page_size=1000", "?order_id=x"):
        r = await api.get("/api/notifications" + bad)
        assert r.status == 422, bad
    assert (await centre.call("admin", "GET", "/api/notifications"))["total"] == 2
    await centre.close()


async def test_who_may_read_the_list(aiohttp_client, sqlite_only_url) -> None:
    centre, world = await _start(aiohttp_client, sqlite_only_url, notify_interval=0.0)
    await world.book(VISIT, now=T0)
    forbidden = await centre.call("dispatcher", "GET", "/api/notifications", status=403)
    assert "order_id" in forbidden["message"]
    mine = await centre.call("dispatcher", "GET", f"/api/notifications?order_id={world.order_id}")
    assert mine["total"] == 2
    for username in ("agent", "survey"):
        await centre.call(username, "GET", f"/api/notifications?order_id={world.order_id}", status=403)
    r = await centre.client.get("/api/notifications")
    assert r.status == 401
    await centre.close()

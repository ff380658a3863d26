"""The outbound API and page: book a callback (validated, masked, audited), the board, cancel,
the do-not-call list, roles. AMI is down here (nothing dials): these are the records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER
from callcenter.db.models import CustomerPhone
from callcenter.db.outbound import OutboundJob
from callcenter.db.oversight import AuditEntry
from tests import apphelpers as h
from tests import outbound_support as o
from tests.fullflow import seed_centre
from tests.services import free_port


async def _centre(aiohttp_client, db_url):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, o.app_settings(db_url, free_port(), outbound_interval=0))
    return client, await seed_centre(client)


async def _phone(client, customer_id: int, kind: str = "mobile") -> int:  # type: ignore[no-untyped-def]
    async with client.server.app[SESSIONMAKER]() as s:
        return (await s.execute(select(CustomerPhone.id).where(
            CustomerPhone.customer_id == customer_id, CustomerPhone.kind == kind))).scalar_one()


def _in(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


async def test_book_list_cancel(db_url, aiohttp_client):
    client, c = await _centre(aiohttp_client, db_url)
    try:
        zhang = c.customers["zhang"]
        body = {"customer_id": zhang, "phone_id": await _phone(client, zhang), "at": _in(2),
                "reason": "客户要求下午回电确认配件"}
        out = await c.call("agent8001", "POST", "/api/outbound/callbacks", body, status=201)
        assert out["id"] > 0 and out["moved"] in (True, False)
        # by the call it came from / the first mobile when no phone is given
        out2 = await c.call("agent8001", "POST", "/api/outbound/callbacks",
                            {"customer_id": zhang, "reason": "回电", "to_me": True}, status=201)
        page = await c.call("supervisor", "GET", "/api/outbound/jobs?status=scheduled")
        assert page["total"] == 2 and page["counts"]["scheduled"] == 2
        item = next(i for i in page["items"] if i["id"] == out["id"])
        assert item["number"] == "138****8000" and item["customer"] == "张**"
        assert "13800138000" not in str(page) and "张三丰" not in str(page)
        await c.call("agent8001", "GET", "/api/outbound/jobs", status=403)
        await c.call("survey", "GET", "/api/outbound/jobs", status=200)
        await c.call("agent8001", "POST", f"/api/outbound/jobs/{out['id']}/cancel", {}, status=403)
        await c.call("supervisor", "POST", f"/api/outbound/jobs/{out['id']}/cancel", {"reason": "客户已来电"})
        await c.call("supervisor", "POST", f"/api/outbound/jobs/{out['id']}/cancel", {}, status=409)
        await c.call("supervisor", "POST", "/api/outbound/jobs/999999/cancel", {}, status=404)
        page = await c.call("supervisor", "GET", "/api/outbound/jobs?status=cancelled")
        assert [i["id"] for i in page["items"]] == [out["id"]]
        async with client.server.app[SESSIONMAKER]() as s:
            actions = (await s.execute(select(AuditEntry.action).where(AuditEntry.entity == "outbound_job"))).scalars().all()
            job2 = await s.get(OutboundJob, out2["id"])
        assert sorted(actions) == ["outbound.callback.book", "outbound.callback.book", "outbound.cancel"]
        assert job2.agent_id == c.users["agent8001"]
    finally:
        await c.close()


async def test_callback_validation(db_url, aiohttp_client):
    client, c = await _centre(aiohttp_client, db_url)
    try:
        zhang, li = c.customers["zhang"], c.customers["li"]
        phone = await _phone(client, zhang)
        ok = {"customer_id": zhang, "phone_id": phone, "at": _in(1), "reason": "回电"}
        for bad, field in (({"at": "2026-11-24T10:00:00"}, "at"), ({"at": _in(-2)}, "at"),
                           ({"at": _in(24 * 40)}, "at"), ({"reason": ""}, "reason"),
                           ({"reason": "回电\r\nAction: Hangup"}, "reason"), ({"phone_id": 0}, "phone_id"),
                           ({"call_id": "x\r\ny"}, "call_id"), ({"extra": 1}, "extra")):
            r = await c.call("agent8001", "POST", "/api/outbound/callbacks", {**ok, **bad}, status=422)
            assert r["details"]["field"].startswith(field), (bad, r)
        # another customer's phone or order: not found
        await c.call("agent8001", "POST", "/api/outbound/callbacks",
                     {**ok, "phone_id": await _phone(client, li)}, status=404)
        await c.call("agent8001", "POST", "/api/outbound/callbacks", {**ok, "order_id": 999999}, status=404)
        await c.call("eng1", "POST", "/api/outbound/callbacks", ok, status=403)
        # a number on the do-not-call list
        await c.call("supervisor", "POST", "/api/outbound/dnc", {"number": "138 0013 8000", "reason": "客户投诉骚扰"},
                     status=201)
        r = await c.call("agent8001", "POST", "/api/outbound/callbacks", ok, status=409)
        assert r["error"] == "dnc"
        async with client.server.app[SESSIONMAKER]() as s:
            assert (await s.execute(select(OutboundJob))).first() is None  # nothing half-written
    finally:
        await c.close()


async def test_dnc_list_cancels_scheduled_jobs(db_url, aiohttp_client):
    _client, c = await _centre(aiohttp_client, db_url)
    try:
        li = c.customers["li"]
        job = await c.call("agent8001", "POST", "/api/outbound/callbacks",
                           {"customer_id": li, "reason": "回电"}, status=201)
        added = await c.call("supervisor", "POST", "/api/outbound/dnc",
                             {"number": "13700137000", "reason": "拒绝来电"}, status=201)
        assert added["number"] == "137****7000"
        await c.call("supervisor", "POST", "/api/outbound/dnc", {"number": "13700137000"}, status=409)
        await c.call("supervisor", "POST", "/api/outbound/dnc", {"number": "abc\r\n"}, status=422)
        await c.call("agent8001", "GET", "/api/outbound/dnc", status=403)
        listed = await c.call("admin", "GET", "/api/outbound/dnc")
        assert listed["total"] == 1 and "13700137000" not in str(listed)
        page = await c.call("supervisor", "GET", "/api/outbound/jobs")
        [item] = [i for i in page["items"] if i["id"] == job["id"]]
        assert (item["status"], item["last_outcome"]) == ("cancelled", "dnc")
        await c.call("supervisor", "DELETE", f"/api/outbound/dnc/{added['id']}")
        await c.call("supervisor", "DELETE", f"/api/outbound/dnc/{added['id']}", status=404)
        assert (await c.call("admin", "GET", "/api/outbound/dnc"))["total"] == 0
    finally:
        await c.close()


async def test_outbound_page(sqlite_url, aiohttp_client):
    _client, c = await _centre(aiohttp_client, sqlite_url)
    try:
        html = await c.call("supervisor", "GET", "/outbound")
        assert "外呼看板" in html and 'data-testid="dnc-panel"' in html and "outbound.js" in html
        html = await c.call("survey", "GET", "/outbound")
        assert "dnc-panel" not in html
        await c.call("agent8001", "GET", "/outbound", status=403)
        nav = await c.call("supervisor", "GET", "/alerts")
        assert 'data-testid="nav-outbound"' in nav
    finally:
        await c.close()


async def test_a_job_in_review_is_redialled_or_closed_by_a_person(db_url, aiohttp_client):
    """An attempt that left no trace puts its job in review: never dialled by itself; a
    supervisor re-dials it (scheduled again, audited) or closes it."""
    from sqlalchemy import update

    client, c = await _centre(aiohttp_client, db_url)
    try:
        zhang = c.customers["zhang"]
        ids = []
        for _ in range(2):
            out = await c.call("agent8001", "POST", "/api/outbound/callbacks",
                               {"customer_id": zhang, "reason": "回电"}, status=201)
            ids.append(out["id"])
        async with client.server.app[SESSIONMAKER]() as s, s.begin():
            await s.execute(update(OutboundJob).where(OutboundJob.id.in_(ids))
                            .values(status="review", last_outcome="unknown", attempts=1))
        page = await c.call("supervisor", "GET", "/api/outbound/jobs?status=review")
        assert sorted(i["id"] for i in page["items"]) == sorted(ids) and page["counts"]["review"] == 2
        await c.call("agent8001", "POST", f"/api/outbound/jobs/{ids[0]}/redial", {}, status=403)
        out = await c.call("supervisor", "POST", f"/api/outbound/jobs/{ids[0]}/redial", {"reason": "核实未接通"})
        assert out["status"] == "scheduled"
        await c.call("supervisor", "POST", f"/api/outbound/jobs/{ids[0]}/redial", {}, status=409)
        await c.call("supervisor", "POST", "/api/outbound/jobs/999999/redial", {}, status=404)
        await c.call("supervisor", "POST", f"/api/outbound/jobs/{ids[1]}/cancel", {"reason": "客户已处理"})
        async with client.server.app[SESSIONMAKER]() as s:
            jobs = {j.id: j.status for j in (await s.execute(select(OutboundJob))).scalars()}
            actions = (await s.execute(select(AuditEntry.action).where(AuditEntry.entity == "outbound_job"))).scalars().all()
        assert (jobs[ids[0]], jobs[ids[1]]) == ("scheduled", "cancelled")
        assert "outbound.redial" in actions
    finally:
        await c.close()

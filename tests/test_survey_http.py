"""The survey and complaint API through the whole application: an order driven to 已完成 by the
people who would do it, the survey agent's list and form (422 naming the score, 403 for other
roles, 409 for a second result, idempotent for the same one), the order at 已回访, the complaint
pushed live to the supervisor's websocket, taken (escalation clock met) and resolved, results
and averages per engineer — every answer masked."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER
from callcenter.db.models import WorkOrder
from tests import apphelpers as h
from tests.fullflow import CUSTOMERS, SECRETS, Centre, drive_order, seed_centre
from tests.services import free_port
from tests.waiting import wait_for

GOOD = {"response_speed": 5, "professionalism": 5, "attitude": 5, "resolution": 5, "overall": 5, "recommend": 5}
UNHAPPY = {**GOOD, "attitude": 2, "overall": 3}


@pytest.fixture
async def centre(aiohttp_client, sqlite_only_url):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_only_url, free_port(), sla_interval=0.0))
    c = await seed_centre(client)
    yield c
    await c.close()


def _no_personal_data(payload: Any) -> None:
    text = json.dumps(payload, ensure_ascii=False)
    for secret in SECRETS + [c[1] for c in CUSTOMERS.values()]:
        assert secret not in text, f"unmasked {secret!r} in {text[:300]}"


async def _supervisor_socket(centre: Centre) -> tuple[aiohttp.ClientWebSocketResponse, list[dict]]:
    session = await centre.as_("supervisor")
    ws = await session.ws_connect(centre.client.make_url("/ws"), headers={"Origin": h.ORIGIN})
    got: list[dict] = []

    async def read() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))

    import asyncio

    asyncio.get_running_loop().create_task(read())
    return ws, got


async def test_a_survey_agent_records_a_phone_survey_and_the_supervisor_follows_it_up(centre: Centre) -> None:
    ids = await drive_order(centre, "zhang", "eng1")
    order = ids["order"]
    ws, pushed = await _supervisor_socket(centre)
    try:
        due = await centre.call("survey", "GET", "/api/survey/due")
        assert [o["id"] for o in due["items"]] == [order]
        assert due["items"][0]["customer"] == "张**" and due["items"][0]["engineer"].endswith("GY2024001")
        before = await centre.call("survey", "GET", f"/api/orders/{order}/survey")
        assert before["survey"] is None and before["complaint"] is None and len(before["questions"]) == 6
        assert before["order"]["status"] == "已完成"

        # Refused: a score missing or out of range (422 naming it), roles without the right (403).
        bad = await centre.call("survey", "POST", f"/api/orders/{order}/survey",
                                {"answers": {k: v for k, v in GOOD.items() if k != "attitude"}}, status=422)
        assert bad["details"]["field"] == "answers.attitude"
        bad = await centre.call("survey", "POST", f"/api/orders/{order}/survey",
                                {"answers": {**GOOD, "overall": 6}}, status=422)
        assert bad["details"]["field"] == "answers.overall"
        for who in ("agent8001", "eng1", "dispatcher"):
            await centre.call(who, "POST", f"/api/orders/{order}/survey", {"answers": GOOD}, status=403)
        await centre.call("survey", "POST", "/api/orders/999999/survey", {"answers": GOOD}, status=404)

        body = {"answers": UNHAPPY, "comment": f"师傅态度不好，回电 {CUSTOMERS['zhang'][1]}", "action": "主管致歉"}
        saved = await centre.call("survey", "POST", f"/api/orders/{order}/survey", body, status=201)
        _no_personal_data(saved)
        survey, complaint = saved["survey"], saved["complaint"]
        assert survey["number"].startswith("CS") and survey["channel"] == "agent"
        assert survey["scores"] == UNHAPPY and survey["low_scores"] == ["态度友好度", "整体体验"]
        assert survey["comment"].startswith("师傅态度不好") and survey["recorded_by"] == "周**"
        assert saved["order"]["status"] == "已回访"
        assert complaint["problem_class"] == "态度差" and complaint["status"] == "open" and complaint["action"] == "主管致歉"
        # The same form again: the same result; another one: 409.
        again = await centre.call("survey", "POST", f"/api/orders/{order}/survey", body, status=201)
        assert again["survey"]["id"] == survey["id"]
        conflict = await centre.call("survey", "POST", f"/api/orders/{order}/survey", {"answers": GOOD}, status=409)
        assert conflict["error"] == "survey_exists"
        assert (await centre.call("survey", "GET", "/api/survey/due"))["items"] == []

        # The supervisor hears of it at once.
        alert = await wait_for(lambda: next((m for m in pushed if m.get("type") == "complaint.opened"), None),
                               timeout=10, message="no complaint.opened on the supervisor's websocket")
        assert alert["complaint"]["order_id"] == order and alert["complaint"]["problem_class"] == "态度差"
        _no_personal_data(alert)

        # Complaints: supervisors only; take, then resolve.
        await centre.call("survey", "GET", "/api/complaints", status=403)
        listed = await centre.call("supervisor", "GET", "/api/complaints")
        assert [c["id"] for c in listed["items"]] == [complaint["id"]]
        owners = await centre.call("supervisor", "GET", "/api/complaints/owners")
        assert centre.users["supervisor"] in {o["id"] for o in owners["items"]}
        assert centre.users["eng1"] not in {o["id"] for o in owners["items"]}
        await centre.call("survey", "POST", f"/api/complaints/{complaint['id']}/assign",
                          {"owner_id": centre.users["survey"]}, status=403)
        bad = await centre.call("supervisor", "POST", f"/api/complaints/{complaint['id']}/assign",
                                {"owner_id": centre.users["eng1"]}, status=422)
        assert bad["details"]["field"] == "owner_id"
        taken = await centre.call("supervisor", "POST", f"/api/complaints/{complaint['id']}/assign",
                                  {"owner_id": centre.users["supervisor"], "version": complaint["version"]})
        assert taken["status"] == "in_progress" and taken["owner"] == "吴**" and taken["taken_at"]
        await centre.call("supervisor", "POST", f"/api/complaints/{complaint['id']}/resolve",
                          {"resolution": "x", "version": complaint["version"]}, status=409)
        await centre.call("supervisor", "POST", f"/api/complaints/{complaint['id']}/resolve",
                          {"resolution": "", "version": taken["version"]}, status=422)
        done = await centre.call("supervisor", "POST", f"/api/complaints/{complaint['id']}/resolve",
                                 {"resolution": "已致歉并赠送代金券", "version": taken["version"]})
        assert done["status"] == "resolved" and done["resolution"] == "已致歉并赠送代金券"
        assert (await centre.call("supervisor", "GET", "/api/complaints"))["items"] == []
        assert len((await centre.call("supervisor", "GET", "/api/complaints?status=all"))["items"]) == 1
        async with centre.client.server.app[SESSIONMAKER]() as s:
            row = (await s.execute(select(WorkOrder).where(WorkOrder.id == order))).scalar_one()
        assert row.status == "已回访" and row.surveyed_at and row.dissatisfied_at and row.escalated_at

        # The order page's timeline tells the story.
        detail = await centre.call("agent8001", "GET", f"/api/orders/{order}")
        notes = " ".join(e.get("note") or "" for e in detail["events"])
        assert survey["number"] in notes and "转主管跟进" in notes

        # Results per order and per engineer.
        read = await centre.call("agent8001", "GET", f"/api/orders/{order}/survey")
        assert read["survey"]["id"] == survey["id"] and read["complaint"]["status"] == "resolved"
        await centre.call("eng1", "GET", f"/api/orders/{order}/survey", status=403)
        stats = await centre.call("supervisor", "GET", "/api/survey/engineers")
        (row_,) = stats["items"]
        assert row_["engineer_id"] == centre.users["eng1"] and row_["surveys"] == 1 and row_["complaints"] == 1
        assert row_["averages"]["attitude"] == 2.0 and row_["average"] == round(sum(UNHAPPY.values()) / 6, 2)
        assert row_["dissatisfied"] == 1
        assert (await centre.call("supervisor", "GET", "/api/survey/engineers?date_from=2000-01-01&date_to=2000-01-02"))["items"] == []
        results = await centre.call("survey", "GET", f"/api/survey/results?engineer_id={centre.users['eng1']}")
        assert [r["id"] for r in results["items"]] == [survey["id"]]
        assert (await centre.call("survey", "GET", f"/api/survey/results?engineer_id={centre.users['eng2']}"))["items"] == []
        await centre.call("agent8001", "GET", "/api/survey/engineers", status=403)
        for payload in (stats, results, read, listed, owners):
            _no_personal_data(payload)
    finally:
        await ws.close()


async def test_a_good_survey_opens_no_complaint_and_an_unfinished_order_cannot_be_surveyed(centre: Centre) -> None:
    open_order = await drive_order(centre, "li", "eng2", complete=False)
    r = await centre.call("survey", "POST", f"/api/orders/{open_order['order']}/survey", {"answers": GOOD}, status=409)
    assert r["error"] == "illegal_transition"
    done = await drive_order(centre, "zhang", "eng1")
    saved = await centre.call("supervisor", "POST", f"/api/orders/{done['order']}/survey",
                              {"answers": GOOD, "comment": "很满意"}, status=201)
    assert saved["complaint"] is None and saved["survey"]["average"] == 5.0 and saved["order"]["status"] == "已回访"
    assert (await centre.call("supervisor", "GET", "/api/complaints?status=all"))["items"] == []
    # A complaint the agent records despite good scores.
    other = await drive_order(centre, "li", "eng2")
    saved = await centre.call("survey", "POST", f"/api/orders/{other['order']}/survey",
                              {"answers": GOOD, "complaint": True, "problem_class": "费用争议"}, status=201)
    assert saved["complaint"]["problem_class"] == "费用争议" and saved["survey"]["low_scores"] == []


async def test_the_pages_open_for_their_roles(centre: Centre) -> None:
    for who, path, ok in (("survey", "/survey", True), ("supervisor", "/survey", True), ("agent8001", "/survey", False),
                          ("supervisor", "/complaints", True), ("survey", "/complaints", False)):
        session = await centre.as_(who)
        r = await session.get(centre.client.make_url(path), allow_redirects=False)
        assert (r.status == 200) is ok, (who, path, r.status)
    r = await centre.client.get("/survey", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/login")


async def test_the_automated_survey_from_order_completion_to_the_record_and_the_complaint(db_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    """Against the AMI simulator: a completed order gets its survey job, the dialler originates
    into [survey], the simulated customer presses 5 4 5 3 5 4 (the recording), the UserEvent
    becomes the SA-CS-005 record — and Q4 = 3 opens the complaint and alerts the supervisor."""
    from callcenter.appkeys import AUTH, CONNECTOR, MAILBOX
    from callcenter.db.survey import ComplaintFollowUp, SurveyResult
    from callcenter.simulator.server import AmiSimulator
    from tests import outbound_support as o

    async with AmiSimulator(o.sim_config()) as sim:
        client = await h.start(aiohttp_client, o.app_settings(db_url, sim.port))
        app = client.server.app
        await wait_for(lambda: app[CONNECTOR].connected, 10, message="AMI connected")
        sup = await app[AUTH].add_user("sup", role="supervisor", password=h.PASSWORD)
        pushed: list[dict] = []
        app[MAILBOX].on_deliver(lambda uid, m: pushed.append(m) if uid == sup.id else None)
        cid, _ = await o.add_customer(client, "13800138005")
        order_id = await o.add_order(client, cid, "WO20261123-901")

        async def recorded():  # type: ignore[no-untyped-def]
            async with app[SESSIONMAKER]() as s:
                return (await s.execute(select(SurveyResult).where(SurveyResult.order_id == order_id))).scalar_one_or_none()

        r = await wait_for(recorded, 20, interval=0.05, message="the survey result was never recorded")
        assert (r.channel, r.resolution, r.overall) == ("phone-ivr", 3, 5) and r.job_id is not None
        alert = await wait_for(lambda: next((m for m in pushed if m.get("type") == "complaint.opened"), None), 10,
                               message="no complaint alert")
        assert alert["complaint"]["order_id"] == order_id and alert["complaint"]["problem_class"] == "专业不足"
        async with app[SESSIONMAKER]() as s:
            order = await s.get(WorkOrder, order_id)
            complaint = (await s.execute(select(ComplaintFollowUp))).scalar_one()
        assert order is not None and order.status == "已回访" and order.dissatisfied_at is not None
        assert complaint.order_id == order_id and complaint.low_scores == "resolution"

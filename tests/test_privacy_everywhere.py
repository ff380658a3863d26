"""The global privacy scan: after a whole after-sales flow (a screen-pop from the AMI simulator,
intake → order → assign → accept → appointment → on-site record with a part → signature →
已完成, and an SLA pass that raises alerts), every GET route of the application is called as
every role, and every answer, every websocket message and every log record (DEBUG and up) is
scanned for an unmasked mobile number or a customer's full name, street or landline. Only
``POST /api/reveal`` may answer the full value.

The GET routes come from the app's router: a new route with a path parameter must say in
``GET_IDS`` which id fills it, or this test fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncIterator

import pytest

from callcenter.appkeys import POPS, RECORDER, SESSIONMAKER, SLA
from callcenter.logs import quiet_drivers
from callcenter.db.stock import StockLocation
from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator.server import AmiSimulator
from sqlalchemy import select
from tests import apphelpers as h
from tests.fullflow import CUSTOMERS, MOBILES, SECRETS, Centre, drive_order, seed_centre
from tests.privacy_scan import LogScan, ScanningClient, find_mobiles, scan_messages
from tests.waiting import wait_for

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
# GET routes that hold no records: the static files, the websocket (its messages are scanned
# below) and the description of the API itself, whose parameter examples use the textbook
# number 138 0013 8000 — no one's, but the same digits as our customer's.
# Websockets are scanned where their messages are produced (the pops' and alerts' mailbox here;
# the wallboard's snapshots in tests/test_wallboard_*.py carry no caller numbers).
NOT_SCANNED = {"/static", "/ws", "/ws/wallboard", "/api/docs", "/api/openapi.json"}
# Path parameter of a GET route → which id of the flow fills it.
GET_IDS = {
    "/api/customers/{id}": "customer",
    "/api/intakes/{id}": "intake",
    "/api/orders/{id}": "order",
    "/api/appointments/{id}": "appointment",
    "/api/orders/{id}/onsite": "order",
    "/api/onsite/{id}": "onsite",
    "/api/orders/{id}/dispatch/preview": "order",
    "/api/orders/{id}/dispatch/decisions": "order",
    "/api/orders/{id}/survey": "order",
    "/api/orders/{id}/appointment/slots": "order",
    "/api/dispatch/engineers/{id}": "engineer",
    "/api/dispatch/engineers/{id}/leave": "engineer",
    "/api/dispatch/shops/{id}": "shop",
    "/orders/{order_id}": "order",
    "/m/orders/{order_id}": "order",
}
CALLER = CUSTOMERS["zhang"][1]


def _queries(path: str, ids: dict[str, int], linkedid: str, centre: Centre, van: int) -> list[str]:
    """The query strings to try on ``path`` (the first is always what the screens send)."""
    today = dt.date.today().isoformat()
    return {
        "/api/customers": [f"?phone={CALLER}", "?phone=13911112222"],
        "/api/calls": ["", f"?date={today}"],
        "/api/intakes/prefill": [f"?customer_id={ids['customer']}&linkedid={linkedid}",
                                 f"?linkedid={linkedid}"],
        "/api/orders": ["", f"?phone={CALLER}", "?name=张", "?status=已完成", "?model=KFR",
                        f"?engineer={centre.users['eng1']}"],
        "/api/alerts": ["", "?state=all"],
        "/api/audit": ["", "?action=reveal"],
        "/api/stock": ["", f"?location_id={van}"],
        "/api/stock/movements": ["", f"?location_id={van}"],
    }.get(path, [""])


@pytest.fixture
async def simulator() -> AsyncIterator[AmiSimulator]:
    sim = AmiSimulator(SimulatorConfig(port=0, time_scale=0.25, failed_login_delay=0.05, queues=(
        QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),), ring_timeout=10.0),)))
    await sim.start()
    yield sim
    await sim.stop()


async def test_no_unmasked_mobile_in_any_answer_message_or_log(aiohttp_client, sqlite_only_url,  # type: ignore[no-untyped-def]
                                                               simulator) -> None:
    from callcenter.appkeys import CONNECTOR

    sockets: list[h.AgentSocket] = []
    centre: Centre | None = None
    # What `callcenter serve` with CALLCENTER_LOG_LEVEL=DEBUG writes: everything at DEBUG except
    # the database drivers' statement echo (callcenter.logs.setup keeps those at WARNING).
    driver_levels = quiet_drivers()
    with LogScan(secrets=SECRETS, level=logging.DEBUG) as logs:
        try:
            settings = h.settings_for(sqlite_only_url, simulator.port, sla_interval=0.0)
            client = await h.start(aiohttp_client, settings)
            app = client.server.app
            centre = await seed_centre(client)
            await wait_for(lambda: app[CONNECTOR].state == "connected", 10, message="AMI login")
            for username in ("agent8001", "dispatcher", "supervisor", "eng1"):
                sockets.append(await h.connect(client, username, last_seq=0, session=await centre.as_(username)))

            # The call: Zhang calls from his mobile, agent 8001 answers; the pop carries history.
            linkedid = await simulator.place_call(caller=CALLER, caller_name="Zhang San", answer_after=1.0, talk=1.0)
            agent_socket = sockets[0]
            await wait_for(lambda: "call.ended" in agent_socket.types(linkedid), 20, message="the call ends")
            await wait_for(lambda: not app[POPS].busy and not app[RECORDER].pending, 5,
                           message="lookups done and the call written")
            ring = next(m for m in agent_socket.messages if m["type"] == "call.ringing")
            assert ring["call"]["caller"] == "138****8000" and ring["customer"]["name"] == "张**"

            # The whole flow for Zhang (from the call, to 已完成) and an open order for Li.
            done = await drive_order(centre, "zhang", "eng1", linkedid=linkedid)
            open_ = await drive_order(centre, "li", "eng2", sign=False, complete=False)
            # An SLA pass three days on: alerts on the websockets and in /api/alerts.
            await app[SLA].run_pass(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
            # The reveal answers the full number — the one exempt answer.
            agent = ScanningClient(client, session=await centre.as_("agent8001"), secrets=SECRETS)
            r = await agent.post("/api/reveal", json={"entity": "customer", "id": done["customer"],
                                                      "field": "phone", "reason": "回电核实身份"})
            assert r.status == 200 and CALLER in find_mobiles(await r.text())

            done["engineer"], open_["engineer"] = centre.users["eng1"], centre.users["eng2"]
            done["shop"] = open_["shop"] = await _a_shop(centre)
            async with app[SESSIONMAKER]() as s:
                van = await s.scalar(select(StockLocation.id).where(StockLocation.engineer_id == centre.users["eng1"]))
            scanned_json = await _scan_every_get_route(centre, done, open_, linkedid, van or 1)
            assert scanned_json >= 100, scanned_json

            await wait_for(lambda: any(m["type"] == "sla.alert" for m in sockets[2].messages), 5,
                           message="an SLA alert reached the supervisor")
            messages = [m for sock in sockets for m in sock.messages]
            assert scan_messages(messages, secrets=SECRETS) >= 10
            assert {"call.ringing", "call.answered", "sla.alert"} <= {m["type"] for m in messages}
        finally:
            for sock in sockets:
                await sock.ws.close()
                if sock.reader is not None:
                    await sock.reader
            if centre is not None:
                await centre.close()
            for name, level in driver_levels.items():
                logging.getLogger(name).setLevel(level)
    assert any(line.startswith("DEBUG") for line in logs.lines), "no DEBUG record was captured"
    assert any("intake" in line for line in logs.lines)
    for line in logs.lines:  # LogScan checked on exit; the staff's mobiles too, explicitly
        assert not any(m in line for m in MOBILES)


async def _a_shop(centre: Centre) -> int:
    """A partner shop whose contact has a mobile (the dispatch slice's; 0 if it has no shops)."""
    routes = {(r.method, r.resource.canonical) for r in centre.client.server.app.router.routes()
              if r.resource is not None}
    if ("POST", "/api/dispatch/shops") not in routes:
        return 0
    shop = await centre.call("admin", "POST", "/api/dispatch/shops", {
        "name": "南山网点", "region": "南山区", "lat": 22.53, "lon": 113.93, "categories": ["空调"], "contact_name": "孙六",
        "contact_phone": "13600136000"}, status=201)
    return int(shop["id"])


async def _scan_every_get_route(centre: Centre, done: dict[str, int], open_: dict[str, int],
                                linkedid: str, van: int) -> int:
    """Every GET route as every user; the number of JSON answers scanned."""
    app = centre.client.server.app
    paths = sorted({_PARAM.sub(r"{\1}", r.resource.canonical) for r in app.router.routes()
                    if r.method == "GET" and r.resource is not None})
    unknown = [p for p in paths if _PARAM.search(p) and p not in GET_IDS]
    assert not unknown, f"GET routes with ids not in GET_IDS of {__name__}: {unknown} — add them"
    json_answers, ok_per_path = 0, {p: 0 for p in paths if p not in NOT_SCANNED}
    for username in centre.users:
        api = ScanningClient(centre.client, session=await centre.as_(username), secrets=SECRETS)
        # An engineer sees their own order: eng2's is the open one.
        flows = [open_] if username == "eng2" else [done, open_]
        for path in ok_per_path:
            for ids in flows:
                url = _PARAM.sub(lambda m, ids=ids, path=path: str(ids[GET_IDS[path]]), path)
                for query in _queries(path, ids, linkedid, centre, van):
                    r = await api.get(url + query, allow_redirects=False)
                    if r.content_type == "application/json":
                        json_answers += 1
                    if r.status == 200:
                        ok_per_path[path] += 1
    never = [p for p, n in ok_per_path.items() if n == 0]
    assert not never, f"no user got a 200 from {never}: the scan saw nothing there"
    return json_answers

"""Issue 4 end to end through the real application with its dispatch loop running (SQLite and
PostgreSQL): a new work order is dispatched automatically within moments, the engineer refuses,
nobody else is near so it lands in the dispatchers' queue, a dispatcher sends it to another
engineer with a reason, who accepts, proposes windows from their calendar and books the visit
the customer chose — 已预约. Along the way the engineers' websockets are told."""

from __future__ import annotations

import datetime as dt

from callcenter.appkeys import SESSIONMAKER
from callcenter.db.records import Appointment
from tests import apphelpers as h
from tests.fullflow import seed_centre
from tests.services import free_port
from tests.waiting import wait_for

# Around the clock, so the test passes whatever the hour (an order without a requested window
# asks for someone on duty now).
ALWAYS = {str(d): [["00:00", "23:59"]] for d in range(1, 8)}
AC = [{"category": "空调", "certificate": "制冷作业证", "certificate_no": "T-01", "certificate_expires": "2099-12-31"}]


async def test_order_to_a_booked_visit_through_the_dispatch_loop(aiohttp_client, db_url) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(db_url, free_port(), sla_interval=0.0,
                                                          dispatch_interval=0.2))
    centre = await seed_centre(client)
    try:
        admin = "admin"
        # eng1 lives in 南山 (the customers' district); eng2 across the city, 20 km+ away.
        for eng, place in (("eng1", {"province": "广东省", "city": "深圳市", "district": "南山区"}),
                           ("eng2", {"province": "广东省", "city": "深圳市", "district": "龙岗区"})):
            eid = centre.users[eng]
            await centre.call(admin, "PATCH", f"/api/dispatch/engineers/{eid}", {
                "region": "深圳市", "base_place": place, "working_hours": ALWAYS, "load_cap": 3})
            await centre.call(admin, "PUT", f"/api/dispatch/engineers/{eid}/skills", {"skills": AC})
        eng1 = await h.connect(client, "eng1", session=await centre.as_("eng1"))
        # The agent takes the call and creates the order; nobody dispatches it by hand.
        prefill = await centre.call("agent8001", "GET", f"/api/intakes/prefill?customer_id={centre.customers['zhang']}")
        created = await centre.call("agent8001", "POST", "/api/intakes", {
            "customer_id": centre.customers["zhang"], "phone_id": prefill["phones"][0]["phone_id"],
            "appliance_id": prefill["appliances"][0]["id"], "request_type": "维修", "problem": "空调不制冷",
            "urgency": "紧急", "read_back": True, "create_order": {}}, status=201)
        order_id = created["order"]["id"]
        url = f"/api/orders/{order_id}"

        async def order() -> dict:
            return (await centre.call("dispatcher", "GET", url))["order"]

        o = await wait_for(lambda: _when(order(), lambda o: o["status"] == "已派单"), timeout=10,
                           message="the loop dispatched the new order")
        assert o["engineer_id"] == centre.users["eng1"]
        pushed = await wait_for(lambda: [m for m in eng1.messages if m.get("type") == "order.assigned"], timeout=5)
        assert pushed[0]["order"]["id"] == order_id and pushed[0]["accept_due_at"]
        record = await centre.call("dispatcher", "GET", url + "/dispatch/decisions")
        assert record["decisions"][0]["mode"] == "auto" and record["decisions"][0]["score"]["total"] > 0

        # eng1 refuses; nobody else is within 5 km: the dispatchers' queue, with the reason.
        await centre.call("eng1", "POST", url + "/refuse", {"reason": "时间冲突", "note": "上午已排满"})
        await wait_for(lambda: _when(centre.call("dispatcher", "GET", url + "/dispatch/decisions"),
                                     lambda d: len(d["decisions"]) == 2), timeout=10, message="re-matched")
        record = await centre.call("dispatcher", "GET", url + "/dispatch/decisions")
        queued = record["decisions"][0]
        assert queued["engineer_id"] is None and "公里" in queued["reason"]
        assert record["refusals"][0]["reason"] == "时间冲突"
        o = await order()
        assert (o["status"], o["engineer_id"]) == ("待处理", None)

        # A dispatcher sends it to eng2 with a reason; eng2 accepts and books.
        out = await centre.call("dispatcher", "POST", url + "/dispatch", {
            "engineer_id": centre.users["eng2"], "reason": "南山无空闲工程师，跨区派单", "version": o["version"]})
        assert out["status"] == "已派单"
        await centre.call("eng2", "POST", url + "/accept", {})
        slots = (await centre.call("eng2", "GET", url + "/appointment/slots"))["slots"]
        assert 2 <= len(slots) <= 3
        chosen, *others = slots
        booked = await centre.call("eng2", "POST", url + "/appointments", {
            "window_start": chosen["start"], "window_end": chosen["end"], "source": "工程师建议",
            "proposed_slots": [{"start": s["start"], "end": s["end"]} for s in slots],
            "service_content": "检修空调", "customer_confirmed": False}, status=201)
        confirmed = await centre.call("eng2", "POST", f"/api/appointments/{booked['appointment']['id']}/confirm", {})
        assert confirmed["order"]["status"] == "已预约"
        async with client.server.app[SESSIONMAKER]() as s:
            ap = await s.get(Appointment, booked["appointment"]["id"])
        assert ap.status == "confirmed" and len(ap.proposed_slots) == len(slots)
        start = dt.datetime.fromisoformat(chosen["start"])
        assert start > dt.datetime.now(dt.UTC)
        await eng1.ws.close()
    finally:
        await centre.close()


async def _when(awaitable, test):  # type: ignore[no-untyped-def]
    value = await awaitable
    return value if test(value) else None


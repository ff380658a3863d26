"""Instance roles (``CALLCENTER_INSTANCE_ROLE``): a web instance serves requests and websockets
only; a worker instance holds AMI and runs the background loops; they meet in Redis and one
PostgreSQL. An order saved on the web instance is dispatched by the worker's loop at once — the
wake-up travels through Redis (the worker's loop would otherwise sleep for an hour)."""

from __future__ import annotations

import pytest

from callcenter.appkeys import LEADERSHIP
from callcenter.settings import Settings, SettingsError
from tests import apphelpers as h
from tests.fullflow import seed_centre
from tests.services import free_port
from tests.test_dispatch_flow_e2e import AC, ALWAYS, _when
from tests.waiting import wait_for


@pytest.mark.parametrize(("env", "error"), [
    ({"CALLCENTER_INSTANCE_ROLE": "web"}, "needs CALLCENTER_REDIS_URL"),
    ({"CALLCENTER_INSTANCE_ROLE": "worker"}, "needs CALLCENTER_REDIS_URL"),
    ({"CALLCENTER_INSTANCE_ROLE": "frontend", "CALLCENTER_REDIS_URL": "redis://127.0.0.1:6379/0"},
     "must be one of all, web, worker"),
])
def test_roles_are_checked(env: dict[str, str], error: str) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert "CALLCENTER_INSTANCE_ROLE" in str(e.value) and error in str(e.value)


@pytest.mark.parametrize(("role", "background"), [("all", True), ("web", False), ("worker", True)])
def test_role_read_from_the_environment(role: str, background: bool) -> None:
    s = Settings.from_env({"CALLCENTER_INSTANCE_ROLE": role.upper(), "CALLCENTER_REDIS_URL": "redis://r:6379/0"})
    assert (s.instance_role, s.background) == (role, background)
    assert Settings.from_env({}).instance_role == "all"


async def test_web_saves_the_worker_dispatches(pg_url, redis_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    ami = free_port()
    common = {"redis_url": redis_url, "sla_interval": 0.0, "leader_ttl": 1.0}
    web = await h.start(aiohttp_client, h.settings_for(pg_url, ami, instance_role="web",
                                                       dispatch_interval=0.2, **common))
    worker = await h.start(aiohttp_client, h.settings_for(pg_url, ami, instance_role="worker",
                                                          dispatch_interval=3600.0, **common))
    # The worker contends for AMI; the web instance never does, even though it started first.
    await wait_for(lambda: worker.server.app[LEADERSHIP].is_leader, 10, message="the worker leads AMI")
    assert not web.server.app[LEADERSHIP].is_leader
    centre = await seed_centre(web)
    try:
        await _saved_on_web_dispatched_by_worker(web, centre)
    finally:
        await centre.close()


async def _saved_on_web_dispatched_by_worker(web, centre) -> None:  # type: ignore[no-untyped-def]
    eid = centre.users["eng1"]
    await centre.call("admin", "PATCH", f"/api/dispatch/engineers/{eid}", {
        "region": "深圳市", "base_place": {"province": "广东省", "city": "深圳市", "district": "南山区"},
        "working_hours": ALWAYS, "load_cap": 3})
    await centre.call("admin", "PUT", f"/api/dispatch/engineers/{eid}/skills", {"skills": AC})
    eng1 = await h.connect(web, "eng1", session=await centre.as_("eng1"))
    try:
        prefill = await centre.call("agent8001", "GET", f"/api/intakes/prefill?customer_id={centre.customers['zhang']}")
        created = await centre.call("agent8001", "POST", "/api/intakes", {
            "customer_id": centre.customers["zhang"], "phone_id": prefill["phones"][0]["phone_id"],
            "appliance_id": prefill["appliances"][0]["id"], "request_type": "维修", "problem": "空调不制冷",
            "urgency": "紧急", "read_back": True, "create_order": {}}, status=201)
        url = f"/api/orders/{created['order']['id']}"
        # The web instance's own loop is not running (dispatch_interval 0.2 s would have done
        # it): only the worker, woken through Redis, can dispatch within these seconds.
        o = await wait_for(lambda: _when(centre.call("dispatcher", "GET", url),
                                         lambda d: d["order"]["status"] == "已派单"), timeout=10,
                           message="the worker's loop dispatched the order saved on the web instance")
        assert o["order"]["engineer_id"] == eid
        # The worker's push reaches the engineer's websocket on the web instance (the mailbox).
        await wait_for(lambda: [m for m in eng1.messages if m.get("type") == "order.assigned"], timeout=5,
                       message="the engineer on the web instance is told")
    finally:
        await eng1.ws.close()


def test_worker_nice_is_read_and_bounded() -> None:
    redis = {"CALLCENTER_REDIS_URL": "redis://r:6379/0"}
    assert Settings.from_env({}).worker_nice == 10
    assert Settings.from_env({**redis, "CALLCENTER_WORKER_NICE": "0"}).worker_nice == 0
    with pytest.raises(SettingsError) as e:
        Settings.from_env({"CALLCENTER_WORKER_NICE": "20"})
    assert "CALLCENTER_WORKER_NICE" in str(e.value)


@pytest.mark.parametrize(("role", "lowered"), [("worker", 10), ("web", 0)])
async def test_a_worker_process_gives_way_to_the_web(tmp_path, redis_url, role: str, lowered: int) -> None:  # type: ignore[no-untyped-def]
    """``callcenter serve`` as a worker lowers its own CPU priority by CALLCENTER_WORKER_NICE
    (its passes yield the cores to the web instances' requests); a web instance does not."""
    import asyncio
    import os
    import sys

    import aiohttp

    http = free_port()
    env = {**os.environ, "CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/roles.sqlite3",
           "CALLCENTER_AMI_PORT": str(free_port()), "CALLCENTER_HTTP_PORT": str(http),
           "CALLCENTER_REDIS_URL": redis_url, "CALLCENTER_INSTANCE_ROLE": role}
    srv = await asyncio.create_subprocess_exec(sys.executable, "-m", "callcenter", "serve", env=env,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as s:
            async def answers():  # type: ignore[no-untyped-def]
                try:
                    async with s.get(f"http://127.0.0.1:{http}/health") as r:
                        return r.status
                except aiohttp.ClientConnectionError:
                    return None

            await wait_for(answers, 30, interval=0.2, message=f"serve as {role} answers")
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, srv.pid) == min(19, mine + lowered)
    finally:
        srv.terminate()
        await asyncio.wait_for(srv.wait(), 20)

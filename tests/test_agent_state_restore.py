"""The restore rules (callcenter.agentstate.restore.plan) as a table, and through the simulator:
an agent who logs out or pauses while Asterisk is down is restored as they left it."""

from __future__ import annotations

import asyncio

from callcenter.agentstate.restore import Login, plan, queue_add_headers
from callcenter.appkeys import CONNECTOR
from callcenter.simulator.server import AmiSimulator
from tests import apphelpers as h
from tests import outbound_support as o
from tests.waiting import wait_for

BOOT = 1_796_661_000.0


def item(name: str, *, queue: str = "aftersales", membership: str = "dynamic", paused: bool = False,
         reason: str = "") -> dict[str, str]:
    return {"Event": "QueueMember", "Queue": queue, "Name": name, "Location": f"Local/{name}@x",
            "StateInterface": f"Local/{name}@x", "Membership": membership, "Penalty": "0",
            "Paused": "1" if paused else "0", "PausedReason": reason}


def row(name: str, *, seen: float | None = BOOT, paused: bool = False, reason: str = "") -> Login:
    return Login("aftersales", f"Local/{name}@x", name, f"Local/{name}@x", 0, paused, reason, None, seen)


def test_after_a_restart_missing_members_are_restored_as_recorded():
    p = plan([row("8001", paused=True, reason="午餐"), row("8002")], [], BOOT + 600)
    assert [r.member_name for r in p.restore] == ["8001", "8002"] and not p.drop
    assert queue_add_headers(p.restore[0]) == {
        "Queue": "aftersales", "Interface": "Local/8001@x", "MemberName": "8001", "Penalty": 0,
        "Paused": "true", "Reason": "午餐"}
    assert "Reason" not in queue_add_headers(p.restore[1])


def test_a_member_missing_from_the_same_asterisk_was_removed_there():
    p = plan([row("8001"), row("8002")], [item("8002")], BOOT + 1)
    assert [r.member_name for r in p.drop] == ["8001"] and not p.restore
    assert [r.member_name for r in p.confirm] == ["8002"]


def test_a_row_never_seen_in_asterisk_is_restored():
    # Logged in while Asterisk was away, or recorded before any FullyBooted: not dropped.
    assert [r.member_name for r in plan([row("8001", seen=None)], [], BOOT).restore] == ["8001"]


def test_asterisk_state_wins_for_present_members_and_unknown_dynamic_ones_are_adopted():
    p = plan([row("8001")], [item("8001", paused=True, reason="小休"), item("8003"),
                             item("9000", membership="static")], BOOT)
    assert [(r.member_name, r.paused, r.reason, r.seen_boot) for r in p.confirm] == [("8001", True, "小休", BOOT)]
    assert [r.member_name for r in p.adopt] == ["8003"]  # static 9000: Asterisk's own
    assert not p.restore and not p.drop


async def test_logout_and_pause_while_asterisk_is_down_are_restored_that_way(sqlite_url, aiohttp_client):
    async with AmiSimulator(o.dynamic_sim_config()) as sim:
        started = asyncio.get_running_loop().time()
        client = await h.start(aiohttp_client, o.app_settings(sqlite_url, sim.port, agent_interface=o.DYNAMIC_IFACE))
        app = client.server.app
        await app[CONNECTOR].wait_connected(5)
        socks = await o.desks_in_queue(client, "8001", "8002", "8003")
        try:
            await asyncio.sleep(max(0.0, 2.5 - (asyncio.get_running_loop().time() - started)))
            restarting = asyncio.create_task(sim.restart(down_for=3.0))
            await wait_for(lambda: not app[CONNECTOR].connected, 5, message="Asterisk down")
            r = await socks["8002"].session.post(client.make_url("/api/agent-state/queues"),
                                                 json={"action": "logout", "queues": ["aftersales"]})
            assert r.status == 200, await r.text()
            r = await socks["8003"].session.post(client.make_url("/api/agent-state/pause"), json={"reason": "培训"})
            assert r.status == 200, await r.text()
            assert (await r.json())["agent"]["queues"][0]["reason"] == "培训"
            await restarting
            members = lambda: {m.name: (m.paused, m.paused_reason)  # noqa: E731
                               for m in sim.engine.queues["aftersales"].members}
            await wait_for(lambda: members() == {"8001": (False, ""), "8003": (True, "培训")}, 10,
                           message=f"restored as left: {members()}")
        finally:
            for s in socks.values():
                await s.close()

"""Fault: the AMI socket is cut while a call talks. What must hold: the service reconnects by
itself, rebuilds the call from Asterisk's lists and follows it to its end — one answered and one
ended for the agent, no duplicate — and the next call pops as usual. (Originates in flight when
the socket drops are never sent twice: tests/test_outbound_dialler.py
``test_ami_dropped_right_after_originate_100_times``.)"""

from __future__ import annotations

from callcenter.appkeys import CONNECTOR
from callcenter.simulator import AmiSimulator, MemberConfig, QueueConfig, SimulatorConfig
from tests import apphelpers as h
from tests.waiting import wait_for


def sim_config(**kw) -> SimulatorConfig:  # type: ignore[no-untyped-def]
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),
                                       MemberConfig("8002", "Local/8002@agents/n")))
    return SimulatorConfig(port=0, queues=(queue,), **kw)


async def test_ami_killed_mid_call_and_restored(db_url, aiohttp_client):
    async with AmiSimulator(sim_config(time_scale=0.05)) as sim:
        client = await h.start(aiohttp_client, h.settings_for(db_url, sim.port))
        await h.add_agents(client, "8001", "8002")
        connector = client.server.app[CONNECTOR]
        await wait_for(lambda: connector.connected, 10)
        a, b = await h.connect(client, "8001"), await h.connect(client, "8002")
        try:
            lid = await sim.place_call(caller="13900002222", answer_after=2, talk=60)
            answered = await wait_for(lambda: [s for s in (a, b) if "call.answered" in s.types(lid)], 10)
            agent = answered[0]
            await sim.drop_clients()
            await wait_for(lambda: connector.sessions >= 2 and connector.connected, 10,
                           message="reconnected")
            # the call goes on in Asterisk; the rebuilt tracker follows it to its end
            await wait_for(lambda: "call.ended" in agent.types(lid), 15,
                           message=repr((a.types(lid), b.types(lid))))
            every = a.types(lid) + b.types(lid)
            assert every.count("call.answered") == 1 and every.count("call.ended") == 1
            # and a call placed after the outage pops as usual
            lid2 = await sim.place_call(caller="13900003333", answer_after=1, talk=1)
            await wait_for(lambda: any("call.ended" in s.types(lid2) for s in (a, b)), 10)
        finally:
            await a.close()
            await b.close()

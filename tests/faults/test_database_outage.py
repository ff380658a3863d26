"""PostgreSQL stopped and restarted under the running service (its own cluster, not the
suite's). What must hold meanwhile:

- every route that needs the database answers 503 with Retry-After and a Chinese message,
  never 500; /health stays up and says the database is away;
- pops for ringing calls keep being delivered (the history marked unavailable) on the sockets
  already open;
- the call records are kept and written when the database is back, with no restart of the
  service, and the routes answer again.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from callcenter.db.engine import make_engine
from callcenter.db.models import Call
from callcenter.simulator import AmiSimulator, MemberConfig, QueueConfig, SimulatorConfig
from tests import apphelpers as h
from tests import services
from tests.waiting import wait_for


def sim_config() -> SimulatorConfig:
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),))
    return SimulatorConfig(port=0, queues=(queue,), time_scale=0.05)


async def test_postgresql_stopped_and_restarted_mid_traffic(aiohttp_client):
    run_dir = services.RunDir()
    pg = services.PostgresServer(run_dir).start()
    try:
        url = pg.url(pg.create_database())
        async with AmiSimulator(sim_config()) as sim:
            client = await h.start(aiohttp_client, h.settings_for(url, sim.port))
            await h.add_agents(client, "8001")
            sock = await h.connect(client, "8001")
            try:
                today = dt.datetime.now(dt.UTC).date().isoformat()
                calls = client.make_url(f"/api/calls?date={today}")
                assert (await sock.session.get(calls)).status == 200

                pg.stop()
                r = await sock.session.get(client.make_url("/api/orders?number=WO"))
                assert r.status == 503, await r.text()
                assert r.headers["Retry-After"] == "5"
                body = await r.json()
                assert body["error"] == "database_unavailable" and "数据库" in body["message"]
                health = await client.get("/health")
                assert health.status == 200
                assert (await health.json())["database"].startswith("error")
                # Past the session cache too: the session check itself cannot reach the database.
                await asyncio.sleep(5.5)
                r = await sock.session.get(calls)
                assert r.status == 503 and r.headers["Retry-After"] == "5"

                # A call rings meanwhile: the agent gets the pop, without the history.
                lid = await sim.place_call(caller="13900001111", answer_after=1, talk=1)
                await wait_for(lambda: "call.ended" in sock.types(lid), 15, message=repr(sock.messages))
                ringing = next(m for m in sock.messages if m["type"] == "call.ringing" and m["call"]["id"] == lid)
                assert ringing["lookup"] == "unavailable" and ringing["history"] is None

                # Back: no restart, the routes answer and the call record is written.
                pg.resume()
                await wait_for(lambda: _status(sock, calls, 200), 20, message="routes answer again")
                engine = make_engine(url)
                try:
                    async def recorded() -> bool:
                        async with engine.connect() as conn:
                            return (await conn.execute(select(Call.linkedid).where(Call.linkedid == lid))).first() is not None

                    await wait_for(recorded, 20, message="the call record written after the outage")
                finally:
                    await engine.dispose()
            finally:
                await sock.close()
    finally:
        pg.stop()
        run_dir.remove()


async def _status(sock, url, status: int) -> bool:  # type: ignore[no-untyped-def]
    return (await sock.session.get(url)).status == status

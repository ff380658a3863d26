"""Fault: ``callcenter serve`` is SIGKILLed while its Originates are in flight. What must hold:
the next process resolves them from the channel list and dials none of them again (no
duplicate call), and recovers with no help."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from callcenter.clock import utcnow
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.outbound import OutboundAttempt, OutboundJob
from callcenter.outbound import rules, services
from callcenter.simulator import AmiSimulator, QueueConfig
from tests import apphelpers as h
from tests import outbound_support as o
from tests.services import free_port
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


async def _seed(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    await migrate(engine, vault=h.fixed_vault())
    now = utcnow()
    vault = h.fixed_vault()
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            ids = []
            for number in ("13800138000", "13800000002"):  # answers (waits in a queue); rings
                ids.append(await services._insert_job(
                    s, kind="callback", order_id=None, customer_id=None, dedupe_key=None,
                    sealed=vault.seal(number), reason="崩溃测试", requested_at=now, due_at=now,
                    deadline_at=None, priority=rules.PRIORITY["callback"], now=now))
        return ids[0], ids[1]
    finally:
        await engine.dispose()


async def _rows(url: str) -> tuple[list[OutboundJob], list[OutboundAttempt]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            jobs = list((await s.execute(select(OutboundJob).order_by(OutboundJob.id))).scalars())
            atts = list((await s.execute(select(OutboundAttempt).order_by(OutboundAttempt.job_id))).scalars())
        return jobs, atts
    finally:
        await engine.dispose()


async def test_sigkill_mid_dial_then_recovered_not_redialled(tmp_path, aiohttp_client, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.sqlite3'}"
    answered, ringing = await _seed(url)
    counter = o.OriginateCounter(monkeypatch)
    waiting = QueueConfig("callbacks", (), max_wait=120)
    config = o.sim_config(time_scale=0.5, callback_queue="callbacks")
    config = dataclasses.replace(config, queues=(*config.queues, waiting))
    async with AmiSimulator(config) as sim:
        env = {**os.environ, "CALLCENTER_DATABASE_URL": url, "CALLCENTER_AMI_PORT": str(sim.port),
               "CALLCENTER_HTTP_PORT": str(free_port()), "CALLCENTER_TIMEZONE": o.daytime_zone(),
               "CALLCENTER_DATA_KEYS": h.TEST_KEYS["data_keys"], "CALLCENTER_INDEX_KEYS": h.TEST_KEYS["index_keys"],
               "CALLCENTER_OUTBOUND_INTERVAL": "0.05", "CALLCENTER_SLA_INTERVAL": "0",
               "CALLCENTER_DISPATCH_INTERVAL": "0", "CALLCENTER_NOTIFY_INTERVAL": "0",
               "CALLCENTER_LOG_LEVEL": "WARNING"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter", "serve", cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await wait_for(lambda: len(counter.received) == 2, 60, interval=0.05,
                           message="the server dialled both jobs")
            live = {c.uniqueid for c in sim.engine.channels.values()}
            assert all(aid in live for aid in counter.received)
            os.kill(proc.pid, signal.SIGKILL)  # mid-dial: one answered and queued, one ringing
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        jobs, atts = await _rows(url)
        assert [j.status for j in jobs] == ["dialling", "dialling"]
        assert {a.state for a in atts} == {"dialling"}
        # The next process (here in the test's loop): resolved from the channels, not re-dialled.
        client = await h.start(aiohttp_client, o.app_settings(url, sim.port))

        async def settled():  # type: ignore[no-untyped-def]
            j = [await o.job(client, i) for i in (answered, ringing)]
            return j if all(x.status != "dialling" for x in j) else None

        j_answered, j_ringing = await wait_for(settled, 40, interval=0.1, message="both resolved")
        assert j_answered.status == "answered"
        # the ringing call's answer (no answer after the 30 s ring the first process asked for,
        # 15 s here) came to the new session: a retry an hour later, not a second call now
        assert (j_ringing.status, j_ringing.last_outcome) == ("scheduled", "no_answer")
        assert o.services._aware(j_ringing.due_at) > utcnow() + dt.timedelta(minutes=50)
        assert len(counter.received) == 2 and max(counter.per_id().values()) == 1

"""The outbound dialler against the simulator over TCP: every OriginateResponse reason, the
survey from a completed order, the callback popped to an agent, AMI dropped right after an
Originate (×100) with no second call, a crash mid-dial recovered without re-dialling, the Redis
schedule rebuilt after a flush, and anything odd refused before it reaches AMI."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from sqlalchemy import select

from callcenter.appkeys import CONNECTOR, OUTBOUND, REDIS, SESSIONMAKER
from callcenter.clock import utcnow
from callcenter.simulator import AmiSimulator, QueueConfig
from tests import apphelpers as h
from tests import outbound_support as o
from tests.waiting import wait_for


async def _started(aiohttp_client, db_url, sim, **extra):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, o.app_settings(db_url, sim.port, **extra))
    await wait_for(lambda: client.server.app[CONNECTOR].connected, 10, message="AMI connected")
    return client


async def _settled(client, job_id: int, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    async def done():  # type: ignore[no-untyped-def]
        j = await o.job(client, job_id)
        return j if j.status != "dialling" and j.attempts > 0 else None
    return await wait_for(done, timeout, interval=0.05, message=f"job {job_id} settled")


async def test_every_originate_reason(db_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        started = utcnow()
        # the lab trunk: last digit 1 busy, 2 no answer, 3 congestion, anything else answers
        ids = {n: await o.add_job(client, n) for n in ("13800000001", "13800000002", "13800000003",
                                                       "13800000005")}
        expected = {"13800000001": ("busy", 5, 10), "13800000002": ("no_answer", 3, 60),
                    "13800000003": ("congestion", 8, 5), "13800000005": ("answered", 4, None)}
        for number, job_id in ids.items():
            outcome, reason, retry_min = expected[number]
            j = await _settled(client, job_id)
            [a] = await o.attempts(client, job_id)
            assert (a.outcome, a.reason_code, a.state) == (outcome, reason, "done"), number
            assert a.id.startswith(f"ob-{job_id}-1-")
            assert "13800000" not in a.channel  # masked
            if retry_min is None:
                assert j.status == "answered"
            else:
                assert j.status == "scheduled" and j.attempts == 1 and j.last_outcome == outcome
                due = o.services._aware(j.due_at)
                assert started + dt.timedelta(minutes=retry_min) <= due <= utcnow() + dt.timedelta(minutes=retry_min)
        # Reason 0: a channel technology Asterisk does not have
        dialler = client.server.app[OUTBOUND]
        dialler.config = dataclasses.replace(dialler.config, channel_template="Bogus/{number}")
        job_id = await o.add_job(client, "13800000006")
        await _settled(client, job_id)
        [a] = await o.attempts(client, job_id)
        assert (a.outcome, a.reason_code) == ("failure", 0)
        # one Originate per attempt, its ActionID the attempt id
        assert sorted(counter.received) == sorted(a.id for a in await o.attempts(client))


async def test_survey_from_a_completed_order(db_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        cid, _ = await o.add_customer(client, "13800138005")
        order_id = await o.add_order(client, cid, "WO20261123-901")
        # an order completed two days ago is history: no survey for it
        await o.add_order(client, cid, "WO20261121-902", completed_ago=dt.timedelta(days=2))

        async def survey_job():  # type: ignore[no-untyped-def]
            rows = await o.attempts(client)
            return rows[0] if rows and rows[0].answers else None

        a = await wait_for(survey_job, 15, interval=0.05, message="survey answered")
        j = await o.job(client, a.job_id)
        assert (j.kind, j.order_id, j.status) == ("survey", order_id, "answered")
        assert a.answers == {"Q1": "5", "Q2": "4", "Q3": "5", "Q4": "3", "Q5": "5", "Q6": "4"}
        # handed to the survey slice: the SA-CS-005 record of the order, linked to this job
        from callcenter.db.models import SurveyResult

        async def record():  # type: ignore[no-untyped-def]
            async with client.server.app[SESSIONMAKER]() as s:
                return (await s.execute(select(SurveyResult).where(SurveyResult.order_id == order_id))).scalar_one_or_none()

        cs = await wait_for(record, 10, interval=0.05, message="SA-CS-005 recorded")
        assert (cs.job_id, cs.channel, cs.resolution) == (j.id, "phone-ivr", 3)
        assert o.services._aware(j.deadline_at) - o.services._aware(j.requested_at) == dt.timedelta(hours=24)
        assert len(counter.received) == 1
        # the creation pass is idempotent: ticks go on, no second survey job
        dialler = client.server.app[OUTBOUND]
        dialler._last_create = float("-inf")
        await dialler.tick()
        assert len(await o.attempts(client)) == 1


async def test_callback_reaches_an_agent_with_why(db_url, aiohttp_client, monkeypatch):
    o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config(time_scale=0.05)) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        await h.add_agents(client, "8001", "8002")
        a, b = await h.connect(client, "8001"), await h.connect(client, "8002")
        try:
            cid, _ = await o.add_customer(client, "13800138000", "李四")
            order_id = await o.add_order(client, cid, "WO20261123-077", status="服务中")
            job_id = await o.add_job(client, "13800138000", order_id=order_id, customer_id=cid)

            def ringing():  # type: ignore[no-untyped-def]
                return [m for s in (a, b) for m in s.messages if m["type"] == "call.ringing"]

            [pop, *_] = await wait_for(ringing, 15, message="callback rang an agent")
            assert pop["call"]["id"].startswith(f"ob-{job_id}-1-")
            assert pop["callback"]["kind"] == "callback"
            assert pop["callback"]["order_number"] == "WO20261123-077"
            assert pop["callback"]["reason"] == "测试回拨"
            assert pop["customer"]["id"] == cid and pop["customer"]["name"] == "李*"
            assert "13800138000" not in str(pop)
            j = await _settled(client, job_id)
            assert j.status == "answered"
        finally:
            await a.close()
            await b.close()


async def test_ami_dropped_right_after_originate_100_times(sqlite_url, aiohttp_client, monkeypatch):
    """The session is cut at three points around each Originate: before Asterisk reads it, after
    it was carried out but before its response, right after its response. Never a second call
    for an attempt, and every attempt ends resolved."""
    n = {"i": 0}

    def before(eng, session, msg):  # type: ignore[no-untyped-def]
        n["i"] += 1
        if n["i"] % 3 == 0:
            session.abort()  # lost on the wire: Asterisk never saw it
            return True
        if n["i"] % 3 == 1:
            from callcenter.simulator.originate import originate, parse_originate

            eng.spawn(originate(eng, parse_originate(msg)))  # carried out, the answer lost
            session.abort()
            return True
        return False

    def after(eng, session, msg):  # type: ignore[no-untyped-def]
        if n["i"] % 3 == 2:
            asyncio.get_running_loop().call_soon(session.abort)  # response out, then cut

    counter = o.OriginateCounter(monkeypatch, before, after)
    channels: list[str] = []

    def on_sent(name, fields, t):  # type: ignore[no-untyped-def]
        if name == "Newchannel" and fields["Uniqueid"].startswith("ob-"):
            channels.append(fields["Uniqueid"])

    async with AmiSimulator(o.sim_config(time_scale=0.01), on_sent=on_sent) as sim:
        client = await _started(aiohttp_client, sqlite_url, sim, outbound_max_channels=5,
                                ami_reconnect_max=0.1)  # 100 reconnects in ~10 s
        numbers = [f"1390000{i:04d}" for i in range(100)]
        # answer (…0, …4 …), busy (…1), no answer (…2), congestion (…3)
        jobs = [await o.add_job(client, num) for num in numbers]

        async def all_resolved():  # type: ignore[no-untyped-def]
            rows = await o.attempts(client)
            return len(rows) == 100 and all(r.state == "done" for r in rows)

        await wait_for(all_resolved, 100, interval=0.2, message="every attempt resolved")
        rows = await o.attempts(client)
        assert len(counter.received) == 100
        assert max(counter.per_id().values()) == 1  # no Originate sent twice
        assert len(channels) == len(set(channels))  # no attempt dialled twice
        assert {r.job_id for r in rows} == set(jobs) and all(r.seq == 1 for r in rows)
        outcomes = {r.outcome for r in rows}
        assert "unknown" in outcomes and "answered" in outcomes
        assert client.server.app[CONNECTOR].sessions > 30


async def test_process_killed_mid_dial_is_recovered_not_redialled(sqlite_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    # The answered customer waits in a queue nobody answers (30 s here); the unanswered call
    # rings 10 s (5 s here): both still live when the second process starts.
    waiting = QueueConfig("callbacks", (), max_wait=60)
    config = o.sim_config(time_scale=0.5, callback_queue="callbacks")
    config = dataclasses.replace(config, queues=(*config.queues, waiting))
    async with AmiSimulator(config) as sim:
        first = await _started(aiohttp_client, sqlite_url, sim)
        first.server.app[OUTBOUND].config = dataclasses.replace(first.server.app[OUTBOUND].config, timeout_s=10)
        # The process "dies" with its attempts in flight: from now on it records no outcome
        # (the database keeps saying "dialling"), as if it had been killed after dialling.
        first.server.app[OUTBOUND].finish = _never  # type: ignore[method-assign]
        cid, _ = await o.add_customer(client := first, "13800138000")
        answered = await o.add_job(client, "13800138000", customer_id=cid)  # waits in the queue
        ringing = await o.add_job(client, "13800000002")  # rings 30 s (3 s here), no answer
        lost = await o.add_job(client, "13800000001")  # busy while we are down
        await wait_for(lambda: len(counter.received) == 3, 10)
        ids = await o.attempts(client)
        await wait_for(lambda: all(a.id in {c.uniqueid for c in sim.engine.channels.values()}
                                   for a in ids if a.job_id != lost), 5, message="channels up")
        assert {a.state for a in await o.attempts(first)} == {"dialling"}
        # Killed; the busy call ends while nobody listens.
        await first.close()
        await wait_for(lambda: not any(c.uniqueid.startswith(f"ob-{lost}-") for c in sim.engine.channels.values()), 5)
        second = await _started(aiohttp_client, sqlite_url, sim)
        second.server.app[OUTBOUND].config = dataclasses.replace(second.server.app[OUTBOUND].config, timeout_s=10)
        j_answered = await _settled(second, answered, 10)
        j_ringing = await _settled(second, ringing, 10)
        j_lost = await _settled(second, lost, 10)
        assert j_answered.status == "answered"
        # Still ringing at the restart: its OriginateResponse (or hang-up cause) says no answer;
        # on a slow box it may end before the new process listens, leaving no trace: review.
        assert (j_ringing.status, j_ringing.last_outcome) in (("scheduled", "no_answer"), ("review", "unknown"))
        # No response and no trace of its channel: the customer may have been reached, so it
        # is not dialled again by itself — it waits on the outbound board for a person. (If the
        # busy hang-up reached the first process before it "died", its cause was written and
        # the job is retried as busy, later: also right. Never dialled again now either way.)
        assert (j_lost.status, j_lost.last_outcome) in (("review", "unknown"), ("scheduled", "busy"))
        second.server.app[OUTBOUND].wake()
        await asyncio.sleep(0.5)
        assert len(counter.received) == 3 and max(counter.per_id().values()) == 1


async def _never(*args, **kwargs):  # type: ignore[no-untyped-def]
    await asyncio.Event().wait()


async def test_redis_flushed_schedule_rebuilt(sqlite_url, redis_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, sqlite_url, sim, redis_url=redis_url)
        redis = client.server.app[REDIS]
        dialler = client.server.app[OUTBOUND]
        later = utcnow() + dt.timedelta(days=1)
        future = [await o.add_job(client, f"1370000{i:04d}", due=later) for i in range(20)]
        await wait_for(lambda: redis.exists(dialler.schedule.built_key), 5)
        assert await redis.zcard(dialler.schedule._key(1)) == 20
        await redis.flushdb()
        # a job booked while Redis is empty, with its due time in the database only
        job_id = await o.add_job(client, "13700009999")
        await redis.delete(*dialler.schedule.due_keys)
        # Flushing also dropped the AMI lease: the dialler waits to lead again (slow on a busy box).
        await wait_for(lambda: redis.exists(dialler.schedule.built_key), 30, message="rebuilt")
        await _settled(client, job_id, 40)
        assert await redis.zcard(dialler.schedule._key(1)) == len(future)
        assert dialler.schedule.rebuilds >= 1
        assert len(counter.received) == 1


async def test_crlf_or_non_digits_refused_before_sending(db_url, aiohttp_client, monkeypatch):
    sent: list[dict[str, str]] = []
    counter = o.OriginateCounter(monkeypatch, before=lambda eng, session, msg: sent.append(dict(msg)))
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        vault = h.fixed_vault()
        bad_numbers = ["13800138000\r\nAction: Hangup", "1380013800a", "+8613800138000",
                       "19001234567", "13800138000\nChannel: x"]
        jobs = [await o.add_job(client, "13800138000", raw_enc=vault.encrypt(n)) for n in bad_numbers]
        for job_id in jobs:
            j = await wait_for(lambda job_id=job_id: _stopped(client, job_id), 10)
            assert (j.status, j.last_outcome) == ("cancelled", "invalid_number")
            assert j.attempts == 0
        assert counter.received == []
        assert await o.attempts(client) == []
        # An order number that is not a plain token (an imported "2019/03#12", or one carrying
        # a CR/LF) is left off the channel: the call is placed, the job is never lost, and
        # nothing but tokens reaches Asterisk.
        cid, _ = await o.add_customer(client, "13800138006")
        for number in ("WO1\r\nAction: Originate", "2019/03#12"):
            order_id = await o.add_order(client, cid, number, status="服务中")
            await o.add_job(client, "13800138006", order_id=order_id, customer_id=cid)
        await wait_for(lambda: len(counter.received) == 2, 10, message="both callbacks dialled")
        for msg in sent:
            assert "WORK_ORDER" not in msg.get("Variable", "") and msg["Variable"].startswith("CALLBACK_JOB=ob-")
            assert not any("\r" in v or "\n" in v for v in msg.values())


async def _stopped(client, job_id):  # type: ignore[no-untyped-def]
    j = await o.job(client, job_id)
    return j if j.status != "scheduled" else None


async def test_exhausted_survey_falls_back_to_an_sms(db_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        dialler = client.server.app[OUTBOUND]
        dialler.config = dataclasses.replace(dialler.config, max_attempts=1)
        cid, _ = await o.add_customer(client, "13800000001")  # busy on the lab trunk
        order_id = await o.add_order(client, cid, "WO20261123-931")

        async def exhausted():  # type: ignore[no-untyped-def]
            rows = await o.attempts(client)
            if not rows:
                return None
            j = await o.job(client, rows[0].job_id)
            return j if j.status == "exhausted" else None

        j = await wait_for(exhausted, 15, interval=0.05, message="survey exhausted")
        assert (j.kind, j.order_id, j.last_outcome) == ("survey", order_id, "busy")
        from callcenter.db.notify import Notification

        async with client.server.app[SESSIONMAKER]() as s:
            [sms] = (await s.execute(select(Notification))).scalars().all()
        assert (sms.kind, sms.order_id, sms.recipient_masked, sms.status) == (
            "survey.link", order_id, "138****0001", "queued")
        assert "WO20261123-931" in sms.text and "13800000001" not in sms.text
        assert len(counter.received) == 1


async def test_opt_out_during_a_call_puts_the_number_on_the_dnc_list(db_url, aiohttp_client, monkeypatch):
    o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        dialler = client.server.app[OUTBOUND]
        first = await o.add_job(client, "13800138005")
        j = await _settled(client, first)
        assert j.status == "answered"
        [a] = await o.attempts(client, first)
        later = await o.add_job(client, "13800138005", due=utcnow() + dt.timedelta(days=1))
        # what the dialplan sends when the customer presses the opt-out key
        dialler.on_ami_event({"Event": "UserEvent", "UserEvent": "OptOut", "Job": a.id,
                              "Channel": "Local/13800138005@outbound-trunk-00000001;1"})
        await dialler.drain()
        from callcenter.db.outbound import DoNotCall

        async with client.server.app[SESSIONMAKER]() as s:
            [entry] = (await s.execute(select(DoNotCall))).scalars().all()
        assert (entry.source, entry.number_masked) == ("call", "138****8005")
        j = await o.job(client, later)
        assert (j.status, j.last_outcome) == ("cancelled", "dnc")


async def test_abandoned_call_from_a_known_customer_is_called_back_first(db_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config(time_scale=0.05)) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        dialler = client.server.app[OUTBOUND]
        await o.add_customer(client, "13900001234", "王五")
        # a booked callback already due, and one due now-ish: the abandoned caller goes first
        dialler.stop()  # hold the dialler: only look at the order here
        booked = await o.add_job(client, "13800000005", due=utcnow() - dt.timedelta(minutes=30))
        lid = await sim.place_call(caller="13900001234", abandon_after=2, no_answer_members=("8001", "8002"))
        assert await sim.wait_call(lid) == "abandoned"

        async def callback_job():  # type: ignore[no-untyped-def]
            created = await o.services.create_due_jobs(client.server.app[SESSIONMAKER], dialler.config, utcnow())
            return created or None

        [(job_id, _priority, _due)] = await wait_for(callback_job, 10, interval=0.1, message="callback created")
        j = await o.job(client, job_id)
        assert (j.kind, j.call_linkedid, j.priority, j.reason) == ("callback", lid, 0, o.services.ABANDONED_REASON)
        assert await dialler.schedule.due(utcnow(), 10) == [job_id, booked]
        # again: nothing new (one callback per abandoned call)
        assert await o.services.create_due_jobs(client.server.app[SESSIONMAKER], dialler.config, utcnow()) == []
        assert counter.received == []
        assert await dialler.tick() == 2
        assert counter.received[0].startswith(f"ob-{job_id}-1-") and counter.received[1].startswith(f"ob-{booked}-1-")
        for done in (job_id, booked):
            await _settled(client, done)
        await dialler.drain()


async def test_jobs_overtaken_by_events_are_not_dialled(db_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        dialler = client.server.app[OUTBOUND]
        dialler.stop()  # jobs set up first, then one tick
        cid, _ = await o.add_customer(client, "13800138007")
        surveyed = await o.add_order(client, cid, "WO20261123-941", status="已回访")
        survey_job = await o.add_job(client, "13800138007", kind="survey", order_id=surveyed, customer_id=cid)
        # the abandoned caller rang again and was answered before we called back
        from callcenter.db.models import Call

        sealed = h.fixed_vault().seal("13800138007")
        now = utcnow()
        async with client.server.app[SESSIONMAKER]() as s, s.begin():
            for lid, outcome, ago in (("1795343042.54", "abandoned", 30), ("1795343042.99", "answered", 10)):
                s.add(Call(linkedid=lid, caller_index=sealed.index, caller_enc=sealed.enc,
                           caller_masked=sealed.masked, state="ended", outcome=outcome, customer_id=cid,
                           started_at=now - dt.timedelta(minutes=ago), rang=[]))
        callback_job = await o.add_job(client, "13800138007", customer_id=cid)
        async with client.server.app[SESSIONMAKER]() as s, s.begin():
            from callcenter.db.outbound import OutboundJob

            (await s.get(OutboundJob, callback_job)).call_linkedid = "1795343042.54"
        assert await dialler.tick() == 0
        assert ((await o.job(client, survey_job)).status, (await o.job(client, survey_job)).last_outcome) == (
            "cancelled", "order_moved")
        assert ((await o.job(client, callback_job)).status, (await o.job(client, callback_job)).last_outcome) == (
            "cancelled", "called_back")
        assert counter.received == []


async def test_a_job_the_dialler_cannot_place_waits_for_a_person(db_url, aiohttp_client, monkeypatch):
    """A value of the dialler's own making that cannot go to Asterisk (here a context with a
    space) is never sent, and the job is not dropped: it waits in review on the board."""
    counter = o.OriginateCounter(monkeypatch)
    async with AmiSimulator(o.sim_config()) as sim:
        client = await _started(aiohttp_client, db_url, sim)
        dialler = client.server.app[OUTBOUND]
        dialler.config = dataclasses.replace(dialler.config, callback_context="call back")
        job_id = await o.add_job(client, "13800138000")
        j = await wait_for(lambda: _stopped(client, job_id), 10)
        assert (j.status, j.last_outcome, j.attempts) == ("review", "header", 0)
        assert counter.received == []

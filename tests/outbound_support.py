"""Helpers for the outbound tests: a simulator that counts Originates, a time zone where it is
daytime now (calling hours whatever the hour the suite runs), customers and jobs seeded."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import select

from callcenter.appkeys import OUTBOUND, SESSIONMAKER
from callcenter.clock import utcnow
from callcenter.db.models import Customer, CustomerPhone, WorkOrder
from callcenter.db.outbound import OutboundAttempt, OutboundJob
from callcenter.outbound import rules, services
from callcenter.simulator import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator import actions as sim_actions
from tests import apphelpers as h


def daytime_zone(now: dt.datetime | None = None) -> str:
    """A fixed-offset zone where it is about noon now (Etc/GMT signs are inverted)."""
    hour = (now or utcnow()).astimezone(dt.UTC).hour
    offset = 12 - hour
    return f"Etc/GMT{-offset:+d}"


def sim_config(**kw: Any) -> SimulatorConfig:
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),
                                       MemberConfig("8002", "Local/8002@agents/n")))
    return SimulatorConfig(port=0, queues=(queue,), **{"time_scale": 0.02, **kw})


def app_settings(db_url: str, port: int, **extra: Any):  # type: ignore[no-untyped-def]
    return h.settings_for(db_url, port, **{
        "timezone": daytime_zone(), "outbound_interval": 0.05, "outbound_rate": 50.0,
        "outbound_max_channels": 50, "sla_interval": 0, "dispatch_interval": 0,
        "notify_interval": 0, **extra})


class OriginateCounter:
    """Wraps the simulator's Originate handler: every ActionID it received, in order.
    ``before(eng, session, msg)`` may return True to swallow the action (not processed)."""

    def __init__(self, monkeypatch: Any, before: Any = None, after: Any = None) -> None:
        self.received: list[str] = []
        self._orig = sim_actions.HANDLERS["originate"]
        self._before, self._after = before, after
        monkeypatch.setitem(sim_actions.HANDLERS, "originate", self)

    def __call__(self, eng: Any, session: Any, msg: dict[str, str]) -> None:
        self.received.append(msg.get("ActionID", ""))
        if self._before is not None and self._before(eng, session, msg):
            return
        self._orig(eng, session, msg)
        if self._after is not None:
            self._after(eng, session, msg)

    def per_id(self) -> Counter[str]:
        return Counter(self.received)


async def add_customer(client: Any, number: str, name: str = "张三") -> tuple[int, int]:
    """A customer with one mobile phone (sealed with the app's keys); (customer id, phone id)."""
    vault = h.fixed_vault()
    sealed = vault.seal(number)
    async with client.server.app[SESSIONMAKER]() as s, s.begin():
        c = Customer(name=name, created_at=utcnow())
        s.add(c)
        await s.flush()
        p = CustomerPhone(customer_id=c.id, number_index=sealed.index, number_enc=sealed.enc,
                          masked=sealed.masked, kind="mobile")
        s.add(p)
        await s.flush()
        return c.id, p.id


async def add_job(client: Any, number: str, *, kind: str = "callback", order_id: int | None = None,
                  customer_id: int | None = None, due: dt.datetime | None = None,
                  raw_enc: str | None = None) -> int:
    """A scheduled job for ``number`` (``raw_enc``: store this ciphertext as it is)."""
    vault = h.fixed_vault()
    now = utcnow()
    sealed = vault.seal(number)
    if raw_enc is not None:
        sealed = type(sealed)(sealed.index, raw_enc, sealed.masked)
    async with client.server.app[SESSIONMAKER]() as s, s.begin():
        job_id = await services._insert_job(
            s, kind=kind, order_id=order_id, customer_id=customer_id, dedupe_key=None, sealed=sealed,
            reason="测试回拨", requested_at=now, due_at=due or now, deadline_at=None,
            priority=rules.PRIORITY[kind], now=now)
    assert job_id is not None
    dialler = client.server.app[OUTBOUND]
    await dialler.schedule.put(job_id, rules.PRIORITY[kind], due or now)
    dialler.wake()
    return job_id


async def add_order(client: Any, customer_id: int, number: str, *, status: str = "已完成",
                    completed_ago: dt.timedelta = dt.timedelta(hours=1)) -> int:
    now = utcnow()
    async with client.server.app[SESSIONMAKER]() as s, s.begin():
        o = WorkOrder(number=number, customer_id=customer_id, status=status, created_at=now - dt.timedelta(days=1),
                      completed_at=now - completed_ago if status == "已完成" else None)
        s.add(o)
        await s.flush()
        return o.id


async def job(client: Any, job_id: int) -> OutboundJob:
    async with client.server.app[SESSIONMAKER]() as s:
        return (await s.execute(select(OutboundJob).where(OutboundJob.id == job_id))).scalar_one()


async def attempts(client: Any, job_id: int | None = None) -> list[OutboundAttempt]:
    async with client.server.app[SESSIONMAKER]() as s:
        q = select(OutboundAttempt).order_by(OutboundAttempt.job_id, OutboundAttempt.seq)
        if job_id is not None:
            q = q.where(OutboundAttempt.job_id == job_id)
        return list((await s.execute(q)).scalars())


# Agents who log in to queues themselves (dynamic members, as on a real site): the interface the
# service adds them with, and a simulator whose queue has no static members.
DYNAMIC_IFACE = "Local/{extension}@agents/n"


def dynamic_sim_config(**kw: Any) -> SimulatorConfig:
    return SimulatorConfig(port=0, queues=(QueueConfig("aftersales", ()),), **{"time_scale": 0.02, **kw})


async def desks_in_queue(client: Any, *extensions: str) -> dict[str, h.AgentSocket]:
    """Agents with their desks open, each logged in to ``aftersales`` through the API."""
    await h.add_agents(client, *extensions)
    socks = {ext: await h.connect(client, ext) for ext in extensions}
    for ext, sock in socks.items():
        r = await sock.session.post(client.make_url("/api/agent-state/queues"),
                                    json={"action": "login", "queues": ["aftersales"]})
        assert r.status == 200, await r.text()
    return socks

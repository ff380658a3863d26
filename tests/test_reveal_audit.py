"""The audited reveal, the audit log, and a scan of every answer and log line for personal data."""

from __future__ import annotations

import datetime as dt
import json

import aiohttp
import pytest
from sqlalchemy import select

from callcenter.appkeys import AUTH, CUSTOMER_SERVICE, POPS, RECORDER, SESSIONMAKER, SETTINGS, VAULT
from callcenter.auth.identity import CurrentUser
from callcenter.customers.services import sealed_phone
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import (
    Address, Appointment, AuditEntry, Customer, IntakeRecord, WorkOrder,
)
from callcenter.simulator.replay import TranscriptReplayServer
from tests import apphelpers as h
from tests.privacy_scan import LogScan, ScanningClient, find_mobiles, scan_messages
from tests.transcripts import TRANSCRIPTS
from tests.waiting import wait_for

NOW = dt.datetime.now(dt.UTC)
ROLES = ("agent", "dispatcher", "engineer", "survey", "supervisor", "admin")
ZHANG = {"name": "张三丰", "phones": ["13800138000", "010-8888-6666"],
         "address": {"province": "广东省", "city": "深圳市", "district": "南山区", "detail": "科技园路8号3栋1201"}}
LI = {"name": "李四光", "phones": ["13900001111"],
      "address": {"province": "北京市", "city": "北京市", "district": "海淀区", "detail": "中关村大街1号"}}
SECRETS = ["张三丰", "李四光", "科技园路8号", "中关村大街1号", "88886666", "01088886666"]


async def login_as(client, username: str) -> aiohttp.ClientSession:  # noqa: ANN001
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await session.post(client.make_url("/api/session"),
                           json={"username": username, "password": h.PASSWORD})
    assert r.status == 200, await r.text()
    return session


class World:
    """Two customers; order 1 (张三丰) assigned to engineer 1 with its intake and appointment,
    order 2 (李四光) assigned to engineer 2."""

    def __init__(self, client) -> None:  # noqa: ANN001
        self.client = client
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.users: dict[str, int] = {}

    async def build(self) -> World:
        app = self.client.server.app
        for name in (*ROLES, "engineer2"):
            role = "engineer" if name == "engineer2" else name
            user = await app[AUTH].add_user(name, role=role, password=h.PASSWORD)
            self.users[name] = user.id
        actor = CurrentUser(id=self.users["agent"], username="agent", role="agent")
        service = app[CUSTOMER_SERVICE]
        self.zhang = (await service.create(ZHANG, actor)).id
        self.li = (await service.create(LI, actor)).id
        contact = app[VAULT].seal("13700002222")
        async with app[SESSIONMAKER].begin() as s:
            address = (await s.execute(select(Address.id).where(Address.customer_id == self.zhang))).scalar()
            intake = IntakeRecord(number="CR20261124-001", created_at=NOW, customer_id=self.zhang,
                                  product_model="KFR-35GW", request_type="维修", problem="不制冷",
                                  contact_phone_index=contact.index, contact_phone_enc=contact.enc,
                                  contact_phone_masked=contact.masked, call_linkedid="1700.1")
            s.add(intake)
            await s.flush()
            o1 = WorkOrder(number="WO20261124-001", customer_id=self.zhang, intake_id=intake.id,
                           address_id=address, engineer_id=self.users["engineer"], created_at=NOW,
                           status="已派单")
            o2 = WorkOrder(number="WO20261124-002", customer_id=self.li,
                           engineer_id=self.users["engineer2"], created_at=NOW, status="已派单")
            s.add_all([o1, o2])
            await s.flush()
            ap = Appointment(number="AP20261124-001", order_id=o1.id, window_start=NOW,
                             window_end=NOW + dt.timedelta(hours=2), created_at=NOW)
            s.add(ap)
            await s.flush()
            self.intake, self.order1, self.order2, self.appointment = intake.id, o1.id, o2.id, ap.id
        return self

    async def as_(self, name: str) -> aiohttp.ClientSession:
        if name not in self.sessions:
            self.sessions[name] = await login_as(self.client, name)
        return self.sessions[name]

    async def reveal(self, name: str, **body: object) -> tuple[int, dict]:
        session = await self.as_(name)
        r = await session.post(self.client.make_url("/api/reveal"),
                               json={"reason": "客户要求回电确认地址", **body})
        return r.status, await r.json()

    async def audit(self, **params: object) -> tuple[int, dict]:
        session = await self.as_("admin")
        r = await session.get(self.client.make_url("/api/audit"),
                              params={k: str(v) for k, v in params.items()})
        return r.status, await r.json()

    async def close(self) -> None:
        for s in self.sessions.values():
            await s.close()


@pytest.fixture
async def world(db_url, aiohttp_client):  # noqa: ANN001, ANN201
    # db_url first: its database outlives the app (fixtures tear down in reverse order).
    client = await h.start(aiohttp_client, h.settings_for(db_url, 1))
    w = await World(client).build()
    yield w
    await w.close()


async def _reveals(world: World) -> list[AuditEntry]:
    async with world.client.server.app[SESSIONMAKER]() as s:
        return list((await s.execute(select(AuditEntry).where(AuditEntry.action == "reveal")
                                     .order_by(AuditEntry.id))).scalars())


async def test_reveal_each_entity_and_field(world) -> None:  # noqa: ANN001
    expected = {
        ("customer", world.zhang, "name"): "张三丰",
        ("customer", world.zhang, "phone"): "13800138000",
        ("customer", world.zhang, "address"): "广东省深圳市南山区科技园路8号3栋1201",
        ("order", world.order1, "name"): "张三丰",
        ("order", world.order1, "phone"): "13700002222",  # the number given on its intake
        ("order", world.order1, "address"): "广东省深圳市南山区科技园路8号3栋1201",
        ("order", world.order2, "phone"): "13900001111",  # no intake: the customer's number
        ("intake", world.intake, "phone"): "13700002222",
        ("intake", world.intake, "address"): "广东省深圳市南山区科技园路8号3栋1201",
        ("appointment", world.appointment, "phone"): "13700002222",
        ("appointment", world.appointment, "name"): "张三丰",
    }
    for (entity, id_, field), value in expected.items():
        status, body = await world.reveal("agent", entity=entity, id=id_, field=field)
        assert status == 200, body
        assert body["value"] == value and body["entity"] == entity and body["id"] == id_
    status, body = await world.reveal("supervisor", entity="customer", id=world.zhang, field="phone")
    assert body["values"] == ["13800138000", "01088886666"]

    entries = await _reveals(world)
    assert len(entries) == len(expected) + 1
    first = entries[0]
    assert (first.user_id, first.entity, first.entity_id, first.detail) == (
        world.users["agent"], "customer", str(world.zhang), {"field": "name"})
    assert first.reason == "客户要求回电确认地址" and first.at is not None
    assert [e.entity for e in entries[3:6]] == ["work_order"] * 3
    stored = json.dumps([[e.detail, e.reason, e.entity_id] for e in entries], ensure_ascii=False)
    for value in expected.values():
        assert value not in stored


@pytest.mark.parametrize(("who", "entity", "target", "status"), [
    ("engineer", "order", "order1", 200),
    ("engineer", "customer", "zhang", 200),  # the customer of an order assigned to them
    ("engineer", "intake", "intake", 200),
    ("engineer", "appointment", "appointment", 200),
    ("engineer", "order", "order2", 404),  # another engineer's order
    ("engineer", "customer", "li", 404),  # … and its customer
    ("engineer2", "intake", "intake", 404),
    ("engineer2", "appointment", "appointment", 404),
    ("engineer2", "order", "order2", 200),
    ("survey", "customer", "zhang", 403),
    ("survey", "order", "order1", 403),
    ("dispatcher", "order", "order2", 200),
    ("admin", "intake", "intake", 200),
])
async def test_reveal_checks_role_and_object(world, who, entity, target, status) -> None:  # noqa: ANN001
    code, body = await world.reveal(who, entity=entity, id=getattr(world, target), field="phone")
    assert code == status, body
    assert ("value" in body) == (status == 200)
    if status != 200:
        assert not find_mobiles(json.dumps(body))
    assert len(await _reveals(world)) == (1 if status == 200 else 0)


@pytest.mark.parametrize(("body", "field"), [
    ({"entity": "customer", "field": "phone"}, "reason"),
    ({"entity": "customer", "field": "phone", "reason": "看看"}, "reason"),
    ({"entity": "customer", "field": "phone", "reason": "   客户   "}, "reason"),  # stripped: 2
    ({"entity": "customer", "field": "phone", "reason": "x" * 201}, "reason"),
    ({"entity": "user", "field": "phone", "reason": "客户要求回电"}, "entity"),
    ({"entity": "customer", "field": "email", "reason": "客户要求回电"}, "field"),
    ({"entity": "customer", "field": "phone", "reason": "客户要求回电", "id": 0}, "id"),
    ({"entity": "customer", "field": "phone", "reason": "客户要求回电", "value": "x"}, "value"),
])
async def test_reveal_validation(world, body, field) -> None:  # noqa: ANN001
    session = await world.as_("agent")
    r = await session.post(world.client.make_url("/api/reveal"), json={"id": world.zhang, **body})
    out = await r.json()
    assert r.status == 422 and out["details"]["field"] == field, out
    assert await _reveals(world) == []


async def test_reveal_of_nothing_is_404_and_not_audited(world) -> None:  # noqa: ANN001
    for entity in ("customer", "order", "intake", "appointment"):
        status, _ = await world.reveal("admin", entity=entity, id=999999, field="name")
        assert status == 404
    assert await _reveals(world) == []
    # Logged out: 401.
    async with aiohttp.ClientSession() as anon:
        r = await anon.post(world.client.make_url("/api/reveal"),
                            json={"entity": "customer", "id": world.zhang, "field": "name", "reason": "客户要求"})
        assert r.status == 401


async def test_audit_log_for_admins_with_filters(world) -> None:  # noqa: ANN001
    await world.reveal("agent", entity="customer", id=world.zhang, field="phone",
                       reason="客户说换号了，新号 13912345678，核对旧号")
    await world.reveal("dispatcher", entity="order", id=world.order1, field="address")
    await world.reveal("dispatcher", entity="order", id=world.order2, field="name")
    status, page = await world.audit(action="reveal")
    assert status == 200 and page["total"] == 3 and page["page"] == 1
    newest = page["entries"][0]
    assert newest["username"] == "dispatcher" and newest["entity"] == "work_order"
    assert newest["entity_id"] == str(world.order2) and newest["detail"] == {"field": "name"}
    assert dt.datetime.fromisoformat(newest["at"]).tzinfo is not None
    oldest = page["entries"][-1]
    # A number typed into the reason is masked before it is stored.
    assert oldest["reason"] == "客户说换号了，新号 139****5678，核对旧号"
    assert not find_mobiles(json.dumps(page, ensure_ascii=False))
    for value in SECRETS:
        assert value not in json.dumps(page, ensure_ascii=False)

    _, mine = await world.audit(user_id=world.users["dispatcher"])
    assert [e["entity_id"] for e in mine["entries"]] == [str(world.order2), str(world.order1)]
    _, by_entity = await world.audit(entity="work_order", entity_id=world.order1)
    assert by_entity["total"] == 1 and by_entity["entries"][0]["detail"] == {"field": "address"}
    _, paged = await world.audit(action="reveal", page=2, page_size=2)
    assert paged["total"] == 3 and len(paged["entries"]) == 1
    _, none = await world.audit(action="reveal", page=9)
    assert none["entries"] == [] and none["total"] == 3
    status, bad = await world.audit(page=0)
    assert status == 422 and bad["details"]["field"] == "page"

    for role in ("agent", "dispatcher", "engineer", "survey", "supervisor"):
        session = await world.as_(role)
        r = await session.get(world.client.make_url("/api/audit"))
        assert r.status == 403, role


# ---------------------------------------------------------------------------------------------
# Nothing personal outside the reveal: API answers, screen-pops, log lines


async def _seed_for_pop(db_url: str) -> None:
    vault = h.fixed_vault()
    engine = make_engine(db_url)
    await migrate(engine, vault=vault)
    sm = make_sessionmaker(engine)
    from callcenter.auth.services import AuthService

    auth = AuthService(sm, ttl_s=3600)
    for ext in ("8001", "8002"):
        await auth.add_user(f"agent{ext}", role="agent", password=h.PASSWORD, extension=ext)
    await auth.add_user("supervisor", role="supervisor", password=h.PASSWORD)
    await auth.add_user("admin", role="admin", password=h.PASSWORD)
    async with sm.begin() as s:
        c = Customer(name=ZHANG["name"], level="VIP", remarks="备用电话 13912345678", created_at=NOW,
                     phones=[sealed_phone(vault, "13800138000", "mobile"),
                             sealed_phone(vault, "01088886666", "landline")],
                     addresses=[Address(province="广东省", city="深圳市", district="南山区",
                                        detail=ZHANG["address"]["detail"])])
        s.add(c)
        await s.flush()
        s.add(WorkOrder(number="WO20261124-009", customer_id=c.id, status="待处理",
                        problem="客户留言：打 13912345678 找家人", created_at=NOW - dt.timedelta(days=1)))
    await engine.dispose()


async def test_no_personal_data_in_answers_pops_or_logs(sqlite_url, aiohttp_client) -> None:
    await _seed_for_pop(sqlite_url)
    server = TranscriptReplayServer(TRANSCRIPTS / "inbound_answered.jsonl", speed=None)
    port = await server.start()
    sockets: list[h.AgentSocket] = []
    sessions: list[aiohttp.ClientSession] = []
    with LogScan(secrets=SECRETS) as logs:
        try:
            client = await h.start(aiohttp_client, h.settings_for(sqlite_url, port))
            sockets = [await h.connect(client, ext, last_seq=0) for ext in ("8001", "8002")]
            await wait_for(lambda: server.done.is_set(), 20, message="replay finished")
            await wait_for(lambda: any(m["type"] == "call.ringing" and m.get("history")
                                       for s in sockets for m in s.messages), 10, message="a pop")
            app = client.server.app
            await wait_for(lambda: not app[POPS].busy and not app[RECORDER].pending, 5,
                           message="lookups done and records written")
            ring = next(m for s in sockets for m in s.messages if m["type"] == "call.ringing")
            assert ring["call"]["caller"] == "138****8000" and ring["customer"]["name"] == "张**"
            assert scan_messages([m for s in sockets for m in s.messages], secrets=SECRETS) >= 2

            sessions = [await h.login(client, "8001"), await login_as(client, "supervisor"),
                        await login_as(client, "admin")]
            agent, supervisor, admin = (ScanningClient(client, session=s, secrets=SECRETS)
                                        for s in sessions)
            r = await agent.get("/api/customers", params={"phone": "+86 138 0013 8000"})
            found = await r.json()
            assert r.status == 200 and found["customer_id"] is not None
            cid = found["customer_id"]
            assert (await agent.get(f"/api/customers/{cid}")).status == 200
            r = await agent.post("/api/customers", json={**LI, "remarks": "另一个号码 13700009999"})
            assert r.status == 201
            assert (await agent.post("/api/customers", json=LI)).status == 409  # number taken
            assert (await agent.post("/api/customers", json={**LI, "phones": ["1390000111x"]})).status == 422
            r = await agent.get("/api/customers", params={"phone": "13911112222"})
            assert (await r.json())["history"]["new_caller"] is True
            day = dt.datetime.fromisoformat(ring["call"]["started_at"]).astimezone(
                app[SETTINGS].tz).date().isoformat()
            for who in (agent, supervisor):
                r = await who.get("/api/calls", params={"date": day})
                assert r.status == 200 and (await r.json())["calls"], await r.text()
            # The reveal answers the number (the scanner would catch it) and is audited.
            r = await agent.post("/api/reveal", json={"entity": "customer", "id": cid,
                                                      "field": "phone", "reason": "回电核实"})
            assert set(find_mobiles(await r.text())) == {"13800138000"}  # value and values
            r = await admin.get("/api/audit")
            assert (await r.json())["entries"][0]["action"] == "reveal"
            assert agent.scanned >= 7 and supervisor.scanned == 1
        finally:
            for sock in sockets:
                await sock.close()
            for s in sessions:
                await s.close()
            await server.stop()
    assert logs.lines, "the app logged nothing at INFO: the scan saw nothing"


@pytest.mark.parametrize(("text", "found"), [
    ("13800138000", ["13800138000"]),
    ("call +86 138 0013 8000 now", ["13800138000"]),
    ("0086-138-0013-8000", ["13800138000"]),
    ("013800138000", ["13800138000"]),
    ('{"caller": "8613800138000"}', ["13800138000"]),
    ("138****8000 and 010****6666", []),
    ("linkedid 1795342910.6, at 1732345678901 ms", []),  # ids and timestamps are no phones
    ("12345678901", []),  # 12… is no mobile prefix
    ("2024-05-20 13800", []),
])
def test_the_scanner_finds_mobiles_in_any_spelling(text, found) -> None:  # noqa: ANN001
    assert find_mobiles(text) == found

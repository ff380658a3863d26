"""GET /api/orders: every filter, combinations, paging, masking, engineer scoping and 422s, on
SQLite and PostgreSQL (a small app around the real handler, with a fake login)."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from callcenter.appkeys import ENGINE, SETTINGS, VAULT
from callcenter.auth.identity import USER, CurrentUser
from callcenter.crypto import PhoneVault, new_key_spec
from callcenter.customers.phones import normalise
from callcenter.db.models import Address, Customer, CustomerPhone, IntakeRecord, User, WorkOrder
from callcenter.orders import search
from callcenter.orders.search_http import routes
from callcenter.settings import Settings
from callcenter.web.middleware import error_middleware

TZ = ZoneInfo("Asia/Shanghai")
DATA_KEYS, OLD_INDEX, NEW_INDEX = new_key_spec("k1"), new_key_spec("i1"), new_key_spec("i2")
AS = "X-Test-User"  # the fake login: "role" or "role:user_id"


@web.middleware
async def fake_auth(request: web.Request, handler):  # type: ignore[no-untyped-def]
    who = request.headers.get(AS)
    if who:
        role, _, uid = who.partition(":")
        request[USER] = CurrentUser(id=int(uid or 1), username=f"test-{role}", role=role)
    return await handler(request)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


class Seeded:
    """Ids of what :func:`seed` wrote: ``o[1]`` … ``o[5]``, the 25 paging orders, engineers."""

    def __init__(self) -> None:
        self.o: dict[int, int] = {}
        self.paging: list[int] = []
        self.e1 = self.e2 = 0


async def seed(sessionmaker, vault: PhoneVault) -> Seeded:  # type: ignore[no-untyped-def]
    ids = Seeded()
    now = local(23, 9)
    async with sessionmaker() as s, s.begin():
        def customer(name: str, phone: str, district: tuple[str, str, str]) -> Customer:
            n = normalise(phone)
            assert n is not None
            sealed = vault.seal(n.number)
            c = Customer(name=name, created_at=now,
                         phones=[CustomerPhone(number_index=sealed.index, number_enc=sealed.enc,
                                               masked=sealed.masked, kind=n.kind)],
                         addresses=[Address(province=district[0], city=district[1], district=district[2],
                                            detail="科技园路1号2栋301")])
            s.add(c)
            return c

        c1 = customer("张三", "13800138000", ("广东省", "深圳市", "南山区"))
        c2 = customer("张小明", "010-88886666", ("北京市", "北京市", "朝阳区"))
        c3 = customer("李四", "13912345678", ("浙江省", "杭州市", "西湖区"))
        e1 = User(username="eng1", display_name="王建国", password_hash="x", role="engineer",
                  created_at=now, staff_no="GY2024001")
        e2 = User(username="eng2", display_name="赵强", password_hash="x", role="engineer",
                  created_at=now, staff_no="GY2024002")
        s.add_all([e1, e2])
        await s.flush()
        intake = IntakeRecord(number="CR20261122-001", created_at=local(22, 11, 50), customer_id=c3.id,
                              product_model="XQG80", request_type="维修", problem="不脱水")
        s.add(intake)
        await s.flush()

        def order(k: int, number: str, c: Customer, model: str, serial: str, status: str,
                  urgency: str, created: dt.datetime, engineer: User | None = None, **kw) -> None:  # type: ignore[no-untyped-def]
            wo = WorkOrder(number=number, customer_id=c.id, address_id=c.addresses[0].id,
                           product_model=model, serial=serial, status=status, urgency=urgency,
                           problem="不制冷，客户说备用电话 13700001111", created_at=created,
                           engineer_id=engineer.id if engineer else None, **kw)
            s.add(wo)
            orders.append((k, wo))

        orders: list[tuple[int, WorkOrder]] = []
        order(1, "WO20261120-001", c1, "KFR-35GW/A", "SN-ABC001", "待处理", "普通", local(20, 9))
        order(2, "WO20261121-001", c1, "BCD-215", "SN-XYZ9", "已派单", "紧急", local(21, 10), e1)
        order(3, "WO20261121-002", c2, "KFR-26GW", "sn-lower1", "服务中", "特急", local(21, 23, 30), e2)
        order(4, "WO20261122-001", c3, "XQG80", "S4", "已完成", "普通", local(22, 0, 10), e1)
        order(5, "WO20261122-002", c3, "XQG80", "S5", "待修", "普通", local(22, 12), None,
              intake_id=intake.id, service_type="送修")
        for j in range(25):  # same created_at: the order must fall back to the id
            order(100 + j, f"WO20261110-{j + 1:03d}", c3, "KFR-50LW", f"P{j}", "已回访", "普通", local(10, 8))
        await s.flush()
        for k, wo in orders:
            if k >= 100:
                ids.paging.append(wo.id)
            else:
                ids.o[k] = wo.id
        ids.e1, ids.e2 = e1.id, e2.id
    ids.paging.sort(reverse=True)
    return ids


@pytest.fixture
def vault() -> PhoneVault:
    return PhoneVault.from_specs(DATA_KEYS, OLD_INDEX)


@pytest.fixture
async def client(aiohttp_client, engine, vault):  # type: ignore[no-untyped-def]
    app = web.Application(middlewares=[error_middleware, fake_auth])
    app[ENGINE], app[SETTINGS], app[VAULT] = engine, Settings().with_(timezone="Asia/Shanghai"), vault
    app.add_routes(routes)
    return await aiohttp_client(app)


@pytest.fixture
async def ids(sessionmaker, vault) -> Seeded:  # type: ignore[no-untyped-def]
    return await seed(sessionmaker, vault)


async def get(client, who: str = "agent", **params):  # type: ignore[no-untyped-def]
    r = await client.get("/api/orders", params=params, headers={AS: who} if who else {})
    return r.status, await r.json()


async def found(client, who: str = "agent", **params) -> list[int]:  # type: ignore[no-untyped-def]
    status, body = await get(client, who, **params)
    assert status == 200, body
    return [item["id"] for item in body["items"]]


async def test_phone_in_any_spelling(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    for spelling in ("13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "013800138000"):
        assert await found(client, phone=spelling) == [o[2], o[1]]
    assert await found(client, phone="0086 10-8888-6666") == [o[3]]
    assert await found(client, phone="13700000000") == []


async def test_phone_found_during_an_index_key_rotation(aiohttp_client, engine, sessionmaker, vault) -> None:  # type: ignore[no-untyped-def]
    ids = await seed(sessionmaker, vault)  # indexed under the old key
    app = web.Application(middlewares=[error_middleware, fake_auth])
    app[ENGINE], app[SETTINGS] = engine, Settings().with_(timezone="Asia/Shanghai")
    app[VAULT] = PhoneVault.from_specs(DATA_KEYS, f"{NEW_INDEX},{OLD_INDEX}")  # new key first
    app.add_routes(routes)
    client = await aiohttp_client(app)
    assert await found(client, phone="13800138000") == [ids.o[2], ids.o[1]]


async def test_name_prefix_and_exact(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    assert await found(client, name="张") == [o[3], o[2], o[1]]
    assert await found(client, name="张三") == [o[2], o[1]]
    assert await found(client, name="张小") == [o[3]]
    assert await found(client, name="王") == []
    assert await found(client, name="%") == []  # wildcards are literal
    assert await found(client, name="*") == []


async def test_order_and_intake_numbers_exact_and_prefix(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    assert await found(client, number="WO20261121-001") == [o[2]]
    assert await found(client, number="wo20261121") == [o[3], o[2]]
    assert await found(client, number="WO2026112", page_size=100) == [o[5], o[4], o[3], o[2], o[1]]
    assert await found(client, number="WO20261110-01", page_size=100) == ids.paging[6:16]  # serials 010…019
    assert await found(client, number="CR20261122-001") == [o[5]]
    assert await found(client, number="CR202611") == [o[5]]
    assert await found(client, number="WO20261121-009") == []


async def test_model_prefix_and_serial_exact_any_case(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    assert await found(client, model="KFR-35GW/A") == [o[1]]
    assert await found(client, model="kfr-35") == [o[1]]
    assert await found(client, model="KFR-2") == [o[3]]
    assert await found(client, serial="SN-ABC001") == [o[1]]
    assert await found(client, serial="sn-abc001") == [o[1]]
    assert await found(client, serial="SN-LOWER1") == [o[3]]
    assert await found(client, serial="SN-ABC") == []  # serials match whole


async def test_engineer_by_id_or_staff_number(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    assert await found(client, engineer="GY2024001") == [o[4], o[2]]
    assert await found(client, engineer="gy2024001") == [o[4], o[2]]
    assert await found(client, engineer=str(ids.e2)) == [o[3]]
    assert await found(client, engineer="GY0000000") == []


async def test_statuses_urgency_and_combinations(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    r = await client.get("/api/orders?status=已派单&status=服务中", headers={AS: "agent"})
    assert [i["id"] for i in (await r.json())["items"]] == [o[3], o[2]]
    assert await found(client, status="已派单,服务中") == [o[3], o[2]]
    assert await found(client, status="待修") == [o[5]]
    assert await found(client, urgency="特急") == [o[3]]
    assert await found(client, urgency="紧急,特急") == [o[3], o[2]]
    assert await found(client, name="张三", status="已派单") == [o[2]]
    assert await found(client, phone="13800138000", number="WO20261121-002") == []
    assert await found(client, model="XQG", engineer="GY2024001", urgency="普通") == [o[4]]


async def test_date_range_in_the_centres_time_zone(client, ids) -> None:  # type: ignore[no-untyped-def]
    o = ids.o
    # o4 was created at 00:10 on the 22nd in Shanghai (16:10 UTC on the 21st).
    assert await found(client, **{"from": "2026-11-22", "to": "2026-11-22"}) == [o[5], o[4]]
    assert await found(client, **{"from": "2026-11-21", "to": "2026-11-21"}) == [o[3], o[2]]
    assert await found(client, **{"from": "2026-11-21"}) == [o[5], o[4], o[3], o[2]]
    assert await found(client, to="2026-11-20", page_size=100) == [o[1], *ids.paging]


async def test_paging_is_stable_and_complete(client, ids) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    for page, (n, more) in enumerate([(10, True), (10, True), (5, False)], start=1):
        status, body = await get(client, model="KFR-50LW", page=page, page_size=10)
        assert status == 200
        assert len(body["items"]) == n and body["has_more"] is more
        assert body["total"] == 25 and body["total_capped"] is False
        seen += [i["id"] for i in body["items"]]
    assert seen == ids.paging  # newest first; equal times by id, descending; nothing twice
    status, body = await get(client, model="KFR-50LW", page=4, page_size=10)
    assert body["items"] == [] and body["total"] == 25 and body["has_more"] is False
    status, body = await get(client)
    assert status == 200 and len(body["items"]) == 20 and body["total"] == 30


async def test_results_are_masked(client, ids) -> None:  # type: ignore[no-untyped-def]
    status, body = await get(client, name="张")
    by_id = {i["id"]: i for i in body["items"]}
    first = by_id[ids.o[2]]
    assert first["customer"]["name"] == "张*" and first["customer"]["phone"] == "138****8000"
    assert first["address"] == "广东省深圳市南山区"
    assert first["engineer"] == {"id": ids.e1, "name": "王**", "staff_no": "GY2024001"}
    assert first["number"] == "WO20261121-001" and first["created_at"] == "2026-11-21T10:00:00+08:00"
    assert by_id[ids.o[3]]["customer"] == {"id": by_id[ids.o[3]]["customer"]["id"], "name": "张**",
                                            "phone": "010****6666"}
    assert by_id[ids.o[3]]["address"] == "北京市朝阳区"
    text = json.dumps(body, ensure_ascii=False)
    assert not re.search(r"\d{11}", text)
    assert "张三" not in text and "科技园" not in text and "建国" not in text
    assert "137****1111" in first["problem"]


async def test_engineers_see_only_their_own_orders(client, ids) -> None:  # type: ignore[no-untyped-def]
    o, me = ids.o, f"engineer:{ids.e1}"
    assert await found(client, me) == [o[4], o[2]]
    assert await found(client, me, engineer=str(ids.e2)) == []
    assert await found(client, me, phone="010 8888 6666") == []
    assert await found(client, me, phone="13800138000") == [o[2]]
    status, body = await get(client, me)
    assert body["total"] == 2


@pytest.mark.parametrize(("params", "field"), [
    ({"phone": "abc"}, "phone"),
    ({"phone": ""}, "phone"),
    ({"number": "XX123"}, "number"),
    ({"number": "WO2026-1"}, "number"),
    ({"engineer": "a b"}, "engineer"),
    ({"status": "完成了"}, "status[0]"),
    ({"urgency": "很急"}, "urgency[0]"),
    ({"from": "2026-13-01"}, "from"),
    ({"from": "2026-11-22", "to": "2026-11-21"}, "to"),
    ({"page": "0"}, "page"),
    ({"page": "x"}, "page"),
    ({"page_size": "101"}, "page_size"),
    ({"page": "1000", "page_size": "100"}, "page"),
    ({"name": "x" * 65}, "name"),
    ({"sort": "id"}, "sort"),
])
async def test_bad_input_is_a_422_naming_the_field(client, params, field) -> None:  # type: ignore[no-untyped-def]
    status, body = await get(client, **params)
    assert status == 422, body
    assert body["error"] == "validation_failed" and body["details"]["field"] == field
    assert body["details"]["reason"]


async def test_login_required_and_every_staff_role_may_search(client, ids) -> None:  # type: ignore[no-untyped-def]
    status, _ = await get(client, "")
    assert status == 401
    for role in ("agent", "dispatcher", "survey", "supervisor", "admin"):
        assert len(await found(client, role)) == 20


def test_prefix_patterns_escape_wildcards() -> None:
    from sqlalchemy import column

    pg = search.prefix_match(column("n"), "50%_a\\", "postgresql")
    assert pg.right.value == "50\\%\\_a\\\\%"  # type: ignore[attr-defined]
    lite = search.prefix_match(column("n"), "a*b?[c", "sqlite")
    assert lite.right.value == "a[*]b[?][[]c*"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "number"), [
    ("wo20261123-001", "WO20261123-001"), (" CR2026 ", "CR2026"), ("WO", "WO"), ("WO20261123-", "WO20261123-"),
])
def test_parse_number(text: str, number: str) -> None:
    assert search.parse_number(text) == number


def test_local_day_bounds_follow_the_time_zone() -> None:
    start, end = search.local_day_bounds(dt.date(2026, 11, 22), dt.date(2026, 11, 22), TZ)
    assert start == dt.datetime(2026, 11, 21, 16, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC)
    assert search.local_day_bounds(None, None, TZ) == (None, None)

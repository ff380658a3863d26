"""Customer HTTP handlers through aiohttp_client, on a tiny app with a fake login."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp import web

from callcenter.auth import identity
from callcenter.auth.identity import CurrentUser
from callcenter.customers.http import routes
from callcenter.appkeys import CUSTOMER_SERVICE
from callcenter.customers.services import CustomerService
from tests.apphelpers import keyed_settings
from callcenter.web.middleware import error_middleware

ROLE_HEADER = "X-Test-Role"  # the fake login: this request's user has this role
USER = identity.USER  # where the auth middleware puts the user


@web.middleware
async def fake_auth(request: web.Request, handler):  # type: ignore[no-untyped-def]
    role = request.headers.get(ROLE_HEADER)
    if role:
        request[USER] = CurrentUser(id=42, username=f"test-{role}", role=role)
    return await handler(request)


@pytest.fixture
async def client(aiohttp_client, sessionmaker):  # type: ignore[no-untyped-def]
    app = web.Application(middlewares=[error_middleware, fake_auth])
    app[CUSTOMER_SERVICE] = CustomerService(sessionmaker, keyed_settings())
    app.add_routes(routes)
    return await aiohttp_client(app)


def as_role(role: str) -> dict[str, str]:
    return {ROLE_HEADER: role}


NEW = {
    "name": "欧阳娜娜",
    "phones": ["138 0013 8000", "+86 10 8888 6666"],
    "address": {"province": "广东省", "city": "广州市", "district": "天河区", "detail": "体育西路1号"},
    "appliances": [{"category": "空调", "brand": "美的", "model": "KFR-26GW", "serial": "X1",
                    "purchase_date": "2023-07-01", "warranty_months": 36}],
}


async def test_create_then_read_and_look_up(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/customers", json=NEW, headers=as_role("agent"))
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["name"] == "欧阳**"
    assert created["phones"] == ["138****8000", "010****6666"]
    assert created["address"] == "广东省广州市天河区"
    assert created["appliances"][0]["model"] == "KFR-26GW"
    assert created["appliances"][0]["warranty"]["expires"] == "2026-07-01"
    cid = created["id"]

    for role in ("agent", "supervisor", "admin", "dispatcher"):
        r = await client.get(f"/api/customers/{cid}", headers=as_role(role))
        assert r.status == 200
    body = await r.json()
    assert body["customer"]["id"] == cid and body["history"]["new_caller"] is False
    assert set(body["history"]) >= {"appliances", "open_orders", "recent_orders", "recent_calls",
                                    "calls_30d", "repeat_caller", "repeat_repair"}

    r = await client.get("/api/customers", params={"phone": "0086 10-8888-6666"}, headers=as_role("agent"))
    assert r.status == 200
    found = await r.json()
    assert found["customer_id"] == cid and found["history"]["caller"] == "010****6666"
    text = json.dumps(found, ensure_ascii=False)
    assert not re.search(r"\d{11}", text) and "娜娜" not in text and "体育西路" not in text

    r = await client.get("/api/customers", params={"phone": "13911112222"}, headers=as_role("agent"))
    unknown = await r.json()
    assert r.status == 200 and unknown["customer_id"] is None and unknown["customer"] is None
    assert unknown["history"]["new_caller"] is True


@pytest.mark.parametrize(("body", "field"), [
    ({**NEW, "name": ""}, "name"),
    ({**NEW, "phones": []}, "phones"),
    ({**NEW, "phones": ["13800138000", "138-0013-8000"]}, "phones[1]"),
    ({**NEW, "phones": ["hello"]}, "phones[0]"),
    ({**NEW, "appliances": [{"brand": "美的"}]}, "appliances[0].model"),
    ({**NEW, "appliances": [{"model": "M", "purchase_date": "01/07/2023"}]}, "appliances[0].purchase_date"),
    ({**NEW, "appliances": [{"model": "M", "warranty_months": 500}]}, "appliances[0].warranty_months"),
    ({**NEW, "address": "广州"}, "address"),
    ([1, 2], "body"),
])
async def test_create_field_errors_are_422(client, body, field) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/customers", json=body, headers=as_role("admin"))
    assert r.status == 422
    err = await r.json()
    assert err["error"] == "validation_failed" and err["details"]["field"] == field
    assert "13800138000" not in json.dumps(err)


async def test_malformed_json_is_422(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/customers", data=b"{not json", headers={**as_role("agent"),
                                                                      "Content-Type": "application/json"})
    assert r.status == 422 and (await r.json())["details"]["field"] == "body"


async def test_duplicate_phone_is_409_with_masked_number(client) -> None:  # type: ignore[no-untyped-def]
    first = await client.post("/api/customers", json=NEW, headers=as_role("agent"))
    assert first.status == 201
    r = await client.post("/api/customers", json={"name": "李四", "phones": ["010 8888 6666"]},
                          headers=as_role("agent"))
    assert r.status == 409
    err = await r.json()
    assert err["error"] == "conflict" and err["details"]["phone"] == "010****6666"
    assert "88886666" not in json.dumps(err)


async def test_not_logged_in_is_401(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/api/customers", json=NEW)).status == 401
    assert (await client.get("/api/customers/1")).status == 401
    assert (await client.get("/api/customers", params={"phone": "13800138000"})).status == 401


@pytest.mark.parametrize(("method", "path", "role"), [
    ("POST", "/api/customers", "supervisor"),
    ("POST", "/api/customers", "dispatcher"),
    ("POST", "/api/customers", "engineer"),
    ("GET", "/api/customers/1", "engineer"),
    ("GET", "/api/customers/1", "survey"),
    ("GET", "/api/customers?phone=13800138000", "engineer"),
])
async def test_wrong_role_is_403(client, method, path, role) -> None:  # type: ignore[no-untyped-def]
    r = await client.request(method, path, json=NEW, headers=as_role(role))
    assert r.status == 403 and (await r.json())["error"] == "forbidden"


async def test_missing_customer_is_404_and_bad_phone_422(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/api/customers/999999", headers=as_role("agent"))).status == 404
    for phone in ("", "anonymous", "abc"):
        r = await client.get("/api/customers", params={"phone": phone}, headers=as_role("agent"))
        assert r.status == 422 and (await r.json())["details"]["field"] == "phone"


async def test_a_new_address_is_placed_for_dispatch(client, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """Geocoded from the bundled district centres when the customer is created."""
    from sqlalchemy import select

    from callcenter.db.models import Address

    resp = await client.post("/api/customers", json=NEW, headers=as_role("agent"))
    assert resp.status == 201
    async with sessionmaker() as s:
        address = (await s.execute(select(Address))).scalar_one()
    assert (address.lat, address.lon) == (23.1247, 113.3613)  # 广州市天河区

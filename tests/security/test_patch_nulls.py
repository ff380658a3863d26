"""Finding 8 (null in a PATCH): a null where a value is required is refused with 422 naming the
field, on every PATCH schema, and the record stays readable; where null has a meaning (no
position known, no visit fee) it is still accepted."""

from __future__ import annotations

import aiohttp
import pytest

from callcenter.appkeys import AUTH
from tests import apphelpers as h


@pytest.fixture
async def admin(sqlite_url, aiohttp_client):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    auth = client.server.app[AUTH]
    await auth.add_user("boss", role="admin", password=h.PASSWORD)
    engineer = await auth.add_user("eng1", role="engineer", password=h.PASSWORD)
    session = aiohttp.ClientSession(base_url=client.make_url("/"), cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await session.post("/api/session", json={"username": "boss", "password": h.PASSWORD})
    assert r.status == 200
    yield session, engineer.id
    await session.close()


async def _refused(session, url: str, field: str) -> None:  # type: ignore[no-untyped-def]
    r = await session.patch(url, json={field: None})
    assert r.status == 422, (url, field, r.status, await r.text())
    body = await r.json()
    assert body["details"]["field"] == field and "不能为空" in body["details"]["reason"]


async def test_null_for_a_required_field_is_422_and_the_record_stays_readable(admin) -> None:  # type: ignore[no-untyped-def]
    session, engineer_id = admin
    url = f"/api/dispatch/engineers/{engineer_id}"
    assert (await session.patch(url, json={"load_cap": 3})).status == 200
    for field in ("working_hours", "load_cap", "active", "region"):
        await _refused(session, url, field)
    assert (await session.get(url)).status == 200
    r = await session.patch(url, json={"base_lat": None, "base_lon": None})  # "position unknown"
    assert r.status == 200, await r.text()

    r = await session.post("/api/dispatch/shops", json={"name": "朝阳网点", "lat": 39.92, "lon": 116.44})
    assert r.status == 201, await r.text()
    shop = f"/api/dispatch/shops/{(await r.json())['id']}"
    for field in ("name", "region", "categories", "capacity", "contact_name", "contact_phone", "active"):
        await _refused(session, shop, field)
    assert (await session.get(shop)).status == 200

    r = await session.post("/api/parts", json={"code": "P-1", "name": "电容", "unit_price_fen": 1200})
    assert r.status == 201, await r.text()
    part = f"/api/parts/{(await r.json())['id']}"
    for field in ("name", "model", "category", "unit_price_fen", "active"):
        await _refused(session, part, field)
    r = await session.post("/api/price-items", json={"category": "空调", "kind": "上门费", "name": "上门费",
                                                     "amount_fen": 3000})
    assert r.status == 201, await r.text()
    item = f"/api/price-items/{(await r.json())['id']}"
    for field in ("name", "amount_fen", "active"):
        await _refused(session, item, field)

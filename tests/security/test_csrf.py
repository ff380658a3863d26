"""Finding 2 (CSRF): a page on another origin — even another port of the same host, which
SameSite=Lax treats as the same site — cannot make a logged-in user's browser change anything."""

from __future__ import annotations

import aiohttp
import pytest

from callcenter.appkeys import AUTH
from tests import apphelpers as h

NEW = {"name": "欧阳娜娜", "phones": ["138 0013 8000"]}
OTHER_PORT = "http://127.0.0.1:1"  # same host, another port: same site, another origin


@pytest.fixture
async def agent(sqlite_url, aiohttp_client):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await h.add_agents(client, "8001")
    session = await h.login(client, "8001")
    yield client, session
    await session.close()


async def _on_file(client, session) -> bool:  # type: ignore[no-untyped-def]
    r = await session.get(client.make_url("/api/customers?phone=13800138000"))
    assert r.status == 200
    return (await r.json())["customer_id"] is not None


async def test_an_unsafe_request_from_another_origin_is_refused_and_changes_nothing(agent) -> None:
    client, session = agent
    url = client.make_url("/api/customers")
    for headers in ({"Origin": OTHER_PORT}, {"Origin": "null"},
                    {"Referer": OTHER_PORT + "/attack.html"}, {"Referer": "not a url"}):
        r = await session.post(url, json=NEW, headers=headers)
        assert r.status == 403, headers
        body = await r.json()
        assert body["error"] == "csrf" and "来源" in body["message"]
    assert not await _on_file(client, session)
    r = await session.delete(client.make_url("/api/session"), headers={"Origin": OTHER_PORT})
    assert r.status == 403  # a cross-site logout too
    assert (await session.get(client.make_url("/api/me"))).status == 200
    # The same request from an allowed page, or from an API client (no Origin, no Referer), is served.
    r = await session.post(url, json=NEW, headers={"Origin": h.ORIGIN})
    assert r.status == 201, await r.text()
    r = await session.post(url, json={**NEW, "phones": ["139 0013 9000"]},
                           headers={"Referer": h.ORIGIN + "/intake"})
    assert r.status == 201, await r.text()
    r = await session.post(url, json={**NEW, "phones": ["137 0013 7000"]})
    assert r.status == 201, await r.text()


async def test_a_text_plain_body_is_not_read_as_json(agent) -> None:
    client, session = agent
    url = client.make_url("/api/customers")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = await session.post(url, data=__import__("json").dumps(NEW).encode(),
                               headers={"Content-Type": ctype, "Origin": h.ORIGIN})
        assert r.status == 415, ctype
        body = await r.json()
        assert body["error"] == "unsupported_media_type" and "JSON" in body["message"]
    assert not await _on_file(client, session)
    # The login too: a cross-site form must not log the victim in to the attacker's account.
    r = await session.post(client.make_url("/api/session"), data=b'{"username":"agent8001","password":"x"}',
                           headers={"Content-Type": "text/plain"})
    assert r.status == 415


async def test_the_import_uploads_still_take_multipart(sqlite_url, aiohttp_client) -> None:
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await client.server.app[AUTH].add_user("boss", role="admin", password=h.PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        r = await s.post(client.make_url("/api/session"), json={"username": "boss", "password": h.PASSWORD})
        assert r.status == 200
        form = aiohttp.FormData()
        form.add_field("file", "姓名,电话\n张三,13800138000\n".encode(), filename="c.csv", content_type="text/csv")
        r = await s.post(client.make_url("/api/imports/customers"), data=form, headers={"Origin": h.ORIGIN})
        assert r.status == 200, await r.text()
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="c.csv", content_type="text/csv")
        r = await s.post(client.make_url("/api/imports/customers"), data=form, headers={"Origin": OTHER_PORT})
        assert r.status == 403

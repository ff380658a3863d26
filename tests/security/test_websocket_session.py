"""Finding 5 (a websocket outlives its session): when a login session ends — logout on any
instance, or expiry — every socket it opened is closed (code 4401) and gets no more pops."""

from __future__ import annotations

from callcenter.appkeys import MAILBOX
from callcenter.realtime.hub import SESSION_ENDED
from tests import apphelpers as h
from tests.waiting import wait_for


def _ended(sock: h.AgentSocket) -> bool:
    return sock.ws.closed and sock.ws.close_code == SESSION_ENDED


async def _agent_id(client, sock: h.AgentSocket) -> int:  # type: ignore[no-untyped-def]
    r = await sock.session.get(client.make_url("/api/me"))
    return (await r.json())["user"]["id"]


async def test_logout_closes_the_sessions_sockets(sqlite_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await h.add_agents(client, "8001")
    sock = await h.connect(client, "8001")
    other = await h.connect(client, "8001")  # the same agent logged in elsewhere: stays
    try:
        uid = await _agent_id(client, sock)
        r = await sock.session.delete(client.make_url("/api/session"))
        assert r.status == 200
        await wait_for(lambda: _ended(sock), 5, message="the socket of the ended session was closed")
        await client.server.app[MAILBOX].post(uid, {"type": "call.ringing", "call": {"id": "x"}})
        await wait_for(lambda: other.types() == ["call.ringing"], 5, message="the other session still gets pops")
        assert sock.types() == [] and not other.ws.closed
    finally:
        await sock.close()
        await other.close()


async def test_logout_on_one_instance_closes_sockets_on_another(sqlite_url, redis_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    a = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, redis_url=redis_url))
    b = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, redis_url=redis_url))
    await h.add_agents(a, "8001")
    sock = await h.connect(a, "8001")
    try:
        cookie = sock.session.cookie_jar.filter_cookies(a.make_url("/"))["cc_session"].value
        r = await b.delete("/api/session", cookies={"cc_session": cookie})
        assert r.status == 200
        await wait_for(lambda: _ended(sock), 5, message="instance A closed the socket B's logout ended")
    finally:
        await sock.close()


async def test_an_expired_session_closes_its_sockets(sqlite_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, session_ttl=2))
    await h.add_agents(client, "8001")
    sock = await h.connect(client, "8001")
    try:
        await wait_for(lambda: _ended(sock), 8, message="the socket closed when its session expired")
    finally:
        await sock.close()

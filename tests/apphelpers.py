"""Running the real application in tests: settings, agents, logged-in websockets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from callcenter.appkeys import AUTH, SESSIONMAKER
from callcenter.app import init_app
from callcenter.auth.identity import USER, CurrentUser
from callcenter.crypto import PhoneVault
from callcenter.settings import Settings

ORIGIN = "http://agent-desk.test"
PASSWORD = "pass-word-1"


def _fixed_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(hashlib.sha256(b'callcenter-tests-' + kid.encode()).digest()).decode()}"


# Fixed, public phone keys for tests: apps started here and rows seeded by tests share them
# (and no test writes a generated key file).
TEST_KEYS = {"data_keys": _fixed_key("td1"), "index_keys": _fixed_key("ti1")}


def fixed_vault() -> PhoneVault:
    """The vault of ``TEST_KEYS`` (what ``settings_for``'s apps and ``keyed_settings`` use)."""
    return PhoneVault.from_specs(TEST_KEYS["data_keys"], TEST_KEYS["index_keys"])


# Background work that would act on what a test sets up: the dispatch loop on every order it
# creates, the outbound dialler on every abandoned call (a test of either turns it on).
QUIET = {"dispatch_interval": 0, "outbound_interval": 0}


def keyed_settings(**changes: object) -> Settings:
    """``Settings()`` with the test keys (and :data:`QUIET`)."""
    return Settings().with_(**{**TEST_KEYS, **QUIET, **changes})


def settings_for(db_url: str, ami_port: int, *, redis_url: str | None = None, **extra) -> Settings:
    return Settings().with_(**{
        **TEST_KEYS,
        "database_url": db_url, "redis_url": redis_url, "ami_host": "127.0.0.1",
        "ami_port": ami_port, "allowed_origins": (ORIGIN,), "ami_ping_interval": 0.5,
        "ami_ping_timeout": 1.0, "ami_reconnect_min": 0.05, "ami_reconnect_max": 0.3,
        **QUIET, **extra})


async def start(aiohttp_client, settings: Settings):  # type: ignore[no-untyped-def]
    """The app under aiohttp's test server (cleanup_ctx runs: DB, bus, AMI …)."""
    return await aiohttp_client(init_app(settings))


async def add_agents(client, *extensions: str) -> None:  # type: ignore[no-untyped-def]
    app = client.server.app
    for ext in extensions:
        await app[AUTH].add_user(f"agent{ext}", role="agent", password=PASSWORD, extension=ext)
    from callcenter.appkeys import AGENTS

    await app[AGENTS].refresh()


@dataclass
class AgentSocket:
    ext: str
    ws: aiohttp.ClientWebSocketResponse
    session: aiohttp.ClientSession
    messages: list[dict] = field(default_factory=list)
    reader: asyncio.Task | None = None

    def types(self, call_id: str | None = None) -> list[str]:
        return [m["type"] for m in self.messages
                if m["type"].startswith("call.") and (call_id is None or m["call"]["id"] == call_id)]

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader
        await self.session.close()


async def login(client, ext: str) -> aiohttp.ClientSession:  # type: ignore[no-untyped-def]
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await session.post(client.make_url("/api/session"), json={"username": f"agent{ext}", "password": PASSWORD})
    assert r.status == 200, await r.text()
    return session


async def connect(client, ext: str, last_seq: int | None = None,  # type: ignore[no-untyped-def]
                  session: aiohttp.ClientSession | None = None) -> AgentSocket:
    session = session or await login(client, ext)
    url = client.make_url("/ws" + (f"?last_seq={last_seq}" if last_seq is not None else ""))
    ws = await session.ws_connect(url, headers={"Origin": ORIGIN})
    sock = AgentSocket(ext, ws, session)

    async def read() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                sock.messages.append(json.loads(msg.data))

    sock.reader = asyncio.create_task(read())
    return sock


def sessionmaker_of(client):  # type: ignore[no-untyped-def]
    return client.server.app[SESSIONMAKER]


@web.middleware
async def header_login(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """A test middleware standing in for the session cookie: ``X-Test-User: <id>:<role>``.

    For tests that mount one feature's routes on a bare app (no auth service)."""
    who = request.headers.get("X-Test-User")
    if who:
        uid, role = who.split(":")
        request[USER] = CurrentUser(id=int(uid), username=f"user{uid}", role=role)
    return await handler(request)

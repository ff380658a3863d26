"""The real server on a real port, for the security tests that need a browser or raw sockets."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from callcenter.app import init_app
from tests.apphelpers import keyed_settings


@dataclass
class Site:
    url: str  # the origin, http://127.0.0.1:PORT
    app: web.Application


@asynccontextmanager
async def running_site(database_url: str, **settings: object) -> AsyncIterator[Site]:
    """The whole application (no AMI to reach: the web side serves regardless) on a free port,
    its own origin allowed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    app = init_app(keyed_settings(database_url=database_url, ami_host="127.0.0.1", ami_port=1,
                                  ami_reconnect_min=1.0, ami_reconnect_max=5.0, http_host="127.0.0.1",
                                  http_port=port, allowed_origins=(origin,), sla_interval=0.0,
                                  notify_interval=0.0, **settings))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield Site(origin, app)
    finally:
        await runner.cleanup()
        sock.close()

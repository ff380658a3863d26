"""Wiring of agent states and the wallboard: the cleanup context that builds the shared store,
the command relay, the :class:`AgentStateService` and the work-side refresher.

Websockets of the wallboard are registered in the app's :class:`~callcenter.realtime.hub.
WebsocketHub` under the reserved id :data:`WALLBOARD_ID` (no user has it): each keeps its own
bounded queue and is dropped if it falls behind, and shutdown closes them with the others
(``GOING_AWAY``). A snapshot is serialised once and the same text goes to every socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from callcenter.agentstate.services import AgentStateService
from callcenter.agentstate.store import (
    LocalCommandRelay,
    LocalLiveStore,
    RedisCommandRelay,
    RedisLiveStore,
)
from callcenter.appkeys import (
    AGENT_RELAY,
    AGENT_STATE,
    AGENTS,
    ENGINE,
    HUB,
    LEADERSHIP,
    LIVE_STORE,
    MAILBOX,
    REDIS,
    SETTINGS,
    WORK_BOARD,
)
from callcenter.wallboard.metrics import Thresholds
from callcenter.wallboard.work import work_side

log = logging.getLogger("callcenter.wallboard")

# The hub id wallboard sockets are filed under; user ids are ≥ 1.
WALLBOARD_ID = -1
# Seconds between two readings of the work side while a wallboard is open on this instance.
WORK_INTERVAL = 15.0


class WorkBoard:
    """This instance's latest reading of the work side, refreshed while wallboards are open."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.latest: dict[str, Any] | None = None
        self.latest_text: str | None = None
        # Wallboard sockets open on this instance (the work side is read only while > 0).
        self.clients = 0

    async def refresh(self) -> dict[str, Any]:
        import json

        app = self._app
        async with app[ENGINE].connect() as conn:
            data = await work_side(conn, dt.datetime.now(dt.UTC), app[SETTINGS].tz)
        self.latest = data
        self.latest_text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        app[HUB].deliver(WALLBOARD_ID, {"_text": self.latest_text})
        return data

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WORK_INTERVAL)
            if self.clients <= 0:
                continue
            try:
                await self.refresh()
            except Exception:
                log.exception("wallboard: reading the work side failed")


async def _stop(*tasks: asyncio.Task) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def wallboard_ctx(app: web.Application) -> AsyncIterator[None]:
    """Before ``ami_ctx`` (which attaches the service to the connector)."""
    s, redis, hub = app[SETTINGS], app[REDIS], app[HUB]
    tasks: list[asyncio.Task] = []
    store: Any = LocalLiveStore() if redis is None else RedisLiveStore(redis)
    store.on_update(lambda text: hub.deliver(WALLBOARD_ID, {"_text": text}))
    service = AgentStateService(
        agents=app[AGENTS], store=store, mailbox=app[MAILBOX], engine=app[ENGINE], tz=s.tz,
        reasons=s.pause_reasons, wrapup_s=s.wrapup_s, interface_template=s.agent_interface,
        thresholds=Thresholds(s.wallboard_max_wait_s, s.wallboard_min_service_level))
    if redis is None:
        relay: Any = LocalCommandRelay(service.execute)
    else:
        leadership = app[LEADERSHIP]
        relay = RedisCommandRelay(redis, service.execute, lambda: leadership.is_leader)
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(store.run(ready.set), name="wallboard-sub"))
        tasks.append(asyncio.create_task(relay.serve(), name="agentstate-relay"))
        await asyncio.wait_for(ready.wait(), 10)
    app[LIVE_STORE], app[AGENT_STATE], app[AGENT_RELAY] = store, service, relay
    app[WORK_BOARD] = work = WorkBoard(app)
    tasks.append(asyncio.create_task(service.run(), name="agentstate-tick"))
    tasks.append(asyncio.create_task(work.run(), name="wallboard-work"))
    yield
    await _stop(*tasks)
    await service.close()

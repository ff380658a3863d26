"""GET /ws — the agent's websocket.

Cookie auth; the Origin must be in the allow-list (a page on another site cannot ride the
agent's cookie); ``?last_seq=N`` replays what the agent missed (bounded). Server → client
messages: ``hello`` (not numbered), then numbered ``call.*`` messages, or ``resync`` when the
gap is larger than what is kept. Client → server: ``{"type": "ping"}`` → ``{"type": "pong"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from callcenter.appkeys import AUTH, CONNECTOR, HUB, LEADERSHIP, MAILBOX
from callcenter.auth.services import AuthService
from callcenter.realtime.hub import SESSION_ENDED
from callcenter.errors import ValidationFailed
from callcenter.web.origins import check_origin
from callcenter.web.middleware import COOKIE, current_user

log = logging.getLogger("callcenter.ws")
_SEQ = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is True)
routes = web.RouteTableDef()


def _dumps(o: dict) -> str:
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))


def session_of(request: web.Request) -> str | None:
    """The key of the login session behind the request's cookie (None without a cookie)."""
    token = request.cookies.get(COOKIE)
    return AuthService.session_key(token) if token else None


async def close_when_session_expires(ws: web.WebSocketResponse, auth: AuthService, key: str) -> None:
    """Close ``ws`` (code 4401) once its login session has expired — looked up again when it
    is due, since requests slide the expiry — or is gone. A logout closes it sooner, on every
    instance, through the mailbox (``WebsocketHub.end_session``). Cancelled with the socket."""
    while not ws.closed:
        try:
            left = await auth.seconds_left(key)
        except Exception:  # the database is away: keep the socket, look again soon
            log.warning("ws: could not read a session's expiry; retrying", exc_info=True)
            await asyncio.sleep(30.0)
            continue
        if left is None:
            await ws.close(code=SESSION_ENDED, message=b"session ended")
            return
        await asyncio.sleep(min(left + 0.05, 3600.0))


def watch_session(request: web.Request, ws: web.WebSocketResponse) -> asyncio.Task | None:
    """Start :func:`close_when_session_expires` for this socket; the caller cancels it."""
    key = session_of(request)
    if key is None:
        return None
    return asyncio.create_task(close_when_session_expires(ws, request.app[AUTH], key), name="ws-session")


async def answer_pings(ws: web.WebSocketResponse, client: Any, pong: Callable[[], str]) -> None:
    """Read the client's frames until it goes: ``{"type": "ping"}`` is answered with ``pong()``
    through the client's queue (a client too slow to take it is dropped); nothing else is
    expected."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            data = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "ping":
            try:
                client.queue.put_nowait(pong())
            except Exception:
                client.drop()


@routes.get("/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    check_origin(request)
    user = current_user(request)
    raw = request.query.get("last_seq")
    last_seq: int | None = None
    if raw is not None:
        if not _SEQ.fullmatch(raw):
            raise ValidationFailed("last_seq", "a whole number ≥ 0")
        last_seq = int(raw)

    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    hub, mailbox = request.app[HUB], request.app[MAILBOX]
    client = hub.add(ws, user.id, last_seq or 0, session=session_of(request))
    watch = watch_session(request, ws)
    try:
        current, missed = await mailbox.since(user.id, last_seq if last_seq is not None else 1 << 62)
        connector = request.app.get(CONNECTOR)
        hello = {"type": "hello", "seq": current,
                 "user": {"id": user.id, "username": user.username, "role": user.role,
                          "display_name": user.display_name, "extension": user.extension},
                 "ami": connector.state if connector is not None and request.app[LEADERSHIP].is_leader else "remote"}
        client.queue.put_nowait(_dumps(hello))
        if last_seq is None:
            client.last_seq = current
            client.finish_replay([])
        elif missed is None or last_seq > current:
            # Too far behind, or ahead of us (numbers restarted: an in-process mailbox after a
            # restart): the client must reload what it shows instead of replaying.
            client.queue.put_nowait(_dumps({"type": "resync", "seq": current,
                                            "reason": "missed messages are no longer kept"}))
            client.last_seq = current
            client.finish_replay([])
        else:
            client.finish_replay(missed)
        await answer_pings(ws, client, lambda: _dumps({"type": "pong", "seq": client.last_seq}))
    finally:
        hub.remove(client)
        if watch is not None:
            watch.cancel()
    return ws

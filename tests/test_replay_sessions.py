"""TranscriptReplayServer on a recording of several TCP sessions (project_dialplans_session:
Asterisk restarted mid-way), over real TCP."""

from __future__ import annotations

import asyncio

from callcenter.ami.codec import encode_action
from callcenter.simulator.replay import TranscriptReplayServer, load_transcript
from tests.transcripts import TRANSCRIPTS, load, sessions

NAME = "project_dialplans_session"
PATH = TRANSCRIPTS / f"{NAME}.jsonl"


def _login_ids() -> list[str]:
    return [f.msg["ActionID"] for f in load(NAME)
            if f.dir == "out" and f.msg is not None and f.msg.get("Action") == "Login"]


async def _session(port: int, login_id: str, until: bytes) -> tuple[bytes, bool]:
    """Log in with the recorded ActionID; read until ``until`` has arrived (and, if the server
    closes the socket, to its end). Returns the bytes and whether the socket was closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_action("Login", login_id, {"Username": "callcenter", "Secret": "x"}))
    data = b""
    closed = False
    try:
        async with asyncio.timeout(10):
            while until not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        try:
            async with asyncio.timeout(0.3):
                closed = closed or not await reader.read(65536)
        except TimeoutError:
            pass
    finally:
        writer.close()
    return data, closed


def test_notes_and_meta_lines_are_skipped_and_sessions_numbered() -> None:
    frames = load_transcript(PATH)
    recorded = [f for f in load(NAME) if f.dir in ("in", "out")]
    assert len(frames) == len(recorded)
    assert [f.session for f in frames] == [f.session for f in recorded]
    assert {f.session for f in frames} == {0, 1}


async def test_first_session_by_default_socket_left_open() -> None:
    first, _ = sessions(NAME)
    async with TranscriptReplayServer(PATH, speed=None) as server:
        assert server.port is not None
        data, closed = await _session(server.port, _login_ids()[0], b"Restart: True\r\n\r\n")
        await asyncio.wait_for(server.done.wait(), 5)
    assert data == first and not closed


async def test_all_sessions_one_per_connection_closed_at_the_restart() -> None:
    first, second = sessions(NAME)
    ids = _login_ids()
    async with TranscriptReplayServer(PATH, speed=None, all_sessions=True) as server:
        assert server.port is not None
        data, closed = await _session(server.port, ids[0], b"Restart: True\r\n\r\n")
        assert data == first and closed and not server.done.is_set()
        tail = second.rsplit(b"\r\n\r\n", 2)[-2] + b"\r\n\r\n"
        data, closed = await _session(server.port, ids[1], tail)
        await asyncio.wait_for(server.done.wait(), 5)
    assert data == second and not closed
    assert b"Uptime: 0\r\nLastReload: 0\r\n" in data

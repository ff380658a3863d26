"""The simulator against the real Asterisk 22 recordings, over real TCP sockets.

Expectations are read from ``shared/asterisk/transcripts`` at test time: header names and
their order per event type (repeated headers included), Privilege values, response texts, and
the order of the key events of each scenario. A simulator that drifts from the recordings fails
here. The lab recordings were made with the lab's manager.conf (no ``channelvars``), so the
simulators replaying them run with ``channelvars=()``; ``project_dialplans_session`` was made
with the project's ``dialplans/manager.conf`` (``channelvars = CALLBACK_JOB,WORK_ORDER``), the
simulator's default.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from callcenter.ami.codec import (
    TERMINATOR,
    Malformed,
    channel_variables,
    encode_action,
    parse_frame,
    variables_by_channel,
)
from callcenter.simulator.config import (
    PROJECT_CHANNELVARS,
    MemberConfig,
    QueueConfig,
    SimulatorConfig,
)
from callcenter.simulator.server import AmiSimulator
from tests import transcripts

SCALE = 0.02  # simulated seconds → wall seconds (50x faster than real time)
USER, SECRET = "callcenter", "s3cret-ami"
REPO = Path(__file__).resolve().parents[1]
PROJECT = "project_dialplans_session"
VARS = PROJECT_CHANNELVARS
UNIQUEID = re.compile(r"^\d{10}\.\d+$")
LOCAL_HALF = re.compile(r"^Local/[^@;]+@[a-z-]+-[0-9a-f]{8};[12]$")
KEY_EVENTS = (
    "Newchannel", "LocalBridge", "QueueCallerJoin", "AgentCalled", "DialBegin",
    "AgentRingNoAnswer", "DialEnd", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect",
    "BridgeCreate", "AgentComplete", "BridgeDestroy",
)


# ---- the recordings -----------------------------------------------------------------------

class Msg(dict[str, str]):
    """One AMI message as the codec reads it (repeated headers joined by "\\n"), plus
    ``heads``: its header names in wire order, repeats included, ``ChanVariable(<name>)`` keys
    written ``ChanVariable(<channel>)`` — what "the same headers in the same order" compares."""

    heads: tuple[str, ...] = ()


def heads_of(raw: str) -> tuple[str, ...]:
    out = []
    for line in raw.split("\r\n"):
        if not line:
            continue
        if line.startswith("ChanVariable(") and "):" in line:
            out.append("ChanVariable(<channel>)")
        else:
            out.append(line.partition(":")[0])
    return tuple(out)


def message(raw: str) -> Msg:
    parsed = parse_frame(raw.encode())
    assert isinstance(parsed, dict), (parsed, raw[:200])
    m = Msg(parsed)
    m.heads = heads_of(raw)
    return m


def _parse(frame: str) -> Msg:
    return message(frame)


@cache
def recording(name: str) -> list[tuple[float | None, str, Msg]]:
    """Every banner, message and note of a recording (tests/transcripts.py reads it; "meta"
    connect/disconnect lines are left out): (t_ms, dir, message); a banner is
    ``{"__banner__": line}``, a note ``{"__note__": text}``."""
    rows: list[tuple[float | None, str, Msg]] = []
    for f in transcripts.load(name):
        if f.dir == "meta":
            continue
        if f.dir == "note":
            rows.append((f.t_ms, f.dir, Msg({"__note__": f.raw})))
        elif f.msg is None:
            rows.append((f.t_ms, f.dir, Msg({"__banner__": f.raw})))
        else:
            rows.append((f.t_ms, f.dir, message(f.raw)))
    return rows


def recorded_in(name: str) -> list[Msg]:
    return [m for _, d, m in recording(name) if d == "in" and "__banner__" not in m]


@cache
def shapes(*names: str) -> dict[str, set[tuple[str, ...]]]:
    """Event name (or "Response") → every header order recorded for it (in ``names``, or in
    every recording)."""
    out: dict[str, set[tuple[str, ...]]] = {}
    for name in names or transcripts.NAMES:
        for m in recorded_in(name):
            out.setdefault(m.get("Event", "Response"), set()).add(m.heads)
    return out


@cache
def privileges() -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for name in transcripts.NAMES:
        for m in recorded_in(name):
            if "Event" in m:
                out.setdefault(m["Event"], set()).add(m.get("Privilege"))
    return out


def response_to(name: str, action_id: str) -> Msg:
    return next(m for m in recorded_in(name)
                if "Response" in m and "Event" not in m and m.get("ActionID") == action_id)


def recorded_actions(name: str) -> list[tuple[float, str]]:
    """The recording's own actions (t_ms, raw frame), login and logoff excluded."""
    out = []
    for t_ms, d, m in recording(name):
        if d == "out" and m.get("Action", "") not in ("Login", "Logoff"):
            assert t_ms is not None
            out.append((t_ms, "".join(f"{k}: {v}\r\n" for k, v in m.items())))
    return out


def key_sequence(msgs: list[Msg], linkedid: str | None = None) -> list[str]:
    """Key events, optionally of one call (its Linkedid, Dest/LocalOne included)."""
    out = []
    for m in msgs:
        if m.get("Event") not in KEY_EVENTS:
            continue
        if linkedid is not None and linkedid not in (
            m.get("Linkedid"), m.get("DestLinkedid"), m.get("LocalOneLinkedid")
        ) and m.get("Event") not in ("BridgeCreate", "BridgeDestroy"):
            continue
        out.append(m["Event"] + ("/" + m["DialStatus"] if "DialStatus" in m else ""))
    return out


_VAR_HEAD = re.compile(r"^(Dest|LocalOne|LocalTwo)?ChanVariable(\(<channel>\))?$")


def without_variables(m: Msg, channelvars: tuple[str, ...]) -> tuple[str, ...]:
    """``m``'s header names without its channel-variable headers, after checking that they
    are where Asterisk writes them: one ``{P}ChanVariable`` per configured variable, in
    configured order, right after every ``{P}Linkedid`` of a channel snapshot; the
    ``ChanVariable(<channel>)`` form only at the end of an OriginateResponse, for its Channel."""
    heads = getattr(m, "heads", None) or tuple(m)
    kind = m.get("Event", "Response")
    n = len(channelvars)
    out = []
    i = 0
    while i < len(heads):
        h = heads[i]
        assert not _VAR_HEAD.match(h), f"{kind}: stray {h} at {i} in {heads}"
        out.append(h)
        i += 1
        if h.endswith("Linkedid") and n:
            prefix = h[: -len("Linkedid")]
            block = heads[i:i + n]
            assert block == (prefix + "ChanVariable",) * n, f"{kind}: {prefix}Linkedid then {block}"
            values = m[prefix + "ChanVariable"].split("\n")
            assert [v.partition("=")[0] for v in values] == list(channelvars), (kind, values)
            i += n
        if h == "CallerIDName" and kind == "OriginateResponse" and i < len(heads) \
                and heads[i] == "ChanVariable(<channel>)":
            assert m["Response"] == "Success" and heads[i:] == ("ChanVariable(<channel>)",) * n
            (chan, vs), = variables_by_channel(m).items()
            assert chan == m["Channel"] and list(vs) == list(channelvars), (chan, vs)
            break
    return tuple(out)


def assert_conforms(msgs: list[Msg], channelvars: tuple[str, ...] = (),
                    channel_ids: tuple[str, ...] = ()) -> None:
    """Every message has a recorded header order and its event type's recorded Privilege.

    With ``channelvars`` (the simulator's), channel-variable headers must be where Asterisk
    writes them (:func:`without_variables`), and the order must be a recorded one as it is or
    once they are taken out (event types never recorded with channelvars set: CoreShowChannel,
    AgentRingNoAnswer, UserEvent …); test_project_session_header_forms compares the types
    project_dialplans_session has exactly. ``channel_ids``: the ChannelIds the test sent
    (Uniqueids ``<id>``, ``<id>;2``)."""
    known = shapes()
    stripped = {k: {tuple(h for h in s if not _VAR_HEAD.match(h)) for s in v}
                for k, v in known.items()}
    privs = privileges()
    for m in msgs:
        kind = m.get("Event", "Response")
        heads = getattr(m, "heads", None) or tuple(m)
        assert kind in known, f"{kind} never appears in the recordings"
        bare = without_variables(m, channelvars)
        if heads not in known[kind]:
            assert bare in stripped[kind], f"{kind}: header order {list(heads)} not recorded"
        if "Event" in m:
            assert m.get("Privilege") in privs[kind], f"{kind}: Privilege {m.get('Privilege')}"
        for k, v in m.items():
            if k.endswith("Uniqueid") and not k.startswith("Bridge") and v != "<unknown>":
                assert UNIQUEID.match(v) or v.removesuffix(";2") in channel_ids, f"{k}: {v}"


# ---- a small AMI client -------------------------------------------------------------------

class Client:
    """asyncio streams + FrameDecoder; collects everything the server sends."""

    def __init__(self) -> None:
        self.msgs: list[Msg] = []
        self.banner: bytes = b""
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._n = 0

    async def connect(self, port: int, *, login: bool = True) -> Client:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.banner = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 5)
        self._task = asyncio.create_task(self._read())
        if login:
            resp = await self.action("Login", Username=USER, Secret=SECRET)
            assert resp["Response"] == "Success"
            await self.wait_event("FullyBooted")
        return self

    async def _read(self) -> None:
        buf = b""
        try:
            while data := await self.reader.read(65536):
                buf += data
                *frames, buf = buf.split(TERMINATOR)
                for raw in frames:
                    m = parse_frame(raw)
                    assert not isinstance(m, Malformed), m
                    self.msgs.append(message(raw.decode()))
                self._changed.set()
        except ConnectionError:
            pass
        self.closed.set()
        self._changed.set()

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def action(self, name: str, **headers: object) -> Msg:
        self._n += 1
        aid = f"t-{self._n}"
        self.writer.write(encode_action(name, aid, headers))
        return await self.response(aid)

    async def response(self, action_id: str, timeout: float = 5) -> Msg:
        return await self.wait(lambda m: "Event" not in m and m.get("ActionID") == action_id,
                               timeout)

    async def wait(self, pred: Callable[[Msg], bool], timeout: float = 5, start: int = 0) -> Msg:
        async with asyncio.timeout(timeout):
            i = start
            while True:
                while i < len(self.msgs):
                    if pred(self.msgs[i]):
                        return self.msgs[i]
                    i += 1
                if self.closed.is_set():
                    raise AssertionError("connection closed while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def wait_until(self, cond: Callable[[], bool], timeout: float = 5) -> None:
        """Wait until ``cond()`` holds, re-checked whenever frames arrive."""
        async with asyncio.timeout(timeout):
            while not cond():
                if self.closed.is_set():
                    raise AssertionError("connection closed while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def wait_event(self, name: str, timeout: float = 5, **fields: str) -> Msg:
        return await self.wait(lambda m: m.get("Event") == name
                               and all(m.get(k) == v for k, v in fields.items()), timeout)

    def events(self, name: str | None = None) -> list[Msg]:
        return [m for m in self.msgs if "Event" in m and (name is None or m["Event"] == name)]

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def two_members(*names: str) -> tuple[MemberConfig, ...]:
    return tuple(MemberConfig(n, f"Local/{n}@agents/n") for n in names)


@pytest.fixture
async def make_sim():
    sims: list[AmiSimulator] = []
    clients: list[Client] = []

    async def factory(**kw: object) -> tuple[AmiSimulator, Client]:
        kw.setdefault("time_scale", SCALE)
        # The lab recordings' manager.conf has no channelvars; tests of the project's set it.
        kw.setdefault("channelvars", ())
        on_sent = kw.pop("on_sent", None)
        sim = AmiSimulator(SimulatorConfig(port=0, **kw), on_sent=on_sent)  # type: ignore[arg-type]
        sims.append(sim)
        port = await sim.start()
        client = await Client().connect(port)
        clients.append(client)
        return sim, client

    yield factory
    for c in clients:
        await c.close()
    for s in sims:
        await s.stop()


# ---- login and simple actions -------------------------------------------------------------

async def test_login_ping_logoff_as_recorded(make_sim) -> None:
    sim, c = await make_sim()
    rec = recorded_in("login_ok")
    banner = recording("login_ok")[0][2]["__banner__"]
    assert c.banner.decode() == banner
    login = c.msgs[0]
    assert list(login) == list(rec[0]) and login["Message"] == rec[0]["Message"]
    booted = c.events("FullyBooted")[0]
    assert list(booted) == list(rec[1]) and booted["Privilege"] == rec[1]["Privilege"]
    assert booted["Status"] == "Fully Booted"
    pong = await c.action("Ping")
    assert list(pong) == list(rec[2]) and pong["Ping"] == "Pong"
    assert re.match(r"^\d{10}\.\d{6}$", pong["Timestamp"])
    bye = await c.action("Logoff")
    assert list(bye) == list(rec[3]) and bye["Message"] == rec[3]["Message"]
    await asyncio.wait_for(c.closed.wait(), 5)
    assert_conforms(c.msgs)


async def test_login_failed_after_delay_then_closed(make_sim) -> None:
    rows = recording("login_failed")
    recorded_delay = (rows[2][0] - rows[1][0]) / 1000
    assert recorded_delay == pytest.approx(SimulatorConfig().failed_login_delay, abs=0.1)
    sim, _ = await make_sim(failed_login_delay=0.2)
    c = await Client().connect(sim.port, login=False)
    t0 = time.monotonic()
    c.writer.write(encode_action("Login", "login-1", {"Username": USER, "Secret": "wrong"}))
    resp = await c.response("login-1")
    assert time.monotonic() - t0 >= 0.2
    assert resp == rows[2][2]
    await asyncio.wait_for(c.closed.wait(), 5)
    await c.close()


async def test_actions_before_login_are_refused(make_sim) -> None:
    sim, _ = await make_sim()
    c = await Client().connect(sim.port, login=False)
    resp = await c.action("Ping")
    assert resp["Response"] == "Error" and resp["Message"] == "Permission denied"
    assert not c.events()
    await c.close()


async def test_bad_actions_answer_the_recorded_errors(make_sim) -> None:
    _, c = await make_sim()
    for _, frame in recorded_actions("bad_actions"):
        c.send_raw(frame.encode() + b"\r\n")
    for aid in ("x-1", "x-2", "x-3"):
        got = await c.response(aid)
        assert got == response_to("bad_actions", aid)


async def test_agent_state_actions_match_the_recording(make_sim) -> None:
    """Send the recorded QueueAdd/QueuePause/QueueRemove actions; compare what comes back."""
    _, c = await make_sim(queues=(QueueConfig("aftersales", two_members("8001", "8002")),))
    rec = recorded_in("agent_state")
    stable = ("Event", "Privilege", "Response", "Message", "Device", "State", "Queue",
              "MemberName", "Interface", "StateInterface", "Membership", "Penalty", "InCall",
              "Status", "Paused", "PausedReason", "Ringinuse", "Wrapuptime")
    start = len(c.msgs)
    for _, frame in recorded_actions("agent_state"):
        aid = _parse(frame)["ActionID"]
        c.send_raw(frame.encode() + b"\r\n")
        await c.response(aid)
    expected = [m for m in rec[2:] if m.get("ActionID") != "logoff-1"]
    await c.wait_until(lambda: len(c.msgs) - start >= len(expected))
    got = c.msgs[start:start + len(expected)]
    assert [list(m) for m in got] == [list(m) for m in expected]
    for g, e in zip(got, expected, strict=True):
        assert {k: g[k] for k in stable if k in g} == {k: e[k] for k in stable if k in e}
    assert_conforms(got)


# ---- inbound calls ------------------------------------------------------------------------

async def test_inbound_answered_follows_the_recording(make_sim) -> None:
    sim, c = await make_sim(queues=(QueueConfig("aftersales", two_members("8002", "8001")),))
    linkedid = await sim.place_call("13800138000", "Zhang San", no_answer_members=("8002",))
    assert await asyncio.wait_for(sim.wait_call(linkedid), 10) == "completed"
    await c.wait_event("Hangup", Uniqueid=linkedid)
    call = [m for m in c.events() if linkedid in m.values() or m.get("Device", "")]
    assert_conforms(c.msgs)
    recorded = key_sequence(recorded_in("inbound_answered"))
    got = key_sequence(c.events(), linkedid)
    # The recording stops while the call talks: it is a prefix of the simulated call.
    assert got[: len(recorded)] == recorded
    assert got[len(recorded):] == ["AgentComplete", "BridgeDestroy"]
    first = c.events("Newchannel")[0]
    assert first["Uniqueid"] == linkedid and LOCAL_HALF.match(first["Channel"])
    assert first["Channel"].startswith("Local/13800138000@pstn-in-")
    for m in call:
        for k in ("Channel", "DestChannel"):
            if k in m and m[k].startswith("Local/"):
                assert LOCAL_HALF.match(m[k]), m[k]
        for k in ("Linkedid", "DestLinkedid"):
            if k in m:
                assert m[k] == linkedid
    join = c.events("QueueCallerJoin")[0]
    assert (join["CallerIDNum"], join["CallerIDName"]) == ("13800138000", "Zhang San")
    assert join["Channel"].endswith(";2") and (join["Position"], join["Count"]) == ("1", "1")
    called = c.events("AgentCalled")
    assert [m["MemberName"] for m in called] == ["8002", "8001"]
    assert called[1]["Interface"] == "Local/8001@agents/n"
    rec_called = next(m for m in recorded_in("inbound_answered") if m.get("Event") == "AgentCalled")
    for k in ("DestCallerIDNum", "DestConnectedLineNum", "DestConnectedLineName", "DestContext",
              "DestExten", "ChannelState", "Context", "Exten", "Priority"):
        assert called[1][k] == rec_called[k], k
    connect = c.events("AgentConnect")[0]
    assert int(connect["HoldTime"]) >= 5 and connect["RingTime"] == "2"
    complete = c.events("AgentComplete")[0]
    assert complete["Reason"] == "agent" and complete["TalkTime"] == "6"


async def test_ring_no_answer_then_next_member_as_recorded(make_sim) -> None:
    sim, c = await make_sim(queues=(QueueConfig("escalation", two_members("8002", "8001"),
                                                strategy="linear"),))
    linkedid = await sim.place_call("13600002222", did="4008007777", queue="escalation",
                                    no_answer_members=("8002",), talk=7)
    await asyncio.wait_for(sim.wait_call(linkedid), 10)
    await c.wait_event("Hangup", Uniqueid=linkedid)
    assert_conforms(c.msgs)
    assert key_sequence(c.events(), linkedid) == key_sequence(recorded_in("inbound_ring_no_answer"))
    names = [m["Event"] for m in c.events()]
    i = names.index("AgentRingNoAnswer")
    assert names[i:i + 3] == ["AgentRingNoAnswer", "DialEnd", "DialEnd"]
    assert [c.events()[i + k].get("DialStatus") for k in (1, 2)] == ["NOANSWER", "CANCEL"]
    assert c.events("AgentRingNoAnswer")[0]["RingTime"] == "4000"
    assert c.events("AgentComplete")[0]["MemberName"] == "8001"


async def test_abandoned_with_paused_members_as_recorded(make_sim) -> None:
    sim, c = await make_sim(queues=(QueueConfig("aftersales", two_members("8001", "8002")),))
    start = len(c.msgs)
    for _, frame in recorded_actions("inbound_abandoned"):
        if "QueuePause" in frame and "Paused: true" in frame:
            c.send_raw(frame.encode() + b"\r\n")
            await c.response(_parse(frame)["ActionID"])
    pauses = [m for m in c.msgs[start:] if m.get("Event") in ("DeviceStateChange",
                                                             "QueueMemberPause")]
    rec_pauses = [m for m in recorded_in("inbound_abandoned")[:12]
                  if m.get("Event") in ("DeviceStateChange", "QueueMemberPause")]
    await c.wait(lambda m: m.get("Event") == "QueueMemberPause" and m["MemberName"] == "8002")
    pauses = [m for m in c.msgs[start:] if m.get("Event") in ("DeviceStateChange",
                                                             "QueueMemberPause")]
    assert [(m["Event"], m.get("Device"), m.get("State"), m.get("PausedReason"))
            for m in pauses] == [(m["Event"], m.get("Device"), m.get("State"),
                                  m.get("PausedReason")) for m in rec_pauses]
    linkedid = await sim.place_call("13700001111", abandon_after=5)
    assert await asyncio.wait_for(sim.wait_call(linkedid), 10) == "abandoned"
    await c.wait_event("Hangup", Uniqueid=linkedid)
    assert_conforms(c.msgs)
    assert key_sequence(c.events(), linkedid) == key_sequence(recorded_in("inbound_abandoned"))
    ab = c.events("QueueCallerAbandon")[0]
    assert (ab["Position"], ab["OriginalPosition"]) == ("1", "1") and 4 <= int(ab["HoldTime"]) <= 6
    names = [m["Event"] for m in c.events()]
    assert names.index("QueueCallerAbandon") < names.index("QueueCallerLeave")
    assert not c.events("AgentCalled")


async def test_anonymous_caller_shows_unknown(make_sim) -> None:
    sim, c = await make_sim()
    linkedid = await sim.place_call(None, talk=1)
    await asyncio.wait_for(sim.wait_call(linkedid), 10)
    assert_conforms(c.msgs)
    for name in ("QueueCallerJoin", "AgentCalled", "AgentConnect"):
        assert c.events(name)[0]["CallerIDNum"] == "<unknown>"


async def test_round_robin_skips_paused_and_busy_members(make_sim) -> None:
    sim, c = await make_sim(queues=(QueueConfig("aftersales", two_members("8001", "8002",
                                                                        "8003")),))
    await c.action("QueuePause", Interface="Local/8002@agents/n", Paused="true", Reason="lunch")
    first = await sim.place_call("13800000010", talk=100)
    await c.wait_event("AgentConnect", Linkedid=first)
    second = await sim.place_call("13800000020", talk=1)
    await asyncio.wait_for(sim.wait_call(second), 10)
    called = [(m["Linkedid"], m["MemberName"]) for m in c.events("AgentCalled")]
    assert called == [(first, "8001"), (second, "8003")]


async def test_iax2_style_full_events_like_iax_recording(make_sim) -> None:
    members = tuple(MemberConfig(f"800{i}", f"IAX2/agent800{i}/agent800{i}") for i in (1, 2))
    sim, c = await make_sim(style="iax2", full_events=True,
                            queues=(QueueConfig("hotline", members),))
    linkedid = await sim.place_call("13800138000", queue="hotline", did="4008006666")
    await asyncio.wait_for(sim.wait_call(linkedid), 10)
    await c.wait_event("Hangup", Uniqueid=linkedid)
    assert_conforms(c.msgs)
    rec = [m for m in recorded_in("iax_inbound_answered")
           if m.get("Linkedid") == "1795343892.639" or m.get("DestLinkedid") == "1795343892.639"
           or m.get("Event") in ("BridgeCreate", "BridgeDestroy")]
    assert key_sequence(c.events(), linkedid) == key_sequence(rec)
    got_types = {m["Event"] for m in c.events()}
    assert {"VarSet", "Newexten", "DialState", "SuccessfulAuth"} <= got_types
    assert {m["Event"] for m in rec} - {"QueueMemberStatus"} <= got_types
    join = c.events("QueueCallerJoin")[0]
    assert re.match(r"^IAX2/loop-\d+$", join["Channel"]) and join["Uniqueid"] == linkedid
    called = c.events("AgentCalled")[0]
    assert re.match(r"^IAX2/agent8001-\d+$", called["DestChannel"])
    assert called["Interface"] == "IAX2/agent8001/agent8001"
    assert called["DestChannelState"] == "5" and called["DestCallerIDNum"] == "<unknown>"


async def test_reduced_class_set_has_no_dialplan_events(make_sim) -> None:
    sim, c = await make_sim()
    linkedid = await sim.place_call("13800138000", talk=1)
    await asyncio.wait_for(sim.wait_call(linkedid), 10)
    types = {m["Event"] for m in c.events()}
    assert not types & {"VarSet", "Newexten"}
    assert {"BridgeEnter", "DeviceStateChange", "QueueMemberStatus"} <= types


async def test_concurrent_traffic_interleaves_and_never_double_books(make_sim) -> None:
    members = two_members(*(f"80{i:02d}" for i in range(10, 20)))
    sent: list[tuple[str, str, str, int]] = []

    def on_sent(name: str, fields: dict[str, str], t: int) -> None:
        if name == "AgentCalled":
            sent.append((name, fields["Linkedid"], fields["MemberName"], t))

    sim, c = await make_sim(queues=(QueueConfig("bulk", members),), on_sent=on_sent)
    placed = await sim.run_traffic(40, 0.25, ["13700000001", "13700000002"], queue="bulk",
                                   seed=3, abandon_ratio=0.0)
    assert placed >= 5
    await c.wait_until(lambda: len(c.events("AgentComplete")) == placed, 15)
    assert_conforms(c.msgs)
    joins = [m["Linkedid"] for m in c.events("QueueCallerJoin")]
    assert len(set(joins)) == placed
    # Concurrent calls interleave: a second call joins before the first one completes.
    names = [m["Event"] for m in c.events()]
    second_join = [i for i, n in enumerate(names) if n == "QueueCallerJoin"][1]
    assert second_join < names.index("AgentComplete")
    busy: set[str] = set()
    for m in c.events():
        if m["Event"] == "AgentCalled":
            assert m["MemberName"] not in busy, "a busy member was rung"
            busy.add(m["MemberName"])
        elif m["Event"] in ("AgentRingNoAnswer", "AgentComplete"):
            busy.discard(m["MemberName"])
    assert {(lid, member) for _, lid, member, _ in sent} == {
        (m["Linkedid"], m["MemberName"]) for m in c.events("AgentCalled")}
    assert all(t > 0 for *_, t in sent)


# ---- origination --------------------------------------------------------------------------

async def test_originate_failures_as_recorded(make_sim) -> None:
    _, c = await make_sim()
    actions = recorded_actions("originate_failures")
    for _, frame in actions:
        c.send_raw(frame.encode() + b"\r\n")
    rec = recorded_in("originate_failures")
    for _, frame in actions:
        aid = _parse(frame)["ActionID"]
        got = await c.response(aid)
        assert got == response_to("originate_failures", aid)
        if aid == "sync-noanswer":
            continue
        ev = await c.wait_event("OriginateResponse", ActionID=aid)
        exp = next(m for m in rec if m.get("Event") == "OriginateResponse"
                   and m["ActionID"] == aid)
        assert ev == exp
    assert_conforms(c.msgs)
    dial_ends = {m["DialStatus"] for m in c.events("DialEnd")}
    assert {"BUSY", "CONGESTION"} <= dial_ends


async def test_sync_originate_waits_for_the_outcome(make_sim) -> None:
    _, c = await make_sim()
    t0 = time.monotonic()
    resp = await c.action("Originate", Channel="Local/13800000002@outbound-trunk",
                          Application="Wait", Data="1", Timeout=3000)
    assert resp["Message"] == "Originate failed"
    assert time.monotonic() - t0 >= 3 * SCALE
    ok = await c.action("Originate", Channel="Local/13800000005@outbound-trunk",
                        Application="Wait", Data="1")
    assert (ok["Response"], ok["Message"]) == ("Success", "Originate successfully queued")
    assert not c.events("OriginateResponse")


async def test_survey_completed_as_recorded(make_sim) -> None:
    sim, c = await make_sim()
    ((_, frame),) = recorded_actions("survey_completed")
    c.send_raw(frame.encode() + b"\r\n")
    rec = recorded_in("survey_completed")
    ev = await c.wait_event("UserEvent", 10)
    exp = next(m for m in rec if m.get("Event") == "UserEvent")
    assert list(ev) == list(exp)
    body = ("UserEvent", "Job", "WorkOrder", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Context",
            "Exten", "Priority")
    assert {k: ev[k] for k in body} == {k: exp[k] for k in body}
    resp = await c.wait_event("OriginateResponse", ActionID="sv-1")
    exp_resp = next(m for m in rec if m.get("Event") == "OriginateResponse")
    assert [k for k in resp] == list(exp_resp) and resp["Reason"] == "4"
    assert resp["Uniqueid"] == ev["Uniqueid"] and LOCAL_HALF.match(resp["Channel"])
    digits = [m["Digit"] for m in c.events("DTMFEnd")]
    assert digits == [m["Digit"] for m in rec if m.get("Event") == "DTMFEnd"]
    await c.wait_event("Hangup", Uniqueid=ev["Uniqueid"])
    assert_conforms(c.msgs)


async def test_survey_variables_on_repeated_lines(make_sim) -> None:
    _, c = await make_sim()
    c.send_raw(b"Action: Originate\r\nActionID: sv-9\r\nChannel: Local/13900000009@outbound-trunk"
               b"\r\nContext: survey\r\nExten: s\r\nPriority: 1\r\nAsync: true\r\n"
               b"Variable: SURVEY_JOB=job-9\r\nVariable: WORK_ORDER=WO-9\r\n\r\n")
    ev = await c.wait_event("UserEvent", 10)
    assert (ev["Job"], ev["WorkOrder"]) == ("job-9", "WO-9")
    assert [ev[f"Q{i}"] for i in range(1, 7)] == ["5", "4", "5", "3", "5", "4"]
    resp = await c.wait_event("OriginateResponse", ActionID="sv-9")
    assert resp["CallerIDNum"] == "<unknown>"


async def test_callback_customer_joins_the_queue(make_sim) -> None:
    sim, c = await make_sim()
    ((_, frame),) = recorded_actions("originate_callback")
    c.send_raw(frame.encode() + b"\r\n")
    resp = await c.wait_event("OriginateResponse", 10, ActionID="cb-1")
    assert (resp["Response"], resp["Reason"]) == ("Success", "4")
    join = await c.wait_event("QueueCallerJoin")
    exp = next(m for m in recorded_in("originate_callback") if m.get("Event") == "QueueCallerJoin")
    for k in ("CallerIDNum", "CallerIDName", "Context", "Exten", "Priority", "Queue"):
        assert join[k] == exp[k], k
    assert join["Channel"] == resp["Channel"] and join["Channel"].endswith(";1")
    connect = await c.wait_event("AgentConnect", 10)
    assert connect["Linkedid"] == resp["Uniqueid"]
    names = [m["Event"] for m in c.events()]
    assert names.index("QueueCallerJoin") < names.index("AgentCalled") < names.index("AgentConnect")
    assert_conforms(c.msgs)


# ---- resync list actions ------------------------------------------------------------------

async def test_list_actions_shaped_like_resync_recording(make_sim) -> None:
    queues = (QueueConfig("aftersales", two_members("8001", "8002")),
              QueueConfig("escalation", two_members("8002")))
    sim, c = await make_sim(queues=queues)
    talking = await sim.place_call("13800138000", talk=1000)
    await c.wait_event("AgentConnect", Linkedid=talking)
    waiting = await sim.place_call("13700001111", queue="escalation", did="4008007777",
                                   no_answer_members=("8002",), abandon_after=1000)
    await c.wait_event("QueueCallerJoin", Linkedid=waiting)
    rec = recorded_in("resync_mid_call")

    async def listing(action: str, complete: str, **headers: object) -> list[Msg]:
        resp = await c.action(action, **headers)
        aid = resp["ActionID"]
        await c.wait_event(complete, ActionID=aid)
        items = [m for m in c.msgs if m.get("ActionID") == aid and "Event" in m]
        exp_resp = next(m for m in rec if m.get("Response") and "EventList" in m
                        and m["Message"] == resp["Message"])
        assert list(resp) == list(exp_resp) and resp["EventList"] == "start"
        assert items[-1]["Event"] == complete and items[-1]["EventList"] == "Complete"
        assert items[-1]["ListItems"] == str(len(items) - 1)
        assert_conforms([resp, *items])
        return items[:-1]

    qs = await listing("QueueStatus", "QueueStatusComplete")
    assert [m["Event"] for m in qs].count("QueueParams") == 2
    members = [m for m in qs if m["Event"] == "QueueMember"]
    assert {m["Name"] for m in members} == {"8001", "8002"} and "MemberName" not in members[0]
    entry = next(m for m in qs if m["Event"] == "QueueEntry")
    assert entry["Queue"] == "escalation" and entry["CallerIDName"] == "unknown"
    assert entry["Uniqueid"] != waiting and entry["Channel"].endswith(";2")
    assert all("Privilege" not in m for m in qs)
    (summary,) = await listing("QueueSummary", "QueueSummaryComplete", Queue="aftersales")
    assert (summary["LoggedIn"], summary["Callers"]) == ("2", "0")
    channels = await listing("CoreShowChannels", "CoreShowChannelsComplete")
    names = {m["Channel"] for m in channels}
    assert any(n.startswith("Local/13800138000@pstn-in-") and n.endswith(";2") for n in names)
    assert all(LOCAL_HALF.match(n) for n in names)
    queue_app = next(m for m in channels if m["Uniqueid"] == entry["Uniqueid"])
    assert (queue_app["Application"], queue_app["ApplicationData"]) == ("Queue",
                                                                       "escalation,t,,,60")
    statuses = await listing("Status", "StatusComplete")
    assert {m["Channel"] for m in statuses} == names
    assert all(m["Privilege"] == "Call" for m in statuses)
    done = c.events("StatusComplete")[-1]
    assert done["Items"] == done["ListItems"] == str(len(statuses))


# ---- clients ------------------------------------------------------------------------------

async def test_every_client_gets_every_event(make_sim) -> None:
    sim, a = await make_sim()
    b = await Client().connect(sim.port)
    linkedid = await sim.place_call("13800138000", talk=1)
    await asyncio.wait_for(sim.wait_call(linkedid), 10)
    await b.wait_event("Hangup", Uniqueid=linkedid)
    await a.wait_event("Hangup", Uniqueid=linkedid)
    assert [m for m in a.events() if m["Event"] != "FullyBooted"] == [
        m for m in b.events() if m["Event"] != "FullyBooted"]
    await b.close()


async def test_slow_client_is_dropped_without_holding_back_the_rest(make_sim) -> None:
    sim, fast = await make_sim(max_client_buffer=32 * 1024)
    slow = await Client().connect(sim.port)
    slow._task.cancel()  # stop reading: the kernel buffers fill, then the simulator's
    slow.writer.transport.pause_reading()
    traffic = sim.start_traffic(200, None, ["13800138000"])
    async with asyncio.timeout(20):
        while sim.clients > 1:
            await asyncio.sleep(0.02)
    traffic.cancel()
    n = len(fast.msgs)
    await fast.wait(lambda m: True, start=n)  # the fast client still receives events
    assert sim.clients == 1
    slow.writer.close()


async def test_drop_clients_then_reconnect(make_sim) -> None:
    sim, c = await make_sim()
    linkedid = await sim.place_call("13800138000", talk=200)
    await c.wait_event("AgentConnect", Linkedid=linkedid)
    await sim.drop_clients()
    await asyncio.wait_for(c.closed.wait(), 5)
    again = await Client().connect(sim.port)
    resp = await again.action("CoreShowChannels")
    await again.wait_event("CoreShowChannelsComplete", ActionID=resp["ActionID"])
    assert any(m.get("Linkedid") == linkedid for m in again.events("CoreShowChannel"))
    await again.close()


# ---- the project's own configuration: channel variables (project_dialplans_session) --------

def test_default_channelvars_are_the_projects_manager_conf() -> None:
    """The simulator is at least as hard as a real Asterisk with our manager.conf."""
    conf = (REPO / "dialplans" / "manager.conf").read_text("utf-8")
    (line,) = [ln for ln in conf.splitlines() if ln.replace(" ", "").startswith("channelvars=")]
    configured = tuple(v.strip() for v in line.partition("=")[2].split(","))
    assert SimulatorConfig().channelvars == configured == VARS
    assert SimulatorConfig(channelvars="A, B").channelvars == ("A", "B")
    assert SimulatorConfig(channelvars="").channelvars == ()
    with pytest.raises(ValueError, match="channelvars"):
        SimulatorConfig(channelvars=("BAD NAME",))


def test_simulate_command_takes_channelvars_and_documents_restart() -> None:
    from callcenter.cli import build_parser
    from callcenter.simulator.cli import config_from_args

    parser = build_parser()
    args = parser.parse_args(["simulate", "--port", "0"])
    assert config_from_args(args).channelvars == VARS
    args = parser.parse_args(["simulate", "--channelvars", "", "--restart-down", "0.5"])
    assert config_from_args(args).channelvars == () and args.restart_down == 0.5
    args = parser.parse_args(["simulate", "--channelvars", "CALLBACK_JOB"])
    assert config_from_args(args).channelvars == ("CALLBACK_JOB",)
    sub = next(a for a in parser._subparsers._group_actions  # type: ignore[union-attr]
               if a.dest == "command").choices["simulate"]
    help_text = sub.format_help()
    assert "SIGUSR1" in help_text and "--restart-every" in help_text and "Uptime: 0" in help_text
    readme = (REPO / "README.md").read_text("utf-8")
    (row,) = [ln for ln in readme.splitlines() if ln.startswith("| `callcenter simulate")]
    assert "--channelvars" in row and "SIGUSR1" in row


def _project_queues() -> tuple[QueueConfig, ...]:
    """The project's queues (dialplans/queues_callcenter.conf): no static members, agents log
    in through QueueAdd as the service does (project_dialplans_session lines 9-53)."""
    return (QueueConfig("aircon", (), strategy="ringall"), QueueConfig("aftersales", ()),
            QueueConfig("escalation", (), strategy="linear"))


AGENT = "Local/{}@lab-agents"


def _job_story(msgs: list[Msg], job: str, answered: bool) -> int:
    """What the channel variables of the outbound attempt ``job`` (its ChannelId, so its
    Linkedid) show, the same in the recording and in the simulator: the trunk's Local halves
    show CALLBACK_JOB from their first event after Newchannel on; the answered customer's
    OriginateResponse names the ;1 half in ``ChanVariable(<channel>)`` keys, a failed one has
    none; the agent leg of the queue call inherits it (``__CALLBACK_JOB`` in
    dialplans/callback.conf) from its LocalBridge on; WORK_ORDER is never set. Returns how many
    channel blocks were checked."""
    checked = 0
    for m in msgs:
        if m.get("Event") == "OriginateResponse" and m.get("ActionID") == job:
            by_chan = variables_by_channel(m)
            if answered:
                assert m["Response"] == "Success"
                assert by_chan == {m["Channel"]: {"CALLBACK_JOB": job, "WORK_ORDER": ""}}
            else:
                assert m["Response"] == "Failure" and by_chan == {}
            checked += 1
            continue
        for p in ("", "Dest", "LocalOne", "LocalTwo"):
            if m.get(p + "Linkedid") != job:
                continue
            chan = m[p + "Channel"]
            got = channel_variables(m, p)
            assert list(got) == list(VARS) and got["WORK_ORDER"] == "", (m["Event"], p, got)
            if "@outbound-trunk-" in chan:
                want = "" if m["Event"] == "Newchannel" else job
            elif m["Event"] == "Newchannel":
                want = ""
            elif m["Event"] in ("NewCallerid", "NewConnectedLine") and chan.endswith(";1"):
                continue  # before Queue() hands the variables over (either is right)
            else:
                want = job
            assert got["CALLBACK_JOB"] == want, (m["Event"], p, chan, got)
            checked += 1
    return checked


def _inbound_story(msgs: list[Msg], jobs: set[str]) -> int:
    """Inbound calls carry no variable: every channel block shows both, empty."""
    checked = 0
    for m in msgs:
        if "Event" not in m or m.get("ActionID") in jobs:
            continue
        for p in ("", "Dest", "LocalOne", "LocalTwo"):
            if p + "Linkedid" in m and m[p + "Linkedid"] not in jobs:
                assert channel_variables(m, p) == {"CALLBACK_JOB": "", "WORK_ORDER": ""}
                checked += 1
    return checked


async def test_project_session_header_forms(make_sim) -> None:
    """Run what project_dialplans_session recorded (agents log out/in and pause, four inbound
    calls of which two abandon, an anonymous caller, two failed and one answered callback,
    then ``core restart now``) with the project's channelvars. Every event type the recording
    has — with every channel-variable header form: ChanVariable, DestChanVariable,
    LocalOne/LocalTwoChanVariable, ChanVariable(<channel>) — comes out with exactly the
    recorded header orders, and the variables carry the recorded values."""
    sim, c = await make_sim(channelvars=VARS, queues=_project_queues())
    ids: list[str] = []

    async def listing(action: str, complete: str) -> None:
        resp = await c.action(action)
        await c.wait_event(complete, ActionID=resp["ActionID"])

    await listing("CoreShowChannels", "CoreShowChannelsComplete")
    for ext in ("8001", "8003"):
        resp = await c.action("QueueAdd", Queue="aftersales", Interface=AGENT.format(ext),
                              MemberName=ext, Penalty=0, Paused="false")
        assert resp["Response"] == "Success"
    await listing("QueueStatus", "QueueStatusComplete")
    await c.action("Ping")
    await c.action("QueueRemove", Queue="aftersales", Interface=AGENT.format("8003"))
    await c.action("QueueAdd", Queue="aftersales", Interface=AGENT.format("8003"),
                   MemberName="8003")
    await c.action("QueuePause", Interface=AGENT.format("8001"), Paused="true", Reason="午餐")
    await c.action("QueuePause", Interface=AGENT.format("8001"), Paused="false")

    calls = [await sim.place_call(f"1380000002{i}", talk=10) for i in (0, 1)]
    calls += [await sim.place_call(f"1380000002{i}", abandon_after=3) for i in (2, 3)]
    outcomes = await asyncio.wait_for(asyncio.gather(*map(sim.wait_call, calls)), 10)
    assert outcomes == ["completed", "completed", "abandoned", "abandoned"]
    anonymous = await sim.place_call(None, talk=2)
    assert await asyncio.wait_for(sim.wait_call(anonymous), 10) == "completed"

    async def originate(number: str, n: int) -> str:
        job = f"ob-{n}-1-{n:08x}"
        ids.append(job)
        c.writer.write(encode_action("Originate", job, {
            "Channel": f"Local/{number}@outbound-trunk", "Context": "callback", "Exten": "s",
            "Priority": 1, "Async": "true", "Timeout": 6000, "CallerID": "<4008001234>",
            "ChannelId": job, "Variable": f"CALLBACK_JOB={job}"}))
        assert (await c.response(job))["Message"] == "Originate successfully queued"
        return job

    failed = [await originate("13800000022", 6), await originate("13800000023", 7)]
    for job in failed:
        await c.wait_event("OriginateResponse", 10, ActionID=job)
    job = await originate("13800000009", 8)
    resp = await c.wait_event("OriginateResponse", 10, ActionID=job)
    await c.wait_event("AgentComplete", 10, Linkedid=job)
    await c.wait_event("Hangup", 10, Uniqueid=job)

    restart = asyncio.create_task(sim.restart(down_for=0.05))
    await c.wait_event("Shutdown")
    await asyncio.wait_for(c.closed.wait(), 5)
    await asyncio.wait_for(restart, 5)
    c2 = await Client().connect(sim.port)
    for action, complete in (("CoreShowChannels", "CoreShowChannelsComplete"),
                             ("QueueStatus", "QueueStatusComplete")):
        r = await c2.action(action)
        await c2.wait_event(complete, ActionID=r["ActionID"])
    await c2.close()

    # DialState: the recording's agents answer after ringing; the simulator rings a device
    # channel (IAX2 style) for that.
    members = tuple(MemberConfig(f"800{i}", f"IAX2/agent800{i}/agent800{i}") for i in (1, 2))
    sim3, c3 = await make_sim(channelvars=VARS, style="iax2",
                              queues=(QueueConfig("aftersales", members),))
    lid = await sim3.place_call("13800000030", talk=1)
    await asyncio.wait_for(sim3.wait_call(lid), 10)
    await c3.wait_event("Hangup", Uniqueid=lid)

    got = c.msgs + c2.msgs + c3.msgs
    assert_conforms(got, VARS, tuple(ids))
    produced: dict[str, set[tuple[str, ...]]] = {}
    for m in got:
        produced.setdefault(m.get("Event", "Response"), set()).add(m.heads)
    recorded = shapes(PROJECT)
    for kind, orders in sorted(recorded.items()):
        assert produced.get(kind) == orders, (kind, produced.get(kind, set()) ^ orders)
    forms = {h for orders in recorded.values() for o in orders for h in o if "ChanVariable" in h}
    assert forms == {"ChanVariable", "DestChanVariable", "LocalOneChanVariable",
                     "LocalTwoChanVariable", "ChanVariable(<channel>)"}
    assert forms <= {h for orders in produced.values() for o in orders for h in o}

    # The values, told the same way by the recording and the simulator.
    rec = recorded_in(PROJECT)
    assert _job_story(rec, "ob-8-1-b2efd778", answered=True) >= 30
    assert _job_story(c.msgs, job, answered=True) >= 30
    for rec_job, sim_job in zip(("ob-6-1-a78a8b5e", "ob-7-1-cfde1f40"), failed, strict=True):
        assert _job_story(rec, rec_job, answered=False) >= 8
        assert _job_story(c.msgs, sim_job, answered=False) >= 8
    recorded_jobs = {"ob-6-1-a78a8b5e", "ob-7-1-cfde1f40", "ob-8-1-b2efd778"}
    assert _inbound_story(rec, recorded_jobs) >= 100
    assert _inbound_story(c.msgs, set(ids)) >= 100
    # The ;2 half of a ChannelId'd Local channel is "<ChannelId>;2" (recording line 281).
    halves = {m["Uniqueid"] for m in c.msgs if m.get("Linkedid") == job and "Uniqueid" in m}
    assert f"{job};2" in halves and resp["Uniqueid"] == job


async def test_originate_variables_show_on_survey_channels(make_sim) -> None:
    """A survey's SURVEY_JOB is not in channelvars; its WORK_ORDER is, and shows on every
    event of its channels after Newchannel (also the ones never recorded with channelvars:
    DTMF, UserEvent), and on an answered OriginateResponse."""
    _, c = await make_sim(channelvars=VARS)
    c.writer.write(encode_action("Originate", "sv-1", {
        "Channel": "Local/13900000009@outbound-trunk", "Context": "survey", "Exten": "s",
        "Priority": 1, "Async": "true", "Variable": ["SURVEY_JOB=job-9", "WORK_ORDER=WO-9"]}))
    ev = await c.wait_event("UserEvent", 10)
    assert channel_variables(ev) == {"CALLBACK_JOB": "", "WORK_ORDER": "WO-9"}
    resp = await c.wait_event("OriginateResponse", ActionID="sv-1")
    assert variables_by_channel(resp) == {resp["Channel"]: {"CALLBACK_JOB": "",
                                                            "WORK_ORDER": "WO-9"}}
    await c.wait_event("Hangup", Uniqueid=ev["Uniqueid"])
    assert_conforms(c.msgs, VARS)
    for m in c.events():
        if m.get("Linkedid") == ev["Linkedid"]:
            want = "" if m["Event"] == "Newchannel" else "WO-9"
            assert channel_variables(m)["WORK_ORDER"] == want, m["Event"]
    assert {"DTMFBegin", "DTMFEnd", "UserEvent"} <= {m["Event"] for m in c.events()}


async def test_list_actions_carry_channel_variables(make_sim) -> None:
    """CoreShowChannel and Status are built from the same snapshot string as events, so a
    channel's variables follow its Linkedid there too."""
    sim, c = await make_sim(channelvars=VARS)
    job = "ob-1-1-00000001"
    c.writer.write(encode_action("Originate", job, {
        "Channel": "Local/13800000009@outbound-trunk", "Context": "callback", "Exten": "s",
        "Priority": 1, "Async": "true", "ChannelId": job,
        "Variable": f"CALLBACK_JOB={job},WORK_ORDER=WO-1"}))
    await c.wait_event("AgentConnect", 10, Linkedid=job)
    for action, item in (("CoreShowChannels", "CoreShowChannel"), ("Status", "Status")):
        r = await c.action(action)
        await c.wait_event(action + "Complete", ActionID=r["ActionID"])
        items = [m for m in c.events(item) if m.get("ActionID") == r["ActionID"]]
        assert {channel_variables(m)["CALLBACK_JOB"] for m in items} == {job}
        assert {channel_variables(m)["WORK_ORDER"] for m in items} == {"WO-1"}
        assert_conforms(items, VARS, (job,))


# ---- restart (``core restart now``, project_dialplans_session lines 380-417) ----------------

async def test_restart_drops_clients_and_dynamic_members(make_sim) -> None:
    queues = (QueueConfig("aftersales", two_members("8001")), QueueConfig("escalation", ()))
    sim, c = await make_sim(queues=queues, channelvars=VARS)
    booted = c.events("FullyBooted")[0]
    assert booted["Uptime"] == booted["LastReload"] == "0"
    resp = await c.action("QueueAdd", Queue="aftersales", Interface="Local/8009@agents/n",
                          MemberName="8009")
    assert resp["Response"] == "Success"
    talking = await sim.place_call("13800138000", talk=1000)
    await c.wait_event("AgentConnect", Linkedid=talking)

    restart = asyncio.create_task(sim.restart(down_for=0.5))
    shutdown = await c.wait_event("Shutdown")
    exp = next(m for m in recorded_in(PROJECT) if m.get("Event") == "Shutdown")
    assert shutdown == exp and shutdown.heads == exp.heads
    assert c.msgs[-1] is shutdown  # nothing after it: no hangups, the socket closes
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.reader.at_eof()
    with pytest.raises(OSError):  # down: connections are refused
        await Client().connect(sim.port)
    with pytest.raises(RuntimeError):
        await sim.place_call("13800138001")
    await asyncio.wait_for(restart, 5)
    assert await sim.wait_call(talking) is None

    again = await Client().connect(sim.port)
    booted = again.events("FullyBooted")[0]
    assert (booted["Uptime"], booted["LastReload"]) == ("0", "0")
    assert list(booted) == list(next(m for m in recorded_in(PROJECT)
                                     if m.get("Event") == "FullyBooted"))
    r = await again.action("QueueStatus")
    await again.wait_event("QueueStatusComplete", ActionID=r["ActionID"])
    members = [m for m in again.events("QueueMember") if m.get("ActionID") == r["ActionID"]]
    assert [(m["Queue"], m["Name"], m["Membership"]) for m in members] == [
        ("aftersales", "8001", "static")]
    assert (members[0]["CallsTaken"], members[0]["Status"], members[0]["InCall"]) == ("0", "1", "0")
    params = {m["Queue"]: m for m in again.events("QueueParams")}
    assert {(p["Calls"], p["Completed"], p["Abandoned"])
            for p in params.values()} == {("0", "0", "0")}
    r = await again.action("CoreShowChannels")
    done = await again.wait_event("CoreShowChannelsComplete", ActionID=r["ActionID"])
    assert done["ListItems"] == "0"
    assert_conforms(again.msgs, VARS)
    # It works as before: a new call reaches the static member.
    lid = await sim.place_call("13800138002", talk=1)
    assert await asyncio.wait_for(sim.wait_call(lid), 10) == "completed"
    await again.close()


async def test_uptime_counts_wall_seconds_since_the_restart(make_sim) -> None:
    sim, c = await make_sim()
    await asyncio.sleep(1.1)
    later = await Client().connect(sim.port)
    assert int(later.events("FullyBooted")[0]["Uptime"]) >= 1
    await sim.restart(down_for=0)
    fresh = await Client().connect(sim.port)
    assert fresh.events("FullyBooted")[0]["Uptime"] == "0"
    await later.close()
    await fresh.close()


async def test_traffic_generator_survives_a_restart(make_sim) -> None:
    sim, c = await make_sim()
    traffic = sim.start_traffic(20, None, ["13800138000"])
    await c.wait_event("QueueCallerJoin")
    await sim.restart(down_for=0.1)
    again = await Client().connect(sim.port)
    await again.wait_event("QueueCallerJoin")
    assert not traffic.done()
    traffic.cancel()
    await again.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sigusr1_restarts_a_running_simulate_process(tmp_path: Path) -> None:
    """``callcenter simulate`` restarts on SIGUSR1, from outside the process."""
    port = _free_port()
    env = {**os.environ, "CALLCENTER_KEY_FILE": str(tmp_path / "keys"),
           "CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"}
    log = tmp_path / "simulate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "simulate", "--port", str(port), "--rate", "0",
             "--restart-down", "0.3"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    c = await Client().connect(port)
                    break
                except OSError:
                    assert proc.poll() is None, log.read_text()[-2000:]
                    await asyncio.sleep(0.1)
        resp = await c.action("QueueAdd", Queue="aftersales", Interface="Local/8009@agents/n")
        assert resp["Response"] == "Success"
        await asyncio.sleep(1.05)
        before = await Client().connect(port)
        assert int(before.events("FullyBooted")[0]["Uptime"]) >= 1
        await before.close()
        proc.send_signal(signal.SIGUSR1)
        shutdown = await c.wait_event("Shutdown")
        assert (shutdown["Shutdown"], shutdown["Restart"]) == ("Cleanly", "True")
        await asyncio.wait_for(c.closed.wait(), 5)
        async with asyncio.timeout(10):
            while True:
                try:
                    again = await Client().connect(port)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        assert again.events("FullyBooted")[0]["Uptime"] == "0"
        assert f"kill -USR1 {proc.pid}" in log.read_text()
        r = await again.action("QueueStatus")
        await again.wait_event("QueueStatusComplete", ActionID=r["ActionID"])
        names = {m["Location"] for m in again.events("QueueMember")}
        assert "Local/8009@agents/n" not in names and len(names) == 5
        await again.close()
        await c.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Wallboard update latency: from the QueueCallerJoin frame leaving Asterisk to the wallboard
snapshot that counts it, on every one of N supervisors' websockets, while calls flow.

One command::

    /tmp/venv/bin/python bench/wallboard.py --supervisors 200 --rate 50 --duration 30 \\
        --json bench/results/wallboard.json

Three processes, as in ``bench/screen_pop.py`` (whose server start-up this reuses): the server
(``callcenter serve``, SQLite in a temporary folder, configured by ``CALLCENTER_*`` only), the
simulated Asterisk (this file with ``--sim``: one queue of ``--agents`` IAX2 members, the full
event stream, calls at ``--rate`` per second from ``_sim_runner.traffic`` — the screen-pop
benchmark's schedule, 5 % abandoning), and the supervisors (this process: one logged-in session,
``--supervisors`` websockets on ``/ws/wallboard``).

The simulator stamps every ``QueueCallerJoin`` with ``time.monotonic_ns()`` right after writing it
to the server's socket; each client stamps every ``wallboard.live`` message on arrival and reads
the queue's ``day.offered`` from it. CLOCK_MONOTONIC is one clock for every process of a Linux
machine, so latency of the k-th call on a client = arrival of the first snapshot whose offered
count includes it − the k-th QueueCallerJoin sent. Every client counts: 200 supervisors × N calls
samples. The latency includes the AMI parse, the book, the coalescing (20 ms after a quiet
spell, at most one snapshot per 150 ms under load), the JSON encoding, the websocket writes to
every client and the client's read. A call never seen counts as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(BENCH), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

TARGET_P99_MS = 500.0
_OFFERED = re.compile(r'"offered":(\d+)')


# -- the simulator's process ---------------------------------------------------------------

async def sim_main(args: argparse.Namespace) -> None:
    import logging

    from _sim_runner import _emit, traffic

    from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
    from callcenter.simulator.server import AmiSimulator

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    joins: list[int] = []

    def on_sent(name: str, fields: dict[str, str], t_ns: int) -> None:
        if name == "QueueCallerJoin":
            joins.append(t_ns)

    members = tuple(MemberConfig(str(8000 + i), f"IAX2/agent{8000 + i}/agent{8000 + i}")
                    for i in range(1, args.agents + 1))
    sim = AmiSimulator(SimulatorConfig(host="127.0.0.1", port=0, queues=(QueueConfig("aftersales", members),),
                                       style="iax2", full_events=True, time_scale=args.time_scale),
                       on_sent=on_sent)
    port = await sim.start()
    _emit({"event": "listening", "port": port})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "run":
                first = len(joins)
                done = await traffic(sim, cmd["rate"], cmd["duration"], 0, cmd["seed"])
                await asyncio.sleep(0.5)
                _emit({"event": "done", **done, "joins": joins[first:]})
            else:
                break
    finally:
        await sim.aclose()


# -- the supervisors -----------------------------------------------------------------------

class Supervisors:
    def __init__(self) -> None:
        # per client: [(arrival ns, offered)] whenever offered grew
        self.seen: list[list[tuple[int, int]]] = []
        self.messages = 0
        self.bytes = 0
        self.tasks: list[asyncio.Task] = []

    async def open(self, session: Any, url: str, origin: str, n: int) -> None:
        async def one(i: int) -> None:
            ws = await session.ws_connect(url, headers={"Origin": origin}, max_msg_size=0)
            self.seen.append([])
            mine = self.seen[-1]
            self.tasks.append(asyncio.create_task(self._read(ws, mine)))

        await asyncio.gather(*(one(i) for i in range(n)))

    async def _read(self, ws: Any, mine: list[tuple[int, int]]) -> None:
        import aiohttp

        last = -1
        async for msg in ws:
            t = time.monotonic_ns()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            self.messages += 1
            self.bytes += len(msg.data)
            if not msg.data.startswith('{"type":"wallboard.live"'):
                continue
            m = _OFFERED.search(msg.data)
            if m and int(m.group(1)) > last:
                last = int(m.group(1))
                mine.append((t, last))

    def latencies(self, joins: list[int], base: int) -> tuple[list[float], int]:
        out: list[float] = []
        lost = 0
        for mine in self.seen:
            j = 0
            for k, t_sent in enumerate(joins, start=1):
                while j < len(mine) and mine[j][1] < base + k:
                    j += 1
                if j == len(mine):
                    lost += len(joins) - k + 1
                    break
                out.append((mine[j][0] - t_sent) / 1e6)
        return out, lost


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import psutil
    import screen_pop as sp

    from tests.services import free_port

    tmp = Path(tempfile.mkdtemp(prefix="wallboard-bench-"))
    url = f"sqlite+aiosqlite:///{tmp}/cc.sqlite3"
    env = {**os.environ, "CALLCENTER_DATABASE_URL": url, "CALLCENTER_KEY_FILE": str(tmp / "keys")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter", "users", "add", "boss", "--role", "supervisor",
        "--password", "bench-pass-1", env={**env, **__import__("_seed").KEY_ENV}, cwd=REPO)
    assert await proc.wait() == 0
    sim_proc = await asyncio.create_subprocess_exec(
        "setpriv", "--pdeathsig=TERM", "--", sys.executable, __file__, "--sim", "--agents", str(args.agents),
        "--time-scale", str(args.time_scale), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=REPO)
    line = await asyncio.wait_for(sim_proc.stdout.readline(), 30)
    ami_port = json.loads(line)["port"]
    http_port = free_port()
    server = sp.start_server(url, ami_port, http_port, tmp / "server.log")
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         connector=aiohttp.TCPConnector(limit=0)) as s:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    h = await (await s.get(base + "/health")).json()
                    if h.get("ami", {}).get("state") == "connected":
                        break
                await asyncio.sleep(0.1)
            r = await s.post(base + "/api/session", json={"username": "boss", "password": "bench-pass-1"})
            assert r.status == 200, await r.text()
            sups = Supervisors()
            await asyncio.wait_for(sups.open(s, base.replace("http", "ws") + "/ws/wallboard", base,
                                             args.supervisors), 60)
            await asyncio.sleep(1.0)
            start_offered = max((m[-1][1] for m in sups.seen if m), default=0)
            cpu = psutil.Process(server.pid)
            cpu.cpu_percent(None)
            msgs0, bytes0, t0 = sups.messages, sups.bytes, time.monotonic()
            sim_proc.stdin.write((json.dumps({"cmd": "run", "rate": args.rate, "duration": args.duration,
                                              "seed": 1}) + "\n").encode())
            await sim_proc.stdin.drain()
            done = json.loads(await asyncio.wait_for(sim_proc.stdout.readline(), args.duration + 60))
            await asyncio.sleep(2.0)  # the last snapshots
            wall = time.monotonic() - t0
            server_cpu = cpu.cpu_percent(None)
            lat, lost = sups.latencies(done["joins"], start_offered)
            for t in sups.tasks:
                t.cancel()
    finally:
        sim_proc.stdin.write(b'{"cmd":"quit"}\n')
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sim_proc.wait(), 10)
        sp.stop_server(server)
    return {
        "supervisors": args.supervisors, "rate": args.rate, "duration_s": args.duration,
        "agents": args.agents, "calls": len(done["joins"]), "samples": len(lat), "lost": lost,
        "p50_ms": pct(lat, 0.50), "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0),
        "snapshots_per_s_per_client": round((sups.messages - msgs0) / wall / max(1, args.supervisors), 1),
        "mib_per_s_sent": round((sups.bytes - bytes0) / wall / 2**20, 1),
        "server_cpu_pct": server_cpu, "target_p99_ms": TARGET_P99_MS,
        "ok": (pct(lat, 0.99) or 1e9) <= TARGET_P99_MS and lost == 0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--supervisors", type=int, default=200)
    p.add_argument("--rate", type=float, default=50.0, help="calls per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of traffic")
    p.add_argument("--agents", type=int, default=200, help="queue members")
    p.add_argument("--time-scale", type=float, default=0.25, help="simulated → wall seconds")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.sim:
        asyncio.run(sim_main(args))
        return 0
    result = asyncio.run(amain(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Screen-pop latency: from the AgentCalled frame leaving Asterisk to the pop on the agent's screen.

One command (full size, both databases; seeding is cached, re-runs reuse the databases)::

    /tmp/venv/bin/python bench/screen_pop.py --database both --json bench/results/screen_pop.json

A quick run::

    /tmp/venv/bin/python bench/screen_pop.py --database sqlite --customers 10000 --orders 30000 \\
        --agents 100 --rates 20,40 --duration 10

What runs, and why three processes (the machine has 2 cores, shared and noisy):

1. the server: ``callcenter serve`` as a subprocess, configured only by ``CALLCENTER_*``
   variables, with SQLite or a PostgreSQL cluster (``tests/services.py``'s, kept between runs);
2. the simulated Asterisk in its own process (``bench/_sim_runner.py``): one queue whose members
   are the agents, IAX2-style full event stream (``full_events=True``, as in
   ``iax_inbound_answered``), calls at a fixed rate; it stamps every AgentCalled frame with
   ``time.monotonic_ns()`` right after writing it to the server's socket;
3. the agents: this process holds one websocket per agent (aiohttp), logged in with a session
   cookie and the Origin header, and stamps every ``call.ringing`` message on arrival.

The load generator and the clients must not share the server's event loop (their work would be
charged to the server's latency) and the server must not share theirs. CLOCK_MONOTONIC is one
clock for all processes of a Linux machine, so the two stamps compare directly: latency per pop
= arrival at the client − AgentCalled sent, matched by (Linkedid, MemberName). The latency
therefore includes the AMI parse, the call tracker, the caller lookup (started at
QueueCallerJoin, which the simulator emits a moment before AgentCalled), the JSON encoding, the
websocket write and the client's read. The three processes share the two cores: the CPU that
each one used is reported, so the reader can see how much was left for the server.

Per rate: a warm-up (not measured), then ``--duration`` seconds in which every AgentCalled sent
is expected as a pop (a pop that never arrives is counted lost), then up to 10 s of draining.
Reported: pops, lost, p50/p90/p99/max (ms), server RSS (MiB, max over the window) and CPU (% of
one core), PostgreSQL backends' CPU, the simulator's and the clients' CPU, the machine's busy
and steal share. The ramp stops at the first rate whose p99 exceeds 100 ms (``--keep-going``
goes on). Everything is on 127.0.0.1 (PostgreSQL on a Unix socket); every wait is bounded; the
child processes are stopped at the end, on Ctrl-C too, and die with this process otherwise
(``setpriv --pdeathsig``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(BENCH), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _seed  # noqa: E402
from tests.services import free_port  # noqa: E402

# Targets (issue 13): p99 at 50 calls/s, and the highest rate whose p99 stays within 100 ms.
TARGET_RATE = 50.0
TARGET_P99_MS = 5.0
RAMP_P99_MS = 100.0
TARGET_HIGHEST_RATE = 300.0
# Mean simulated seconds an agent is taken by a call: ring 1–3 s + talk 3–8 s.
OCCUPANCY_S = 7.5
DRAIN_S = 10.0


# --------------------------------------------------------------------------------------------
# Machine and statistics


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def product_version() -> dict[str, Any]:
    """The commit measured, and the product files that differed from it (work in progress)."""
    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return done.stdout
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "callcenter").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted_product_files": dirty}


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[k]


def histogram(values: list[float]) -> dict[str, int]:
    """Counts per latency bucket (ms, upper bounds)."""
    bounds = (2, 5, 10, 15, 20, 50, 100, 200, 500, 1000, 2000)
    out = {f"<={b}": 0 for b in bounds}
    out[">2000"] = 0
    for v in values:
        for b in bounds:
            if v <= b:
                out[f"<={b}"] += 1
                break
        else:
            out[">2000"] += 1
    return out


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


# --------------------------------------------------------------------------------------------
# Processes


class Children:
    """Every child process this benchmark started; ``kill_all`` is safe to call twice."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes] | asyncio.subprocess.Process] = []
        self.stoppers: list[Any] = []

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.stoppers.clear()


CHILDREN = Children()


def start_server(url: str, ami_port: int, http_port: int, log_path: Path,
                 trace_path: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``callcenter serve`` as production runs it: every background service on, every setting
    at its default, except where the server listens, its database and Asterisk, and the keys
    of the seeded data (``CALLCENTER_*`` of this process's environment are NOT passed on).
    With ``trace_path``, the same under ``_serve_traced.py`` (GC pauses and event-loop lag
    written to that file); ``extra_env``: more ``CALLCENTER_*`` (diagnostics only, e.g.
    ``--server-env CALLCENTER_SLA_INTERVAL=0``; the report lists them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update({
        "CALLCENTER_DATABASE_URL": url,
        "CALLCENTER_AMI_HOST": "127.0.0.1",
        "CALLCENTER_AMI_PORT": str(ami_port),
        "CALLCENTER_HTTP_HOST": "127.0.0.1",
        "CALLCENTER_HTTP_PORT": str(http_port),
        "CALLCENTER_ALLOWED_ORIGINS": f"http://127.0.0.1:{http_port}",
        "CALLCENTER_LOG_LEVEL": "WARNING",
        **_seed.KEY_ENV,  # the keys the seeded numbers are sealed with
        **(extra_env or {}),
    })
    argv = [sys.executable, "-m", "callcenter", "serve"]
    if trace_path is not None:
        env["CALLCENTER_BENCH_TRACE"] = str(trace_path)
        argv = [sys.executable, str(BENCH / "_serve_traced.py")]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["setpriv", "--pdeathsig=TERM", "--", *argv],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO)
    CHILDREN.procs.append(proc)
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the CLI turns it into an orderly cleanup
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class Simulator:
    """The simulator process, driven by JSON lines (see ``_sim_runner.py``)."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.pid = proc.pid

    @classmethod
    async def start(cls, agents: int, customers: int, time_scale: float, log_path: Path) -> Simulator:
        with open(log_path, "ab") as log:
            proc = await asyncio.create_subprocess_exec(
                "setpriv", "--pdeathsig=TERM", "--", sys.executable, str(BENCH / "_sim_runner.py"),
                "--agents", str(agents), "--customers", str(customers), "--time-scale", str(time_scale),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True, cwd=BENCH, limit=256 * 2**20)
        CHILDREN.procs.append(proc)
        first = await cls._read(proc, 30)
        if first.get("event") != "listening":
            raise RuntimeError(f"simulator said {first!r}")
        return cls(proc, int(first["port"]))

    @staticmethod
    async def _read(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the simulator exited; see its log")
        return json.loads(line)

    async def command(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read(self.proc, timeout)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --------------------------------------------------------------------------------------------
# The agents' websockets


@dataclass
class Pops:
    """What the clients received; ``arrived`` is (Linkedid, member) → monotonic ns."""

    arrived: dict[tuple[str, str], int] = field(default_factory=dict)
    # (Linkedid, member) → "known" | "unknown" | "anonymous" (what the pop said of the caller)
    kind: dict[tuple[str, str], str] = field(default_factory=dict)
    messages: int = 0
    hellos: int = 0
    closed: int = 0
    known: int = 0
    unknown: int = 0
    anonymous: int = 0
    no_history: int = 0
    bytes: int = 0


class Agents:
    def __init__(self, base: str, origin: str) -> None:
        self.base = base
        self.origin = origin
        self.pops = Pops()
        self.tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None

    async def connect(self, agents: list[_seed.Agent], timeout: float) -> None:
        """Open every agent's websocket (50 at a time), wait for each ``hello``, then read."""
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             cookie_jar=aiohttp.DummyCookieJar())
        sem = asyncio.Semaphore(50)

        async def one(agent: _seed.Agent) -> aiohttp.ClientWebSocketResponse:
            async with sem:
                ws = await self.session.ws_connect(  # type: ignore[union-attr]
                    f"{self.base}/ws", headers={"Origin": self.origin, "Cookie": f"cc_session={agent.token}"},
                    autoping=True, max_msg_size=0)
                first = await ws.receive(timeout=30)
            if first.type != aiohttp.WSMsgType.TEXT or json.loads(first.data).get("type") != "hello":
                raise RuntimeError(f"agent {agent.username}: expected hello, got {first!r}")
            self.pops.hellos += 1
            return ws

        sockets = await asyncio.wait_for(asyncio.gather(*(one(a) for a in agents)), timeout)
        self.tasks = [asyncio.create_task(self._read(ws)) for ws in sockets]

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        pops = self.pops
        arrived = pops.arrived
        async for msg in ws:
            t = time.monotonic_ns()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data: str = msg.data
            pops.messages += 1
            if '"type":"call.ringing"' not in data[:64]:
                continue
            pops.bytes += len(data)
            m = json.loads(data)
            call = m["call"]
            key = (call["id"], call["member"])
            arrived.setdefault(key, t)
            if m.get("lookup") == "unavailable":
                pops.no_history += 1  # the lookup took longer than the pop waits (2 s)
                pops.kind[key] = "lookup_late"
            elif m.get("customer"):
                pops.known += 1
                pops.kind[key] = "known"
            elif call.get("anonymous"):
                pops.anonymous += 1
                pops.kind[key] = "anonymous"
            else:
                pops.unknown += 1
                pops.kind[key] = "unknown"
        pops.closed += 1

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


# --------------------------------------------------------------------------------------------
# Resource sampling


class Usage:
    """CPU seconds of a set of processes between two snapshots; processes born in between
    count from zero (PostgreSQL backends)."""

    def __init__(self, roots: list[int], with_children: bool = False) -> None:
        self.roots = roots
        self.with_children = with_children
        self.start: dict[int, float] = {}

    def _procs(self) -> list[psutil.Process]:
        out = []
        for pid in self.roots:
            try:
                p = psutil.Process(pid)
            except psutil.Error:
                continue
            out.append(p)
            if self.with_children:
                with contextlib.suppress(psutil.Error):
                    out += p.children(recursive=True)
        return out

    def _cpu(self) -> dict[int, float]:
        cpu = {}
        for p in self._procs():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
        return cpu

    def begin(self) -> None:
        self.start = self._cpu()

    def end(self) -> float:
        return sum(v - self.start.get(pid, 0.0) for pid, v in self._cpu().items())


def py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def children_rss_mib(pid: int) -> float:
    """RSS of a process's descendants (MiB; 0 without any)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for c in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += c.memory_info().rss / 2**20
    return total


def rss_mib(pid: int) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return float("nan")


# --------------------------------------------------------------------------------------------
# One rate


async def health(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/health", timeout=aiohttp.ClientTimeout(total=10)) as r:
        return await r.json()


def read_trace(path: Path, t0: int, t1: int) -> dict[str, Any]:
    """GC pauses and event-loop lags of the server between monotonic ns ``t0`` and ``t1``."""
    gcs: dict[int, list[float]] = {0: [], 1: [], 2: []}
    lags: list[float] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if "gc" in rec and t0 <= rec["gc"][0] < t1:
                    gcs[rec["gc"][1]].append(rec["gc"][2])
                elif "lag" in rec and t0 <= rec["lag"][0] < t1:
                    lags.append(rec["lag"][1])
    return {
        "gc": {f"gen{g}": {"n": len(v), "total_ms": round(sum(v), 1), "max_ms": round(max(v, default=0), 1)}
               for g, v in gcs.items()},
        "loop_lag": {"over_5ms": len(lags), "over_20ms": sum(1 for x in lags if x > 20),
                     "over_50ms": sum(1 for x in lags if x > 50), "max_ms": round(max(lags, default=0), 1),
                     "worst": sorted(lags, reverse=True)[:8]},
    }


async def run_rate(*, rate: float, warmup: float, duration: float, sim: Simulator, agents: Agents,
                   server: subprocess.Popen[bytes], pg_pid: int | None, seed: int,
                   profile_to: Path | None, trace_path: Path | None = None) -> dict[str, Any]:
    total = warmup + duration
    pending = asyncio.create_task(sim.command(
        {"cmd": "run", "rate": rate, "duration": total, "seed": seed}, timeout=total + 60))
    t_cmd = time.monotonic()
    server_use, sim_use, me_use = Usage([server.pid]), Usage([sim.pid]), Usage([os.getpid()])
    # The server's own child processes (the SLA pass's), counted apart from the serving one.
    family_use = Usage([server.pid], with_children=True)
    pg_use = Usage([pg_pid], with_children=True) if pg_pid else None
    await asyncio.sleep(warmup)
    for u in (server_use, family_use, sim_use, me_use, pg_use):
        if u is not None:
            u.begin()
    sys0 = psutil.cpu_times()
    t_a = time.monotonic()
    spy = None
    if profile_to is not None:
        spy = subprocess.Popen([py_spy(), "record", "-p", str(server.pid), "-d", str(int(duration)),
                                "-r", "200", "--nonblocking", "--gil", "-f", "raw", "-o", str(profile_to)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        CHILDREN.procs.append(spy)
    rss: list[float] = []
    child_rss: list[float] = []
    while time.monotonic() < t_cmd + total:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        rss.append(rss_mib(server.pid))
        child_rss.append(children_rss_mib(server.pid))
        await asyncio.sleep(min(0.5, max(0.0, t_cmd + total - time.monotonic())))
    wall = time.monotonic() - t_a
    cpu = {"server": server_use.end(), "simulator": sim_use.end(), "clients": me_use.end(),
           "postgres": pg_use.end() if pg_use else None}
    cpu["server_children"] = max(0.0, family_use.end() - cpu["server"])
    sys1 = psutil.cpu_times()
    done = await pending
    if trace_path is not None:
        await asyncio.sleep(1.2)  # the tracer writes once a second
    if spy is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)

    window = (done["t_start_ns"] + int(warmup * 1e9), done["t_end_ns"])
    sent = {(lid, member): t for lid, member, t in done["sent"] if window[0] <= t < window[1]}
    arrived = agents.pops.arrived
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and any(k not in arrived for k in sent):
        await asyncio.sleep(0.2)
    timed = sorted(((arrived[k] - t) / 1e6, (t - window[0]) / 1e9) for k, t in sent.items() if k in arrived)
    by_kind: dict[str, list[float]] = {"known": [], "unknown": [], "anonymous": [], "lookup_late": []}
    for k, t in sent.items():
        if k in arrived:
            by_kind[agents.pops.kind.get(k, "known")].append((arrived[k] - t) / 1e6)
    lat = [ms for ms, _ in timed]
    lost = sum(1 for k in sent if k not in arrived)

    def share(field_name: str) -> float:
        d_total = sum(sys1) - sum(sys0)
        return 100 * (getattr(sys1, field_name, 0) - getattr(sys0, field_name, 0)) / d_total if d_total else 0.0

    busy = 100 - share("idle") - share("iowait")
    ours = sum(v for v in cpu.values() if v is not None)
    others = max(0.0, busy / 100 * (os.cpu_count() or 1) - ours / wall) * 100
    result = {
        "rate": rate,
        "achieved_rate": round(done["placed"] / done["wall_s"], 1),
        "generator_worst_lag_ms": round(done["worst_lag_ms"], 1),
        "ami_events_per_s": round(done["events"] / done["wall_s"]),
        "pops_sent": len(sent), "pops": len(lat), "lost": lost,
        "p50_ms": _r(percentile(lat, 0.50), 2), "p90_ms": _r(percentile(lat, 0.90), 2),
        "p99_ms": _r(percentile(lat, 0.99), 2), "max_ms": _r(lat[-1] if lat else None, 2),
        "server_cpu_pct": round(100 * cpu["server"] / wall, 1),
        "server_children_cpu_pct": round(100 * cpu["server_children"] / wall, 1),
        "server_rss_mib_max": round(max(rss), 1) if rss else None,
        "server_children_rss_mib_max": round(max(child_rss), 1) if child_rss else None,
        # First and last sample of the run (warm-up included): growth from run to run = a leak.
        "server_rss_mib_first": round(rss[0], 1) if rss else None,
        "server_rss_mib_last": round(rss[-1], 1) if rss else None,
        "postgres_cpu_pct": None if cpu["postgres"] is None else round(100 * cpu["postgres"] / wall, 1),
        "simulator_cpu_pct": round(100 * cpu["simulator"] / wall, 1),
        "clients_cpu_pct": round(100 * cpu["clients"] / wall, 1),
        "machine_busy_pct": round(busy, 1), "steal_pct": round(share("steal"), 1),
        "others_cpu_pct": round(others, 1),
        # Latency by caller: known customers pay the full lookup, unknown numbers a short one
        # (customer by number + calls by number), withheld numbers none; "lookup_late": pops
        # sent without history because the lookup took longer than the pop waits for it (2 s).
        "by_caller": {kind: {"n": len(v), "p50_ms": _r(percentile(sorted(v), 0.5), 2),
                             "p99_ms": _r(percentile(sorted(v), 0.99), 2)} for kind, v in by_kind.items()},
        "live_calls_at_end": done["live_calls"],
        # The ten slowest pops: (ms, seconds into the measured window) — clustered = a stall.
        "slowest": [(round(ms, 1), round(at, 2)) for ms, at in sorted(timed, reverse=True)[:10]],
        "histogram_ms": histogram(lat),
    }
    if trace_path is not None:
        result["server_trace"] = read_trace(trace_path, window[0], window[1])
    return result


def _trim_lat(r: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:g}"
    return (f"{r['rate']:>6g} {r['achieved_rate']:>7g} {r['pops']:>6} {r['lost']:>5} "
            f"{f(r['p50_ms']):>7} {f(r['p90_ms']):>7} {f(r['p99_ms']):>8} {f(r['max_ms']):>8} "
            f"{r['server_cpu_pct']:>6g} {r['server_children_cpu_pct']:>6g} {f(r['server_rss_mib_first']):>7} {f(r['server_rss_mib_max']):>7} "
            f"{f(r['postgres_cpu_pct']):>6} "
            f"{r['simulator_cpu_pct']:>6g} {r['clients_cpu_pct']:>6g} {r['machine_busy_pct']:>5g} "
            f"{r['steal_pct']:>5g} {r['others_cpu_pct']:>6g}")


HEADER = (f"{'rate':>6} {'got/s':>7} {'pops':>6} {'lost':>5} {'p50':>7} {'p90':>7} {'p99':>8} {'max':>8} "
          f"{'srvCPU':>6} {'child':>6} {'RSS0':>7} {'RSSmax':>7} {'pgCPU':>6} {'simCPU':>6} {'cliCPU':>6} {'busy':>5} {'steal':>5} {'others':>6}\n"
          f"{'calls/s':>6} {'':>7} {'':>6} {'':>5} {'ms':>7} {'ms':>7} {'ms':>8} {'ms':>8} "
          f"{'%core':>6} {'%core':>6} {'MiB':>7} {'MiB':>7} {'%core':>6} {'%core':>6} {'%core':>6} {'%mach':>5} {'%':>5} {'%core':>6}")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median over repeated runs of one rate (counts summed)."""
    if len(runs) == 1:
        return dict(runs[0], runs=1)
    out: dict[str, Any] = {"rate": runs[0]["rate"], "runs": len(runs)}
    for k, v in runs[0].items():
        if k == "rate":
            continue
        vals = [r[k] for r in runs if r[k] is not None]
        if isinstance(v, (list, dict)):
            out[k] = [r[k] for r in runs]
        elif k in ("pops_sent", "pops", "lost"):
            out[k] = sum(vals)
        elif not vals:
            out[k] = None
        else:
            vals.sort()
            mid = len(vals) // 2
            out[k] = vals[mid] if len(vals) % 2 else round((vals[mid - 1] + vals[mid]) / 2, 2)
    out["p99_ms_each"] = [r["p99_ms"] for r in runs]
    return out


# --------------------------------------------------------------------------------------------
# One database


async def bench_database(db: str, args: argparse.Namespace, sizes: _seed.Sizes, data_dir: Path,
                         time_scale: float, deadline: float) -> dict[str, Any]:
    print(f"\n=== {db} ===", flush=True)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    pg = None
    if db == "postgresql":
        pg = _seed.BenchPostgres(data_dir / "postgresql")
        CHILDREN.stoppers.append(pg.stop)
        pg.start()
        url, seeded = await _seed.ensure_postgres(pg, sizes)
    else:
        url, seeded = await _seed.ensure_sqlite(data_dir, sizes)
    if args.seed_only:
        if pg is not None:
            pg.stop()
            CHILDREN.stoppers.remove(pg.stop)
        return {"database": db, "seed": seeded, "rates": [], "verdict": verdict([])}
    agent_list, admin_token = await _seed.prepare_run(url, sizes.agents)

    sim = await Simulator.start(sizes.agents, sizes.customers, time_scale, logs / f"sim-{db}-{stamp}.log")
    http_port = free_port()
    server_log = logs / f"server-{db}-{stamp}.log"
    trace_path = logs / f"trace-{db}-{stamp}.jsonl" if args.trace_server else None
    server = start_server(url, sim.port, http_port, server_log, trace_path, extra_env=args.server_env)
    if args.nice:
        # Our processes only (PostgreSQL's backends inherit the postmaster's niceness).
        for pid in (server.pid, sim.pid, os.getpid(), pg.process.pid if pg and pg.process else None):
            if pid:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).nice(args.nice)
    base = f"http://127.0.0.1:{http_port}"
    agents = Agents(base, base)
    results: list[dict[str, Any]] = []
    out: dict[str, Any] = {"database": db, "seed": seeded, "server_log": str(server_log)}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                         headers={"Cookie": f"cc_session={admin_token}"}) as http:
            t_end = time.monotonic() + 120
            h: dict[str, Any] = {}
            while time.monotonic() < t_end:
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited ({server.returncode}); see {server_log}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    h = await health(http, base)
                    if h.get("ami", {}).get("state") == "connected" and h.get("database") == "ok":
                        break
                await asyncio.sleep(0.2)
            else:
                raise TimeoutError(f"server not healthy within 120 s: {h}; see {server_log}")
            out["server_rss_mib_idle"] = round(rss_mib(server.pid), 1)
            t0 = time.monotonic()
            await agents.connect(agent_list, timeout=180)
            if args.gc_freeze:
                server.send_signal(signal.SIGUSR2)  # _serve_traced.py: gc.collect(); gc.freeze()
                await asyncio.sleep(2)
            h = await health(http, base)
            out["websockets_connect_s"] = round(time.monotonic() - t0, 1)
            out["server_rss_mib_connected"] = round(rss_mib(server.pid), 1)
            print(f"server pid {server.pid} (RSS {out['server_rss_mib_idle']} MiB idle, "
                  f"{out['server_rss_mib_connected']} MiB with {h['websockets']} websockets, "
                  f"connected in {out['websockets_connect_s']} s); simulator pid {sim.pid}; "
                  f"AMI {h['ami']['state']}", flush=True)
            print(HEADER, flush=True)
            for i, rate in enumerate(args.rates):
                runs = []
                for k in range(args.repeat):
                    if time.monotonic() > deadline:
                        print(f"time budget (--max-minutes {args.max_minutes}) spent: stopping", flush=True)
                        break
                    prof = None
                    if args.py_spy is not None:
                        prof = args.py_spy / f"{db}-{rate:g}-{k}.txt"
                    before = (await health(http, base)).get("ami", {}).get("sessions")
                    r = await run_rate(rate=rate, warmup=args.warmup, duration=args.duration, sim=sim,
                                       agents=agents, server=server,
                                       pg_pid=pg.process.pid if pg and pg.process else None,
                                       seed=1000 * i + k + 1, profile_to=prof, trace_path=trace_path)
                    after = (await health(http, base)).get("ami", {}).get("sessions")
                    r["ami_reconnects"] = None if before is None or after is None else after - before
                    runs.append(r)
                    print(_trim_lat(r), flush=True)
                if not runs:
                    break
                results.append(median_of(runs))
                if len(runs) > 1:
                    print(f"{'median':>6} " + _trim_lat(results[-1])[7:], flush=True)
                worst = results[-1]
                if not args.keep_going and (worst["p99_ms"] is None or worst["p99_ms"] > RAMP_P99_MS
                                            or worst["lost"] > 0.01 * max(1, worst["pops_sent"])):
                    break
            if trace_path is not None:
                server.send_signal(signal.SIGUSR1)  # the tracer writes the heap's make-up
                await asyncio.sleep(3)
                heaps = [json.loads(x)["heap"] for x in trace_path.read_text().splitlines() if x.startswith('{"heap"')]
                out["server_heap"] = heaps[-1] if heaps else None
                if heaps:
                    print(f"server heap: {heaps[-1]['tracked']:,} objects tracked by the GC; commonest: "
                          + ", ".join(f"{n} {c:,}" for n, c in heaps[-1]["by_type"][:8]), flush=True)
            h = await health(http, base)
            out["server_rss_mib_end"] = round(rss_mib(server.pid), 1)
            out["ami_sessions"] = h.get("ami", {}).get("sessions")
            out["ami_events"] = h.get("ami", {}).get("events")
            out["websockets_at_end"] = h.get("websockets")
    finally:
        await agents.close()
        stop_server(server)
        await sim.stop()
        if pg is not None:
            pg.stop()
            with contextlib.suppress(ValueError):
                CHILDREN.stoppers.remove(pg.stop)
    out["rates"] = results
    out["pops_received"] = {"known": agents.pops.known, "unknown": agents.pops.unknown,
                            "anonymous": agents.pops.anonymous, "without_history": agents.pops.no_history,
                            "mean_bytes": round(agents.pops.bytes / max(1, len(agents.pops.arrived)))}
    out["verdict"] = verdict(results)
    return out


def verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    at_target = next((r for r in results if r["rate"] == TARGET_RATE), None)
    highest = None
    for r in sorted(results, key=lambda r: r["rate"]):
        if r["p99_ms"] is None or r["p99_ms"] > RAMP_P99_MS or r["lost"] > 0:
            break
        highest = r["rate"]
    return {
        "p99_at_50_ms": at_target["p99_ms"] if at_target else None,
        "p99_at_50_ok": (at_target is not None and at_target["p99_ms"] is not None
                         and at_target["p99_ms"] <= TARGET_P99_MS and at_target["lost"] == 0),
        "highest_rate_p99_le_100ms": highest,
        "highest_rate_ok": highest is not None and highest >= TARGET_HIGHEST_RATE,
    }


def pick_time_scale(value: str, agents: int, max_rate: float) -> float:
    """``auto``: the largest of 1, 0.5, 0.25, 0.1, 0.05, 0.02 at which the highest rate keeps at
    most half of the agents busy (so calls never wait for a free agent and every call rings at
    once; the events per call are the same at any scale)."""
    if value != "auto":
        return float(value)
    for s in (1.0, 0.5, 0.25, 0.1, 0.05, 0.02):
        if max_rate * OCCUPANCY_S * s <= 0.5 * agents:
            return s
    return 0.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--rates", default="50,100,150,200,250,300,350,400",
                   help="calls/s, ascending; the ramp stops at the first p99 > 100 ms")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per rate")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of traffic before measuring")
    p.add_argument("--repeat", type=int, default=1, help="runs per rate (the medians are reported)")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=3_000_000)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--time-scale", default="auto",
                   help="simulator time scale (call durations); auto: calls never wait for an agent")
    p.add_argument("--keep-going", action="store_true", help="run every rate even past p99 > 100 ms")
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop starting new runs after this")
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/callcenter-bench"),
                   help="cached databases, PostgreSQL cluster and logs")
    p.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                   help="record the server with py-spy (raw stacks, samples holding the GIL = CPU of the Python thread) during each measured window")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness for the benchmark's processes (e.g. -10 on a machine shared with "
                        "other work: the figures then show the product, not the neighbours)")
    p.add_argument("--trace-server", action="store_true",
                   help="run the server under bench/_serve_traced.py: GC pauses and event-loop "
                        "lag per measured window")
    p.add_argument("--gc-freeze", action="store_true",
                   help="experiment (implies --trace-server): gc.freeze() in the server once the "
                        "websockets are connected — not what the product does")
    p.add_argument("--seed-only", action="store_true", help="seed (or check the cache) and stop")
    p.add_argument("--server-env", action="append", default=[], metavar="CALLCENTER_X=VALUE",
                   help="diagnostics: a setting passed to the server (repeatable); without it the "
                        "server runs exactly as `callcenter serve` in production, every background "
                        "service on at its default")
    p.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = p.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    env: dict[str, str] = {}
    for item in args.server_env:
        k, sep, v = item.partition("=")
        if not sep or not k.startswith("CALLCENTER_"):
            p.error(f"--server-env {item!r}: CALLCENTER_NAME=VALUE")
        env[k] = v
    args.server_env = env
    if args.gc_freeze:
        args.trace_server = True
    if not args.rates or any(r <= 0 for r in args.rates):
        p.error("--rates: positive numbers")
    if min(args.customers, args.orders, args.agents) < 1 or args.duration <= 0 or args.repeat < 1:
        p.error("sizes, --duration and --repeat must be positive")
    return args


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = _seed.Sizes(args.customers, args.orders, args.agents)
    time_scale = pick_time_scale(args.time_scale, args.agents, max(args.rates))
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    report: dict[str, Any] = {
        "command": command, "machine": machine(), "product": product_version(), "sizes": dataclasses.asdict(sizes),
        "time_scale": time_scale, "warmup_s": args.warmup, "duration_s": args.duration,
        "repeat": args.repeat, "nice": args.nice, "trace_server": args.trace_server,
        "gc_freeze_experiment": args.gc_freeze, "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "server_env": args.server_env, "databases": [],
    }
    m = report["machine"]
    print(f"command: {command}\nmachine: {m['nproc']} cores, {m['cpu_model']}, {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}, Linux {m['kernel']}, load {m['loadavg_at_start']}\n"
          f"product: commit {report['product']['commit']}"
          f"{' + uncommitted ' + ', '.join(report['product']['uncommitted_product_files']) if report['product']['uncommitted_product_files'] else ''}\n"
          f"sizes: {sizes.customers:,} customers, {sizes.orders:,} work orders, {sizes.agents} agents "
          f"(websockets); simulator time scale {time_scale:g} (ring {time_scale:g}–{3 * time_scale:g} s, "
          f"talk {3 * time_scale:g}–{8 * time_scale:g} s)\n"
          f"server: `callcenter serve`, every background service on, default settings"
          f"{' EXCEPT ' + ' '.join(f'{k}={v}' for k, v in args.server_env.items()) + ' (diagnostic)' if args.server_env else ''}",
          flush=True)
    if args.py_spy is not None:
        if not Path(py_spy()).exists():
            raise SystemExit("--py-spy: py-spy is not installed (pip install py-spy)")
        args.py_spy.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * args.max_minutes
    dbs = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for db in dbs:
        report["databases"].append(await bench_database(db, args, sizes, args.data_dir, time_scale, deadline))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    if args.seed_only:
        return report
    print("\n=== verdict ===")
    for d in report["databases"]:
        v = d["verdict"]
        print(f"{d['database']:>10}: p99 at 50 calls/s = {v['p99_at_50_ms']} ms "
              f"(target ≤ {TARGET_P99_MS:g}: {'met' if v['p99_at_50_ok'] else 'MISSED'}); "
              f"highest rate with p99 ≤ {RAMP_P99_MS:g} ms = {v['highest_rate_p99_le_100ms']} calls/s "
              f"(target ≥ {TARGET_HIGHEST_RATE:g}: {'met' if v['highest_rate_ok'] else 'MISSED'}); "
              f"server RSS {d.get('server_rss_mib_connected')} MiB connected → {d.get('server_rss_mib_end')} MiB at the end")
    print(f"measured: commit {report['product']['commit']}"
          f"{' + uncommitted ' + ', '.join(report['product']['uncommitted_product_files']) if report['product']['uncommitted_product_files'] else ''}"
          f" on {m['nproc']} cores ({m['cpu_model']}), load {m['loadavg_at_start']} at start, "
          f"{[round(x, 2) for x in os.getloadavg()]} at the end"
          f"{'; server settings changed: ' + ' '.join(f'{k}={v}' for k, v in args.server_env.items()) if args.server_env else ''}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        CHILDREN.kill_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

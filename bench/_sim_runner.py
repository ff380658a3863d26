"""The simulator's process for bench/screen_pop.py (not meant to be run by hand).

One ``AmiSimulator`` with one queue ``aftersales`` whose members are the agents' extensions
as IAX2 devices (``IAX2/agent8001/agent8001``), ``style="iax2"`` and ``full_events=True``: the
whole event stream of ``iax_inbound_answered`` (dialplan class included), as a manager user
with ``read = all`` receives it.

Its ``on_sent`` hook (``on_sent(event_name, fields, t_monotonic_ns)``, called right after the
frame was handed to every logged-in client's transport) records, for every ``AgentCalled``, the
Linkedid, the MemberName and that send time. CLOCK_MONOTONIC is one clock for every process
of the machine, so the benchmark compares it with the time the pop reached the client.

Protocol: JSON lines. It prints ``{"event": "listening", "port": P}``; then reads commands on
stdin: ``{"cmd": "run", "rate": R, "duration": D, "seed": S}`` places calls at R calls/s for
D wall seconds and prints ``{"event": "done", ...}`` with the sends; ``{"cmd": "quit"}`` (or
end of input) stops. Calls in progress go on between runs.

Callers: a seeded customer's number (drawn uniformly among ``--customers`` ids, in one of the
spellings a trunk uses), 10 % unknown mobiles, 2 % withheld — the defaults of the simulator's
``TrafficProfile``. The schedule is the simulator's own ``run_traffic`` loop, re-written here
because that one copies its whole ``callers`` list on every call (``rng.choice(list(callers))``:
5–16 ms per call for a million numbers on this machine, which caps the generator well below
100 calls/s) and would need the million numbers shipped to this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time

from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator.server import AmiSimulator

from _numbers import dialled_spelling, mobile_of, random_mobile

UNKNOWN_RATIO = 0.10
ANONYMOUS_RATIO = 0.02
ABANDON_RATIO = 0.05


class Recorder:
    """The ``on_sent`` hook: AgentCalled send times, everything else ignored cheaply."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.events = 0

    def __call__(self, name: str, fields: dict[str, str], t_ns: int) -> None:
        self.events += 1
        if name == "AgentCalled":
            self.sent.append((fields["Linkedid"], fields["MemberName"], t_ns))


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def traffic(sim: AmiSimulator, rate: float, duration: float, customers: int, seed: int) -> dict:
    """Place calls every 1/rate s (keeping the schedule, not the spacing) for ``duration`` s."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    start = loop.time()
    placed = 0
    worst_lag = 0.0
    while True:
        now = loop.time()
        if now - start >= duration:
            break
        worst_lag = max(worst_lag, now - (start + placed / rate))
        roll = rng.random()
        if roll < ANONYMOUS_RATIO:
            caller: str | None = None
        elif roll < ANONYMOUS_RATIO + UNKNOWN_RATIO or customers == 0:
            caller = random_mobile(rng)
        else:
            caller = dialled_spelling(mobile_of(rng.randint(1, customers)), rng)
        await sim.place_call(
            caller=caller,
            queue="aftersales",
            answer_after=rng.uniform(1.0, 3.0),
            talk=rng.uniform(3.0, 8.0),
            abandon_after=rng.uniform(3.0, 15.0) if rng.random() < ABANDON_RATIO else None,
            hangup_by="caller" if rng.random() < 0.5 else "agent",
        )
        placed += 1
        await asyncio.sleep(max(0.0, start + placed / rate - loop.time()))
    return {"placed": placed, "wall_s": loop.time() - start, "worst_lag_ms": worst_lag * 1000}


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", type=int, required=True)
    p.add_argument("--customers", type=int, required=True)
    p.add_argument("--time-scale", type=float, required=True)
    p.add_argument("--username", default="callcenter")
    p.add_argument("--secret", default="s3cret-ami")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    members = tuple(MemberConfig(str(8000 + i), f"IAX2/agent{8000 + i}/agent{8000 + i}")
                    for i in range(1, args.agents + 1))
    config = SimulatorConfig(host="127.0.0.1", port=0, username=args.username, secret=args.secret,
                             queues=(QueueConfig("aftersales", members),), style="iax2",
                             full_events=True, time_scale=args.time_scale)
    rec = Recorder()
    sim = AmiSimulator(config, on_sent=rec)
    port = await sim.start()
    _emit({"event": "listening", "port": port})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            if cmd["cmd"] == "clients":
                _emit({"event": "clients", "clients": sim.clients})
            elif cmd["cmd"] == "run":
                rec.sent = []
                rec.events = 0
                cpu0, t0 = time.process_time(), time.monotonic_ns()
                stats = await traffic(sim, float(cmd["rate"]), float(cmd["duration"]),
                                      args.customers, int(cmd.get("seed", 1)))
                cpu1, t1 = time.process_time(), time.monotonic_ns()
                _emit({"event": "done", "t_start_ns": t0, "t_end_ns": t1, "cpu_s": cpu1 - cpu0,
                       "events": rec.events, "live_calls": len(sim.engine.tasks),
                       "clients": sim.clients, "sent": rec.sent, **stats})
    finally:
        await sim.aclose()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

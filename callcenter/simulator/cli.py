"""``callcenter simulate``: run the AMI simulator with steady inbound traffic.

The main CLI calls :func:`add_arguments` on its sub-parser and awaits :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path

from .config import (
    PROJECT_CHANNELVARS,
    QueueConfig,
    SimulatorConfig,
    parse_channelvars,
    parse_queue_spec,
)
from .engine import log
from .server import AmiSimulator

DESCRIPTION = """\
A simulated Asterisk 22 manager interface (AMI) with queues, agents and a trunk, placing
inbound calls at --rate.

Channel variables: like a real Asterisk with the project's dialplans/manager.conf
(channelvars = CALLBACK_JOB,WORK_ORDER), events carry one ChanVariable: NAME=value header per
variable (DestChanVariable, LocalOneChanVariable, LocalTwoChanVariable for the other channels
of an event; ChanVariable(<channel>): NAME=value on an answered OriginateResponse).
--channelvars "" turns them off, as in the lab recordings.

Restart: send SIGUSR1 to this process (kill -USR1 <pid>; the pid is logged at start) and the
simulator restarts like "core restart now": Event: Shutdown (Restart: True) to every client,
every socket closed, connections refused for --restart-down seconds, then FullyBooted with
Uptime: 0 and every dynamic queue member, channel and queue counter gone (static members stay).
--restart-every N also restarts it every N seconds.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5038, help="TCP port (0: any free port)")
    parser.add_argument("--username", default="callcenter", help="manager user name")
    parser.add_argument("--secret", default="s3cret-ami", help="manager secret")
    parser.add_argument("--rate", type=float, default=0.2,
                        help="new inbound calls per second (0: no generated traffic)")
    parser.add_argument("--queue", action="append", default=[], metavar="NAME=MEMBER:IFACE,...",
                        help="a queue and its members, repeatable "
                             "(default: aftersales with 8001..8005 as Local/800N@agents/n)")
    parser.add_argument("--callers", default="",
                        help="known caller numbers: a file (one per line) or a comma list")
    parser.add_argument("--style", choices=("local", "iax2"), default="local",
                        help="channel style: Local halves or IAX2 trunk/devices")
    parser.add_argument("--full-events", action="store_true",
                        help="also emit dialplan-class events (VarSet, Newexten)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every simulated duration (0.1 = ten times faster)")
    parser.add_argument("--channelvars", default=",".join(PROJECT_CHANNELVARS), metavar="A,B",
                        help="manager.conf channelvars: variables shown on every channel event "
                             "(default: %(default)s, as dialplans/manager.conf; \"\": none)")
    parser.add_argument("--restart-down", type=float, default=1.0, metavar="SECONDS",
                        help="on SIGUSR1 (or --restart-every), refuse connections this long "
                             "before coming back (default: %(default)s)")
    parser.add_argument("--restart-every", type=float, default=0.0, metavar="SECONDS",
                        help="restart the simulated Asterisk every SECONDS (0: only on SIGUSR1)")


def load_callers(value: str) -> list[str]:
    """A path to a file with one number per line, or a comma-separated list."""
    if not value:
        return []
    path = Path(value)
    text = path.read_text("utf-8") if path.is_file() else value.replace(",", "\n")
    return [line.strip() for line in text.splitlines() if line.strip()]


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Raises ValueError naming the bad option."""
    queues: tuple[QueueConfig, ...] = tuple(parse_queue_spec(s) for s in args.queue)
    if args.restart_down < 0 or args.restart_every < 0:
        raise ValueError("--restart-down and --restart-every must be >= 0")
    return SimulatorConfig(
        host=args.host, port=args.port, username=args.username, secret=args.secret,
        queues=queues, style=args.style, full_events=args.full_events,
        time_scale=args.time_scale,
        channelvars=parse_channelvars(args.channelvars),
    )


def restart_in_background(sim: AmiSimulator, down_for: float) -> asyncio.Task[None]:
    """``sim.restart(down_for)`` as a task whose failure is logged (SIGUSR1's handler)."""

    async def go() -> None:
        try:
            await sim.restart(down_for)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated restart failed")

    return asyncio.get_running_loop().create_task(go())


async def run(args: argparse.Namespace) -> None:
    """Serve until cancelled (Ctrl-C); generated traffic runs for as long as the server.
    SIGUSR1 restarts the simulated Asterisk (:meth:`AmiSimulator.restart`)."""
    try:
        config = config_from_args(args)
        callers = load_callers(args.callers)
    except (ValueError, OSError) as e:
        raise SystemExit(f"callcenter simulate: {e}") from None
    sim = AmiSimulator(config)
    await sim.start()
    log.info("queues: %s; %d known callers; %.2f calls/s",
             ", ".join(f"{q.name}({len(q.members)})" for q in config.queues), len(callers),
             args.rate)
    loop = asyncio.get_running_loop()
    down_for = args.restart_down
    restarts: set[asyncio.Task[None]] = set()

    def on_sigusr1() -> None:
        log.warning("SIGUSR1: restarting the simulated Asterisk")
        task = restart_in_background(sim, down_for)
        restarts.add(task)
        task.add_done_callback(restarts.discard)

    installed = False
    with contextlib.suppress(NotImplementedError, AttributeError, RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, on_sigusr1)
        installed = True
    if installed:
        log.info("pid %d: kill -USR1 %d restarts the simulated Asterisk", os.getpid(), os.getpid())

    async def every(period: float) -> None:
        while True:
            await asyncio.sleep(period)
            await sim.restart(down_for)

    periodic = loop.create_task(every(args.restart_every)) if args.restart_every > 0 else None
    try:
        if args.rate > 0:
            await sim.run_traffic(args.rate, None, callers)
        else:
            await asyncio.Event().wait()
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGUSR1)
        for t in [*restarts, *([periodic] if periodic else [])]:
            t.cancel()
        await sim.aclose()
        log.info("AMI simulator stopped")

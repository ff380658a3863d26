"""``callcenter simulate``: run the AMI simulator with steady inbound traffic.

The main CLI calls :func:`add_arguments` on its sub-parser and awaits :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .config import QueueConfig, SimulatorConfig, parse_queue_spec
from .engine import log
from .server import AmiSimulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    return SimulatorConfig(
        host=args.host, port=args.port, username=args.username, secret=args.secret,
        queues=queues, style=args.style, full_events=args.full_events,
        time_scale=args.time_scale,
    )


async def run(args: argparse.Namespace) -> None:
    """Serve until cancelled (Ctrl-C); generated traffic runs for as long as the server."""
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
    try:
        if args.rate > 0:
            await sim.run_traffic(args.rate, None, callers)
        else:
            await asyncio.Event().wait()
    finally:
        await sim.aclose()
        log.info("AMI simulator stopped")

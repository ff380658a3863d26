"""The simulator as ``callcenter demo`` runs it: one queue of the demo agents, steady traffic."""

from __future__ import annotations

from collections.abc import Sequence

from .config import MemberConfig, QueueConfig, SimulatorConfig
from .server import AmiSimulator


async def start_demo_simulator(
    *,
    username: str,
    secret: str,
    members: Sequence[str],
    callers: Sequence[str],
    rate: float,
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 1.0,
) -> tuple[AmiSimulator, int]:
    """Start a simulator whose queue ``aftersales`` has ``members`` (extensions, e.g. "8001",
    as ``Local/8001@agents/n``) and place calls from ``callers`` at ``rate`` calls/s.

    Returns the simulator (``await sim.stop()`` ends it and its traffic) and its port.
    Raises OSError if the port is taken.
    """
    queue = QueueConfig("aftersales",
                        tuple(MemberConfig(ext, f"Local/{ext}@agents/n") for ext in members))
    sim = AmiSimulator(SimulatorConfig(host=host, port=port, username=username, secret=secret,
                                       queues=(queue,), time_scale=time_scale))
    bound = await sim.start()
    if rate > 0:
        sim.start_traffic(rate, None, callers)
    return sim, bound

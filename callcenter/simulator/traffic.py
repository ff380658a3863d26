"""The traffic generator: inbound calls at a steady rate with randomised behaviour."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import AmiSimulator


def mask_phone(number: str) -> str:
    """``13800138000`` → ``138****8000``: logs never carry a full phone number."""
    if len(number) <= 7:
        return "*" * len(number) if number else "<anonymous>"
    return f"{number[:3]}****{number[-4:]}"


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """How generated callers behave. Times are simulated seconds (scaled by time_scale)."""

    queue: str | None = None  # None: every configured queue in turn
    # Share of calls from numbers not in ``callers`` (customers the CRM does not know).
    unknown_ratio: float = 0.1
    # Share of calls without caller id (``<unknown>``).
    anonymous_ratio: float = 0.02
    # Share of callers who give up while queued, after 3-15 s.
    abandon_ratio: float = 0.05
    # Share of completed calls the caller ends (AgentComplete Reason: caller).
    caller_hangup_ratio: float = 0.5
    ring: tuple[float, float] = (1.0, 3.0)  # the lab's agents: Wait(RAND(1,3)) then Answer()
    talk: tuple[float, float] = (3.0, 8.0)
    seed: int | None = None


def _random_mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


async def run_traffic(sim: AmiSimulator, rate: float, duration: float | None,
                      callers: Sequence[str], prof: TrafficProfile) -> int:
    """Place calls every ``1/rate`` wall seconds (like burst_10_calls' fixed spacing) for
    ``duration`` wall seconds or until cancelled. Returns the number placed: none while a
    restart has the simulator down (the schedule goes on)."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate!r}")
    rng = random.Random(prof.seed)
    callers = tuple(callers)  # once: a million numbers copied per call capped the rate
    queues = [prof.queue] if prof.queue else list(sim.engine.queues)
    loop = asyncio.get_running_loop()
    start = loop.time()
    placed = 0
    ticks = 0
    while duration is None or loop.time() - start < duration:
        roll = rng.random()
        if roll < prof.anonymous_ratio:
            number: str | None = None
        elif roll < prof.anonymous_ratio + prof.unknown_ratio or not callers:
            number = _random_mobile(rng)
        else:
            number = rng.choice(callers)
        abandon = rng.uniform(3.0, 15.0) if rng.random() < prof.abandon_ratio else None
        answer_after = rng.uniform(*prof.ring)
        talk = rng.uniform(*prof.talk)
        hangup_by = "caller" if rng.random() < prof.caller_hangup_ratio else "agent"
        if not sim.restarting:
            await sim.place_call(
                caller=number,
                queue=queues[placed % len(queues)],
                answer_after=answer_after,
                talk=talk,
                abandon_after=abandon,
                hangup_by=hangup_by,
            )
            placed += 1
        ticks += 1
        # Keep the schedule, not the spacing: a slow iteration does not lower the rate.
        await asyncio.sleep(max(0.0, start + ticks / rate - loop.time()))
    return placed

"""The wallboard's figures: pure functions of counts and times (tested with hand-computed tables).

Definitions (the same text is shown on the screen, :data:`FORMULAS`). "Today" is the centre's
day (``CALLCENTER_TIMEZONE``); a call belongs to the day and the queue it joined.

- offered 呼入: calls that joined the queue (``QueueCallerJoin``);
- answered 接通: calls an agent answered (``AgentConnect``);
- abandoned 放弃: callers who hung up while waiting (``QueueCallerAbandon``); calls that left on
  the queue's timeout are offered but neither answered nor abandoned;
- completed 已结束: answered calls whose conversation ended (``AgentComplete``);
- service level 服务水平 = completed calls answered within the queue's threshold (hold time ≤
  ``ServiceLevel``, 20 s by default) ÷ completed calls × 100 — Asterisk's own
  ``ServicelevelPerf``; no completed call → no figure (Asterisk prints 0.0);
- ASA 平均应答时长 = Σ hold time of answered calls ÷ answered calls (s);
- AHT 平均通话时长 = Σ talk time of completed calls ÷ completed calls (s) — talk only, the
  wrap-up pause is counted in the agents' 话后处理 state, not here;
- abandon rate 放弃率 = abandoned ÷ offered × 100;
- longest wait 最长等待 = now − the earliest join among callers still waiting (s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FORMULAS: dict[str, str] = {
    "offered": "呼入 = 今日进入该队列的来电数",
    "answered": "接通 = 今日由坐席接起的来电数",
    "abandoned": "放弃 = 今日在排队中挂断的来电数 (超时离队不计)",
    "service_level": "服务水平 = 阈值内接起且已结束的通话 ÷ 已结束的接通通话 × 100% (同 Asterisk ServicelevelPerf)",
    "asa": "ASA 平均应答时长 = 接通通话的排队时长之和 ÷ 接通数",
    "aht": "AHT 平均通话时长 = 已结束通话的通话时长之和 ÷ 已结束通话数 (不含话后处理)",
    "abandon_rate": "放弃率 = 放弃数 ÷ 呼入数 × 100%",
    "longest_wait": "最长等待 = 当前时间 − 仍在排队的来电中最早进入队列的时间",
    "time_in_state": "状态时长 = 当前时间 − 进入当前状态的时间",
    "talk_time": "通话时长 = 该坐席今日已结束通话的通话时长之和",
}


def ratio(part: int, whole: int) -> float | None:
    """``part / whole × 100`` rounded to one decimal (as Asterisk prints ``%2.1f``); None for
    an empty whole."""
    if whole <= 0:
        return None
    return round(100.0 * part / whole, 1)


def service_level(completed_in_sl: int, completed: int) -> float | None:
    """Asterisk's ``ServicelevelPerf``: completed calls answered within the threshold, in %."""
    return ratio(completed_in_sl, completed)


def service_level_with_abandoned(completed_in_sl: int, abandoned_in_sl: int,
                                 completed: int, abandoned: int) -> float | None:
    """Asterisk's ``ServicelevelPerf2``: callers who abandoned within the threshold count as
    served in time."""
    return ratio(completed_in_sl + abandoned_in_sl, completed + abandoned)


def in_service_level(hold_s: int, threshold_s: int) -> bool:
    """Whole seconds, inclusive: Asterisk compares ``now - joined <= servicelevel``."""
    return hold_s <= threshold_s


def average(total: int, count: int) -> float | None:
    """Mean in seconds, one decimal; None without calls."""
    if count <= 0:
        return None
    return round(total / count, 1)


def abandon_rate(abandoned: int, offered: int) -> float | None:
    return ratio(abandoned, offered)


def longest_wait(joined: Iterable[float], now: float) -> int:
    """Whole seconds the longest-waiting caller has waited (0 with nobody waiting)."""
    earliest = min(joined, default=None)
    return 0 if earliest is None else max(0, int(now - earliest))


def time_in_state(since: float, now: float) -> int:
    return max(0, int(now - since))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a queue's tile turns red (``CALLCENTER_WALLBOARD_MAX_WAIT`` / ``_MIN_SL``)."""

    max_wait_s: int = 60
    min_service_level: float = 80.0


def queue_figures(tally: Mapping[str, int]) -> dict[str, float | None]:
    """SL, SL2, ASA, AHT and abandon rate from a queue's day tally
    (``callcenter.agentstate.book.Tally.as_dict``)."""
    return {
        "service_level": service_level(tally["completed_in_sl"], tally["completed"]),
        "service_level2": service_level_with_abandoned(
            tally["completed_in_sl"], tally["abandoned_in_sl"], tally["completed"], tally["abandoned"]),
        "asa": average(tally["hold_sum"], tally["answered"]),
        "aht": average(tally["talk_sum"], tally["completed"]),
        "abandon_rate": abandon_rate(tally["abandoned"], tally["offered"]),
    }


def breaches(longest_wait_s: int, sl: float | None, t: Thresholds) -> list[str]:
    """Which thresholds a queue is past: ``longest_wait`` (strictly above the limit) and
    ``service_level`` (strictly below; no figure yet is no breach)."""
    out = []
    if longest_wait_s > t.max_wait_s:
        out.append("longest_wait")
    if sl is not None and sl < t.min_service_level:
        out.append("service_level")
    return out

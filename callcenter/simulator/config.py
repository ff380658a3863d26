"""Simulator settings: queues, members, channel style, timing. Frozen dataclasses, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# What a dialled number does on the simulated trunk: "answer", "busy", "noanswer", "congestion".
OriginateOutcome = str
OriginateRule = Callable[[str], OriginateOutcome]
# Digits a survey respondent presses, given the job id (six digits 1-5).
SurveyRule = Callable[[str], Sequence[str]]


def lab_trunk_rule(number: str) -> OriginateOutcome:
    """The lab's ``outbound-trunk`` context: the last digit 1 busy, 2 no answer, 3 congestion."""
    return {"1": "busy", "2": "noanswer", "3": "congestion"}.get(number[-1:], "answer")


def lab_survey_rule(job: str) -> Sequence[str]:
    """The digits the lab's trunk sends (``SendDTMF(5w4w5w3w5w4)``) whatever the job."""
    return ("5", "4", "5", "3", "5", "4")


@dataclass(frozen=True, slots=True)
class MemberConfig:
    """A static queue member. ``interface`` decides the agent leg's channel driver:
    ``Local/8001@agents/n`` gives Local halves, ``IAX2/agent8001/agent8001`` an IAX2 device."""

    name: str
    interface: str


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    members: tuple[MemberConfig, ...]
    strategy: str = "rrmemory"
    # Seconds a member rings before AgentRingNoAnswer (queues.conf ``timeout``).
    ring_timeout: float = 4.0
    # Seconds between two rounds of ringing (queues.conf ``retry``).
    retry: float = 1.0
    # Seconds a caller waits at most (the Queue() application's timeout argument).
    max_wait: float = 60.0
    service_level: int = 20


# manager.conf's ``channelvars`` as the project's own ``dialplans/manager.conf`` sets it: the
# simulator is at least as hard as a real Asterisk with our configuration.
PROJECT_CHANNELVARS: tuple[str, ...] = ("CALLBACK_JOB", "WORK_ORDER")
_VARNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\Z")


def parse_channelvars(spec: str) -> tuple[str, ...]:
    """``CALLBACK_JOB,WORK_ORDER`` → ("CALLBACK_JOB", "WORK_ORDER"); "" → () (no channel
    variables on events). Raises ValueError naming the bad name."""
    names = tuple(filter(None, (n.strip() for n in spec.split(","))))
    for n in names:
        if not _VARNAME.match(n):
            raise ValueError(f"--channelvars {spec!r}: bad variable name {n!r}")
    return names


def default_members(style: str, count: int = 5) -> tuple[MemberConfig, ...]:
    if style == "iax2":
        return tuple(
            MemberConfig(f"800{i}", f"IAX2/agent800{i}/agent800{i}") for i in range(1, count + 1)
        )
    return tuple(MemberConfig(f"800{i}", f"Local/800{i}@agents/n") for i in range(1, count + 1))


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator needs; validated in ``__post_init__`` (ValueError names the field)."""

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcenter"
    secret: str = "s3cret-ami"
    queues: tuple[QueueConfig, ...] = ()
    # "local": the lab's Local-channel PSTN (inbound_answered); "iax2": a real channel driver
    # trunk (iax_inbound_answered).
    style: str = "local"
    # Also emit the dialplan class (VarSet, Newexten) and, at login, the security class's
    # SuccessfulAuth, as a manager user with ``read = all`` sees them (iax_inbound_answered);
    # off = the ``callcenter`` user's class set (lab-config/manager.conf).
    full_events: bool = False
    # Multiplies every simulated duration (ring, talk, waits); 0.01 runs 100x faster. Durations
    # reported in events (HoldTime, TalkTime, Seconds) stay in simulated seconds.
    time_scale: float = 1.0
    # Seconds before "Authentication failed" (Asterisk's deliberate delay), wall clock.
    failed_login_delay: float = 1.0
    # Bytes queued for one client before it is dropped (Asterisk's writetimeout).
    max_client_buffer: int = 4 * 1024 * 1024
    hotline: str = "4008001234"
    originate_rule: OriginateRule = field(default=lab_trunk_rule)
    survey_rule: SurveyRule = field(default=lab_survey_rule)
    # Queue an answered ``Context: callback`` customer joins.
    callback_queue: str = "aftersales"
    # manager.conf ``channelvars``: one ``ChanVariable: NAME=value`` header per name (prefixed
    # ``Dest``/``LocalOne``/``LocalTwo`` for the other channels of an event) on every event
    # built from a channel snapshot, and ``ChanVariable(<channel>): NAME=value`` on an answered
    # OriginateResponse (project_dialplans_session). Default: the project's manager.conf; ()
    # is the lab's manager.conf of the other recordings (no such headers).
    channelvars: tuple[str, ...] = PROJECT_CHANNELVARS

    def __post_init__(self) -> None:
        if self.style not in ("local", "iax2"):
            raise ValueError(f"style: expected 'local' or 'iax2', got {self.style!r}")
        if not self.time_scale > 0:
            raise ValueError(f"time_scale: must be > 0, got {self.time_scale!r}")
        if not self.queues:
            object.__setattr__(
                self, "queues", (QueueConfig("aftersales", default_members(self.style)),)
            )
        if isinstance(self.channelvars, str):
            object.__setattr__(self, "channelvars", parse_channelvars(self.channelvars))
        else:
            object.__setattr__(self, "channelvars", tuple(self.channelvars))
        for n in self.channelvars:
            if not _VARNAME.match(n):
                raise ValueError(f"channelvars: bad variable name {n!r}")
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError(f"queues: duplicate queue name in {names}")


def parse_queue_spec(spec: str) -> QueueConfig:
    """``aftersales=8001:Local/8001@agents/n,8002:Local/8002@agents/n`` → QueueConfig.

    Raises ValueError with the offending part.
    """
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--queue {spec!r}: expected NAME=MEMBER:INTERFACE,...")
    members = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        member, sep, iface = part.partition(":")
        if not sep or not member or "/" not in iface:
            raise ValueError(f"--queue {spec!r}: bad member {part!r} (MEMBER:TECH/RESOURCE)")
        members.append(MemberConfig(member, iface))
    return QueueConfig(name.strip(), tuple(members))

"""The simulator's live telephony state: channels, queues, members, id counters.

Plain mutable records owned by one event loop; the list actions (QueueStatus, Status, …) read
them, the call flows in ``scenarios.py`` change them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

UNKNOWN = "<unknown>"

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}


@dataclass(slots=True, eq=False)
class Channel:
    """One Asterisk channel as its snapshot fields show it (values already AMI-formatted)."""

    name: str
    uniqueid: str
    linkedid: str
    created: float  # simulated epoch seconds
    tech: str  # "Local" or "IAX2": the Status action's ``Type``
    state: int = 0
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    context: str = ""
    exten: str = ""
    priority: int = 1
    app: str = ""
    app_data: str = ""
    bridge_id: str = ""
    # Channel variables by bare name (``__CALLBACK_JOB`` is kept as ``CALLBACK_JOB``) …
    variables: dict[str, str] = field(default_factory=dict)
    # … and how far each is inherited by channels this one dials: 2 for ``__`` (always),
    # 1 for ``_`` (to the next channel only), absent: not inherited.
    inherit: dict[str, int] = field(default_factory=dict)
    # manager.conf ``channelvars`` (SimulatorConfig.channelvars): which variables every
    # snapshot of this channel shows, in this order.
    manager_vars: tuple[str, ...] = ()

    def set_var(self, name: str, value: str) -> None:
        """``Set(NAME=value)``; a ``_``/``__`` prefix marks it inheritable, as in Asterisk."""
        bare = name.lstrip("_")
        if not bare:
            return
        self.variables[bare] = value
        level = min(len(name) - len(bare), 2)
        if level:
            self.inherit[bare] = level
        else:
            self.inherit.pop(bare, None)

    def inherit_from(self, parent: Channel) -> None:
        """What ``ast_channel_inherit_variables`` copies to a channel ``parent`` dials: its
        ``__`` variables (still ``__``) and ``_`` variables (no longer inheritable)."""
        for bare, level in parent.inherit.items():
            self.variables[bare] = parent.variables.get(bare, "")
            if level == 2:
                self.inherit[bare] = 2
            else:
                self.inherit.pop(bare, None)

    def manager_var_fields(self, prefix: str = "") -> list[tuple[str, str]]:
        """``{prefix}ChanVariable: NAME=value``, one per configured name, "" when unset."""
        key = prefix + "ChanVariable"
        return [(key, f"{n}={self.variables.get(n, '')}") for n in self.manager_vars]


@dataclass(slots=True, eq=False)
class Member:
    """A queue member as QueueMember/QueueMemberStatus report it; one per (queue, interface)."""

    name: str
    interface: str
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    paused: bool = False
    paused_reason: str = ""


@dataclass(slots=True, eq=False)
class Entry:
    """A caller waiting in a queue."""

    channel: Channel
    joined: float  # simulated epoch seconds
    original_position: int
    # Index of the member this caller rang last (``linear`` goes on from there).
    last_tried: int = -1


@dataclass(slots=True, eq=False)
class QueueState:
    name: str
    strategy: str
    ring_timeout: float
    retry: float
    max_wait: float
    service_level: int
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    # Round-robin memory: index of the member rung last (rrmemory).
    rr_last: int = -1
    completed: int = 0
    abandoned: int = 0
    total_hold: float = 0.0
    total_talk: float = 0.0
    # Asterisk's callscompletedinsl / callsabandonedinsl: counted when the call completes
    # (hold time at answer ≤ service_level) or is abandoned (time waited ≤ service_level).
    within_sl: int = 0
    abandoned_within_sl: int = 0

    def member(self, interface: str) -> Member | None:
        for m in self.members:
            if m.interface == interface:
                return m
        return None


def device_of(interface: str) -> str:
    """Device name of a member interface: ``Local/8001@agents/n`` → ``Local/8001@agents``,
    ``IAX2/agent8001/agent8001`` → ``IAX2/agent8001``."""
    tech, _, rest = interface.partition("/")
    return f"{tech}/{rest.split('/', 1)[0]}"


class Ids:
    """Uniqueid / Local sequence / IAX2 call-number allocator.

    Uniqueids are ``<epoch>.<counter>`` with one counter for the whole process, exactly as
    Asterisk numbers them; Local channels carry an 8-hex-digit sequence (``-0000001b``).
    """

    __slots__ = ("_counter", "_local_seq", "_rng", "_bridge_rng")

    def __init__(self, seed: int | None = None) -> None:
        self._counter = 0
        self._local_seq = 0
        self._rng = random.Random(seed)
        self._bridge_rng = random.Random(seed)

    def uniqueid(self, now: float) -> str:
        uid = f"{int(now)}.{self._counter}"
        self._counter += 1
        return uid

    def local_seq(self) -> str:
        self._local_seq += 1
        return f"{self._local_seq:08x}"

    def iax_callno(self) -> int:
        return self._rng.randint(1, 32767)

    def bridge_uuid(self) -> str:
        h = f"{self._bridge_rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

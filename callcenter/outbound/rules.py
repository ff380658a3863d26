"""The outbound rules as pure functions of the job, the number and ``now`` (aware datetimes).

- calling hours: :class:`CallingHours` (default 09:00–21:00 in the centre's time zone, no calls
  on the listed holidays): :meth:`~CallingHours.allows`, :meth:`~CallingHours.next_open`;
- do-not-call: :func:`may_dial` refuses a number on the list whatever the time;
- retry by outcome: :func:`next_retry` (busy +10 min, no answer +1 h, congestion / failure /
  unknown +5 min; at most :data:`MAX_ATTEMPTS` attempts, never past the job's deadline);
- pacing: :func:`take_token` (a token bucket as a function of time: originates per second) and
  :func:`free_channels` (concurrent channels per trunk);
- numbers: :func:`validate_number` (digits only, mainland mobile or landline, allowed prefixes;
  international, premium-rate and service numbers refused);
- AMI: :func:`originate_headers` builds the ``Originate`` and checks every value that reaches
  Asterisk before anything is sent (:class:`Refused`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

# Dialled first among due jobs: lower first. A callback for an abandoned call keeps the caller's
# place ahead of booked callbacks and surveys that became due later.
PRIORITY = {"abandoned": 0, "callback": 1, "survey": 2}
MAX_ATTEMPTS = 3
# Minutes before the next attempt, by the last attempt's outcome.
RETRY_MINUTES = {"busy": 10, "no_answer": 60, "congestion": 5, "failure": 5, "unknown": 5,
                 "hangup": 5}
# OriginateResponse's Reason → outcome (recorded in originate_failures / originate_callback).
REASONS = {4: "answered", 5: "busy", 3: "no_answer", 8: "congestion", 0: "failure", 1: "hangup"}


class Refused(ValueError):
    """The rules say no; ``code`` names the rule (``dnc``, ``invalid_number``, ``header`` …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- calling hours ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallingHours:
    """Local calling window ``[start, end)`` in ``tz``; no calls on ``holidays`` (local dates)."""

    tz: ZoneInfo
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(21, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def allows(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz)
        if local.date() in self.holidays:
            return False
        t = local.timetz().replace(tzinfo=None)
        return self.start <= t < self.end

    def next_open(self, now: dt.datetime) -> dt.datetime:
        """``now`` if calls are allowed now, else the start of the next allowed window (UTC)."""
        if self.allows(now):
            return now.astimezone(dt.UTC)
        local = now.astimezone(self.tz)
        day = local.date()
        if local.timetz().replace(tzinfo=None) >= self.start and day not in self.holidays:
            day += dt.timedelta(days=1)  # today's window is over (or not yet, handled below)
        for _ in range(400):
            if day not in self.holidays:
                opening = _local(day, self.start, self.tz)
                if opening >= now and self.allows(opening):
                    return opening.astimezone(dt.UTC)
                # A DST gap can swallow the opening minute; the first allowed minute after it.
                probe = opening
                while probe.astimezone(self.tz).date() == day and not self.allows(probe):
                    probe += dt.timedelta(minutes=1)
                if probe >= now and self.allows(probe):
                    return probe.astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        raise Refused("hours", "no calling window in the next 400 days")


def _local(day: dt.date, t: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, t).replace(tzinfo=tz)


def parse_window(spec: str) -> tuple[dt.time, dt.time]:
    """``"09:00-21:00"`` → (09:00, 21:00); ValueError unless start < end."""
    a, sep, b = spec.partition("-")
    try:
        start, end = dt.time.fromisoformat(a.strip()), dt.time.fromisoformat(b.strip())
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM, got {spec!r}") from None
    if not sep or not start < end:
        raise ValueError(f"expected HH:MM-HH:MM with start before end, got {spec!r}")
    return start, end


def parse_holidays(spec: str) -> frozenset[dt.date]:
    """``"2026-10-01,2026-10-02"`` → dates; ValueError naming the bad one."""
    out = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            out.add(dt.date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"not a date: {part!r}") from None
    return frozenset(out)


# -- dial decision ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Decision:
    """``dial``: go now. Otherwise ``stop`` (a reason code: the job ends) or ``later`` (UTC)."""

    dial: bool
    later: dt.datetime | None = None
    stop: str = ""


def may_dial(now: dt.datetime, hours: CallingHours, *, on_dnc: bool,
             deadline: dt.datetime | None = None) -> Decision:
    """Whether a due job may be dialled at ``now``: never a number on the do-not-call list,
    never outside the calling hours (then: at the next opening, if before the deadline)."""
    if on_dnc:
        return Decision(False, stop="dnc")
    if deadline is not None and now >= deadline:
        return Decision(False, stop="expired")
    if hours.allows(now):
        return Decision(True)
    opening = hours.next_open(now)
    if deadline is not None and opening >= deadline:
        return Decision(False, stop="expired")
    return Decision(False, later=opening)


def next_retry(outcome: str, attempts: int, now: dt.datetime, hours: CallingHours, *,
               deadline: dt.datetime | None = None, max_attempts: int = MAX_ATTEMPTS) -> dt.datetime | None:
    """When to try again after an attempt that ended in ``outcome`` (``attempts`` made so far),
    moved into calling hours; None when the job is exhausted (answered jobs are not retried)."""
    if outcome == "answered" or attempts >= max_attempts:
        return None
    at = hours.next_open(now + dt.timedelta(minutes=RETRY_MINUTES.get(outcome, 5)))
    if deadline is not None and at >= deadline:
        return None
    return at


def outcome_of(reason: str | int | None) -> str:
    """OriginateResponse's ``Reason`` → outcome; anything unexpected is a failure."""
    try:
        return REASONS.get(int(reason), "failure")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "failure"


# -- pacing -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bucket:
    """Token bucket state: ``tokens`` available at monotonic time ``at`` (seconds)."""

    tokens: float
    at: float


def take_token(bucket: Bucket, now: float, rate: float, burst: float = 1.0) -> tuple[float, Bucket]:
    """Take one token at ``now`` (seconds, monotonic). Returns (wait, new bucket): ``wait`` 0
    means granted now; otherwise the seconds until a token is there (nothing taken)."""
    tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
    # 1e-9: float sums land on 0.999…9; a wait of 1e-18 s would spin without moving the clock.
    if tokens >= 1.0 - 1e-9:
        return 0.0, Bucket(max(0.0, tokens - 1.0), now)
    return (1.0 - tokens) / rate, Bucket(tokens, now)


def free_channels(in_flight: int, max_channels: int) -> int:
    """Originates that may start now on a trunk with ``in_flight`` outbound channels."""
    return max(0, max_channels - in_flight)


# -- numbers ------------------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}\Z")
# Area code 010/02x + 8 digits, or 0[3-9]xx + 7/8 digits.
_LANDLINE = re.compile(r"(?:010|02\d)\d{8}\Z|0[3-9]\d{2}\d{7,8}\Z")
# Refused whatever the prefix list says: international, premium-rate (1900…, 16…, 17909 …),
# service and short numbers (95…/96…, 400/800, 10xxx/12xxx/11x).
_REFUSED = (("00", "international"), ("+", "international"), ("1900", "premium"),
            ("16", "premium"), ("95", "service"), ("96", "service"), ("400", "service"),
            ("800", "service"), ("10", "service"), ("11", "service"), ("12", "service"))
DEFAULT_PREFIXES = ("13", "14", "15", "16", "17", "18", "19", "0")


def validate_number(number: str, prefixes: Iterable[str] = DEFAULT_PREFIXES) -> str:
    """The number to dial (unchanged) if it is a mainland mobile or landline with an allowed
    prefix; :class:`Refused` (``invalid_number``) otherwise, saying why (never the number)."""
    if not isinstance(number, str) or not number:
        raise Refused("invalid_number", "empty number")
    if any(c in number for c in "\r\n\x00"):
        raise Refused("invalid_number", "control characters in the number")
    for prefix, why in _REFUSED:
        if number.startswith(prefix):
            raise Refused("invalid_number", f"{why} numbers are not dialled")
    if not (number.isascii() and number.isdigit()):
        raise Refused("invalid_number", "the number must be digits only")
    if not (_MOBILE.match(number) or _LANDLINE.match(number)):
        raise Refused("invalid_number", "not a mainland mobile or landline number")
    if not any(number.startswith(p) for p in prefixes):
        raise Refused("invalid_number", "prefix not allowed")
    return number


# -- the Originate ------------------------------------------------------------------------------

_ATTEMPT_ID = re.compile(r"ob-[0-9]{1,18}-[0-9]{1,3}-[0-9a-f]{8}\Z")
_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_VAR_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,31}\Z")
_CHANNEL_TEMPLATE = re.compile(r"[A-Za-z0-9]+/[A-Za-z0-9_.@/\-]*\{number\}[A-Za-z0-9_.@/\-]*\Z")


def check_channel_template(template: str) -> str:
    """``Local/{number}@outbound-trunk`` or ``PJSIP/{number}@carrier``; ValueError otherwise."""
    if not _CHANNEL_TEMPLATE.match(template) or template.count("{number}") != 1:
        raise ValueError(f"expected TECH/…{{number}}… with letters, digits and _.@/-, got {template!r}")
    return template


def is_token(value: str) -> bool:
    """A value that may be a channel variable's as it is (letters, digits, ``_ . -``)."""
    return _TOKEN.match(value) is not None


def originate_headers(*, attempt_id: str, number: str, channel_template: str, context: str,
                      caller_id: str, timeout_s: float, variables: Mapping[str, str],
                      prefixes: Iterable[str] = DEFAULT_PREFIXES) -> dict[str, object]:
    """The headers of an async ``Originate`` for one attempt, every value checked.

    ``attempt_id`` becomes ``ActionID`` (given to the connector) and ``ChannelId``. Raises
    :class:`Refused` (``header`` / ``invalid_number``) for anything that is not plain digits or
    a token — a CR/LF, a space, a comma in a variable: nothing is sent then."""
    if not _ATTEMPT_ID.match(attempt_id):
        raise Refused("header", "attempt id is not an outbound attempt id")
    validate_number(number, prefixes)
    try:
        check_channel_template(channel_template)
    except ValueError as e:
        raise Refused("header", str(e)) from None
    if not _TOKEN.match(context):
        raise Refused("header", "context must be a plain token")
    if not (caller_id.isascii() and caller_id.isdigit() and 3 <= len(caller_id) <= 20):
        raise Refused("header", "caller id must be digits")
    if not 1 <= timeout_s <= 300:
        raise Refused("header", "timeout must be 1-300 s")
    pairs = []
    for k, v in variables.items():
        if not _VAR_NAME.match(k) or not _TOKEN.match(v):
            raise Refused("header", f"variable {k[:32]!r} must be NAME=token")
        pairs.append(f"{k}={v}")
    headers: dict[str, object] = {
        "Channel": channel_template.replace("{number}", number),
        "Context": context, "Exten": "s", "Priority": 1, "Async": True,
        "Timeout": int(timeout_s * 1000), "CallerID": f"<{caller_id}>", "ChannelId": attempt_id,
    }
    if pairs:
        headers["Variable"] = ",".join(pairs)
    return headers

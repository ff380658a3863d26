"""Typed settings read from the environment and validated at start-up.

A bad value stops the process with a message that names the variable
(:class:`SettingsError`); nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from callcenter.crypto import PhoneVault

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PREFIX = "CALLCENTER_"
ROLES = ("agent", "dispatcher", "engineer", "survey", "supervisor", "admin")
REPO_ROOT = Path(__file__).resolve().parents[1]


INSTANCE_ROLES = ("all", "web", "worker")


class SettingsError(ValueError):
    """An environment variable has a value the service cannot run with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float, kind: type) -> float:
    var = PREFIX + name
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(var, f"must be {what}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(var, f"must be between {lo} and {hi}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return int(_number(env, name, default, lo, hi, int))


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, float)


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(PREFIX + name)
    return default if raw is None or raw == "" else raw


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    var = PREFIX + "TRUSTED_PROXIES"
    out = tuple(p.strip() for p in _str(env, "TRUSTED_PROXIES", "").split(",") if p.strip())
    for p in out:
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise SettingsError(var, f"not an address or network: {p!r}") from None
    return out


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    var = PREFIX + name
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(var, f"must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
    var = PREFIX + name
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        raise SettingsError(var, f"scheme must be one of {', '.join(schemes)}, got {scheme or 'none'!r}")
    return raw


def _dispatch_weights(env: Mapping[str, str], default: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    raw = env.get(PREFIX + "DISPATCH_WEIGHTS")
    if raw is None or raw.strip() == "":
        return default
    from callcenter.dispatch.rules import WeightsError, parse_weights

    try:
        return tuple(parse_weights(raw).as_dict().items())
    except WeightsError as e:
        raise SettingsError(PREFIX + "DISPATCH_WEIGHTS", str(e)) from None


def _pause_reasons(env: Mapping[str, str], default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(PREFIX + "PAUSE_REASONS")
    if raw is None or raw.strip() == "":
        return default
    from callcenter.agentstate.rules import parse_reasons

    try:
        return parse_reasons(raw)
    except ValueError as e:
        raise SettingsError(PREFIX + "PAUSE_REASONS", str(e)) from None


def _agent_interface(env: Mapping[str, str], default: str) -> str:
    raw = _str(env, "AGENT_INTERFACE", default)
    from callcenter.agentstate.rules import interface_for
    from callcenter.errors import ValidationFailed

    try:
        if "{extension}" not in raw:
            raise ValueError
        interface_for("8001", raw)
    except (ValueError, ValidationFailed):
        raise SettingsError(PREFIX + "AGENT_INTERFACE",
                            f"must look like PJSIP/{{extension}}, got {raw!r}") from None
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    # Where records live: SQLite by default (one process, small centre), PostgreSQL at scale.
    database_url: str = "sqlite+aiosqlite:///var/callcenter.sqlite3"
    # None = events, pop mailboxes and leadership stay in this process (no Redis needed).
    redis_url: str | None = None
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "callcenter"
    ami_secret: str = "s3cret-ami"
    # Seconds between pings; a ping unanswered within ami_ping_timeout drops the connection,
    # so a silently dead socket is noticed within interval + timeout (≤ 15 s by default).
    ami_ping_interval: float = 5.0
    ami_ping_timeout: float = 8.0
    # Reconnect backoff, seconds: doubles from min to max, with ±50 % jitter.
    ami_reconnect_min: float = 0.5
    ami_reconnect_max: float = 30.0
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Origins allowed besides the server's own http://host:port to open /ws and send unsafe
    # requests (callcenter.web.origins).
    allowed_origins: tuple[str, ...] = ()
    # Seconds the AMI leadership lease lasts in Redis: a dead leader is replaced within this.
    leader_ttl: float = 10.0
    # Seconds between SLA scheduler passes (callcenter.sla.scheduler); 0 = this instance runs none.
    sla_interval: float = 15.0
    # Pops kept per agent for a reconnecting client to catch up (messages).
    pop_replay_limit: int = 200
    # Messages a websocket client may lag behind before it is dropped.
    ws_queue_size: int = 256
    # Seconds a login session lasts without activity.
    session_ttl: int = 12 * 3600
    # Area code assumed for local landline numbers that arrive without one ("" = keep as is).
    local_area_code: str = ""
    # Seconds: a caller who called within this window is a repeat caller.
    repeat_caller_window: int = 72 * 3600
    # Days: the same appliance repaired within this window flags a repeat repair.
    repeat_repair_days: int = 90
    # The centre's time zone: "today" in call lists and reports is a day there.
    timezone: str = "Asia/Shanghai"
    web_dir: Path = field(default=REPO_ROOT / "web")
    log_level: str = "INFO"
    secure_cookies: bool = False
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client for the
    # login throttle (callcenter.auth.throttle); empty = the peer address is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Phone-number keys (callcenter.crypto): "id:base64,…", current first. Empty → generated
    # once into key_file (single process only; several instances must share env keys).
    data_keys: str = field(default="", repr=False)
    index_keys: str = field(default="", repr=False)
    key_file: Path = Path("var/callcenter.keys")
    # Dispatch (callcenter.dispatch.rules): score weights as (component, weight) pairs adding up
    # to 1, and the radius (km) the automatic match searches.
    dispatch_weights: tuple[tuple[str, float], ...] = (
        ("distance", 0.4), ("load", 0.2), ("ftf", 0.15), ("satisfaction", 0.15), ("idle", 0.1))
    dispatch_radius_km: float = 5.0
    # Agent states and the wallboard (callcenter.agentstate, callcenter.wallboard): the pause
    # reasons agents pick from; seconds of automatic 话后处理 pause after each call (0 = off);
    # the interface an agent without a binding logs in to queues from; a queue tile turns red
    # (and supervisors are alerted) above this longest wait (s) or below this service level (%).
    pause_reasons: tuple[str, ...] = ("小休", "午餐", "培训", "话后处理")
    wrapup_s: int = 0
    agent_interface: str = "PJSIP/{extension}"
    wallboard_max_wait_s: int = 60
    wallboard_min_service_level: float = 80.0
    # Seconds between passes of the notification sender (callcenter.notify.sender); 0 = this
    # instance sends none. Which SMS gateway sends (callcenter.notify.gateway.GATEWAYS; "record":
    # the outbox row and a log line are the record). The hotline printed in customers' messages.
    notify_interval: float = 5.0
    sms_gateway: str = "record"
    hotline: str = "4008001234"
    # Seconds between two ticks of the dispatch loop (callcenter.dispatch.engine: automatic
    # dispatch of new orders, the 15-minute acceptance timeout); 0 = off. A new order or a
    # refusal wakes it at once.
    dispatch_interval: float = 5.0
    # Outbound calls (callcenter.outbound): seconds between dialler ticks (0 = this instance
    # dials none; it runs only on the AMI leader anyway); the local calling window and holidays
    # (YYYY-MM-DD,…); originates per second and concurrent channels on the trunk; the channel
    # an Originate dials ({number} is the validated number).
    outbound_interval: float = 2.0
    outbound_hours: str = "09:00-21:00"
    outbound_holidays: str = ""
    outbound_rate: float = 2.0
    outbound_max_channels: int = 10
    outbound_channel: str = "Local/{number}@outbound-trunk"
    # What this instance runs: "all" (one process: the web side, the AMI session and every
    # background loop), "web" (requests and websockets only: no AMI session, no SLA scheduler,
    # dispatch loop, notification sender, dialler or complaint alerter) or "worker" (the AMI
    # session and the background loops). web and worker need Redis, which carries the pops,
    # pushes and dispatch wake-ups between them (docs/architecture.md).
    instance_role: str = "all"
    # A worker instance lowers its own CPU priority by this much (as ``nice -n``; 0 = not): on
    # a machine it shares with web instances and PostgreSQL, its passes then give way to the
    # requests whenever both want a core (docs/benchmarks.md: p99 of a save 10.4 → 8.5 ms).
    worker_nice: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``CALLCENTER_*`` variable; raises :class:`SettingsError`."""
        env = os.environ if env is None else env
        d = cls()
        origins_raw = _str(env, "ALLOWED_ORIGINS", "")
        origins = tuple(o.strip().rstrip("/") for o in origins_raw.split(",") if o.strip())
        for o in origins:
            if urlsplit(o).scheme not in ("http", "https"):
                raise SettingsError(PREFIX + "ALLOWED_ORIGINS", f"not an http(s) origin: {o!r}")
        area = _str(env, "LOCAL_AREA_CODE", "")
        if area and not (area.isdigit() and area.startswith("0") and 3 <= len(area) <= 4):
            raise SettingsError(PREFIX + "LOCAL_AREA_CODE", f"must look like 010 or 0755, got {area!r}")
        level = _str(env, "LOG_LEVEL", d.log_level).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(PREFIX + "LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        web_dir = Path(_str(env, "WEB_DIR", str(d.web_dir)))
        if not (web_dir / "templates").is_dir():
            raise SettingsError(PREFIX + "WEB_DIR", f"no templates/ under {web_dir}")
        tz = _str(env, "TIMEZONE", d.timezone)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(PREFIX + "TIMEZONE", f"unknown time zone {tz!r}") from None
        s = cls(
            database_url=_url(env, "DATABASE_URL", d.database_url,
                              ("sqlite+aiosqlite", "postgresql+asyncpg")) or d.database_url,
            redis_url=_url(env, "REDIS_URL", None, ("redis", "rediss", "unix")),
            ami_host=_str(env, "AMI_HOST", d.ami_host),
            ami_port=_int(env, "AMI_PORT", d.ami_port, 1, 65535),
            ami_username=_str(env, "AMI_USERNAME", d.ami_username),
            ami_secret=_str(env, "AMI_SECRET", d.ami_secret),
            ami_ping_interval=_float(env, "AMI_PING_INTERVAL", d.ami_ping_interval, 0.05, 60),
            ami_ping_timeout=_float(env, "AMI_PING_TIMEOUT", d.ami_ping_timeout, 0.05, 60),
            ami_reconnect_min=_float(env, "AMI_RECONNECT_MIN", d.ami_reconnect_min, 0.01, 60),
            ami_reconnect_max=_float(env, "AMI_RECONNECT_MAX", d.ami_reconnect_max, 0.01, 600),
            http_host=_str(env, "HTTP_HOST", d.http_host),
            http_port=_int(env, "HTTP_PORT", d.http_port, 0, 65535),
            allowed_origins=origins,
            leader_ttl=_float(env, "LEADER_TTL", d.leader_ttl, 0.5, 300),
            sla_interval=_float(env, "SLA_INTERVAL", d.sla_interval, 0, 3600),
            pop_replay_limit=_int(env, "POP_REPLAY_LIMIT", d.pop_replay_limit, 0, 10_000),
            ws_queue_size=_int(env, "WS_QUEUE_SIZE", d.ws_queue_size, 1, 100_000),
            session_ttl=_int(env, "SESSION_TTL", d.session_ttl, 60, 30 * 86400),
            local_area_code=area,
            repeat_caller_window=_int(env, "REPEAT_CALLER_HOURS", 72, 1, 24 * 30) * 3600,
            repeat_repair_days=_int(env, "REPEAT_REPAIR_DAYS", d.repeat_repair_days, 1, 3650),
            timezone=tz,
            web_dir=web_dir,
            log_level=level,
            secure_cookies=_bool(env, "SECURE_COOKIES", d.secure_cookies),
            trusted_proxies=_trusted_proxies(env),
            data_keys=_str(env, "DATA_KEYS", ""),
            index_keys=_str(env, "INDEX_KEYS", ""),
            key_file=Path(_str(env, "KEY_FILE", str(d.key_file))),
            dispatch_weights=_dispatch_weights(env, d.dispatch_weights),
            dispatch_radius_km=_float(env, "DISPATCH_RADIUS_KM", d.dispatch_radius_km, 0.1, 100),
            pause_reasons=_pause_reasons(env, d.pause_reasons),
            wrapup_s=_int(env, "WRAPUP_SECONDS", d.wrapup_s, 0, 3600),
            agent_interface=_agent_interface(env, d.agent_interface),
            wallboard_max_wait_s=_int(env, "WALLBOARD_MAX_WAIT", d.wallboard_max_wait_s, 1, 3600),
            wallboard_min_service_level=_float(env, "WALLBOARD_MIN_SL", d.wallboard_min_service_level, 0, 100),
            notify_interval=_float(env, "NOTIFY_INTERVAL", d.notify_interval, 0, 3600),
            sms_gateway=_str(env, "SMS_GATEWAY", d.sms_gateway).strip().lower(),
            hotline=_str(env, "HOTLINE", d.hotline).strip(),
            dispatch_interval=_float(env, "DISPATCH_INTERVAL", d.dispatch_interval, 0, 3600),
            instance_role=_str(env, "INSTANCE_ROLE", d.instance_role).strip().lower(),
            worker_nice=_int(env, "WORKER_NICE", d.worker_nice, 0, 19),
            outbound_interval=_float(env, "OUTBOUND_INTERVAL", d.outbound_interval, 0, 3600),
            outbound_hours=_str(env, "OUTBOUND_HOURS", d.outbound_hours).strip(),
            outbound_holidays=_str(env, "OUTBOUND_HOLIDAYS", d.outbound_holidays).strip(),
            outbound_rate=_float(env, "OUTBOUND_RATE", d.outbound_rate, 0.01, 1000),
            outbound_max_channels=_int(env, "OUTBOUND_MAX_CHANNELS", d.outbound_max_channels, 1, 10_000),
            outbound_channel=_str(env, "OUTBOUND_CHANNEL", d.outbound_channel).strip(),
        )
        from callcenter.outbound import rules as outbound_rules

        for var, check in (("OUTBOUND_HOURS", lambda: outbound_rules.parse_window(s.outbound_hours)),
                           ("OUTBOUND_HOLIDAYS", lambda: outbound_rules.parse_holidays(s.outbound_holidays)),
                           ("OUTBOUND_CHANNEL", lambda: outbound_rules.check_channel_template(s.outbound_channel))):
            try:
                check()
            except ValueError as e:
                raise SettingsError(PREFIX + var, str(e)) from None
        from callcenter.crypto import KeySpecError, parse_keys

        if bool(s.data_keys) != bool(s.index_keys):
            raise SettingsError(PREFIX + ("INDEX_KEYS" if s.data_keys else "DATA_KEYS"),
                                "set both CALLCENTER_DATA_KEYS and CALLCENTER_INDEX_KEYS, or neither")
        for var, spec in (("DATA_KEYS", s.data_keys), ("INDEX_KEYS", s.index_keys)):
            if spec:
                try:
                    parse_keys(spec, PREFIX + var)
                except KeySpecError as e:
                    raise SettingsError(PREFIX + var, str(e).split(": ", 1)[1]) from None
        for var, v in (("AMI_USERNAME", s.ami_username), ("AMI_SECRET", s.ami_secret)):
            if any(c in v for c in "\r\n\x00"):
                raise SettingsError(PREFIX + var, "must not contain CR, LF or NUL")
        if s.pop_replay_limit + 2 > s.ws_queue_size:
            # A replay larger than the client's queue would drop it on every reconnect.
            raise SettingsError(PREFIX + "POP_REPLAY_LIMIT",
                                f"must be at most CALLCENTER_WS_QUEUE_SIZE - 2 ({s.ws_queue_size - 2})")
        if s.instance_role not in INSTANCE_ROLES:
            raise SettingsError(PREFIX + "INSTANCE_ROLE",
                                f"must be one of {', '.join(INSTANCE_ROLES)}, got {s.instance_role!r}")
        if s.instance_role != "all" and s.redis_url is None:
            raise SettingsError(PREFIX + "INSTANCE_ROLE", f"{s.instance_role} needs CALLCENTER_REDIS_URL (the web and worker "
                                "instances reach each other through Redis); one process without Redis is role all")
        if s.ami_reconnect_min > s.ami_reconnect_max:
            raise SettingsError(PREFIX + "AMI_RECONNECT_MIN", "must not exceed CALLCENTER_AMI_RECONNECT_MAX")
        from callcenter.notify.gateway import GATEWAYS, is_service_number

        if s.sms_gateway not in GATEWAYS:
            raise SettingsError(PREFIX + "SMS_GATEWAY",
                                f"must be one of {', '.join(GATEWAYS)}, got {s.sms_gateway!r}")
        if not is_service_number(s.hotline):
            raise SettingsError(PREFIX + "HOTLINE", f"must be a 400/800 or 95xxx service number in digits, got {s.hotline!r}")
        return s

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, the demo)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def background(self) -> bool:
        """Whether this instance runs the AMI session and the background loops."""
        return self.instance_role != "web"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        from callcenter.auth.throttle import parse_networks

        return parse_networks(self.trusted_proxies)

    @property
    def origins(self) -> tuple[str, ...]:
        """Origins whose pages may open the websockets and send unsafe requests
        (callcenter.web.origins): the server's own http://host:port and ``allowed_origins``."""
        hosts = {self.http_host, "127.0.0.1", "localhost"} if self.http_host in (
            "127.0.0.1", "localhost", "0.0.0.0") else {self.http_host}
        own = sorted(f"http://{h}:{self.http_port}" for h in hosts)
        return tuple(dict.fromkeys([*self.allowed_origins, *own]))

    def phone_vault(self) -> PhoneVault:
        """The vault for these keys (env), or for the generated key file."""
        from callcenter.crypto import PhoneVault, load_or_create_key_file

        if self.data_keys:
            return PhoneVault.from_specs(self.data_keys, self.index_keys)
        return PhoneVault.from_specs(*load_or_create_key_file(self.key_file))

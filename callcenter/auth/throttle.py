"""Login throttling: each attempt is counted *before* its password is checked, atomically.

Password guessing costs the server an argon2 verification each time (~85 ms of a core) and the
guesser a chance at the password, so a username gets ``LIMITS["user"]`` attempts per window.
The attempt is counted first and the decision taken on the count that included it, in one step
(an INCR in a Lua script with Redis, so every instance counts the same attempts; a synchronous
update in process): 60 concurrent wrong passwords get 10 verifications, not 60. A successful
login clears its username's count; so the count is the failures, and the attempts in flight.

The address limit never locks a centre out. The call centre's agents reach the server from one
NAT address, or all through one reverse proxy, so a limit on the address that refused logins
would let one person's mistyping — or one attacker — stop everyone. So nothing about the address
is ever a reason to refuse an attempt before its password is checked. Instead, once an address
has more than ``LIMITS["ip"]`` failures in the window, a *second* wrong password for one name
from there uses up that name's attempts for the window: a password spray from that address is
down to two guesses per name instead of ten. A correct password is only ever refused because of
failures on its own username.

Which address: the peer's, unless it is a trusted reverse proxy (``CALLCENTER_TRUSTED_PROXIES``)
— then the client address that proxy appended to ``X-Forwarded-For`` (:func:`client_address`).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import Any, Protocol

# (attempts allowed, window in seconds) per kind of key: attempts per username, failures per address.
LIMITS = {"user": (10, 300), "ip": (50, 300)}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def decide(attempts: int, user_left: float) -> int:
    """Seconds to wait for an attempt that is the username's ``attempts``-th in its window (this
    one included); 0 = check the password. Pure."""
    return max(1, int(user_left + 0.999)) if attempts > LIMITS["user"][0] else 0


def uses_up_name(attempts: int, ip_failures: int) -> bool:
    """After a wrong password: whether the name's remaining attempts are forfeit — its second
    (or later) attempt in the window failed, from an address past its limit (this failure
    included in ``ip_failures``). Pure."""
    return ip_failures > LIMITS["ip"][0] and attempts >= 2


def parse_networks(raw: Sequence[str]) -> tuple[Network, ...]:
    """``10.0.0.1``, ``10.0.0.0/8``, ``::1`` … as networks; ValueError names a bad one."""
    return tuple(ipaddress.ip_network(r.strip(), strict=False) for r in raw if r.strip())


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The address a login is counted against. The peer's own, unless the peer is a trusted
    proxy: then the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy
    (entries to its left were written by the client and prove nothing). Pure."""
    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    current = peer or "?"
    if not trusted or not is_trusted(current):
        return current
    hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return current  # garbage from the proxy's side: count it against the proxy
        current = hop
    return current


class LoginThrottle(Protocol):
    async def attempt(self, user: str, ip: str) -> int:
        """Count this attempt; seconds to wait (429) or 0 to check the password."""

    async def failed(self, user: str, ip: str) -> None:
        """The password was wrong: count a failure against the address (and see uses_up_name)."""

    async def succeeded(self, user: str) -> None:
        """The password was right: the username's count starts again."""


class LocalLoginThrottle:
    """In process: the read and the count happen with no ``await`` between them, so they are
    one step for the event loop."""

    def __init__(self, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._clock = clock
        # (kind, key) → (window start, count)
        self._counts: dict[tuple[str, str], tuple[float, int]] = {}

    def _current(self, kind: str, key: str, now: float) -> tuple[float, int]:
        start, count = self._counts.get((kind, key), (now, 0))
        return (now, 0) if now - start >= LIMITS[kind][1] else (start, count)

    def _bump(self, kind: str, key: str, now: float) -> tuple[float, int]:
        if len(self._counts) > 100_000:  # bounded memory under a spray of names
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < LIMITS[k[0]][1]}
        start, count = self._current(kind, key, now)
        self._counts[(kind, key)] = (start, count + 1)
        return start, count + 1

    async def attempt(self, user: str, ip: str) -> int:
        now = self._clock()
        start, attempts = self._bump("user", user.lower(), now)
        return decide(attempts, LIMITS["user"][1] - (now - start))

    async def failed(self, user: str, ip: str) -> None:
        now = self._clock()
        _, ip_failures = self._bump("ip", ip, now)
        start, attempts = self._current("user", user.lower(), now)
        if uses_up_name(attempts, ip_failures):
            self._counts[("user", user.lower())] = (start, LIMITS["user"][0])

    async def succeeded(self, user: str) -> None:
        self._counts.pop(("user", user.lower()), None)


# KEYS: the username's attempts. ARGV: the window (s). Returns {attempts, seconds left}.
_ATTEMPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}
"""
# KEYS: the address's failures, the username's attempts. ARGV: the address window, its limit, the
# user window and limit. Counts the failure; uses up the name's attempts as uses_up_name() says.
_FAILED = """
local f = redis.call('INCR', KEYS[1])
if f == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if f > tonumber(ARGV[2]) and n >= 2 then
  local ttl = redis.call('TTL', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ttl > 0 and ttl or tonumber(ARGV[3]))
end
return f
"""


class RedisLoginThrottle:
    """The same rules in Redis, each step one Lua script (atomic across instances)."""

    def __init__(self, redis: Any, prefix: str = "cc:login:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._attempt = redis.register_script(_ATTEMPT)
        self._failed = redis.register_script(_FAILED)

    def _name(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    async def attempt(self, user: str, ip: str) -> int:
        n, left = await self._attempt(keys=[self._name("user", user.lower())], args=[LIMITS["user"][1]])
        return decide(int(n), max(int(left), 0))

    async def failed(self, user: str, ip: str) -> None:
        await self._failed(keys=[self._name("ip", ip), self._name("user", user.lower())],
                           args=[LIMITS["ip"][1], LIMITS["ip"][0], LIMITS["user"][1], LIMITS["user"][0]])

    async def succeeded(self, user: str) -> None:
        await self.redis.delete(self._name("user", user.lower()))

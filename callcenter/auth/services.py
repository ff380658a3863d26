"""Users, passwords (argon2id) and login sessions (random token in the cookie, its SHA-256 in
the database, so a stolen database holds no usable cookie).

**Session cache.** Every request names its session; looking it up is a database round trip
(checkout, select, commit) on every request. :meth:`AuthService.authenticate` keeps a session it
found valid in memory for ``cache_s`` seconds (default 5) and answers from there meanwhile. The
session's own expiry is still checked on every request, and the lookup goes to the database
whenever the sliding expiry is due to move. Logout evicts the entry in this instance at once.
The trade-off, with several instances behind the load balancer: a logout, a deleted session or
a deactivated user takes effect on the *other* instances after at most ``cache_s`` seconds (the
cookie is gone from the browser at once; only a copied cookie could be used in that window).
No Redis round trip is added for this: it would cost as much as the lookup it saves.
``cache_s=0`` turns the cache off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.identity import CurrentUser
from callcenter.clock import Clock, utcnow
from callcenter.db.engine import without_transaction
from callcenter.db.models import LoginSession, User
from callcenter.errors import Conflict, NotAuthenticated, ValidationFailed
from callcenter.settings import ROLES

_USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,64}\Z")
_EXTENSION = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
# A dummy hash so an unknown username costs as much time as a wrong password.
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not-a-password")


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _identity(u: User) -> CurrentUser:
    return CurrentUser(id=u.id, username=u.username, role=u.role,
                       display_name=u.display_name or u.username, extension=u.extension)


class AuthService:
    # Sessions kept in memory at most (a full cache drops what is stale, then everything).
    CACHE_MAX = 10_000

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, ttl_s: int,
                 clock: Clock = utcnow, cache_s: float = 5.0) -> None:
        self._sessionmaker = sessionmaker
        self._ttl = dt.timedelta(seconds=ttl_s)
        self._clock = clock
        self._cache_s = cache_s
        # token hash → (user, session expiry, monotonic time the entry is good until)
        self._cache: dict[str, tuple[CurrentUser, dt.datetime, float]] = {}

    async def add_user(self, username: str, *, role: str, password: str, extension: str | None = None,
                       display_name: str = "") -> CurrentUser:
        """Create a user. Raises ValidationFailed (422) or Conflict (409, taken name/extension)."""
        if not _USERNAME.match(username):
            raise ValidationFailed("username", "2–64 letters, digits, _ . -")
        if role not in ROLES:
            raise ValidationFailed("role", f"one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise ValidationFailed("password", "at least 8 characters")
        if extension is not None and not _EXTENSION.match(extension):
            raise ValidationFailed("extension", "1–32 letters or digits")
        if len(display_name) > 64:
            raise ValidationFailed("display_name", "at most 64 characters")
        hashed = await asyncio.get_running_loop().run_in_executor(None, _hasher.hash, password)
        user = User(username=username, role=role, password_hash=hashed,
                    extension=extension, display_name=display_name, active=True, created_at=self._clock())
        try:
            async with self._sessionmaker.begin() as s:
                s.add(user)
        except IntegrityError as e:
            raise Conflict("username or extension already taken", username=username,
                           extension=extension) from e
        return _identity(user)

    async def login(self, username: str, password: str) -> tuple[str, CurrentUser]:
        """Check the password; returns (cookie token, user). Raises NotAuthenticated."""
        async with self._sessionmaker() as s:
            user = await s.scalar(select(User).where(User.username == username))
        known = user is not None and user.active
        # ~85 ms of argon2 off the event loop (it is the AMI read path too); argon2-cffi
        # releases the GIL. An unknown user costs the same time as a wrong password.
        ok = await asyncio.get_running_loop().run_in_executor(
            None, _verify, user.password_hash if known else _DUMMY, password if known else password + "x")
        if not (known and ok):
            raise NotAuthenticated("用户名或密码错误 (wrong username or password)")
        token = secrets.token_urlsafe(32)
        now = self._clock()
        async with self._sessionmaker.begin() as s:
            s.add(LoginSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                               expires_at=now + self._ttl))
            # Expired sessions are cleaned up on the way.
            await s.execute(delete(LoginSession).where(LoginSession.expires_at < now))
        return token, _identity(user)

    async def authenticate(self, token: str) -> CurrentUser | None:
        """The user behind a session cookie, or None; slides the expiry forward."""
        if not token or len(token) > 128:
            return None
        key = _token_hash(token)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            user, expires, good_until = cached
            # Answered from memory while fresh, not expired and not yet due to slide.
            if time.monotonic() < good_until and expires - now >= self._ttl / 2:
                return user
            del self._cache[key]
        async with self._sessionmaker() as s:
            # A read, and now and then one UPDATE: no transaction around them (2 round trips
            # fewer on PostgreSQL for every request the cache cannot answer).
            await without_transaction(s)
            row = (await s.execute(
                select(LoginSession, User).join(User, User.id == LoginSession.user_id)
                .where(LoginSession.token_hash == key))).first()
            if row is None:
                return None
            sess, user = row
            expires = sess.expires_at if sess.expires_at.tzinfo else sess.expires_at.replace(tzinfo=dt.UTC)
            if expires < now or not user.active:
                return None
            if expires - now < self._ttl / 2:
                sess.expires_at = expires = now + self._ttl
                await s.commit()
            identity = _identity(user)
        self._remember(key, identity, expires)
        return identity

    def _remember(self, key: str, user: CurrentUser, expires: dt.datetime) -> None:
        if self._cache_s <= 0:
            return
        t = time.monotonic()
        if len(self._cache) >= self.CACHE_MAX:
            for k in [k for k, v in self._cache.items() if v[2] <= t]:
                del self._cache[k]
            if len(self._cache) >= self.CACHE_MAX:
                self._cache.clear()
        self._cache[key] = (user, expires, t + self._cache_s)

    @staticmethod
    def session_key(token: str) -> str:
        """What names a session apart from its cookie (the stored hash): safe to publish."""
        return _token_hash(token)

    async def seconds_left(self, key: str) -> float | None:
        """Seconds until the session ``key`` expires (None: gone, expired, or its user
        deactivated). Reading does not slide the expiry: only requests do."""
        async with self._sessionmaker() as s:
            row = (await s.execute(
                select(LoginSession.expires_at, User.active).join(User, User.id == LoginSession.user_id)
                .where(LoginSession.token_hash == key))).first()
        if row is None or not row.active:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
        left = (expires - self._clock()).total_seconds()
        return left if left > 0 else None

    async def logout(self, token: str) -> None:
        key = _token_hash(token)
        self._cache.pop(key, None)
        async with self._sessionmaker.begin() as s:
            await s.execute(delete(LoginSession).where(LoginSession.token_hash == key))
        self._cache.pop(key, None)  # again: a lookup running meanwhile may have put it back

"""Domain errors: each carries a code, an HTTP status and details.

Library errors are translated at the edge (``raise DomainError(...) from e``); the error
middleware in ``callcenter.web.middleware`` turns every DomainError into a JSON answer
``{"error": code, "message": ..., "details": {...}}``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class ValidationFailed(DomainError):
    """Input that does not fit: 422 with the field and the reason."""

    status = 422
    code = "validation_failed"

    def __init__(self, field: str, reason: str, **details: Any) -> None:
        super().__init__(f"{field}: {reason}", field=field, reason=reason, **details)


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"


class DatabaseUnavailable(DomainError):
    """The database cannot be reached right now (stopped, restarting, out of connections):
    503 with Retry-After; nothing was written."""

    status = 503
    code = "database_unavailable"


# Seconds a client is told to wait before trying again while the database is away.
DATABASE_RETRY_AFTER_S = 5


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable (not that a statement was wrong)."""
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.TimeoutError):  # the pool waited for a connection in vain
            return True
        if isinstance(e, OSError) and _raised_by_database_driver(e):
            # Refused / reset while connecting: only when the driver raised it (an AMI or
            # Redis connection error is not the database's).
            return True
        name = type(e).__name__
        module = type(e).__module__ or ""
        if module.startswith("asyncpg") and (
                "Connection" in name or name in ("CannotConnectNowError", "TooManyConnectionsError",
                                                  "AdminShutdownError", "CrashShutdownError")):
            return True
        if isinstance(e, sa_exc.InterfaceError) and "closed" in str(e).lower():
            return True
        e = e.__cause__ or e.__context__
    return False


def _raised_by_database_driver(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("sqlalchemy", "asyncpg", "aiosqlite")):
            return True
        tb = tb.tb_next
    return False

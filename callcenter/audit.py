"""The audit log: every change and every unmasked view, written in the same transaction as the
change itself (a change that rolls back leaves no entry, an entry never lacks its change).

``detail`` names what changed (field names, statuses, numbers of records), never personal values:
the log is readable by admins, who are not entitled to more than anyone else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.oversight import AuditEntry


def audit(session: AsyncSession, *, user_id: int | None, action: str, entity: str,
          entity_id: object = "", now: dt.datetime, detail: dict[str, Any] | None = None,
          reason: str = "") -> AuditEntry:
    """Add an audit entry to ``session`` (flushed and committed with the change)."""
    entry = audit_entry(user_id=user_id, action=action, entity=entity, entity_id=entity_id, now=now,
                        detail=detail, reason=reason)
    session.add(entry)
    return entry


def audit_entry(*, user_id: int | None, action: str, entity: str, entity_id: object = "",
                now: dt.datetime, detail: dict[str, Any] | None = None, reason: str = "") -> AuditEntry:
    """A new audit entry, not added: for the hot paths that write through Core
    (``callcenter.db.rows.insert_rows``) in the change's transaction."""
    return AuditEntry(at=now, user_id=user_id, action=action, entity=entity,
                      entity_id=str(entity_id), detail=detail or {}, reason=reason)

"""Queueing messages: :meth:`Outbox.enqueue` adds a row in the caller's transaction.

The caller's transaction decides: if the change rolls back, nothing is queued; once it commits,
the sender will find the row. A ``dedupe_key`` names the message (``appointment.reminder:42``):
queueing it again is a no-op (``INSERT … ON CONFLICT DO NOTHING``), so a retried request or a
second instance never queues one message twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import and_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.crypto import PhoneVault, Sealed
from callcenter.db.notify import Notification
from callcenter.notify.gateway import is_sms_number

_nt = Notification.__table__
# A mainland mobile anywhere in a text (digits, optionally +86 and single spaces or dashes).
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9](?:[ -]?\d){9}(?!\d)")
# The longest text queued (a long SMS is split by the gateway; 6 parts of 67 characters).
MAX_TEXT = 400


class Outbox:
    """Queues messages. ``vault`` seals numbers given in the clear (:meth:`seal`)."""

    def __init__(self, vault: PhoneVault) -> None:
        self.vault = vault

    def seal(self, number: str) -> Sealed:
        """The sealed form of a normalised mobile number; ValueError for anything else."""
        if not is_sms_number(number):
            raise ValueError("not a mainland mobile number")
        return self.vault.seal(number)

    @staticmethod
    async def enqueue(session: AsyncSession, *, kind: str, recipient: Sealed, text: str,
                      dedupe_key: str, now: dt.datetime, due_at: dt.datetime | None = None,
                      order_id: int | None = None, appointment_id: int | None = None,
                      channel: str = "sms") -> int | None:
        """Queue a message in ``session``'s transaction; its id, or None if ``dedupe_key`` was
        queued before. ``recipient``: a sealed mobile number (a stored one as it is: its index,
        ciphertext and masked form). ``due_at``: not before then (default ``now``).

        Raises ValueError for a text holding a mobile number or longer than :data:`MAX_TEXT`
        (a programming error: texts are built from masked parts)."""
        if _MOBILE_IN_TEXT.search(text):
            raise ValueError(f"{kind}: the text of a notification must not hold a phone number")
        if len(text) > MAX_TEXT:
            raise ValueError(f"{kind}: text of {len(text)} characters, at most {MAX_TEXT}")
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        stmt = (insert(_nt).values(
            kind=kind, channel=channel, recipient_index=recipient.index, recipient_enc=recipient.enc,
            recipient_masked=recipient.masked, text=text, order_id=order_id,
            appointment_id=appointment_id, dedupe_key=dedupe_key, status="queued",
            due_at=(due_at or now).astimezone(dt.UTC), attempts=0, last_error="", gateway_id="",
            created_at=now.astimezone(dt.UTC))
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_nt.c.id))
        return (await session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    async def cancel(session: AsyncSession, *, appointment_ids: Iterable[int] | None = None,
                     order_id: int | None = None, kinds: Iterable[str] | None = None) -> int:
        """Cancel the still-queued messages of these appointments (or of this order), in
        ``session``'s transaction; how many. A message a sender has already claimed is past
        cancelling: its kind's ``still_wanted`` check and conditional updates cover it."""
        conditions = [_nt.c.status == "queued"]
        if appointment_ids is not None:
            ids = list(appointment_ids)
            if not ids:
                return 0
            conditions.append(_nt.c.appointment_id.in_(ids))
        if order_id is not None:
            conditions.append(_nt.c.order_id == order_id)
        if kinds is not None:
            conditions.append(_nt.c.kind.in_(list(kinds)))
        if len(conditions) == 1:
            raise ValueError("cancel needs appointment_ids or order_id")
        result = await session.execute(update(_nt).where(and_(*conditions))
                                       .values(status="cancelled", lease_until=None)
                                       .execution_options(synchronize_session=False))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""The notification outbox (``callcenter.notify``): every message to a customer is a row here,
queued in the transaction of the change that calls for it, and sent afterwards by the sender.

The recipient's number is sealed like every stored number (``callcenter.crypto``): blind index,
ciphertext, masked form (key rotation finds the ``recipient_*`` columns by their names). The
text is what the customer receives; it carries no phone number and names the customer only
masked (张*), so the row itself is the record of what was sent.

Status: ``queued`` → ``sending`` (claimed by one sender until ``lease_until``) → ``sent`` |
``failed`` | ``cancelled``; a retryable failure puts it back to ``queued`` with a later
``due_at``. Times are aware UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId

STATUSES = ("queued", "sending", "sent", "failed", "cancelled")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        # The sender's two queues, partial so they hold only the rows in play: due queued rows,
        # and claimed rows whose lease may have run out (a sender died mid-send).
        Index("ix_notifications_due", "due_at",
              postgresql_where=text("status = 'queued'"), sqlite_where=text("status = 'queued'")),
        Index("ix_notifications_lease", "lease_until",
              postgresql_where=text("status = 'sending'"), sqlite_where=text("status = 'sending'")),
        # The list (GET /api/notifications): by order, or by status, newest first.
        Index("ix_notifications_order_created", "order_id", "created_at"),
        Index("ix_notifications_status_created", "status", "created_at"),
        Index("ix_notifications_appointment", "appointment_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # appointment.confirmation | appointment.reminder | survey.link …
    kind: Mapped[str] = mapped_column(String(32))
    # sms (the only channel so far)
    channel: Mapped[str] = mapped_column(String(8), default="sms")
    # The number it goes to, sealed (callcenter.crypto); normalised mainland mobile.
    recipient_index: Mapped[str] = mapped_column(String(64))
    recipient_enc: Mapped[str] = mapped_column(Text)
    recipient_masked: Mapped[str] = mapped_column(String(32))
    # The message body as sent (no phone number; names masked).
    text: Mapped[str] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE", name="fk_notifications_order"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE", name="fk_notifications_appointment"))
    # The same message is never queued twice: "appointment.reminder:42".
    dedupe_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    # Not sent before this (UTC); after a retryable failure, when to try again.
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Attempts started (incremented when a sender claims the row).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Why the last attempt failed: an error code and the gateway's words, numbers masked.
    last_error: Mapped[str] = mapped_column(String(200), default="")
    # The gateway's id of the sent message (for its delivery reports).
    gateway_id: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # While ``sending``: the claim holds until then; after it, another sender may take it over.
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

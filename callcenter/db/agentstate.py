"""Who is logged in to which queue, paused or not and why: the service's own record.

Asterisk forgets dynamic queue members when it restarts (``persistentmembers = no``, and even
with it a member added through AMI may be lost): after ``core restart now`` a real Asterisk
came back with every queue empty while the desks still said "available"
(``shared/asterisk/transcripts/project_dialplans_session.jsonl`` lines 380–417). So the service
keeps the truth here and restores Asterisk from it after every (re)connect
(``callcenter.agentstate.restore``). A row is written when an agent logs in, pauses, resumes
or logs out through the service, and when Asterisk reports a change made elsewhere (a
``QueueRemove`` or pause on the Asterisk CLI: the desk follows it). Static members from
``queues.conf`` are not kept: Asterisk owns them.

``seen_boot`` is the start time (epoch seconds, from ``FullyBooted``'s ``Uptime``) of the
Asterisk that last showed the member. A member missing after a reconnect to the *same*
Asterisk was removed there while the service was away (the record follows); one missing after a
restart (a new boot) is restored.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId


class QueueLogin(Base):
    __tablename__ = "queue_logins"
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    interface: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_name: Mapped[str] = mapped_column(String(64))
    state_interface: Mapped[str] = mapped_column(String(128), default="")
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_queue_logins_user"))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(64), default="")
    seen_boot: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

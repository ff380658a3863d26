"""Which user is behind a queue member: by the member's name, its interface, or the
extension part of the interface (``Local/8001@agents/n`` → 8001)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.events import extension_of
from callcenter.db.models import AgentMember, User

log = logging.getLogger("callcenter.agents")


class AgentDirectory:
    """An in-memory copy of the agent bindings, refreshed from the database.

    Kept in memory because it is read on the pop path for every ring; every instance refreshes
    its own copy (``refresh()`` after a change made here, ``run()`` every ``interval`` seconds
    for changes made elsewhere).
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._by_member: dict[str, int] = {}
        self._by_interface: dict[str, int] = {}
        self._by_extension: dict[str, int] = {}
        self.names: dict[int, str] = {}
        # Bumped by every refresh: whoever caches what ``resolve`` and ``names`` said (the
        # wallboard's agent rows) knows when to ask again.
        self.generation = 0

    async def refresh(self) -> None:
        async with self._sessionmaker() as s:
            users = (await s.execute(
                select(User.id, User.extension, User.display_name, User.username)
                .where(User.active.is_(True), User.extension.is_not(None)))).all()
            members = (await s.execute(
                select(AgentMember.user_id, AgentMember.member_name, AgentMember.interface)
                .join(User, User.id == AgentMember.user_id).where(User.active.is_(True)))).all()
        self._by_extension = {ext: uid for uid, ext, _, _ in users}
        self.names = {uid: (name or username) for uid, _, name, username in users}
        self._by_member = {m: uid for uid, m, _ in members}
        self._by_interface = {i: uid for uid, _, i in members}
        self.generation += 1

    def members_of(self, user_id: int) -> set[str]:
        """The member names a user answers to (explicit bindings and the extension)."""
        names = {m for m, uid in self._by_member.items() if uid == user_id}
        names.update(e for e, uid in self._by_extension.items() if uid == user_id)
        return names

    def interfaces_of(self, user_id: int) -> list[str]:
        """The queue interfaces explicitly bound to a user (``agent_members``)."""
        return sorted(i for i, uid in self._by_interface.items() if uid == user_id)

    def extension_of(self, user_id: int) -> str | None:
        return next((e for e, uid in self._by_extension.items() if uid == user_id), None)

    def resolve(self, member: str, interface: str = "") -> int | None:
        """The user id behind a member, or None if no active agent is bound to it."""
        return (self._by_member.get(member)
                or (self._by_interface.get(interface) if interface else None)
                or self._by_extension.get(member)
                or (self._by_extension.get(extension_of(interface)) if interface else None))

    async def run(self, interval: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("agents: refresh failed; keeping the previous copy")

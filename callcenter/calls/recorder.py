"""Writes call records off the read path: snapshots are merged in memory by Linkedid and
flushed in one transaction every ``interval`` seconds (and on shutdown)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.agents import AgentDirectory
from callcenter.customers.phones import normalise
from callcenter.db.models import Call

log = logging.getLogger("callcenter.calls")


class CallRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], agents: AgentDirectory,
                 *, local_area_code: str = "", interval: float = 0.2) -> None:
        self._sessionmaker = sessionmaker
        self._agents = agents
        self._area = local_area_code
        self.interval = interval
        # Linkedid → latest snapshot not yet written.
        self._dirty: dict[str, dict[str, Any]] = {}
        # Linkedid → customer id found by the caller lookup (arrives after the first snapshot).
        self._customers: dict[str, int | None] = {}
        # Records in the transaction being written right now.
        self._writing = 0
        self.written = 0

    @property
    def pending(self) -> int:
        """Call records changed in memory and not yet written."""
        return len(self._dirty) + self._writing

    def save(self, snapshot: dict[str, Any]) -> None:
        self._dirty[snapshot["id"]] = snapshot

    def set_customer(self, linkedid: str, customer_id: int | None, latest: dict[str, Any] | None = None) -> None:
        self._customers[linkedid] = customer_id
        if linkedid not in self._dirty and latest is not None:
            self._dirty[linkedid] = latest

    async def run(self) -> None:
        """Flush periodically until cancelled; the final flush happens in ``close``."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        if not self._dirty:
            return
        batch, self._dirty = self._dirty, {}
        self._writing = len(batch)
        try:
            await self._write(batch)
        except Exception:
            log.exception("calls: writing %d call records failed; will retry", len(batch))
            for lid, snap in batch.items():
                self._dirty.setdefault(lid, snap)
            return
        finally:
            self._writing = 0
        self.written += len(batch)
        for lid, snap in batch.items():
            if snap["state"] == "ended":
                self._customers.pop(lid, None)

    async def _write(self, batch: dict[str, dict[str, Any]]) -> None:
        async with self._sessionmaker.begin() as s:
            rows = {c.linkedid: c for c in await s.scalars(select(Call).where(Call.linkedid.in_(list(batch))))}
            for lid, snap in batch.items():
                row = rows.get(lid)
                if row is None:
                    row = Call(linkedid=lid, direction="inbound")
                    s.add(row)
                caller = snap["caller"] or ""
                phone = normalise(caller, self._area) if caller else None
                row.caller_raw = caller[:64]
                row.caller_number = phone.number if phone else ""
                row.did = snap["did"] or row.did or ""
                row.queue = snap["queue"] or row.queue or ""
                row.state = snap["state"]
                row.outcome = snap["outcome"]
                row.rang = [dict(r, agent_id=self._agents.resolve(r["member"])) for r in snap["rang"]]
                members = dict.fromkeys(r["member"] for r in snap["rang"])
                row.rang_members = ("," + ",".join(members) + ",")[:255] if members else ""
                row.started_at = snap["started_at"]
                row.answered_at = snap["answered_at"]
                row.ended_at = snap["ended_at"]
                row.hold_s = snap["hold_s"]
                row.talk_s = snap["talk_s"]
                if snap["answered_by"]:
                    row.agent_member = snap["answered_by"]
                    row.agent_id = self._agents.resolve(snap["answered_by"])
                if lid in self._customers:
                    row.customer_id = self._customers[lid]

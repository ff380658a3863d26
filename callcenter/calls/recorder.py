"""Writes call records off the read path: snapshots are merged in memory by Linkedid and
flushed in one transaction every ``interval`` seconds (and on shutdown).

The caller's number is written sealed (``callcenter.crypto``): blind index, ciphertext, masked
form; sealed once per call and reused for its later snapshots."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.calls.agents import AgentDirectory
from callcenter.crypto import PhoneVault, Sealed
from callcenter.customers.phones import normalise
from callcenter.db.models import Call

log = logging.getLogger("callcenter.calls")


class CallRecorder:
    def __init__(self, engine: AsyncEngine, agents: AgentDirectory, vault: PhoneVault,
                 *, local_area_code: str = "", interval: float = 0.2) -> None:
        self._engine = engine
        self._agents = agents
        self._vault = vault
        self._area = local_area_code
        self.interval = interval
        # Linkedid → latest snapshot not yet written.
        self._dirty: dict[str, dict[str, Any]] = {}
        # Linkedid → customer id found by the caller lookup (arrives after the first snapshot).
        self._customers: dict[str, int | None] = {}
        # Linkedid → the caller's number sealed (kept while the call lasts).
        self._sealed: dict[str, Sealed] = {}
        # Linkedid → customer id found after the call's last snapshot was written.
        self._late: dict[str, int] = {}
        # Records in the transaction being written right now.
        self._writing = 0
        self.written = 0

    @property
    def pending(self) -> int:
        """Call records changed in memory and not yet written."""
        return len(self._dirty) + len(self._late) + self._writing

    def save(self, snapshot: dict[str, Any]) -> None:
        self._dirty[snapshot["id"]] = snapshot

    def set_customer(self, linkedid: str, customer_id: int | None, latest: dict[str, Any] | None = None) -> None:
        """The caller lookup's result. ``latest``: the call's current snapshot, None if the call
        is over (then only the customer is written to its record)."""
        if latest is None:
            if customer_id is not None:
                self._late[linkedid] = customer_id
            return
        self._customers[linkedid] = customer_id
        self._dirty.setdefault(linkedid, latest)

    async def run(self) -> None:
        """Flush periodically until cancelled; the final flush happens in ``close``."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        """Write what changed. A failed batch is kept for the next flush, except rows that fail
        on their own (written one by one to find them): those are dropped and logged by id."""
        late, self._late = self._late, {}
        if not self._dirty and not late:
            return
        batch, self._dirty = self._dirty, {}
        self._writing = len(batch)
        try:
            await self._write([self._row(lid, snap) for lid, snap in batch.items()], late)
        except asyncio.CancelledError:
            self._restore(batch, late)  # shutdown: the final flush writes them
            raise
        except Exception as e:
            log.error("calls: writing %d call records failed (%s); retrying them one by one",
                      len(batch), type(e).__name__)
            await self._write_one_by_one(batch, late)
        finally:
            self._writing = 0
        self.written += len(batch)
        for lid, snap in batch.items():
            if snap["state"] == "ended":
                self._customers.pop(lid, None)
                self._sealed.pop(lid, None)

    def _restore(self, batch: dict[str, dict[str, Any]], late: dict[str, int]) -> None:
        for lid, snap in batch.items():
            self._dirty.setdefault(lid, snap)  # a newer snapshot wins
        for lid, cid in late.items():
            self._late.setdefault(lid, cid)

    async def _write_one_by_one(self, batch: dict[str, dict[str, Any]], late: dict[str, int]) -> None:
        failed: dict[str, dict[str, Any]] = {}
        for lid, snap in batch.items():
            try:
                await self._write([self._row(lid, snap)], {})
            except (IntegrityError, DataError) as e:
                # This row can never be written; logged by id only (never its parameters).
                log.error("calls: dropped the record of call %s (%s)", lid, type(e).__name__)
            except Exception:  # noqa: BLE001 - the database is away, not the row: keep it
                failed[lid] = snap
        try:
            await self._write([], late)
        except Exception:  # noqa: BLE001
            failed_late = late
        else:
            failed_late = {}
        self._restore(failed, failed_late)

    def _seal(self, lid: str, caller: str) -> Sealed:
        sealed = self._sealed.get(lid)
        if sealed is None:
            phone = normalise(caller, self._area) if caller else None
            # A CallerIDNum that is no phone number is sealed as received (never stored plain).
            sealed = self._sealed[lid] = self._vault.seal(phone.number if phone else caller[:64])
        return sealed

    def _row(self, lid: str, snap: dict[str, Any]) -> dict[str, Any]:
        sealed = self._seal(lid, snap["caller"] or "")
        members = dict.fromkeys(r["member"] for r in snap["rang"])
        answered_by = snap["answered_by"] or ""
        return {
            # Cut to the columns' sizes: one odd value from Asterisk must not fail the batch.
            "linkedid": lid[:64], "direction": "inbound", "caller_index": sealed.index,
            "caller_enc": sealed.enc, "caller_masked": sealed.masked[:32],
            "did": (snap["did"] or "")[:32],
            "queue": (snap["queue"] or "")[:64], "state": snap["state"], "outcome": snap["outcome"],
            "rang": [dict(r, agent_id=self._agents.resolve(r["member"])) for r in snap["rang"]],
            "rang_members": "," + ",".join(members) + "," if members else "",
            "started_at": snap["started_at"], "answered_at": snap["answered_at"],
            "ended_at": snap["ended_at"], "hold_s": snap["hold_s"], "talk_s": snap["talk_s"],
            "agent_member": answered_by[:64],
            "agent_id": self._agents.resolve(answered_by) if answered_by else None,
            "customer_id": self._customers.get(lid),
        }

    async def _write(self, rows: list[dict[str, Any]], late: dict[str, int]) -> None:
        # Core executemany on a connection: a constant statement, the rows as parameters.
        async with self._engine.begin() as conn:
            if rows:
                await conn.execute(_upsert(conn.dialect.name), rows)
            if late:
                await conn.execute(_SET_CUSTOMER, [{"lid": k, "cid": v} for k, v in late.items()])


_SET_CUSTOMER = (update(Call).where(Call.linkedid == bindparam("lid"), Call.customer_id.is_(None))
                 .values(customer_id=bindparam("cid")))
_KEEP_IF_EMPTY = ("did", "queue", "agent_member")  # a later snapshot may not know them
_KEEP_IF_NULL = ("customer_id", "agent_id")


@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (linkedid) DO UPDATE, built once per dialect and run as one
    executemany: no ORM unit of work on the event loop for every flush."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(Call)
    new = stmt.excluded
    table = Call.__table__.c
    updates: dict[str, Any] = {}
    for col in ("caller_index", "caller_enc", "caller_masked", "state", "outcome", "rang", "rang_members",
                "started_at", "answered_at", "ended_at", "hold_s", "talk_s"):
        updates[col] = new[col]
    for col in _KEEP_IF_EMPTY:
        updates[col] = func.coalesce(func.nullif(new[col], ""), table[col])
    for col in _KEEP_IF_NULL:
        updates[col] = func.coalesce(new[col], table[col])
    return stmt.on_conflict_do_update(index_elements=[table.linkedid], set_=updates)

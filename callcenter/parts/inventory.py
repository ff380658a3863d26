"""Stock: every change of a level goes through :class:`StockLedger` inside the caller's
transaction; safety-stock crossings are pushed to supervisors after the commit
(:class:`StockAlerts`).

Why one conditional UPDATE: ``UPDATE stock_levels SET quantity = quantity - :q WHERE … AND
quantity >= :q`` is checked and applied by the database under the row's lock. On PostgreSQL a
concurrent issue of the same part at the same place waits for the row, then re-evaluates the
condition against the committed quantity: of 20 requests for the last 5 units exactly 5 match,
and the others find no row and answer 409 (their transaction rolls back: no line, no movement).
SQLite serialises writers anyway. The CHECK (quantity >= 0) is only the last guard.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import User
from callcenter.db.stock import Part, StockLevel, StockLocation, StockMovement
from callcenter.errors import Conflict

log = logging.getLogger("callcenter.parts")


class StockLedger:
    """Stock changes within one transaction (``session``), each with its movement row.

    ``crossed`` collects the (location_id, part_id) levels that fell below their safety stock
    in this transaction: hand them to :meth:`StockAlerts.push` after the commit."""

    def __init__(self, session: AsyncSession, *, now: dt.datetime, user_id: int | None) -> None:
        self.session = session
        self.now = now
        self.user_id = user_id
        self.crossed: list[tuple[int, int]] = []

    def _level(self, location_id: int, part_id: int):  # type: ignore[no-untyped-def]
        return (StockLevel.location_id == location_id, StockLevel.part_id == part_id)

    async def take(self, *, part_id: int, location_id: int, quantity: int, reason: str,
                   line_id: int | None = None, note: str = "") -> None:
        """Remove ``quantity`` units; Conflict (409, ``insufficient_stock``) if fewer are there.

        Nothing is changed when it raises; the caller's transaction must then roll back."""
        result = await self.session.execute(
            update(StockLevel).where(*self._level(location_id, part_id), StockLevel.quantity >= quantity)
            .values(quantity=StockLevel.quantity - quantity)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            available = await self.session.scalar(
                select(StockLevel.quantity).where(*self._level(location_id, part_id))) or 0
            raise Conflict("库存不足 (insufficient stock)", code="insufficient_stock", part_id=part_id,
                           location_id=location_id, requested=quantity, available=available)
        self._move(part_id, location_id, -quantity, reason, line_id, note)
        await self._check_safety(location_id, part_id)

    async def give(self, *, part_id: int, location_id: int, quantity: int, reason: str,
                   line_id: int | None = None, note: str = "") -> None:
        """Add ``quantity`` units (creating the level if the part was never kept there)."""
        result = await self.session.execute(
            update(StockLevel).where(*self._level(location_id, part_id))
            .values(quantity=StockLevel.quantity + quantity)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            self.session.add(StockLevel(location_id=location_id, part_id=part_id, quantity=quantity,
                                        safety_stock=0))
            await self.session.flush()
        self._move(part_id, location_id, quantity, reason, line_id, note)
        await self._check_safety(location_id, part_id)

    async def set_safety(self, *, part_id: int, location_id: int, safety_stock: int) -> None:
        result = await self.session.execute(
            update(StockLevel).where(*self._level(location_id, part_id))
            .values(safety_stock=safety_stock).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            self.session.add(StockLevel(location_id=location_id, part_id=part_id, quantity=0,
                                        safety_stock=safety_stock))
            await self.session.flush()
        await self._check_safety(location_id, part_id)

    def _move(self, part_id: int, location_id: int, delta: int, reason: str, line_id: int | None,
              note: str) -> None:
        self.session.add(StockMovement(at=self.now, part_id=part_id, location_id=location_id, delta=delta,
                                       reason=reason, onsite_line_id=line_id, user_id=self.user_id, note=note))

    async def _check_safety(self, location_id: int, part_id: int) -> None:
        """Mark a crossing below the safety stock once (and clear it when stock is back), with
        conditional UPDATEs on the row this transaction already holds."""
        where = self._level(location_id, part_id)
        raised = await self.session.execute(
            update(StockLevel).where(*where, StockLevel.quantity < StockLevel.safety_stock,
                                     StockLevel.alert_raised_at.is_(None))
            .values(alert_raised_at=self.now).execution_options(synchronize_session=False))
        if raised.rowcount == 1:
            self.crossed.append((location_id, part_id))
            return
        await self.session.execute(
            update(StockLevel).where(*where, StockLevel.quantity >= StockLevel.safety_stock,
                                     StockLevel.alert_raised_at.is_not(None))
            .values(alert_raised_at=None).execution_options(synchronize_session=False))


def location_json(loc: StockLocation) -> dict[str, Any]:
    return {"id": loc.id, "code": loc.code, "name": loc.name, "kind": loc.kind,
            "warehouse_type": loc.warehouse_type, "engineer_id": loc.engineer_id}


def part_json(p: Part) -> dict[str, Any]:
    return {"id": p.id, "code": p.code, "name": p.name, "model": p.model, "category": p.category,
            "unit_price_fen": p.unit_price_fen, "active": p.active}


def level_json(level: StockLevel, loc: StockLocation, part: Part) -> dict[str, Any]:
    return {"location": location_json(loc), "part": part_json(part), "quantity": level.quantity,
            "safety_stock": level.safety_stock, "below_safety": level.quantity < level.safety_stock,
            "alert_raised_at": level.alert_raised_at}


async def load_level(s: AsyncSession, location_id: int, part_id: int) -> dict[str, Any]:
    """One level with its location and part, as the API shows it."""
    row = (await s.execute(
        select(StockLevel, StockLocation, Part)
        .join(StockLocation, StockLocation.id == StockLevel.location_id)
        .join(Part, Part.id == StockLevel.part_id)
        .where(StockLevel.location_id == location_id, StockLevel.part_id == part_id))).one()
    return level_json(*row)


class StockAlerts:
    """Pushes ``{"type": "stock.alert", …}`` to every active supervisor's mailbox (their
    websockets), once per crossing. ``mailbox`` may be None (no realtime: listed only)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], mailbox: Any | None) -> None:
        self.sessionmaker = sessionmaker
        self.mailbox = mailbox

    async def push(self, crossed: list[tuple[int, int]]) -> None:
        """Best effort after the commit: a failed push is logged; the alert stays listed in
        ``GET /api/stock/alerts`` (``alert_raised_at`` is already set, so it is not re-pushed)."""
        if not crossed or self.mailbox is None:
            return
        try:
            async with self.sessionmaker() as s:
                supervisors = (await s.scalars(select(User.id).where(User.role == "supervisor",
                                                                       User.active.is_(True)))).all()
                messages = []
                for location_id, part_id in crossed:
                    messages.append({"type": "stock.alert", **await load_level(s, location_id, part_id)})
            for message in messages:
                for user_id in supervisors:
                    await self.mailbox.post(user_id, _jsonable(message))
        except Exception:
            log.exception("stock alert push failed (%d levels); still listed", len(crossed))


def _jsonable(message: dict[str, Any]) -> dict[str, Any]:
    at = message.get("alert_raised_at")
    if isinstance(at, dt.datetime):
        message = {**message, "alert_raised_at": (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).isoformat()}
    return message

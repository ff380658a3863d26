"""Stock administration and reading: locations (the six warehouse types and the engineers'
vans), receipts, transfers, adjustments, safety stock, levels, alerts and movements.

Engineers read only the places they may issue from (their own van and the 配件库 warehouses);
dispatchers, supervisors and admins read all. Writes are for ``stock.write`` roles, each in one
transaction with its movements and an audit entry; crossings below safety stock are pushed
after the commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import User
from callcenter.db.stock import Part, StockLevel, StockLocation, StockMovement
from callcenter.errors import Conflict, ValidationFailed
from callcenter.parts import schemas
from callcenter.parts.inventory import StockAlerts, StockLedger, level_json, load_level, location_json
from callcenter.parts.rules import PARTS_WAREHOUSE


def _visible_locations(user: CurrentUser):  # type: ignore[no-untyped-def]
    """A filter on StockLocation for what ``user`` may read (None: everything)."""
    if user.role != "engineer":
        return None
    return or_(StockLocation.engineer_id == user.id, StockLocation.warehouse_type == PARTS_WAREHOUSE)


def _scoped(stmt: Any, user: CurrentUser, q: schemas.StockQuery | schemas.MovementsQuery, table: Any) -> Any:
    """``stmt`` (joined to StockLocation) limited to what ``user`` may read and to the query's
    location and part; ``table`` has ``location_id`` and ``part_id`` columns."""
    visible = _visible_locations(user)
    if visible is not None:
        stmt = stmt.where(visible)
    if q.location_id is not None:
        stmt = stmt.where(table.location_id == q.location_id)
    if q.part_id is not None:
        stmt = stmt.where(table.part_id == q.part_id)
    return stmt


class StockService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], alerts: StockAlerts) -> None:
        self.sessionmaker = sessionmaker
        self.alerts = alerts

    # ---- reading ---------------------------------------------------------------------------

    async def locations(self, user: CurrentUser) -> list[dict[str, Any]]:
        stmt = select(StockLocation).order_by(StockLocation.kind.desc(), StockLocation.code)
        visible = _visible_locations(user)
        if visible is not None:
            stmt = stmt.where(visible)
        async with self.sessionmaker() as s:
            return [location_json(loc) for loc in (await s.scalars(stmt)).all()]

    async def levels(self, user: CurrentUser, q: schemas.StockQuery, *, alerts_only: bool = False) -> dict[str, Any]:
        stmt = (select(StockLevel, StockLocation, Part)
                .join(StockLocation, StockLocation.id == StockLevel.location_id)
                .join(Part, Part.id == StockLevel.part_id))
        stmt = _scoped(stmt, user, q, StockLevel)
        if q.category:
            stmt = stmt.where(Part.category == q.category)
        if q.below_safety or alerts_only:
            stmt = stmt.where(StockLevel.quantity < StockLevel.safety_stock)
        async with self.sessionmaker() as s:
            total = await s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            order = ((StockLevel.alert_raised_at.desc(),) if alerts_only else ()) + (StockLocation.code, Part.code)
            rows = (await s.execute(stmt.order_by(*order).offset((q.page - 1) * q.page_size)
                                    .limit(q.page_size))).all()
        return {"items": [level_json(*r) for r in rows], "total": total, "page": q.page,
                "page_size": q.page_size}

    async def movements(self, user: CurrentUser, q: schemas.MovementsQuery) -> dict[str, Any]:
        stmt = select(StockMovement).join(StockLocation, StockLocation.id == StockMovement.location_id)
        stmt = _scoped(stmt, user, q, StockMovement)
        stmt = stmt.order_by(StockMovement.id.desc()).offset((q.page - 1) * q.page_size).limit(q.page_size)
        async with self.sessionmaker() as s:
            rows = (await s.scalars(stmt)).all()
        items = [{"id": m.id, "at": m.at, "part_id": m.part_id, "location_id": m.location_id,
                  "delta": m.delta, "reason": m.reason, "onsite_line_id": m.onsite_line_id,
                  "user_id": m.user_id, "note": m.note} for m in rows]
        return {"items": items, "page": q.page, "page_size": q.page_size}

    # ---- writing ---------------------------------------------------------------------------

    async def create_location(self, user: CurrentUser, body: schemas.LocationIn, now: dt.datetime) -> dict[str, Any]:
        if body.kind == "warehouse":
            if body.warehouse_type is None:
                raise ValidationFailed("warehouse_type", "required for a warehouse")
            if body.engineer_id is not None:
                raise ValidationFailed("engineer_id", "only a van has an engineer")
        else:
            if body.engineer_id is None:
                raise ValidationFailed("engineer_id", "required for a van")
            if body.warehouse_type is not None:
                raise ValidationFailed("warehouse_type", "only a warehouse has a type")
        dup = Conflict("库位已存在 (code taken, or this engineer already has a van)", code="duplicate")
        try:
            async with self.sessionmaker.begin() as s:
                if body.engineer_id is not None:
                    role = await s.scalar(select(User.role).where(User.id == body.engineer_id))
                    if role != "engineer":
                        raise ValidationFailed("engineer_id", "not an engineer")
                    if await s.scalar(select(StockLocation.id).where(StockLocation.engineer_id == body.engineer_id)):
                        raise dup
                if await s.scalar(select(StockLocation.id).where(StockLocation.code == body.code)):
                    raise dup
                loc = StockLocation(code=body.code, name=body.name, kind=body.kind,
                                    warehouse_type=body.warehouse_type or "", engineer_id=body.engineer_id)
                s.add(loc)
                await s.flush()
                audit(s, user_id=user.id, action="stock.location.create", entity="stock",
                      entity_id=loc.id, now=now, detail={"kind": loc.kind, "warehouse_type": loc.warehouse_type})
        except IntegrityError as e:
            raise dup from e
        return location_json(loc)

    async def _location(self, s: AsyncSession, location_id: int, field: str) -> StockLocation:
        loc = await s.get(StockLocation, location_id)
        if loc is None:
            raise ValidationFailed(field, "no such stock location")
        return loc

    async def _part(self, s: AsyncSession, part_id: int) -> Part:
        part = await s.get(Part, part_id)
        if part is None:
            raise ValidationFailed("part_id", "no such part")
        return part

    async def _levels(self, s: AsyncSession, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [await load_level(s, location_id, part_id) for location_id, part_id in keys]

    async def receive(self, user: CurrentUser, body: schemas.Receipt, now: dt.datetime) -> dict[str, Any]:
        """Goods received into a warehouse (a van is filled by a transfer)."""
        async with self.sessionmaker.begin() as s:
            loc = await self._location(s, body.location_id, "location_id")
            if loc.kind != "warehouse":
                raise ValidationFailed("location_id", "receipts go into a warehouse; fill a van by transfer")
            await self._part(s, body.part_id)
            ledger = StockLedger(s, now=now, user_id=user.id)
            await ledger.give(part_id=body.part_id, location_id=loc.id, quantity=body.quantity,
                              reason="receipt", note=body.note)
            audit(s, user_id=user.id, action="stock.receipt", entity="stock", entity_id=loc.id,
                  now=now, detail={"part_id": body.part_id, "quantity": body.quantity})
            levels = await self._levels(s, [(loc.id, body.part_id)])
        await self.alerts.push(ledger.crossed)
        return {"levels": levels}

    async def transfer(self, user: CurrentUser, body: schemas.Transfer, now: dt.datetime) -> dict[str, Any]:
        """Move stock between two locations (typically 配件库 → an engineer's van); 409 if the
        source has too few. Both rows are changed in id order, so two opposite transfers never
        deadlock."""
        if body.from_location_id == body.to_location_id:
            raise ValidationFailed("to_location_id", "must differ from from_location_id")
        async with self.sessionmaker.begin() as s:
            await self._location(s, body.from_location_id, "from_location_id")
            await self._location(s, body.to_location_id, "to_location_id")
            await self._part(s, body.part_id)
            ledger = StockLedger(s, now=now, user_id=user.id)
            steps = [(body.from_location_id, False), (body.to_location_id, True)]
            for location_id, incoming in sorted(steps):
                move = ledger.give if incoming else ledger.take
                await move(part_id=body.part_id, location_id=location_id, quantity=body.quantity,
                           reason="transfer", note=body.note)
            audit(s, user_id=user.id, action="stock.transfer", entity="stock",
                  entity_id=body.from_location_id, now=now,
                  detail={"part_id": body.part_id, "quantity": body.quantity, "to": body.to_location_id})
            levels = await self._levels(s, [(body.from_location_id, body.part_id),
                                             (body.to_location_id, body.part_id)])
        await self.alerts.push(ledger.crossed)
        return {"levels": levels}

    async def adjust(self, user: CurrentUser, body: schemas.Adjustment, now: dt.datetime) -> dict[str, Any]:
        """A stock-take correction, signed; never below 0 (409)."""
        if body.delta == 0:
            raise ValidationFailed("delta", "must not be 0")
        async with self.sessionmaker.begin() as s:
            loc = await self._location(s, body.location_id, "location_id")
            await self._part(s, body.part_id)
            ledger = StockLedger(s, now=now, user_id=user.id)
            move = ledger.give if body.delta > 0 else ledger.take
            await move(part_id=body.part_id, location_id=loc.id, quantity=abs(body.delta), reason="adjust",
                       note=body.reason)
            audit(s, user_id=user.id, action="stock.adjust", entity="stock", entity_id=loc.id,
                  now=now, detail={"part_id": body.part_id, "delta": body.delta}, reason=body.reason)
            levels = await self._levels(s, [(loc.id, body.part_id)])
        await self.alerts.push(ledger.crossed)
        return {"levels": levels}

    async def set_safety_stock(self, user: CurrentUser, body: schemas.SafetyStock, now: dt.datetime) -> dict[str, Any]:
        async with self.sessionmaker.begin() as s:
            loc = await self._location(s, body.location_id, "location_id")
            await self._part(s, body.part_id)
            ledger = StockLedger(s, now=now, user_id=user.id)
            await ledger.set_safety(part_id=body.part_id, location_id=loc.id, safety_stock=body.safety_stock)
            audit(s, user_id=user.id, action="stock.safety", entity="stock", entity_id=loc.id,
                  now=now, detail={"part_id": body.part_id, "safety_stock": body.safety_stock})
            levels = await self._levels(s, [(loc.id, body.part_id)])
        await self.alerts.push(ledger.crossed)
        return {"levels": levels}

"""The price list (visit fee and labour per product category) and the parts catalogue: read by
everyone who records a visit, written by admins only (every write audited)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.db.stock import Part, PriceItem
from callcenter.errors import Conflict, NotFound
from callcenter.parts import schemas
from callcenter.parts.inventory import part_json


def price_item_json(p: PriceItem) -> dict[str, Any]:
    return {"id": p.id, "category": p.category, "kind": p.kind, "name": p.name,
            "amount_fen": p.amount_fen, "active": p.active}


class CatalogueService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def parts(self, q: schemas.PartsQuery) -> list[dict[str, Any]]:
        stmt = select(Part).order_by(Part.category, Part.code).limit(500)
        if not q.include_inactive:
            stmt = stmt.where(Part.active.is_(True))
        if q.category:
            stmt = stmt.where(or_(Part.category == q.category, Part.category == ""))
        if q.q:
            like = f"%{q.q}%"
            stmt = stmt.where(or_(Part.code.ilike(like), Part.name.ilike(like), Part.model.ilike(like)))
        async with self.sessionmaker() as s:
            return [part_json(p) for p in (await s.scalars(stmt)).all()]

    async def price_items(self, q: schemas.PriceItemsQuery) -> list[dict[str, Any]]:
        stmt = select(PriceItem).order_by(PriceItem.category, PriceItem.kind, PriceItem.id)
        if not q.include_inactive:
            stmt = stmt.where(PriceItem.active.is_(True))
        if q.category:
            stmt = stmt.where(PriceItem.category == q.category)
        if q.kind:
            stmt = stmt.where(PriceItem.kind == q.kind)
        async with self.sessionmaker() as s:
            return [price_item_json(p) for p in (await s.scalars(stmt)).all()]

    async def create_part(self, user: CurrentUser, body: schemas.PartIn, now: dt.datetime) -> dict[str, Any]:
        part = await self._create(user, Part(**body.model_dump()), now, entity="part", dup=_PART_TAKEN,
                                  exists=(Part.code == body.code,))
        return part_json(part)

    async def update_part(self, user: CurrentUser, part_id: int, body: schemas.PartPatch,
                          now: dt.datetime) -> dict[str, Any]:
        part = await self._update(user, Part, part_id, body, now, entity="part", dup=_PART_TAKEN,
                                  missing="配件不存在 (no such part)")
        return part_json(part)

    async def create_price_item(self, user: CurrentUser, body: schemas.PriceItemIn,
                                now: dt.datetime) -> dict[str, Any]:
        item = await self._create(user, PriceItem(**body.model_dump()), now, entity="price_item",
                                  dup=_PRICE_TAKEN, exists=(PriceItem.category == body.category,
                                                            PriceItem.kind == body.kind, PriceItem.name == body.name))
        return price_item_json(item)

    async def update_price_item(self, user: CurrentUser, item_id: int, body: schemas.PriceItemPatch,
                                now: dt.datetime) -> dict[str, Any]:
        item = await self._update(user, PriceItem, item_id, body, now, entity="price_item", dup=_PRICE_TAKEN,
                                  missing="价目不存在 (no such price item)")
        return price_item_json(item)

    async def _create(self, user: CurrentUser, row: Any, now: dt.datetime, *, entity: str,
                      dup: tuple[str, str], exists: tuple[Any, ...]) -> Any:
        """Insert ``row`` (409 naming the field if its unique key is taken), audited."""
        try:
            async with self.sessionmaker.begin() as s:
                if await s.scalar(select(type(row).id).where(*exists)) is not None:
                    raise _taken(dup)
                s.add(row)
                await s.flush()
                audit(s, user_id=user.id, action=f"catalogue.{entity}.create", entity=entity, entity_id=row.id,
                      now=now)
        except IntegrityError as e:
            raise _taken(dup) from e
        return row

    async def _update(self, user: CurrentUser, model: Any, row_id: int, body: Any, now: dt.datetime, *,
                      entity: str, dup: tuple[str, str], missing: str) -> Any:
        """Change the fields sent (null means unchanged), audited by field name; 404 if absent."""
        changes = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
        try:
            async with self.sessionmaker.begin() as s:
                row = await s.get(model, row_id, with_for_update=True)
                if row is None:
                    raise NotFound(missing, id=row_id)
                for k, v in changes.items():
                    setattr(row, k, v)
                await s.flush()
                audit(s, user_id=user.id, action=f"catalogue.{entity}.update", entity=entity, entity_id=row.id,
                      now=now, detail={"fields": sorted(changes)})
        except IntegrityError as e:
            raise _taken(dup) from e
        return row


_PART_TAKEN = ("配件编码已存在 (part code taken)", "code")
_PRICE_TAKEN = ("价目已存在 (this category already has an item of that kind and name)", "name")


def _taken(dup: tuple[str, str]) -> Conflict:
    return Conflict(dup[0], code="duplicate", field=dup[1])

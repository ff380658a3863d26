"""The on-site record (SA-OS-004): created by the order's engineer while the order is 服务中 or
待件, edited with optimistic versions, parts issued from stock in the same transaction, signed
by the customer and the engineer, then locked until a supervisor reopens it.

Every write runs in one transaction that locks the work order row, then the record row, in that
order (the orders slice locks the order first too), so writes to one record are serialised, the
totals recomputed under the lock are always those of the committed lines, and the order cannot
change status half-way. Each write bumps the record's ``version``, writes an audit entry and a
timeline line (OrderEvent, action ``onsite``). Status transitions are not made here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.access import check_order
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Appliance, WorkOrder
from callcenter.db.records import IntakeRecord, OnsiteRecord, OrderEvent
from callcenter.db.stock import OnsitePartLine, Part, PriceItem, StockLocation
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.orders.numbering import next_number
from callcenter.parts import schemas
from callcenter.parts.fees import LABOUR, VISIT_FEE, is_free, line_total
from callcenter.parts.inventory import StockAlerts, StockLedger
from callcenter.parts.rules import (
    CLOSED_STATUSES,
    WRITABLE_STATUSES,
    check_signature,
    check_times,
    may_issue_from,
    signature_kind,
    to_minute,
)
from callcenter.parts.views import apply_totals, part_lines, record_json, totals_of, utc
from callcenter.settings import Settings

# Fields of OnsiteUpdate copied as they are (after stripping).
PLAIN_FIELDS = ("product_model", "serial", "fault_observed", "root_cause", "solution", "test_result",
                "customer_feedback")


def _not_found(onsite_id: object) -> NotFound:
    return NotFound("上门记录不存在 (no such on-site record)", id=onsite_id)


class OnsiteService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                 alerts: StockAlerts) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.alerts = alerts

    # ---- loading and checks ----------------------------------------------------------------

    async def _load(self, s: AsyncSession, user: CurrentUser, onsite_id: int, action: str, *,
                    lock: bool) -> tuple[OnsiteRecord, WorkOrder]:
        """The record and its order if ``user`` may ``action`` it: 404 if absent or not theirs
        (an engineer and another engineer's order), 403 if the role may not."""
        order_id = await s.scalar(select(OnsiteRecord.order_id).where(OnsiteRecord.id == onsite_id))
        if order_id is None:
            raise _not_found(onsite_id)
        order = await s.get(WorkOrder, order_id, with_for_update=lock)
        try:
            check_order(user, action, order, order_id)
        except NotFound:
            raise _not_found(onsite_id) from None
        record = await s.get(OnsiteRecord, onsite_id, with_for_update=lock, populate_existing=lock)
        if record is None or record.order_id != order_id:
            raise _not_found(onsite_id)
        return record, order  # type: ignore[return-value]

    async def _writable(self, s: AsyncSession, user: CurrentUser, onsite_id: int) -> tuple[OnsiteRecord, WorkOrder]:
        record, order = await self._load(s, user, onsite_id, "onsite.write", lock=True)
        _check_in_service(order)
        if record.signed_at is not None:
            raise Conflict("记录已签字锁定，需主管重新打开 (signed and locked; a supervisor may reopen it)",
                           code="onsite_locked", signed_at=utc(record.signed_at))
        return record, order

    async def _finish(self, s: AsyncSession, user: CurrentUser, record: OnsiteRecord, order: WorkOrder,
                      now: dt.datetime, *, action: str, detail: dict[str, Any], note: str,
                      reason: str = "") -> dict[str, Any]:
        """Recompute the totals, bump the version, audit, add the timeline line; the answer."""
        await s.flush()
        apply_totals(record, totals_of(record, [line for line, _, _ in await part_lines(s, record.id)]))
        record.version += 1
        record.updated_at = now
        audit(s, user_id=user.id, action=action, entity="onsite", entity_id=record.id, now=now,
              detail={"number": record.number, "order_id": order.id, **detail}, reason=reason)
        s.add(OrderEvent(order_id=order.id, at=now, user_id=user.id, action="onsite",
                         from_status=order.status, to_status=order.status, note=note))
        await s.flush()
        return await record_json(s, record, order)

    # ---- reading -----------------------------------------------------------------------------

    async def get(self, user: CurrentUser, onsite_id: int) -> dict[str, Any]:
        async with self.sessionmaker() as s:
            record, order = await self._load(s, user, onsite_id, "onsite.read", lock=False)
            return await record_json(s, record, order)

    async def list_for_order(self, user: CurrentUser, order_id: int) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            order = await s.get(WorkOrder, order_id)
            check_order(user, "onsite.read", order, order_id)
            records = (await s.scalars(select(OnsiteRecord).where(OnsiteRecord.order_id == order_id)
                                       .order_by(OnsiteRecord.id))).all()
            return [await record_json(s, r, order) for r in records]  # type: ignore[arg-type]

    # ---- the record ----------------------------------------------------------------------------

    async def create(self, user: CurrentUser, order_id: int, body: schemas.OnsiteCreate,
                     now: dt.datetime) -> dict[str, Any]:
        """A new record for the order's engineer. 409 if the order is not 服务中/待件, has no
        engineer, or already has an unsigned record (its id is in the details)."""
        tz = self.settings.tz
        async with self.sessionmaker.begin() as s:
            order = await s.get(WorkOrder, order_id, with_for_update=True)
            check_order(user, "onsite.write", order, order_id)
            assert order is not None
            _check_in_service(order)
            if order.engineer_id is None:
                raise Conflict("工单未派工程师 (the order has no engineer)", code="no_engineer")
            open_id = await s.scalar(select(OnsiteRecord.id).where(
                OnsiteRecord.order_id == order.id, OnsiteRecord.signed_at.is_(None)))
            if open_id is not None:
                raise Conflict("该工单已有未签字的上门记录 (an unsigned on-site record exists)",
                               code="onsite_exists", onsite_id=open_id)
            started = body.started_at or utc(order.service_started_at) or now
            started_at = to_minute(started, tz)
            check_times(started_at, None, now)
            category = await _category(s, order)
            fee_items = []
            if order.service_type != "远程支持":
                visit = await s.scalar(select(PriceItem).where(
                    PriceItem.category == category, PriceItem.kind == VISIT_FEE, PriceItem.active.is_(True))
                    .order_by(PriceItem.id).limit(1))
                if visit is not None:
                    fee_items.append(_fee_item(visit, 1))
            number = await next_number(s, "OS", now, tz)
            record = OnsiteRecord(
                number=number, order_id=order.id, engineer_id=order.engineer_id, started_at=started_at,
                product_model=order.product_model, serial=order.serial, fault_observed=body.fault_observed,
                in_warranty=is_free(order.warranty), category=category, fee_items=fee_items,
                created_at=now, version=0)
            s.add(record)
            return await self._finish(s, user, record, order, now, action="onsite.create",
                                      detail={"in_warranty": record.in_warranty},
                                      note=f"上门服务记录 {number} 创建")

    async def update(self, user: CurrentUser, onsite_id: int, body: schemas.OnsiteUpdate,
                     now: dt.datetime) -> dict[str, Any]:
        """Change the fields sent; 409 if ``version`` is stale or the record is signed. The
        first end time recorded also becomes the order's ``service_finished_at`` (SLA sign-off)."""
        sent = body.model_fields_set - {"version"}
        tz = self.settings.tz
        async with self.sessionmaker.begin() as s:
            record, order = await self._writable(s, user, onsite_id)
            _check_version(record, body.version)
            for f in PLAIN_FIELDS:
                if f in sent:
                    if getattr(body, f) is None:
                        raise ValidationFailed(f, "must not be null")
                    setattr(record, f, getattr(body, f))
            if "started_at" in sent:
                record.started_at = to_minute(body.started_at, tz) if body.started_at else None
            if "ended_at" in sent:
                record.ended_at = to_minute(body.ended_at, tz) if body.ended_at else None
            check_times(utc(record.started_at), utc(record.ended_at), now)
            if record.ended_at is not None and order.service_finished_at is None:
                # The work is done: the SLA's 10 minutes to the signature run from here.
                order.service_finished_at = record.ended_at
            if "visit_item_id" in sent or "labour_items" in sent:
                record.fee_items = await self._fee_items(s, record, body, sent)
            return await self._finish(s, user, record, order, now, action="onsite.update",
                                      detail={"fields": sorted(sent)}, note=f"{record.number} 修改")

    async def _fee_items(self, s: AsyncSession, record: OnsiteRecord, body: schemas.OnsiteUpdate,
                         sent: set[str]) -> list[dict[str, Any]]:
        """The new fee items: each must be an active item of the record's category and kind."""
        current = list(record.fee_items or [])
        visit = [f for f in current if f["kind"] == VISIT_FEE]
        labour = [f for f in current if f["kind"] == LABOUR]
        if "visit_item_id" in sent:
            visit = []
            if body.visit_item_id is not None:
                item = await _price_item(s, body.visit_item_id, record.category, VISIT_FEE, "visit_item_id")
                visit = [_fee_item(item, 1)]
        if "labour_items" in sent:
            if body.labour_items is None:
                raise ValidationFailed("labour_items", "must not be null (send [] for none)")
            labour = []
            seen: set[int] = set()
            for i, choice in enumerate(body.labour_items):
                field = f"labour_items[{i}].price_item_id"
                if choice.price_item_id in seen:
                    raise ValidationFailed(field, "listed twice (use quantity)")
                seen.add(choice.price_item_id)
                item = await _price_item(s, choice.price_item_id, record.category, LABOUR, field)
                labour.append(_fee_item(item, choice.quantity))
        return visit + labour

    # ---- parts -------------------------------------------------------------------------------

    async def add_part(self, user: CurrentUser, onsite_id: int, body: schemas.PartIssue,
                       now: dt.datetime) -> dict[str, Any]:
        """Issue a part: the line, the stock decrement and its movement in one transaction;
        409 ``insufficient_stock`` and nothing written if the location has too few."""
        async with self.sessionmaker.begin() as s:
            record, order = await self._writable(s, user, onsite_id)
            part = await s.get(Part, body.part_id)
            if part is None or not part.active:
                raise ValidationFailed("part_id", "no such part in the catalogue")
            if part.category and record.category and part.category != record.category:
                raise ValidationFailed("part_id", f"part is for {part.category}, not {record.category}")
            loc = await s.get(StockLocation, body.location_id)
            if loc is None:
                raise ValidationFailed("location_id", "no such stock location")
            if not may_issue_from(loc.kind, loc.warehouse_type, loc.engineer_id, order.engineer_id):
                raise ValidationFailed("location_id", "parts are issued from a 配件库 or the order engineer's van")
            free = record.in_warranty
            line = OnsitePartLine(onsite_id=record.id, part_id=part.id, location_id=loc.id, quantity=body.quantity,
                                  unit_price_fen=part.unit_price_fen, free=free,
                                  total_fen=line_total(part.unit_price_fen, body.quantity, free=free),
                                  created_at=now)
            s.add(line)
            await s.flush()
            ledger = StockLedger(s, now=now, user_id=user.id)
            await ledger.take(part_id=part.id, location_id=loc.id, quantity=body.quantity, reason="issue",
                              line_id=line.id, note=record.number)
            out = await self._finish(s, user, record, order, now, action="onsite.part.add",
                                     detail={"line_id": line.id, "part_id": part.id, "location_id": loc.id,
                                             "quantity": body.quantity},
                                     note=f"{record.number} 领用配件 {part.code} ×{body.quantity}")
        await self.alerts.push(ledger.crossed)
        return out

    async def _line(self, s: AsyncSession, record: OnsiteRecord, line_id: int) -> OnsitePartLine:
        line = await s.get(OnsitePartLine, line_id, with_for_update=True)
        if line is None or line.onsite_id != record.id:
            raise NotFound("配件行不存在 (no such part line)", id=line_id)
        return line

    async def update_part(self, user: CurrentUser, onsite_id: int, line_id: int,
                          body: schemas.PartLineUpdate, now: dt.datetime) -> dict[str, Any]:
        """Change a line's quantity; the stock moves by the difference (409 if more is needed
        than the location has)."""
        async with self.sessionmaker.begin() as s:
            record, order = await self._writable(s, user, onsite_id)
            line = await self._line(s, record, line_id)
            delta = body.quantity - line.quantity
            ledger = StockLedger(s, now=now, user_id=user.id)
            if delta > 0:
                await ledger.take(part_id=line.part_id, location_id=line.location_id, quantity=delta,
                                  reason="issue", line_id=line.id, note=record.number)
            elif delta < 0:
                await ledger.give(part_id=line.part_id, location_id=line.location_id, quantity=-delta,
                                  reason="return", line_id=line.id, note=record.number)
            before = line.quantity
            line.quantity = body.quantity
            line.total_fen = line_total(line.unit_price_fen, line.quantity, free=line.free)
            out = await self._finish(s, user, record, order, now, action="onsite.part.update",
                                     detail={"line_id": line.id, "from": before, "to": line.quantity},
                                     note=f"{record.number} 配件数量 {before}→{line.quantity}")
        await self.alerts.push(ledger.crossed)
        return out

    async def remove_part(self, user: CurrentUser, onsite_id: int, line_id: int,
                          now: dt.datetime) -> dict[str, Any]:
        """Remove a line and put its quantity back where it came from."""
        async with self.sessionmaker.begin() as s:
            record, order = await self._writable(s, user, onsite_id)
            line = await self._line(s, record, line_id)
            ledger = StockLedger(s, now=now, user_id=user.id)
            # The movement outlives the line: it names the record and line in its note.
            await ledger.give(part_id=line.part_id, location_id=line.location_id, quantity=line.quantity,
                              reason="return", note=f"{record.number} line {line.id}")
            detail = {"line_id": line.id, "part_id": line.part_id, "quantity": line.quantity}
            await s.delete(line)
            out = await self._finish(s, user, record, order, now, action="onsite.part.remove", detail=detail,
                                     note=f"{record.number} 退回配件 ×{detail['quantity']}")
        await self.alerts.push(ledger.crossed)
        return out

    # ---- sign-off ------------------------------------------------------------------------------

    async def sign(self, user: CurrentUser, onsite_id: int, body: schemas.SignOff,
                   now: dt.datetime) -> dict[str, Any]:
        """The customer confirms and signs, the engineer signs: ``signed_at`` on the record and
        on the work order (and ``service_finished_at`` if the order has none: the end of the
        visit, from which the SLA's 10 minutes to sign-off run). The record is locked after."""
        customer_sig = check_signature(body.customer_signature, "customer_signature")
        engineer_sig = check_signature(body.engineer_signature, "engineer_signature")
        async with self.sessionmaker.begin() as s:
            record, order = await self._writable(s, user, onsite_id)
            _check_version(record, body.version)
            for field in ("root_cause", "solution"):
                if not getattr(record, field).strip():
                    raise ValidationFailed(field, "required before sign-off")
            if record.started_at is None:
                raise ValidationFailed("started_at", "required before sign-off")
            ended = (to_minute(body.ended_at, self.settings.tz) if body.ended_at
                     else utc(record.ended_at) or to_minute(now, self.settings.tz))
            check_times(utc(record.started_at), ended, now)
            record.ended_at = ended
            record.customer_confirmed = True
            record.customer_signature = customer_sig
            record.engineer_signature = engineer_sig
            record.signed_at = now
            order.signed_at = now
            if order.service_finished_at is None:
                order.service_finished_at = ended
            order.updated_at = now
            return await self._finish(s, user, record, order, now, action="onsite.sign",
                                      detail={"customer_signature": signature_kind(customer_sig),
                                              "engineer_signature": signature_kind(engineer_sig)},
                                      note=f"{record.number} 客户确认签字")

    async def reopen(self, user: CurrentUser, onsite_id: int, body: schemas.Reopen,
                     now: dt.datetime) -> dict[str, Any]:
        """A supervisor unlocks a signed record (the reason is audited): the signatures and
        confirmation are cleared and must be given again. 409 once the order is closed."""
        async with self.sessionmaker.begin() as s:
            record, order = await self._load(s, user, onsite_id, "onsite.reopen", lock=True)
            if order.status in CLOSED_STATUSES:
                raise Conflict(f"工单已{order.status}，不能重新打开 (the order is closed)",
                               code="order_closed", order_status=order.status)
            if record.signed_at is None:
                raise Conflict("记录未签字，无需重新打开 (not signed)", code="not_signed")
            _check_version(record, body.version)
            record.signed_at = None
            record.customer_confirmed = False
            record.customer_signature = ""
            record.engineer_signature = ""
            order.signed_at = None
            order.updated_at = now
            return await self._finish(s, user, record, order, now, action="onsite.reopen", detail={},
                                      note=f"{record.number} 主管重新打开", reason=body.reason)


def _check_in_service(order: WorkOrder) -> None:
    if order.status not in WRITABLE_STATUSES:
        raise Conflict(f"工单状态为{order.status}，上门记录只能在服务中或待件时填写 "
                       "(the order must be 服务中 or 待件)", code="order_not_in_service", order_status=order.status)


def _check_version(record: OnsiteRecord, version: int) -> None:
    if version != record.version:
        raise Conflict("记录已被他人修改，请刷新后重试 (stale version)", code="stale_version",
                       current_version=record.version)


def _fee_item(item: PriceItem, quantity: int) -> dict[str, Any]:
    return {"price_item_id": item.id, "kind": item.kind, "name": item.name, "amount_fen": item.amount_fen,
            "quantity": quantity}


async def _price_item(s: AsyncSession, item_id: int, category: str, kind: str, field: str) -> PriceItem:
    item = await s.get(PriceItem, item_id)
    if item is None or not item.active:
        raise ValidationFailed(field, "no such active price item")
    if item.kind != kind:
        raise ValidationFailed(field, f"not a {kind} item")
    if item.category != category:
        raise ValidationFailed(field, f"price item is for {item.category}, not {category or '(no category)'}")
    return item


async def _category(s: AsyncSession, order: WorkOrder) -> str:
    """The product category whose price list applies: the appliance's, else the intake's."""
    if order.appliance_id is not None:
        category = await s.scalar(select(Appliance.category).where(Appliance.id == order.appliance_id))
        if category:
            return category
    if order.intake_id is not None:
        return await s.scalar(select(IntakeRecord.category).where(IntakeRecord.id == order.intake_id)) or ""
    return ""


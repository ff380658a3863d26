"""The audited reveal of personal data, and the audit log for admins.

``POST /api/reveal`` is the only endpoint that answers an unmasked name, phone number or address.
It takes a reason (4–200 characters), checks the role (``access.ACTIONS["personal.reveal"]``)
and the object (engineers: only orders assigned to them, and what belongs to those orders — the
order's customer, intake and appointments; anything else is a 404, as if it did not exist), and
writes an audit entry (who, entity, id, field, when, why — never the value) in the same
transaction as the read. Numbers typed into the reason are masked before it is stored.

``GET /api/audit`` lists the audit log, newest first, for admins, filtered by user, entity,
entity id and action.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import access
from callcenter.appkeys import SESSIONMAKER, VAULT
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.crypto import PhoneVault
from callcenter.db.models import (
    Address, Appointment, AuditEntry, Customer, CustomerPhone, IntakeRecord, User, WorkOrder,
)
from callcenter.errors import NotFound
from callcenter.privacy import full_address, mask_numbers_in_text
from callcenter.web.api import ApiModel, endpoint, json_response

log = logging.getLogger("callcenter.privacy")
routes = web.RouteTableDef()

Entity = Literal["customer", "order", "intake", "appointment"]
Field_ = Literal["name", "phone", "address"]
# The entity as the audit log names it.
AUDIT_ENTITY = {"customer": "customer", "order": "work_order", "intake": "intake",
                "appointment": "appointment"}
AUDIT_PAGE_SIZE = 50


class RevealIn(ApiModel):
    entity: Entity
    id: int = Field(ge=1, le=2**63 - 1)
    field: Field_
    reason: str = Field(min_length=4, max_length=200, description="why the full value is needed")


class RevealOut(BaseModel):
    entity: Entity
    id: int
    field: Field_
    # The unmasked value; null when the record has none (no phone, no address).
    value: str | None
    # For a customer's phone: all of its numbers (``value`` is the first).
    values: list[str] | None = None


class AuditQuery(ApiModel):
    user_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    entity: str | None = Field(default=None, max_length=32)
    entity_id: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=32)
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=AUDIT_PAGE_SIZE, ge=1, le=200)


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    user_id: int | None
    username: str | None
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]
    reason: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    page: int
    page_size: int
    total: int


# ---------------------------------------------------------------------------------------------
# What belongs to what (and who may see it)


async def _visible_order(session: AsyncSession, user: CurrentUser, order_id: int) -> WorkOrder:
    order = await session.get(WorkOrder, order_id)
    return access.check_order(user, "personal.reveal", order, order_id)  # type: ignore[return-value]


async def _engineer_has(session: AsyncSession, user: CurrentUser, condition: Any) -> bool:
    """Whether an order assigned to this engineer matches ``condition``."""
    return bool(await session.scalar(select(exists().where(
        WorkOrder.engineer_id == user.id, condition))))


async def _first_address(session: AsyncSession, customer_id: int) -> str | None:
    a = (await session.execute(select(Address).where(Address.customer_id == customer_id)
                               .order_by(Address.id).limit(1))).scalar()
    return None if a is None else full_address(a.province, a.city, a.district, a.detail) or None


async def _phones(session: AsyncSession, vault: PhoneVault, customer_id: int) -> list[str]:
    tokens = (await session.execute(select(CustomerPhone.number_enc)
                                    .where(CustomerPhone.customer_id == customer_id)
                                    .order_by(CustomerPhone.id))).scalars().all()
    return [vault.decrypt(t) for t in tokens if t]


async def _customer_value(session: AsyncSession, vault: PhoneVault, customer_id: int,
                          field: str) -> tuple[str | None, list[str] | None]:
    if field == "name":
        return await session.scalar(select(Customer.name).where(Customer.id == customer_id)), None
    if field == "address":
        return await _first_address(session, customer_id), None
    phones = await _phones(session, vault, customer_id)
    return (phones[0] if phones else None), phones


async def _order_value(session: AsyncSession, vault: PhoneVault, order: WorkOrder,
                       field: str) -> tuple[str | None, list[str] | None]:
    """An order's contact: its service address, and the number given on its intake (else the
    customer's numbers)."""
    if field == "address" and order.address_id is not None:
        a = await session.get(Address, order.address_id)
        if a is not None:
            return full_address(a.province, a.city, a.district, a.detail) or None, None
    if field == "phone" and order.intake_id is not None:
        token = await session.scalar(select(IntakeRecord.contact_phone_enc)
                                     .where(IntakeRecord.id == order.intake_id))
        if token:
            return vault.decrypt(token), None
    return await _customer_value(session, vault, order.customer_id, field)


async def _reveal(session: AsyncSession, vault: PhoneVault, user: CurrentUser,
                  body: RevealIn) -> tuple[str | None, list[str] | None]:
    """The value, after the object check (404 for what is absent or not this user's to see)."""
    engineer = user.role == "engineer"
    if body.entity == "order":
        order = await _visible_order(session, user, body.id)
        return await _order_value(session, vault, order, body.field)
    if body.entity == "appointment":
        order_id = await session.scalar(select(Appointment.order_id).where(Appointment.id == body.id))
        if order_id is None:
            raise NotFound("预约不存在 (no such appointment)", id=body.id)
        try:
            order = await _visible_order(session, user, order_id)
        except NotFound:
            raise NotFound("预约不存在 (no such appointment)", id=body.id) from None
        return await _order_value(session, vault, order, body.field)
    if body.entity == "intake":
        intake = await session.get(IntakeRecord, body.id)
        if intake is None or (engineer and not await _engineer_has(
                session, user, WorkOrder.intake_id == intake.id)):
            raise NotFound("受理记录不存在 (no such intake record)", id=body.id)
        if body.field == "phone" and intake.contact_phone_enc:
            return vault.decrypt(intake.contact_phone_enc), None
        return await _customer_value(session, vault, intake.customer_id, body.field)
    # customer
    found = await session.scalar(select(Customer.id).where(Customer.id == body.id))
    if found is None or (engineer and not await _engineer_has(
            session, user, WorkOrder.customer_id == body.id)):
        raise NotFound("客户不存在 (no such customer)", id=body.id)
    return await _customer_value(session, vault, body.id, body.field)


@routes.post("/api/reveal")
@endpoint("查看完整信息 Reveal a name, phone number or address (audited)",
          roles=access.ACTIONS["personal.reveal"], body=RevealIn, response=RevealOut, tag="privacy",
          description="The unmasked value, with a reason; every reveal is written to the audit "
                      "log (who, what, when, why — never the value). Engineers: only for orders "
                      "assigned to them and that order's customer, intake and appointments.")
async def reveal(request: web.Request, user: CurrentUser, body: RevealIn) -> web.Response:
    now = dt.datetime.now(dt.UTC)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        value, values = await _reveal(session, request.app[VAULT], user, body)
        audit(session, user_id=user.id, action="reveal", entity=AUDIT_ENTITY[body.entity],
              entity_id=body.id, now=now, detail={"field": body.field},
              reason=mask_numbers_in_text(body.reason))
    log.info("reveal: user %s, %s %s, field %s", user.id, body.entity, body.id, body.field)
    return json_response(RevealOut(entity=body.entity, id=body.id, field=body.field, value=value,
                                   values=values if body.field == "phone" and body.entity == "customer"
                                   else None))


@routes.get("/api/audit")
@endpoint("审计日志 The audit log (admins)", roles=access.ACTIONS["audit.read"], query=AuditQuery,
          response=AuditPage, tag="privacy",
          description="Every change and every reveal, newest first. ``entity`` as stored: "
                      "customer, work_order, intake, appointment, onsite, …")
async def audit_log(request: web.Request, user: CurrentUser, query: AuditQuery) -> web.Response:
    conditions = []
    if query.user_id is not None:
        conditions.append(AuditEntry.user_id == query.user_id)
    if query.entity:
        conditions.append(AuditEntry.entity == query.entity)
    if query.entity_id:
        conditions.append(AuditEntry.entity_id == query.entity_id)
    if query.action:
        conditions.append(AuditEntry.action == query.action)
    async with request.app[SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
        rows = (await session.execute(
            select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
            .where(*conditions).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .offset((query.page - 1) * query.page_size).limit(query.page_size))).all()
    entries = [AuditEntryOut(
        id=e.id, at=e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.UTC), user_id=e.user_id,
        username=username, action=e.action, entity=e.entity, entity_id=e.entity_id,
        detail=e.detail or {}, reason=mask_numbers_in_text(e.reason or "")) for e, username in rows]
    return json_response(AuditPage(entries=entries, page=query.page, page_size=query.page_size,
                                   total=total or 0))

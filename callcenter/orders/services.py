"""OrderService: intake records (SA-CR-001), work orders (SA-WO-002) and their life.

One transaction per call: a request either stores everything (record, number, timeline line,
audit entry) or nothing. Numbers are taken right before the insert (``numbering``). Every
change of an order goes through the state machine (``states.check_transition``) and the
optimistic-locking update (``store.apply``). Appointments live in ``appointments.py``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import aliased
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.access import require
from callcenter.audit import audit, audit_entry
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.crypto import PhoneVault, Sealed
from callcenter.customers.phones import normalise
from callcenter.customers.warranty import (
    CLAIM, effective_months, warranty_kind, warranty_status,
)
from callcenter.db.models import (
    Address, Appliance, Customer, CustomerPhone, IntakeRecord, OrderEvent, ProductCategory,
    User, WorkOrder,
)
from callcenter.db.engine import without_transaction
from callcenter.db.oversight import AuditEntry
from callcenter.dispatch.timing import auto_dispatch_due
from callcenter.errors import Conflict, ValidationFailed
from callcenter.notify.outbox import Outbox
from callcenter.notify.visits import REMINDER as REMINDER_KIND
from callcenter.orders import states
from callcenter.orders.creation import TOKENS, write_created
from callcenter.orders.schemas import IntakeIn, NewApplianceIn, OrderFromIntakeIn, OrderIn
from callcenter.orders.views import OrderRecords
from callcenter.orders.store import (
    add_event, apply, check_version, facts_for, load_order, milestones, new_event,
)
from callcenter.settings import Settings

log = logging.getLogger(__name__)

# Request type (SA-CR-001) → the service type its work order gets unless told otherwise.
DEFAULT_SERVICE_TYPE = {"维修": states.ONSITE_REPAIR, "安装": states.INSTALL, "退换货": states.RETURN}
# Intake channel → work-order source.
SOURCE = {"电话": "hotline", "APP": "app", "电商": "ecommerce", "公众号": "wechat"}


@dataclass(frozen=True, slots=True)
class Created:
    """What :meth:`OrderService.create_intake_records` wrote, fully loaded (the intake and order
    were inserted through Core: attribute holders outside the session)."""

    intake: IntakeRecord
    customer: Customer
    agent: User | None
    order: WorkOrder | None


class OrderService:
    """Owns writes to intake records and work orders."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                 vault: PhoneVault | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self._vault = vault

    @property
    def vault(self) -> PhoneVault:
        if self._vault is None:
            self._vault = self.settings.phone_vault()
        return self._vault

    def today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.settings.tz).date()

    # --- intake and order creation ----------------------------------------------------------

    async def create_intake(self, body: IntakeIn, actor: CurrentUser, *,
                            now: dt.datetime | None = None) -> tuple[int, int | None]:
        """Store SA-CR-001 (and the work order when ``body.create_order``); (intake id, order id).
        See :meth:`create_intake_records`."""
        created = await self.create_intake_records(body, actor, now=now)
        return created.intake.id, created.order.id if created.order is not None else None

    async def create_intake_records(self, body: IntakeIn, actor: CurrentUser, *,
                                    now: dt.datetime | None = None) -> Created:
        """Store SA-CR-001 (and the work order when ``body.create_order``); what was written,
        for the answer (no read-back after the commit).

        Raises ValidationFailed (422 naming the field: unknown customer, a phone or appliance
        that is not the customer's, …), Forbidden (403). Cancelled: rolled back, nothing stored.

        Everything is read and checked first; the numbers (whose counter rows stay locked until
        the commit, so concurrent savers queue on them) are taken last, right before the
        inserts and the commit.
        """
        require(actor, "intake.create")
        if body.create_order is not None:
            require(actor, "order.create")
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            if body.new_appliance is None:
                # Reads, then one atomic statement writes everything (``creation``): no
                # transaction needed, so no BEGIN and COMMIT round trips. (A new appliance is
                # written first, so that save keeps its transaction.)
                await without_transaction(s)
            loaded = await self._prefetch_intake(s, body, actor)
            customer = await s.get(Customer, body.customer_id)
            if customer is None:
                raise ValidationFailed("customer_id", "客户不存在 (no such customer)")
            contact = await self._contact(s, body)
            appliance = await self._appliance(s, body, now)
            w = warranty_status(appliance.purchase_date, appliance.warranty_months, self.today(now))
            order_fields = None
            if body.create_order is not None:
                # Checked before any number is taken: a refused order leaves no intake behind.
                order_fields = await self._order_fields(
                    s, customer.id, body.request_type, body.create_order, "create_order.",
                    addresses=sorted({a.id for a in (row[-1] for row in loaded) if isinstance(a, Address)}))
            agent = await s.get(User, actor.id)  # for the answer (staff number, masked mobile)
            intake = IntakeRecord(
                created_at=now,
                channel=body.channel, customer_id=customer.id, contact_phone_index=contact.index,
                contact_phone_enc=contact.enc, contact_phone_masked=contact.masked,
                appliance_id=appliance.id, category=appliance.category,
                product_model=appliance.model, serial=appliance.serial,
                purchase_date=appliance.purchase_date, warranty=warranty_kind(w, body.claim),
                request_type=body.request_type, problem=body.problem, urgency=body.urgency,
                mood=body.mood, agent_id=actor.id, remarks=body.remarks, read_back=True,
                call_linkedid=body.linkedid)
            order = None
            if body.create_order is not None and order_fields is not None:
                order = self._new_order(intake, body.create_order, order_fields, appliance, actor, now)
            # The numbers are taken by the write itself, as late as possible (``creation``).
            intake.number = TOKENS["CR"]
            entries = [audit_entry(user_id=actor.id, action="create", entity="intake", now=now,
                                   detail={"number": intake.number, "customer_id": customer.id,
                                           "linkedid": body.linkedid})]
            event = None
            if order is not None:
                order.number = TOKENS["WO"]
                event, entry = self._order_records(intake, order, actor, now)
                entries.append(entry)
            # The rows, and the call (now this customer's: the history shows it).
            await write_created(s, intake, order, event, entries, now=now, tz=self.settings.tz,
                                linkedid=body.linkedid)
        log.info("intake %s created by user %s (order %s)", intake.id, actor.id,
                 order.id if order is not None else None)
        return Created(intake, customer, agent, order)

    async def create_order(self, body: OrderIn, actor: CurrentUser, *,
                           now: dt.datetime | None = None) -> int:
        """SA-WO-002 from an existing intake; the order id. 409 when the intake has one already."""
        return (await self.create_order_records(body, actor, now=now)).order.id

    async def create_order_records(self, body: OrderIn, actor: CurrentUser, *,
                                   now: dt.datetime | None = None) -> OrderRecords:
        """As :meth:`create_order`; what the order page shows of the new order, as written (the
        answer needs no read-back after the commit)."""
        require(actor, "order.create")
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            # One round trip puts the intake, its customer, appliance, agent, this user and the
            # address named (or, with none named, the customer's addresses) in the session. On
            # PostgreSQL it locks the intake row: of two agents making its order at once, the
            # second waits, and its check below (a new statement, so it sees the first one's
            # committed order) refuses it.
            agent, me = aliased(User), aliased(User)
            stmt = (select(IntakeRecord, Customer, Appliance, agent, me, Address)
                    .join(Customer, Customer.id == IntakeRecord.customer_id)
                    .outerjoin(Appliance, Appliance.id == IntakeRecord.appliance_id)
                    .outerjoin(agent, agent.id == IntakeRecord.agent_id)
                    .outerjoin(me, me.id == actor.id)
                    .outerjoin(Address, Address.id == body.address_id if body.address_id is not None
                               else Address.customer_id == Customer.id)
                    .where(IntakeRecord.id == body.intake_id))
            if s.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(of=IntakeRecord)
            # (Held in ``loaded``: the session's identity map keeps only referenced objects.)
            loaded = (await s.execute(stmt)).all()
            intake = await s.get(IntakeRecord, body.intake_id)
            if intake is None:
                raise ValidationFailed("intake_id", "受理记录不存在 (no such intake record)")
            taken = (await s.execute(select(WorkOrder.number).where(WorkOrder.intake_id == intake.id)
                                     .limit(1))).scalar()
            if taken is not None:
                raise Conflict(f"该受理记录已生成工单 {taken} (this intake already has an order)",
                               code="order_exists", number=taken)
            fields = await self._order_fields(
                s, intake.customer_id, intake.request_type, body, "",
                addresses=sorted({row[5].id for row in loaded if row[5] is not None}))
            appliance = await s.get(Appliance, intake.appliance_id) if intake.appliance_id else None
            customer = await s.get(Customer, intake.customer_id)
            assert customer is not None
            address = await s.get(Address, fields[1]) if fields[1] is not None else None
            users = {u.id: u for u in [await s.get(User, i) for i in {actor.id, intake.agent_id} - {None}]
                     if u is not None}
            order = self._new_order(intake, body, fields, appliance, actor, now)
            order.number, order.intake_id = TOKENS["WO"], intake.id
            event, entry = self._order_records(intake, order, actor, now)
            await write_created(s, None, order, event, [entry], now=now, tz=self.settings.tz)
        log.info("order %s created from intake %s by user %s", order.id, body.intake_id, actor.id)
        # A new order: no appointment, no on-site record, the one timeline line.
        return OrderRecords(order, customer, address, appliance, intake, [], [], [event], users,
                            states.Facts())

    @staticmethod
    async def _prefetch_intake(s: AsyncSession, body: IntakeIn, actor: CurrentUser) -> list[Any]:
        """One round trip puts what the intake names (customer, phone, appliance, address) and
        the agent in the session, so the checks' ``s.get`` below find them without a query each.
        Nothing is decided here: a row that does not match is simply not loaded. The caller holds
        the rows for the transaction (the identity map keeps only referenced objects)."""
        address_id = body.create_order.address_id if body.create_order is not None else None
        stmt = _prefetch_statement(body.phone_id is not None, body.appliance_id is not None,
                                   "none" if body.create_order is None else "named" if address_id is not None
                                   else "customer's")
        params = {"customer_id": body.customer_id, "actor_id": actor.id, "phone_id": body.phone_id,
                  "appliance_id": body.appliance_id, "address_id": address_id}
        return list((await s.execute(stmt, params)).all())

    async def _contact(self, s: AsyncSession, body: IntakeIn) -> Sealed:
        if body.phone_id is not None:
            phone = await s.get(CustomerPhone, body.phone_id)
            if phone is None or phone.customer_id != body.customer_id:
                raise ValidationFailed("phone_id", "不是该客户的号码 (not one of the customer's numbers)")
            return Sealed(phone.number_index, phone.number_enc, phone.masked)
        if body.contact_phone is None:
            raise ValidationFailed("phone_id", "须选择客户号码或填写联系电话 (choose a number or give contact_phone)")
        found = normalise(body.contact_phone, self.settings.local_area_code)
        if found is None:
            raise ValidationFailed("contact_phone", "不是有效的电话号码 (not a phone number)")
        return self.vault.seal(found.number)

    async def _appliance(self, s: AsyncSession, body: IntakeIn, now: dt.datetime) -> Appliance:
        if body.appliance_id is not None:
            if body.new_appliance is not None:
                raise ValidationFailed("new_appliance", "与 appliance_id 二选一 (give one of the two)")
            appliance = await s.get(Appliance, body.appliance_id)
            if appliance is None or appliance.customer_id != body.customer_id:
                raise ValidationFailed("appliance_id", "不是该客户的产品 (not one of the customer's appliances)")
            return appliance
        new = body.new_appliance
        if new is None:
            raise ValidationFailed("appliance_id", "须选择客户的产品或新增产品 (choose an appliance or add new_appliance)")
        return await self._add_appliance(s, body.customer_id, new, now)

    async def _add_appliance(self, s: AsyncSession, customer_id: int, new: NewApplianceIn,
                             now: dt.datetime) -> Appliance:
        if new.purchase_date is not None and new.purchase_date > self.today(now):
            raise ValidationFailed("new_appliance.purchase_date", "不能晚于今天 (in the future)")
        category_months = (await s.execute(select(ProductCategory.warranty_months)
                                           .where(ProductCategory.name == new.category))).scalar()
        appliance = Appliance(customer_id=customer_id, category=new.category, brand=new.brand,
                              model=new.model, serial=new.serial, purchase_date=new.purchase_date,
                              warranty_months=effective_months(new.warranty_months, category_months))
        s.add(appliance)
        await s.flush()
        return appliance

    async def _order_fields(self, s: AsyncSession, customer_id: int, request_type: str,
                            spec: OrderFromIntakeIn, prefix: str, *,
                            addresses: list[int] | None = None) -> tuple[str, int | None]:
        """(service type, address id) for a new order, checked against the customer;
        ``addresses``: the customer's address ids when the caller has them already."""
        service_type = spec.service_type or DEFAULT_SERVICE_TYPE.get(request_type)
        if service_type is None:
            raise ValidationFailed(prefix + "service_type",
                                   f"受理类型为{request_type}时须选择服务类型 (choose a service type)")
        if spec.address_id is not None:
            address = await s.get(Address, spec.address_id)
            if address is None or address.customer_id != customer_id:
                raise ValidationFailed(prefix + "address_id", "不是该客户的地址 (not one of the customer's addresses)")
            return service_type, spec.address_id
        if service_type in states.ONSITE_KINDS:
            ids = addresses if addresses is not None else (await s.execute(
                select(Address.id).where(Address.customer_id == customer_id).limit(2))).scalars().all()
            if len(ids) != 1:
                raise ValidationFailed(prefix + "address_id", "上门服务须选择服务地址 (choose the service address)")
            return service_type, ids[0]
        return service_type, None

    def _new_order(self, intake: IntakeRecord, spec: OrderFromIntakeIn, fields: tuple[str, int | None],
                   appliance: Appliance | None, actor: CurrentUser, now: dt.datetime) -> WorkOrder:
        """The work order of ``intake``, not yet numbered nor added."""
        service_type, address_id = fields
        warranty = intake.warranty
        if appliance is not None and warranty != CLAIM:
            warranty = warranty_kind(warranty_status(appliance.purchase_date,
                                                     appliance.warranty_months, self.today(now)))
        return WorkOrder(
            customer_id=intake.customer_id,
            appliance_id=intake.appliance_id, address_id=address_id,
            call_linkedid=intake.call_linkedid, source=SOURCE.get(intake.channel, "hotline"),
            product_model=intake.product_model, serial=intake.serial, warranty=warranty,
            service_type=service_type, status=states.initial_status(service_type),
            urgency=spec.urgency or intake.urgency, problem=spec.problem or intake.problem,
            created_by=actor.id, created_at=now, updated_at=now, version=1,
            auto_dispatch_due_at=auto_dispatch_due(service_type, states.initial_status(service_type), now))

    @staticmethod
    def _order_records(intake: IntakeRecord, order: WorkOrder, actor: CurrentUser,
                       now: dt.datetime) -> tuple[OrderEvent, AuditEntry]:
        """The new order's timeline line and audit entry (their order id is filled in when the
        order has one)."""
        event = new_event(0, at=now, user_id=actor.id, action="created", to=order.status,
                          note=f"由受理记录 {intake.number} 创建")
        entry = audit_entry(user_id=actor.id, action="create", entity="work_order", now=now,
                            detail={"number": order.number, "intake": intake.number,
                                    "service_type": order.service_type, "status": order.status})
        return event, entry

    # --- the order's life -------------------------------------------------------------------

    async def transition(self, order_id: int, to: str, actor: CurrentUser, *, version: int,
                         note: str = "", reason: str = "", now: dt.datetime | None = None) -> None:
        """Move the order to ``to`` (see ``states``): 409 illegal/unmet/stale, 403 role, 422
        reason/note missing, 404 not found or not the engineer's."""
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "order.read")
            version = check_version(order, version)
            rule = states.find_rule(order, to)
            if rule.assigns:
                raise Conflict(f"{rule.label}请使用派单操作 (use POST /api/orders/{{id}}/dispatch)",
                               code="use_assign", frm=order.status, to=to)
            if order.status == states.DISPATCHED and to == states.PENDING:
                # A refusal is kept with its reason and re-matched (callcenter.dispatch.engine).
                raise Conflict("拒单/退回请使用拒单操作 (use POST /api/orders/{id}/refuse)",
                               code="use_refuse", frm=order.status, to=to)
            facts = await facts_for(s, order, reason=reason, note=note)
            decision = states.check_transition(order, to, actor_of(actor), facts, now)
            values = decision.values(milestones(order))
            # The dispatch queues follow the status: due for automatic dispatch only while
            # 待处理 (a remote-support order converted to 上门维修 becomes due now), waiting for
            # the engineer's answer only while 已派单.
            if to != states.PENDING:
                values["auto_dispatch_due_at"] = None
            elif order.status != states.PENDING:
                values["auto_dispatch_due_at"] = auto_dispatch_due(decision.service_type or order.service_type, to, now)
            if to != states.DISPATCHED:
                values["accept_due_at"] = None
            if to == states.CANCELLED:
                values["cancel_reason"] = reason
                # The visit's reminder must not go out for a cancelled order.
                await Outbox.cancel(s, order_id=order.id, kinds=(REMINDER_KIND,))
            frm = order.status
            await apply(s, order, version, values, now)
            text = "；".join(t for t in (reason, note) if t)
            action = "converted" if decision.service_type else "transition"
            add_event(s, order.id, at=now, user_id=actor.id, action=action, frm=frm, to=to, note=text)
            audit(s, user_id=actor.id, action="transition", entity="work_order", entity_id=order.id,
                  now=now, reason=reason, detail={"from": frm, "to": to, "version": version + 1,
                                                  **({"service_type": decision.service_type}
                                                     if decision.service_type else {})})

    async def accept(self, order_id: int, actor: CurrentUser, *, version: int | None = None,
                     note: str = "", now: dt.datetime | None = None) -> None:
        """The engineer takes the dispatched order (``accepted_at``); 409 when not dispatched
        to them or already accepted."""
        await self._step(order_id, actor, version, note, now, "accepted_at", "accepted")

    async def contacted(self, order_id: int, actor: CurrentUser, *, version: int | None = None,
                        note: str = "", now: dt.datetime | None = None) -> None:
        """The engineer called the customer (``contacted_at``, first call only; every call is a
        timeline line). 409 before the order was accepted."""
        await self._step(order_id, actor, version, note, now, "contacted_at", "contacted")

    async def _step(self, order_id: int, actor: CurrentUser, version: int | None, note: str,
                    now: dt.datetime | None, column: str, action: str) -> None:
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "order.accept")
            version = check_version(order, version)
            if order.engineer_id is None or order.service_type == states.REMOTE:
                raise Conflict("工单尚未派给工程师 (the order is not dispatched to an engineer)",
                               code="illegal_transition", frm=order.status, step=action)
            if column == "accepted_at":
                if order.accepted_at is not None:
                    raise Conflict("已接单 (already accepted)", code="already_done", step=action)
                if order.status not in (states.DISPATCHED, states.WAITING):
                    raise Conflict(f"{order.status}状态不能接单 (cannot accept an order that is {order.status})",
                                   code="illegal_transition", frm=order.status, step=action)
            elif order.accepted_at is None:
                raise Conflict("请先接单 (accept the order first)", code="requirement_missing",
                               frm=order.status, requires="accepted", step=action)
            elif not states.is_open(order.status):
                raise Conflict(f"工单已{order.status} (the order is {order.status})",
                               code="illegal_transition", frm=order.status, step=action)
            values = {column: now} if getattr(order, column) is None else {}
            if column == "accepted_at":
                values["accept_due_at"] = None  # answered: the 15-minute clock stops
            await apply(s, order, version, values, now)
            add_event(s, order.id, at=now, user_id=actor.id, action=action, note=note)
            audit(s, user_id=actor.id, action=action, entity="work_order", entity_id=order.id,
                  now=now, detail={"status": order.status})


@functools.lru_cache(maxsize=16)
def _prefetch_statement(phone: bool, appliance: bool, address: str) -> Select:
    """:meth:`OrderService._prefetch_intake`'s query, built once per shape (building it per
    request cost more CPU than running it)."""
    entities: list[Any] = [Customer, User]
    stmt = select(Customer).join(User, User.id == bindparam("actor_id"))
    if phone:
        entities.append(CustomerPhone)
        stmt = stmt.outerjoin(CustomerPhone, CustomerPhone.id == bindparam("phone_id"))
    if appliance:
        entities.append(Appliance)
        stmt = stmt.outerjoin(Appliance, Appliance.id == bindparam("appliance_id"))
    if address != "none":
        entities.append(Address)
        stmt = stmt.outerjoin(Address, Address.id == bindparam("address_id") if address == "named"
                              else Address.customer_id == Customer.id)
    return stmt.with_only_columns(*entities).where(Customer.id == bindparam("customer_id"))


def actor_of(user: CurrentUser) -> states.Actor:
    return states.Actor(user.id, user.role)

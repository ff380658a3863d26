"""OrderService: intake records (SA-CR-001), work orders (SA-WO-002) and their life.

One transaction per call: a request either stores everything (record, number, timeline line,
audit entry) or nothing. Numbers are taken right before the insert (``numbering``). Every
change of an order goes through the state machine (``states.check_transition``) and the
optimistic-locking update (``store.apply``). Appointments live in ``appointments.py``.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.access import require
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.crypto import PhoneVault, Sealed
from callcenter.customers.phones import normalise
from callcenter.customers.warranty import (
    CLAIM, effective_months, warranty_kind, warranty_status,
)
from callcenter.db.models import (
    Address, Appliance, Call, Customer, CustomerPhone, IntakeRecord, ProductCategory, User,
    WorkOrder,
)
from callcenter.errors import Conflict, ValidationFailed
from callcenter.orders import states
from callcenter.orders.numbering import next_number
from callcenter.orders.schemas import IntakeIn, NewApplianceIn, OrderFromIntakeIn, OrderIn
from callcenter.orders.store import (
    add_event, apply, check_version, facts_for, load_order, milestones, supersede_open,
)
from callcenter.settings import Settings

log = logging.getLogger(__name__)

# Request type (SA-CR-001) → the service type its work order gets unless told otherwise.
DEFAULT_SERVICE_TYPE = {"维修": states.ONSITE_REPAIR, "安装": states.INSTALL, "退换货": states.RETURN}
# Intake channel → work-order source.
SOURCE = {"电话": "hotline", "APP": "app", "电商": "ecommerce", "公众号": "wechat"}


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

        Raises ValidationFailed (422 naming the field: unknown customer, a phone or appliance
        that is not the customer's, …), Forbidden (403). Cancelled: rolled back, nothing stored.
        """
        require(actor, "intake.create")
        if body.create_order is not None:
            require(actor, "order.create")
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            customer = await s.get(Customer, body.customer_id)
            if customer is None:
                raise ValidationFailed("customer_id", "客户不存在 (no such customer)")
            contact = await self._contact(s, body)
            appliance = await self._appliance(s, body, now)
            w = warranty_status(appliance.purchase_date, appliance.warranty_months, self.today(now))
            if body.create_order is not None:
                # Checked before any number is taken: a refused order leaves no intake behind.
                await self._order_fields(s, customer.id, body.request_type, body.create_order,
                                         "create_order.")
            intake = IntakeRecord(
                number=await next_number(s, "CR", now, self.settings.tz), created_at=now,
                channel=body.channel, customer_id=customer.id, contact_phone_index=contact.index,
                contact_phone_enc=contact.enc, contact_phone_masked=contact.masked,
                appliance_id=appliance.id, category=appliance.category,
                product_model=appliance.model, serial=appliance.serial,
                purchase_date=appliance.purchase_date, warranty=warranty_kind(w, body.claim),
                request_type=body.request_type, problem=body.problem, urgency=body.urgency,
                mood=body.mood, agent_id=actor.id, remarks=body.remarks, read_back=True,
                call_linkedid=body.linkedid)
            s.add(intake)
            await s.flush()
            audit(s, user_id=actor.id, action="create", entity="intake", entity_id=intake.id,
                  now=now, detail={"number": intake.number, "customer_id": customer.id,
                                   "linkedid": body.linkedid})
            if body.linkedid:
                # The call now belongs to this customer (the history shows it).
                await s.execute(update(Call).where(Call.linkedid == body.linkedid,
                                                   Call.customer_id.is_(None))
                                .values(customer_id=customer.id))
            order_id = None
            if body.create_order is not None:
                order_id = await self._create_order(s, intake, body.create_order, actor, now,
                                                    "create_order.")
        log.info("intake %s created by user %s (order %s)", intake.id, actor.id, order_id)
        return intake.id, order_id

    async def create_order(self, body: OrderIn, actor: CurrentUser, *,
                           now: dt.datetime | None = None) -> int:
        """SA-WO-002 from an existing intake; the order id. 409 when the intake has one already."""
        require(actor, "order.create")
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            intake = await s.get(IntakeRecord, body.intake_id)
            if intake is None:
                raise ValidationFailed("intake_id", "受理记录不存在 (no such intake record)")
            order_id = await self._create_order(s, intake, body, actor, now, "")
        log.info("order %s created from intake %s by user %s", order_id, body.intake_id, actor.id)
        return order_id

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
                            spec: OrderFromIntakeIn, prefix: str) -> tuple[str, int | None]:
        """(service type, address id) for a new order, checked against the customer."""
        service_type = spec.service_type or DEFAULT_SERVICE_TYPE.get(request_type)
        if service_type is None:
            raise ValidationFailed(prefix + "service_type",
                                   f"受理类型为{request_type}时须选择服务类型 (choose a service type)")
        if spec.address_id is not None:
            owner = (await s.execute(select(Address.customer_id)
                                     .where(Address.id == spec.address_id))).scalar()
            if owner != customer_id:
                raise ValidationFailed(prefix + "address_id", "不是该客户的地址 (not one of the customer's addresses)")
            return service_type, spec.address_id
        if service_type in states.ONSITE_KINDS:
            ids = (await s.execute(select(Address.id).where(Address.customer_id == customer_id)
                                   .limit(2))).scalars().all()
            if len(ids) != 1:
                raise ValidationFailed(prefix + "address_id", "上门服务须选择服务地址 (choose the service address)")
            return service_type, ids[0]
        return service_type, None

    async def _create_order(self, s: AsyncSession, intake: IntakeRecord, spec: OrderFromIntakeIn,
                            actor: CurrentUser, now: dt.datetime, prefix: str) -> int:
        taken = (await s.execute(select(WorkOrder.number).where(WorkOrder.intake_id == intake.id)
                                 .limit(1))).scalar()
        if taken is not None:
            raise Conflict(f"该受理记录已生成工单 {taken} (this intake already has an order)",
                           code="order_exists", number=taken)
        service_type, address_id = await self._order_fields(
            s, intake.customer_id, intake.request_type, spec, prefix)
        warranty = intake.warranty
        appliance = await s.get(Appliance, intake.appliance_id) if intake.appliance_id else None
        if appliance is not None and warranty != CLAIM:
            warranty = warranty_kind(warranty_status(appliance.purchase_date,
                                                     appliance.warranty_months, self.today(now)))
        status = states.initial_status(service_type)
        order = WorkOrder(
            number=await next_number(s, "WO", now, self.settings.tz), customer_id=intake.customer_id,
            appliance_id=intake.appliance_id, intake_id=intake.id, address_id=address_id,
            call_linkedid=intake.call_linkedid, source=SOURCE.get(intake.channel, "hotline"),
            product_model=intake.product_model, serial=intake.serial, warranty=warranty,
            service_type=service_type, status=status, urgency=spec.urgency or intake.urgency,
            problem=spec.problem or intake.problem, created_by=actor.id, created_at=now,
            updated_at=now, version=1)
        s.add(order)
        await s.flush()
        add_event(s, order.id, at=now, user_id=actor.id, action="created", to=status,
                  note=f"由受理记录 {intake.number} 创建")
        audit(s, user_id=actor.id, action="create", entity="work_order", entity_id=order.id,
              now=now, detail={"number": order.number, "intake": intake.number,
                               "service_type": service_type, "status": status})
        return order.id

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
                raise Conflict(f"{rule.label}请使用派单操作 (use POST /api/orders/{{id}}/assign)",
                               code="use_assign", frm=order.status, to=to)
            facts = await facts_for(s, order, reason=reason, note=note)
            decision = states.check_transition(order, to, actor_of(actor), facts, now)
            values = decision.values(milestones(order))
            if to == states.CANCELLED:
                values["cancel_reason"] = reason
            frm = order.status
            await apply(s, order, version, values, now)
            text = "；".join(t for t in (reason, note) if t)
            action = "converted" if decision.service_type else "transition"
            add_event(s, order.id, at=now, user_id=actor.id, action=action, frm=frm, to=to, note=text)
            audit(s, user_id=actor.id, action="transition", entity="work_order", entity_id=order.id,
                  now=now, reason=reason, detail={"from": frm, "to": to, "version": version + 1,
                                                  **({"service_type": decision.service_type}
                                                     if decision.service_type else {})})

    async def assign(self, order_id: int, engineer_id: int, actor: CurrentUser, *, version: int,
                     note: str = "", now: dt.datetime | None = None) -> None:
        """Dispatch by hand (or re-dispatch): the order's engineer, ``dispatched_at``, status
        已派单 (a carry-in order keeps its status). A booked visit is dropped on re-dispatch:
        the new engineer books again."""
        now = now or utcnow()
        async with self.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "order.assign")
            version = check_version(order, version)
            engineer = await s.get(User, engineer_id)
            if engineer is None or engineer.role != "engineer" or not engineer.active:
                raise ValidationFailed("engineer_id", "不是在岗的服务工程师 (not an active engineer)")
            to = states.DISPATCHED if order.service_type != states.CARRY_IN else order.status
            facts = await facts_for(s, order, note=note, engineer_id=engineer_id)
            rule = states.find_rule(order, to)
            if not rule.assigns:
                raise Conflict(f"{order.status}状态不能派单 (an order that is {order.status} cannot be dispatched)",
                               code="illegal_transition", frm=order.status, to=to)
            decision = states.check_transition(order, to, actor_of(actor), facts, now)
            values = decision.values(milestones(order))
            values.update(engineer_id=engineer_id, dispatched_at=now, accepted_at=None,
                          contacted_at=None)
            if order.status == states.BOOKED:
                values.update(appointment_start=None, appointment_end=None)
                await supersede_open(s, order.id)
            frm, previous = order.status, order.engineer_id
            await apply(s, order, version, values, now)
            add_event(s, order.id, at=now, user_id=actor.id,
                      action="reassigned" if previous else "assigned", frm=frm, to=to, note=note)
            audit(s, user_id=actor.id, action="assign", entity="work_order", entity_id=order.id,
                  now=now, detail={"engineer_id": engineer_id, "previous_engineer_id": previous,
                                   "from": frm, "to": to})

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
            await apply(s, order, version, values, now)
            add_event(s, order.id, at=now, user_id=actor.id, action=action, note=note)
            audit(s, user_id=actor.id, action=action, entity="work_order", entity_id=order.id,
                  now=now, detail={"status": order.status})


def actor_of(user: CurrentUser) -> states.Actor:
    return states.Actor(user.id, user.role)

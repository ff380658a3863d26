"""A booked-visit world for the outbox tests: an engineer, a customer with a mobile and a
landline, an intake and its on-site order accepted by the engineer (seeded as rows, so the
tests choose every time), and gateways that fail on purpose."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.identity import CurrentUser
from callcenter.crypto import PhoneVault
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Address, Appliance, Customer, IntakeRecord, User, WorkOrder
from callcenter.notify.gateway import GatewayError
from callcenter.orders.appointments import AppointmentService
from callcenter.orders.schemas import AppointmentIn
from callcenter.orders.services import OrderService
from callcenter.privacy import mask_phone
from callcenter.settings import Settings

CUSTOMER_NAME, CUSTOMER_MOBILE, CUSTOMER_LANDLINE = "张三丰", "13800138000", "01088886666"
STREET = "科技园路8号3栋1201"
ENGINEER_MOBILE = "13911110001"
SECRETS = [CUSTOMER_NAME, STREET, CUSTOMER_LANDLINE]
# 2026-11-24 09:00 in Shanghai: the booking time of the tests.
T0 = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@dataclass
class World:
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    vault: PhoneVault
    engineer: CurrentUser
    dispatcher: CurrentUser
    order_id: int
    customer_id: int

    @property
    def orders(self) -> OrderService:
        return OrderService(self.sessionmaker, self.settings, self.vault)

    @property
    def appointments(self) -> AppointmentService:
        return AppointmentService(self.orders)

    async def book(self, start: dt.datetime, *, now: dt.datetime, hours: int = 2,
                   prepare: str = "保持空调通电，清理外机周围1米空间") -> int:
        """A confirmed appointment for ``start`` (aware, on the hour) booked at ``now``."""
        body = AppointmentIn(window_start=start, window_end=start + hours * H, source="客户意愿",
                             service_content="检修空调不制冷", prepare=prepare, customer_confirmed=True)
        return await self.appointments.create(self.order_id, body, self.engineer, now=now)


async def seed_world(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, vault: PhoneVault,
                     *, contact: str | None = CUSTOMER_MOBILE, customer_mobile: bool = True,
                     now: dt.datetime = T0) -> World:
    """One order 已派单, accepted and contacted, its intake's contact number ``contact``."""
    async with sessionmaker.begin() as s:
        engineer = User(username="eng-notify", display_name="赵工程", password_hash="-", role="engineer",
                        created_at=now, staff_no="GY2024001", mobile_enc=vault.encrypt(ENGINEER_MOBILE),
                        mobile_masked=mask_phone(ENGINEER_MOBILE))
        phones = [sealed_phone(vault, CUSTOMER_LANDLINE, "landline")]
        if customer_mobile:
            phones.append(sealed_phone(vault, CUSTOMER_MOBILE, "mobile"))
        customer = Customer(name=CUSTOMER_NAME, created_at=now, phones=phones,
                            addresses=[Address(province="广东省", city="深圳市", district="南山区", detail=STREET)],
                            appliances=[Appliance(category="空调", brand="格力", model="KFR-35GW/ABC123",
                                                  serial="GR2023X", warranty_months=36,
                                                  purchase_date=(now - 200 * 24 * H).date())])
        dispatcher = User(username="dispatcher-notify", display_name="孙调度", password_hash="-",
                          role="dispatcher", created_at=now)
        s.add_all([engineer, dispatcher, customer])
        await s.flush()
        sealed = vault.seal(contact) if contact else None
        intake = IntakeRecord(number="CR20261124-001", created_at=now - 2 * H, customer_id=customer.id,
                              contact_phone_index=sealed.index if sealed else "",
                              contact_phone_enc=sealed.enc if sealed else "",
                              contact_phone_masked=sealed.masked if sealed else "",
                              appliance_id=customer.appliances[0].id, category="空调",
                              product_model="KFR-35GW/ABC123", request_type="维修", problem="空调不制冷",
                              warranty="保内", read_back=True)
        s.add(intake)
        await s.flush()
        order = WorkOrder(number="WO20261124-001", customer_id=customer.id, appliance_id=customer.appliances[0].id,
                          intake_id=intake.id, address_id=customer.addresses[0].id, product_model="KFR-35GW/ABC123",
                          warranty="保内", service_type="上门维修", status="已派单", urgency="普通",
                          problem="空调不制冷", engineer_id=engineer.id, created_at=now - 2 * H,
                          updated_at=now - H, dispatched_at=now - 2 * H, accepted_at=now - 90 * dt.timedelta(minutes=1),
                          contacted_at=now - H, version=1)
        s.add(order)
        await s.flush()
        return World(sessionmaker, settings, vault,
                     CurrentUser(id=engineer.id, username=engineer.username, role="engineer"),
                     CurrentUser(id=dispatcher.id, username=dispatcher.username, role="dispatcher"),
                     order.id, customer.id)


@dataclass
class FlakyGateway:
    """Fails the first ``failures`` sends (retryable or not), then accepts; counts every call."""

    failures: int = 0
    retryable: bool = True
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, number: str, text: str, ref: str) -> str:
        self.calls.append((number, text, ref))
        if len(self.calls) <= self.failures:
            raise GatewayError(f"gateway busy, try later (number {number})", retryable=self.retryable,
                               code="throttled" if self.retryable else "rejected")
        return f"gw-{len(self.calls)}"


@dataclass
class SlowGateway:
    """Accepts every message after ``delay`` seconds; records the references it was given."""

    delay: float = 0.05
    refs: list[str] = field(default_factory=list)

    async def send(self, number: str, text: str, ref: str) -> str:
        self.refs.append(ref)
        await asyncio.sleep(self.delay)
        return f"slow-{ref}"


@dataclass
class Meeting:
    """Holds every sender's first send until ``senders`` of them are sending at once: several
    senders then provably work side by side (gives up after ``timeout`` s)."""

    senders: int = 2
    timeout: float = 10.0
    arrived: set[int] = field(default_factory=set)
    met: asyncio.Event = field(default_factory=asyncio.Event)

    async def arrive(self, who: int) -> None:
        self.arrived.add(who)
        if len(self.arrived) >= self.senders:
            self.met.set()
        await asyncio.wait_for(self.met.wait(), self.timeout)


@dataclass
class MeetingGateway:
    meeting: Meeting
    who: int
    refs: list[str] = field(default_factory=list)

    async def send(self, number: str, text: str, ref: str) -> str:
        self.refs.append(ref)
        await self.meeting.arrive(self.who)
        return f"m{self.who}-{ref}"

"""Demo data: agents bound to the simulator's queue members and a user for every other role
(dispatcher, two engineers with staff numbers, sealed mobiles and stocked vans, a survey agent,
a supervisor, an admin), the product categories, customers with appliances and past work
orders, and a few live orders in various states — so the first simulated call already pops a
known customer and the whole after-sales flow can be tried in the browser.

Every demo login has the password ``DEMO_PASSWORD``; ``callcenter demo`` prints them.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sqlalchemy import update

from callcenter.auth.identity import CurrentUser
from callcenter.auth.services import AuthService
from callcenter.crypto import PhoneVault
from callcenter.customers.phones import normalise
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone, User, WorkOrder
from callcenter.orders.defaults import WARRANTY_MONTHS, seed_categories
from callcenter.privacy import mask_phone
from callcenter.settings import Settings

DEMO_PASSWORD = "demo1234"
AGENTS = [("agent1", "王芳", "8001"), ("agent2", "李娜", "8002"), ("agent3", "刘洋", "8003"),
          ("agent4", "陈静", "8004"), ("agent5", "杨磊", "8005")]
# username, display name, role, staff number (engineers), mobile (sealed in users.mobile_enc)
STAFF = [
    ("dispatcher", "孙调度", "dispatcher", None, None),
    ("engineer1", "赵建国", "engineer", "GY2024001", "13900000001"),
    ("engineer2", "钱志强", "engineer", "GY2024002", "13900000002"),
    ("survey", "周回访", "survey", None, None),
    ("supervisor", "赵主管", "supervisor", None, None),
    ("admin", "系统管理员", "admin", None, None),
]
ROLE_LABELS = {"dispatcher": "调度", "engineer": "工程师", "survey": "回访", "supervisor": "主管",
               "admin": "管理员"}
# (username, what the start-up banner shows, role) for every login that is not an agent.
OTHERS = [(u, f"{name}（{ROLE_LABELS[role]}{' ' + staff_no if staff_no else ''}）", role)
          for u, name, role, staff_no, _ in STAFF]
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建华"]
DISTRICTS = [("北京市", "北京市", "朝阳区"), ("北京市", "北京市", "海淀区"), ("上海市", "上海市", "浦东新区"),
             ("广东省", "深圳市", "南山区"), ("广东省", "广州市", "天河区"), ("浙江省", "杭州市", "西湖区")]
# (category, brand, model, warranty months: the category's default)
PRODUCTS = [(c, b, m, WARRANTY_MONTHS[c]) for c, b, m in (
    ("空调", "美的", "KFR-35GW/BP3DN8Y"), ("冰箱", "海尔", "BCD-470WDPG"), ("洗衣机", "小天鹅", "TG100V88WMUIADY5"),
    ("热水器", "A.O.史密斯", "E60VN2-C"), ("燃气灶", "方太", "JZT-TH29B"), ("油烟机", "老板", "CXW-260-27A7"))]
PROBLEMS = ["不制冷，外机不转", "漏水，地面有水渍", "开机有异响，像金属摩擦", "显示E4故障代码",
            "闻到燃气味，已关阀门", "加热慢，水温上不去"]
# Past orders (days to months old) are closed: the open ones are LIVE_ORDERS, taken through the
# services (an engineer holds at most their cap of open orders).
STATUSES = ["已完成", "已完成", "已回访", "已回访", "已取消"]
# Past orders in these states went to an engineer.
DISPATCHED = ("已完成", "已回访")


def demo_numbers(count: int) -> list[str]:
    """The demo customers' mobile numbers (the simulator calls from these)."""
    return [f"138{i:08d}" for i in range(count)]


async def seed(sessionmaker: async_sessionmaker[AsyncSession], auth: AuthService, *,
               vault: PhoneVault, customers: int = 200, now: dt.datetime | None = None,
               seed_value: int = 7, settings: Settings | None = None) -> bool:
    """Seed once; returns False if the database already has users (kept as it is).
    ``vault``: the keys the numbers are sealed with (the app's); ``settings``: the centre's
    time zone for the live orders' numbers (default ``Settings()``)."""
    now = now or dt.datetime.now(dt.UTC)
    async with sessionmaker() as s:
        if (await s.scalar(select(func.count()).select_from(User))) or 0:
            return False
    for username, name, ext in AGENTS:
        await auth.add_user(username, role="agent", password=DEMO_PASSWORD, extension=ext, display_name=name)
    for username, name, role, staff_no, mobile in STAFF:
        user = await auth.add_user(username, role=role, password=DEMO_PASSWORD, display_name=name)
        if staff_no or mobile:
            async with sessionmaker.begin() as s:
                await s.execute(update(User).where(User.id == user.id).values(
                    staff_no=staff_no, mobile_enc=vault.encrypt(mobile) if mobile else "",
                    mobile_masked=mask_phone(mobile) if mobile else ""))
    rnd = random.Random(seed_value)
    serial = 0
    async with sessionmaker.begin() as s:
        await seed_categories(s)
        for i, number in enumerate(demo_numbers(customers)):
            c = Customer(name=rnd.choice(SURNAMES) + rnd.choice(GIVEN), level="", remarks="",
                         created_at=now - dt.timedelta(days=rnd.randint(30, 900)))
            c.phones.append(sealed_phone(vault, normalise(number).number, "mobile"))  # type: ignore[union-attr]
            if i % 5 == 0:
                c.phones.append(sealed_phone(vault, f"010{60000000 + i:08d}", "landline"))
            prov, city, dist = rnd.choice(DISTRICTS)
            c.addresses.append(Address(province=prov, city=city, district=dist,
                                       detail=f"{rnd.randint(1, 300)}号{rnd.randint(1, 30)}栋{rnd.randint(101, 2505)}室"))
            for _ in range(rnd.randint(1, 3)):
                cat, brand, model, months = rnd.choice(PRODUCTS)
                c.appliances.append(Appliance(category=cat, brand=brand, model=model,
                                              serial=f"SN{rnd.randint(10**9, 10**10 - 1)}",
                                              purchase_date=(now - dt.timedelta(days=rnd.randint(20, 1500))).date(),
                                              warranty_months=months))
            s.add(c)
        await s.flush()
        rows = (await s.execute(select(Appliance.id, Appliance.customer_id))).all()
        engineers = list(await s.scalars(select(User.id).where(User.role == "engineer").order_by(User.id)))
        for appliance_id, customer_id in rows:
            for _ in range(rnd.choice((0, 0, 1, 1, 2))):
                serial += 1
                # Past days only: today's numbers are the live counter's (orders.numbering).
                created = now - dt.timedelta(days=rnd.randint(1, 200), hours=rnd.randint(0, 23))
                status = rnd.choice(STATUSES)
                s.add(WorkOrder(number=f"WO{created:%Y%m%d}-{serial:03d}", customer_id=customer_id,
                                appliance_id=appliance_id, service_type="上门维修", status=status,
                                urgency=rnd.choice(("普通", "普通", "紧急", "特急")), problem=rnd.choice(PROBLEMS),
                                created_at=created,
                                engineer_id=(rnd.choice(engineers) if engineers and status in DISPATCHED
                                             else None),
                                completed_at=created + dt.timedelta(days=1) if status in ("已完成", "已回访") else None))
    # Price list, parts, the six warehouses with stock, a van for every engineer seeded above.
    from callcenter.parts.defaults import seed_parts

    await seed_parts(sessionmaker, now=now)
    await seed_workforce(sessionmaker, vault=vault, now=now)
    await seed_live_orders(sessionmaker, vault=vault, settings=settings or Settings(), now=now)
    return True


# The demo engineers' bases (district centres) and partner shops, so automatic dispatch and the
# dispatcher's board have something to work with.
ENGINEER_BASES = {"engineer1": ("北京市", "北京市", "朝阳区"), "engineer2": ("北京市", "北京市", "海淀区")}
SHOPS = [("上海浦东家电维修服务部", ("上海市", "上海市", "浦东新区"), "13900000101"),
         ("深圳南山家电服务网点", ("广东省", "深圳市", "南山区"), "13900000102")]


async def seed_workforce(sessionmaker: async_sessionmaker[AsyncSession], *, vault: PhoneVault,
                         now: dt.datetime) -> None:
    """Dispatch profiles for the demo engineers (every category, the AC certificate, 08:00–20:00
    every day) and two partner shops."""
    from callcenter.db.workforce import EngineerProfile, EngineerSkill, ServiceShop
    from callcenter.geo.geocoding import default_geocoder
    from callcenter.orders.defaults import CATEGORIES

    geocoder = default_geocoder()
    hours = {str(d): [["08:00", "20:00"]] for d in range(1, 8)}
    async with sessionmaker.begin() as s:
        users = {u.username: u for u in await s.scalars(select(User).where(User.username.in_(ENGINEER_BASES)))}
        for username, place in ENGINEER_BASES.items():
            base = await geocoder.geocode(*place, "")
            s.add(EngineerProfile(user_id=users[username].id, region=place[1], base_lat=base.lat if base else None,
                                  base_lon=base.lon if base else None, load_cap=3, working_hours=hours,
                                  active=True, updated_at=now, version=1))
            s.add_all([EngineerSkill(engineer_id=users[username].id, category=c.name, certificate=c.certificate,
                                     certificate_no=f"{users[username].staff_no}-{i}" if c.certificate else "",
                                     certificate_expires=(now + dt.timedelta(days=700)).date() if c.certificate else None)
                       for i, c in enumerate(CATEGORIES)])
        for name, place, phone in SHOPS:
            at = await geocoder.geocode(*place, "")
            s.add(ServiceShop(name=name, region=place[1], lat=at.lat if at else None, lon=at.lon if at else None,
                              categories=[c.name for c in CATEGORIES], capacity=10, contact_name="网点负责人",
                              contact_phone_enc=vault.encrypt(phone), contact_phone_masked=mask_phone(phone),
                              active=True, created_at=now, version=1))


# Live orders so every list has something: (urgency, the status to reach, engineer).
LIVE_ORDERS = [("紧急", "待处理", None), ("普通", "已派单", "engineer1"), ("普通", "已预约", "engineer1"),
               ("特急", "服务中", "engineer2"), ("普通", "已完成", "engineer2")]
_STEPS = ("待处理", "已派单", "已预约", "服务中", "已完成")


async def seed_live_orders(sessionmaker: async_sessionmaker[AsyncSession], *, vault: PhoneVault,
                           settings: Settings, now: dt.datetime) -> list[int]:
    """``LIVE_ORDERS`` taken through the real services (numbers, timeline, audit, stock), for
    the first demo customers; returns the order ids. Needs the staff, the categories and the
    engineers' vans (``seed_parts``)."""
    from callcenter.db.stock import Part, StockLevel, StockLocation
    from callcenter.parts.rules import PARTS_WAREHOUSE
    from callcenter.orders.appointments import AppointmentService
    from callcenter.orders.schemas import AppointmentIn, IntakeIn
    from callcenter.orders.services import OrderService
    from callcenter.dispatch.engine import engine_for
    from callcenter.parts import schemas as parts_schemas
    from callcenter.parts.inventory import StockAlerts
    from callcenter.parts.onsite import OnsiteService

    async with sessionmaker() as s:
        users = {u.username: CurrentUser(id=u.id, username=u.username, role=u.role)
                 for u in await s.scalars(select(User))}
        customers = (await s.execute(
            select(Customer.id, func.min(CustomerPhone.id), func.min(Appliance.id))
            .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
            .join(Appliance, Appliance.customer_id == Customer.id)
            .group_by(Customer.id).order_by(Customer.id).limit(len(LIVE_ORDERS)))).all()
    orders = OrderService(sessionmaker, settings, vault)
    appointments = AppointmentService(orders)
    dispatch = engine_for(sessionmaker, settings)
    onsite = OnsiteService(sessionmaker, settings, StockAlerts(sessionmaker, None))
    agent, dispatcher = users[AGENTS[0][0]], users["dispatcher"]
    local = now.astimezone(settings.tz)
    tomorrow = (local + dt.timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)

    async def version(order_id: int) -> int:
        async with sessionmaker() as s:
            return (await s.get(WorkOrder, order_id)).version  # type: ignore[union-attr]

    ids = []
    for (urgency, status, eng_name), (customer_id, phone_id, appliance_id) in zip(LIVE_ORDERS, customers):
        _, order_id = await orders.create_intake(IntakeIn.model_validate({
            "customer_id": customer_id, "phone_id": phone_id, "appliance_id": appliance_id,
            "request_type": "维修", "problem": PROBLEMS[len(ids) % len(PROBLEMS)], "urgency": urgency,
            "read_back": True, "create_order": {}}), agent, now=now)
        assert order_id is not None
        ids.append(order_id)
        reach = _STEPS.index(status)
        if reach < 1 or eng_name is None:
            continue
        eng = users[eng_name]
        await dispatch.manual(order_id, dispatcher, engineer_id=eng.id, version=await version(order_id), now=now,
                              reason="演示派单")
        if reach < 2:
            continue
        await orders.accept(order_id, eng, now=now)
        await orders.contacted(order_id, eng, now=now)
        await appointments.create(order_id, AppointmentIn.model_validate({
            "window_start": tomorrow.isoformat(), "window_end": (tomorrow + dt.timedelta(hours=2)).isoformat(),
            "source": "客户意愿", "service_content": "上门检修", "customer_confirmed": True}), eng, now=now)
        if reach < 3:
            continue
        await orders.transition(order_id, "服务中", eng, version=await version(order_id), now=now)
        record = await onsite.create(eng, order_id, parts_schemas.OnsiteCreate(fault_observed="开机检测，故障复现"), now)
        async with sessionmaker() as s:
            # A part of the appliance's category, from the engineer's van if it carries one,
            # else from the 配件库.
            level = (await s.execute(
                select(StockLevel.part_id, StockLevel.location_id)
                .join(StockLocation, StockLocation.id == StockLevel.location_id)
                .join(Part, Part.id == StockLevel.part_id)
                .where(Part.category == record["category"], StockLevel.quantity > 0,
                       or_(StockLocation.engineer_id == eng.id, StockLocation.warehouse_type == PARTS_WAREHOUSE))
                .order_by(StockLocation.engineer_id.is_(None), StockLevel.part_id).limit(1))).first()
        if level is not None:
            record = await onsite.add_part(eng, record["id"], parts_schemas.PartIssue(
                part_id=level.part_id, location_id=level.location_id, quantity=1), now)
        if reach < 4:
            continue
        record = await onsite.update(eng, record["id"], parts_schemas.OnsiteUpdate(
            version=record["version"], root_cause="部件老化", solution="更换部件",
            test_result="试机正常", customer_feedback="满意"), now)
        await onsite.sign(eng, record["id"], parts_schemas.SignOff(
            version=record["version"], customer_confirmed=True, customer_signature="客户签名",
            engineer_signature=eng.username), now)
        await orders.transition(order_id, "已完成", eng, version=await version(order_id), now=now)
    return ids

"""Demo data: agents bound to the simulator's queue members, customers with appliances and
past work orders, so the first simulated call already pops a known customer."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.services import AuthService
from callcenter.crypto import PhoneVault
from callcenter.customers.phones import normalise
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Address, Appliance, Customer, User, WorkOrder

DEMO_PASSWORD = "demo1234"
AGENTS = [("agent1", "王芳", "8001"), ("agent2", "李娜", "8002"), ("agent3", "刘洋", "8003"),
          ("agent4", "陈静", "8004"), ("agent5", "杨磊", "8005")]
OTHERS = [("supervisor", "赵主管", "supervisor"), ("admin", "系统管理员", "admin")]
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建华"]
DISTRICTS = [("北京市", "北京市", "朝阳区"), ("北京市", "北京市", "海淀区"), ("上海市", "上海市", "浦东新区"),
             ("广东省", "深圳市", "南山区"), ("广东省", "广州市", "天河区"), ("浙江省", "杭州市", "西湖区")]
PRODUCTS = [("空调", "美的", "KFR-35GW/BP3DN8Y", 36), ("冰箱", "海尔", "BCD-470WDPG", 36),
            ("洗衣机", "小天鹅", "TG100V88WMUIADY5", 24), ("热水器", "A.O.史密斯", "E60VN2-C", 36),
            ("燃气灶", "方太", "JZT-TH29B", 12), ("油烟机", "老板", "CXW-260-27A7", 24)]
PROBLEMS = ["不制冷，外机不转", "漏水，地面有水渍", "开机有异响，像金属摩擦", "显示E4故障代码",
            "闻到燃气味，已关阀门", "加热慢，水温上不去"]
STATUSES = ["已完成", "已完成", "已回访", "待处理", "已预约", "服务中", "待件", "已取消"]


def demo_numbers(count: int) -> list[str]:
    """The demo customers' mobile numbers (the simulator calls from these)."""
    return [f"138{i:08d}" for i in range(count)]


async def seed(sessionmaker: async_sessionmaker[AsyncSession], auth: AuthService, *,
               vault: PhoneVault, customers: int = 200, now: dt.datetime | None = None,
               seed_value: int = 7) -> bool:
    """Seed once; returns False if the database already has users (kept as it is).
    ``vault``: the keys the numbers are sealed with (the app's)."""
    now = now or dt.datetime.now(dt.UTC)
    async with sessionmaker() as s:
        if (await s.scalar(select(func.count()).select_from(User))) or 0:
            return False
    for username, name, ext in AGENTS:
        await auth.add_user(username, role="agent", password=DEMO_PASSWORD, extension=ext, display_name=name)
    for username, name, role in OTHERS:
        await auth.add_user(username, role=role, password=DEMO_PASSWORD, display_name=name)
    rnd = random.Random(seed_value)
    serial = 0
    async with sessionmaker.begin() as s:
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
        for appliance_id, customer_id in rows:
            for _ in range(rnd.choice((0, 0, 1, 1, 2))):
                serial += 1
                created = now - dt.timedelta(days=rnd.randint(0, 200), hours=rnd.randint(0, 23))
                status = rnd.choice(STATUSES)
                s.add(WorkOrder(number=f"WO{created:%Y%m%d}-{serial:03d}", customer_id=customer_id,
                                appliance_id=appliance_id, service_type="上门维修", status=status,
                                urgency=rnd.choice(("普通", "普通", "紧急", "特急")), problem=rnd.choice(PROBLEMS),
                                created_at=created,
                                completed_at=created + dt.timedelta(days=1) if status in ("已完成", "已回访") else None))
    # Price list, parts, the six warehouses with stock, a van for every engineer seeded above.
    from callcenter.parts.defaults import seed_parts

    await seed_parts(sessionmaker, now=now)
    return True

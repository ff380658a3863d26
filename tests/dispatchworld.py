"""A small dispatch world for the loader and endpoint tests: categories, a customer in Beijing,
engineers around them with skills, leave, load and a record of completed orders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from callcenter.db.models import Address, Appliance, Customer, User, WorkOrder
from callcenter.db.records import OnsiteRecord, ProductCategory
from callcenter.db.workforce import EngineerLeave, EngineerProfile, EngineerSkill
from callcenter.geo import GeoPoint

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2026-11-23 10:00 in Shanghai: inside everyone's default 09:00–18:00.
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).astimezone(dt.UTC)
TIANANMEN = GeoPoint(39.9087, 116.3975)
KM_LAT = 1 / 111.195  # degrees of latitude per km
KM_LON = 1 / (111.195 * 0.7669)  # degrees of longitude per km at 39.9°N


def near(north_km: float, east_km: float = 0.0) -> tuple[float, float]:
    return TIANANMEN.lat + north_km * KM_LAT, TIANANMEN.lon + east_km * KM_LON


@dataclass
class World:
    users: dict[str, int]
    orders: dict[str, int]
    customer_id: int


AC = ("空调", "制冷作业证", "T-1", dt.date(2099, 6, 30))


async def build(sessionmaker) -> World:  # type: ignore[no-untyped-def]
    users: dict[str, int] = {}
    orders: dict[str, int] = {}
    n = 0

    def number() -> str:
        nonlocal n
        n += 1
        return f"WO20261101-{n:03d}"

    async with sessionmaker.begin() as s:
        s.add_all([ProductCategory(name="空调", warranty_months=12, certificate="制冷作业证"),
                   ProductCategory(name="冰箱", warranty_months=12, certificate="")])
        for i, name, role in [(1, "dispatcher", "dispatcher"), (2, "admin", "admin"), (3, "supervisor", "supervisor"),
                              (4, "agent", "agent")]:
            u = User(username=name, display_name=name, password_hash="x", role=role, active=True, created_at=NOW)
            s.add(u)
            await s.flush()
            users[name] = u.id
        c = Customer(name="王小明", created_at=NOW)
        s.add(c)
        await s.flush()
        home = Address(customer_id=c.id, province="北京市", city="北京市", district="东城区", detail="某街1号",
                       lat=TIANANMEN.lat, lon=TIANANMEN.lon)
        unlocated = Address(customer_id=c.id, province="北京市", city="北京市", district="西城区", detail="某街2号")
        shanghai = Address(customer_id=c.id, province="上海市", city="上海市", district="黄浦区", detail="某路3号",
                           lat=31.2317, lon=121.4846)
        s.add_all([home, unlocated, shanghai])
        ac = Appliance(customer_id=c.id, category="空调", model="KFR-35GW", serial="S1")
        s.add(ac)
        await s.flush()

        # name, north km, east km, skills, open orders, extra profile fields, user active
        specs = [
            ("best", 1.0, 0.0, [AC], 0, {}, True),
            ("full", 2.0, 0.0, [AC], 3, {}, True),
            ("fridge", 3.0, 0.0, [("冰箱", "", "", None)], 0, {}, True),
            ("corner", 4.5, 4.5, [AC], 0, {}, True),  # in the 5 km box, 6.4 km away
            ("moving", 40.0, 0.0, [AC], 2, {"last": near(0.5)}, True),  # base far, reported nearby
            ("leave", 1.5, 0.0, [AC], 0, {}, True),
            ("expired", 0.5, 0.5, [("空调", "制冷作业证", "T-9", dt.date(2026, 11, 22))], 0, {}, True),
            ("gone", 0.2, 0.0, [AC], 0, {}, False),  # left the company
            ("far", 15.0, 0.0, [AC], 0, {"region": "河北省"}, True),
        ]
        for name, nkm, ekm, skills, open_n, extra, active in specs:
            u = User(username=name, display_name="李" + name, password_hash="x", role="engineer", active=active,
                     created_at=NOW, staff_no=f"GY{len(users):04d}")
            s.add(u)
            await s.flush()
            users[name] = u.id
            lat, lon = near(nkm, ekm)
            last = extra.get("last")
            s.add(EngineerProfile(user_id=u.id, region=extra.get("region", "北京市"), base_lat=lat, base_lon=lon,
                                  last_lat=last[0] if last else None, last_lon=last[1] if last else None,
                                  last_seen_at=NOW - dt.timedelta(minutes=10) if last else None,
                                  load_cap=3, active=True, version=1,
                                  working_hours={str(d): [["09:00", "18:00"]] for d in range(1, 8)}))
            for cat, cert, no, exp in skills:
                s.add(EngineerSkill(engineer_id=u.id, category=cat, certificate=cert, certificate_no=no,
                                    certificate_expires=exp))
            for _ in range(open_n):
                s.add(WorkOrder(number=number(), customer_id=c.id, status="已预约", engineer_id=u.id,
                                created_at=NOW - dt.timedelta(days=1)))
        s.add(EngineerLeave(engineer_id=users["leave"], start_date=dt.date(2026, 11, 23),
                            end_date=dt.date(2026, 11, 24), kind="请假", created_at=NOW))
        # best's record: 4 completed (3 fixed on the first visit), 2 surveyed (1 unhappy), one
        # cancelled (ignored); last dispatched 2 h ago.
        for i, (visits, surveyed, unhappy, status) in enumerate([(1, True, False, "已回访"), (1, True, True, "已回访"),
                                                                 (1, False, False, "已完成"), (2, False, False, "已完成"),
                                                                 (0, False, False, "已取消")]):
            wo = WorkOrder(number=number(), customer_id=c.id, status=status, engineer_id=users["best"],
                           created_at=NOW - dt.timedelta(days=10 + i),
                           dispatched_at=NOW - dt.timedelta(hours=2 + i),
                           completed_at=NOW - dt.timedelta(days=5 + i),
                           surveyed_at=NOW - dt.timedelta(days=4) if surveyed else None,
                           dissatisfied_at=NOW - dt.timedelta(days=4) if unhappy else None)
            s.add(wo)
            await s.flush()
            for k in range(visits):
                s.add(OnsiteRecord(number=f"OS20261101-{wo.id:03d}{k}", order_id=wo.id, engineer_id=users["best"],
                                   created_at=NOW))
        for key, address in [("main", home), ("unlocated", unlocated), ("shanghai", shanghai)]:
            wo = WorkOrder(number=number(), customer_id=c.id, appliance_id=ac.id, address_id=address.id,
                           status="待处理", created_at=NOW)
            s.add(wo)
            await s.flush()
            orders[key] = wo.id
        wo = WorkOrder(number=number(), customer_id=c.id, address_id=home.id, status="待处理", created_at=NOW)
        s.add(wo)
        await s.flush()
        orders["no_category"] = wo.id
    return World(users, orders, c.id)


def bare_app(engine, sessionmaker, *route_tables, **keys):  # type: ignore[no-untyped-def]
    """An app of only ``route_tables`` on the world's database, with the test keys, the error
    middleware and the ``X-Test-User: <id>:<role>`` login; ``keys``: more app keys by name
    (``DISPATCH=…``)."""
    from aiohttp import web

    from callcenter import appkeys
    from callcenter.web.middleware import error_middleware
    from tests.apphelpers import fixed_vault, header_login, keyed_settings

    app = web.Application(middlewares=[error_middleware, header_login])
    app[appkeys.ENGINE], app[appkeys.SESSIONMAKER] = engine, sessionmaker
    app[appkeys.SETTINGS], app[appkeys.VAULT] = keyed_settings(), fixed_vault()
    for name, value in keys.items():
        app[getattr(appkeys, name)] = value
    for routes in route_tables:
        app.add_routes(routes)
    return app

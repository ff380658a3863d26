"""The demo data: a login for every role, engineers with staff numbers, sealed mobiles and a
stocked van, the default categories, and live orders in several states."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.access import ALL
from callcenter.auth.services import AuthService
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import User, WorkOrder
from callcenter.db.records import ProductCategory
from callcenter.db.stock import StockLevel, StockLocation
from callcenter.demo import AGENTS, DEMO_PASSWORD, LIVE_ORDERS, OTHERS, seed
from callcenter.orders.defaults import CATEGORIES
from tests.apphelpers import fixed_vault, keyed_settings


async def test_demo_seeds_every_role_and_the_flow(sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_only_url)
    vault = fixed_vault()
    try:
        await migrate(engine, vault=vault)
        sm = make_sessionmaker(engine)
        auth = AuthService(sm, ttl_s=60)
        assert await seed(sm, auth, vault=vault, customers=12, settings=keyed_settings())
        assert not await seed(sm, auth, vault=vault, customers=12)  # once only
        async with sm() as s:
            users = {u.username: u for u in await s.scalars(select(User))}
            categories = {c.name: (c.warranty_months, c.certificate) for c in await s.scalars(select(ProductCategory))}
            live = list(await s.scalars(select(WorkOrder).where(WorkOrder.number.like("WO%"))
                                        .order_by(WorkOrder.created_at.desc()).limit(len(LIVE_ORDERS))))
            vans = {loc.engineer_id: loc.id for loc in await s.scalars(
                select(StockLocation).where(StockLocation.engineer_id.is_not(None)))}
            stocked = {lid for lid in await s.scalars(select(StockLevel.location_id).where(StockLevel.quantity > 0))}
        assert {u.role for u in users.values()} == set(ALL)
        assert [u for u, _, _ in AGENTS] + [u for u, _, _ in OTHERS] == list(users)
        engineers = sorted((u for u in users.values() if u.role == "engineer"), key=lambda u: u.staff_no or "")
        assert [e.staff_no for e in engineers] == ["GY2024001", "GY2024002"]
        for e in engineers:
            assert e.mobile_masked.startswith("139****") and vault.decrypt(e.mobile_enc).startswith("139")
            assert vans[e.id] in stocked
        assert categories["空调"] == (36, "制冷作业证")
        assert {name: months for name, (months, _) in categories.items()} == {c.name: c.warranty_months for c in CATEGORIES}
        assert sorted(o.status for o in live) == sorted(status for _, status, _ in LIVE_ORDERS)
        # Dispatch has engineers to choose from (located, certified for air conditioners) and shops.
        async with sm() as s:
            from callcenter.db.workforce import EngineerProfile, EngineerSkill, ServiceShop

            profiles = {p.user_id: p for p in await s.scalars(select(EngineerProfile))}
            ac = {k.engineer_id: k for k in await s.scalars(select(EngineerSkill).where(EngineerSkill.category == "空调"))}
            shops = list(await s.scalars(select(ServiceShop)))
        for e in engineers:
            assert profiles[e.id].base_lat is not None and ac[e.id].certificate == "制冷作业证"
        assert len(shops) == 2 and all(x.lat is not None and x.contact_phone_masked for x in shops)
        for username in ("agent1", "dispatcher", "engineer1", "survey", "supervisor", "admin"):
            token, who = await auth.login(username, DEMO_PASSWORD)
            assert token and who.username == username
    finally:
        await engine.dispose()

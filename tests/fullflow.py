"""The whole after-sales flow through the real application's JSON API, for the global tests
(``test_idor_matrix.py``, ``test_privacy_everywhere.py``).

:func:`seed_centre` adds the staff of a small centre (one per role, two engineers with staff
numbers and sealed mobiles, a van each), the default categories, price list and parts, and two
customers. :func:`drive_order` takes one order from the intake to the signed on-site record (and
to 已完成) as the people who would do it: the agent, the dispatcher, the engineer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select, update

from callcenter.appkeys import AGENTS, AUTH, SESSIONMAKER, SETTINGS
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Address, Appliance, Customer, User
from callcenter.db.stock import StockLevel, StockLocation
from callcenter.orders.defaults import seed_categories
from callcenter.parts.defaults import seed_parts
from callcenter.privacy import mask_phone
from tests import apphelpers as h

# username → (role, display name, extension, staff no., mobile)
STAFF: dict[str, tuple[str, str, str | None, str | None, str | None]] = {
    "agent8001": ("agent", "王小明", "8001", None, None),
    "dispatcher": ("dispatcher", "李调度", None, None, None),
    "eng1": ("engineer", "赵工程", None, "GY2024001", "13911110001"),
    "eng2": ("engineer", "钱工程", None, "GY2024002", "13911110002"),
    "survey": ("survey", "周回访", None, None, None),
    "supervisor": ("supervisor", "吴主管", None, None, None),
    "admin": ("admin", "郑管理", None, None, None),
}
ROLE_USER = {"agent": "agent8001", "dispatcher": "dispatcher", "engineer": "eng1", "survey": "survey",
             "supervisor": "supervisor", "admin": "admin"}
# Customer key → (name, mobile, landline, street address)
CUSTOMERS = {
    "zhang": ("张三丰", "13800138000", "01088886666", "科技园路8号3栋1201"),
    "li": ("李四光", "13700137000", "01066665555", "中关村大街1号"),
}
# What must never appear outside the reveal: customers' full names, streets, landlines (and any
# mobile, which the scanner finds by its shape). Staff see their own name in the page header.
SECRETS = [v for name, mobile, landline, street in CUSTOMERS.values() for v in (name, street, landline)]
MOBILES = [c[1] for c in CUSTOMERS.values()] + [s[4] for s in STAFF.values() if s[4]]


@dataclass
class Centre:
    client: Any  # aiohttp test client
    users: dict[str, int]
    customers: dict[str, int]
    vans: dict[str, int]  # engineer username → van location id
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    async def as_(self, username: str) -> aiohttp.ClientSession:
        """A logged-in session of ``username`` (kept, closed by :meth:`close`)."""
        if username not in self.sessions:
            session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            r = await session.post(self.client.make_url("/api/session"),
                                   json={"username": username, "password": h.PASSWORD})
            assert r.status == 200, await r.text()
            self.sessions[username] = session
        return self.sessions[username]

    async def call(self, username: str, method: str, path: str, body: Any = None,
                   status: int | None = 200) -> Any:
        session = await self.as_(username)
        r = await session.request(method, self.client.make_url(path), json=body)
        text = await r.text()
        if status is not None:
            assert r.status == status, f"{username} {method} {path}: {r.status} {text[:400]}"
        return await r.json() if r.content_type == "application/json" else text

    async def close(self) -> None:
        for s in self.sessions.values():
            await s.close()
        self.sessions.clear()


async def seed_centre(client: Any, now: dt.datetime | None = None) -> Centre:
    app = client.server.app
    now = now or dt.datetime.now(dt.UTC)
    vault = h.fixed_vault()
    users = {}
    for username, (role, name, ext, _, _) in STAFF.items():
        users[username] = (await app[AUTH].add_user(username, role=role, password=h.PASSWORD,
                                                    extension=ext, display_name=name)).id
    await app[AGENTS].refresh()
    sm = app[SESSIONMAKER]
    customers = {}
    async with sm.begin() as s:
        for username, (_, _, _, staff_no, mobile) in STAFF.items():
            if staff_no:
                await s.execute(update(User).where(User.id == users[username]).values(
                    staff_no=staff_no, mobile_enc=vault.encrypt(mobile or ""),
                    mobile_masked=mask_phone(mobile or "")))
        await seed_categories(s)
        for key, (name, mobile, landline, street) in CUSTOMERS.items():
            c = Customer(name=name, level="VIP", remarks=f"备用电话 {mobile}", created_at=now,
                         phones=[sealed_phone(vault, mobile, "mobile"), sealed_phone(vault, landline, "landline")],
                         addresses=[Address(province="广东省", city="深圳市", district="南山区", detail=street)],
                         appliances=[Appliance(category="空调", brand="格力", model="KFR-35GW/ABC123",
                                               serial=f"GR2023{key.upper()}", warranty_months=36,
                                               purchase_date=(now - dt.timedelta(days=200)).date())])
            s.add(c)
            await s.flush()
            customers[key] = c.id
    await seed_parts(sm, now=now)  # price list, parts, warehouses, a stocked van per engineer
    async with sm() as s:
        vans = {u: (await s.scalar(select(StockLocation.id).where(StockLocation.engineer_id == users[u])))
                for u in ("eng1", "eng2")}
    return Centre(client, users, customers, vans)  # type: ignore[arg-type]


def _tomorrow_at(centre: Centre, hour: int) -> str:
    tz = centre.client.server.app[SETTINGS].tz
    day = dt.datetime.now(tz).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz).isoformat()


async def _version(centre: Centre, username: str, order_id: int) -> int:
    return (await centre.call(username, "GET", f"/api/orders/{order_id}"))["order"]["version"]


async def drive_order(centre: Centre, customer: str, engineer: str, *, linkedid: str = "",
                      sign: bool = True, complete: bool = True) -> dict[str, int]:
    """Intake → order → assign → accept → contacted → appointment → 服务中 → on-site record with a
    part from the engineer's van, cause and fix (→ signed → 已完成). The ids of what was made."""
    agent, cid = "agent8001", centre.customers[customer]
    prefill = await centre.call(agent, "GET", f"/api/intakes/prefill?customer_id={cid}"
                                + (f"&linkedid={linkedid}" if linkedid else ""))
    created = await centre.call(agent, "POST", "/api/intakes", {
        "customer_id": cid, "linkedid": linkedid, "phone_id": prefill["phones"][0]["phone_id"],
        "appliance_id": prefill["appliances"][0]["id"], "request_type": "维修",
        "problem": f"空调不制冷，客户说回电 {CUSTOMERS[customer][1]}", "urgency": "紧急",
        "remarks": "上门前1小时电话", "read_back": True, "create_order": {}}, status=201)
    ids = {"customer": cid, "intake": created["intake"]["id"], "order": created["order"]["id"]}
    order = ids["order"]
    await centre.call("dispatcher", "POST", f"/api/orders/{order}/assign", {
        "engineer_id": centre.users[engineer], "note": "就近派单",
        "version": await _version(centre, "dispatcher", order)})
    await centre.call(engineer, "POST", f"/api/orders/{order}/accept", {})
    await centre.call(engineer, "POST", f"/api/orders/{order}/contacted", {"note": "已电话联系"})
    booked = await centre.call(engineer, "POST", f"/api/orders/{order}/appointments", {
        "window_start": _tomorrow_at(centre, 14), "window_end": _tomorrow_at(centre, 16),
        "source": "客户意愿", "service_content": "检修空调", "customer_confirmed": True}, status=201)
    ids["appointment"] = booked["appointment"]["id"]
    await centre.call(engineer, "POST", f"/api/orders/{order}/transitions", {
        "to": "服务中", "version": await _version(centre, engineer, order)})
    record = await centre.call(engineer, "POST", f"/api/orders/{order}/onsite",
                               {"fault_observed": "外机不启动"}, status=201)
    ids["onsite"] = record["id"]
    part = await _van_part(centre, engineer)
    record = await centre.call(engineer, "POST", f"/api/onsite/{ids['onsite']}/parts", {
        "part_id": part, "location_id": centre.vans[engineer], "quantity": 1}, status=201)
    ids["line"] = record["parts"][0]["id"]
    record = await centre.call(engineer, "PATCH", f"/api/onsite/{ids['onsite']}", {
        "version": record["version"], "root_cause": "启动电容失效", "solution": "更换启动电容",
        "test_result": "试机正常", "customer_feedback": "满意"})
    if not sign:
        return ids
    await centre.call(engineer, "POST", f"/api/onsite/{ids['onsite']}/sign", {
        "version": record["version"], "customer_confirmed": True, "customer_signature": CUSTOMERS[customer][0],
        "engineer_signature": STAFF[engineer][1]})
    if complete:
        await centre.call(engineer, "POST", f"/api/orders/{order}/transitions", {
            "to": "已完成", "version": await _version(centre, engineer, order)})
    return ids


async def _van_part(centre: Centre, engineer: str) -> int:
    """A 空调 part the engineer's van holds."""
    from callcenter.db.stock import Part

    async with centre.client.server.app[SESSIONMAKER]() as s:
        part = await s.scalar(select(StockLevel.part_id).join(Part, Part.id == StockLevel.part_id).where(
            StockLevel.location_id == centre.vans[engineer], StockLevel.quantity > 0, Part.category == "空调")
            .order_by(StockLevel.part_id).limit(1))
    assert part is not None, "the van carries no 空调 part"
    return part

"""Sensible starting data for a demo or a new centre: a small price list per product category,
a few common parts, the six warehouses with stock in the 配件库, and a van per engineer.

Idempotent: the price list, parts and warehouses are added only to an empty catalogue; a van is
added for every engineer who has none (so it can run again after engineers are added).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import User
from callcenter.db.stock import Part, PriceItem, StockLocation
from callcenter.errors import Conflict
from callcenter.parts.fees import LABOUR, VISIT_FEE
from callcenter.parts.inventory import StockLedger
from callcenter.parts.rules import PARTS_WAREHOUSE, WAREHOUSE_TYPES

# category → (visit fee in fen, [(labour item, fen), …])
PRICE_LIST: dict[str, tuple[int, list[tuple[str, int]]]] = {
    "空调": (5000, [("更换电容", 8000), ("加注冷媒", 15000), ("更换主板", 12000), ("深度清洗", 6000)]),
    "冰箱": (5000, [("更换温控器", 8000), ("补漏加注冷媒", 20000), ("更换门封", 5000)]),
    "洗衣机": (4000, [("更换排水泵", 6000), ("更换门锁", 5000), ("更换电机", 12000)]),
    "热水器": (4000, [("更换加热管", 8000), ("更换镁棒", 3000), ("更换温控器", 6000)]),
    "燃气灶": (3000, [("更换点火器", 5000), ("更换热电偶", 4000), ("清洗灶头", 3000)]),
    "油烟机": (3000, [("更换电机", 10000), ("深度清洗", 8000)]),
}

# (code, name, model, category, unit price in fen, quantity in the 配件库, safety stock)
PARTS: list[tuple[str, str, str, str, int, int, int]] = [
    ("CAP-35UF", "启动电容 35µF", "CBB65-35", "空调", 3500, 4, 5),  # below safety: an alert to see
    ("R32-1KG", "冷媒 R32 1kg", "R32", "空调", 12000, 20, 5),
    ("PCB-KFR35", "室外机主板", "KFR-35W/BP3", "空调", 38000, 6, 2),
    ("THERM-BCD", "温控器", "WDF-25", "冰箱", 6800, 15, 3),
    ("SEAL-BCD470", "门封条", "BCD-470", "冰箱", 9800, 10, 3),
    ("PUMP-DR30", "排水泵", "DR-30W", "洗衣机", 8500, 12, 3),
    ("LOCK-TG100", "门锁", "TG100", "洗衣机", 4500, 12, 3),
    ("HEAT-E60", "加热管", "E60-2000W", "热水器", 15800, 8, 2),
    ("ANODE-E60", "镁棒", "E60", "热水器", 3900, 25, 5),
    ("IGN-JZT", "脉冲点火器", "JZT-1.5V", "燃气灶", 4800, 15, 3),
    ("TC-JZT", "热电偶", "JZT-TC", "燃气灶", 2500, 30, 5),
]
# What a van carries (taken from the 配件库): the parts engineers use most.
VAN_KIT = [("CAP-35UF", 1), ("R32-1KG", 2), ("TC-JZT", 2), ("ANODE-E60", 2)]


async def seed_parts(sessionmaker: async_sessionmaker[AsyncSession], *, now: dt.datetime) -> None:
    """Seed the catalogue, warehouses and vans (see the module docstring)."""
    async with sessionmaker.begin() as s:
        ledger = StockLedger(s, now=now, user_id=None)
        if not await s.scalar(select(func.count()).select_from(PriceItem)):
            for category, (visit, labour) in PRICE_LIST.items():
                s.add(PriceItem(category=category, kind=VISIT_FEE, name="上门检测", amount_fen=visit, active=True))
                for name, fen in labour:
                    s.add(PriceItem(category=category, kind=LABOUR, name=name, amount_fen=fen, active=True))
        if not await s.scalar(select(func.count()).select_from(StockLocation)):
            await _warehouses(s, ledger)
        await _vans(s, ledger)


async def _warehouses(s: AsyncSession, ledger: StockLedger) -> None:
    locations = {}
    for i, wtype in enumerate(WAREHOUSE_TYPES, 1):
        loc = StockLocation(code=f"WH-{i:02d}", name=f"中心{wtype}", kind="warehouse", warehouse_type=wtype)
        s.add(loc)
        locations[wtype] = loc
    await s.flush()
    parts_wh = locations[PARTS_WAREHOUSE]
    for code, name, model, category, fen, quantity, safety in PARTS:
        part = await s.scalar(select(Part).where(Part.code == code))
        if part is None:
            part = Part(code=code, name=name, model=model, category=category, unit_price_fen=fen, active=True)
            s.add(part)
            await s.flush()
        await ledger.set_safety(part_id=part.id, location_id=parts_wh.id, safety_stock=safety)
        await ledger.give(part_id=part.id, location_id=parts_wh.id, quantity=quantity, reason="receipt",
                          note="期初库存")


async def _vans(s: AsyncSession, ledger: StockLedger) -> None:
    parts_wh = await s.scalar(select(StockLocation).where(StockLocation.warehouse_type == PARTS_WAREHOUSE)
                              .order_by(StockLocation.id).limit(1))
    with_van = select(StockLocation.engineer_id).where(StockLocation.engineer_id.is_not(None))
    engineers = (await s.scalars(
        select(User).where(User.role == "engineer", User.active.is_(True), User.id.not_in(with_van))
        .order_by(User.id))).all()
    for eng in engineers:
        van = StockLocation(code=f"VAN-{eng.id:04d}", name=f"车载库 {eng.staff_no or eng.username}", kind="van",
                            engineer_id=eng.id)
        s.add(van)
        await s.flush()
        if parts_wh is None:
            continue
        for code, quantity in VAN_KIT:
            part_id = await s.scalar(select(Part.id).where(Part.code == code))
            if part_id is None:
                continue
            try:
                await ledger.take(part_id=part_id, location_id=parts_wh.id, quantity=quantity,
                                  reason="transfer", note="车载库配货")
            except Conflict:  # the 配件库 ran short: this van goes without (nothing was changed)
                continue
            await ledger.give(part_id=part_id, location_id=van.id, quantity=quantity, reason="transfer",
                              note="车载库配货")

"""Default product categories: the warranty each carries from the purchase date and the
certificate its repair needs. One place for the demo, a new centre and the order code (an
appliance whose record says nothing else gets its category's months).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.records import ProductCategory


@dataclass(frozen=True, slots=True)
class CategoryDefault:
    name: str
    warranty_months: int
    # The certificate an engineer must hold to repair it; "" if none.
    certificate: str = ""


CATEGORIES: tuple[CategoryDefault, ...] = (
    CategoryDefault("空调", 36, "制冷作业证"),
    CategoryDefault("冰箱", 12),
    CategoryDefault("洗衣机", 12),
    CategoryDefault("热水器", 24),
    CategoryDefault("燃气灶", 12),
    CategoryDefault("油烟机", 12),
)
WARRANTY_MONTHS: dict[str, int] = {c.name: c.warranty_months for c in CATEGORIES}


async def seed_categories(s: AsyncSession) -> int:
    """Add the default categories the table does not have yet (by name; existing rows are kept
    as the centre set them). Returns how many were added. Runs in the caller's transaction."""
    have = set(await s.scalars(select(ProductCategory.name)))
    new = [ProductCategory(name=c.name, warranty_months=c.warranty_months, certificate=c.certificate)
           for c in CATEGORIES if c.name not in have]
    s.add_all(new)
    return len(new)

"""Price list, parts catalogue, stock per warehouse and per engineer's van, and the parts issued
on an on-site record. Quantities are whole units; money is integer fen (分)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, BigId


class PriceItem(Base):
    """The official price list: per product category, a visit fee (上门费) and labour (工时费) items."""

    __tablename__ = "price_items"
    __table_args__ = (UniqueConstraint("category", "kind", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    # 上门费 / 工时费
    kind: Mapped[str] = mapped_column(String(8))
    # "上门检测" / "更换压缩机" …
    name: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Part(Base):
    """A catalogue part."""

    __tablename__ = "parts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64), default="", index=True)
    # The product category it fits ("" for any).
    category: Mapped[str] = mapped_column(String(32), default="", index=True)
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StockLocation(Base):
    """A warehouse (成品库, 待修库, 样品库, 报损库, 商返库, 配件库) or an engineer's van."""

    __tablename__ = "stock_locations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    # warehouse | van
    kind: Mapped[str] = mapped_column(String(12))
    # For warehouses: 成品库 / 待修库 / 样品库 / 报损库 / 商返库 / 配件库; "" for vans.
    warehouse_type: Mapped[str] = mapped_column(String(8), default="")
    # For vans: the engineer who drives it.
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)


class StockLevel(Base):
    """How many of a part sit at a location. Never negative (the check is the last guard; the
    services decrement with a conditional UPDATE and answer 409 first)."""

    __tablename__ = "stock_levels"
    __table_args__ = (CheckConstraint("quantity >= 0", name="ck_stock_levels_quantity"),)
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id", ondelete="CASCADE"), primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    # Below this the location raises a safety-stock alert (popular models keep more).
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    # When the level last fell below safety_stock; None while at or above it. The alert is
    # pushed once per crossing: only the change that sets this notifies (revision 0006).
    alert_raised_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OnsitePartLine(Base):
    """A part issued on an on-site record, from one location. Removing or editing the line puts
    the stock back in the same transaction."""

    __tablename__ = "onsite_part_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    onsite_id: Mapped[int] = mapped_column(ForeignKey("onsite_records.id", ondelete="RESTRICT"), index=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    # The catalogue price when issued (kept as the list price in warranty too, for the record);
    # in warranty free=True and total_fen=0.
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    free: Mapped[bool] = mapped_column(Boolean, default=False)
    total_fen: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StockMovement(Base):
    """Every change of a stock level, signed: receipts, issues to orders, returns, transfers."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_part_at", "part_id", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    # receipt / issue / return / transfer / adjust
    reason: Mapped[str] = mapped_column(String(12))
    onsite_line_id: Mapped[int | None] = mapped_column(ForeignKey("onsite_part_lines.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")

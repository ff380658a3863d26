"""Engineer profiles, skills, leave and partner shops: reads for dispatchers, writes for admins.

Every write is one transaction with its audit entry (``detail`` names fields, never values);
names and numbers go out masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.crypto import PhoneVault
from callcenter.customers.phones import normalise
from callcenter.db.models import User, WorkOrder
from callcenter.db.records import ProductCategory
from callcenter.db.workforce import (
    DEFAULT_WORKING_HOURS,
    EngineerLeave,
    EngineerProfile,
    EngineerSkill,
    ServiceShop,
)
from callcenter.dispatch import schemas as sc
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.geo.distance import GeoPoint
from callcenter.geo.geocoding import Geocoder
from callcenter.orders.states import CLOSED_STATUSES
from callcenter.privacy import mask_name
from callcenter.settings import Settings


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


class WorkforceService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, vault: PhoneVault,
                 geocoder: Geocoder) -> None:
        self.sessionmaker, self.settings, self.vault, self.geocoder = sessionmaker, settings, vault, geocoder

    # ---- engineers ------------------------------------------------------------------------------

    async def list_engineers(self, query: sc.EngineerQuery, now: dt.datetime) -> dict[str, Any]:
        pr = EngineerProfile
        where: list[Any] = [User.role == "engineer"]
        if query.region is not None:
            where.append(pr.region == query.region)
        if query.active is not None:
            where.append(func.coalesce(pr.active, True).is_(query.active))
        base = select(User, pr).outerjoin(pr, pr.user_id == User.id).where(*where)
        async with self.sessionmaker() as s:
            total = await s.scalar(select(func.count()).select_from(base.subquery()))
            rows = (await s.execute(base.order_by(User.id).limit(query.page_size)
                                    .offset((query.page - 1) * query.page_size))).all()
            items = await self._profiles_out(s, [(u, p) for u, p in rows], now, with_leave=False)
        return {"items": items, "total": total or 0, "page": query.page, "page_size": query.page_size}

    async def get_engineer(self, engineer_id: int, now: dt.datetime) -> dict[str, Any]:
        async with self.sessionmaker() as s:
            user = await self._engineer(s, engineer_id)
            profile = await s.get(EngineerProfile, engineer_id)
            return (await self._profiles_out(s, [(user, profile)], now, with_leave=True))[0]

    async def update_profile(self, actor: CurrentUser, engineer_id: int, body: sc.ProfileUpdate,
                             now: dt.datetime) -> dict[str, Any]:
        """Create or change the profile (only the fields given); 409 on a stale ``version``,
        422 for a place the geocoder does not know."""
        base = None
        if body.base_place is not None:
            base = await self._geocode(body.base_place, "base_place")
        async with self.sessionmaker.begin() as s:
            await self._engineer(s, engineer_id)
            profile = await s.get(EngineerProfile, engineer_id, with_for_update=True)
            if profile is None:
                profile = EngineerProfile(user_id=engineer_id, region="", load_cap=3, active=True, version=0,
                                          working_hours={k: [list(i) for i in v] for k, v in DEFAULT_WORKING_HOURS.items()})
                s.add(profile)
            elif body.version is not None and body.version != profile.version:
                raise Conflict("资料已被他人修改，请刷新 (the profile changed since you read it)",
                               code="stale_version", version=profile.version)
            changed = body.model_dump(exclude_unset=True, exclude={"version", "base_place"})
            if base is not None:
                changed.update(base_lat=base.lat, base_lon=base.lon)
            for name, value in changed.items():
                setattr(profile, name, value)
            if "last_lat" in changed:
                profile.last_seen_at = now
            profile.updated_at, profile.version = now, (profile.version or 0) + 1
            audit(s, user_id=actor.id, action="update", entity="engineer_profile", entity_id=engineer_id, now=now,
                  detail={"fields": sorted(changed)})
        return await self.get_engineer(engineer_id, now)

    async def replace_skills(self, actor: CurrentUser, engineer_id: int, body: sc.SkillsIn,
                             now: dt.datetime) -> dict[str, Any]:
        """The engineer's skills become exactly ``body.skills``; 422 for an unknown category."""
        async with self.sessionmaker.begin() as s:
            await self._engineer(s, engineer_id)
            known = set(await s.scalars(select(ProductCategory.name)))
            for i, skill in enumerate(body.skills):
                if skill.category not in known:
                    raise ValidationFailed(f"skills[{i}].category", "未知的产品品类 (unknown product category)")
            await s.execute(delete(EngineerSkill).where(EngineerSkill.engineer_id == engineer_id))
            s.add_all(EngineerSkill(engineer_id=engineer_id, **skill.model_dump()) for skill in body.skills)
            audit(s, user_id=actor.id, action="update", entity="engineer_skills", entity_id=engineer_id, now=now,
                  detail={"categories": sorted(k.category for k in body.skills)})
        return await self.get_engineer(engineer_id, now)

    async def list_leave(self, engineer_id: int, since: dt.date) -> dict[str, Any]:
        async with self.sessionmaker() as s:
            await self._engineer(s, engineer_id)
            rows = await s.scalars(select(EngineerLeave).where(EngineerLeave.engineer_id == engineer_id,
                                                                EngineerLeave.end_date >= since)
                                   .order_by(EngineerLeave.start_date, EngineerLeave.id))
            return {"items": [_leave_out(lv) for lv in rows]}

    async def add_leave(self, actor: CurrentUser, engineer_id: int, body: sc.LeaveIn, now: dt.datetime) -> dict[str, Any]:
        async with self.sessionmaker.begin() as s:
            await self._engineer(s, engineer_id)
            lv = EngineerLeave(engineer_id=engineer_id, created_by=actor.id, created_at=now, **body.model_dump())
            s.add(lv)
            await s.flush()
            audit(s, user_id=actor.id, action="create", entity="engineer_leave", entity_id=lv.id, now=now,
                  detail={"engineer_id": engineer_id, "kind": lv.kind, "days": (lv.end_date - lv.start_date).days + 1})
            return _leave_out(lv)

    async def delete_leave(self, actor: CurrentUser, leave_id: int, now: dt.datetime) -> None:
        async with self.sessionmaker.begin() as s:
            lv = await s.get(EngineerLeave, leave_id)
            if lv is None:
                raise NotFound("休假记录不存在 (no such leave)", id=leave_id)
            await s.delete(lv)
            audit(s, user_id=actor.id, action="delete", entity="engineer_leave", entity_id=leave_id, now=now,
                  detail={"engineer_id": lv.engineer_id})

    async def _engineer(self, s: AsyncSession, engineer_id: int) -> User:
        user = await s.get(User, engineer_id)
        if user is None or user.role != "engineer":
            raise NotFound("工程师不存在 (no such engineer)", id=engineer_id)
        return user

    async def _geocode(self, place: sc.Place, field: str) -> GeoPoint:
        point = await self.geocoder.geocode(place.province, place.city, place.district)
        if point is None:
            raise ValidationFailed(field, "无法定位该地区，请直接填写经纬度 (unknown place; give lat/lon)")
        return point

    async def _profiles_out(self, s: AsyncSession, pairs: list[tuple[User, EngineerProfile | None]],
                            now: dt.datetime, *, with_leave: bool) -> list[dict[str, Any]]:
        ids = [u.id for u, _ in pairs]
        if not ids:
            return []
        today = now.astimezone(self.settings.tz).date()
        skills: dict[int, list[EngineerSkill]] = {}
        for sk in await s.scalars(select(EngineerSkill).where(EngineerSkill.engineer_id.in_(ids))
                                  .order_by(EngineerSkill.category)):
            skills.setdefault(sk.engineer_id, []).append(sk)
        required = dict((await s.execute(select(ProductCategory.name, ProductCategory.certificate))).all())
        open_counts = dict((await s.execute(
            select(WorkOrder.engineer_id, func.count()).where(WorkOrder.engineer_id.in_(ids),
                                                              WorkOrder.status.not_in(CLOSED_STATUSES))
            .group_by(WorkOrder.engineer_id))).all())
        leave: dict[int, list[dict[str, Any]]] = {}
        if with_leave:
            for lv in await s.scalars(select(EngineerLeave).where(EngineerLeave.engineer_id.in_(ids),
                                                                   EngineerLeave.end_date >= today)
                                      .order_by(EngineerLeave.start_date)):
                leave.setdefault(lv.engineer_id, []).append(_leave_out(lv))
        out = []
        for u, p in pairs:
            out.append({
                "engineer_id": u.id, "name": mask_name(u.display_name or u.username), "staff_no": u.staff_no,
                "mobile_masked": u.mobile_masked, "has_profile": p is not None,
                "region": p.region if p else "", "base_lat": p.base_lat if p else None,
                "base_lon": p.base_lon if p else None, "last_lat": p.last_lat if p else None,
                "last_lon": p.last_lon if p else None, "last_seen_at": _utc(p.last_seen_at) if p else None,
                "load_cap": p.load_cap if p else 3,
                "working_hours": p.working_hours if p else DEFAULT_WORKING_HOURS,
                "active": p.active if p else True, "open_orders": open_counts.get(u.id, 0),
                "version": p.version if p else 0,
                "skills": [_skill_out(sk, required.get(sk.category, ""), today) for sk in skills.get(u.id, [])],
                "leave": leave.get(u.id, []),
            })
        return out

    # ---- shops ----------------------------------------------------------------------------------

    async def list_shops(self) -> dict[str, Any]:
        async with self.sessionmaker() as s:
            return {"items": [_shop_out(x) for x in await s.scalars(select(ServiceShop).order_by(ServiceShop.id))]}

    async def get_shop(self, shop_id: int) -> dict[str, Any]:
        async with self.sessionmaker() as s:
            return _shop_out(await self._shop(s, shop_id))

    async def create_shop(self, actor: CurrentUser, body: sc.ShopIn, now: dt.datetime) -> dict[str, Any]:
        values = body.model_dump(exclude={"place", "contact_phone"})
        if body.place is not None and body.lat is None:
            point = await self._geocode(body.place, "place")
            values.update(lat=point.lat, lon=point.lon)
        values.update(self._sealed_phone(body.contact_phone))
        async with self.sessionmaker.begin() as s:
            await self._unique_name(s, body.name, None)
            shop = ServiceShop(created_at=now, version=1, **values)
            s.add(shop)
            await s.flush()
            audit(s, user_id=actor.id, action="create", entity="service_shop", entity_id=shop.id, now=now,
                  detail={"fields": sorted(body.model_dump(exclude_unset=True))})
            return _shop_out(shop)

    async def update_shop(self, actor: CurrentUser, shop_id: int, body: sc.ShopUpdate, now: dt.datetime) -> dict[str, Any]:
        changed = body.model_dump(exclude_unset=True, exclude={"version", "place", "contact_phone"})
        if body.place is not None and body.lat is None:
            point = await self._geocode(body.place, "place")
            changed.update(lat=point.lat, lon=point.lon)
        if body.contact_phone is not None:
            changed.update(self._sealed_phone(body.contact_phone))
        async with self.sessionmaker.begin() as s:
            shop = await self._shop(s, shop_id, lock=True)
            if body.version is not None and body.version != shop.version:
                raise Conflict("网点资料已被他人修改，请刷新 (the shop changed since you read it)",
                               code="stale_version", version=shop.version)
            if body.name is not None:
                await self._unique_name(s, body.name, shop_id)
            for name, value in changed.items():
                setattr(shop, name, value)
            shop.updated_at, shop.version = now, shop.version + 1
            audit(s, user_id=actor.id, action="update", entity="service_shop", entity_id=shop_id, now=now,
                  detail={"fields": sorted(body.model_dump(exclude_unset=True, exclude={"version"}))})
            return _shop_out(shop)

    def _sealed_phone(self, raw: str) -> dict[str, str]:
        if not raw:
            return {"contact_phone_enc": "", "contact_phone_masked": ""}
        number = normalise(raw, self.settings.local_area_code)
        if number is None:
            raise ValidationFailed("contact_phone", "不是有效的电话号码 (not a phone number)")
        sealed = self.vault.seal(number.number)
        return {"contact_phone_enc": sealed.enc, "contact_phone_masked": sealed.masked}

    async def _unique_name(self, s: AsyncSession, name: str, shop_id: int | None) -> None:
        other = await s.scalar(select(ServiceShop.id).where(ServiceShop.name == name))
        if other is not None and other != shop_id:
            raise Conflict("网点名称已存在 (a shop with this name exists)", code="duplicate_name", id=other)

    async def _shop(self, s: AsyncSession, shop_id: int, lock: bool = False) -> ServiceShop:
        shop = await s.get(ServiceShop, shop_id, with_for_update=lock)
        if shop is None:
            raise NotFound("网点不存在 (no such shop)", id=shop_id)
        return shop


def _skill_out(sk: EngineerSkill, required: str, today: dt.date) -> dict[str, Any]:
    valid = not required or (sk.certificate == required and (sk.certificate_expires is None
                                                             or sk.certificate_expires >= today))
    return {"category": sk.category, "certificate": sk.certificate, "certificate_no": sk.certificate_no,
            "certificate_expires": sk.certificate_expires, "required_certificate": required, "valid_today": valid}


def _leave_out(lv: EngineerLeave) -> dict[str, Any]:
    return {"id": lv.id, "engineer_id": lv.engineer_id, "start_date": lv.start_date, "end_date": lv.end_date,
            "kind": lv.kind, "note": lv.note}


def _shop_out(x: ServiceShop) -> dict[str, Any]:
    return {"id": x.id, "name": x.name, "region": x.region, "lat": x.lat, "lon": x.lon,
            "categories": list(x.categories or []), "capacity": x.capacity, "contact_name": mask_name(x.contact_name)
            if x.contact_name else "", "contact_phone_masked": x.contact_phone_masked, "active": x.active,
            "version": x.version}

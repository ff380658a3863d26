"""Request and response models of the dispatch endpoints (``callcenter.dispatch.http``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from callcenter.dispatch.rules import parse_working_hours
from callcenter.web.api import ApiModel, PatchModel


def _lat() -> Any:
    return Field(None, ge=-90, le=90)


def _lon() -> Any:
    return Field(None, ge=-180, le=180)


class Place(ApiModel):
    """An administrative place the geocoder resolves to its district centre."""

    province: str = Field("", max_length=32)
    city: str = Field("", max_length=32)
    district: str = Field(max_length=32)


def _check_hours(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is not None:
        try:
            parse_working_hours(v)
        except ValueError as e:
            raise ValueError(str(e)) from None
    return v


class EngineerQuery(ApiModel):
    region: str | None = Field(None, max_length=32)
    active: bool | None = None
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=200)


class ProfileUpdate(PatchModel):
    """Only the fields given change; a profile is created on first update. Null only for the
    positions (unknown) and version/base_place (not given)."""

    NULLABLE = frozenset({"version", "base_lat", "base_lon", "base_place", "last_lat", "last_lon"})

    version: int | None = Field(None, ge=1, description="the version read; 409 if it changed since")
    region: str | None = Field(None, max_length=32)
    base_lat: float | None = _lat()
    base_lon: float | None = _lon()
    base_place: Place | None = Field(None, description="geocoded to the district centre instead of base_lat/base_lon")
    last_lat: float | None = _lat()
    last_lon: float | None = _lon()
    load_cap: int | None = Field(None, ge=1, le=20)
    working_hours: dict[str, list[list[str]]] | None = Field(
        None, description='ISO weekday → [["HH:MM","HH:MM"], …], centre\'s time zone; a missing day is off')
    active: bool | None = None

    _hours = field_validator("working_hours")(_check_hours)

    @model_validator(mode="after")
    def _pairs(self) -> ProfileUpdate:
        for a, b in (("base_lat", "base_lon"), ("last_lat", "last_lon")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"{a} and {b} go together")
        if self.base_place is not None and self.base_lat is not None:
            raise ValueError("give base_lat/base_lon or base_place, not both")
        return self


class SkillIn(ApiModel):
    category: str = Field(min_length=1, max_length=32)
    certificate: str = Field("", max_length=64)
    certificate_no: str = Field("", max_length=64)
    certificate_expires: dt.date | None = None


class SkillsIn(ApiModel):
    skills: list[SkillIn] = Field(max_length=50)

    @field_validator("skills")
    @classmethod
    def _unique(cls, v: list[SkillIn]) -> list[SkillIn]:
        names = [s.category for s in v]
        if len(set(names)) != len(names):
            raise ValueError("each category once")
        return v


class SkillOut(BaseModel):
    category: str
    certificate: str
    certificate_no: str
    certificate_expires: dt.date | None
    # The certificate the category needs ("" none) and whether this skill satisfies it today.
    required_certificate: str
    valid_today: bool


class LeaveIn(ApiModel):
    start_date: dt.date
    end_date: dt.date
    kind: Literal["休息", "请假", "培训"] = "请假"
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _order(self) -> LeaveIn:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if (self.end_date - self.start_date).days > 366:
            raise ValueError("at most a year at once")
        return self


class LeaveOut(BaseModel):
    id: int
    engineer_id: int
    start_date: dt.date
    end_date: dt.date
    kind: str
    note: str


class LeaveList(BaseModel):
    items: list[LeaveOut]


class ProfileOut(BaseModel):
    engineer_id: int
    # Masked (张*).
    name: str
    staff_no: str | None
    mobile_masked: str
    # False: no profile saved yet (the values shown are the defaults).
    has_profile: bool
    region: str
    base_lat: float | None
    base_lon: float | None
    last_lat: float | None
    last_lon: float | None
    last_seen_at: dt.datetime | None
    load_cap: int
    working_hours: dict[str, list[list[str]]]
    active: bool
    open_orders: int
    version: int
    skills: list[SkillOut]
    # Leave from today on.
    leave: list[LeaveOut] = []


class ProfilePage(BaseModel):
    items: list[ProfileOut]
    total: int
    page: int
    page_size: int


class ShopIn(ApiModel):
    name: str = Field(min_length=1, max_length=64)
    region: str = Field("", max_length=32)
    lat: float | None = _lat()
    lon: float | None = _lon()
    place: Place | None = None
    categories: list[str] = Field(default_factory=list, max_length=30)
    capacity: int = Field(10, ge=0, le=10_000)
    contact_name: str = Field("", max_length=64)
    contact_phone: str = Field("", max_length=32)
    active: bool = True

    @model_validator(mode="after")
    def _pairs(self) -> ShopIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class ShopUpdate(PatchModel):
    NULLABLE = frozenset({"version", "lat", "lon", "place"})

    version: int | None = Field(None, ge=1)
    name: str | None = Field(None, min_length=1, max_length=64)
    region: str | None = Field(None, max_length=32)
    lat: float | None = _lat()
    lon: float | None = _lon()
    place: Place | None = None
    categories: list[str] | None = Field(None, max_length=30)
    capacity: int | None = Field(None, ge=0, le=10_000)
    contact_name: str | None = Field(None, max_length=64)
    contact_phone: str | None = Field(None, max_length=32)
    active: bool | None = None

    @model_validator(mode="after")
    def _pairs(self) -> ShopUpdate:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class ShopOut(BaseModel):
    id: int
    name: str
    region: str
    lat: float | None
    lon: float | None
    categories: list[str]
    capacity: int
    contact_name: str
    contact_phone_masked: str
    active: bool
    version: int


class ShopList(BaseModel):
    items: list[ShopOut]


class PreviewOut(BaseModel):
    """The rules' evaluation now (``callcenter.dispatch.rules``), nothing assigned."""

    order_id: int
    status: str
    category: str
    required_certificate: str
    located: bool
    window: list[dt.datetime] | None
    # Engineers of each candidate id (names masked).
    people: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]
    # The widened search when nobody matched: [{"name", "label", "radius_km", "suggestions", "excluded"}].
    widened: list[dict[str, Any]] | None


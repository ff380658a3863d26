"""Address → coordinates.

The :class:`Geocoder` protocol is async so an online service can stand in; the default,
:class:`CentroidGeocoder`, answers from a bundled table of district centres
(``data/district_centroids.csv``: source and precision in its header) and works offline. An
address whose coordinates were set directly keeps them (:func:`locate`).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from importlib import resources
from typing import Protocol

from callcenter.geo.distance import GeoPoint

# Administrative suffixes dropped when comparing names, longest first: 浦东新区 ~ 浦东,
# 北京市 ~ 北京, 桐庐县 ~ 桐庐, 广东省 ~ 广东. A name is never cut below two characters.
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "新区", "地区", "省", "市", "区", "县", "盟", "旗")
# What some address forms put in the city field of a municipality (北京市 / 市辖区 / 朝阳区).
_MUNICIPALITY_CITY = ("", "市辖区", "县", "市辖县")


def place_key(name: str | None) -> str:
    """A province, city or district name reduced for comparison: whitespace removed, one
    administrative suffix dropped (``"  朝阳区 "`` → ``"朝阳"``). ``""`` for nothing."""
    text = "".join((name or "").split())
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) - len(suffix) >= 2:
            return text[: -len(suffix)]
    return text


class Geocoder(Protocol):
    """Finds coordinates for an address; None when it cannot."""

    async def geocode(self, province: str, city: str, district: str, detail: str = "") -> GeoPoint | None: ...


class CentroidGeocoder:
    """The centre of the address's district from a bundled table (offline, instant).

    ``city_fallback``: answer the city centre when the district is unknown (off by default: a
    city centre is too coarse for a 5 km rule and would pretend a precision it does not have)."""

    def __init__(self, rows: Iterable[tuple[str, str, str, float, float]] | None = None,
                 *, city_fallback: bool = False) -> None:
        self.city_fallback = city_fallback
        self._table: dict[tuple[str, str], GeoPoint] = {}
        for province, city, district, lat, lon in (_bundled_rows() if rows is None else rows):
            self._table[(place_key(city or province), place_key(district))] = GeoPoint(float(lat), float(lon))

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, province: str, city: str, district: str) -> GeoPoint | None:
        """The district's centre, or None when the table does not know the place. A
        municipality may come as (北京市, 北京市 | 市辖区 | "", 朝阳区)."""
        city_text = "".join((city or "").split())
        city_k = place_key(province if city_text in _MUNICIPALITY_CITY else city_text)
        district_k = place_key(district)
        if not city_k:
            return None
        if district_k and (hit := self._table.get((city_k, district_k))) is not None:
            return hit
        return self._table.get((city_k, "")) if self.city_fallback else None

    async def geocode(self, province: str, city: str, district: str, detail: str = "") -> GeoPoint | None:
        return self.lookup(province, city, district)


@functools.cache
def default_geocoder() -> CentroidGeocoder:
    """The bundled table, read once per process."""
    return CentroidGeocoder()


def _bundled_rows() -> list[tuple[str, str, str, float, float]]:
    text = resources.files("callcenter.geo").joinpath("data/district_centroids.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [(r["province"], r["city"], r["district"], float(r["lat"]), float(r["lon"]))
            for r in csv.DictReader(lines)]


async def locate(geocoder: Geocoder, *, lat: float | None, lon: float | None, province: str,
                 city: str, district: str, detail: str = "") -> GeoPoint | None:
    """The address's coordinates: as set directly when both are there, else the geocoder's."""
    if lat is not None and lon is not None:
        return GeoPoint(lat, lon)
    return await geocoder.geocode(province, city, district, detail)

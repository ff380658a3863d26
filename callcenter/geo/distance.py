"""Distances between points on the earth (pure).

Dispatch compares a customer's address with engineers' positions (``callcenter.dispatch``). The
default is the great-circle distance; a road-distance model (from a routing engine's local
table) can stand in for it through :class:`DistanceModel` — it must answer synchronously and
fast, since one decision weighs dozens of candidates within a few milliseconds, and it must never
answer less than the great-circle distance (the loader's bounding box relies on that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

# Mean earth radius (IUGG), km. The spherical model is within 0.5 % of the ellipsoid.
EARTH_RADIUS_KM = 6371.0088
# Kilometres per degree of latitude on that sphere.
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """WGS-84 latitude and longitude in degrees."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise ValueError(f"not a coordinate: {self.lat}, {self.lon}")


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in km (haversine formula; exact on the sphere, stable at short range)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class DistanceModel(Protocol):
    """How far an engineer is from a customer, in km."""

    name: str

    def km(self, a: GeoPoint, b: GeoPoint) -> float: ...


class GreatCircle:
    """The default :class:`DistanceModel`: as the crow flies."""

    name = "great_circle"

    def km(self, a: GeoPoint, b: GeoPoint) -> float:
        return haversine_km(a, b)


GREAT_CIRCLE = GreatCircle()


def bounding_box(centre: GeoPoint, radius_km: float) -> tuple[float, float, float, float]:
    """``(lat_min, lat_max, lon_min, lon_max)`` enclosing every point within ``radius_km``
    (great-circle) of ``centre``: the cheap index range a radius query filters on first. Near the
    poles or across the antimeridian it widens to all longitudes (China needs neither)."""
    dlat = radius_km / KM_PER_DEGREE
    lat_min, lat_max = max(-90.0, centre.lat - dlat), min(90.0, centre.lat + dlat)
    # The widest longitude span is at the latitude furthest from the equator inside the box.
    cos_lat = math.cos(math.radians(max(abs(lat_min), abs(lat_max))))
    if cos_lat <= 1e-9:
        return lat_min, lat_max, -180.0, 180.0
    dlon = radius_km / (KM_PER_DEGREE * cos_lat)
    if dlon >= 180.0 or centre.lon - dlon < -180.0 or centre.lon + dlon > 180.0:
        return lat_min, lat_max, -180.0, 180.0
    return lat_min, lat_max, centre.lon - dlon, centre.lon + dlon

"""Geocoding from the bundled district table and great-circle distances (pure)."""

from __future__ import annotations

import pytest

from callcenter.geo import (
    CentroidGeocoder,
    GeoPoint,
    bounding_box,
    default_geocoder,
    haversine_km,
    locate,
    place_key,
)

CITIES = ("北京市", "上海市", "广州市", "深圳市", "杭州市", "成都市", "武汉市", "南京市")


@pytest.mark.parametrize("name, key", [
    ("朝阳区", "朝阳"), (" 朝阳 ", "朝阳"), ("浦东新区", "浦东"), ("北京市", "北京"), ("桐庐县", "桐庐"),
    ("广东省", "广东"), ("新疆维吾尔自治区", "新疆维吾尔"), ("东区", "东区"), ("", ""), (None, ""),
])
def test_place_key(name, key):
    assert place_key(name) == key


@pytest.mark.parametrize("province, city, district, expected", [
    ("北京市", "北京市", "朝阳区", (39.9219, 116.4436)),
    ("北京", "", "朝阳", (39.9219, 116.4436)),  # municipality without a city
    ("北京市", "市辖区", "东城区", (39.9289, 116.4160)),
    ("上海", "上海", "浦东", (31.2215, 121.5447)),
    ("广东省", "深圳市", "南山区", (22.5330, 113.9304)),
    ("", "广州", "天河区", (23.1247, 113.3613)),
    ("四川省", "成都市", "简阳市", (30.4110, 104.5470)),
    ("江苏省", "南京市", "鼓楼区", (32.0663, 118.7698)),  # not Fuzhou's 鼓楼区
    ("浙江省", "杭州市", "不存在区", None),
    ("福建省", "福州市", "鼓楼区", None),
    ("北京市", "北京市", "", None),  # no district, no city fallback
    ("", "", "朝阳区", None),
])
def test_lookup(province, city, district, expected):
    hit = default_geocoder().lookup(province, city, district)
    assert (None if hit is None else (hit.lat, hit.lon)) == expected


def test_table_covers_the_eight_cities_with_plausible_centres():
    g = CentroidGeocoder(city_fallback=True)
    for city in CITIES:
        centre = g.lookup("", city, "")
        assert centre is not None, city
    # Every district lies within 150 km of its city centre (淳安县 is ~130 km from Hangzhou; a
    # typo in a coordinate would be far off).
    from callcenter.geo.geocoding import _bundled_rows

    rows = _bundled_rows()
    assert len(rows) >= 110
    for province, city, district, lat, lon in rows:
        centre = g.lookup(province, city, "")
        assert haversine_km(centre, GeoPoint(lat, lon)) < 150, (city, district)
    assert g.lookup("北京市", "北京市", "不存在区") == g.lookup("北京市", "北京市", "")


async def test_locate_prefers_coordinates_set_directly():
    g = default_geocoder()
    assert await locate(g, lat=1.5, lon=2.5, province="北京市", city="北京市", district="朝阳区") == GeoPoint(1.5, 2.5)
    assert await locate(g, lat=None, lon=None, province="北京市", city="北京市", district="朝阳区") == GeoPoint(39.9219, 116.4436)
    assert await locate(g, lat=None, lon=None, province="x", city="y", district="z") is None


@pytest.mark.parametrize("a, b, km", [
    ((39.9042, 116.4074), (31.2304, 121.4737), 1067.3),  # Beijing – Shanghai
    ((23.1291, 113.2644), (22.5431, 114.0579), 104.3),  # Guangzhou – Shenzhen
    ((30.0, 120.0), (30.0, 120.0), 0.0),
    ((0.0, 0.0), (0.0, 1.0), 111.195),  # one degree on the equator
])
def test_haversine(a, b, km):
    assert haversine_km(GeoPoint(*a), GeoPoint(*b)) == pytest.approx(km, abs=0.5)


@pytest.mark.parametrize("centre", [(39.9, 116.4), (22.5, 114.0), (45.7, 126.6)])
def test_bounding_box_encloses_the_circle(centre):
    c = GeoPoint(*centre)
    lat0, lat1, lon0, lon1 = bounding_box(c, 5.0)
    import math

    for k in range(72):
        a = math.radians(k * 5)
        # Points at 4.999 km in every direction (small steps along the bearing).
        lat = c.lat + 4.999 * math.cos(a) / 111.195
        lon = c.lon + 4.999 * math.sin(a) / (111.195 * math.cos(math.radians(lat)))
        p = GeoPoint(lat, lon)
        assert haversine_km(c, p) <= 5.0
        assert lat0 <= p.lat <= lat1 and lon0 <= p.lon <= lon1


def test_bad_coordinates():
    with pytest.raises(ValueError):
        GeoPoint(91, 0)

"""Findings 9 and 10 (bad input is a 4xx, never a 500): a deeply nested JSON body (also on the
unauthenticated login), integers beyond 64 bits, a year past 9999, a broken multipart body,
broken, empty, truncated or hugely inflating XLSX uploads — each answered with a clear 4xx."""

from __future__ import annotations

import io
import zipfile

import aiohttp
import pytest
from openpyxl import Workbook

from callcenter.appkeys import AUTH
from tests import apphelpers as h


def _xlsx() -> bytes:
    wb = Workbook()
    wb.active.append(["姓名", "电话"])
    wb.active.append(["张三", "13800138000"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _inflating_xlsx() -> bytes:
    """A real workbook of a few hundred KB whose first cell is a 70 MB string once inflated."""
    src = zipfile.ZipFile(io.BytesIO(_xlsx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename != "xl/sharedStrings.xml":
                z.writestr(info, src.read(info))
        with z.open("xl/sharedStrings.xml", "w") as f:
            f.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>')
            for _ in range(70):
                f.write(b"A" * (1 << 20))
            f.write(b"</t></si><si><t>x</t></si><si><t>y</t></si><si><t>z</t></si></sst>")
    return out.getvalue()


@pytest.fixture
async def admin(pg_url, aiohttp_client):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(pg_url, 1))
    await client.server.app[AUTH].add_user("boss", role="admin", password=h.PASSWORD)
    session = aiohttp.ClientSession(base_url=client.make_url("/"), cookie_jar=aiohttp.CookieJar(unsafe=True))
    assert (await session.post("/api/session", json={"username": "boss", "password": h.PASSWORD})).status == 200
    yield client, session
    await session.close()


async def test_deeply_nested_json_is_422_even_on_the_login(admin) -> None:  # type: ignore[no-untyped-def]
    client, session = admin
    deep = b'{"username":' + b"[" * 100_000 + b"]" * 100_000 + b',"password":"x"}'
    r = await client.post("/api/session", data=deep, headers={"Content-Type": "application/json"})
    assert r.status == 422 and (await r.json())["details"]["field"] == "body"


@pytest.mark.parametrize("path,field", [
    ("/api/notifications?order_id=99999999999999999999", "order_id"),
    ("/api/reports/monthly?month=9999-12", "month"),
])
async def test_numbers_and_years_out_of_range_are_422(admin, path, field) -> None:  # type: ignore[no-untyped-def]
    _, session = admin
    r = await session.get(path)
    assert r.status == 422, await r.text()
    assert (await r.json())["details"]["field"] == field


async def test_a_broken_multipart_body_is_4xx(admin) -> None:  # type: ignore[no-untyped-def]
    _, session = admin
    r = await session.post("/api/imports/customers", data=b"garbage",
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status == 422 and (await r.json())["details"]["field"] == "file"
    # Cut off before its closing boundary: read up to the end (aiohttp is lenient), never a 500.
    r = await session.post("/api/imports/customers",
                           data=b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nab',
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status < 500


@pytest.mark.parametrize("name,content", [
    ("empty", b""), ("garbage", b"PK\x03\x04garbage"), ("truncated", _xlsx()[: len(_xlsx()) // 2]),
    ("text", "姓名,电话\n".encode()), ("inflating", _inflating_xlsx()),
])
async def test_unreadable_xlsx_uploads_are_422(admin, name, content) -> None:  # type: ignore[no-untyped-def]
    _, session = admin
    form = aiohttp.FormData()
    form.add_field("file", content, filename=f"{name}.xlsx", content_type="application/octet-stream")
    r = await session.post("/api/imports/customers", data=form)
    assert r.status == 422, (name, r.status, await r.text())
    assert (await r.json())["details"]["field"] == "file"

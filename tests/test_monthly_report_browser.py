"""The monthly analysis page (SA-DA-006) in a real browser: a supervisor opens 月报 from the
navigation, reads the month's figures and tables, the two charts are drawn (bars with height,
a line with points) and really painted (a screenshot of each chart region is decoded and holds
the series colour, not a blank), the page prints without the navigation, another month is
chosen with the form, and the Excel export downloads and opens."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import pytest
from openpyxl import load_workbook
from playwright.async_api import Page, expect

from callcenter.analysis.charts import PALETTE
from callcenter.appkeys import ENGINE
from tests.orderpages import Centre, log_in, new_context, start_centre
from tests.reportworld import MONTH, seed_month

pytestmark = [pytest.mark.browser]
expect.set_options(timeout=10_000)

# Decodes a PNG in the page itself (no imaging library needed here) and counts, in it, the
# pixels that are not white and those close to the given colour.
_PIXELS = """async ([b64, hex]) => {
  const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
  const bmp = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
  const want = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  let ink = 0, colour = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) ink++;
    if (Math.abs(d[i] - want[0]) < 24 && Math.abs(d[i + 1] - want[1]) < 24 && Math.abs(d[i + 2] - want[2]) < 24) colour++;
  }
  return {ink, colour, total: d.length / 4};
}"""


@pytest.fixture
async def centre(sqlite_url) -> AsyncIterator[Centre]:
    errors: list[str] = []
    async for c in start_centre(sqlite_url, errors):
        await seed_month(c.app[ENGINE])
        yield c
    assert not errors, f"uncaught errors in the pages: {errors}"


async def _painted(page: Page, testid: str, colour: str) -> dict[str, int]:
    png = await page.get_by_test_id(testid).screenshot()
    # Counted on a blank page: our pages' Content-Security-Policy lets no script fetch a data: URL.
    blank = await page.context.new_page()
    try:
        return await blank.evaluate(_PIXELS, [base64.b64encode(png).decode(), colour])
    finally:
        await blank.close()


async def test_a_supervisor_reads_prints_and_exports_the_month(centre: Centre, browser) -> None:  # type: ignore[no-untyped-def]
    context = await new_context(browser, centre)
    page = await log_in(context, centre, "zhousv", "/alerts")
    await page.get_by_test_id("nav-reports").click()
    await page.wait_for_url(f"{centre.url}/reports/monthly")
    # It opens on the last complete month; choose November 2026.
    await page.get_by_test_id("month-input").fill(MONTH)
    await page.get_by_test_id("month-submit").click()
    await page.wait_for_url(f"{centre.url}/reports/monthly?month={MONTH}")
    await expect(page.get_by_test_id("nav-reports")).to_have_attribute("aria-current", "page")
    report = page.get_by_test_id("report")
    await expect(report).to_have_attribute("data-month", MONTH)
    await expect(report.locator("h1")).to_contain_text("售后数据统计分析表")
    await expect(page.get_by_test_id("report-period")).to_contain_text("2026-11-01 至 2026-11-30")

    def figure(item: str):  # type: ignore[no-untyped-def]
        return page.locator(f'[data-testid="figure-row"][data-item="{item}"] [data-testid="figure-value"]')

    for item, value in (("平均响应时长", "62.0"), ("工单完成率", "66.7%"), ("一次修复率", "66.7%"), ("返修率", "40.0%"),
                        ("平均满意度（满分5分）", "3.58"), ("回访满意率", "50.0%"), ("单均配件成本", "38.00"),
                        ("单均上门成本", "68.00"), ("单均投诉处理成本", "10.00")):
        await expect(figure(item)).to_have_text(value)
    await expect(page.get_by_test_id("top-problem")).to_have_count(3)
    await expect(page.get_by_test_id("top-problem").first).to_contain_text("不制冷/制冷差")
    await expect(page.get_by_test_id("table-engineer")).to_contain_text("王** GY2026101")
    await expect(page.get_by_test_id("table-region")).to_contain_text("深圳市")
    await expect(page.get_by_test_id("table-failure")).to_contain_text("KFR-35GW/BP3DN8Y")
    assert "王建国" not in await page.content()

    # The bars: one per brand and quarter; those with repairs have height, and are painted.
    bars = page.locator('[data-testid="chart-brands"] rect.bar')
    await expect(bars).to_have_count(2 * 4)
    drawn = await bars.evaluate_all(
        "els => els.map(e => [e.dataset.series, e.dataset.category, +e.dataset.value, e.getBBox().height])")
    heights = {(s, q): (v, h) for s, q, v, h in drawn}
    assert heights[("格力", "2026Q4")][0] == 3 and heights[("格力", "2026Q4")][1] > 50
    assert heights[("海尔", "2026Q3")][0] == 2 and heights[("海尔", "2026Q3")][1] > 30
    assert all(h == 0 for v, h in heights.values() if v == 0)
    painted = await _painted(page, "chart-brands", PALETTE[0])
    assert painted["colour"] > 500, painted  # 海尔's bars, in the first colour
    assert painted["ink"] > painted["colour"] and painted["ink"] < painted["total"]

    # The line: twelve months, a point for each month with repairs (August to November), joined.
    points = page.locator('[data-testid="chart-repair-time"] circle.point')
    await expect(points).to_have_count(4)
    await expect(page.locator('[data-testid="chart-repair-time"] polyline.line')).to_have_count(1)
    await expect(page.locator('[data-testid="chart-repair-time"] circle.point[data-category="2026-11"]')).to_have_attribute(
        "data-value", "103.5")
    painted = await _painted(page, "chart-repair-time", PALETTE[0])
    assert painted["colour"] > 30 and painted["ink"] < painted["total"], painted

    # Printing: no navigation or buttons, the form and the charts stay.
    await page.emulate_media(media="print")
    await expect(page.locator(".topbar")).to_be_hidden()
    await expect(page.get_by_test_id("print")).to_be_hidden()
    await expect(page.get_by_test_id("summary-table")).to_be_visible()
    await expect(page.get_by_test_id("chart-brands")).to_be_visible()
    pdf = await page.pdf(format="A4", landscape=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    await page.emulate_media(media="screen")

    # The Excel export.
    async with page.expect_download() as dl:
        await page.get_by_test_id("export-xlsx").click()
    download = await dl.value
    assert download.suggested_filename == f"SA-DA-006_{MONTH}.xlsx"
    wb = load_workbook(io.BytesIO((await download.path()).read_bytes()))  # type: ignore[union-attr]
    assert wb.sheetnames[0] == "汇总"
    await context.close()

"""The survey and complaint pages in a real browser (Debian's chromium) against the whole
application: the survey agent picks a completed order from 待回访工单, the form refuses a missing
score, the saved SA-CS-005 shows its number and low scores and the order leaves the list; the
supervisor's 投诉跟进 page, already open, gets the new complaint live, takes it and resolves it
through the reason dialog; both see their nav entry. Every screen is checked for unmasked numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from callcenter.appkeys import AUTH, SESSIONMAKER
from callcenter.db.models import User, WorkOrder
from callcenter.db.survey import ComplaintFollowUp
from tests.orderpages import (
    PASSWORD,
    Centre,
    assert_no_full_number,
    log_in,
    new_context,
    start_centre,
)

pytestmark = [pytest.mark.browser]
expect.set_options(timeout=10_000)


@pytest.fixture
async def centre(sqlite_url) -> AsyncIterator[Centre]:
    errors: list[str] = []
    async for c in start_centre(sqlite_url, errors):
        yield c
    assert not errors, f"uncaught errors in the pages: {errors}"


async def _completed_order(centre: Centre) -> int:
    """张三's fridge repaired by 赵工程 two hours ago (已完成), and a survey agent."""
    app = centre.app
    u = await app[AUTH].add_user("zhouhf", role="survey", password=PASSWORD, display_name="周回访")
    centre.users["zhouhf"] = u.id
    now = dt.datetime.now(dt.UTC)
    async with app[SESSIONMAKER].begin() as s:
        order = WorkOrder(number="WO20261123-901", customer_id=centre.customer_id, engineer_id=centre.users["zhaogc"],
                          status="已完成", service_type="上门维修", product_model="BCD-470WDPG",
                          created_at=now - dt.timedelta(days=1), completed_at=now - dt.timedelta(hours=2),
                          service_finished_at=now - dt.timedelta(hours=2), signed_at=now - dt.timedelta(hours=2))
        s.add(order)
        await s.flush()
        return order.id


async def test_a_phone_survey_with_a_low_score_reaches_the_supervisor(centre: Centre, browser) -> None:  # type: ignore[no-untyped-def]
    order_id = await _completed_order(centre)

    # The supervisor's follow-ups page is open before the survey is taken.
    sup_ctx = await new_context(browser, centre)
    sup = await log_in(sup_ctx, centre, "zhousv", "/complaints")
    await expect(sup.get_by_test_id("nav-complaints")).to_have_attribute("aria-current", "page")
    await expect(sup.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    await expect(sup.get_by_test_id("complaints-empty")).to_be_visible()

    ctx = await new_context(browser, centre)
    page = await log_in(ctx, centre, "zhouhf", "/survey")
    await expect(page.get_by_test_id("nav-survey")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_test_id("nav-complaints")).to_have_count(0)
    row = page.locator(f'[data-testid="due-row"][data-id="{order_id}"]')
    await expect(row.get_by_test_id("due-customer")).to_have_text("张*")
    await expect(row.get_by_test_id("due-engineer")).to_contain_text("GY2024001")
    await expect(row.get_by_test_id("due-deadline")).to_contain_text("剩")
    await assert_no_full_number(page)
    await row.click()
    await expect(page.get_by_test_id("survey-order-number")).to_have_text("WO20261123-901")
    await expect(page.get_by_test_id("survey-order-customer")).to_have_text("张*")

    # Every score is required: the first missing one is named.
    scores = {"response_speed": 5, "professionalism": 4, "attitude": 2, "resolution": 4, "overall": 3}
    for key, n in scores.items():
        await page.get_by_test_id(f"score-{key}").get_by_text(str(n), exact=True).click()
    await page.get_by_test_id("survey-submit").click()
    await expect(page.locator('[data-error-for="answers.recommend"]')).to_have_text("请评分（1–5）")
    await page.get_by_test_id("score-recommend").get_by_text("3", exact=True).click()
    await page.get_by_test_id("survey-comment").fill("师傅态度不耐烦，要求回电 13912345678")
    await page.get_by_test_id("survey-action").fill("主管致歉")
    await page.get_by_test_id("survey-submit").click()

    saved = page.get_by_test_id("survey-saved")
    await expect(saved.get_by_test_id("survey-result-number")).to_have_text(re.compile(r"^CS\d{8}-\d{3}$"))
    await expect(saved.get_by_test_id("survey-result-low")).to_have_text("态度友好度、整体体验、推荐意愿")
    await expect(saved.get_by_test_id("survey-result-average")).to_have_text("3.50")
    await expect(saved.get_by_test_id("survey-result-complaint")).to_contain_text("态度差 · 待接手")
    await expect(page.get_by_test_id("survey-form")).to_be_hidden()
    await expect(page.get_by_test_id("survey-order-status")).to_have_text("已回访")
    await expect(page.get_by_test_id("due-empty")).to_be_visible()
    await assert_no_full_number(page)

    # The supervisor's page gets it live, takes it, then resolves it with what was done.
    complaint = sup.locator('[data-testid="complaint-row"]').first
    await expect(complaint).to_have_attribute("data-number", "WO20261123-901")
    await expect(complaint.get_by_test_id("complaint-class")).to_have_text("态度差")
    await expect(complaint.get_by_test_id("complaint-status")).to_have_text("待接手")
    await expect(complaint.get_by_test_id("complaint-take-by")).to_contain_text("剩")
    await expect(complaint.get_by_test_id("complaint-customer")).to_have_text("张*")
    await expect(sup.get_by_test_id("toast")).to_contain_text("新投诉 WO20261123-901")
    await complaint.get_by_test_id("complaint-take").click()
    await expect(complaint.get_by_test_id("complaint-status")).to_have_text("跟进中")
    await expect(complaint.get_by_test_id("complaint-owner-name")).to_have_text("周**")
    await expect(complaint.get_by_test_id("complaint-take-by")).to_contain_text("已完成")
    await complaint.get_by_test_id("complaint-resolve").click()
    await sup.get_by_test_id("reason-text").fill("已电话致歉，赠送 50 元代金券")
    await sup.get_by_test_id("reason-submit").click()
    await expect(sup.get_by_test_id("complaints-empty")).to_be_visible()
    await sup.get_by_test_id("complaint-status-filter").select_option("resolved")
    await expect(sup.locator('[data-testid="complaint-row"]').first.get_by_test_id("complaint-text")).to_contain_text(
        "已电话致歉")
    await assert_no_full_number(sup)

    async with centre.app[SESSIONMAKER]() as s:
        order = await s.get(WorkOrder, order_id)
        c = (await s.execute(select(ComplaintFollowUp))).scalar_one()
        owner = await s.get(User, c.owner_id)
    assert order is not None and owner is not None
    assert order.status == "已回访" and order.escalated_at is not None and c.status == "resolved"
    assert owner.username == "zhousv"
    await ctx.close()
    await sup_ctx.close()

"""The work-order pages in a real browser (Debian's chromium), against the whole application and
the AMI simulator: a call pops on the agent's desk → 新建受理 pre-filled from the call, read back,
saved with its work order → the dispatcher assigns an engineer → the engineer, on a phone-sized
screen, accepts, books the visit, starts the service, fills the on-site record with a part from
the van (a 409 for stock the van lacks, a 422 for a bad quantity, both shown by the form), gets
the customer's drawn signature → 已完成; the order search finds it; the alerts page shows an SLA
alert pushed live. Every screen is checked for what it shows — masked name and phone, warranty,
totals, timeline — and for unmasked mobile numbers.

Every step waits for a condition on the page (Playwright's ``expect``) or in the app
(``wait_for``); nothing sleeps and hopes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from playwright.async_api import Page, expect

from callcenter.appkeys import SESSIONMAKER, SETTINGS, SLA
from callcenter.db.models import WorkOrder
from tests.orderpages import (
    CALLER, MASKED_CALLER, PASSWORD, Centre, assert_no_full_number, expect_error_shown, log_in, new_context,
    start_centre,
)

pytestmark = [pytest.mark.browser]
expect.set_options(timeout=10_000)

PROBLEM = "冰箱冷藏室门关不严，门封条脱落，已自行清洁无效 <b>请带门封条</b>"


@pytest.fixture
async def centre(sqlite_url) -> AsyncIterator[Centre]:
    errors: list[str] = []
    async for c in start_centre(sqlite_url, errors):
        yield c
    assert not errors, f"uncaught errors in the pages: {errors}"


async def _choose(select, text: str) -> None:  # type: ignore[no-untyped-def]
    """Select the option of ``select`` whose label contains ``text``."""
    value = await select.locator("option", has_text=text).first.get_attribute("value")
    await select.select_option(value)


async def _intake_from_the_pop(centre: Centre, browser) -> tuple[Page, str]:  # type: ignore[no-untyped-def]
    """The agent answers 张三's call and takes the intake from the pop; returns the order page
    the intake led to and the call's Linkedid."""
    context = await new_context(browser, centre)
    desk = await log_in(context, centre, "wangxm", "/")
    await expect(desk.get_by_test_id("nav-intake")).to_have_text("受理")
    await expect(desk.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    linkedid = await centre.sim.place_call(caller=CALLER, answer_after=2.0, talk=60.0)
    card = desk.locator(f'[data-testid="pop-card"][data-call-id="{linkedid}"]')
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    async with context.expect_page() as opened:
        await card.get_by_test_id("new-intake-btn").click()
    page = await opened.value
    await page.wait_for_load_state()
    assert f"linkedid={linkedid}" in page.url and f"customer_id={centre.customer_id}" in page.url

    # Pre-filled from the call: the customer and the number masked, the call, the appliances.
    await expect(page.get_by_test_id("intake-customer-name")).to_have_text("张*")
    phone = page.get_by_test_id("intake-phone")
    await expect(phone.locator("option:checked")).to_contain_text(MASKED_CALLER)
    await expect(phone.locator("option:checked")).to_contain_text("本次来电")
    await expect(page.get_by_test_id("intake-call")).to_contain_text("aftersales")
    await expect(page.get_by_test_id("intake-channel")).to_have_value("电话")
    await _choose(page.get_by_test_id("intake-appliance"), "空调")
    await expect(page.get_by_test_id("intake-warranty")).to_have_text("保内")
    await expect(page.get_by_test_id("intake-warranty-end")).to_contain_text("保修至")
    await _choose(page.get_by_test_id("intake-appliance"), "BCD-470WDPG")
    await expect(page.get_by_test_id("intake-warranty")).to_have_text("保外")
    await expect(page.get_by_test_id("intake-model")).to_have_value("BCD-470WDPG")
    await expect(page.get_by_test_id("intake-serial")).to_have_value("HE2019BX0007")
    await assert_no_full_number(page)

    # The problem is required before the read-back.
    await page.get_by_test_id("intake-next").click()
    await expect(page.locator('[data-error-for="problem"]')).to_have_text("必填")
    await page.get_by_test_id("intake-problem").fill(PROBLEM)
    await page.get_by_test_id("intake-urgency").get_by_label("紧急").check()
    await page.get_by_test_id("intake-mood").get_by_label("焦虑").check()
    await page.get_by_test_id("intake-remarks").fill("客户下午在家")
    await expect(page.get_by_test_id("intake-create-order")).to_be_checked()
    await page.get_by_test_id("intake-service-type").select_option("上门维修")
    await expect(page.get_by_test_id("intake-address").locator("option:checked")).to_have_text("广东省深圳市南山区")

    # The read-back: the key facts, and no saving before the agent ticks that they were read.
    await page.get_by_test_id("intake-next").click()
    readback = page.get_by_test_id("intake-readback")
    await expect(readback).to_contain_text("请向客户复述关键信息")
    await expect(readback.get_by_test_id("readback-customer")).to_have_text("张*")
    await expect(readback.get_by_test_id("readback-phone")).to_contain_text(MASKED_CALLER)
    await expect(readback.get_by_test_id("readback-product")).to_have_text("冰箱 海尔 BCD-470WDPG")
    await expect(readback.get_by_test_id("readback-warranty")).to_have_text("保外")
    await expect(readback.get_by_test_id("readback-request")).to_have_text("维修 · 紧急")
    await expect(readback.get_by_test_id("readback-problem")).to_have_text(PROBLEM)
    await expect(page.get_by_test_id("intake-save")).to_be_disabled()
    await page.get_by_test_id("intake-readback-ok").check()
    await page.get_by_test_id("intake-save").click()
    await page.wait_for_url(re.compile(r"/orders/\d+$"))
    return page, linkedid


async def _check_new_order(page: Page) -> str:
    """The order page after the intake: every SA-WO-002 field there, masked. Returns the number."""
    number = page.get_by_test_id("order-number")
    await expect(number).to_have_text(re.compile(r"^WO\d{8}-\d{3}$"))
    await expect(page.get_by_test_id("order-status")).to_have_text("待处理")
    await expect(page.get_by_test_id("order-urgency")).to_have_text("紧急")
    await expect(page.get_by_test_id("order-warranty")).to_have_text("保外")
    await expect(page.get_by_test_id("order-intake-number")).to_have_text(re.compile(r"^CR\d{8}-\d{3}$"))
    await expect(page.get_by_test_id("order-service-type")).to_have_text("上门维修")
    await expect(page.get_by_test_id("order-product")).to_have_text("冰箱 海尔 BCD-470WDPG")
    await expect(page.get_by_test_id("order-serial")).to_have_text("HE2019BX0007")
    # Typed by a person: text, never markup.
    await expect(page.get_by_test_id("order-problem")).to_have_text(PROBLEM)
    await expect(page.get_by_test_id("order-facts").locator("b")).to_have_count(0)
    await expect(page.get_by_test_id("customer-name")).to_have_text("张*")
    await expect(page.get_by_test_id("customer-phone")).to_have_text(MASKED_CALLER)
    await expect(page.get_by_test_id("customer-address")).to_have_text("广东省深圳市南山区")
    await expect(page.get_by_test_id("intake-mood")).to_have_text("焦虑")
    sla = page.get_by_test_id("order-sla")
    await expect(sla.locator('[data-testid="sla-row"][data-clock="plan"]')).to_contain_text("进行中")
    await expect(page.locator('[data-testid="timeline-event"][data-action="created"]')).to_have_count(1)
    await assert_no_full_number(page)
    return await number.inner_text()


async def test_from_the_pop_to_the_signed_on_site_record(centre: Centre, browser) -> None:  # type: ignore[no-untyped-def]
    agent_page, linkedid = await _intake_from_the_pop(centre, browser)
    number = await _check_new_order(agent_page)
    order_path = agent_page.url.removeprefix(centre.url)
    order_id = int(order_path.rsplit("/", 1)[1])
    async with centre.app[SESSIONMAKER]() as s:
        order = await s.get(WorkOrder, order_id)
        assert order is not None and order.call_linkedid == linkedid

    # The dispatcher assigns the engineer from the order page.
    dispatcher = await log_in(await new_context(browser, centre), centre, "lidd", order_path)
    await expect(dispatcher.get_by_test_id("nav-alerts")).to_have_text("预警")
    await expect(dispatcher.get_by_test_id("order-status")).to_have_text("待处理")
    await _choose(dispatcher.get_by_test_id("assign-engineer"), "GY2024001")
    await dispatcher.get_by_test_id("assign-note").fill("就近派单")
    await dispatcher.get_by_test_id("assign-submit").click()
    await expect(dispatcher.get_by_test_id("order-status")).to_have_text("已派单")
    await expect(dispatcher.get_by_test_id("order-engineer")).to_contain_text("GY2024001")
    await expect(dispatcher.get_by_test_id("order-engineer")).to_contain_text("赵*")
    assigned = dispatcher.locator('[data-testid="timeline-event"][data-to="已派单"]')
    await expect(assigned).to_contain_text("待处理 → 已派单")
    await expect(assigned).to_contain_text("李*")
    await assert_no_full_number(dispatcher)

    # 查看: the full name, with a reason (too short → the API's 422 shown in the dialog).
    await dispatcher.get_by_test_id("customer-name-reveal").click()
    dialog = dispatcher.get_by_test_id("reason-dialog")
    await dialog.get_by_test_id("reason-text").fill("核对")
    await dialog.get_by_test_id("reason-submit").click()
    await expect_error_shown(dialog.get_by_test_id("reason-error"), "至少 4 个字符")
    await dialog.get_by_test_id("reason-text").fill("客户来电核对身份")
    await dialog.get_by_test_id("reason-submit").click()
    await expect(dialog).to_be_hidden()
    await expect(dispatcher.get_by_test_id("customer-name")).to_have_text("张三")
    await expect(dispatcher.get_by_test_id("customer-name-reveal")).to_have_count(0)

    # The engineer, on a phone.
    phone = await log_in(await new_context(browser, centre, phone=True), centre, "zhaogc", "/m/orders")
    await expect(phone.get_by_test_id("nav-mobile")).to_have_text("我的工单")
    await expect(phone.get_by_test_id("nav-orders")).to_have_count(0)
    card = phone.locator(f'[data-testid="m-order-card"][data-number="{number}"]')
    await expect(card).to_contain_text("已派单")
    await expect(card).to_contain_text("张*")
    await assert_no_full_number(phone)
    await card.click()
    await phone.wait_for_url(f"{centre.url}/m/orders/{order_id}")
    await expect(phone.get_by_test_id("order-number")).to_have_text(number)
    await expect(phone.get_by_test_id("customer-phone")).to_have_text(MASKED_CALLER)
    await phone.get_by_test_id("m-accept").click()
    await expect(phone.get_by_test_id("m-accept")).to_have_count(0)
    await phone.get_by_test_id("m-contacted").click()
    await expect(phone.get_by_test_id("m-contacted")).to_have_text("再次联系客户")

    # The visit: booked with the customer on the phone (confirmed at once) → 已预约.
    form = phone.get_by_test_id("appointment-form")
    await form.get_by_test_id("ap-day").fill(_tomorrow(centre))
    await form.get_by_test_id("ap-from").select_option("14")
    await form.get_by_test_id("ap-to").select_option("16")
    await form.get_by_test_id("ap-source").select_option("客户意愿")
    await form.get_by_test_id("ap-content").fill("更换冷藏室门封条")
    await form.get_by_test_id("ap-prepare").fill("清空冷藏室门架")
    await form.get_by_test_id("ap-confirmed").check()
    await form.get_by_test_id("ap-submit").click()
    await expect(phone.get_by_test_id("order-status")).to_have_text("已预约")
    appointment = phone.get_by_test_id("appointment")
    await expect(appointment.get_by_test_id("appointment-window")).to_contain_text("14:00–16:00")
    await expect(appointment.get_by_test_id("appointment-status")).to_have_text("客户已确认")
    await expect(appointment.get_by_test_id("appointment-fee-notes")).to_contain_text("保修")

    await phone.get_by_test_id("transition-服务中").click()
    await expect(phone.get_by_test_id("order-status")).to_have_text("服务中")
    await phone.get_by_test_id("onsite-start").click()
    record = phone.get_by_test_id("onsite-form")
    await record.get_by_test_id("os-fault_observed").fill("冷藏室门封条下沿脱落，门缝可插入 A4 纸")
    await record.get_by_test_id("os-root_cause").fill("门封条老化变形，磁条失磁")
    await record.get_by_test_id("os-solution").fill("更换门封条")
    await record.get_by_test_id("os-test_result").fill("更换后门缝夹纸无法抽出，冷藏室 30 分钟降至 5 °C")
    await record.get_by_test_id("os-customer_feedback").fill("满意")
    await _choose(record.get_by_test_id("os-visit"), "上门检测")
    await record.get_by_test_id("os-labour-item").get_by_role("checkbox").check()
    await record.get_by_test_id("os-save").click()
    totals = phone.get_by_test_id("onsite-totals")
    await expect(totals.get_by_test_id("total-visit")).to_have_text("¥50.00")
    await expect(totals.get_by_test_id("total-labour")).to_have_text("¥60.00")
    await expect(totals.get_by_test_id("total-fen")).to_have_text("¥110.00")

    # Parts from the van: more than it holds is a 409, a bad quantity a 422 — both shown.
    parts = phone.get_by_test_id("part-form")
    await _choose(parts.get_by_test_id("part-select"), "赵工车载库")
    await parts.get_by_test_id("part-quantity").fill("5")
    await parts.get_by_test_id("part-add").click()
    await expect_error_shown(parts.get_by_test_id("part-error"), "库存不足")
    await expect(parts.get_by_test_id("part-line")).to_have_count(0)
    await parts.get_by_test_id("part-quantity").fill("0")
    await parts.get_by_test_id("part-add").click()
    await expect_error_shown(parts.locator('[data-error-for="quantity"]'), "不能小于 1")
    await parts.get_by_test_id("part-quantity").fill("1")
    await parts.get_by_test_id("part-add").click()
    await expect(parts.get_by_test_id("part-line")).to_have_count(1)
    await expect(parts.get_by_test_id("part-line")).to_contain_text("门封条")
    await expect(totals.get_by_test_id("total-parts")).to_have_text("¥20.00")
    await expect(totals.get_by_test_id("total-fen")).to_have_text("¥130.00")
    await expect(parts.get_by_test_id("part-select").locator("option", has_text="赵工车载库")).to_contain_text("库存 1")

    # The customer confirms and signs on the screen (a drawn signature).
    sign = phone.get_by_test_id("sign-form")
    await sign.get_by_test_id("sign-mode-drawn").check()
    pad = sign.get_by_test_id("sign-pad")
    await pad.scroll_into_view_if_needed()
    box = await pad.bounding_box()
    assert box is not None
    await phone.mouse.move(box["x"] + 20, box["y"] + 40)
    await phone.mouse.down()
    for i in range(1, 12):
        await phone.mouse.move(box["x"] + 20 + i * 20, box["y"] + 40 + (i % 3) * 25)
    await phone.mouse.up()
    await sign.get_by_test_id("sign-submit").click()
    await expect(sign.locator('[data-error-for="customer_confirmed"]')).to_be_visible()
    await sign.get_by_test_id("sign-confirmed").check()
    await sign.get_by_test_id("sign-submit").click()
    signed = phone.get_by_test_id("onsite-record")
    await expect(signed.get_by_test_id("onsite-signed-at")).not_to_have_text("—")
    await expect(signed.get_by_test_id("onsite-customer-signature")).to_have_text("手写签名")
    await expect(signed.get_by_test_id("onsite-cause")).to_have_text("门封条老化变形，磁条失磁")
    await expect(signed.get_by_test_id("total-fen")).to_have_text("¥130.00")

    await phone.get_by_test_id("transition-已完成").click()
    await expect(phone.get_by_test_id("order-status")).to_have_text("已完成")
    await assert_no_full_number(phone)

    # The dispatcher's page still shows 已派单: cancelling from it is refused (409) and said so.
    await expect(dispatcher.get_by_test_id("order-status")).to_have_text("已派单")
    await dispatcher.get_by_test_id("transition-已取消").click()
    await dialog.get_by_test_id("reason-text").fill("客户改约")
    await dialog.get_by_test_id("reason-submit").click()
    await expect_error_shown(dialog.get_by_test_id("reason-form-error"), "已被他人修改|不能")
    await expect(dispatcher.get_by_test_id("order-status")).to_have_text("已完成")
    await dialog.get_by_test_id("reason-cancel").click()
    await expect(dialog).to_be_hidden()

    # Back on the desk: the timeline tells the whole story; the order search finds it.
    await agent_page.reload()
    await expect(agent_page.get_by_test_id("order-status")).to_have_text("已完成")
    changes = agent_page.get_by_test_id("timeline-change")
    for step in ("待处理 → 已派单", "已派单 → 已预约", "已预约 → 服务中", "服务中 → 已完成"):
        await expect(changes.filter(has_text=step)).to_have_count(1)
    await expect(agent_page.get_by_test_id("onsite-row-total")).to_have_text("¥130.00")
    await assert_no_full_number(agent_page)

    await agent_page.get_by_test_id("nav-orders").click()
    await agent_page.wait_for_url(f"{centre.url}/orders")
    await agent_page.get_by_test_id("search-phone").fill(CALLER)
    await agent_page.get_by_test_id("search-status").select_option("已完成")
    await agent_page.get_by_test_id("search-submit").click()
    row = agent_page.locator(f'[data-testid="order-row"][data-number="{number}"]')
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("order-customer")).to_have_text("张*")
    await expect(row.get_by_test_id("order-phone")).to_have_text(MASKED_CALLER)
    await expect(agent_page.get_by_test_id("result-count")).to_have_text("共 1 条")
    assert "phone=" not in agent_page.url
    await assert_no_full_number(agent_page)


def _tomorrow(centre: Centre) -> str:
    return (dt.datetime.now(centre.app[SETTINGS].tz) + dt.timedelta(days=1)).date().isoformat()


async def test_alerts_page_shows_an_alert_pushed_live(centre: Centre, browser) -> None:  # type: ignore[no-untyped-def]
    """A critical order nobody dispatched for 20 minutes: the next SLA pass raises its alerts, and
    the supervisor's open alerts page shows them without a reload."""
    created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    async with centre.app[SESSIONMAKER].begin() as s:
        order = WorkOrder(number="WO20261123-901", customer_id=centre.customer_id, service_type="上门维修",
                          status="待处理", urgency="特急", problem="燃气味", created_at=created)
        s.add(order)
        await s.flush()
        order_id = order.id
    page = await log_in(await new_context(browser, centre), centre, "zhousv", "/alerts")
    await expect(page.get_by_test_id("nav-alerts")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    await expect(page.get_by_test_id("alerts-empty")).to_be_visible()

    await centre.app[SLA].run_pass()

    rows = page.locator('[data-testid="alert-row"][data-number="WO20261123-901"]')
    plan = rows.and_(page.locator('[data-clock="plan"][data-level="breach"]'))
    await expect(plan).to_have_count(1)
    await expect(plan.get_by_test_id("alert-clock")).to_have_text("方案答复")
    await expect(plan.get_by_test_id("alert-level")).to_have_text("超时")
    await expect(plan.get_by_test_id("alert-urgency")).to_have_text("特急")
    await expect(plan.get_by_test_id("alert-overdue")).to_contain_text("超")
    dispatch = rows.and_(page.locator('[data-clock="dispatch"][data-level="breach"]'))
    await expect(dispatch).to_have_count(1)
    await expect(page.get_by_test_id("toast")).to_contain_text("WO20261123-901")
    # What arrived live is what the list says after a reload.
    live = await rows.count()
    await page.reload()
    await expect(rows).to_have_count(live)
    await expect(plan.get_by_test_id("alert-order")).to_have_attribute("href", f"/orders/{order_id}")
    await assert_no_full_number(page)


async def test_intake_without_a_call_finds_the_customer_and_shows_the_api_422(  # type: ignore[no-untyped-def]
        centre: Centre, browser) -> None:
    """From the 受理 menu: the customer found by phone; a new appliance whose warranty months the
    API refuses comes back to the form with the reason next to the field; corrected, it saves
    without a work order and shows the intake number."""
    page = await log_in(await new_context(browser, centre), centre, "wangxm", "/intake")
    await page.get_by_test_id("intake-find-phone").fill("+86 138 0013 8000")
    await page.get_by_test_id("intake-find-submit").click()
    row = page.get_by_test_id("intake-find-row")
    await expect(row).to_contain_text("张*")
    await expect(row).to_contain_text(MASKED_CALLER)
    await expect(page.get_by_test_id("intake-find-phone")).to_have_value("")
    await row.get_by_role("button", name="选择").click()
    await expect(page.get_by_test_id("intake-customer-name")).to_have_text("张*")
    await expect(page.get_by_test_id("intake-call")).to_have_text("")

    await _choose(page.get_by_test_id("intake-appliance"), "新家电")
    await page.get_by_test_id("intake-category").fill("洗衣机")
    await page.get_by_test_id("intake-brand").fill("小天鹅")
    await page.get_by_test_id("intake-model").fill("TG100V120WD")
    await page.get_by_test_id("intake-purchase-date").fill("2026-01-10")
    await page.get_by_test_id("intake-warranty-months").fill("240")
    await expect(page.get_by_test_id("intake-warranty")).to_have_text("保内")
    await page.get_by_test_id("intake-request-type").select_option("咨询")
    await page.get_by_test_id("intake-problem").fill("咨询滚筒自清洁的用法")
    await page.get_by_test_id("intake-create-order").uncheck()
    await page.get_by_test_id("intake-next").click()
    await expect(page.get_by_test_id("intake-readback").get_by_test_id("readback-product")).to_have_text(
        "洗衣机 小天鹅 TG100V120WD")
    await page.get_by_test_id("intake-readback-ok").check()
    await page.get_by_test_id("intake-save").click()
    await expect_error_shown(page.locator('[data-error-for="warranty_months"]'), "不能大于 120")
    await expect(page.get_by_test_id("intake-readback")).to_be_hidden()
    await expect(page.get_by_test_id("intake-warranty-months")).to_have_attribute("aria-invalid", "true")

    await page.get_by_test_id("intake-warranty-months").fill("")
    await expect(page.get_by_test_id("intake-warranty")).to_have_text("待定")
    await page.get_by_test_id("intake-next").click()
    await page.get_by_test_id("intake-readback-ok").check()
    await page.get_by_test_id("intake-save").click()
    await expect(page.get_by_test_id("intake-number")).to_have_text(re.compile(r"^CR\d{8}-\d{3}$"))
    await assert_no_full_number(page)


# Who may open which page, and where the others are sent: (path, {username: status or redirect}).
PAGES = [
    ("/intake", {"wangxm": 200, "lidd": 403, "zhaogc": 403, "zhousv": 200}),
    ("/orders", {"wangxm": 200, "lidd": 200, "zhaogc": "/m/orders", "zhousv": 200}),
    ("/orders/1", {"wangxm": 200, "lidd": 200, "zhaogc": "/m/orders/1", "zhousv": 200}),
    ("/m/orders", {"wangxm": 200, "lidd": 200, "zhaogc": 200, "zhousv": 200}),
    ("/alerts", {"wangxm": 403, "lidd": 200, "zhaogc": 403, "zhousv": 200}),
    ("/dispatch", {"wangxm": 403, "lidd": 200, "zhaogc": 403, "zhousv": 200}),
]
NAV = {"wangxm": ["坐席台", "受理", "工单"], "lidd": ["工单", "派单台", "预警"], "zhaogc": ["我的工单"],
       "zhousv": ["坐席台", "受理", "工单", "派单台", "预警", "监控看板", "回访", "投诉跟进", "月报", "外呼看板"]}


async def test_pages_by_role_and_login_redirect(centre: Centre) -> None:
    """The pages only decide who may open them (the data is the API's to guard); a visitor who
    is not logged in goes to the login page and comes back."""
    async with aiohttp.ClientSession() as anonymous:
        r = await anonymous.get(f"{centre.url}/orders?status=待处理", allow_redirects=False)
        assert r.status == 302
        location = urlsplit(r.headers["Location"])
        assert location.path == "/login"
        assert parse_qs(location.query) == {"next": ["/orders?status=%E5%BE%85%E5%A4%84%E7%90%86"]}
        r = await anonymous.get(f"{centre.url}/orders/abc", allow_redirects=False)
        assert r.status == 302
    for username, nav in NAV.items():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            r = await s.post(f"{centre.url}/api/session", json={"username": username, "password": PASSWORD})
            assert r.status == 200
            for path, expected in PAGES:
                r = await s.get(f"{centre.url}{path}", allow_redirects=False)
                want = expected[username]
                if isinstance(want, str):
                    assert (r.status, r.headers.get("Location")) == (302, want), (username, path)
                else:
                    assert r.status == want, (username, path)
                if r.status == 200:
                    html = await r.text()
                    assert re.findall(r'data-testid="nav-\w+"[^>]*>([^<]+)<', html) == nav, (username, path)
            r = await s.get(f"{centre.url}/orders/0x1", allow_redirects=False)
            assert r.status == 404

"""The engineer's phone (390×844) in a real browser, against the whole application: an order
dispatched to them appears on 我的工单 live (websocket ``order.assigned``) with the 15-minute
countdown; refusing needs a reason (and a note for 其他) and takes the order away; accepting
opens the order with visit slots from the engineer's calendar (their booked visit left out),
the engineer edits and sends 2–3, the customer's choice is confirmed → 已预约.

Dispatches go through the dispatcher's API (``POST /api/orders/{id}/dispatch``); every step
waits for the page (Playwright's ``expect``) or the database (``wait_for``), never a sleep.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER, SETTINGS
from callcenter.db.models import Address, Appointment, WorkOrder
from callcenter.db.workforce import DispatchRefusal
from tests.orderpages import PASSWORD, PHONE, Centre, assert_no_full_number, start_centre
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser]
expect.set_options(timeout=10_000)


@pytest.fixture
async def centre(sqlite_url) -> AsyncIterator[Centre]:
    errors: list[str] = []
    async for c in start_centre(sqlite_url, errors):
        yield c
    assert not errors, f"uncaught errors in the pages: {errors}"


@pytest.fixture
async def dispatcher(centre: Centre) -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession(base_url=centre.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await session.post("/api/session", json={"username": "lidd", "password": PASSWORD})
    assert r.status == 200, await r.text()
    yield session
    await session.close()


async def _new_order(centre: Centre, number: str, problem: str, **values: object) -> int:
    """An on-site order for 张三 (待处理 unless ``values`` say otherwise), not queued for
    automatic dispatch."""
    async with centre.app[SESSIONMAKER].begin() as s:
        address = await s.scalar(select(Address.id).where(Address.customer_id == centre.customer_id))
        values = {"status": "待处理", "urgency": "紧急", **values}
        order = WorkOrder(number=number, customer_id=centre.customer_id, address_id=address, service_type="上门维修",
                          problem=problem, created_at=dt.datetime.now(dt.UTC), **values)
        s.add(order)
        await s.flush()
        return order.id


async def _dispatch(session: aiohttp.ClientSession, order_id: int, engineer_id: int) -> dict:
    r = await session.post(f"/api/orders/{order_id}/dispatch",
                           json={"engineer_id": engineer_id, "reason": "就近人工派单"})
    assert r.status == 200, await r.text()
    return await r.json()


async def _phone(page: Page, centre: Centre) -> Page:
    await page.set_viewport_size(PHONE)
    page.on("pageerror", lambda e: centre.errors.append(f"{page.url}: {e}"))
    await page.goto(f"{centre.url}/login?next=/m/orders")
    await page.get_by_test_id("login-username").fill("zhaogc")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"{centre.url}/m/orders")
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    return page


async def _fits_the_phone(page: Page) -> None:
    """Nothing wider than the screen (no sideways scrolling at 390 px)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


async def _tall_enough(locator) -> None:  # type: ignore[no-untyped-def]
    box = await locator.bounding_box()
    assert box is not None and box["height"] >= 44, f"a control {box} is too small for a thumb"


async def test_refuse_needs_a_reason_and_takes_the_order_away(centre: Centre, dispatcher, page: Page) -> None:  # type: ignore[no-untyped-def]
    phone = await _phone(page, centre)
    await expect(phone.get_by_test_id("m-new-section")).to_be_hidden()
    engineer = centre.users["zhaogc"]
    order_id = await _new_order(centre, "WO20261124-801", "洗衣机不脱水")
    await _dispatch(dispatcher, order_id, engineer)

    # Live: no reload.
    new = phone.locator('[data-testid="m-new-order"][data-number="WO20261124-801"]')
    await expect(new).to_be_visible()
    await expect(phone.get_by_test_id("toast")).to_contain_text("新工单 WO20261124-801")
    await expect(new.get_by_test_id("m-countdown")).to_have_text(re.compile(r"^剩余 1[45]:\d\d 内接单$"))
    await expect(new.get_by_test_id("m-order-card")).to_contain_text("已派单")
    await expect(new.get_by_test_id("m-order-card")).to_contain_text("张*")
    for control in ("m-accept", "m-refuse"):
        await _tall_enough(new.get_by_test_id(control))
    await _fits_the_phone(phone)
    await assert_no_full_number(phone)

    await new.get_by_test_id("m-refuse").click()
    form = new.get_by_test_id("m-refuse-form")
    for reason in ("技能不符", "时间冲突", "其他"):
        await _tall_enough(form.locator("label", has_text=reason))
    await _fits_the_phone(phone)
    await form.get_by_test_id("m-refuse-submit").click()
    await expect(form.get_by_test_id("m-refuse-reason-error")).to_have_text("请选择拒单原因")
    await form.get_by_text("其他").click()
    await form.get_by_test_id("m-refuse-submit").click()
    await expect(form.get_by_test_id("m-refuse-note-error")).to_have_text("选择“其他”时须填写说明")
    async with centre.app[SESSIONMAKER]() as s:
        assert await s.scalar(select(DispatchRefusal.id).where(DispatchRefusal.order_id == order_id)) is None

    await form.get_by_text("时间冲突").click()
    await form.get_by_test_id("m-refuse-submit").click()
    await expect(new).to_have_count(0)
    await expect(phone.get_by_test_id("m-new-section")).to_be_hidden()
    await expect(phone.locator('[data-testid="m-order-card"][data-number="WO20261124-801"]')).to_have_count(0)
    async with centre.app[SESSIONMAKER]() as s:
        refusal = (await s.execute(select(DispatchRefusal).where(DispatchRefusal.order_id == order_id))).scalar_one()
        assert (refusal.engineer_id, refusal.reason, refusal.timed_out) == (engineer, "时间冲突", False)
        order = await s.get(WorkOrder, order_id)
        assert order is not None and order.engineer_id != engineer


async def test_accept_offer_slots_and_confirm_the_customers_choice(centre: Centre, dispatcher, page: Page) -> None:  # type: ignore[no-untyped-def]
    tz = centre.app[SETTINGS].tz
    engineer = centre.users["zhaogc"]
    # The engineer's visit tomorrow 09:00–11:00 on another order: no slot may overlap it.
    tomorrow = (dt.datetime.now(tz) + dt.timedelta(days=1)).date()
    busy = (dt.datetime.combine(tomorrow, dt.time(9), tz), dt.datetime.combine(tomorrow, dt.time(11), tz))
    await _new_order(centre, "WO20261124-811", "空调不制冷", status="已预约", engineer_id=engineer,
                     appointment_start=busy[0].astimezone(dt.UTC), appointment_end=busy[1].astimezone(dt.UTC))
    phone = await _phone(page, centre)
    order_id = await _new_order(centre, "WO20261124-812", "冰箱冷藏室不制冷")
    await _dispatch(dispatcher, order_id, engineer)

    new = phone.locator('[data-testid="m-new-order"][data-number="WO20261124-812"]')
    await expect(new.get_by_test_id("m-countdown")).to_contain_text("内接单")
    # The booked order is listed as open, not as new.
    await expect(phone.get_by_test_id("m-open-orders").locator('[data-number="WO20261124-811"]')).to_have_count(1)
    await expect(phone.get_by_test_id("m-new-order")).to_have_count(1)
    await new.get_by_test_id("m-accept").click()
    await phone.wait_for_url(f"{centre.url}/m/orders/{order_id}#slots")
    await expect(phone.get_by_test_id("order-status")).to_have_text("已派单")
    await expect(phone.get_by_test_id("m-accept")).to_have_count(0)

    # The slots from the calendar: 2–3, none overlapping the booked visit.
    slots = phone.get_by_test_id("m-slot")
    await expect(slots.first).to_be_visible()
    count = await slots.count()
    assert 2 <= count <= 3
    labels = [await slots.nth(i).get_by_test_id("m-slot-label").inner_text() for i in range(count)]
    for label in labels:
        assert re.fullmatch(r"(今天|明天|后天|\d+月\d+日)（周.）\d\d:00–\d\d:00", label), label
        assert not label.startswith("明天") or not re.search(r"(09|10):00–", label), f"{label} overlaps the visit"
    await _tall_enough(phone.get_by_test_id("m-slots-send"))
    await _fits_the_phone(phone)

    # Only one picked is not enough; the engineer edits the last one and sends.
    for i in range(1, count):
        await slots.nth(i).get_by_test_id("m-slot-pick").uncheck()
    await phone.get_by_test_id("m-slots-send").click()
    await expect(phone.get_by_test_id("m-slots-pick-error")).to_contain_text("请勾选 2–3 个时段")
    day_after = (tomorrow + dt.timedelta(days=1)).isoformat()
    last = slots.nth(count - 1)
    await last.get_by_test_id("m-slot-day").fill(day_after)
    await last.get_by_test_id("m-slot-from").select_option("15")
    await last.get_by_test_id("m-slot-to").select_option("17")
    await expect(last.get_by_test_id("m-slot-pick")).to_be_checked()
    await phone.get_by_test_id("m-slots-prepare").fill("清空冷藏室")
    await phone.get_by_test_id("m-slots-send").click()

    choice = phone.get_by_test_id("m-choice-panel")
    await expect(choice.get_by_test_id("m-slot-choice")).to_have_count(2)
    await expect(choice.get_by_test_id("m-slot-choice").nth(1)).to_contain_text(f"{day_after} 15:00–17:00")
    await expect(phone.get_by_test_id("appointment").get_by_test_id("appointment-status")).to_have_text("待客户确认")
    async with centre.app[SESSIONMAKER]() as s:
        proposal = (await s.execute(select(Appointment).where(Appointment.order_id == order_id))).scalar_one()
        assert proposal.status == "proposed" and len(proposal.proposed_slots) == 2
        assert proposal.source == "工程师建议"

    # The customer takes the first one: the proposal itself is confirmed.
    first_text = await choice.get_by_test_id("m-slot-choice").first.inner_text()
    await choice.get_by_test_id("m-slot-choice").first.click()
    await expect(phone.get_by_test_id("order-status")).to_have_text("已预约")
    await expect(phone.get_by_test_id("m-choice-panel")).to_have_count(0)
    appointment = phone.get_by_test_id("appointment")
    await expect(appointment.get_by_test_id("appointment-status")).to_have_text("客户已确认")
    await expect(appointment.get_by_test_id("appointment-window")).to_have_text(first_text.removeprefix("客户选择 "))
    async with centre.app[SESSIONMAKER]() as s:
        order = await s.get(WorkOrder, order_id)
        assert order is not None and order.status == "已预约"
        confirmed = await s.get(Appointment, proposal.id)
        assert confirmed is not None and confirmed.status == "confirmed"
    await assert_no_full_number(phone)

    # Back on the list: booked, no longer new.
    await phone.goto(f"{centre.url}/m/orders")
    await expect(phone.locator('[data-testid="m-order-card"][data-number="WO20261124-812"]')).to_contain_text("已预约")
    await expect(phone.get_by_test_id("m-new-order")).to_have_count(0)


async def test_the_customer_picks_another_offered_slot(centre: Centre, dispatcher, page: Page) -> None:  # type: ignore[no-untyped-def]
    """A choice other than the proposal's own window books that window (the proposal superseded)."""
    engineer = centre.users["zhaogc"]
    order_id = await _new_order(centre, "WO20261124-821", "热水器不点火")
    await _dispatch(dispatcher, order_id, engineer)
    phone = await _phone(page, centre)
    # Accepted from the order's own page this time: the countdown is there too.
    await phone.locator('[data-testid="m-order-card"][data-number="WO20261124-821"]').click()
    await phone.wait_for_url(f"{centre.url}/m/orders/{order_id}")
    await expect(phone.get_by_test_id("m-countdown")).to_contain_text("内接单")
    await expect(phone.get_by_test_id("m-refuse")).to_be_visible()
    await expect(phone.get_by_test_id("m-slots")).to_have_count(0)
    await phone.get_by_test_id("m-accept").click()
    await expect(phone.get_by_test_id("m-countdown")).to_have_count(0)
    await expect(phone.get_by_test_id("m-slot").first).to_be_visible()
    await phone.get_by_test_id("m-slots-send").click()
    choices = phone.get_by_test_id("m-slot-choice")
    await expect(choices.nth(1)).to_be_visible()
    second = (await choices.nth(1).inner_text()).removeprefix("客户选择 ")
    await choices.nth(1).click()
    await expect(phone.get_by_test_id("order-status")).to_have_text("已预约")
    await expect(phone.locator('[data-testid="appointment"][data-status="confirmed"]')
                 .get_by_test_id("appointment-window")).to_have_text(second)
    await expect(phone.locator('[data-testid="appointment"][data-status="superseded"]')).to_have_count(1)

    async def booked() -> bool:
        async with centre.app[SESSIONMAKER]() as s:
            order = await s.get(WorkOrder, order_id)
            return order is not None and order.status == "已预约" and order.appointment_start is not None
    await wait_for(booked, timeout=5, message="the order was never booked")

"""The dispatcher's board (派单台) in a real browser against the whole application: an order the
rules could not place is listed with why (the commonest exclusions); its evaluation shows every
candidate within 5 km with the reason each is excluded, and the widened search's suggestions
(10 km, 20 km, …); dispatching to a suggestion asks for a reason and moves the order to 待接单;
an automatic dispatch elsewhere reaches the open board by websocket; the order page's 派单记录
shows each decision — who and why, the winner's score with the weights, the candidates.

The orders ask for a window tomorrow 10:00–12:00 (centre's time), so who is on duty does not
depend on when the test runs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from argon2 import PasswordHasher
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from callcenter.app import init_app
from callcenter.appkeys import DISPATCH, SESSIONMAKER
from callcenter.db.models import Appliance, User, WorkOrder
from callcenter.db.workforce import EngineerLeave
from callcenter.settings import Settings
from tests.apphelpers import TEST_KEYS
from tests.dispatchworld import TZ, World, build
from tests.orderpages import _listening_socket, assert_no_full_number
from tests.services import free_port

pytestmark = [pytest.mark.browser]
expect.set_options(timeout=10_000)

PASSWORD = "board-secret-1"
DESKTOP = {"width": 1440, "height": 900}
REASON = "10公里内唯一持证且有空的工程师"


@dataclass
class Board:
    url: str
    app: web.Application
    world: World
    numbers: dict[str, str]
    errors: list[str]


async def _seed(app: web.Application) -> tuple[World, dict[str, str]]:
    world = await build(app[SESSIONMAKER])
    tomorrow = (dt.datetime.now(TZ) + dt.timedelta(days=1)).date()
    start = dt.datetime.combine(tomorrow, dt.time(10), TZ).astimezone(dt.UTC)
    u = world.users
    async with app[SESSIONMAKER].begin() as s:
        await s.execute(update(User).where(User.username == "dispatcher").values(
            display_name="孙调度", password_hash=PasswordHasher().hash(PASSWORD)))
        # Within 5 km nobody can take the air conditioner tomorrow: best and leave are away.
        s.add_all([EngineerLeave(engineer_id=u[name], start_date=tomorrow, end_date=tomorrow, kind="请假",
                                 created_at=start) for name in ("best", "leave")])
        # A fridge order next to it, for the fridge engineer 3 km away.
        fridge = Appliance(customer_id=world.customer_id, category="冰箱", model="BCD-1", serial="F1")
        s.add(fridge)
        await s.flush()
        main = await s.get(WorkOrder, world.orders["main"])
        assert main is not None
        s.add(WorkOrder(number="WO20261124-901", customer_id=world.customer_id, appliance_id=fridge.id,
                        address_id=main.address_id, status="待处理", urgency="紧急", created_at=start))
        await s.execute(update(WorkOrder).where(WorkOrder.status == "待处理").values(
            appointment_start=start, appointment_end=start + dt.timedelta(hours=2)))
    async with app[SESSIONMAKER]() as s:
        world.orders["fridge"] = await s.scalar(select(WorkOrder.id).where(WorkOrder.number == "WO20261124-901"))
        numbers = {k: await s.scalar(select(WorkOrder.number).where(WorkOrder.id == v)) for k, v in world.orders.items()}
    return world, numbers  # type: ignore[return-value]


@pytest.fixture
async def board(sqlite_url) -> AsyncIterator[Board]:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    settings = Settings().with_(**TEST_KEYS, database_url=sqlite_url, ami_host="127.0.0.1", ami_port=free_port(),
                                http_host="127.0.0.1", http_port=port, allowed_origins=(origin,),
                                sla_interval=0.0, dispatch_interval=0.0)
    app = init_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    errors: list[str] = []
    try:
        await web.SockSite(runner, sock).start()
        world, numbers = await _seed(app)
        # The rules found nobody for the air conditioner: the order is in the dispatcher's queue.
        outcome = await app[DISPATCH].auto(world.orders["main"], queued_only=False)
        assert outcome is not None and outcome.queued
        yield Board(origin, app, world, numbers, errors)
    finally:
        await runner.cleanup()
        sock.close()
    assert not errors, f"uncaught errors in the pages: {errors}"


async def _dispatcher_page(browser, board: Board, path: str) -> Page:  # type: ignore[no-untyped-def]
    context = await browser.new_context(locale="zh-CN", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    context.on("page", lambda p: p.on("pageerror", lambda e: board.errors.append(f"{p.url}: {e}")))
    page = await context.new_page()
    await page.goto(f"{board.url}/login?next={path}")
    await page.get_by_test_id("login-username").fill("dispatcher")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"{board.url}{path}")
    return page


def _row(page: Page, section: str, number: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="{section}-row"][data-number="{number}"]')


async def _no_personal(page: Page) -> None:
    await assert_no_full_number(page)
    html = await page.content()
    for secret in ("王小明", "某街1号", "李corner", "李best", "李fridge"):
        assert secret not in html, secret


async def test_board_explains_suggests_and_dispatches(browser, board: Board) -> None:
    main, fridge = board.numbers["main"], board.numbers["fridge"]
    page = await _dispatcher_page(browser, board, "/dispatch")
    await expect(page.get_by_test_id("nav-dispatch")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")

    # The unmatched order, with why.
    row = _row(page, "undispatched", main)
    await expect(row.get_by_test_id("board-queue")).to_have_text("待人工派单")
    await expect(row.get_by_test_id("board-summary")).to_contain_text("5公里内无可派工程师")
    await expect(row.get_by_test_id("board-summary")).to_contain_text("休假 2人")
    await expect(row.get_by_test_id("board-address")).to_have_text("北京市东城区")
    await expect(_row(page, "undispatched", fridge).get_by_test_id("board-summary")).to_have_text("尚未派单")

    # Its evaluation: nobody within 5 km (each with the reason), suggestions further out.
    await row.get_by_test_id("select-order").click()
    await expect(page.get_by_test_id("detail-number")).to_have_text(main)
    await expect(page.get_by_test_id("detail-verdict")).to_contain_text("5 公里内没有符合条件的工程师")
    detail = page.get_by_test_id("dispatch-detail")
    near = detail.get_by_test_id("candidates")
    await expect(near.get_by_test_id("candidate")).to_have_count(6)
    await expect(near.get_by_test_id("candidate-eligible")).to_have_count(0)
    best = near.locator(f'[data-engineer-id="{board.world.users["best"]}"]')
    await expect(best.get_by_test_id("candidate-reasons")).to_contain_text("请假")
    full = near.locator(f'[data-engineer-id="{board.world.users["full"]}"]')
    await expect(full.get_by_test_id("candidate-reasons")).to_contain_text("已达上限3单")
    ten = detail.locator('[data-testid="tier"][data-tier="10km"]')
    await expect(ten.get_by_test_id("candidate")).to_have_count(1)
    await expect(ten.get_by_test_id("candidate-name")).to_contain_text("李******")
    await expect(ten.get_by_test_id("candidate-distance")).to_contain_text("6.4 公里")
    twenty = detail.locator('[data-testid="tier"][data-tier="20km"]')
    await expect(twenty.get_by_test_id("candidate-distance")).to_contain_text("15.0 公里")
    await expect(detail.locator('[data-testid="tier"][data-tier="shops"]')).to_contain_text("没有建议")
    await _no_personal(page)

    # Dispatch to the 10 km suggestion: a reason is required.
    await ten.get_by_test_id("pick-engineer").click()
    dialog = page.get_by_test_id("reason-dialog")
    await expect(dialog).to_be_visible()
    await page.get_by_test_id("reason-submit").click()
    await expect(page.get_by_test_id("reason-error")).to_have_text("必填")
    await page.get_by_test_id("reason-text").fill(REASON)
    await page.get_by_test_id("reason-submit").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_test_id("toast")).to_contain_text(f"{main} 已派单")
    waiting = _row(page, "awaiting", main)
    await expect(waiting.get_by_test_id("awaiting-engineer")).to_contain_text("李******")
    await expect(waiting.get_by_test_id("awaiting-left")).to_have_text(re.compile(r"^剩 1[45]分"))
    await expect(_row(page, "undispatched", main)).to_have_count(0)
    await expect(page.get_by_test_id("detail-status")).to_have_text("已派单")

    # The rules dispatch the fridge order elsewhere: the open board follows by websocket.
    outcome = await board.app[DISPATCH].auto(board.world.orders["fridge"], queued_only=False)
    assert outcome is not None and outcome.engineer_id == board.world.users["fridge"]
    await expect(_row(page, "awaiting", fridge).get_by_test_id("awaiting-engineer")).to_contain_text("李******")
    await expect(_row(page, "undispatched", fridge)).to_have_count(0)
    await expect(page.get_by_test_id("count-undispatched")).to_contain_text("3 单（自动派单中 0，待人工 3）")
    await _no_personal(page)


async def test_order_page_shows_the_decisions(browser, board: Board) -> None:
    main, u = board.world.orders["main"], board.world.users
    await board.app[DISPATCH].auto(board.world.orders["fridge"], queued_only=False)
    from callcenter.auth.identity import CurrentUser

    await board.app[DISPATCH].manual(main, CurrentUser(u["dispatcher"], "dispatcher", "dispatcher"),
                                     engineer_id=u["corner"], reason=REASON)
    page = await _dispatcher_page(browser, board, f"/orders/{main}")
    record = page.get_by_test_id("order-dispatch")
    decisions = record.get_by_test_id("decision")
    await expect(decisions).to_have_count(2)
    newest, first = decisions.nth(0), decisions.nth(1)
    await expect(newest.get_by_test_id("decision-mode")).to_have_text("人工派单")
    await expect(newest.get_by_test_id("decision-outcome")).to_contain_text("派给 李******")
    await expect(newest.get_by_test_id("decision-reason")).to_have_text(REASON)
    await expect(newest.get_by_test_id("decision-by")).to_contain_text("孙**")
    await expect(first.get_by_test_id("decision-mode")).to_have_text("自动派单")
    await expect(first.get_by_test_id("decision-outcome")).to_have_text("无人符合条件，转人工派单")
    await first.get_by_test_id("decision-candidates").locator("summary").click()
    await expect(first.get_by_test_id("candidate-reasons").first).to_be_visible()
    await expect(first.get_by_test_id("decision-candidates")).to_contain_text("超出5公里")
    await expect(record.get_by_test_id("refusals-empty")).to_be_visible()
    await _no_personal(page)

    # The automatic decision with a winner: the score breakdown with the weights.
    await page.goto(f"{board.url}/orders/{board.world.orders['fridge']}")
    auto = page.get_by_test_id("order-dispatch").get_by_test_id("decision")
    await expect(auto).to_have_count(1)
    await expect(auto.get_by_test_id("decision-outcome")).to_contain_text("派给 李******")
    breakdown = auto.get_by_test_id("score-breakdown")
    await expect(breakdown.get_by_test_id("score-row")).to_have_count(5)
    await expect(breakdown.locator('[data-component="distance"]').get_by_test_id("score-weight")).to_have_text("0.40")
    await expect(breakdown.get_by_test_id("score-total")).to_have_text(re.compile(r"^0\.\d{3}$"))
    await expect(auto.get_by_test_id("decision-weights")).to_contain_text("距离 0.4")
    # The board opens on this order from here.
    await page.get_by_test_id("order-to-board").click()
    await expect(page.get_by_test_id("detail-number")).to_have_text(board.numbers["fridge"])
    await expect(page.get_by_test_id("detail-status")).to_have_text("已派单")
    await _no_personal(page)

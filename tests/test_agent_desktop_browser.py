"""The agent desktop in a real browser, against the real server and a real AMI session over TCP.

Debian's chromium (the shared ``browser`` fixture) drives the pages; the app runs on a free port
with a temporary SQLite database; the built-in AMI simulator is the Asterisk it logs in to. A
call placed on the simulator must reach the agent's screen as a pop (number and name masked),
follow the call to 通话中 and 已结束, and land in 今日通话. Every step waits for a condition on
the page (Playwright's ``expect``) or in the app (``wait_for``); nothing sleeps and hopes.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from callcenter.app import init_app
from callcenter.appkeys import AGENTS, AUTH, CONNECTOR, HUB, SESSIONMAKER, VAULT
from callcenter.customers.phones import normalise
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Address, Appliance, Customer, WorkOrder
from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator.server import AmiSimulator
from tests.apphelpers import keyed_settings
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
]

CALLER = "13800138000"
MASKED_CALLER = "138****8000"
PASSWORD = "desk-secret-8001"
OPEN_ORDER = "WO20240520-001"
# Typed by people: must reach the screen as text, never as markup.
REMARKS = "老人独居，上门前请提前1小时联系 <b>勿按门铃</b>"
PROBLEM = '冰箱底部漏水 <img src=x onerror="document.title=1">'
# Wall seconds per simulated second: ringing for 6 simulated seconds lasts 1.5 s, long enough
# for the page to show it, short enough for the whole file to stay well under a minute.
TIME_SCALE = 0.25
# A phone-number-length digit run anywhere on the page would be an unmasked number.
ELEVEN_DIGITS = re.compile(r"(?<!\d)1\d{10}(?!\d)")

expect.set_options(timeout=10_000)


@dataclass
class Desk:
    url: str
    app: web.Application
    sim: AmiSimulator


def _listening_socket() -> socket.socket:
    """A socket already bound to a free port: no window for another process to take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _add_customer(app: web.Application, now: dt.datetime) -> None:
    """张三, calling from CALLER: an air conditioner in warranty, a fridge out of it, and an open
    critical work order on the fridge."""
    today = now.date()
    phone = normalise(CALLER)
    assert phone is not None
    async with app[SESSIONMAKER].begin() as s:
        customer = Customer(
            name="张三", level="VIP", remarks=REMARKS, created_at=now,
            phones=[sealed_phone(app[VAULT], phone.number, phone.kind)],
            addresses=[Address(province="广东省", city="深圳市", district="南山区", detail="科技园路 8 号 3 栋 1201")],
        )
        aircon = Appliance(category="空调", brand="格力", model="KFR-35GW/ABC123", serial="GR2023KF0042",
                           purchase_date=today - dt.timedelta(days=200), warranty_months=36)
        fridge = Appliance(category="冰箱", brand="海尔", model="BCD-470WDPG", serial="HE2019BX0007",
                           purchase_date=today - dt.timedelta(days=5 * 365), warranty_months=12)
        customer.appliances = [aircon, fridge]
        s.add(customer)
        await s.flush()
        s.add(WorkOrder(number=OPEN_ORDER, customer_id=customer.id, appliance_id=fridge.id,
                        service_type="上门维修", status="待处理", urgency="特急",
                        problem=PROBLEM, created_at=now - dt.timedelta(hours=3)))


@pytest.fixture
async def desk(sqlite_url) -> AsyncIterator[Desk]:
    member = MemberConfig("8001", "Local/8001@agents/n")
    sim = AmiSimulator(SimulatorConfig(port=0, time_scale=TIME_SCALE, failed_login_delay=0.05,
                                       queues=(QueueConfig("aftersales", (member,), ring_timeout=10.0),)))
    ami_port = await sim.start()
    sock = _listening_socket()
    http_port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{http_port}"
    settings = keyed_settings(
        database_url=sqlite_url, ami_host="127.0.0.1", ami_port=ami_port,
        http_host="127.0.0.1", http_port=http_port, allowed_origins=(origin,),
        ami_ping_interval=1.0, ami_ping_timeout=2.0, ami_reconnect_min=0.05, ami_reconnect_max=0.5,
    )
    app = init_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await app[AUTH].add_user("wangxm", role="agent", password=PASSWORD, extension="8001",
                                 display_name="王小明")
        await app[AGENTS].refresh()  # the directory is read at start-up; the agent came after
        await _add_customer(app, dt.datetime.now(dt.UTC))
        await wait_for(lambda: app[CONNECTOR].state == "connected", timeout=10,
                       message="the app never logged in to the AMI simulator")
        yield Desk(origin, app, sim)
    finally:
        await runner.cleanup()
        await sim.stop()
        sock.close()


@pytest.fixture
async def desk_page(browser) -> AsyncIterator[Page]:
    """A page the size of the centre's screens (1366×768), in a fresh context. Fails the test
    if the page's scripts threw anything uncaught."""
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    context.set_default_timeout(10_000)
    errors: list[str] = []
    try:
        page = await context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
    finally:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


async def _log_in(page: Page, desk: Desk, password: str = PASSWORD, next_: str = "/") -> None:
    await page.goto(f"{desk.url}/login?next={next_}")
    await page.get_by_test_id("login-username").fill("wangxm")
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def _open_desk(page: Page, desk: Desk) -> None:
    await _log_in(page, desk)
    await page.wait_for_url(f"{desk.url}/")
    await expect(page.get_by_test_id("agent-extension")).to_have_text("分机 8001")
    # A pop posted before the websocket is up is not replayed to a first connection.
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    await expect(page.get_by_test_id("ami-state")).to_have_attribute("data-state", "ok")


async def _assert_no_full_number(page: Page) -> None:
    text = await page.locator("body").inner_text()
    html = await page.content()
    assert not ELEVEN_DIGITS.search(text), f"an unmasked number is on screen: {ELEVEN_DIGITS.search(text)}"
    assert CALLER not in html


async def test_pop_follows_the_call_from_ringing_to_the_call_list(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _open_desk(page, desk)
    await expect(page.get_by_test_id("pops-empty")).to_be_visible()

    linkedid = await desk.sim.place_call(caller=CALLER, caller_name="Zhang San",
                                         answer_after=6.0, talk=8.0)

    card = page.locator(f'[data-testid="pop-card"][data-call-id="{linkedid}"]')
    await expect(card.get_by_test_id("pop-caller")).to_have_text(MASKED_CALLER)
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    await expect(card.get_by_test_id("pop-customer-level")).to_have_text("VIP")
    await expect(card.get_by_test_id("pop-address")).to_have_text("广东省深圳市南山区")
    await expect(card.get_by_test_id("pop-queue")).to_contain_text("aftersales")
    rows = card.get_by_test_id("appliance-row")
    await expect(rows).to_have_count(2)
    aircon = rows.filter(has_text="KFR-35GW/ABC123")
    fridge = rows.filter(has_text="BCD-470WDPG")
    await expect(aircon.get_by_test_id("warranty-status")).to_have_text("保内")
    await expect(fridge.get_by_test_id("warranty-status")).to_have_text("保外")
    order = card.get_by_test_id("open-order-row")
    await expect(order).to_have_count(1)
    await expect(order.get_by_test_id("order-number")).to_have_text(OPEN_ORDER)
    await expect(order.get_by_test_id("order-urgency")).to_have_text("特急")
    await expect(order).to_contain_text("待处理")
    await expect(card.get_by_test_id("pop-remarks")).to_contain_text(REMARKS)
    await expect(order).to_contain_text(PROBLEM)
    await expect(card.get_by_test_id("pop-remarks").locator("b")).to_have_count(0)
    await expect(card.locator("img")).to_have_count(0)
    await _assert_no_full_number(page)

    state = card.get_by_test_id("pop-state")
    await expect(state).to_have_attribute("data-state", "answered")
    await expect(state).to_contain_text("通话中")
    await expect(card.get_by_test_id("pop-timer")).to_have_text(re.compile(r"^\d\d:\d\d$"))

    await expect(state).to_have_attribute("data-state", "ended", timeout=15_000)
    await expect(state).to_contain_text("已结束")

    row = page.locator(f'[data-testid="call-row"][data-call-id="{linkedid}"]')
    await expect(row.get_by_test_id("call-caller")).to_have_text(MASKED_CALLER)
    await expect(row.get_by_test_id("call-customer")).to_have_text("张*")
    await expect(row.get_by_test_id("call-outcome")).to_have_text("已接")
    await expect(row.get_by_test_id("call-talk")).not_to_have_text("—")
    # The customer's details must survive the end of the call on the card too.
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    await _assert_no_full_number(page)


async def test_wrong_password_shows_the_error(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _log_in(page, desk, password="not-the-password")
    await expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误")
    assert page.url.startswith(f"{desk.url}/login")
    await expect(page.get_by_test_id("login-password")).to_have_value("")


@pytest.mark.parametrize("next_", ["//evil.example/", "/%09/evil.example/", "https://evil.example/",
                                   "/%0A/evil.example/", "/%5C/evil.example/"])
async def test_login_never_redirects_off_site(desk: Desk, desk_page: Page, next_: str) -> None:
    page = desk_page
    await _log_in(page, desk, next_=next_)
    await page.wait_for_url(lambda url: "/login" not in url, wait_until="commit")
    assert page.url == desk.url + "/", page.url


async def test_anonymous_caller_shows_anonymous(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _open_desk(page, desk)

    linkedid = await desk.sim.place_call(caller=None, answer_after=6.0, talk=2.0)

    card = page.locator(f'[data-testid="pop-card"][data-call-id="{linkedid}"]')
    await expect(card.get_by_test_id("pop-caller")).to_have_text("匿名来电")
    await expect(card.get_by_test_id("pop-customer-name")).to_have_count(0)
    await expect(card.get_by_test_id("pop-state")).to_have_attribute("data-state", "ended", timeout=15_000)
    row = page.locator(f'[data-testid="call-row"][data-call-id="{linkedid}"]')
    await expect(row.get_by_test_id("call-caller")).to_have_text("匿名")
    await _assert_no_full_number(page)

    await page.get_by_test_id("logout").click()
    await page.wait_for_url(re.compile(r"/login"))
    await page.goto(f"{desk.url}/")  # the session is gone: back to the login page
    await expect(page.get_by_test_id("login-username")).to_be_visible()


async def test_new_caller_is_registered_from_the_pop(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _open_desk(page, desk)
    linkedid = await desk.sim.place_call(caller="13900139001", answer_after=2.0, talk=2.0)

    card = page.locator(f'[data-testid="pop-card"][data-call-id="{linkedid}"]')
    await expect(card.get_by_test_id("pop-caller")).to_have_text("139****9001")
    await expect(card.get_by_test_id("badge-new-caller")).to_have_text("新客户")
    await card.get_by_test_id("new-customer-btn").click()
    dialog = page.get_by_test_id("new-customer-dialog")
    await expect(dialog).to_be_visible()

    await dialog.get_by_test_id("nc-name").fill("李四")
    await dialog.get_by_test_id("nc-phone").fill("12345")
    await dialog.get_by_test_id("nc-submit").click()
    await expect(dialog.get_by_test_id("nc-phone-error")).not_to_be_empty()  # 422 from the server

    await dialog.get_by_test_id("nc-phone").fill(CALLER)  # 张三's number
    await dialog.get_by_test_id("nc-submit").click()
    await expect(dialog.get_by_test_id("nc-phone-error")).to_contain_text("已属于其他客户")  # 409

    await dialog.get_by_test_id("nc-phone").fill("139 0013 9001")
    await page.locator("#nc-district").fill("福田区")
    await dialog.get_by_test_id("nc-submit").click()
    await expect(dialog).to_be_hidden()
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("李*")
    await expect(card.get_by_test_id("badge-new-caller")).to_have_count(0)
    await _assert_no_full_number(page)


async def test_missed_and_abandoned_calls_say_so(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _open_desk(page, desk)

    # Rings the whole ring timeout (10 s simulated) unanswered; the caller gives up just after,
    # before the queue rings the agent again.
    missed = await desk.sim.place_call(caller=CALLER, no_answer_members=("8001",), abandon_after=10.5)
    card = page.locator(f'[data-testid="pop-card"][data-call-id="{missed}"]')
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    await expect(card.get_by_test_id("pop-state")).to_have_attribute("data-state", "missed")
    await expect(card.get_by_test_id("pop-state")).to_have_text("未接 · 未接听")
    assert await desk.sim.wait_call(missed) in ("abandoned", None)

    # The caller hangs up while the agent's phone rings.
    abandoned = await desk.sim.place_call(caller=CALLER, answer_after=10.0, abandon_after=2.0)
    card = page.locator(f'[data-testid="pop-card"][data-call-id="{abandoned}"]')
    await expect(card.get_by_test_id("pop-state")).to_have_attribute("data-state", "abandoned")
    await expect(card.get_by_test_id("pop-state")).to_have_text("客户已挂断")
    # Newest first; the older card folds (its header still says who called) and can be dismissed.
    await expect(page.get_by_test_id("pop-card").first).to_have_attribute("data-call-id", abandoned)
    older = page.locator(f'[data-testid="pop-card"][data-call-id="{missed}"]')
    await expect(older).to_have_class(re.compile(r"\bcollapsed\b"))
    await older.get_by_test_id("pop-toggle").click()
    await expect(older.get_by_test_id("appliance-row")).to_have_count(2)
    await older.get_by_test_id("pop-dismiss").click()
    await expect(older).to_have_count(0)


async def test_reconnects_and_replays_what_it_missed(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await _open_desk(page, desk)
    first = await desk.sim.place_call(caller=CALLER, answer_after=1.0, talk=1.0)
    await expect(page.locator(f'[data-call-id="{first}"] [data-testid="pop-state"]')).to_have_attribute(
        "data-state", "ended")

    await desk.app[HUB].close_all()  # as on a server restart: every socket closed, GOING_AWAY
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "reconnecting")
    # Rings while the page is away (it waits 1 s before reconnecting): the pop is replayed.
    second = await desk.sim.place_call(caller=CALLER, answer_after=6.0, talk=1.0)
    card = page.locator(f'[data-testid="pop-card"][data-call-id="{second}"]')
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    await expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    assert len(sockets) == 2 and "last_seq=" in sockets[1], sockets
    await expect(card.get_by_test_id("pop-state")).to_have_attribute("data-state", "ended")

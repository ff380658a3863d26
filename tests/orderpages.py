"""The work-order pages in a real browser: the app on a free port, the AMI simulator, the staff
of a small centre and one customer (helpers for ``test_order_pages_browser.py``)."""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import update

from callcenter.app import init_app
from callcenter.appkeys import AGENTS, AUTH, CONNECTOR, SESSIONMAKER
from callcenter.customers.phones import normalise
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone, User
from callcenter.db.records import ProductCategory
from callcenter.db.stock import Part, PriceItem, StockLevel, StockLocation
from callcenter.settings import Settings
from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator.server import AmiSimulator
from tests.apphelpers import TEST_KEYS, fixed_vault
from tests.waiting import wait_for

CALLER = "13800138000"
MASKED_CALLER = "138****8000"
PASSWORD = "pages-secret-1"
# Wall seconds per simulated second (the call only has to ring and be answered).
TIME_SCALE = 0.25
# A mobile-number-length digit run anywhere on a page would be an unmasked number.
ELEVEN_DIGITS = re.compile(r"(?<!\d)1\d{10}(?!\d)")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}

# username → (role, display name, extension, staff no.)
STAFF = {
    "wangxm": ("agent", "王小明", "8001", None),
    "lidd": ("dispatcher", "李调度", None, None),
    "zhaogc": ("engineer", "赵工程", None, "GY2024001"),
    "zhousv": ("supervisor", "周主管", None, None),
}


@dataclass
class Centre:
    url: str
    app: web.Application
    sim: AmiSimulator
    users: dict[str, int]
    customer_id: int
    part_van: int  # the engineer's van
    errors: list[str]


def _listening_socket() -> socket.socket:
    """A socket already bound to a free port: no window for another process to take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _seed(app: web.Application, now: dt.datetime) -> tuple[dict[str, int], int, int]:
    """The staff, 张三 (calling from CALLER) with a fridge out of warranty and an air conditioner
    in it, the fridge's price list, a door seal in the engineer's van (2) and in the parts
    warehouse (0)."""
    users = {}
    for username, (role, name, ext, staff_no) in STAFF.items():
        u = await app[AUTH].add_user(username, role=role, password=PASSWORD, extension=ext, display_name=name)
        users[username] = u.id
    await app[AGENTS].refresh()  # the directory is read at start-up; the agent came after
    vault = fixed_vault()
    phone = normalise(CALLER)
    assert phone is not None
    sealed = vault.seal(phone.number)
    today = now.date()
    async with app[SESSIONMAKER].begin() as s:
        await s.execute(update(User).where(User.username == "zhaogc").values(
            staff_no="GY2024001", mobile_enc=vault.encrypt("13912345678"), mobile_masked="139****5678"))
        s.add_all([ProductCategory(name="冰箱", warranty_months=12), ProductCategory(name="空调", warranty_months=36)])
        customer = Customer(
            name="张三", level="VIP", remarks="老人独居，上门前请提前1小时联系", created_at=now,
            phones=[CustomerPhone(number_index=sealed.index, number_enc=sealed.enc, masked=sealed.masked,
                                  kind=phone.kind)],
            addresses=[Address(province="广东省", city="深圳市", district="南山区", detail="科技园路 8 号 3 栋 1201")],
            appliances=[
                Appliance(category="冰箱", brand="海尔", model="BCD-470WDPG", serial="HE2019BX0007",
                          purchase_date=today - dt.timedelta(days=5 * 365), warranty_months=12),
                Appliance(category="空调", brand="格力", model="KFR-35GW/ABC123", serial="GR2023KF0042",
                          purchase_date=today - dt.timedelta(days=200), warranty_months=36),
            ])
        s.add(customer)
        s.add_all([PriceItem(category="冰箱", kind="上门费", name="上门检测", amount_fen=5000, active=True),
                   PriceItem(category="冰箱", kind="工时费", name="冰箱检修", amount_fen=6000, active=True)])
        seal = Part(code="SEAL-BCD", name="门封条", model="BCD-470", category="冰箱", unit_price_fen=2000, active=True)
        van = StockLocation(code="VAN-ZHAO", name="赵工车载库", kind="van", engineer_id=users["zhaogc"])
        store = StockLocation(code="PJK-1", name="配件库", kind="warehouse", warehouse_type="配件库")
        s.add_all([seal, van, store])
        await s.flush()
        s.add_all([StockLevel(location_id=van.id, part_id=seal.id, quantity=2, safety_stock=0),
                   StockLevel(location_id=store.id, part_id=seal.id, quantity=0, safety_stock=0)])
        await s.flush()
        return users, customer.id, van.id


async def start_centre(sqlite_url: str, errors: list[str]) -> AsyncIterator[Centre]:
    """The whole application on a free port with the AMI simulator (an async generator for a
    fixture). The SLA scheduler runs no passes by itself (``sla_interval=0``): a test runs one
    at the time it chooses."""
    member = MemberConfig("8001", "Local/8001@agents/n")
    sim = AmiSimulator(SimulatorConfig(port=0, time_scale=TIME_SCALE, failed_login_delay=0.05,
                                       queues=(QueueConfig("aftersales", (member,), ring_timeout=10.0),)))
    ami_port = await sim.start()
    sock = _listening_socket()
    http_port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{http_port}"
    settings = Settings().with_(
        **TEST_KEYS, database_url=sqlite_url, ami_host="127.0.0.1", ami_port=ami_port,
        http_host="127.0.0.1", http_port=http_port, allowed_origins=(origin,), sla_interval=0.0,
        ami_ping_interval=1.0, ami_ping_timeout=2.0, ami_reconnect_min=0.05, ami_reconnect_max=0.5,
    )
    app = init_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        users, customer_id, van = await _seed(app, dt.datetime.now(dt.UTC))
        await wait_for(lambda: app[CONNECTOR].state == "connected", timeout=10,
                       message="the app never logged in to the AMI simulator")
        yield Centre(origin, app, sim, users, customer_id, van, errors)
    finally:
        await runner.cleanup()
        await sim.stop()
        sock.close()


async def new_context(browser: Browser, centre: Centre, *, phone: bool = False) -> BrowserContext:
    """A fresh browser context (desktop 1366×768, or a phone) whose pages report uncaught
    script errors into ``centre.errors``."""
    options = ({"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2} if phone
               else {"viewport": DESKTOP})
    context = await browser.new_context(locale="zh-CN", **options)
    context.set_default_timeout(10_000)
    context.on("page", lambda p: p.on("pageerror", lambda e: centre.errors.append(f"{p.url}: {e}")))
    return context


async def log_in(context: BrowserContext, centre: Centre, username: str, next_: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{centre.url}/login?next={next_}")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"{centre.url}{next_}")
    return page


async def assert_no_full_number(page: Page) -> None:
    """Nothing on the page (text or markup) is an unmasked mobile number."""
    text = await page.locator("body").inner_text()
    found = ELEVEN_DIGITS.search(text)
    assert not found, f"an unmasked number is on screen at {page.url}: {found.group()}"
    html = await page.content()
    assert CALLER not in html and "13912345678" not in html


async def expect_error_shown(locator, pattern: str) -> None:  # type: ignore[no-untyped-def]
    await expect(locator).to_be_visible()
    await expect(locator).to_contain_text(re.compile(pattern))

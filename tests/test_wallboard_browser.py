"""/wallboard and the desk's pause controls in a real browser, against the real server logged in
to the AMI simulator over TCP. Every step waits for a condition on the page; nothing sleeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from callcenter.app import init_app
from callcenter.appkeys import AGENTS, AUTH, CONNECTOR, RECORDER, SESSIONMAKER
from callcenter.db.models import Customer, WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.simulator.config import MemberConfig, QueueConfig, SimulatorConfig
from callcenter.simulator.server import AmiSimulator
from tests.apphelpers import keyed_settings
from tests.test_agent_desktop_browser import _listening_socket
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser]
PASSWORD = "board-secret-1"
IFACES = ("Local/8001@agents/n", "Local/8002@agents/n")
expect.set_options(timeout=10_000)


@dataclass
class Site:
    url: str
    app: web.Application
    sim: AmiSimulator


async def _seed_orders(app: web.Application, now: dt.datetime) -> None:
    """One 特急 on-site order 待处理 with no engineer and an open breach alert."""
    async with app[SESSIONMAKER].begin() as s:
        c = Customer(name="张三", created_at=now)
        s.add(c)
        await s.flush()
        o = WorkOrder(number="WO20261124-001", customer_id=c.id, service_type="上门维修", status="待处理",
                      urgency="特急", problem="漏水", created_at=now - dt.timedelta(hours=1))
        s.add(o)
        await s.flush()
        s.add(SlaAlert(order_id=o.id, clock="dispatch", level="breach", deadline=now - dt.timedelta(minutes=55),
                       raised_at=now - dt.timedelta(minutes=55)))


@pytest.fixture
async def site(sqlite_url) -> AsyncIterator[Site]:
    members = tuple(MemberConfig(i.split("/")[1][:4], i) for i in IFACES)
    sim = AmiSimulator(SimulatorConfig(port=0, time_scale=0.05, failed_login_delay=0.05,
                                       queues=(QueueConfig("aftersales", members, max_wait=1000),)))
    ami_port = await sim.start()
    sock = _listening_socket()
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    settings = keyed_settings(database_url=sqlite_url, ami_host="127.0.0.1", ami_port=ami_port,
                              http_host="127.0.0.1", http_port=port, allowed_origins=(origin,),
                              ami_ping_interval=1.0, ami_ping_timeout=2.0, ami_reconnect_min=0.05,
                              ami_reconnect_max=0.5, wallboard_max_wait_s=2)
    app = init_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await app[AUTH].add_user("zhao", role="supervisor", password=PASSWORD, display_name="赵主管")
        await app[AUTH].add_user("wang", role="agent", password=PASSWORD, extension="8001", display_name="王小明")
        await app[AGENTS].refresh()
        await _seed_orders(app, dt.datetime.now(dt.UTC))
        await wait_for(lambda: app[CONNECTOR].state == "connected", 10)
        yield Site(origin, app, sim)
    finally:
        await runner.cleanup()
        await sim.stop()
        sock.close()


async def _log_in(page: Page, site: Site, username: str, next_: str) -> None:
    await page.goto(f"{site.url}/login?next={next_}")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"{site.url}{next_}")


async def test_wallboard_shows_queues_agents_work_and_turns_red(site: Site, page: Page) -> None:
    await _log_in(page, site, "zhao", "/wallboard")
    tile = page.locator('[data-testid="queue-tile"][data-queue="aftersales"]')
    await expect(tile).to_be_visible()
    await expect(tile.get_by_test_id("q-logged-in").locator(".wb-value")).to_have_text("2")
    await expect(tile.get_by_test_id("q-available").locator(".wb-value")).to_have_text("2")
    await expect(tile).to_have_attribute("data-breach", "false")
    await expect(page.locator('[data-testid="agent-row"][data-member="8001"] td').first).to_have_text("王小明")
    # The formulas are on the screen.
    formulas = page.get_by_test_id("wb-formulas")
    await expect(formulas.locator('[data-formula="service_level"]')).to_contain_text("ServicelevelPerf")
    await expect(formulas.locator('[data-formula="asa"]')).to_contain_text("÷")
    # The work side: the critical order overdue, in the dispatch backlog.
    await expect(page.locator('[data-testid="urgency-row"][data-urgency="特急"] [data-testid="urgency-overdue"]')).to_have_text("1")
    await expect(page.locator("#wb-backlog")).to_have_text("1")
    await expect(page.locator("#wb-complaints")).to_have_text("0")

    # Everybody pauses; a caller waits past the 2 s threshold: the tile turns red.
    for iface in IFACES:
        await site.app[CONNECTOR].send_action("QueuePause", {"Interface": iface, "Paused": "true", "Reason": "培训"})
    await expect(tile.get_by_test_id("q-paused").locator(".wb-value")).to_have_text("2")
    await expect(tile.get_by_test_id("q-paused-list")).to_contain_text("培训")
    call = await site.sim.place_call(abandon_after=200)  # 10 s of wall time
    await expect(tile.get_by_test_id("q-waiting").locator(".wb-value")).to_have_text("1")
    await expect(tile).to_have_attribute("data-breach", "true")
    await expect(page.get_by_test_id("wb-alert").first).to_contain_text("最长等待")
    await site.sim.wait_call(call)
    await expect(tile.get_by_test_id("q-abandoned").locator(".wb-value")).to_have_text("1")
    await expect(tile.get_by_test_id("q-abandon-rate").locator(".wb-value")).to_have_text("100.0%")
    await expect(tile).to_have_attribute("data-breach", "false")
    # 话务历史: the abandoned call is in its hour, drawn in the chart (once its record is written).
    await wait_for(lambda: site.app[RECORDER].pending == 0, 5)
    await page.get_by_test_id("hist-queue").select_option("aftersales")
    await expect(page.get_by_test_id("hist-row")).to_have_count(1)
    await expect(page.get_by_test_id("hist-row").locator("td").nth(4)).to_have_text("1")
    await expect(page.locator('[data-testid="hist-svg"] rect.bar-abandoned')).to_have_count(1)


async def test_agent_pauses_and_resumes_from_the_desk(site: Site, page: Page) -> None:
    await _log_in(page, site, "wang", "/")
    await expect(page.get_by_test_id("as-state")).to_have_text("就绪")
    await page.get_by_test_id("as-reason").select_option("午餐")
    await page.get_by_test_id("as-pause").click()
    await expect(page.get_by_test_id("as-state")).to_have_text("暂停 · 午餐")
    member = site.sim.engine.queues["aftersales"].member(IFACES[0])
    assert member.paused and member.paused_reason == "午餐"
    await page.get_by_test_id("as-resume").click()
    await expect(page.get_by_test_id("as-state")).to_have_text("就绪")
    assert not member.paused

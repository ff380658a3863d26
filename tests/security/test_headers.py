"""Finding 11 (framing, CSP): every page denies framing and carries a Content-Security-Policy
— and the pages still work under it in a real browser (no violation reported)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from callcenter.appkeys import AUTH
from tests.security.site import running_site

pytestmark = [pytest.mark.browser]
PASSWORD = "pass-word-1"


@pytest.fixture
async def site(sqlite_url):  # type: ignore[no-untyped-def]
    async with running_site(sqlite_url) as s:
        await s.app[AUTH].add_user("boss", role="supervisor", password=PASSWORD)
        yield s


async def test_every_answer_denies_framing_and_sets_a_policy(site, page) -> None:  # type: ignore[no-untyped-def]
    for path in ("/login", "/", "/orders", "/static/login.js", "/api/me", "/health", "/no-such-page"):
        r = await page.request.get(site.url + path, max_redirects=0)
        assert r.headers.get("x-frame-options") == "DENY", path
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert r.headers.get("x-content-type-options") == "nosniff", path


async def test_the_pages_work_under_the_policy(site, page) -> None:  # type: ignore[no-untyped-def]
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(site.url + "/login?next=/wallboard")
    await page.get_by_test_id("login-username").fill("boss")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(site.url + "/wallboard")
    for path in ("/", "/orders", "/alerts", "/complaints", "/reports/monthly?month=2026-11"):
        await page.goto(site.url + path)
        await page.wait_for_load_state("networkidle")
    await expect(page.locator("body")).to_be_visible()
    assert violations == []
    # A frame of our page inside another page is refused by the browser.
    await page.set_content(f'<iframe id="f" src="{site.url}/login"></iframe>')
    await expect(page.frame_locator("#f").locator("#login-form")).to_have_count(0)
    assert any("frame-ancestors" in v for v in violations)

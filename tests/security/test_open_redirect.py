"""Finding 1 (open redirect): after logging in, the login page sends the user only to a path on
this site, however ``next`` is spelt — checked in a real browser, and on the server."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.async_api import Page

from callcenter.appkeys import AUTH
from tests.security.site import running_site

pytestmark = [pytest.mark.browser]
PASSWORD = "pass-word-1"
# Each one, navigated to by a browser from the login page, would land on evil.example.
OFF_SITE = ["/.//evil.example/", "//evil.example/", "/\\evil.example/", "/./\\evil.example/",
            "/\t/evil.example/", "https://evil.example/"]


@pytest.fixture
async def site(sqlite_url):  # type: ignore[no-untyped-def]
    async with running_site(sqlite_url) as s:
        await s.app[AUTH].add_user("agent1", role="agent", password=PASSWORD, extension="8001")
        yield s


async def _log_in(page: Page, site, next_: str, *, form_next: str | None = None) -> str:  # type: ignore[no-untyped-def]
    await page.goto(f"{site.url}/login?next={quote(next_, safe='')}")
    if form_next is not None:  # what the script does with a value the server let through
        await page.evaluate("v => document.getElementById('login-form').dataset.next = v", form_next)
    await page.get_by_test_id("login-username").fill("agent1")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(lambda url: "/login" not in url)
    return page.url


@pytest.mark.parametrize("next_", OFF_SITE)
async def test_login_never_sends_the_user_off_site(site, page, next_) -> None:  # type: ignore[no-untyped-def]
    assert await _log_in(page, site, next_) == site.url + "/"
    # Leave the desk first: logged out under it, its scripts would navigate to /login
    # themselves and race the test's own navigation.
    await page.goto("about:blank")
    await page.context.clear_cookies()
    # The page's own check, should a bad value reach the form.
    assert await _log_in(page, site, "/", form_next=next_) == site.url + "/"


async def test_a_path_on_this_site_is_kept(site, page) -> None:  # type: ignore[no-untyped-def]
    assert await _log_in(page, site, "/orders?status=待处理") == site.url + "/orders?status=%E5%BE%85%E5%A4%84%E7%90%86"


async def test_the_server_hands_the_page_only_a_local_next(site, page) -> None:  # type: ignore[no-untyped-def]
    for next_ in OFF_SITE:
        await page.goto(f"{site.url}/login?next={quote(next_, safe='')}")
        assert await page.get_attribute("#login-form", "data-next") == "/", next_

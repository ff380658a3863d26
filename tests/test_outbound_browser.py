"""预约回拨 from a pop card in a real browser: the agent books a callback for the caller; the
job is on the outbound board, masked."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER
from callcenter.db.outbound import OutboundJob
from tests.test_agent_desktop_browser import (
    CALLER,
    Desk,
    _assert_no_full_number,
    _open_desk,
    desk,
    desk_page,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser]
__all__ = ["desk", "desk_page"]  # the desk's fixtures, shared


async def test_book_a_callback_from_the_pop(desk: Desk, desk_page: Page) -> None:
    page = desk_page
    await _open_desk(page, desk)
    linkedid = await desk.sim.place_call(caller=CALLER, answer_after=2.0, talk=60.0)
    card = page.locator(f'[data-testid="pop-card"][data-call-id="{linkedid}"]')
    await expect(card.get_by_test_id("pop-customer-name")).to_have_text("张*")
    await card.get_by_test_id("book-callback-btn").click()
    dialog = page.get_by_test_id("callback-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("callback-reason").fill("客户在开会，下午回电确认上门时间")
    await dialog.get_by_test_id("callback-to-me").check()
    await dialog.get_by_test_id("callback-submit").click()
    await expect(dialog).to_be_hidden()

    async def booked():  # type: ignore[no-untyped-def]
        async with desk.app[SESSIONMAKER]() as s:
            return (await s.execute(select(OutboundJob))).scalars().first()

    job = await wait_for(booked, 10, message="callback booked")
    assert (job.kind, job.status, job.reason, job.number_masked) == (
        "callback", "scheduled", "客户在开会，下午回电确认上门时间", "138****8000")
    assert job.agent_id is not None and job.created_by == job.agent_id
    await _assert_no_full_number(page)

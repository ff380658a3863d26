"""The outbox's pure rules: the retry schedule, when the reminder is due, the texts, the number
check, and the settings that choose the gateway and the sender's interval."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from callcenter.notify.gateway import (
    GATEWAYS, RecordingGateway, format_hotline, is_service_number, is_sms_number, make_gateway,
)
from callcenter.notify.rules import MAX_ATTEMPTS, REMINDER_HEADROOM, reminder_due, retry_at
from callcenter.notify.visits import VisitFacts, confirmation_text, reminder_text, window_text
from callcenter.settings import Settings, SettingsError
from callcenter.sla.rules import ALLOWANCES, REMINDER_LEAD, warning_offset
from tests.privacy_scan import LogScan, find_mobiles

T = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)
TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("attempts", "expected"), [
    (1, T + 1 * M),
    (2, T + 5 * M),
    (3, T + 15 * M),
    (4, None),
    (5, None),
])
def test_retry_schedule(attempts: int, expected: dt.datetime | None) -> None:
    assert retry_at(attempts, T) == expected


def test_retry_counts_attempts_from_one() -> None:
    assert MAX_ATTEMPTS == 4
    with pytest.raises(ValueError):
        retry_at(0, T)


START = T + 5 * H  # the visit


@pytest.mark.parametrize(("booked", "due"), [
    (START - 3 * 24 * H, START - H - 15 * M),   # well ahead: 1 h 15 min before the visit
    (START - H - 15 * M, START - H - 15 * M),   # booked exactly then: at once
    (START - H - 10 * M, START - H - 10 * M),   # later, before the 1 h mark: at once
    (START - H - dt.timedelta(microseconds=1), START - H - dt.timedelta(microseconds=1)),
    (START - H, None),                          # at the 1 h mark: the booking call was the reminder
    (START - 30 * M, None),
    (START + M, None),
])
def test_reminder_due(booked: dt.datetime, due: dt.datetime | None) -> None:
    assert reminder_due(START, booked) == due


def test_the_reminder_is_due_before_the_sla_reminder_clock_warns() -> None:
    """The SLA reminder clock (deadline visit − 1 h, a 1-hour window) warns 12 min before its
    deadline: the message is due before that, with room for a retry."""
    deadline = START - REMINDER_LEAD
    warns = deadline - ALLOWANCES["reminder"] + warning_offset(ALLOWANCES["reminder"])
    due = reminder_due(START, START - 24 * H)
    assert due is not None and due + 1 * M < warns < deadline
    assert REMINDER_HEADROOM == 15 * M


FACTS = VisitFacts(
    appointment_number="AP20261124-001", order_number="WO20261124-001", customer="张*",
    window_start=T, window_end=T + 2 * H, service_content="检修空调，客户说回电 13800138000",
    prepare="保持空调通电，清理外机周围1米空间", fee_notes="保修期内（至2029-05-08）：上门费、人工与配件免费",
    engineer="赵*", staff_no="GY2024001", hotline=format_hotline("4008001234"))


def test_window_text_in_the_centres_time_zone() -> None:
    assert window_text(T, T + 2 * H, TZ) == "11月24日（周二）14:00–16:00"
    late = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai
    assert window_text(late, late + 2 * H, TZ) == "11月24日（周二）23:00–11月25日01:00"


def test_confirmation_text_has_the_form_and_no_number() -> None:
    text = confirmation_text(FACTS, TZ)
    for part in ("张*", "AP20261124-001", "WO20261124-001", "11月24日（周二）14:00–16:00", "检修空调",
                 "赵*（工号GY2024001）", "保持空调通电", "保修期内", "400-800-1234"):
        assert part in text, part
    assert find_mobiles(text) == []
    assert "13800138000" not in text and "138****8000" in text  # free text masked


def test_reminder_text() -> None:
    text = reminder_text(FACTS, TZ)
    for part in ("张*", "温馨提醒", "赵*（工号GY2024001）", "11月24日（周二）14:00–16:00", "AP20261124-001",
                 "保持空调通电", "400-800-1234"):
        assert part in text, part
    assert find_mobiles(text) == []


def test_texts_without_engineer_or_preparation() -> None:
    bare = replace(FACTS, engineer="", staff_no="", prepare="", fee_notes="")
    assert "工号" not in confirmation_text(bare, TZ) and "准备" not in confirmation_text(bare, TZ)
    assert "服务工程师将于" in reminder_text(bare, TZ)


def test_long_free_text_is_cut() -> None:
    text = confirmation_text(replace(FACTS, prepare="很长的说明" * 100), TZ)
    assert len(text) < 400 and "…" in text


@pytest.mark.parametrize(("number", "ok"), [
    ("13800138000", True),
    ("19912345678", True),
    ("12800138000", False),        # no such mobile prefix
    ("1380013800", False),         # 10 digits
    ("138001380001", False),       # 12 digits
    ("+8613800138000", False),     # not normalised
    ("013800138000", False),
    ("138 0013 8000", False),
    ("13800138000\r\n", False),    # CR/LF
    ("１３８００１３８０００", False),  # full-width digits
    ("01088886666", False),        # landline
    ("4008001234", False),
    ("", False),
])
def test_only_mainland_mobiles_are_texted(number: str, ok: bool) -> None:
    assert is_sms_number(number) is ok


@pytest.mark.parametrize(("number", "ok"), [
    ("4008001234", True), ("8008001234", True), ("95588", True), ("400-800-1234", False),
    ("13800138000", False), ("40080012345", False),
])
def test_hotline_numbers(number: str, ok: bool) -> None:
    assert is_service_number(number) is ok


def test_hotline_format() -> None:
    assert format_hotline("4008001234") == "400-800-1234"
    assert format_hotline("95588") == "95588"


def test_settings_choose_the_gateway_and_interval() -> None:
    d = Settings.from_env({})
    assert (d.sms_gateway, d.notify_interval, d.hotline) == ("record", 5.0, "4008001234")
    s = Settings.from_env({"CALLCENTER_SMS_GATEWAY": "Record", "CALLCENTER_NOTIFY_INTERVAL": "0",
                           "CALLCENTER_HOTLINE": "8008001234"})
    assert (s.sms_gateway, s.notify_interval, s.hotline) == ("record", 0.0, "8008001234")
    assert isinstance(make_gateway(s.sms_gateway), RecordingGateway)
    assert set(GATEWAYS) == {"record"}


@pytest.mark.parametrize(("variable", "value"), [
    ("CALLCENTER_SMS_GATEWAY", "aliyun-typo"),
    ("CALLCENTER_NOTIFY_INTERVAL", "soon"),
    ("CALLCENTER_NOTIFY_INTERVAL", "-1"),
    ("CALLCENTER_HOTLINE", "13800138000"),
])
def test_bad_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.from_env({variable: value})
    assert e.value.variable == variable
    assert variable in str(e.value)


async def test_the_recording_gateway_logs_only_the_masked_number() -> None:
    with LogScan() as logs:
        gateway_id = await RecordingGateway().send("13800138000", "【家电售后】张*您好", "ntf-7")
    assert gateway_id == "rec-ntf-7"
    assert [line for line in logs.lines if "ntf-7" in line and "138****8000" in line]
    assert not any("张*您好" in line for line in logs.lines)

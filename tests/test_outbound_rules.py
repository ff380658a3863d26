"""The outbound rules (callcenter.outbound.rules): parametrised tables and a property test over
times and time zones — never dialled outside the calling hours or on the do-not-call list."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.ami.codec import encode_action
from callcenter.outbound import rules
from callcenter.outbound.rules import Bucket, CallingHours, Refused

SH = ZoneInfo("Asia/Shanghai")
HOURS = CallingHours(SH)
UTC = dt.UTC


def local(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=SH)


@pytest.mark.parametrize(("when", "allowed"), [
    (local(2026, 11, 24, 8, 59), False),
    (local(2026, 11, 24, 9, 0), True),
    (local(2026, 11, 24, 20, 59), True),
    (local(2026, 11, 24, 21, 0), False),
    (local(2026, 11, 24, 3, 0), False),
    # 01:00 UTC is 09:00 in Shanghai
    (dt.datetime(2026, 11, 24, 1, 0, tzinfo=UTC), True),
])
def test_calling_hours(when, allowed):
    assert HOURS.allows(when) is allowed


@pytest.mark.parametrize(("now", "expected"), [
    (local(2026, 11, 24, 7, 30), local(2026, 11, 24, 9, 0)),
    (local(2026, 11, 24, 10, 0), local(2026, 11, 24, 10, 0)),
    (local(2026, 11, 24, 21, 30), local(2026, 11, 25, 9, 0)),
    (local(2026, 11, 24, 23, 59), local(2026, 11, 25, 9, 0)),
])
def test_next_open(now, expected):
    assert HOURS.next_open(now) == expected.astimezone(UTC)


def test_holidays_are_skipped():
    hours = CallingHours(SH, holidays=frozenset({dt.date(2026, 10, 1), dt.date(2026, 10, 2)}))
    assert not hours.allows(local(2026, 10, 1, 10, 0))
    assert hours.next_open(local(2026, 9, 30, 22, 0)) == local(2026, 10, 3, 9, 0).astimezone(UTC)
    assert hours.next_open(local(2026, 10, 1, 12, 0)) == local(2026, 10, 3, 9, 0).astimezone(UTC)


@pytest.mark.parametrize(("outcome", "attempts", "minutes"), [
    ("busy", 1, 10), ("no_answer", 1, 60), ("congestion", 1, 5), ("failure", 2, 5), ("unknown", 1, 5),
])
def test_retry_by_outcome(outcome, attempts, minutes):
    now = local(2026, 11, 24, 10, 0)
    assert rules.next_retry(outcome, attempts, now, HOURS) == (now + dt.timedelta(minutes=minutes)).astimezone(UTC)


def test_retry_limits():
    now = local(2026, 11, 24, 10, 0)
    assert rules.next_retry("busy", 3, now, HOURS) is None  # three attempts made
    assert rules.next_retry("answered", 1, now, HOURS) is None
    # past the deadline: exhausted; late in the evening: next morning
    assert rules.next_retry("no_answer", 1, now, HOURS, deadline=now + dt.timedelta(minutes=30)) is None
    assert rules.next_retry("no_answer", 1, local(2026, 11, 24, 20, 30), HOURS) == local(2026, 11, 25, 9, 0).astimezone(UTC)


@pytest.mark.parametrize(("reason", "outcome"), [
    ("4", "answered"), ("5", "busy"), ("3", "no_answer"), ("8", "congestion"), ("0", "failure"),
    ("1", "hangup"), ("99", "failure"), ("", "failure"), (None, "failure"),
])
def test_originate_reasons(reason, outcome):
    assert rules.outcome_of(reason) == outcome


def test_token_bucket_paces_to_the_rate():
    # A dialler that sleeps exactly the wait it is told gets the rate, not more.
    b = Bucket(1.0, 0.0)
    granted = []
    t = 0.0
    while t < 10.0:
        wait, b = rules.take_token(b, t, rate=50)
        if wait == 0:
            granted.append(t)
            t += 0.0003  # the work of one originate
        else:
            assert 0 < wait <= 1 / 50 + 1e-9
            t += wait
    assert 499 <= len(granted) <= 501
    # polled too late, it does not catch up beyond the burst
    wait, b = rules.take_token(Bucket(0.0, 0.0), 0.001, rate=50)
    assert wait > 0
    # a burst never exceeds the bucket's size
    wait, b = rules.take_token(Bucket(0.0, 0.0), 100.0, rate=50)
    assert wait == 0 and b.tokens == 0.0


def test_free_channels():
    assert rules.free_channels(3, 10) == 7
    assert rules.free_channels(12, 10) == 0


@pytest.mark.parametrize("number", ["13800138000", "19912345678", "01088886666", "075512345678", "05711234567"])
def test_valid_numbers(number):
    assert rules.validate_number(number) == number


@pytest.mark.parametrize(("number", "why"), [
    ("008613800138000", "international"), ("+8613800138000", "international"),
    ("19001234567", "premium"), ("95588", "service"), ("4008001234", "service"),
    ("10086", "service"), ("12345", "service"), ("1380013800a", "digits"),
    ("13800138000\r\nAction: Hangup", "control"), ("138 0013 8000", "digits"), ("", "empty"),
    ("1380013800", "mainland"), ("23800138000", "mainland"), ("１３８００１３８０００", "digits"),
])
def test_refused_numbers(number, why):
    with pytest.raises(Refused) as e:
        rules.validate_number(number)
    assert e.value.code == "invalid_number"
    assert why in str(e.value)


def test_prefixes_restrict():
    with pytest.raises(Refused):
        rules.validate_number("01088886666", prefixes=("13",))


def _headers(**kw):
    base = {"attempt_id": "ob-12-1-0123abcd", "number": "13800138000",
                "channel_template": "Local/{number}@outbound-trunk", "context": "survey",
                "caller_id": "4008001234", "timeout_s": 30, "variables": {"SURVEY_JOB": "ob-12-1-0123abcd",
                                                                  "WORK_ORDER": "WO20261122-007"}}
    base.update(kw)
    return rules.originate_headers(**base)


def test_originate_headers_like_the_recording():
    h = _headers()
    assert h == {"Channel": "Local/13800138000@outbound-trunk", "Context": "survey", "Exten": "s",
                 "Priority": 1, "Async": True, "Timeout": 30000, "CallerID": "<4008001234>",
                 "ChannelId": "ob-12-1-0123abcd",
                 "Variable": "SURVEY_JOB=ob-12-1-0123abcd,WORK_ORDER=WO20261122-007"}
    assert b"Async: true\r\n" in encode_action("Originate", "ob-12-1-0123abcd", h)


@pytest.mark.parametrize("bad", [
    {"attempt_id": "ob-1-1-0123abcd\r\nAction: Hangup"}, {"attempt_id": "cc-1"},
    {"number": "1380013800\n0"}, {"number": "13800138000,1"}, {"context": "survey\r\nX: y"},
    {"context": "sur vey"}, {"caller_id": "400800\r\n1234"}, {"caller_id": "<4008001234>"},
    {"variables": {"WORK_ORDER": "WO1\r\nAction: Originate"}}, {"variables": {"WORK_ORDER": "a,b=c"}},
    {"variables": {"bad name": "x"}}, {"channel_template": "Local/{number}@x\r\ny"},
    {"channel_template": "Local/13800138000@x"}, {"timeout_s": 0},
])
def test_originate_headers_refuse_anything_odd(bad):
    with pytest.raises(Refused):
        _headers(**bad)


def test_window_and_holiday_parsing():
    assert rules.parse_window("08:30-20:00") == (dt.time(8, 30), dt.time(20, 0))
    for bad in ("21:00-09:00", "9-21", "", "09:00"):
        with pytest.raises(ValueError):
            rules.parse_window(bad)
    assert rules.parse_holidays("2026-10-01, 2026-10-02") == {dt.date(2026, 10, 1), dt.date(2026, 10, 2)}
    with pytest.raises(ValueError):
        rules.parse_holidays("2026-13-01")


# -- property: never outside hours, never on the DNC list ---------------------------------------

ZONES = ["Asia/Shanghai", "Asia/Urumqi", "UTC", "America/New_York", "Europe/London",
         "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Asia/Kathmandu"]
times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31),
                     timezones=st.just(UTC))
windows = st.tuples(st.integers(0, 22), st.integers(0, 59), st.integers(1, 23), st.integers(0, 59)).filter(
    lambda w: (w[0], w[1]) < (w[2], w[3]))


@settings(max_examples=400, deadline=None)
@given(now=times, zone=st.sampled_from(ZONES), window=windows, on_dnc=st.booleans(),
       holidays=st.lists(st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)), max_size=5))
def test_never_dialled_outside_hours_or_on_dnc(now, zone, window, on_dnc, holidays):
    tz = ZoneInfo(zone)
    hours = CallingHours(tz, dt.time(window[0], window[1]), dt.time(window[2], window[3]),
                         frozenset(holidays))
    d = rules.may_dial(now, hours, on_dnc=on_dnc)
    if d.dial:
        local_now = now.astimezone(tz)
        assert not on_dnc
        assert local_now.date() not in hours.holidays
        assert hours.start <= local_now.time() < hours.end
    if on_dnc:
        assert not d.dial and d.stop == "dnc"
    if d.later is not None:
        # the next opening is in the future and inside the window
        assert d.later >= now and hours.allows(d.later)
    opening = hours.next_open(now)
    assert opening >= now and hours.allows(opening)
    retry = rules.next_retry("busy", 1, now, hours)
    assert retry is not None and hours.allows(retry) and retry >= now + dt.timedelta(minutes=10)

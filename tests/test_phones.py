"""Phone normalisation: every spelling of one number gives one key (table tests, no I/O)."""

from __future__ import annotations

import pytest

from callcenter.customers.phones import PhoneNumber, is_valid_for_storage, normalise

M = "mobile"
L = "landline"
S = "service"
O = "other"

CASES = [
    # raw, local_area_code, expected number, expected kind
    ("13800138000", "", "13800138000", M),
    ("+86 138 0013 8000", "", "13800138000", M),
    ("+8613800138000", "", "13800138000", M),
    ("0086-13800138000", "", "13800138000", M),
    ("008613800138000", "", "13800138000", M),
    ("8613800138000", "", "13800138000", M),
    ("013800138000", "", "13800138000", M),
    ("138-0013-8000", "", "13800138000", M),
    ("138 0013 8000", "", "13800138000", M),
    ("138.0013.8000", "", "13800138000", M),
    ("(138)00138000", "", "13800138000", M),
    ("１３８００１３８０００", "", "13800138000", M),
    ("＋８６　１３８－００１３－８０００", "", "13800138000", M),
    ("  19912345678  ", "", "19912345678", M),
    ("13800138000 转 123", "", "13800138000", M),
    ("13800138000-123", "", "13800138000", M),
    ("(010) 8888 6666", "", "01088886666", L),
    ("010-88886666", "", "01088886666", L),
    ("01088886666", "", "01088886666", L),
    ("+86 10 8888 6666", "", "01088886666", L),
    ("+86 (0)10 8888 6666", "", "01088886666", L),
    ("0086 10 88886666", "", "01088886666", L),
    ("861088886666", "", "01088886666", L),
    ("020-12345678", "", "02012345678", L),
    ("0755 8888 6666", "", "075588886666", L),
    ("0755-8888666", "", "07558888666", L),
    ("+86 755 8888 6666", "", "075588886666", L),
    ("（０７５５）８８８８６６６６", "", "075588886666", L),
    ("88886666", "", "88886666", L),  # local, no area code configured: kept as is
    ("88886666", "0755", "075588886666", L),
    ("8888666", "0755", "07558888666", L),
    ("8888-6666", "010", "01088886666", L),
    ("010-88886666-8001", "", "01088886666", L),
    ("010-88886666 转 8001", "", "01088886666", L),
    ("010-88886666 ext. 8001", "", "01088886666", L),
    ("010-88886666x8001", "", "01088886666", L),
    ("010-88886666#8001", "", "01088886666", L),
    ("01088886666,,8001", "", "01088886666", L),
    ("0755-8888666-12", "", "07558888666", L),
    ("4008001234", "", "4008001234", S),
    ("400-800-1234", "", "4008001234", S),
    ("400 800 1234", "", "4008001234", S),
    ("+86 400 800 1234", "", "4008001234", S),
    ("800 810 8888", "", "8008108888", S),
    ("8008108888", "0755", "8008108888", S),
    ("95588", "", "95588", S),
    ("95 588", "", "95588", S),
    ("95105555", "", "95105555", S),
    ("10086", "", "10086", S),
    ("12345", "", "12345", S),
    ("110", "", "110", S),
    ("+1 212 555 0100", "", "0012125550100", O),
    ("001 212 555 0100", "", "0012125550100", O),
    ("+44 20 7946 0958", "", "00442079460958", O),
    ("1380013800", "", "1380013800", O),  # 10 digits: one short of a mobile
    ("138001380001", "", "138001380001", O),  # 12 digits: one too many
    ("12345678901", "", "12345678901", O),  # 11 digits but 12… is no mobile range
    ("8888666", "010", "8888666", O),  # 010 needs 8 subscriber digits
    ("0123", "", "0123", O),
]

NONE_CASES = [
    None, "", "   ", "<unknown>", "<UNKNOWN>", "unknown", "anonymous", "Anonymous",
    "private", "restricted", "匿名", "abc", "138abc00138000", "call me", "13800138000 please",
    "12", "1", "+", "--", "1" * 21, "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits are not ours
]


@pytest.mark.parametrize(("raw", "area", "number", "kind"), CASES)
def test_normalise(raw: str, area: str, number: str, kind: str) -> None:
    assert normalise(raw, area) == PhoneNumber(number, kind)


@pytest.mark.parametrize("raw", NONE_CASES)
def test_no_usable_number(raw: str | None) -> None:
    assert normalise(raw) is None


def test_every_spelling_one_key() -> None:
    spellings = ["+86 138 0013 8000", "0086-13800138000", "8613800138000", "013800138000",
                 "138-0013-8000", "１３８００１３８０００", "13800138000"]
    assert {normalise(s) for s in spellings} == {PhoneNumber("13800138000", M)}


def test_normalise_is_idempotent() -> None:
    for raw, area, _, _ in CASES:
        first = normalise(raw, area)
        assert first is not None
        assert normalise(first.number, area) == first, raw


STORAGE = [
    ("13800138000", "", True, ""),
    ("+86 10 8888 6666", "", True, ""),
    ("88886666", "0755", True, ""),
    ("+1 212 555 0100", "", True, ""),
    ("", "", False, "empty"),
    ("   ", "", False, "empty"),
    ("<unknown>", "", False, "not a phone number"),
    ("abc", "", False, "not a phone number"),
    ("4008001234", "", False, "service number"),
    ("95588", "", False, "service number"),
    ("88886666", "", False, "without area code"),
    ("1380013800", "", False, "wrong length"),
    ("1" * 65, "", False, "longer than 64"),
    ("+1 23", "", False, "not a phone number"),
]


@pytest.mark.parametrize(("raw", "area", "ok", "reason"), STORAGE)
def test_is_valid_for_storage(raw: str, area: str, ok: bool, reason: str) -> None:
    got_ok, got_reason = is_valid_for_storage(raw, area)
    assert got_ok is ok
    assert reason in got_reason
    assert "138" not in got_reason  # the reason never repeats the number

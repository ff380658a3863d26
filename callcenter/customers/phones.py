"""Phone-number normalisation for mainland China: every spelling of one number → one key.

Pure (no I/O). The SAME :func:`normalise` runs before a number is sealed for storage (its blind
index in ``customer_phones.number_index``, ``calls.caller_index``; ``callcenter.crypto``) and when
an inbound CallerIDNum is looked up, so ``+86 138 0013 8000``, ``0086-13800138000`` and
``013800138000`` all find one customer.

Canonical form = national digits, no separators:

===========  =====================================================  =================
kind         rule                                                   example
===========  =====================================================  =================
mobile       11 digits ``1[3-9]xxxxxxxxx``                           ``13800138000``
landline     trunk ``0`` + area code + subscriber. 010 and 02X are   ``01088886666``
             3-digit codes with 8-digit subscribers; the others     ``075588886666``
             are ``0[3-9]XX`` with 7- or 8-digit subscribers.
             A bare 7/8-digit local number gets ``local_area_code``
             in front, or stays as it is when none is configured.
service      400/800 + 7 digits; 95xxx…95xxxxxx; 96xxx/96xxxx;       ``4008001234``
             5-digit carrier/government lines 10xxx/11xxx/12xxx;    ``95588``
             3-digit 11x/12x emergency lines.
other        anything else that is only digits (3–20 of them);      ``0012125550100``
             foreign numbers are written ``00`` + country code.
===========  =====================================================  =================

Prefixes removed first: ``+86``, ``0086``, a bare ``86`` when what follows is a complete
mobile or landline, and a trunk ``0`` before a mobile (PBX trunks send ``013800138000``).

Extensions are not part of a number's identity and are dropped: ``转 8001``, ``ext 8001``,
``x8001``, ``#8001``, ``,8001`` (dial pause), and a trailing dash group after a complete
landline (``010-88886666-8001``).

Returns None (no key, "anonymous") for: empty, ``<unknown>``, ``anonymous`` and other
withheld-number words, anything with letters left after the extension is cut, fewer than 3
digits or more than 20. Letters never become ``other``: a key must be something one can dial.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MOBILE = "mobile"
LANDLINE = "landline"
SERVICE = "service"
OTHER = "other"
KINDS = (MOBILE, LANDLINE, SERVICE, OTHER)

# What Asterisk and carriers put in CallerIDNum when the caller withheld the number.
_WITHHELD = frozenset({
    "", "<unknown>", "unknown", "anonymous", "private", "restricted", "withheld",
    "unavailable", "none", "null", "s", "匿名", "未知", "无",
})
_EXTENSION = re.compile(r"(?:(?:转|分机|ext\.?|extension|x|#|,|;|p|w)\s*)+\d{0,8}\s*$", re.IGNORECASE)
# NFKC already turned full-width forms into ASCII; dashes of other widths remain.
_SEPARATORS = re.compile(r"[\s\-.()/\[\]‐‑‒–—―]+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_SERVICE = re.compile(r"(?:400|800)\d{7}|95\d{3,6}|96\d{3,4}|1[0-2]\d{3}|1[12]\d")
# Landline with its trunk 0: 010/02X + 8, or 0[3-9]XX + 7/8.
_LANDLINE = re.compile(r"0(?:10|2\d)\d{8}|0[3-9]\d{2}\d{7,8}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")
_MIN_DIGITS = 3
_MAX_DIGITS = 20


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A normalised number: ``number`` is the canonical key, ``kind`` one of :data:`KINDS`."""

    number: str
    kind: str


def normalise(raw: str | None, local_area_code: str = "") -> PhoneNumber | None:
    """The canonical key of ``raw``, or None when there is no usable number.

    ``local_area_code`` (e.g. ``"0755"``) is put in front of bare 7/8-digit local numbers;
    with ``""`` they stay as they are (kind landline).
    """
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower() in _WITHHELD:
        return None
    text = _cut_extension(text)
    international = text.startswith("+")
    body = _SEPARATORS.sub("", text.lstrip("+"))
    if not body.isdigit() or not body.isascii():
        return None
    if international:
        body = "00" + body
    found = _classify(body, local_area_code)
    if found is None and not international:
        # "010-88886666-8001": the last dash/space group after a complete number is an extension.
        groups = [g for g in re.split(r"[\s\-]+", text) if g]
        if len(groups) >= 2 and groups[-1].isdigit() and len(groups[-1]) <= 5:
            shorter = _SEPARATORS.sub("", "".join(groups[:-1]))
            if shorter.isdigit():
                again = _classify(shorter, local_area_code)
                if again is not None and again.kind in (LANDLINE, MOBILE, SERVICE):
                    return again
    if found is None and not international and _MIN_DIGITS <= len(body) <= _MAX_DIGITS:
        return PhoneNumber(body, OTHER)
    return found


def _cut_extension(text: str) -> str:
    """Drop an explicit extension suffix (转/ext/x/#/,) but never eat the whole number."""
    m = _EXTENSION.search(text)
    if m and m.start() > 0 and any(c.isdigit() for c in text[: m.start()]):
        return text[: m.start()].strip()
    return text


def _classify(digits: str, local_area_code: str) -> PhoneNumber | None:
    """Classify a digit string (``00`` = international prefix); None if it fits no rule."""
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    if digits.startswith("00"):
        if digits.startswith("0086"):
            return _national(digits[4:], local_area_code, country_code_given=True)
        return PhoneNumber(digits, OTHER) if len(digits) >= 7 else None
    if digits.startswith("86") and len(digits) >= 12:
        # A bare 86 only counts as the country code when a complete number follows.
        found = _national(digits[2:], "", country_code_given=True)
        if found is not None and found.kind in (MOBILE, LANDLINE):
            return found
    return _national(digits, local_area_code, country_code_given=False)


def _national(digits: str, local_area_code: str, *, country_code_given: bool) -> PhoneNumber | None:
    if _MOBILE.fullmatch(digits):
        return PhoneNumber(digits, MOBILE)
    if digits.startswith("0") and _MOBILE.fullmatch(digits[1:]):
        return PhoneNumber(digits[1:], MOBILE)  # trunk 0 before a mobile
    if _LANDLINE.fullmatch(digits):
        return PhoneNumber(digits, LANDLINE)
    if _SERVICE.fullmatch(digits):
        return PhoneNumber(digits, SERVICE)
    if country_code_given and _LANDLINE.fullmatch("0" + digits):
        return PhoneNumber("0" + digits, LANDLINE)  # +86 10 8888 6666: add the trunk 0
    if not country_code_given and _LOCAL.fullmatch(digits):
        if not local_area_code:
            return PhoneNumber(digits, LANDLINE)
        if _LANDLINE.fullmatch(local_area_code + digits):
            return PhoneNumber(local_area_code + digits, LANDLINE)
    return None


def is_valid_for_storage(raw: str | None, local_area_code: str = "") -> tuple[bool, str]:
    """Whether ``raw`` may be stored as a customer's number: ``(True, "")`` or ``(False, reason)``.

    Stricter than :func:`normalise`: a customer's number must be reachable and unambiguous.
    Rejected: nothing usable; service numbers (400/800/95xxx are businesses, not customers);
    a local number without area code when none is configured (it would never match the same
    number dialled with its area code); national numbers of a wrong length (kind ``other``
    that is not international); foreign numbers longer than E.164's 15 digits. The reason
    never contains the number itself.
    """
    if raw is None or not raw.strip():
        return False, "empty"
    if len(raw) > 64:
        return False, "longer than 64 characters"
    found = normalise(raw, local_area_code)
    if found is None:
        return False, "not a phone number"
    if found.kind == SERVICE:
        return False, "a service number (400/800/95xxx) cannot be a customer's number"
    if found.kind == LANDLINE and not found.number.startswith("0"):
        return False, "local landline without area code"
    if found.kind == OTHER:
        if not found.number.startswith("00"):
            return False, "not a valid mobile or landline number (wrong length or prefix)"
        if not 7 <= len(found.number) - 2 <= 15:
            return False, "foreign number of impossible length"
    return True, ""

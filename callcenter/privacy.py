"""Masking of personal data for screens, logs and reports (pure, no I/O).

What an agent sees by default: enough to greet the caller and confirm the record (surname,
area code, last 4 digits, district), never enough to call or visit the customer. The full
values are shown only through the audited reveal.

Rules
-----
Phones (give the normalised number, see ``customers.phones``; non-digits are ignored):
  * 11 or more digits: a prefix, ``****``, the last 4. The prefix is the area code for
    landlines (``010****6666``, ``0755****6666``), else the first 3 (``138****8000``,
    ``001****0100``). Always exactly four stars, so the length of the hidden part is not told.
  * 8–10 digits: ``****`` + last 4; a 400/800 number keeps its 3-digit prefix
    (``400****1234``).
  * 5–7 digits: all but the last 2 hidden (``***88``).
  * up to 4 digits: all hidden.
Names:
  * Chinese: the surname stays, every other character becomes ``*`` (``张三`` → ``张*``,
    ``王小明`` → ``王**``); a compound surname (``欧阳娜娜`` → ``欧阳**``) stays whole when the
    name is longer than the surname. A name of one character, or a two-character name that is
    only a compound surname, keeps just its first character. ``·`` between parts of
    transliterated names stays.
  * Latin and others: each word keeps its initial, each other letter becomes ``*``
    (``Zhang San`` → ``Z**** S**``; ``Mary-Ann Lee`` → ``M***-A** L**``).
Addresses: province, city, district only (the city is left out when it repeats the province,
as for 北京市北京市); the street and door number never.
Free text (remarks, problem descriptions, timeline notes): any run of 7 or more digits —
possibly with spaces, dashes or dots inside — is masked like a phone number, since agents type
numbers into notes. Left alone: our record numbers (``CR``/``WO``/``AP``/``OS``/``CS``/``DA`` +
8-digit date + ``-`` + 3–4 digit serial, e.g. ``OS20261123-004``) and dates with an optional
time (``2024-05-20``, ``2024.5.20``, ``2024/05/20``, ``2026-11-23 14:00``,
``2026-11-23T14:00:00+08:00``); a digit run glued to one of them (``WO20261123-0011380…``) is no
record number and is masked.
"""

from __future__ import annotations

import re

COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔", "申屠", "钟离",
    "闾丘", "东郭", "南宫", "西门", "百里", "呼延", "端木", "独孤", "万俟", "司空", "拓跋", "赫连",
})
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# 7+ digits, possibly split by single spaces/dashes/dots (138 0013 8000, 010-8888-6666).
_NUMBER_IN_TEXT = re.compile(r"\+?\d(?:[\s\-.]?\d){6,}")
_AREA3 = re.compile(r"0(?:10|2\d)")
# Record numbers and dates look like digit runs too but are no phone numbers. Neither may touch
# another digit, so a number cannot hide inside or behind one.
RECORD_PREFIXES = ("CR", "WO", "AP", "OS", "CS", "DA")
_RECORD_NUMBER = rf"(?<![A-Za-z0-9])(?:{'|'.join(RECORD_PREFIXES)})\d{{8}}-\d{{3,4}}(?!\d)"
_DATE_TIME = (r"(?<!\d)(?:19|20)\d{2}([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
              r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)")
_NOT_A_PHONE = re.compile(f"{_RECORD_NUMBER}|{_DATE_TIME}")


def mask_phone(number: str) -> str:
    """The masked form of a (normalised) phone number; see the module rules."""
    digits = "".join(c for c in number if c.isdigit())
    n = len(digits)
    if n >= 11:
        if digits.startswith("0") and not digits.startswith("00"):
            prefix = digits[:3] if _AREA3.match(digits) else digits[:4]
        else:
            prefix = digits[:3]
        return prefix + "****" + digits[-4:]
    if n >= 8:
        prefix = digits[:3] if n == 10 and digits[:3] in ("400", "800") else ""
        return prefix + "****" + digits[-4:]
    if n >= 5:
        return "*" * (n - 2) + digits[-2:]
    return "*" * n


def mask_name(name: str) -> str:
    """The masked form of a person's name; see the module rules."""
    name = name.strip()
    if not name:
        return ""
    if _CJK.match(name):
        keep = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[:keep] + "".join(c if c in "·•・ " else "*" for c in name[keep:])
    return _WORD.sub(lambda m: m.group()[0] + "*" * (len(m.group()) - 1), name)


def mask_address(province: str, city: str, district: str, detail: str = "") -> str:
    """The address down to the district; ``detail`` (street, door) is never shown."""
    del detail  # accepted so callers can pass a whole address; deliberately unused
    parts = [p.strip() for p in (province, city, district) if p and p.strip()]
    if len(parts) >= 2 and parts[0] == parts[1]:
        parts.pop(1)
    sep = " " if any(p.isascii() for p in parts) else ""
    return sep.join(parts)


def full_address(province: str, city: str, district: str, detail: str = "") -> str:
    """The whole address as one line (for the audited reveal)."""
    parts = [p.strip() for p in (province, city, district, detail) if p and p.strip()]
    if len(parts) >= 2 and parts[0] == parts[1]:
        parts.pop(1)
    sep = " " if any(p.isascii() for p in parts) else ""
    return sep.join(parts)


def _mask_runs(text: str) -> str:
    return _NUMBER_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)


def mask_numbers_in_text(text: str) -> str:
    """``text`` with every phone-like digit run (7+ digits) masked; record numbers and dates
    (see the module rules) kept as they are."""
    out, pos = [], 0
    for m in _NOT_A_PHONE.finditer(text):
        out += [_mask_runs(text[pos:m.start()]), m.group()]
        pos = m.end()
    out.append(_mask_runs(text[pos:]))
    return "".join(out)

"""Scanning API answers, websocket messages and log lines for unmasked personal data.

Reusable by every slice's tests::

    from tests.privacy_scan import LogScan, ScanningClient, assert_no_personal

    async def test_my_endpoints(client, caplog):
        api = ScanningClient(client, secrets=["张三丰", "科技园路 8 号"])   # aiohttp test client
        with LogScan(secrets=api.secrets) as logs:
            r = await api.get("/api/orders/1")      # the body is scanned before you see it
            ...
        assert api.scanned >= 1 and logs.lines       # log lines were scanned on exit

A mainland mobile number is 11 digits ``1[3-9]xxxxxxxxx``. It is found as a whole run of digits,
also behind a country prefix (``8613800138000``, ``008613800138000``) or a trunk ``0``
(``013800138000``), and with single spaces or dashes inside (``138 0013 8000``,
``138-0013-8000``) — but not inside longer numbers (a 13-digit timestamp starting 17… is no
phone). ``secrets`` are exact strings (full names, street addresses, landlines) that must not
appear either. ``/api/reveal`` is the one endpoint allowed to answer unmasked values.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

# Runs of digits, allowing a single space or dash between digits.
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d)*")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PREFIXES = ("", "86", "0086", "0")
EXEMPT = ("/api/reveal",)


def find_mobiles(text: str) -> list[str]:
    """Every unmasked mobile number in ``text`` (normalised to its 11 digits)."""
    found = []
    for m in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"[ \-]", "", m.group())
        for prefix in _PREFIXES:
            rest = digits[len(prefix):]
            if digits.startswith(prefix) and len(rest) == 11 and _MOBILE.fullmatch(rest):
                found.append(rest)
                break
    return found


def personal_in(text: str, secrets: Iterable[str] = ()) -> list[str]:
    """The mobiles and secrets found in ``text``."""
    return find_mobiles(text) + [s for s in secrets if s and s in text]


def assert_no_personal(text: str, *, where: str = "", secrets: Iterable[str] = ()) -> None:
    hits = personal_in(text, secrets)
    assert not hits, f"personal data {hits} in {where or 'text'}: {text[:500]}"


class ScanningClient:
    """An aiohttp test client whose every answer body is scanned (``/api/reveal`` exempt)."""

    def __init__(self, client: Any, *, secrets: Iterable[str] = (), exempt: Iterable[str] = EXEMPT,
                 session: Any = None) -> None:
        self.client = client
        # A logged-in aiohttp.ClientSession (cookies), else the test client itself.
        self.session = session
        self.secrets = list(secrets)
        self.exempt = tuple(exempt)
        self.scanned = 0

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        if self.session is not None:
            r = await self.session.request(method, self.client.make_url(path), **kw)
        else:
            r = await self.client.request(method, path, **kw)
        text = await r.text()
        if not path.split("?")[0].startswith(self.exempt):
            assert_no_personal(text, where=f"{method} {path} ({r.status})", secrets=self.secrets)
            self.scanned += 1
        return r

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Any:
        return await self.request("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> Any:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)


def scan_messages(messages: Iterable[dict[str, Any]], *, secrets: Iterable[str] = (),
                  where: str = "websocket") -> int:
    """Scan websocket messages (as parsed JSON); returns how many were scanned."""
    n = 0
    for m in messages:
        assert_no_personal(json.dumps(m, ensure_ascii=False), where=where, secrets=secrets)
        n += 1
    return n


class LogScan(logging.Handler):
    """Collects every log record (``level`` and up, all loggers) while active; on exit, asserts
    that no line — message, arguments and traceback — holds personal data. The lines are taken
    before ``callcenter.logs.MaskingFormatter`` (the last line of defence) could mask anything.
    Default INFO, what a centre runs with (at DEBUG, drivers print 64-hex blind indexes, whose
    digit runs can look like a number). ``aiohttp.access`` is not scanned: the product serves
    without an access log (``callcenter serve``: ``access_log=None``), only the test server
    writes one — and it holds query strings such as ``?phone=``."""

    def __init__(self, *, secrets: Iterable[str] = (), level: int = logging.INFO,
                 ignore: Iterable[str] = ("aiohttp.access",)) -> None:
        super().__init__(level)
        self.secrets = list(secrets)
        self.ignore = tuple(ignore)
        self.lines: list[str] = []
        self._root_level = logging.NOTSET
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.ignore):
            return
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot format is itself a finding
            self.lines.append(f"UNFORMATTABLE {record.name} {record.msg!r} {record.args!r}")

    def __enter__(self) -> LogScan:
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(min(root.level or logging.WARNING, self.level))
        root.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._root_level)
        if exc[0] is None:
            self.check()

    def check(self) -> None:
        for line in self.lines:
            assert_no_personal(line, where="a log line", secrets=self.secrets)

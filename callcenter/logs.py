"""Logging set-up, with a last line of defence: any mobile number, and any password in a URL,
that slips into a log line is masked before it is written (the code itself logs only masked
numbers and ids)."""

from __future__ import annotations

import logging
import re

from callcenter.privacy import mask_phone

_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")


# scheme://user:password@host — the password part of any URL in a text.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*):[^/@\s]*@")


def mask_mobiles(text: str) -> str:
    return _MOBILE.sub(lambda m: mask_phone(m.group()[-11:]), text)


def mask_url_credentials(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` as ``scheme://user:***@`` (a database or
    Redis URL printed or logged must not carry its password). Pure."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


class MaskingFormatter(logging.Formatter):
    """Masks the whole formatted record — message, traceback and stack — not just the message:
    an exception's text (a library's error naming a value) is part of the line too."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_url_credentials(mask_mobiles(super().format(record)))


# Database drivers log every statement with its bound parameters at DEBUG — names, streets,
# ciphertexts, blind indexes — and SQLAlchemy echoes the text of every statement (and each
# BEGIN/COMMIT) at INFO: two log lines per statement, written synchronously on the event loop,
# which cost more than the statements themselves. So they stay at WARNING whatever the
# application's level.
DRIVER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm")


def quiet_drivers() -> dict[str, int]:
    """Raise the driver loggers to WARNING; returns their previous levels (for tests to restore)."""
    before = {name: logging.getLogger(name).level for name in DRIVER_LOGGERS}
    for name in DRIVER_LOGGERS:
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    return before


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every plugin and step at INFO on each start; only problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_drivers()

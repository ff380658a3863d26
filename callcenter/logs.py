"""Logging set-up, with a last line of defence: any mobile number that slips into a log line is
masked before it is written (the code itself logs only masked numbers and ids)."""

from __future__ import annotations

import logging
import re

from callcenter.privacy import mask_phone

_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")


class MaskNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = _MOBILE.sub(lambda m: mask_phone(m.group()[-11:]), msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskNumbers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every plugin and step at INFO on each start; only problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)

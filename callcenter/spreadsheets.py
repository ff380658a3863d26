"""Cells safe to open in a spreadsheet: one rule for every CSV and XLSX the server writes.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice
and WPS (a tab or carriage return first is stripped and the rest read the same way), so a model
name typed as ``=HYPERLINK("http://…","点击")`` would reach the supervisor's spreadsheet live.
Such text gets a leading apostrophe, which spreadsheets show as text (OWASP's advice for CSV
injection). A cell that is a plain number (``-3.5``, ``-12%``, ``1,234.00``) cannot be a
formula and is left as it is.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?%?\Z")


def safe_cell_text(text: str) -> str:
    """``text`` as a spreadsheet must show it, never as a formula. Pure."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def safe_cell(value: Any) -> Any:
    """A cell value for CSV or XLSX: text made safe (:func:`safe_cell_text`), numbers, dates
    and None as they are. Pure."""
    return safe_cell_text(value) if isinstance(value, str) else value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """A row of :func:`safe_cell` values, for ``csv.writer.writerow`` or ``Worksheet.append``."""
    return [safe_cell(v) for v in row]


class SafeCsvWriter:
    """``csv.writer`` that writes every row through :func:`safe_row`."""

    def __init__(self, out: Any) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(safe_row(row))

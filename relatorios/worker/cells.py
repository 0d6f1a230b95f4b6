"""How csv_excel and xlsx read a value: a number, a date or text, by the value's own type and its
column's catalog type (`-- @column`, docs/catalog.md), and text neutralised against formulas
(docs/protocol.md, "Formats"). The C worker applies the same rules (app/cells.c)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from relatorios.protocol import (
    DECIMAL_TEXT_PATTERN,
    FORMULA_START_CHARS,
    INTEGER_TEXT_PATTERN,
    XLSX_MAX_TEXT_UNITS,
)

DECIMAL_TEXT_RE = re.compile(rf"^(?:{DECIMAL_TEXT_PATTERN})\Z")
INTEGER_TEXT_RE = re.compile(rf"^(?:{INTEGER_TEXT_PATTERN})\Z")
DATE_TEXT_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# NUL, and the lone surrogates that stand for bytes of invalid UTF-8 (surrogateescape).
NOT_CELL_TEXT_RE = re.compile("[\x00\udc80-\udcff]")
# Integers beyond this lose digits as a spreadsheet number (a double): they stay text.
EXACT_INTEGER = 2**53


def number_text(value: str, column_type: str | None) -> bool:
    """A text value of an `integer` or `decimal` column that reads as a number."""
    if column_type == "decimal":
        return DECIMAL_TEXT_RE.match(value) is not None
    if column_type == "integer":
        return INTEGER_TEXT_RE.match(value) is not None
    return False


def date_value(value: str, column_type: str | None) -> dt.date | None:
    """A `date` column's YYYY-MM-DD text as a date (from 1900 on, as spreadsheets count)."""
    if column_type != "date" or not DATE_TEXT_RE.match(value):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if day.year >= 1900 else None


def is_formula_like(text: str) -> bool:
    return text[:1] in FORMULA_START_CHARS and text != ""


def column_types(names: Sequence[str], declared: dict[str, str]) -> list[str | None]:
    return [declared.get(name) for name in names]


def xlsx_text(text: str) -> str:
    """Text as a spreadsheet cell holds it: invalid UTF-8 and NUL as U+FFFD, at most
    XLSX_MAX_TEXT_UNITS UTF-16 units (Excel's limit), never cutting a character."""
    if NOT_CELL_TEXT_RE.search(text):
        raw = text.encode("utf-8", "surrogateescape")
        text = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
    if len(text) <= XLSX_MAX_TEXT_UNITS // 2:
        return text
    units = 0
    for at, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > XLSX_MAX_TEXT_UNITS:
            return text[:at]
    return text

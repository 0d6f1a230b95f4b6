"""The xlsx file of docs/protocol.md ("Formats"), with XlsxWriter in constant_memory mode: rows go
to disk as they come. Bold frozen header with an autofilter, widths by column type, typed cells
(numbers, dates, text), and past XLSX_LINHAS_POR_ABA rows (Excel's 1,048,576, header included)
the rows continue on a new sheet, `dados_2`, `dados_3`…, each with the header."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from relatorios.protocol import (
    XLSX_DATE_FORMAT,
    XLSX_DECIMAL_FORMAT,
    XLSX_MAX_SHEET_ROWS,
    XLSX_SHEET_PREFIX,
    format_real,
)
from relatorios.worker.cells import (
    EXACT_INTEGER,
    date_value,
    is_formula_like,
    number_text,
    xlsx_text,
)
from relatorios.worker.newfile import open_new

_FLOAT = float
# Column width (characters) by catalog type, and the bounds of any width.
TYPE_WIDTHS = {"date": 12, "decimal": 14, "integer": 12}
DEFAULT_WIDTH, MAX_WIDTH = 18, 60


def column_width(name: str, column_type: str | None) -> int:
    """The header's length plus room for the filter button, at least the type's width."""
    return min(max(len(name) + 4, TYPE_WIDTHS.get(column_type or "", DEFAULT_WIDTH)), MAX_WIDTH)


def sheet_name(index: int) -> str:
    return XLSX_SHEET_PREFIX if index == 1 else f"{XLSX_SHEET_PREFIX}_{index}"


Put = Callable[[Worksheet, int, int, Any], None]


class XlsxSink:
    """Writes `path` when closed (XlsxWriter keeps each sheet's rows in a temporary file)."""

    def __init__(
        self, path: Path, *, neutralise: bool = True, sheet_rows: int = XLSX_MAX_SHEET_ROWS
    ) -> None:
        self.path = path
        self.file = open_new(path)  # XlsxWriter writes the zip into it when closed
        self.book = xlsxwriter.Workbook(
            self.file,
            {
                "constant_memory": True,
                "tmpdir": str(path.parent),
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        self.neutralise = neutralise
        self.sheet_rows = sheet_rows
        self.bold = self.book.add_format({"bold": True})
        self.date = self.book.add_format({"num_format": XLSX_DATE_FORMAT})
        self.decimal = self.book.add_format({"num_format": XLSX_DECIMAL_FORMAT})
        self.names: list[str] = []
        self.types: list[str | None] = []
        self.puts: list[Put] = []
        self.sheets = 0
        self.sheet: Worksheet | None = None
        self.row = 0  # the next row of the current sheet

    def header(self, names: Sequence[str], types: Sequence[str | None] = ()) -> None:
        self.names = [xlsx_text(n) for n in names]
        self.types = list(types) or [None] * len(names)
        self.puts = [self._put(t) for t in self.types]
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._finish_sheet()
        self.sheets += 1
        sheet = self.book.add_worksheet(sheet_name(self.sheets))
        for col, (name, column_type) in enumerate(zip(self.names, self.types, strict=True)):
            sheet.set_column(col, col, column_width(name, column_type))
            if name:
                sheet.write_string(0, col, name, self.bold)
            else:  # an empty text is an empty cell, as in libxlsxwriter
                sheet.write_blank(0, col, None, self.bold)
        sheet.freeze_panes(1, 0)
        self.sheet, self.row = sheet, 1

    def _finish_sheet(self) -> None:
        if self.sheet is not None and self.names:
            self.sheet.autofilter(0, 0, self.row - 1, len(self.names) - 1)

    def rows(self, batch: list[Any]) -> None:
        puts = self.puts
        for values in batch:
            if self.row >= self.sheet_rows:
                self._new_sheet()
            sheet, row = self.sheet, self.row
            assert sheet is not None
            for col, value in enumerate(values):
                if value is not None:
                    puts[col](sheet, row, col, value)
            self.row = row + 1

    def tell(self) -> int:
        """The file is written at close(): nothing before."""
        return 0

    def close(self) -> None:
        self._finish_sheet()
        if self.sheet is None:  # header() never came: still a valid (empty) workbook
            self.book.add_worksheet(sheet_name(1))
        try:
            self.book.close()
        finally:
            self.file.close()

    # ---- cells -----------------------------------------------------------------------------

    def _text(self, sheet: Worksheet, row: int, col: int, text: str) -> None:
        text = xlsx_text(text)
        if not text:  # an empty text is an empty cell, as in libxlsxwriter
            return
        if self.neutralise and is_formula_like(text):
            text = xlsx_text("'" + text)  # OWASP's single quote (cut again: one unit more)
        sheet.write_string(row, col, text)

    def _put(self, column_type: str | None) -> Put:
        number_format: Format | None = self.decimal if column_type == "decimal" else None

        def put(sheet: Worksheet, row: int, col: int, value: Any) -> None:
            kind = type(value)
            if kind is str:
                if number_text(value, column_type):
                    sheet.write_number(row, col, float(value), number_format)
                elif (day := date_value(value, column_type)) is not None:
                    sheet.write_datetime(row, col, day, self.date)
                else:
                    self._text(sheet, row, col, value)
            elif kind is int:
                if abs(value) < EXACT_INTEGER:
                    sheet.write_number(row, col, value, number_format)
                else:
                    sheet.write_string(row, col, str(value))
            elif kind is _FLOAT:
                if math.isfinite(value):
                    sheet.write_number(row, col, value, number_format)
                else:
                    sheet.write_string(row, col, format_real(value))
            else:  # bytes (a BLOB): no meaning in a report, written as its text
                self._text(sheet, row, col, str(value))

        return put

"""The CSV files of docs/protocol.md ("CSV format", "Formats"): the csv module's default dialect,
UTF-8 with invalid bytes kept as they were read, REAL values by the protocol's rule; `csv_excel`
with `;`, a BOM, decimal commas and text neutralised against formulas; either one gzip-streamed."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from relatorios.protocol import GZIP_LEVEL, format_real
from relatorios.worker.cells import is_formula_like, number_text
from relatorios.worker.newfile import WRITE_BUFFER, open_new

_FLOAT = float
BOM = "\ufeff"

Cell = Callable[[Any], Any]


class CsvSink:
    """Creates and writes `path` (which must not exist); `close()` in every case.

    `excel`: the csv_excel format, with `types` (a catalog type or None per column, given with
    the header) and `neutralise` (NEUTRALIZAR_FORMULAS). `gzip`: the bytes go through gzip."""

    def __init__(
        self, path: Path, *, excel: bool = False, gzip_: bool = False, neutralise: bool = True
    ) -> None:
        self.raw = open_new(path)  # closed by close(), across the caller's loop
        self.gz: gzip.GzipFile | None = None
        binary: IO[bytes] = self.raw
        if gzip_:
            # mtime=0 and no name: the same file for the same rows, whenever it is written.
            self.gz = gzip.GzipFile(
                filename="", mode="wb", fileobj=self.raw, compresslevel=GZIP_LEVEL, mtime=0
            )
            binary = io.BufferedWriter(self.gz, WRITE_BUFFER)
        self.buffered = binary
        self.out = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")
        self.excel = excel
        self.neutralise = neutralise
        self.cells: list[Cell] = []
        self.writer = csv.writer(self.out, delimiter=";") if excel else csv.writer(self.out)
        if excel:
            self.out.write(BOM)

    def header(self, names: Sequence[str], types: Sequence[str | None] = ()) -> None:
        if self.excel:
            self.cells = [self._cell(t) for t in (list(types) or [None] * len(names))]
            self.writer.writerow([self._text(n) for n in names])
        else:
            self.writer.writerow(names)

    def rows(self, batch: list[Any]) -> None:
        if self.excel:
            cells = self.cells
            self.writer.writerows(
                [[f(v) for f, v in zip(cells, row, strict=True)] for row in batch]
            )
        else:
            self.writer.writerows(_with_reals(batch))

    def tell(self) -> int:
        """Bytes of the file so far: with gzip, compressed bytes (the compressor keeps some)."""
        self.out.flush()
        if self.gz is None:
            return self.raw.tell()
        self.buffered.flush()
        return self.raw.tell()

    def close(self) -> None:
        try:
            self.out.close()  # closes the gzip stream (its trailer), not the file
        finally:
            if self.gz is not None:
                self.gz.close()
            self.raw.close()

    # ---- csv_excel values ------------------------------------------------------------------

    def _text(self, text: str) -> str:
        return "'" + text if self.neutralise and is_formula_like(text) else text

    def _cell(self, column_type: str | None) -> Cell:
        text = self._text

        def cell(value: Any) -> Any:
            kind = type(value)
            if kind is str:
                if number_text(value, column_type):
                    return value.replace(".", ",")
                return text(value)
            if kind is _FLOAT:
                return format_real(value).replace(".", ",")
            return value  # int, None

        return cell


def _with_reals(batch: list[Any]) -> list[Any]:
    """REAL values formatted by the protocol's rule; most reports have none, and pay one scan."""
    if _FLOAT not in set(map(type, itertools.chain.from_iterable(batch))):
        return batch
    return [[format_real(v) if type(v) is _FLOAT else v for v in row] for row in batch]

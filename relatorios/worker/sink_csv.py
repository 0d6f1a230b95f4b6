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
        # The csv writer appends each row's text to `pending`; a batch is encoded once and
        # written as bytes. One encode per batch instead of one TextIOWrapper.write per row, and
        # the size so far is the buffered file's position, with no flush per batch.
        self.pending: list[str] = []
        self.excel = excel
        self.neutralise = neutralise
        self.cells: list[Cell] = []
        collector = _Collector(self.pending.append)
        self.writer = csv.writer(collector, delimiter=";") if excel else csv.writer(collector)
        if excel:
            self.pending.append(BOM)

    def header(self, names: Sequence[str], types: Sequence[str | None] = ()) -> None:
        if self.excel:
            self.cells = [self._cell(t) for t in (list(types) or [None] * len(names))]
            self.writer.writerow([self._text(n) for n in names])
        else:
            self.writer.writerow(names)
        self._flush_pending()

    def rows(self, batch: list[Any]) -> None:
        if self.excel:
            cells = self.cells
            self.writer.writerows(
                [[f(v) for f, v in zip(cells, row, strict=True)] for row in batch]
            )
        else:
            self.writer.writerows(_with_reals(batch))
        self._flush_pending()

    def _flush_pending(self) -> None:
        # Invalid UTF-8 read from the database is back to its bytes (surrogateescape).
        self.buffered.write("".join(self.pending).encode("utf-8", "surrogateescape"))
        self.pending.clear()

    def tell(self) -> int:
        """Bytes of the file so far: with gzip, compressed bytes (the compressor keeps some)."""
        if self.gz is not None:
            self.buffered.flush()  # into the compressor, which keeps some
        return self.raw.tell()  # a buffered file's position counts what it holds

    def close(self) -> None:
        try:
            self.buffered.flush()
        finally:
            if self.gz is not None:
                self.buffered.close()  # and the gzip stream under it (its trailer), not the file
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


class _Collector:
    """What csv.writer needs of a file: a `write` method (here `list.append`)."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self.write = write


def _with_reals(batch: list[Any]) -> list[Any]:
    """REAL values formatted by the protocol's rule; most reports have none, and pay one scan."""
    if _FLOAT not in set(map(type, itertools.chain.from_iterable(batch))):
        return batch
    return [[format_real(v) if type(v) is _FLOAT else v for v in row] for row in batch]

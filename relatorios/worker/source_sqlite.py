"""Rows from the SQLite database, opened read-only, read in batches (never `fetchall`).

Text is decoded by SQLite's fast built-in decoder until a value is not valid UTF-8; from then on
by a byte-preserving decoder, without reading anything twice. A `stop` callback, called from an
SQLite progress handler, can interrupt the query at any time, even before the first row.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from relatorios.protocol import SOURCE_SQLITE, SQLITE_PROGRESS_STEPS, ErrorCode, ParamValue
from relatorios.sqlite_ro import connect_readonly
from relatorios.worker.report import BATCH_ROWS, ReportError, StopCheck

# SQLite errors worth a retry (docs/protocol.md, "Error codes"); SQLITE_IOERR covers its
# extended codes. FULL is SQLite's own temporary space running out.
UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
FULL = "SQLITE_FULL"


def sqlite_error(exc: sqlite3.Error) -> ReportError:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(FULL):
        return ReportError(ErrorCode.DISK_FULL, transient=True, detail=str(exc))
    if name.startswith(UNAVAILABLE):
        return ReportError(ErrorCode.DATABASE_UNAVAILABLE, transient=True, detail=str(exc))
    return ReportError(ErrorCode.QUERY_FAILED, detail=str(exc))


class SqliteSource:
    """One query on `db_path`. `columns` and `batches()` after `run()`; always `close()`."""

    name = SOURCE_SQLITE

    def __init__(self, db_path: Path, stop: StopCheck) -> None:
        if not db_path.is_file():
            # Transient: the database may be being generated or replaced right now.
            raise ReportError(
                ErrorCode.DATABASE_UNAVAILABLE,
                f"banco de dados não encontrado: {db_path}",
                transient=True,
            )
        try:
            self.conn = connect_readonly(db_path)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None
        self.stopped: str | None = None
        self.stop = stop
        self.conn.set_progress_handler(self._on_progress, SQLITE_PROGRESS_STEPS)
        self.columns: list[str] = []
        self.cursor: sqlite3.Cursor | None = None

    def _on_progress(self) -> int:
        self.stopped = self.stopped or self.stop()
        return 1 if self.stopped else 0  # non-zero: SQLite interrupts the statement

    def run(self, sql: str, params: dict[str, ParamValue]) -> None:
        """Run the query up to its first row: its errors come before any file exists."""
        try:
            self.cursor = self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None
        self.columns = [col[0] for col in self.cursor.description or ()]

    def batches(self) -> Iterator[list[Any]]:
        """Lists of up to BATCH_ROWS rows, until the end of the result."""
        assert self.cursor is not None, "run() first"
        try:
            while batch := self._next_batch(self.cursor):
                yield batch
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None

    def _next_batch(self, cursor: sqlite3.Cursor) -> list[Any]:
        # Leans on two CPython behaviours, both covered by the edge-catalog conformance tests:
        # `list.extend` keeps the items it appended before an exception, and a cursor whose row
        # failed to convert keeps that row current, so the next read converts it again.
        batch: list[Any] = []
        while True:
            try:
                batch.extend(itertools.islice(cursor, BATCH_ROWS - len(batch)))
                return batch
            except sqlite3.OperationalError as exc:
                if self.conn.text_factory is not str or "Could not decode" not in str(exc):
                    raise
                self.conn.text_factory = _bytes_preserving

    def close(self) -> None:
        self.conn.set_progress_handler(None, 0)
        self.conn.close()


def _bytes_preserving(raw: bytes) -> str:
    # Invalid UTF-8 round-trips byte for byte (written back with surrogateescape), as in C.
    return raw.decode("utf-8", "surrogateescape")

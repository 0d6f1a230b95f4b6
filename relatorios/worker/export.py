"""Run one catalog query and stream its rows into a CSV file: the worker's hot path.

Rows are read from the cursor in batches (never `fetchall`) and written with the csv module's
default dialect, so memory stays flat whatever the size of the report. The file is written as
`<name>.part` and renamed only when complete. A `stop` callback, called from an SQLite progress
handler, can interrupt the query at any time, even before the first row.
"""

from __future__ import annotations

import csv
import errno
import itertools
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relatorios.catalog import Report
from relatorios.protocol import (
    ERROR_TEXTS,
    SQLITE_PROGRESS_STEPS,
    ErrorCode,
    ParamValue,
    bind_value,
    format_real,
)
from relatorios.sqlite_ro import connect_readonly

log = logging.getLogger("relatorios.worker")
BATCH_ROWS = 1000
WRITE_BUFFER = 1 << 20
# SQLite errors worth a retry (docs/protocol.md, "Error codes"); SQLITE_IOERR covers its
# extended codes. FULL is SQLite's own temporary space running out.
UNAVAILABLE_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
FULL_SQLITE = "SQLITE_FULL"
DISK_FULL_ERRNO = {errno.ENOSPC, errno.EDQUOT}
TRANSIENT_ERRNO = DISK_FULL_ERRNO | {errno.EIO, errno.EAGAIN}
_FLOAT = float

Progress = Callable[[int, int], None]
StopCheck = Callable[[], str | None]


class ReportError(Exception):
    """The attempt failed: `code` (ErrorCode) and a Portuguese `erro` for the task.

    `transient` errors (a locked database, an I/O error, a full disk) are worth retrying. The
    library's own message, if any, is `detail`: logged, never shown to users.
    """

    def __init__(
        self, code: ErrorCode, message: str = "", transient: bool = False, detail: str = ""
    ) -> None:
        super().__init__(message or ERROR_TEXTS[code])
        self.code = code
        self.transient = transient
        self.detail = detail


class Interrupted(Exception):
    """The stop callback asked to stop; `reason` is what it returned."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sqlite_error(exc: sqlite3.Error) -> ReportError:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(FULL_SQLITE):
        return ReportError(ErrorCode.DISK_FULL, transient=True, detail=str(exc))
    if name.startswith(UNAVAILABLE_SQLITE):
        return ReportError(ErrorCode.DATABASE_UNAVAILABLE, transient=True, detail=str(exc))
    return ReportError(ErrorCode.QUERY_FAILED, detail=str(exc))


def write_error(part: Path, exc: OSError) -> ReportError:
    code = ErrorCode.DISK_FULL if exc.errno in DISK_FULL_ERRNO else ErrorCode.WRITE_FAILED
    return ReportError(
        code,
        f"{ERROR_TEXTS[code]} ({part.name})",
        transient=exc.errno in TRANSIENT_ERRNO,
        detail=exc.strerror or str(exc),
    )


def open_readonly(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        # Transient: the database may be being generated or replaced right now.
        raise ReportError(
            ErrorCode.DATABASE_UNAVAILABLE,
            f"banco de dados não encontrado: {db_path}",
            transient=True,
        )
    try:
        return connect_readonly(db_path)
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from None


def bind_params(report: Report, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    """Check the message's parameters against the report's declared ones (both ways)."""
    declared = {p.name for p in report.params}
    if missing := sorted(declared - params.keys()):
        raise ReportError(ErrorCode.INVALID_PARAMETER, f"parâmetro ausente: {missing[0]}")
    if unknown := sorted(params.keys() - declared):
        raise ReportError(ErrorCode.INVALID_PARAMETER, f"parâmetro desconhecido: {unknown[0]}")
    return {name: bind_value(value) for name, value in params.items()}


def write_csv(
    conn: sqlite3.Connection,
    sql: str,
    params: dict[str, ParamValue],
    target: Path,
    progress: Progress,
    progress_every: int,
    stop: StopCheck,
) -> tuple[int, int]:
    """Write the query's result to `target` atomically. Returns (rows, bytes).

    Raises ReportError or Interrupted; in every failure the `.part` file is removed.
    """
    part = target.with_name(target.name + ".part")
    reason: list[str] = []

    def on_progress() -> int:
        why = stop()
        if why:
            reason.append(why)
            return 1  # non-zero: SQLite interrupts the statement
        return 0

    conn.set_progress_handler(on_progress, SQLITE_PROGRESS_STEPS)
    try:
        rows, size = _stream(conn, sql, params, part, progress, progress_every)
        os.replace(part, target)
        return rows, size
    except ReportError:
        part.unlink(missing_ok=True)
        if reason:
            raise Interrupted(reason[0]) from None
        raise
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        conn.set_progress_handler(None, 0)


def _stream(
    conn: sqlite3.Connection,
    sql: str,
    params: dict[str, ParamValue],
    part: Path,
    progress: Progress,
    progress_every: int,
) -> tuple[int, int]:
    rows = 0
    next_report = progress_every
    try:
        cursor = conn.execute(sql, params)
        with open(
            part,
            "w",
            encoding="utf-8",
            errors="surrogateescape",
            newline="",
            buffering=WRITE_BUFFER,
        ) as out:
            writer = csv.writer(out)
            writer.writerow([col[0] for col in cursor.description])
            while batch := _next_batch(conn, cursor):
                writer.writerows(_with_reals(batch))
                rows += len(batch)
                if rows >= next_report:
                    out.flush()
                    progress(rows, out.tell())
                    next_report = rows + progress_every
            out.flush()
            size = out.tell()
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from None
    except OSError as exc:
        raise write_error(part, exc) from None
    return rows, size


def _bytes_preserving(raw: bytes) -> str:
    # Invalid UTF-8 round-trips byte for byte (written back with surrogateescape), as in C.
    return raw.decode("utf-8", "surrogateescape")


def _next_batch(conn: sqlite3.Connection, cursor: sqlite3.Cursor) -> list[Any]:
    """Up to BATCH_ROWS rows. Text is decoded by SQLite's fast built-in decoder until a value is
    not valid UTF-8; from then on by a byte-preserving decoder, without reading anything twice.

    This leans on two CPython behaviours, both covered by the edge-catalog conformance tests:
    `list.extend` keeps the items it appended before an exception, and a cursor whose row failed
    to convert keeps that row current, so the next read converts it again.
    """
    batch: list[Any] = []
    while True:
        try:
            batch.extend(itertools.islice(cursor, BATCH_ROWS - len(batch)))
            return batch
        except sqlite3.OperationalError as exc:
            if conn.text_factory is not str or "Could not decode to UTF-8" not in str(exc):
                raise
            conn.text_factory = _bytes_preserving


def _with_reals(batch: list[Any]) -> list[Any]:
    """REAL values formatted by the protocol's rule; most reports have none, and pay one scan."""
    if _FLOAT not in set(map(type, itertools.chain.from_iterable(batch))):
        return batch
    return [[format_real(v) if type(v) is _FLOAT else v for v in row] for row in batch]

"""Run one catalog query and stream its rows into a CSV file: the worker's hot path.

Rows are fetched in batches from the cursor (never `fetchall`) and written with the csv module's
default dialect, so memory stays flat whatever the size of the report. The file is written as
`<name>.part` and renamed only when complete. A `stop` callback, called from an SQLite progress
handler, can interrupt the query at any time, even before the first row.
"""

from __future__ import annotations

import csv
import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from relatorios.protocol import ParamValue, bind_value

BATCH_ROWS = 1000
WRITE_BUFFER = 1 << 20
# SQLite virtual-machine steps between two calls of the stop callback (cheap: it is rate-limited).
STOP_CHECK_STEPS = 10_000
# Error names worth a retry (docs/protocol.md); SQLITE_IOERR covers its extended codes.
TRANSIENT_SQLITE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
)
TRANSIENT_ERRNO = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EAGAIN}

Progress = Callable[[int, int], None]
StopCheck = Callable[[], str | None]


class ReportError(Exception):
    """The attempt failed; the message (Portuguese) goes into the task's `erro`.

    `transient` errors (a locked database, an I/O error, a full disk) are worth retrying.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class Interrupted(Exception):
    """The stop callback asked to stop; `reason` is what it returned."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sqlite_error(exc: sqlite3.Error) -> ReportError:
    name = getattr(exc, "sqlite_errorname", "")
    return ReportError(f"erro do SQLite: {exc}", transient=name.startswith(TRANSIENT_SQLITE))


def open_readonly(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        # Transient: the database may be being generated or replaced right now.
        raise ReportError(f"banco de dados não encontrado: {db_path}", transient=True)
    try:
        # mode=ro: the worker can never write to the database, whatever the SQL says.
        # A 1 s busy timeout (both workers): a locked database fails fast and is retried later.
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from None
    return conn


def _bytes_preserving(raw: bytes) -> str:
    # Invalid UTF-8 round-trips byte for byte (written back with surrogateescape), as in C.
    return raw.decode("utf-8", "surrogateescape")


class NotUtf8(Exception):
    """A text value is not valid UTF-8: the fast decoder cannot read it."""


def bind_params(
    conn: sqlite3.Connection, sql: str, params: dict[str, ParamValue]
) -> dict[str, ParamValue]:
    """Check the message's parameters against the statement's named parameters (both ways)."""
    wanted = statement_params(conn, sql)
    for name in wanted:
        if name not in params:
            raise ReportError(f"parâmetro ausente: {name}")
    for name in params:
        if name not in wanted:
            raise ReportError(f"parâmetro desconhecido: {name}")
    return {name: bind_value(value) for name, value in params.items()}


def statement_params(conn: sqlite3.Connection, sql: str) -> list[str]:
    """Named parameters of `sql`, as SQLite parses them (not as a regex guesses them)."""
    names: list[str] = []
    # Python's sqlite3 has no sqlite3_bind_parameter_name; a bind that misses a parameter names
    # it in the error, so EXPLAIN (which prepares but does not run) with a growing set of NULLs.
    probe: dict[str, object] = {}
    while True:
        try:
            conn.execute(f"EXPLAIN {sql}", probe).close()
            return names
        except sqlite3.ProgrammingError as exc:
            name = _missing_param_name(str(exc))
            if name is None or name in probe:
                raise ReportError(f"erro no SQL do relatório: {exc}") from None
            names.append(name)
            probe[name] = None
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None


def _missing_param_name(error: str) -> str | None:
    # "You did not supply a value for binding parameter :name."
    marker = "binding parameter :"
    if marker not in error:
        return None
    return error.split(marker, 1)[1].rstrip(".")


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

    conn.set_progress_handler(on_progress, STOP_CHECK_STEPS)
    try:
        try:
            rows, size = _stream(conn, sql, params, part, progress, progress_every)
        except NotUtf8:
            # The built-in decoder is several times faster than a Python text_factory, so it
            # reads every report until one holds invalid UTF-8; then the report starts over.
            conn.text_factory = _bytes_preserving
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
            while batch := cursor.fetchmany(BATCH_ROWS):
                writer.writerows(batch)
                rows += len(batch)
                if rows >= next_report:
                    out.flush()
                    progress(rows, out.tell())
                    next_report = rows + progress_every
            out.flush()
            size = out.tell()
    except sqlite3.Error as exc:
        if conn.text_factory is str and "Could not decode to UTF-8" in str(exc):
            raise NotUtf8 from None
        raise sqlite_error(exc) from None
    except OSError as exc:
        message = f"erro de escrita em {part.name}: {exc.strerror or exc}"
        raise ReportError(message, transient=exc.errno in TRANSIENT_ERRNO) from None
    return rows, size

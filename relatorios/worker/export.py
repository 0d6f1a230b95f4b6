"""Run one catalog query and stream its rows into a CSV file: the worker's hot path.

Rows are fetched in batches from the cursor (never `fetchall`) and written with the csv module's
default dialect, so memory stays flat whatever the size of the report. The file is written as
`<name>.part` and renamed only when complete.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from relatorios.protocol import ParamValue, bind_value

BATCH_ROWS = 1000
WRITE_BUFFER = 1 << 20

Progress = Callable[[int, int], None]


class ReportError(Exception):
    """The task cannot be completed; the message (Portuguese) goes into the task's `erro`."""


def open_readonly(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise ReportError(f"banco de dados não encontrado: {db_path}")
    # mode=ro: the worker can never write to the database, whatever the SQL says.
    conn = sqlite3.connect(
        f"{db_path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
    )
    # Text round-trips byte for byte, even invalid UTF-8, as in the C worker.
    conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    return conn


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
            raise ReportError(f"erro no SQL do relatório: {exc}") from None


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
) -> tuple[int, int]:
    """Write the query's result to `target` atomically. Returns (rows, bytes)."""
    part = target.with_name(target.name + ".part")
    try:
        rows, size = _stream(conn, sql, params, part, progress, progress_every)
        os.replace(part, target)
        return rows, size
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _stream(
    conn: sqlite3.Connection,
    sql: str,
    params: dict[str, ParamValue],
    part: Path,
    progress: Progress,
    progress_every: int,
) -> tuple[int, int]:
    try:
        cursor = conn.execute(sql, params)
    except sqlite3.Error as exc:
        raise ReportError(f"erro do SQLite: {exc}") from None
    rows = 0
    next_report = progress_every
    try:
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
        raise ReportError(f"erro do SQLite: {exc}") from None
    except OSError as exc:
        raise ReportError(f"erro de escrita em {part.name}: {exc.strerror or exc}") from None
    return rows, size

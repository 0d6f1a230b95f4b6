"""Rows from PostgreSQL (DATABASE_URL), in a read-only session, streamed in chunks of BATCH_ROWS
(`cursor.stream`: libpq's chunked-rows mode), so memory stays flat whatever the row count.

Parameters: the catalog's `:name`s become `$1`, `$2`… (relatorios/sql_params.py) and the values
are bound, never formatted into the SQL: integers as int8, other numbers as float8, text and
NULL as `unknown` (the server infers their type, as it does for the C worker's).
Values: every column is read in PostgreSQL's text format, as the C worker reads it; float4 and
float8 become Python floats, which the CSV sink writes by the protocol's REAL rule.
Cancellation: a watchdog thread calls `stop` every PG_POLL_S while the query runs, also before
the first row, and cancels the query on the server (`cancel_safe`) when it answers.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.numeric import Int8Dumper
from psycopg.types.string import TextLoader

from relatorios.postgres import connect_readonly, connection_problem, server_said
from relatorios.protocol import ERROR_TEXTS, PG_POLL_S, SOURCE_POSTGRESQL, ErrorCode, ParamValue
from relatorios.sql_params import SqlParamError, to_numbered
from relatorios.worker.report import BATCH_ROWS, ReportError, StopCheck

# Loaded as Python floats, hence written by the protocol's REAL rule; every other type as text.
FLOAT_TYPES = ("float4", "float8")
# SQLSTATEs (and classes) worth another attempt: the server went away, restarts, is out of
# connections or memory, or chose this transaction as a deadlock or serialization victim.
UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03", "40001", "40P01")
QUERY_CANCELED = "57014"
INSUFFICIENT_PRIVILEGE = "42501"
OID_INT8, OID_FLOAT8 = 20, 701
READ_ONLY_TRANSACTION = "25006"


def postgres_error(exc: psycopg.Error, statement_timeout_s: float) -> ReportError:
    """What a PostgreSQL error means for the task (docs/protocol.md, "Error codes")."""
    state = exc.sqlstate or ""
    detail = server_said(exc)
    if state == QUERY_CANCELED:
        text = f"{ERROR_TEXTS[ErrorCode.QUERY_TIMEOUT]}: {statement_timeout_s:g} s"
        return ReportError(ErrorCode.QUERY_TIMEOUT, text, detail=detail)
    if state == INSUFFICIENT_PRIVILEGE:
        return ReportError(ErrorCode.PERMISSION_DENIED, detail=detail)
    if state == READ_ONLY_TRANSACTION:
        text = f"{ERROR_TEXTS[ErrorCode.QUERY_FAILED]}: o relatório tentou escrever no banco"
        return ReportError(ErrorCode.QUERY_FAILED, text, detail=detail)
    lost = isinstance(exc, psycopg.OperationalError) and not state
    if lost or state.startswith(UNAVAILABLE_STATES):
        # An OperationalError without SQLSTATE: libpq lost the connection (server restart).
        return ReportError(ErrorCode.DATABASE_UNAVAILABLE, transient=True, detail=detail)
    return ReportError(ErrorCode.QUERY_FAILED, detail=detail)


def _text_everywhere(conn: psycopg.Connection[Any]) -> None:
    """Results in PostgreSQL's own text (floats apart); parameters typed as the C worker types
    them (integers int8, text `unknown`)."""
    adapters = conn.adapters
    for info in psycopg.postgres.types:
        if info.name not in FLOAT_TYPES:
            adapters.register_loader(info.oid, TextLoader)
        if info.array_oid:
            adapters.register_loader(info.array_oid, TextLoader)
    adapters.register_dumper(int, Int8Dumper)


class PostgresSource:
    """One query on DATABASE_URL. `columns` and `batches()` after `run()`; always `close()`."""

    name = SOURCE_POSTGRESQL

    def __init__(self, url: str, statement_timeout_s: float, stop: StopCheck) -> None:
        self.timeout_s = statement_timeout_s
        self.stop = stop
        self.stopped: str | None = None
        self.columns: list[str] = []
        self._rows: Iterator[tuple[Any, ...]] = iter(())
        self._done = threading.Event()
        self._watchdog: threading.Thread | None = None
        try:
            self.conn = connect_readonly(url, statement_timeout_s)
        except psycopg.Error as exc:
            # Transient: the server may be restarting; wrong credentials are caught at start-up.
            raise ReportError(
                ErrorCode.DATABASE_UNAVAILABLE,
                f"{ERROR_TEXTS[ErrorCode.DATABASE_UNAVAILABLE]} ({connection_problem(exc)})",
                transient=True,
                detail=server_said(exc),
            ) from None
        _text_everywhere(self.conn)

    def run(self, sql: str, params: dict[str, ParamValue]) -> None:
        """Run the query up to its first row: its errors come before any file exists."""
        try:
            numbered, names = to_numbered(sql)
        except SqlParamError as exc:
            raise ReportError(ErrorCode.QUERY_FAILED, detail=str(exc)) from None
        if set(names) != params.keys():
            raise ReportError(
                ErrorCode.QUERY_FAILED,
                f"{ERROR_TEXTS[ErrorCode.QUERY_FAILED]}: parâmetros do SQL e do catálogo diferem",
            )
        self._watchdog = threading.Thread(target=self._watch, name="pg-watchdog", daemon=True)
        self._watchdog.start()
        values = [params[n] for n in names]
        self.columns = self._guarded(lambda: self._describe(numbered, values))
        cursor = psycopg.RawCursor(self.conn)  # `$n` placeholders as they are, `%` as data
        rows = cursor.stream(numbered, values, size=BATCH_ROWS)
        first = self._guarded(lambda: list(itertools.islice(rows, 1)))
        self._rows = itertools.chain(first, rows)

    def _describe(self, sql: str, values: list[ParamValue]) -> list[str]:
        """The column names, from the statement prepared (as the C worker does): the stream
        alone names no column when there is no row."""
        pgconn = self.conn.pgconn
        types = [
            OID_INT8 if type(v) is int else OID_FLOAT8 if type(v) is float else 0 for v in values
        ]
        for result in (pgconn.prepare(b"", sql.encode(), types), pgconn.describe_prepared(b"")):
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding="utf-8")
        return [(result.fname(i) or b"").decode() for i in range(result.nfields)]

    def batches(self) -> Iterator[list[Any]]:
        """Lists of up to BATCH_ROWS rows, until the end of the result."""
        while batch := self._guarded(lambda: list(itertools.islice(self._rows, BATCH_ROWS))):
            yield batch

    def _guarded(self, read: Any) -> list[Any]:
        try:
            batch: list[Any] = read()
            return batch
        except psycopg.Error as exc:
            raise postgres_error(exc, self.timeout_s) from exc

    def _watch(self) -> None:
        """While the query runs: ask `stop` every PG_POLL_S; cancel on the server if it says so."""
        while not self._done.wait(PG_POLL_S):
            why = self.stop()
            if why:
                self.stopped = why
                self.conn.cancel_safe(timeout=5)
                return

    def close(self) -> None:
        self._done.set()
        if self._watchdog is not None:
            self._watchdog.join()
        self.conn.close()

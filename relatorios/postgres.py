"""The one way this project connects to PostgreSQL (DATABASE_URL), as sqlite_ro.py is for SQLite.

Workers, the API's department list and its health check connect through `connect_readonly()`:
every transaction of such a session is read-only (`default_transaction_read_only`), whatever
the SQL says, and dates, times and text reach the reader the same way whichever worker reads
(`DateStyle=ISO, YMD`, `TimeZone=UTC`, `IntervalStyle=postgres`, `client_encoding=UTF8`). The C
worker's app/source_pg.c sets the same options (docs/protocol.md, "Sources").

`connection_problem()` turns a failed connection into a sentence that names the setting, never
its value: DATABASE_URL holds a password.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg

from relatorios.protocol import PG_CONNECT_TIMEOUT_S

APPLICATION_NAME = "relatorios"


def session_options(statement_timeout_s: float = 0) -> str:
    """libpq's `options`: the server settings of every read-only session (both workers)."""
    timeout_ms = round(statement_timeout_s * 1000)
    return (
        "-c default_transaction_read_only=on -c DateStyle=ISO,YMD -c TimeZone=UTC"
        f" -c IntervalStyle=postgres -c statement_timeout={timeout_ms}"
    )


def connect_readonly(
    url: str, statement_timeout_s: float = 0, connect_timeout_s: float = PG_CONNECT_TIMEOUT_S
) -> psycopg.Connection[Any]:
    """A read-only autocommit session on `url`; the caller closes it. Raises psycopg.Error."""
    return psycopg.connect(
        url,
        autocommit=True,
        options=session_options(statement_timeout_s),
        client_encoding="UTF8",
        application_name=APPLICATION_NAME,
        connect_timeout=max(1, round(connect_timeout_s)),
    )


def redacted(url: str) -> str:
    """`url` without its password, to show people (`postgresql://user@host:port/db`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def refused_credentials(exc: psycopg.Error) -> bool:
    """The server asked for a password and refused the one given (or none was given): a setting
    to fix, not an outage to wait out."""
    pgconn = exc.pgconn
    return pgconn is not None and bool(pgconn.needs_password or pgconn.used_password)


def connection_problem(exc: psycopg.Error) -> str:
    """Why connecting with DATABASE_URL failed, in Portuguese, without the URL or its password."""
    if refused_credentials(exc):
        return "DATABASE_URL: o PostgreSQL recusou o usuário ou a senha (confira DATABASE_URL)"
    return "DATABASE_URL: não foi possível conectar ao PostgreSQL"


def server_said(exc: BaseException) -> str:
    """The server's or libpq's own words (English, for logs), without any connection string."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return f"{exc.sqlstate or ''} {exc.diag.message_primary}".strip()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Refused(Exception):
    """The server refused DATABASE_URL's credentials: a setting to fix (the worker exits)."""


def ping(url: str, connect_timeout_s: float = PG_CONNECT_TIMEOUT_S) -> None:
    """Connect, `SELECT 1`, close. Raises Refused (credentials) or psycopg.Error (anything else:
    the server is down, restarting or unreachable)."""
    try:
        with connect_readonly(url, connect_timeout_s=connect_timeout_s) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if refused_credentials(exc):
            raise Refused(connection_problem(exc)) from None
        raise

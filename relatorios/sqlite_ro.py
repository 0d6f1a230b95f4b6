"""The one way this project opens a SQLite database: read-only, by URI (`mode=ro`).

Workers, the API's department list and its health check all open the database through here, so
none of them can create or change it, whatever the SQL says.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from relatorios.protocol import SQLITE_BUSY_TIMEOUT_MS


def connect_readonly(
    path: Path, timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000
) -> sqlite3.Connection:
    """A read-only connection to an existing database file; the caller closes it.

    `timeout_s` is SQLite's busy timeout: a locked database fails fast and is retried later.
    Raises sqlite3.Error (the file is missing, unreadable or not a database).
    """
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout_s)

"""What /health checks outside Redis: does the database open read-only and answer a query?"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from relatorios.sqlite_ro import connect_readonly


def database_problem(path: Path) -> str | None:
    """None when the database opens read-only and answers a query; else why not (Portuguese)."""
    if not path.is_file():
        return f"banco de dados não encontrado: {path}"
    try:
        # Read-only: a health check must never create or change the database.
        with closing(connect_readonly(path, timeout_s=2)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return f"banco de dados ilegível ({path}): {exc}"
    return None


async def database_problem_async(path: Path) -> str | None:
    # SQLite calls block; a stuck file system must not stall the event loop.
    return await asyncio.to_thread(database_problem, path)

"""What /health and /metrics read besides the queue: the workers' heartbeats and task records
(TaskStore fetches them from Redis; they are parsed here) and the database.

Workers of both kinds (C and Python) record these under the protocol's keys, so the API reports
on workers it never talks to.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from relatorios.protocol import SOURCE_POSTGRESQL, Beat, F
from relatorios.settings import Settings
from relatorios.sqlite_ro import connect_readonly

# The fields of a task hash that metrics read (TaskSample), in sample_from's order.
SAMPLE_FIELDS = (F.STATUS, F.TYPE, F.STARTED, F.FINISHED, F.ROWS, F.BYTES, F.WORKER)


@dataclass(frozen=True)
class WorkerBeat:
    """One live worker, from its heartbeat key (it expires HEARTBEAT_TTL_S after the last beat)."""

    id: str
    kind: str
    task: str | None

    def as_dict(self) -> dict[str, Any]:
        return {Beat.ID: self.id, Beat.KIND: self.kind, Beat.TASK: self.task}


@dataclass(frozen=True)
class TaskSample:
    """The fields of one task hash that metrics need."""

    status: str
    type: str
    worker_kind: str
    rows: int
    size: int
    duration_s: float | None


def worker_kind(worker_id: str | None) -> str:
    """`c-host-42` -> `c`: the protocol's worker ids start with the worker's kind."""
    if not worker_id:
        return "nenhum"
    return worker_id.split("-", 1)[0]


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds between two protocol timestamps (ISO 8601 UTC with Z), or None if either is bad."""
    if not start or not end:
        return None
    try:
        begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
        finish = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((finish - begin).total_seconds(), 0.0)


def int_or_zero(text: str | None) -> int:
    """A counter's text as a number; missing or garbled counts as 0."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def beat_from(worker_id: str, value: bytes | str | None) -> WorkerBeat | None:
    """A heartbeat key's JSON value; None when the key expired between SCAN and MGET."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    kind = data.get(Beat.KIND) or worker_kind(worker_id)
    task = data.get(Beat.TASK)
    return WorkerBeat(worker_id, str(kind), str(task) if task else None)


def sample_from(values: list[str | None]) -> TaskSample:
    """A task hash's SAMPLE_FIELDS, in that order."""
    status, report_type, started, finished, rows, size, worker = values
    return TaskSample(
        status=status or "",
        type=report_type or "",
        worker_kind=worker_kind(worker),
        rows=int_or_zero(rows),
        size=int_or_zero(size),
        duration_s=seconds_between(started, finished),
    )


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


def postgres_problem(url: str) -> str | None:
    """None when PostgreSQL (DATABASE_URL) accepts a read-only session and answers a query; else
    why not, in Portuguese, naming the setting, never its value (it holds a password)."""
    import psycopg

    from relatorios import postgres

    try:
        postgres.ping(url, connect_timeout_s=2)
    except postgres.Refused as exc:
        return str(exc)
    except psycopg.Error as exc:
        return postgres.connection_problem(exc)
    return None


async def source_problem_async(settings: Settings) -> str | None:
    """The problem of the configured database (SQLite or PostgreSQL), or None."""
    # Database calls block; a stuck file system or server must not stall the event loop.
    if settings.source == SOURCE_POSTGRESQL:
        return await asyncio.to_thread(postgres_problem, settings.database_url)
    return await asyncio.to_thread(database_problem, settings.db_path)

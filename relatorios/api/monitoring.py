"""What /health and /metrics read: worker heartbeats, recent task hashes, counters, the database.

Everything here reads what the workers (C and Python alike) record in Redis under the protocol's
keys, so the API can report on workers it never talks to. Every Redis read is bounded.
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

import redis.asyncio as aioredis

from relatorios.protocol import F, Keys
from relatorios.sqlite_ro import connect_readonly

# A scrape reads at most this many of the newest task hashes, so its cost does not grow forever.
RECENT_TASKS = 10_000
_PIPELINE_CHUNK = 1000
_TASK_FIELDS = (F.STATUS, F.TYPE, F.STARTED, F.FINISHED, F.ROWS, F.BYTES, F.WORKER)


@dataclass(frozen=True)
class WorkerBeat:
    """One live worker, from its heartbeat key (expires 30 s after its last beat)."""

    id: str
    kind: str
    task: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tipo": self.kind, "tarefa": self.task}


@dataclass(frozen=True)
class TaskSample:
    """The fields of one task hash that metrics need."""

    status: str
    type: str
    worker_kind: str
    rows: int
    size: int
    duration_s: float | None


async def live_workers(client: aioredis.Redis, keys: Keys) -> list[WorkerBeat]:
    """Workers whose heartbeat key has not expired, sorted by id."""
    names = [str(k) async for k in client.scan_iter(match=f"{keys.worker_prefix}*", count=100)]
    if not names:
        return []
    values = await client.mget(names)
    beats = [_beat(name, keys, value) for name, value in zip(names, values, strict=True)]
    return sorted((b for b in beats if b is not None), key=lambda b: b.id)


def _beat(name: str, keys: Keys, value: Any) -> WorkerBeat | None:
    if value is None:  # expired between SCAN and MGET
        return None
    worker_id = name.removeprefix(keys.worker_prefix)
    try:
        data = json.loads(value)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    kind = data.get("tipo") or worker_kind(worker_id)
    task = data.get("tarefa")
    return WorkerBeat(worker_id, str(kind), str(task) if task else None)


def worker_kind(worker_id: str | None) -> str:
    """`c-host-42` -> `c`: the protocol's worker ids start with the worker's kind."""
    if not worker_id:
        return "nenhum"
    return worker_id.split("-", 1)[0]


async def recent_tasks(
    client: aioredis.Redis, keys: Keys, limit: int = RECENT_TASKS
) -> list[TaskSample]:
    """The newest `limit` tasks, reading only the fields metrics use."""
    ids = [str(i) for i in await client.zrevrange(keys.tasks, 0, limit - 1)]
    samples: list[TaskSample] = []
    for start in range(0, len(ids), _PIPELINE_CHUNK):
        async with client.pipeline(transaction=False) as pipe:
            for task_id in ids[start : start + _PIPELINE_CHUNK]:
                pipe.hmget(keys.task(task_id), list(_TASK_FIELDS))
            rows = await pipe.execute()
        samples.extend(_sample(values) for values in rows if values and values[0])
    return samples


def _sample(values: list[str | None]) -> TaskSample:
    status, report_type, started, finished, rows, size, worker = values
    return TaskSample(
        status=status or "",
        type=report_type or "",
        worker_kind=worker_kind(worker),
        rows=_int(rows),
        size=_int(size),
        duration_s=seconds_between(started, finished),
    )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


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


async def counters(client: aioredis.Redis, keys: Keys) -> dict[str, int]:
    raw = await client.hgetall(keys.stats)
    return {str(k): _int(str(v)) for k, v in raw.items()}


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

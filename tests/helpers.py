"""Small helpers shared by the worker tests: push a task as a producer would, wait for it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import redis

from relatorios.protocol import (
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    FINAL_STATES,
    Keys,
    Message,
    ParamValue,
    file_name,
    new_task_id,
)
from tests.conftest import WorkerEnv, wait_until

StartWorker = Callable[[str, WorkerEnv], subprocess.Popen[bytes]]

# A report that takes a while (seconds in Python) and whose size is known: 3,000,000 rows.
SLOW_ROWS = 3_000_000
SLOW_SQL = f"""-- @title Lento
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SLOW_ROWS})
SELECT i AS numero, 'linha ' || i AS texto FROM n;
"""


def push(
    client: redis.Redis,
    queue: str,
    report: str,
    params: dict[str, ParamValue],
    formato: str = DEFAULT_FORMAT,
    compressao: str = DEFAULT_COMPRESSION,
) -> Message:
    """LPUSH a task the way docs/protocol.md describes it (hash, index and message)."""
    task_id = new_task_id()
    file = file_name(report, task_id, formato=formato, compressao=compressao)
    message = Message(task_id, report, params, file, formato=formato, compressao=compressao)
    keys = Keys(queue)
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.task(task_id), mapping={"status": "na_fila", "arquivo": message.file})
    pipe.lpush(queue, message.to_json())
    pipe.execute()
    return message


def status_of(client: redis.Redis, queue: str, task_id: str) -> str | None:
    return client.hget(Keys(queue).task(task_id), "status")  # type: ignore[return-value]


def wait_final(
    client: redis.Redis, env: WorkerEnv, task_id: str, timeout: float = 60
) -> dict[str, str]:
    key = Keys(env.queue).task(task_id)
    wait_until(lambda: client.hget(key, "status") in FINAL_STATES, timeout, f"task {task_id}")
    return client.hgetall(key)  # type: ignore[return-value]


def wait_status(
    client: redis.Redis, env: WorkerEnv, task_id: str, status: str, timeout: float = 30
) -> None:
    wait_until(
        lambda: status_of(client, env.queue, task_id) == status, timeout, f"{task_id} {status}"
    )


def slow_catalog(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "LENTO.sql").write_text(SLOW_SQL)
    (folder / "RAPIDO.sql").write_text("SELECT 1 AS um, 'dois' AS dois;\n")
    return folder

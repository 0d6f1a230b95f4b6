"""A private redis-server for the run, and the producer side of the protocol (docs/protocol.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import redis

from relatorios import redis_server
from relatorios.protocol import F, Keys, Message, ParamValue, Status, file_name, new_task_id

POLL_S = 0.002


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """The redis-server `make run` starts (append-only file), on a free port; yields its URL."""
    shutil.rmtree(folder, ignore_errors=True)
    proc, url = redis_server.start(folder, port=6390)
    try:
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def task(report_type: str, params: dict[str, ParamValue]) -> Message:
    task_id = new_task_id()
    return Message(task_id, report_type, params, file_name(report_type, task_id))


def enqueue(client: redis.Redis, keys: Keys, messages: Iterable[Message]) -> None:
    """Produce tasks exactly as the API does (hash, sorted set, list), in one MULTI/EXEC."""
    pipe = client.pipeline(transaction=True)
    now_ms = int(time.time() * 1000)
    for message in messages:
        pipe.hset(
            keys.task(message.task_id),
            mapping={
                F.STATUS: Status.QUEUED.value,
                F.TYPE: message.report_type,
                F.PARAMS: json.dumps(message.params, ensure_ascii=False),
                F.FILE: message.file,
                F.CREATED: message.created_at,
                F.ROWS: 0,
                F.BYTES: 0,
            },
        )
        pipe.zadd(keys.tasks, {message.task_id: now_ms})
        pipe.lpush(keys.queue, message.to_json())
    pipe.execute()


def wait_final(client: redis.Redis, keys: Keys, task_id: str, timeout_s: float) -> dict[str, str]:
    """Poll the task hash until it is `concluido` or `falhou`; return its fields."""
    key = keys.task(task_id)
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        status = client.hget(key, F.STATUS)
        if status in (b"concluido", b"falhou", "concluido", "falhou"):
            raw = cast(dict[bytes | str, bytes | str], client.hgetall(key))
            return {_text(k): _text(v) for k, v in raw.items()}
        time.sleep(POLL_S)
    raise TimeoutError(f"task {task_id} not finished after {timeout_s:.0f} s")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

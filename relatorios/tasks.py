"""The producer's side of the protocol: enqueue a task, read tasks back (used by the API)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relatorios.protocol import (
    F,
    Keys,
    Message,
    ParamValue,
    Status,
    file_name,
    new_task_id,
    now_iso,
)


class QueueUnavailable(Exception):
    """Redis could not be reached or answered with an error; nothing was enqueued."""


@dataclass(frozen=True)
class Task:
    task_id: str
    fields: dict[str, str]

    @property
    def status(self) -> str:
        return self.fields.get(F.STATUS, "")

    def as_dict(self) -> dict[str, Any]:
        f = self.fields
        return {
            "task_id": self.task_id,
            "status": self.status,
            "tipo_relatorio": f.get(F.TYPE, ""),
            "parametros": _json_object(f.get(F.PARAMS)),
            "arquivo": f.get(F.FILE, ""),
            "linhas": int(f.get(F.ROWS) or 0),
            "bytes": int(f.get(F.BYTES) or 0),
            "criado_em": f.get(F.CREATED),
            "iniciado_em": f.get(F.STARTED),
            "concluido_em": f.get(F.FINISHED),
            "erro": f.get(F.ERROR),
            "worker": f.get(F.WORKER),
        }


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class TaskStore:
    """Tasks of one queue in one Redis. Every method raises QueueUnavailable on a Redis error."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    async def enqueue(self, report_type: str, params: dict[str, ParamValue]) -> Task:
        task_id = new_task_id()
        message = Message(task_id, report_type, params, file_name(report_type, task_id), now_iso())
        fields = {
            F.STATUS: Status.QUEUED.value,
            F.TYPE: report_type,
            F.PARAMS: json.dumps(params, ensure_ascii=False),
            F.FILE: message.file,
            F.CREATED: message.created_at,
            F.ROWS: "0",
            F.BYTES: "0",
        }
        try:
            # One MULTI/EXEC: the task is recorded and queued together, or not at all.
            async with self.redis.pipeline(transaction=True) as pipe:
                mapping: dict[Any, Any] = dict(fields)  # redis-py's Mapping type is invariant
                pipe.hset(self.keys.task(task_id), mapping=mapping)
                pipe.zadd(self.keys.tasks, {task_id: int(time.time() * 1000)})
                pipe.lpush(self.keys.queue, message.to_json())
                await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return Task(task_id, fields)

    async def get(self, task_id: str) -> Task | None:
        try:
            raw = await self.redis.hgetall(self.keys.task(task_id))
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        fields = {str(k): str(v) for k, v in raw.items()}
        return Task(task_id, fields) if fields else None

    async def list(
        self, status: str | None, report_type: str | None, limit: int, offset: int
    ) -> tuple[list[Task], int]:
        """Newest first, filtered; returns one page and the number of tasks matching."""
        try:
            ids = [str(i) for i in await self.redis.zrevrange(self.keys.tasks, 0, -1)]
            matching: list[Task] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for task_id in chunk:
                        pipe.hgetall(self.keys.task(task_id))
                    rows = await pipe.execute()
                matching.extend(
                    Task(task_id, fields)
                    for task_id, fields in zip(chunk, rows, strict=True)
                    if fields and _matches(fields, status, report_type)
                )
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return matching[offset : offset + limit], len(matching)

    async def queue_depth(self) -> int:
        try:
            return int(await self.redis.llen(self.keys.queue))
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc


def _matches(fields: dict[str, str], status: str | None, report_type: str | None) -> bool:
    return (status is None or fields.get(F.STATUS) == status) and (
        report_type is None or fields.get(F.TYPE) == report_type
    )

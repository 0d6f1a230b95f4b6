"""The API's side of the protocol: enqueue, read, cancel and sweep tasks, and read what the
workers (C and Python alike) record in Redis: heartbeats, counters, recent task hashes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from relatorios.monitoring import (
    SAMPLE_FIELDS,
    TaskSample,
    WorkerBeat,
    beat_from,
    int_or_zero,
    sample_from,
)
from relatorios.protocol import (
    FILE_NAME_RE,
    FINAL_STATES,
    MOVE_DUE_RETRIES_LUA,
    RETRY_MOVE_BATCH,
    TASK_FIELDS,
    ErrorCode,
    F,
    Keys,
    Message,
    ParamValue,
    Stat,
    Status,
    TaskField,
    file_name,
    new_task_id,
    now_iso,
)

SWEEP_BATCH = 1000
PIPELINE_CHUNK = 1000
# The backpressure check reuses the queue depth it last saw for this long (one round trip less
# per request); LPUSH's reply refreshes it, so one API process sees its own pushes at once.
DEPTH_FRESH_S = 0.5


class QueueUnavailable(Exception):
    """Redis could not be reached or answered with an error; nothing was enqueued."""


class QueueFull(Exception):
    """Backpressure: the queue is deeper than the configured limit; nothing was enqueued."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"fila cheia: {depth} tarefas aguardando (limite {limit})")


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused with a different request."""


class NotCancellable(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"tarefa já finalizada (status: {status})")
        self.status = status


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc


@dataclass(frozen=True)
class Task:
    task_id: str
    fields: dict[str, str]

    @property
    def status(self) -> str:
        return self.fields.get(F.STATUS, "")

    def as_dict(self) -> dict[str, Any]:
        """The task as readers show it: `task_id`, then every field of TASK_FIELDS, typed."""
        shown = {f.name: _typed(f, self.fields.get(f.name)) for f in TASK_FIELDS}
        return {"task_id": self.task_id, **shown}


def _typed(field: TaskField, text: str | None) -> Any:
    """A hash field's text as its JSON type; a missing one is null, or empty when always set."""
    if field.kind is int:
        return int_or_zero(text)
    if field.kind is dict:
        return _json_object(text)
    if text is None:
        return "" if field.always else None
    return text


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class TaskStore:
    """Tasks of one queue in one Redis. Every method raises QueueUnavailable on a Redis error."""

    def __init__(self, client: aioredis.Redis, keys: Keys, retention_s: int) -> None:
        self._redis = client
        self._keys = keys
        self.retention_s = retention_s
        self._depth = (0, -DEPTH_FRESH_S)  # (depth, monotonic time seen)

    async def enqueue(
        self,
        report_type: str,
        params: dict[str, ParamValue],
        max_queue: int,
        idempotency_key: str | None = None,
    ) -> tuple[Task, bool]:
        """Queue a task; returns it and whether it is new (False: an Idempotency-Key replay)."""
        task_id = new_task_id()
        with redis_errors():
            if idempotency_key is not None:
                replay = await self._claim_key(idempotency_key, task_id, report_type, params)
                if replay is not None:
                    return replay, False
            try:
                depth = await self._recent_depth()
                if depth >= max_queue:
                    raise QueueFull(depth, max_queue)
                return await self._push(task_id, report_type, params), True
            except BaseException:
                if idempotency_key is not None:  # the key must not point at a task never queued
                    await self._redis.delete(self._keys.idempotency(_sha256(idempotency_key)))
                raise

    async def _recent_depth(self) -> int:
        depth, seen = self._depth
        if time.monotonic() - seen > DEPTH_FRESH_S:
            depth = int(await self._redis.llen(self._keys.queue))
            self._depth = (depth, time.monotonic())
        return depth

    async def _claim_key(
        self, key: str, task_id: str, report_type: str, params: dict[str, ParamValue]
    ) -> Task | None:
        request = _sha256(json.dumps([report_type, params], sort_keys=True))
        name = self._keys.idempotency(_sha256(key))
        value = f"{task_id} {request}"
        if await self._redis.set(name, value, nx=True, ex=self.retention_s):
            return None
        stored = str(await self._redis.get(name) or value)
        existing, _, stored_request = stored.partition(" ")
        if stored_request != request:
            raise IdempotencyConflict("Idempotency-Key já usada com outro pedido")
        for _ in range(20):  # a concurrent request may be queueing it right now
            task = await self.get(existing)
            if task is not None:
                return task
            await asyncio.sleep(0.05)
        raise QueueUnavailable("tarefa da Idempotency-Key ainda não registrada; tente novamente")

    async def _push(self, task_id: str, report_type: str, params: dict[str, ParamValue]) -> Task:
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
        # One MULTI/EXEC: the task is recorded and queued together, or not at all.
        async with self._redis.pipeline(transaction=True) as pipe:
            mapping: dict[Any, Any] = dict(fields)  # redis-py's Mapping type is invariant
            pipe.hset(self._keys.task(task_id), mapping=mapping)
            pipe.zadd(self._keys.tasks, {task_id: int(time.time() * 1000)})
            pipe.lpush(self._keys.queue, message.to_json())
            *_, depth = await pipe.execute()
        self._depth = (int(depth), time.monotonic())
        return Task(task_id, fields)

    async def get(self, task_id: str) -> Task | None:
        with redis_errors():
            raw = await self._redis.hgetall(self._keys.task(task_id))
        fields = {str(k): str(v) for k, v in raw.items()}
        return Task(task_id, fields) if fields else None

    async def cancel(self, task_id: str) -> Task | None:
        """Cancel a queued or running task (None if unknown). Raises NotCancellable if final."""
        key = self._keys.task(task_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        status = await pipe.hget(key, F.STATUS)
                        if status is None:
                            return None
                        if status in FINAL_STATES:
                            raise NotCancellable(str(status))
                        now = now_iso()
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.hset(
                            key,
                            mapping={
                                F.STATUS: Status.CANCELLED,
                                F.CANCELLED: now,
                                F.FINISHED: now,
                                F.ERROR_CODE: ErrorCode.CANCELLED,
                            },
                        )
                        pipe.expire(key, self.retention_s + 86_400)
                        pipe.hincrby(self._keys.stats, Stat.CANCELLED, 1)
                        await pipe.execute()
                        return await self.get(task_id)
                    except WatchError:
                        continue

    async def find(
        self, status: str | None, report_type: str | None, limit: int, offset: int
    ) -> tuple[list[Task], int]:
        """Newest first, filtered; returns one page and the number of tasks matching."""
        with redis_errors():
            ids = [str(i) for i in await self._redis.zrevrange(self._keys.tasks, 0, -1)]
            matching: list[Task] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                async with self._redis.pipeline(transaction=False) as pipe:
                    for task_id in chunk:
                        pipe.hgetall(self._keys.task(task_id))
                    rows = await pipe.execute()
                matching.extend(
                    Task(task_id, fields)
                    for task_id, fields in zip(chunk, rows, strict=True)
                    if fields and _matches(fields, status, report_type)
                )
        return matching[offset : offset + limit], len(matching)

    async def dead_letters(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with redis_errors():
            total = int(await self._redis.llen(self._keys.dead))
            raw = await self._redis.lrange(self._keys.dead, offset, offset + limit - 1)
        return [_json_object(str(entry)) for entry in raw], total

    # ---- what /health and /metrics read ----

    async def ping(self) -> None:
        with redis_errors():
            await self._redis.ping()

    async def queue_depth(self) -> int:
        """Messages waiting in the queue, after moving there the delayed retries that are due
        (the workers do it too: whoever looks first, docs/protocol.md "Delayed retries")."""
        with redis_errors():
            keys = [self._keys.retries, self._keys.queue]
            await self._redis.eval(MOVE_DUE_RETRIES_LUA, 2, *keys, RETRY_MOVE_BATCH)
            return int(await self._redis.llen(self._keys.queue))

    async def retries_waiting(self) -> int:
        """Tasks waiting for their next attempt (`Q:adiadas`)."""
        with redis_errors():
            return int(await self._redis.zcard(self._keys.retries))

    async def task_count(self) -> int:
        """Tasks in the index `Q:tarefas` (every task not swept by the retention yet)."""
        with redis_errors():
            return int(await self._redis.zcard(self._keys.tasks))

    async def live_workers(self) -> list[WorkerBeat]:
        """Workers whose heartbeat key has not expired, sorted by id."""
        prefix = self._keys.worker_prefix
        with redis_errors():
            names = [str(k) async for k in self._redis.scan_iter(match=f"{prefix}*", count=100)]
            if not names:
                return []
            values = await self._redis.mget(names)
        beats = (
            beat_from(name.removeprefix(prefix), value)
            for name, value in zip(names, values, strict=True)
        )
        return sorted((b for b in beats if b is not None), key=lambda b: b.id)

    async def recent_tasks(self, limit: int) -> list[TaskSample]:
        """The newest `limit` tasks, reading only the fields metrics use."""
        samples: list[TaskSample] = []
        with redis_errors():
            ids = [str(i) for i in await self._redis.zrevrange(self._keys.tasks, 0, limit - 1)]
            for start in range(0, len(ids), PIPELINE_CHUNK):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for task_id in ids[start : start + PIPELINE_CHUNK]:
                        pipe.hmget(self._keys.task(task_id), list(SAMPLE_FIELDS))
                    rows = await pipe.execute()
                samples.extend(sample_from(values) for values in rows if values and values[0])
        return samples

    async def counters(self) -> dict[str, int]:
        """The workers' statistics hash (`Stat`), all time."""
        with redis_errors():
            raw = await self._redis.hgetall(self._keys.stats)
        return {str(k): int_or_zero(str(v)) for k, v in raw.items()}

    async def sweep(self, export_dir: Path) -> int:
        """Retention: expire finished tasks older than the retention, with their files."""
        cutoff_ms = int((time.time() - self.retention_s) * 1000)
        with redis_errors():
            if not await self._redis.set(self._keys.sweep_lock, "1", nx=True, ex=120):
                return 0  # another API process is sweeping
            tasks = self._keys.tasks
            old = await self._redis.zrangebyscore(tasks, "-inf", cutoff_ms, 0, SWEEP_BATCH)
            expired = 0
            for task_id in map(str, old):
                task = await self.get(task_id)
                if task is not None and task.status not in FINAL_STATES:
                    continue  # still queued or running: not ours to expire
                if task is not None:
                    await self._expire(task, export_dir)
                await self._redis.zrem(self._keys.tasks, task_id)
                expired += 1
            await self._redis.delete(self._keys.sweep_lock)
        return expired

    async def _expire(self, task: Task, export_dir: Path) -> None:
        name = task.fields.get(F.FILE, "")
        if FILE_NAME_RE.match(name):  # never a path from Redis onto the file system
            (export_dir / name).unlink(missing_ok=True)
        key = self._keys.task(task.task_id)
        if task.status != Status.EXPIRED:
            await self._redis.hset(key, mapping={F.STATUS: Status.EXPIRED, F.EXPIRED: now_iso()})
        await self._redis.expire(key, 86_400)


def _matches(fields: dict[str, str], status: str | None, report_type: str | None) -> bool:
    return (status is None or fields.get(F.STATUS) == status) and (
        report_type is None or fields.get(F.TYPE) == report_type
    )

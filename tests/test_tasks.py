"""TaskStore against a real Redis: what /health and /metrics read through it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis
import redis.asyncio as aioredis

from relatorios.monitoring import TaskSample, WorkerBeat
from relatorios.protocol import F, Keys, Stat, Status
from relatorios.tasks import QueueUnavailable, TaskStore
from tests.conftest import free_port

T = TypeVar("T")


def with_store(url: str, queue: str, use: Callable[[TaskStore], Awaitable[T]]) -> T:
    async def run() -> T:
        client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
        try:
            return await use(TaskStore(client, Keys(queue), 86_400))
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_live_workers_are_read_from_heartbeats_sorted_by_id(
    redis_url: str, redis_client: redis.Redis, queue_name: str
) -> None:
    keys = Keys(queue_name)
    redis_client.set(keys.worker("python-h-2"), json.dumps({"tipo": "python", "tarefa": None}))
    redis_client.set(keys.worker("c-h-1"), json.dumps({"tipo": "c", "tarefa": "abc"}))
    redis_client.set(keys.worker("c-h-3"), "not json")  # the kind comes from the id then
    now_ms = int(time.time() * 1000)
    # As every worker does with its heartbeat: its id in the registry, scored by the beat's time.
    redis_client.zadd(keys.workers, {"python-h-2": now_ms, "c-h-1": now_ms, "c-h-3": now_ms})
    redis_client.zadd(keys.workers, {"c-h-4": now_ms - 60_000})  # silent for a minute: dead
    redis_client.set(keys.worker("c-h-4"), json.dumps({"tipo": "c", "tarefa": None}))
    workers = with_store(redis_url, queue_name, lambda s: s.live_workers())
    assert workers == [
        WorkerBeat("c-h-1", "c", "abc"),
        WorkerBeat("c-h-3", "c", None),
        WorkerBeat("python-h-2", "python", None),
    ]


def test_recent_tasks_counters_and_depths(
    redis_url: str, redis_client: redis.Redis, queue_name: str
) -> None:
    keys = Keys(queue_name)
    for score, (task_id, status) in enumerate((("a", Status.DONE), ("b", Status.QUEUED))):
        redis_client.zadd(keys.tasks, {task_id: score})
        redis_client.hset(keys.task(task_id), mapping={F.STATUS: status, F.TYPE: "X"})
    redis_client.hset(
        keys.task("a"),
        mapping={
            F.STARTED: "2026-11-28T23:23:24.000Z",
            F.FINISHED: "2026-11-28T23:23:26.500Z",
            F.ROWS: "7",
            F.BYTES: "90",
            F.WORKER: "c-h-1",
        },
    )
    redis_client.lpush(queue_name, "m1", "m2")
    redis_client.hincrby(keys.stats, Stat.DONE, 3)

    async def read(store: TaskStore) -> tuple[object, ...]:
        await store.ping()
        return (
            await store.recent_tasks(10),
            await store.recent_tasks(1),
            await store.counters(),
            await store.queue_depth(),
            await store.task_count(),
        )

    recent, newest, counters, depth, count = with_store(redis_url, queue_name, read)
    done = TaskSample(Status.DONE, "X", "c", 7, 90, 2.5)
    queued = TaskSample(Status.QUEUED, "X", "nenhum", 0, 0, None)
    assert recent == [queued, done]  # newest first
    assert newest == [queued]
    assert counters == {Stat.DONE: 3}
    assert (depth, count) == (2, 2)


@pytest.mark.parametrize(
    "read", ["ping", "queue_depth", "task_count", "live_workers", "counters", "recent_tasks"]
)
def test_every_read_raises_queue_unavailable_when_redis_is_down(read: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"

    async def call(store: TaskStore) -> object:
        method = getattr(store, read)
        return await (method(10) if read == "recent_tasks" else method())

    with pytest.raises(QueueUnavailable):
        with_store(dead, "q", call)

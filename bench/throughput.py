"""Benchmark 3, small-task throughput: many tiny reports through 1 and 2 workers.

The project's workers get real reports of a few rows each (TRANSACOES_POR_PERIODO for one day of
a 10,000-transaction database): each task opens the database, runs the query, writes and renames a
CSV and records its state in Redis. The peers, arq and rq, get no-op jobs on the same Redis: only
their queue machinery is measured. Every contender is timed from the first enqueued task to the
last finished one (enqueueing included, each with its library's batch API), workers already up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import cast

import redis

from bench import broker, workers
from bench.measure import REPO, VAR, median, rotate
from bench.noop_jobs import RQ_QUEUE
from bench.plan import Plan, database
from bench.results import Measurement
from relatorios.protocol import Keys, Message, Stat

CONTENDERS = (
    ("worker C", 1),
    ("worker C", 2),
    ("worker Python", 1),
    ("worker Python", 2),
    ("arq", 1),
    ("arq", 2),
    ("rq", 1),
    ("rq", 2),
)
ENQUEUE_CHUNK = 500
TIMEOUT_S = 1800
POLL_S = 0.005
WORK = VAR / "throughput"

Timed = tuple[float, dict[str, float]]


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    db = database(plan.tiny_size)
    names = [f"{name} x{count}" for name, count in CONTENDERS]
    found: dict[str, list[Timed]] = {name: [] for name in names}
    notes: dict[str, str] = {}
    for rep in range(plan.reps):
        for label in rotate(names, rep):
            name, count = CONTENDERS[names.index(label)]
            if name == "worker C" and not workers.available("c"):
                notes[label] = "not built (app/build/worker missing)"
                continue
            seconds, extra = _measure(name, count, plan.tiny_tasks, redis_url, db)
            print(f"  {label:18} {plan.tiny_tasks / seconds:8.0f} tasks/s", flush=True)
            found[label].append((seconds, extra))
    case = f"{plan.tiny_tasks:,} tiny reports"
    results = []
    for label in names:
        m = Measurement(
            "throughput", case, label, runs=len(found[label]), note=notes.get(label, "")
        )
        if found[label]:
            m.samples = [s for s, _ in found[label]]
            m.seconds = median(m.samples)
            m.extra = {"tasks_per_s": plan.tiny_tasks / m.seconds, "tasks": plan.tiny_tasks}
            m.extra["failed"] = sum(e.get("failed", 0) for _, e in found[label])
            m.rows = int(found[label][0][1].get("rows", 0))
        results.append(m)
    return results


def _measure(name: str, count: int, tasks: int, redis_url: str, db: Path) -> Timed:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    try:
        if name == "arq":
            return _peer(_arq_command(), "Starting worker", count, redis_url, _arq_load(tasks))
        if name == "rq":
            return _peer(_rq_command(redis_url), "Listening on", count, redis_url, _rq_load(tasks))
        kind = "c" if name == "worker C" else "python"
        return _ours(kind, count, tasks, redis_url, db)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def tiny_tasks(tasks: int) -> list[Message]:
    """One report per day of 2022..2025, round robin: a few rows each."""
    days = [date(2022, 1, 1) + timedelta(i) for i in range(4 * 365)]
    return [
        broker.task("TRANSACOES_POR_PERIODO", {"data_inicio": d, "data_fim": d})
        for d in (days[i % len(days)].isoformat() for i in range(tasks))
    ]


def _ours(kind: str, count: int, tasks: int, redis_url: str, db: Path) -> Timed:
    setup = workers.Setup(redis_url, f"bench_{uuid.uuid4().hex[:8]}", db, WORK / "export")
    keys = Keys(setup.queue)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    messages = tiny_tasks(tasks)
    with workers.running(kind, setup, count):
        started = time.perf_counter()
        for i in range(0, tasks, ENQUEUE_CHUNK):
            broker.enqueue(client, keys, messages[i : i + ENQUEUE_CHUNK])
        _wait(lambda: _finished(client, keys) >= tasks)
        seconds = time.perf_counter() - started
    stats = cast(dict[str, str], client.hgetall(keys.stats))
    client.close()
    extra = {"failed": float(stats.get(Stat.FAILED, 0)), "rows": float(stats.get(Stat.ROWS, 0))}
    return seconds, extra


def _finished(client: redis.Redis, keys: Keys) -> int:
    done, failed = cast(list[str | None], client.hmget(keys.stats, [Stat.DONE, Stat.FAILED]))
    return int(done or 0) + int(failed or 0)


Load = Callable[[str], Callable[[], bool]]


def _peer(argv: list[str], ready: str, count: int, redis_url: str, load: Load) -> Timed:
    """Start `count` peer workers, wait for `ready` in each log, then enqueue and wait."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    env = {**os.environ, "REDIS_URL": redis_url}
    with _processes(argv, env, count) as logs:
        _wait(lambda: all(ready in log.read_text(errors="replace") for log in logs), 60)
        started = time.perf_counter()
        done = load(redis_url)
        _wait(done)
        seconds = time.perf_counter() - started
    client.flushdb()
    client.close()
    return seconds, {}


@contextmanager
def _processes(argv: list[str], env: dict[str, str], count: int) -> Iterator[list[Path]]:
    logs = [WORK / f"peer-{i}.log" for i in range(count)]
    procs = []
    for log in logs:
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            )
    try:
        yield logs
    finally:
        for proc in procs:
            workers.stop(proc)


def _arq_command() -> list[str]:
    return [sys.executable, "-m", "arq", "bench.noop_jobs.ArqSettings"]


def _rq_command(redis_url: str) -> list[str]:
    # SimpleWorker runs jobs in its own process, as our workers do; rq's default Worker forks a
    # child per job, which is several times slower on tiny jobs.
    rq = [sys.executable, "-m", "rq.cli", "worker", "-w", "rq.worker.SimpleWorker"]
    return [*rq, "-u", redis_url, RQ_QUEUE]


def _arq_load(tasks: int) -> Load:
    def load(redis_url: str) -> Callable[[], bool]:
        from arq import create_pool
        from arq.connections import RedisSettings
        from arq.constants import default_queue_name

        async def enqueue() -> None:
            pool = await create_pool(RedisSettings.from_dsn(redis_url))
            for i in range(0, tasks, ENQUEUE_CHUNK):
                size = min(ENQUEUE_CHUNK, tasks - i)
                await asyncio.gather(*(pool.enqueue_job("arq_noop") for _ in range(size)))
            await pool.aclose()

        asyncio.run(enqueue())
        client = redis.Redis.from_url(redis_url)
        # arq removes a job from its sorted set only once it has finished.
        return lambda: client.zcard(default_queue_name) == 0

    return load


def _rq_load(tasks: int) -> Load:
    def load(redis_url: str) -> Callable[[], bool]:
        from rq import Queue
        from rq.registry import FinishedJobRegistry

        from bench.noop_jobs import noop

        client = redis.Redis.from_url(redis_url)
        queue = Queue(RQ_QUEUE, connection=client)
        for i in range(0, tasks, ENQUEUE_CHUNK):
            size = min(ENQUEUE_CHUNK, tasks - i)
            queue.enqueue_many([Queue.prepare_data(noop) for _ in range(size)])
        finished = FinishedJobRegistry(queue=queue).key
        return lambda: cast(int, client.zcard(finished)) >= tasks

    return load


def _wait(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark run did not finish in time")
        time.sleep(POLL_S)

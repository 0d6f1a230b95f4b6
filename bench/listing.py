"""Benchmark 7, listing: `GET /relatorios?limite=20` with 1,000,000 tasks recorded.

The tasks are written straight into a private Redis as the API and the workers record them (the
task hash, `tarefas`, and the indexes per owner, type and status), spread over 10 user keys, the
six states and the catalog's types; then one uvicorn process serves the real API. Timed, each
alone: the admin's listing (every task), a user's listing (the owner index), a status filter
(the status index), and `/health`; then `/health` again while 8 clients list in a loop.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.measure import VAR
from bench.plan import Plan, database
from bench.results import Measurement
from relatorios import redis_server
from relatorios.api import FACTORY as API_FACTORY
from relatorios.apikeys import create_key
from relatorios.protocol import F, Keys, Status, file_name, iso, new_task_id

TASKS_FULL = 1_000_000
TASKS_QUICK = 50_000
OWNERS = 10
TYPES = ("GASTOS_POR_DEPARTAMENTO", "PAGAMENTOS_PENDENTES", "RESUMO_MENSAL")
CALLS = 200
LISTERS = 8
LOAD_S = 10
MAXMEMORY = "6gb"


def run(plan: Plan, _redis_url: str) -> list[Measurement]:
    work = VAR / "listing"
    total = TASKS_QUICK if plan.quick else TASKS_FULL
    proc, url = redis_server.start(work / "redis", port=6395, maxmemory=MAXMEMORY)
    try:
        queue = f"lista_{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        fill(url, queue, total)
        print(f"  {total:,} tasks recorded in {time.perf_counter() - started:.0f} s", flush=True)
        client = redis.Redis.from_url(url, decode_responses=True)
        admin = create_key(client, Keys(queue), "admin", admin=True)
        user = create_key(client, Keys(queue), "dono-0")
        client.close()
        env = {**os.environ, "REDIS_URL": url, "QUEUE_NAME": queue}
        env.update(DB_PATH=str(database(plan.tiny_size)), EXPORT_DIR=str(work / "export"))
        env.update(COTA_REQUISICOES_POR_MIN="100000000")
        return measure(env, work, total, admin, user)
    finally:
        proc.terminate()
        proc.wait(30)


def fill(url: str, queue: str, total: int) -> None:
    """`total` finished and active tasks, newest last, written in pipelines of 5,000."""
    client = redis.Redis.from_url(url)
    keys = Keys(queue)
    statuses = list(Status)
    now_ms = int(time.time() * 1000) - total
    pipe = client.pipeline(transaction=False)
    for i in range(total):
        task_id = new_task_id()
        report_type = TYPES[i % len(TYPES)]
        status = statuses[i % len(statuses)]
        owner = f"dono-{i % OWNERS}"
        score = now_ms + i
        pipe.hset(
            keys.task(task_id),
            mapping={
                F.STATUS: status.value,
                F.TYPE: report_type,
                F.PARAMS: "{}",
                F.FILE: file_name(report_type, task_id),
                F.CREATED: iso(datetime.fromtimestamp(score / 1000, UTC)),
                F.ROWS: 1000,
                F.BYTES: 65536,
                F.OWNER: owner,
            },
        )
        for index in (keys.tasks, keys.by_owner(owner), keys.by_type(report_type)):
            pipe.zadd(index, {task_id: score})
        pipe.zadd(keys.by_status(status.value), {task_id: score})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    client.close()


def measure(
    env: dict[str, str], work: Path, total: int, admin: str, user: str
) -> list[Measurement]:
    port = _free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", API_FACTORY, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "uvicorn.log", "ab") as log:
        api = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base)
            return _timings(base, total, admin, user)
        finally:
            api.terminate()
            api.wait(15)


def _timings(base: str, total: int, admin: str, user: str) -> list[Measurement]:
    case = f"{total:,} tasks recorded"
    results = []
    for contender, path, key in (
        ("GET /relatorios?limite=20 (admin: every task)", "/relatorios?limite=20", admin),
        ("GET /relatorios?limite=20 (a user's tasks)", "/relatorios?limite=20", user),
        (
            "GET /relatorios?limite=20&status=concluido",
            "/relatorios?limite=20&status=concluido",
            admin,
        ),
        ("GET /relatorios?limite=20&offset=500000", "/relatorios?limite=20&offset=500000", admin),
        ("GET /health (idle)", "/health", ""),
    ):
        latencies = _calls(base, path, key, CALLS)
        results.append(_measurement(case, contender, latencies))
        print(f"  {contender:50} p50 {results[-1].extra['p50_ms']:.1f} ms", flush=True)
    health = _health_under_load(base, admin)
    results.append(_measurement(case, f"GET /health while {LISTERS} clients list", health))
    print(f"  /health under load: p50 {results[-1].extra['p50_ms']:.1f} ms", flush=True)
    return results


def _calls(base: str, path: str, key: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(5):
            client.get(path)
        for _ in range(n):
            start = time.perf_counter()
            response = client.get(path)
            latencies.append(time.perf_counter() - start)
            assert response.status_code in (200, 503), response.text
    return latencies


def _lister(base: str, key: str, stop: Any) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        while not stop.is_set():
            client.get("/relatorios?limite=20")


def _health_under_load(base: str, key: str) -> list[float]:
    # The listers are processes of their own: threads here would share this one's GIL with the
    # client timing /health and inflate its figures.
    stop = multiprocessing.Event()
    listers = [
        multiprocessing.Process(target=_lister, args=(base, key, stop)) for _ in range(LISTERS)
    ]
    for lister in listers:
        lister.start()
    time.sleep(1)
    latencies: list[float] = []
    deadline = time.monotonic() + LOAD_S
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            client.get("/health")
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
    stop.set()
    for lister in listers:
        lister.join(30)
    return latencies


def _measurement(case: str, contender: str, latencies: list[float]) -> Measurement:
    ordered = sorted(latencies)
    m = Measurement("listing", case, contender, runs=len(latencies))
    m.seconds = statistics.median(ordered)
    m.extra = {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }
    return m


def _wait(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("uvicorn did not answer in 30 s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Benchmark 2, ingest: 1,000 concurrent clients posting valid requests to /gerar-relatorio.

The load generator is `wrk` (C, event loop; one thread, so the server keeps the other core), with
a Lua script for the POST body and for exact counts and percentiles. The same load runs against
the real API (validation, then the task hash, sorted set and list in one MULTI/EXEC on Redis) and
against a bare FastAPI endpoint that answers 202 without touching Redis (bench/bare_api.py): the
ceiling. Both run under one uvicorn process with the same options; they alternate.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import cast

import httpx
import redis

from bench.measure import VAR, median, rotate
from bench.plan import Plan, database
from bench.results import Measurement
from relatorios.api import FACTORY as API_FACTORY
from relatorios.apikeys import create_key
from relatorios.protocol import Keys

# Application factories and uvicorn processes, all run as `uvicorn --factory` (as `relatorios
# api` runs the API; API_WORKERS=2 is `--workers 2`).
APPS = {
    "relatorios API": (API_FACTORY, 1),
    "relatorios API, API_WORKERS=2": (API_FACTORY, 2),
    "bare FastAPI + one MULTI (floor)": ("bench.bare_api:create_floor_app", 1),
    "bare FastAPI (ceiling)": ("bench.bare_api:create_app", 1),
}
BODY = {
    "tipo_relatorio": "GASTOS_POR_DEPARTAMENTO",
    "parametros": {"departamento": "Engenharia de Software"},
}
WARMUP_S = 2
LUA = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    if shutil.which("wrk") is None:
        note = "not run: wrk is not installed (apt-get install wrk)"
        return [Measurement("ingest", "POST /gerar-relatorio", name, note=note) for name in APPS]
    db = database(plan.default_size)
    work = VAR / "ingest"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = work / "post.lua"
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in APPS}
    for rep in range(plan.reps):
        for name in rotate(list(APPS), rep):
            queue = f"bench_{uuid.uuid4().hex[:8]}"
            env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_NAME": queue, "DB_PATH": str(db)}
            env["EXPORT_DIR"] = str(work / "export")
            # One API key for all the clients, with quotas that do not refuse the load.
            env.update(COTA_REQUISICOES_POR_MIN="100000000", COTA_TAREFAS_ATIVAS="100000000")
            env["MAX_FILA"] = "100000000"  # nobody consumes: the default 10,000 would 503
            _arm(script, redis_url, queue)
            with _server(*APPS[name], env, work) as url:
                _wrk(url, script, plan.ingest_clients, WARMUP_S)
                _flush_queue(redis_url, queue)
                _arm(script, redis_url, queue)  # the flush took the key too
                figures = _wrk(url, script, plan.ingest_clients, plan.ingest_seconds)
                figures["enqueued"] = _queue_length(redis_url, queue)
            _flush_queue(redis_url, queue)
            print(
                f"  {name:22} {figures['requests_per_s']:8.0f} req/s"
                f"  p50 {figures['p50_ms']:.0f} ms  p99 {figures['p99_ms']:.0f} ms"
                f"  errors {figures['errors']:.0f}",
                flush=True,
            )
            samples[name].append(figures)
    shutil.rmtree(work, ignore_errors=True)
    return [_summary(plan, name, runs) for name, runs in samples.items()]


def _arm(script: Path, redis_url: str, queue: str) -> None:
    """A new admin key of `queue`, in the wrk script that every client runs."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        secret = create_key(client, Keys(queue), "bench", admin=True)
    finally:
        client.close()
    script.write_text(LUA % (json.dumps(BODY, ensure_ascii=False), secret))


def _summary(plan: Plan, name: str, runs: list[dict[str, float]]) -> Measurement:
    case = f"POST /gerar-relatorio, {plan.ingest_clients} clients, {plan.ingest_seconds} s"
    m = Measurement("ingest", case, name, runs=len(runs))
    m.samples = [r["requests_per_s"] for r in runs]
    m.extra = {key: median([r[key] for r in runs]) for key in runs[0]}
    m.extra["errors"] = sum(r["errors"] for r in runs)  # every error of every run counts
    m.seconds = plan.ingest_seconds
    return m


def _wrk(url: str, script: Path, clients: int, seconds: int) -> dict[str, float]:
    argv = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    requests, duration_us, connect, read, write, status, timeout, p50, p99 = map(
        int, line.split()[1:]
    )
    return {
        "requests": requests,
        "requests_per_s": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": connect + read + write + status + timeout,
        "http_errors": status,
    }


class _server:
    """One uvicorn process serving `app` on a free loopback port, with the options of `make run`
    except the access log (off for both contenders: 1 line per request would dominate)."""

    def __init__(self, app: str, workers: int, env: dict[str, str], work: Path) -> None:
        self.port = _free_port()
        argv = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1"]
        argv += ["--workers", str(workers)]
        argv += ["--port", str(self.port), "--no-access-log", "--log-level", "warning"]
        self.log = open(work / "uvicorn.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> str:
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("uvicorn exited at start-up; see var/bench/ingest/uvicorn.log")
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                return f"{base}/gerar-relatorio"
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("uvicorn did not answer in 30 s")

    def __exit__(self, *exc_info: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _queue_length(redis_url: str, queue: str) -> float:
    client = redis.Redis.from_url(redis_url)
    try:
        return float(cast(int, client.llen(Keys(queue).queue)))
    finally:
        client.close()


def _flush_queue(redis_url: str, queue: str) -> None:
    """Delete every key of `queue` (tasks nobody will run), so runs start from the same state."""
    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{queue}*", count=10_000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()

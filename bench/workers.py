"""Start the project's workers (C and Python) as real processes, and stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.measure import REPO
from relatorios.protocol import Keys

C_WORKER = REPO / "app" / "build" / "worker"
KINDS = ("c", "python")
READY_TIMEOUT_S = 30


def available(kind: str) -> bool:
    return kind != "c" or os.access(C_WORKER, os.X_OK)


def command(kind: str) -> list[str]:
    if kind == "c":
        return [str(C_WORKER)]
    return [sys.executable, "-m", "relatorios.worker"]


@dataclass(frozen=True)
class Setup:
    """What a worker process is told through its environment."""

    redis_url: str
    queue: str
    db_path: Path
    export_dir: Path
    database_url: str = ""  # PostgreSQL instead of db_path when set

    def env(self) -> dict[str, str]:
        source = {"DATABASE_URL": self.database_url} if self.database_url else {}
        return {
            **os.environ,
            **source,
            "REDIS_URL": self.redis_url,
            "QUEUE_NAME": self.queue,
            "DB_PATH": str(self.db_path),
            "EXPORT_DIR": str(self.export_dir),
            "CATALOG_DIR": str(REPO / "catalog"),
        }


@contextmanager
def running(kind: str, setup: Setup, count: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` workers of `kind`, each ready (heartbeat written) when this yields."""
    setup.export_dir.mkdir(parents=True, exist_ok=True)
    log = open(setup.export_dir.parent / f"worker-{kind}.log", "ab")  # noqa: SIM115
    procs = [
        subprocess.Popen(command(kind), env=setup.env(), stdout=log, stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    try:
        _wait_ready(procs, setup)
        yield procs
    finally:
        for proc in procs:
            stop(proc)
        log.close()


def _wait_ready(procs: list[subprocess.Popen[bytes]], setup: Setup) -> None:
    client = redis.Redis.from_url(setup.redis_url)
    prefix = Keys(setup.queue).worker_prefix
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with code {proc.returncode} at start-up")
        beats = [key for key in client.scan_iter(match=f"{prefix}*") if key]
        if len(beats) >= len(procs):
            client.close()
            return
        time.sleep(0.01)
    raise RuntimeError("workers not ready (no heartbeat) in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a worker finishes its task and leaves), SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

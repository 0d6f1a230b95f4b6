"""`relatorios up` (what `make run` calls): the whole system in one terminal.

Starts a private Redis when REDIS_URL is unset, generates the database when it is missing, runs
the API, N workers, the scheduler and the notifier, restarts any of them that dies (as Docker's
restart policy would), and on Ctrl-C or SIGTERM stops everything, workers first so they can
finish their current task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from relatorios import redis_server
from relatorios.api import FACTORY as API_FACTORY
from relatorios.apikeys import create_key, key_hash, revoke_key
from relatorios.monitoring import postgres_problem
from relatorios.postgres import redacted
from relatorios.protocol import SOURCE_POSTGRESQL, Keys
from relatorios.settings import (
    ADMIN_KEY_FILE,
    REDIS_URL_FILE,
    REPO_ROOT,
    Settings,
    get_settings,
)

C_WORKER = REPO_ROOT / "app" / "build" / "worker"
RESTART_DELAY_S = 1.0
ADMIN_KEY_NAME = "admin"


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.cmd, env=env)


def worker_command(kind: str) -> list[str]:
    if kind == "c":
        return [str(C_WORKER)]
    return [sys.executable, "-m", "relatorios.worker"]


def pick_worker_kind(requested: str) -> str:
    if requested == "c" and not C_WORKER.is_file():
        print(f"Worker C não compilado ({C_WORKER}); usando o worker Python (make worker-c)")
        return "python"
    return requested


class Supervisor:
    def __init__(self, settings: Settings, workers: int, kind: str) -> None:
        self.settings = settings
        self.env = dict(os.environ)
        self.stopping = False
        api = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            API_FACTORY,
            "--host",
            settings.host,
            "--port",
            str(settings.port),
            "--workers",
            str(settings.api_workers),
        ]
        self.api = Child("api", api)
        command = worker_command(pick_worker_kind(kind))
        self.workers = [Child(f"worker-{i + 1}", command) for i in range(workers)]
        # Schedules and webhooks (docs/operations.md): one process each, restarted like workers.
        self.services = [
            Child("agendador", [sys.executable, "-m", "relatorios.scheduler"]),
            Child("notificador", [sys.executable, "-m", "relatorios.notifier"]),
        ]
        self.redis: subprocess.Popen[bytes] | None = None

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        url_file = self.settings.state_dir / REDIS_URL_FILE
        if "REDIS_URL" not in os.environ:
            folder = self.settings.state_dir / "redis"
            self.redis, url = redis_server.start(folder)
            self.env["REDIS_URL"] = url
            redis_server.write_private(url_file, url + "\n")
            print(f"Redis privado em {redacted_redis(url)} (senha e persistência em {folder})")
        admin_key = ensure_admin_key(self.settings, self.env.get("REDIS_URL", ""))
        if self.settings.source == SOURCE_POSTGRESQL:
            problem = postgres_problem(self.settings.database_url)
            print(
                f"Relatórios do PostgreSQL de DATABASE_URL ({redacted(self.settings.database_url)})"
            )
            if problem:  # workers wait for a server that is down, but not for a wrong password
                print(f"Aviso: {problem}")
        else:
            ensure_database(self.settings.db_path)
        self.settings.export_dir.mkdir(parents=True, exist_ok=True)
        for child in [*self.workers, *self.services, self.api]:
            child.start(self.env)
        host = "localhost" if self.settings.host in ("127.0.0.1", "0.0.0.0") else self.settings.host
        base = f"http://{host}:{self.settings.port}"
        print(f"\nPronto: abra {base}/ (página) ou {base}/docs (API)  — Ctrl-C para parar")
        print(f"Chave de administrador: {admin_key}")
        print(f"Entrar na página: {base}/#chave={admin_key}")
        print(f"(guardada em {self.settings.state_dir / ADMIN_KEY_FILE}; mais chaves: ")
        print("relatorios chaves criar NOME)\n")
        try:
            self.watch()
        finally:
            self.shutdown()
            if self.redis:
                url_file.unlink(missing_ok=True)
        return 0

    def watch(self) -> None:
        while not self.stopping:
            time.sleep(0.5)
            for child in [*self.workers, *self.services, self.api]:
                if child.proc is not None and child.proc.poll() is not None and not self.stopping:
                    print(f"{child.name} saiu (código {child.proc.returncode}); reiniciando...")
                    time.sleep(RESTART_DELAY_S)
                    child.start(self.env)

    def shutdown(self) -> None:
        print("\nParando: workers terminam a tarefa atual...")
        for child in [*self.workers, *self.services, self.api]:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in [*self.workers, *self.services, self.api]:
            if child.proc:
                try:
                    child.proc.wait(60)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
        if self.redis:
            self.redis.terminate()
            self.redis.wait(10)
        print("Tudo parado.")


def redacted_redis(url: str) -> str:
    """A Redis URL without its password, for a terminal."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at and userinfo else url


def ensure_admin_key(settings: Settings, redis_url: str) -> str:
    """The admin key kept in the state folder (0600), made on the first start (or again when
    it was revoked or the Redis data lost): its secret, to print."""
    client = redis.Redis.from_url(redis_url or settings.redis_url, decode_responses=True)
    keys = Keys(settings.queue_name)
    path = settings.state_dir / ADMIN_KEY_FILE
    try:
        with contextlib.suppress(FileNotFoundError):
            secret = path.read_text().strip()
            if secret and client.exists(keys.api_key(key_hash(secret))):
                return secret
        revoke_key(client, keys, ADMIN_KEY_NAME)  # its secret is lost: a new one replaces it
        secret = create_key(client, keys, ADMIN_KEY_NAME, admin=True)
    finally:
        client.close()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    redis_server.write_private(path, secret + "\n")
    return secret


def ensure_database(path: Path) -> None:
    if path.is_file():
        return
    from relatorios.dbgen import generate

    print(f"Banco {path} não encontrado: gerando (uma vez)...")
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(path)


def up(workers: int = 1, kind: str = "c") -> int:
    supervisor = Supervisor(get_settings(), workers, kind)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    try:
        return supervisor.run()
    except redis_server.RedisNotFound as exc:
        print(f"Erro: {exc}", file=sys.stderr)
        return 1

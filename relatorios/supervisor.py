"""`relatorios up` (what `make run` calls): the whole system in one terminal.

Starts a private Redis when REDIS_URL is unset (and restarts it when it exits), generates the
database when it is missing, runs the API, N workers, the scheduler and the notifier, restarts
any of them that dies (as Docker's restart policy would), and owns shutdown (docs/operations.md,
"Stopping"): every child runs in a session of its own, so a Ctrl-C in the terminal (or a signal
to the whole process group) reaches only this process, which stops the API, the scheduler and
the notifier first (no new work), then the workers (each finishes its task within
SHUTDOWN_DEADLINE_S or hands it back to the queue), and Redis last, once the workers have
recorded. A second Ctrl-C stops everything at once; recovery hands any running task back on the
next start.
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
# The API stops first: it gets this long to finish the requests it is serving.
API_GRACE_S = 2.0
# Past SHUTDOWN_DEADLINE_S a worker still has this long to hand its task back and exit before it
# is killed (then recovery hands the task back on the next start).
WORKER_GRACE_S = 3.0
# Redis, stopped last, writes its append-only file and exits within this.
REDIS_GRACE_S = 1.5
# A private Redis that exits is started again after this, doubling while it keeps exiting.
REDIS_RESTART_FIRST_S = 0.5
REDIS_RESTART_MAX_S = 8.0
REDIS_STABLE_S = 30.0  # up this long: the next exit starts the backoff over
POLL_S = 0.1
ADMIN_KEY_NAME = "admin"


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: the terminal's Ctrl-C (and a signal to our process group) reaches
        # only the supervisor, which stops the children in order.
        self.proc = subprocess.Popen(self.cmd, env=env, start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited between poll and kill
                self.proc.send_signal(signum)


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
        self.forced = False  # a second Ctrl-C: stop everything at once
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
            "--timeout-graceful-shutdown",
            str(int(API_GRACE_S)),
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
        self.redis_folder = settings.state_dir / "redis"
        self.redis_port = 0
        self.redis_backoff = REDIS_RESTART_FIRST_S
        self.redis_started = 0.0
        self.redis_exited_at: float | None = None

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        """The first SIGINT or SIGTERM stops in order; a second Ctrl-C (SIGINT) stops at once.
        A repeated SIGTERM does not: `make run`'s make forwards the SIGTERM its process group got
        to us, so one `kill -TERM -- -PGID` arrives twice."""
        if self.stopping and not self.forced and signum == signal.SIGINT:
            self.forced = True
            print(
                "\nSegundo Ctrl-C: parando tudo já (tarefas em andamento voltam à fila no "
                "próximo início).",
                flush=True,
            )
        self.stopping = True

    def run(self) -> int:
        url_file = self.settings.state_dir / REDIS_URL_FILE
        if "REDIS_URL" not in os.environ:
            self.redis, url = redis_server.start(self.redis_folder)
            self.redis_port = int(url.rsplit(":", 1)[1].split("/")[0])
            self.redis_started = time.monotonic()
            self.env["REDIS_URL"] = url
            redis_server.write_private(url_file, url + "\n")
            where = self.redis_folder
            print(f"Redis privado em {redacted_redis(url)} (senha e persistência em {where})")
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
            self.watch_redis()
            for child in [*self.workers, *self.services, self.api]:
                if child.proc is not None and child.proc.poll() is not None and not self.stopping:
                    print(f"{child.name} saiu (código {child.proc.returncode}); reiniciando...")
                    time.sleep(RESTART_DELAY_S)
                    child.start(self.env)

    def watch_redis(self) -> None:
        """The private Redis exited: start it again on the same port and files, with backoff.
        The API and the workers reconnect by themselves (docs/protocol.md)."""
        if self.redis is None or self.redis.poll() is None or self.stopping:
            return
        now = time.monotonic()
        if self.redis_exited_at is None:
            self.redis_exited_at = now
            if now - self.redis_started >= REDIS_STABLE_S:
                self.redis_backoff = REDIS_RESTART_FIRST_S
            print(
                f"Redis saiu (código {self.redis.returncode}); reiniciando em "
                f"{self.redis_backoff:.1f}s...",
                flush=True,
            )
        if now - self.redis_exited_at < self.redis_backoff:
            return
        self.redis_exited_at = None
        self.redis_backoff = min(self.redis_backoff * 2, REDIS_RESTART_MAX_S)
        self.redis_started = now
        try:
            self.redis, _ = redis_server.start(self.redis_folder, self.redis_port, same_port=True)
            print("Redis reiniciado.", flush=True)
        except RuntimeError as exc:  # tried again at the next look, after the backoff
            print(f"Redis não reiniciou: {exc}", flush=True)

    def shutdown(self) -> None:
        """API first, then the workers (deadline), then Redis; a second Ctrl-C cuts it short."""
        started = time.monotonic()
        print("\nParando: API primeiro, depois os workers terminam a tarefa atual...", flush=True)
        self.stop_children([self.api, *self.services], started + API_GRACE_S + 1)
        deadline = started + self.settings.shutdown_deadline_s + WORKER_GRACE_S
        self.stop_children(self.workers, deadline)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            try:
                self.redis.wait(REDIS_GRACE_S)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        print(f"Tudo parado ({time.monotonic() - started:.1f}s).", flush=True)

    def stop_children(self, children: list[Child], deadline: float) -> None:
        """SIGTERM, then wait until they exit, the deadline passes or a second Ctrl-C: SIGKILL."""
        for child in children:
            child.signal(signal.SIGTERM)
        while any(child.running() for child in children):
            if self.forced or time.monotonic() >= deadline:
                for child in children:
                    if child.running():
                        print(f"{child.name} não parou a tempo; encerrando à força.", flush=True)
                        child.signal(signal.SIGKILL)
                break
            time.sleep(POLL_S)
        for child in children:
            if child.proc is not None:
                child.proc.wait()


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

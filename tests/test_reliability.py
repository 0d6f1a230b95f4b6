"""No task is ever lost: kill -9, cancellation, SIGTERM, retries, poison, Redis restarts.

Real worker processes and real signals, against a real redis-server.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from relatorios.protocol import ErrorCode, Keys
from tests.conftest import WORKER_KINDS, ApiProcess, WorkerEnv, free_port, start_redis, wait_until
from tests.helpers import (
    SLOW_ROWS,
    StartWorker,
    push,
    slow_catalog,
    status_of,
    wait_final,
)

StartApi = Callable[[WorkerEnv], ApiProcess]


def processing_total(client: redis.Redis, queue: str) -> int:
    keys = Keys(queue)
    return sum(client.llen(k) for k in client.scan_iter(f"{keys.processing_prefix}*"))


def csv_rows(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f) - 1


@pytest.fixture
def slow_env(worker_env: WorkerEnv, tmp_path: Path) -> WorkerEnv:
    worker_env.catalog_dir = slow_catalog(tmp_path / "catalog")
    worker_env.extra["PROGRESS_EVERY"] = "1000"
    return worker_env


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_kill_9_mid_report_another_worker_completes_it(
    kind: str, slow_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    victim = start_worker(kind, slow_env)
    task = push(redis_client, slow_env.queue, "LENTO", {})
    key = Keys(slow_env.queue).task(task.task_id)
    wait_until(lambda: int(redis_client.hget(key, "linhas") or 0) > 0, 30, "the report to start")
    victim.kill()
    victim.wait()
    start_worker(kind, slow_env)
    final = wait_final(redis_client, slow_env, task.task_id, timeout=90)
    assert final["status"] == "concluido"
    assert final["tentativas"] == "2"
    files = sorted(p.name for p in slow_env.export_dir.iterdir())
    assert files == [task.file], "exactly one final CSV and no .part left"
    assert csv_rows(slow_env.export_dir / task.file) == SLOW_ROWS
    assert processing_total(redis_client, slow_env.queue) == 0


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_cancel_a_queued_task_it_never_runs(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    start_api: StartApi,
    redis_client: redis.Redis,
) -> None:
    api = start_api(worker_env)
    body = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}
    task_id = api.http.post(f"{api.url}/gerar-relatorio", json=body).json()["task_id"]
    cancelled = api.http.delete(f"{api.url}/relatorios/{task_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelado"
    assert api.http.delete(f"{api.url}/relatorios/{task_id}").status_code == 409
    start_worker(kind, worker_env)
    later = api.http.post(f"{api.url}/gerar-relatorio", json=body).json()
    wait_final(redis_client, worker_env, later["task_id"])
    assert status_of(redis_client, worker_env.queue, task_id) == "cancelado"
    assert [p.name for p in worker_env.export_dir.iterdir()] == [later["arquivo"]]
    assert redis_client.llen(worker_env.queue) == 0
    assert processing_total(redis_client, worker_env.queue) == 0


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_cancel_a_running_task_stops_within_a_second(
    kind: str,
    slow_env: WorkerEnv,
    start_worker: StartWorker,
    start_api: StartApi,
    redis_client: redis.Redis,
) -> None:
    api = start_api(slow_env)
    worker = start_worker(kind, slow_env)
    task = push(redis_client, slow_env.queue, "LENTO", {})
    key = Keys(slow_env.queue).task(task.task_id)
    wait_until(lambda: int(redis_client.hget(key, "linhas") or 0) > 0, 30, "the report to start")
    assert api.http.delete(f"{api.url}/relatorios/{task.task_id}").status_code == 200
    wait_until(
        lambda: processing_total(redis_client, slow_env.queue) == 0, 1.5, "the worker to stop"
    )
    assert status_of(redis_client, slow_env.queue, task.task_id) == "cancelado"
    assert not list(slow_env.export_dir.iterdir()), "partial file removed"
    after = push(redis_client, slow_env.queue, "RAPIDO", {})
    assert wait_final(redis_client, slow_env, after.task_id)["status"] == "concluido"
    assert worker.poll() is None


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_sigterm_idle_worker_exits_0_at_once(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    worker = start_worker(kind, worker_env)
    keys = Keys(worker_env.queue)
    wait_until(lambda: list(redis_client.scan_iter(f"{keys.worker_prefix}*")), 10, "heartbeat")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(3) == 0
    assert not list(redis_client.scan_iter(f"{keys.worker_prefix}*")), "heartbeat removed"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_sigterm_busy_worker_past_deadline_puts_the_task_back(
    kind: str, slow_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    slow_env.extra["SHUTDOWN_DEADLINE_S"] = "0.5"
    worker = start_worker(kind, slow_env)
    task = push(redis_client, slow_env.queue, "LENTO", {})
    key = Keys(slow_env.queue).task(task.task_id)
    wait_until(lambda: int(redis_client.hget(key, "linhas") or 0) > 0, 30, "the report to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(5) == 0
    assert status_of(redis_client, slow_env.queue, task.task_id) == "na_fila"
    assert redis_client.llen(slow_env.queue) == 1
    assert not list(slow_env.export_dir.iterdir())
    slow_env.extra.pop("SHUTDOWN_DEADLINE_S")
    start_worker(kind, slow_env)
    final = wait_final(redis_client, slow_env, task.task_id, timeout=90)
    assert final["status"] == "concluido" and final["tentativas"] == "1"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_sigterm_busy_worker_finishes_within_deadline(
    kind: str, slow_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    slow_env.extra["SHUTDOWN_DEADLINE_S"] = "60"
    worker = start_worker(kind, slow_env)
    task = push(redis_client, slow_env.queue, "LENTO", {})
    key = Keys(slow_env.queue).task(task.task_id)
    wait_until(lambda: int(redis_client.hget(key, "linhas") or 0) > 0, 30, "the report to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    assert status_of(redis_client, slow_env.queue, task.task_id) == "concluido"
    assert csv_rows(slow_env.export_dir / task.file) == SLOW_ROWS


class ExclusiveLock:
    """Holds an EXCLUSIVE lock on a SQLite file (readers get SQLITE_BUSY) until released."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=DELETE")
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.fixture
def own_db(worker_env: WorkerEnv, tmp_path: Path) -> WorkerEnv:
    copy = tmp_path / "empresa.db"
    shutil.copy(worker_env.db_path, copy)
    worker_env.db_path = copy
    return worker_env


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_locked_database_is_retried_and_the_attempts_are_visible(
    kind: str, own_db: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    own_db.extra.update(RETRY_BASE_S="1", MAX_TENTATIVAS="3")
    lock = ExclusiveLock(own_db.db_path)
    start_worker(kind, own_db)
    task = push(redis_client, own_db.queue, "PAGAMENTOS_PENDENTES", {})
    key = Keys(own_db.queue).task(task.task_id)
    wait_until(lambda: redis_client.hget(key, "proxima_tentativa_em"), 30, "a retry scheduled")
    assert redis_client.hget(key, "tentativas") == "1"
    assert redis_client.hget(key, "erro_codigo") == ErrorCode.DATABASE_UNAVAILABLE
    assert redis_client.hget(key, "erro")
    lock.release()
    final = wait_final(redis_client, own_db, task.task_id)
    assert final["status"] == "concluido" and final["tentativas"] == "2"
    assert "proxima_tentativa_em" not in final


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_task_waiting_for_its_retry_does_not_keep_its_worker_from_other_tasks(
    kind: str, own_db: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    catalog = slow_catalog(own_db.export_dir.parent / "catalog")
    shutil.copy(own_db.catalog_dir / "PAGAMENTOS_PENDENTES.sql", catalog)
    own_db.catalog_dir = catalog
    own_db.extra.update(RETRY_BASE_S="6", MAX_TENTATIVAS="3")
    keys = Keys(own_db.queue)
    lock = ExclusiveLock(own_db.db_path)  # the database is busy: PAGAMENTOS_PENDENTES must wait
    start_worker(kind, own_db)
    waiting = push(redis_client, own_db.queue, "PAGAMENTOS_PENDENTES", {})
    key = keys.task(waiting.task_id)
    wait_until(lambda: redis_client.hget(key, "proxima_tentativa_em"), 30, "a retry scheduled")
    assert redis_client.hget(key, "status") == "na_fila"
    assert redis_client.hget(key, "tentativas") == "1"
    assert redis_client.hget(key, "erro_codigo") == ErrorCode.DATABASE_UNAVAILABLE
    assert (
        redis_client.zcard(keys.retries) == 1 and processing_total(redis_client, own_db.queue) == 0
    )
    # Listed where its status says (the status indexes move with every status write).
    assert redis_client.zscore(keys.by_status("na_fila"), waiting.task_id) is not None
    assert redis_client.zscore(keys.by_status("processando"), waiting.task_id) is None
    # Meanwhile the same (single) worker serves another task, one that reads no table.
    began = time.monotonic()
    other = push(redis_client, own_db.queue, "RAPIDO", {})
    assert wait_final(redis_client, own_db, other.task_id, 5)["status"] == "concluido"
    assert time.monotonic() - began < 5
    assert redis_client.hget(key, "status") == "na_fila", "still waiting for its retry"
    lock.release()
    final = wait_final(redis_client, own_db, waiting.task_id, 30)
    assert final["status"] == "concluido" and final["tentativas"] == "2"
    assert "proxima_tentativa_em" not in final
    assert redis_client.zcard(keys.retries) == 0


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_exhausted_attempts_fail_and_dead_letter_the_task(
    kind: str, own_db: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    own_db.extra.update(RETRY_BASE_S="0.1", MAX_TENTATIVAS="2")
    lock = ExclusiveLock(own_db.db_path)
    try:
        start_worker(kind, own_db)
        task = push(redis_client, own_db.queue, "PAGAMENTOS_PENDENTES", {})
        final = wait_final(redis_client, own_db, task.task_id)
    finally:
        lock.release()
    assert final["status"] == "falhou" and final["tentativas"] == "2"
    assert final["erro_codigo"] == ErrorCode.ATTEMPTS_EXHAUSTED
    assert "tentativas esgotadas" in final["erro"]
    [dead] = [json.loads(d) for d in redis_client.lrange(Keys(own_db.queue).dead, 0, -1)]
    assert dead["task_id"] == task.task_id and "tentativas esgotadas" in dead["motivo"]
    assert json.loads(dead["mensagem"])["task_id"] == task.task_id


def poison_messages(rnd: random.Random, count: int) -> list[bytes]:
    good = {
        "versao": 1,
        "task_id": "0b7f6b8e-5d0e-4a2b-9a53-2f4f5b6c7d8e",
        "tipo_relatorio": "RAPIDO",
        "parametros": {},
        "arquivo": "relatorio_RAPIDO_20261128T232324Z_0b7f6b8e.csv",
    }
    text = json.dumps(good).encode()
    makers: list[Callable[[], bytes]] = [
        lambda: bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))),
        lambda: text[: rnd.randrange(1, len(text) - 1)],
        lambda: json.dumps(rnd.choice([None, 1, "x", [], [good], True])).encode(),
        lambda: json.dumps({**good, "task_id": rnd.choice(["", "abc", 5, None])}).encode(),
        lambda: json.dumps({**good, "versao": rnd.choice([0, 3, "1", None, 1.5])}).encode(),
        lambda: json.dumps(
            {**good, "arquivo": rnd.choice(["../x.csv", "/etc/passwd", ""])}
        ).encode(),
        lambda: json.dumps({**good, "tipo_relatorio": rnd.choice(["../../x", "a b", 1])}).encode(),
        lambda: json.dumps({**good, "parametros": rnd.choice([[], "x", {"a": {"b": 1}}])}).encode(),
        lambda: b" " * 70_000 + text,
        lambda: text.replace(b'"versao": 1', b'"versao": 1, "versao": 1'),
    ]
    return [rnd.choice(makers)() for _ in range(count)]


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_poison_flood_is_dead_lettered_and_good_tasks_between_are_done(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    worker_env.catalog_dir = slow_catalog(tmp_path / "catalog")
    rnd = random.Random(20261128)
    bad = poison_messages(rnd, 300)
    good = []
    for i, raw in enumerate(bad):
        redis_client.lpush(worker_env.queue, raw)
        if i % 30 == 0:
            good.append(push(redis_client, worker_env.queue, "RAPIDO", {}))
    workers = [start_worker(kind, worker_env) for _ in range(2)]
    for task in good:
        assert wait_final(redis_client, worker_env, task.task_id)["status"] == "concluido"
    keys = Keys(worker_env.queue)
    wait_until(lambda: redis_client.llen(keys.dead) == len(bad), 60, "every poison dead-lettered")
    assert all(json.loads(d)["motivo"] for d in redis_client.lrange(keys.dead, 0, -1))
    assert all(w.poll() is None for w in workers), "a worker died"
    assert processing_total(redis_client, worker_env.queue) == 0


# --- chaos ---------------------------------------------------------------------------------


class RestartableRedis:
    """A redis-server with append-only persistence that the test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_redis(self.port, self.folder, persistent=True)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # a clean shutdown: the append-only file is complete
        self.proc.wait(10)


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()


def chaos_kinds() -> list[str]:
    """Three workers mixing the kinds (all the kinds that exist)."""
    kinds = os.environ.get("CHAOS_KINDS", ",".join(WORKER_KINDS)).split(",")
    return [kinds[i % len(kinds)] for i in range(3)]


def test_chaos_kills_and_a_redis_restart_lose_nothing(
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    chaos_redis: RestartableRedis,
    tmp_path: Path,
) -> None:
    catalog = slow_catalog(tmp_path / "catalog")
    (catalog / "MEDIO.sql").write_text(
        '-- @param linhas integer required "Linhas"\n'
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :linhas)\n"
        "SELECT i AS numero, 'linha, \"' || i || '\"' AS texto FROM n;\n"
    )
    worker_env.catalog_dir = catalog
    worker_env.redis_url = chaos_redis.url
    client = redis.Redis.from_url(chaos_redis.url, decode_responses=True)
    rnd = random.Random(7)
    tasks = [
        push(client, worker_env.queue, "MEDIO", {"linhas": rnd.choice([10, 1000, 50_000])})
        for _ in range(200)
    ]
    kinds = chaos_kinds()
    workers = [start_worker(kind, worker_env) for kind in kinds]
    keys = Keys(worker_env.queue)
    stop = threading.Event()
    restarts: list[int] = []

    def done() -> int:
        try:
            return int(client.hget(keys.stats, "tarefas_concluidas") or 0)
        except redis.ConnectionError:
            return 0

    def chaos() -> None:
        kills = 0
        while not stop.is_set() and kills < 12:
            time.sleep(rnd.uniform(0.3, 1.0))
            slot = rnd.randrange(len(workers))
            os.kill(workers[slot].pid, signal.SIGKILL)
            workers[slot].wait()
            workers[slot] = start_worker(kinds[slot], worker_env)
            kills += 1
            if not restarts and done() >= 60:
                chaos_redis.stop()
                time.sleep(1)
                chaos_redis.start()
                restarts.append(kills)

    thread = threading.Thread(target=chaos)
    thread.start()
    try:
        wait_until(lambda: done() >= len(tasks), 240, "every task to finish")
    finally:
        stop.set()
        thread.join()
    assert restarts, "Redis was restarted during the run"
    statuses = [client.hget(keys.task(t.task_id), "status") for t in tasks]
    assert statuses == ["concluido"] * len(tasks)
    assert done() == len(tasks), "no task was completed twice"
    for task in tasks:
        expected = int(json.loads(task.to_json())["parametros"]["linhas"])
        assert csv_rows(worker_env.export_dir / task.file) == expected
    assert not list(worker_env.export_dir.glob("*.part"))
    assert all(w.poll() is None for w in workers)


# Rows come only after the whole count: no new row for seconds.
COUNT_SQL = """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
SELECT count(*) AS total FROM n;
"""


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_task_without_new_rows_for_its_timeout_is_stopped_and_failed(
    kind: str, slow_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    catalog = slow_env.catalog_dir
    (catalog / "PARADO.sql").write_text(COUNT_SQL.format(rows=200_000_000))
    # Its own @timeout lets this one compute for a while before its single row.
    tolerated = "-- @title Demorado mas previsto\n-- @timeout 60\n" + COUNT_SQL.format(
        rows=3_000_000
    )
    (catalog / "TOLERADO.sql").write_text(tolerated)
    slow_env.extra["TIMEOUT_TAREFA_S"] = "1"
    start_worker(kind, slow_env)
    began = time.monotonic()
    stalled = push(redis_client, slow_env.queue, "PARADO", {})
    final = wait_final(redis_client, slow_env, stalled.task_id, 30)
    assert time.monotonic() - began < 10
    assert final["status"] == "falhou" and final["erro_codigo"] == ErrorCode.STALLED, final
    assert "parou de progredir" in final["erro"] and final["tentativas"] == "1"
    assert not list(slow_env.export_dir.iterdir()), "no .part, no file"
    # Rows flowing for longer than the timeout are progress, and @timeout overrides the setting.
    for report in ("LENTO", "TOLERADO"):
        task = push(redis_client, slow_env.queue, report, {})
        assert wait_final(redis_client, slow_env, task.task_id, 120)["status"] == "concluido"


@pytest.mark.parametrize("kind", WORKER_KINDS)
@pytest.mark.parametrize(
    ("setting", "code"),
    [("MAX_LINHAS_TAREFA", ErrorCode.ROW_LIMIT), ("MAX_BYTES_TAREFA", ErrorCode.BYTE_LIMIT)],
)
def test_a_task_past_its_row_or_byte_limit_fails_and_leaves_no_file(
    kind: str,
    setting: str,
    code: ErrorCode,
    slow_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
) -> None:
    slow_env.extra[setting] = "5000"
    start_worker(kind, slow_env)
    big = push(redis_client, slow_env.queue, "LENTO", {})
    final = wait_final(redis_client, slow_env, big.task_id, 30)
    assert final["status"] == "falhou" and final["erro_codigo"] == code, final
    assert setting in final["erro"] and "5000" in final["erro"]
    assert final["tentativas"] == "1", "a limit is not retried"
    assert not list(slow_env.export_dir.iterdir()), "no .part, no file"
    small = push(redis_client, slow_env.queue, "RAPIDO", {})
    assert wait_final(redis_client, slow_env, small.task_id)["status"] == "concluido"


def test_the_api_moves_due_retries_to_the_queue_when_it_reads_its_depth(
    worker_env: WorkerEnv, start_api: StartApi, redis_client: redis.Redis
) -> None:
    """No worker around: whoever looks at the queue first moves the retries that are due."""
    api = start_api(worker_env)
    keys = Keys(worker_env.queue)
    far = int(time.time() * 1000) + 3_600_000
    redis_client.zadd(keys.retries, {"devida": 0, "futura": far})
    assert api.http.get(f"{api.url}/health").json()["fila"] == 1
    assert redis_client.lrange(keys.queue, 0, -1) == ["devida"]
    assert redis_client.zrange(keys.retries, 0, -1) == ["futura"]
    scrape = api.http.get(f"{api.url}/metrics").text.splitlines()
    assert "relatorios_tentativas_adiadas 1.0" in scrape and "relatorios_fila_tamanho 1.0" in scrape

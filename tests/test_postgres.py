"""Reports from PostgreSQL (DATABASE_URL), against the session's real server (conftest: pg_db).

Byte-for-byte agreement of the workers with each other and with SQLite is in test_conformance.py;
here: the specification's examples through the API, the faults of the issue (server down at
start, wrong password, restart mid-report, timeout, permission denied, a writing SQL) and the
cancellation of a running query, each with both workers; and popular_banco.py --url.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg
import pytest
import redis

from relatorios.catalog import load_catalog
from relatorios.protocol import ErrorCode, Keys
from relatorios.settings import Settings
from relatorios.worker.export import export, resolve_params
from relatorios.worker.source import open_source
from tests.conftest import (
    REPO,
    WORKER_KINDS,
    ApiProcess,
    PgDatabase,
    WorkerEnv,
    free_port,
    wait_until,
)
from tests.helpers import StartWorker, push, status_of, wait_final

StartApi = Callable[[WorkerEnv], ApiProcess]
EXAMPLES = [
    ("GASTOS_POR_DEPARTAMENTO", {"departamento": "Engenharia de Software"}),
    ("PAGAMENTOS_PENDENTES", {}),
]


@pytest.fixture
def pg_env(worker_env: WorkerEnv, pg_db: PgDatabase) -> WorkerEnv:
    worker_env.extra = {"DATABASE_URL": pg_db.url, "RETRY_BASE_S": "0.2"}
    return worker_env


def pg_catalog(folder: Path, reports: dict[str, str]) -> Path:
    """A catalog of PostgreSQL-only reports (name -> SQL), for the fault tests."""
    folder.mkdir(exist_ok=True)
    for name, sql in reports.items():
        (folder / f"{name}.sql").write_text(f"-- @sources postgresql\n{sql}\n")
    return folder


def log_of(tmp_path: Path, kind: str) -> str:
    return "".join(p.read_text("utf-8", "replace") for p in tmp_path.glob(f"worker-{kind}-*.log"))


def sqlite_csv(sample_db: Path, report: str, params: dict[str, object], out: Path) -> bytes:
    """The report from the SQLite file of the same seed, by the reference (Python) export."""
    spec = load_catalog(REPO / "catalog")[report]
    source = partial(open_source, Settings(db_path=sample_db))
    export(spec, resolve_params(spec, params), source, out, lambda *_: None, 10_000, lambda: None)  # type: ignore[arg-type]
    return out.read_bytes()


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_specification_examples_through_the_api_match_the_sqlite_file(
    kind: str,
    pg_env: WorkerEnv,
    sample_db: Path,
    start_api: StartApi,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    api = start_api(pg_env)
    start_worker(kind, pg_env)
    types = api.http.get(f"{api.url}/tipos-relatorio").json()
    department = next(p for t in types for p in t["parametros"] if p["nome"] == "departamento")
    assert "Engenharia de Software" in department["opcoes"], "departments come from PostgreSQL"
    for report, params in EXAMPLES:
        body = {"tipo_relatorio": report, "parametros": params}
        task = api.http.post(f"{api.url}/gerar-relatorio", json=body).json()
        url = f"{api.url}/relatorios/{task['task_id']}"
        wait_until(lambda url=url: api.http.get(url).json()["status"] == "concluido", 60, report)  # type: ignore[misc]
        got = api.http.get(f"{url}/download").content
        expected = sqlite_csv(sample_db, report, params, tmp_path / f"{report}.csv")
        assert got == expected and got.count(b"\r\n") > 100, report
    health = api.http.get(f"{api.url}/health").json()
    assert health["banco"] is True, health


def test_the_api_refuses_a_report_postgresql_lacks(
    pg_env: WorkerEnv, start_api: StartApi, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalogo"
    catalog.mkdir()
    (catalog / "SO_SQLITE.sql").write_text("SELECT sqlite_version() AS versao;\n")
    pg_catalog(catalog, {"SO_POSTGRES": "SELECT version() AS versao"})
    pg_env.catalog_dir = catalog
    api = start_api(pg_env)
    assert [t["tipo"] for t in api.http.get(f"{api.url}/tipos-relatorio").json()] == ["SO_POSTGRES"]
    refused = api.http.post(f"{api.url}/gerar-relatorio", json={"tipo_relatorio": "SO_SQLITE"})
    assert refused.status_code == 422 and "SO_POSTGRES" in refused.text, refused.text


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_worker_retries_while_the_server_is_down_at_start(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"postgresql://leitor:x@127.0.0.1:{free_port()}/empresa"
    worker_env.extra = {"DATABASE_URL": url}
    worker = start_worker(kind, worker_env)
    wait_until(
        lambda: log_of(tmp_path, kind).count("Banco de dados indisponível") >= 2, 15, "retries"
    )
    assert worker.poll() is None, "it keeps trying"
    assert "DATABASE_URL" in log_of(tmp_path, kind)
    worker.terminate()
    assert worker.wait(10) == 0


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_wrong_password_stops_the_worker_naming_the_setting(
    kind: str, worker_env: WorkerEnv, pg_db: PgDatabase, start_worker: StartWorker, tmp_path: Path
) -> None:
    secret = "senha-errada-123"
    worker_env.extra = {"DATABASE_URL": pg_db.url.replace("senha-do-leitor", secret)}
    worker = start_worker(kind, worker_env)
    assert worker.wait(15) == 2
    log = log_of(tmp_path, kind)
    assert "DATABASE_URL" in log and "senha" in log, log
    assert secret not in log, "the password never reaches the log"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_server_restart_mid_report_retries_the_task_without_a_partial_file(
    kind: str,
    pg_env: WorkerEnv,
    pg_db: PgDatabase,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    sleepy = "SELECT i FROM generate_series(1, 3) AS i, pg_sleep(1.5)"
    pg_env.catalog_dir = pg_catalog(tmp_path / "catalogo", {"DORMINHOCO": sleepy})
    # Retries at 0.5, 1, 2 and 4 s: the server is back well before the attempts run out.
    pg_env.extra.update(RETRY_BASE_S="0.5", MAX_TENTATIVAS="5")
    start_worker(kind, pg_env)
    task = push(redis_client, pg_env.queue, "DORMINHOCO", {})
    wait_until(
        lambda: _running_queries(pg_db, "pg_sleep") > 0, 20, "the query to run on the server"
    )
    pg_db.server.restart()
    state = wait_final(redis_client, pg_env, task.task_id, 60)
    assert state["status"] == "concluido", state
    assert int(state["tentativas"]) >= 2, state
    files = sorted(p.name for p in pg_env.export_dir.iterdir())
    assert files == [task.file], files
    assert (pg_env.export_dir / task.file).read_bytes() == b"i\r\n1\r\n2\r\n3\r\n"
    assert "Falha temporária" in log_of(tmp_path, kind)


def _running_queries(db: PgDatabase, text: str) -> int:
    try:
        rows = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            f" AND query LIKE '%{text}%' AND pid <> pg_backend_pid()"
        )
    except psycopg.OperationalError:
        return 0
    return int(rows[0][0])  # type: ignore[call-overload]


FAULTS = {
    "DEMORADO": "SELECT pg_sleep(3) AS dormiu",
    "SEGREDOS": "SELECT salario FROM segredos",
    "ESCRITOR": "INSERT INTO departamentos (id, nome, centro_custo) VALUES (999, 'x', 'y')"
    " RETURNING id",
}


@pytest.mark.parametrize("kind", WORKER_KINDS)
@pytest.mark.parametrize(
    ("report", "code", "words"),
    [
        ("DEMORADO", ErrorCode.QUERY_TIMEOUT, "tempo limite"),
        ("SEGREDOS", ErrorCode.PERMISSION_DENIED, "permissão"),
        ("ESCRITOR", ErrorCode.QUERY_FAILED, "escrever"),
    ],
    ids=["timeout", "permissao", "somente-leitura"],
)
def test_faults_fail_the_task_with_a_clear_reason(
    kind: str,
    report: str,
    code: ErrorCode,
    words: str,
    pg_env: WorkerEnv,
    pg_db: PgDatabase,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    pg_env.catalog_dir = pg_catalog(tmp_path / "catalogo", FAULTS)
    pg_env.extra["STATEMENT_TIMEOUT_S"] = "0.5"
    start_worker(kind, pg_env)
    task = push(redis_client, pg_env.queue, report, {})
    state = wait_final(redis_client, pg_env, task.task_id, 30)
    assert (state["status"], state["erro_codigo"]) == ("falhou", code), state
    assert words in state["erro"], state["erro"]
    assert state["tentativas"] == "1", "never retried"
    assert not list(pg_env.export_dir.iterdir())
    dead = [json.loads(d) for d in redis_client.lrange(Keys(pg_env.queue).dead, 0, -1)]
    assert (code == ErrorCode.PERMISSION_DENIED) == any(d["task_id"] == task.task_id for d in dead)
    assert pg_db.execute("SELECT count(*) FROM departamentos WHERE id = 999") == [(0,)]


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_running_postgresql_query_is_cancelled_within_a_second(
    kind: str,
    pg_env: WorkerEnv,
    pg_db: PgDatabase,
    start_api: StartApi,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    reports = {"ETERNO": "SELECT pg_sleep(60) AS nunca", "RAPIDO": "SELECT 1 AS um"}
    pg_env.catalog_dir = pg_catalog(tmp_path / "catalogo", reports)
    api = start_api(pg_env)
    worker = start_worker(kind, pg_env)
    task = push(redis_client, pg_env.queue, "ETERNO", {})
    wait_until(lambda: _running_queries(pg_db, "pg_sleep(60)") > 0, 20, "the query to run")
    started = time.monotonic()
    assert api.http.delete(f"{api.url}/relatorios/{task.task_id}").status_code == 200
    wait_until(lambda: _running_queries(pg_db, "pg_sleep(60)") == 0, 1.0, "the server-side cancel")
    assert time.monotonic() - started < 1.0
    wait_until(lambda: status_of(redis_client, pg_env.queue, task.task_id) == "cancelado", 2)
    assert not list(pg_env.export_dir.iterdir()), "no partial file"
    after = push(redis_client, pg_env.queue, "RAPIDO", {})
    assert wait_final(redis_client, pg_env, after.task_id)["status"] == "concluido"
    assert worker.poll() is None


def test_popular_banco_url_loads_the_same_rows_as_the_sqlite_file(
    pg_db: PgDatabase, sample_db: Path
) -> None:
    import sqlite3

    lite = sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)
    try:
        for table in ("departamentos", "funcionarios", "transacoes"):
            ours = lite.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            theirs = pg_db.execute(f"SELECT * FROM {table} ORDER BY id")
            as_text = [tuple(str(v) for v in row) for row in theirs]
            assert as_text == [tuple(str(v) for v in row) for row in ours], table
    finally:
        lite.close()


def test_popular_banco_url_cli_loads_keeps_and_replaces(pg_db: PgDatabase) -> None:
    pg_db.server.sql("CREATE DATABASE cli")
    url = pg_db.server.url(db="cli")
    run = partial(subprocess.run, capture_output=True, text=True, timeout=120, cwd=REPO)
    argv = [sys.executable, "popular_banco.py", "--url", url, "--funcionarios", "20"]
    first = run([*argv, "--transacoes", "500"])
    assert first.returncode == 0, first.stderr
    assert "Banco carregado" in first.stdout and pg_db.server.password not in first.stdout
    assert "Cópia para o PostgreSQL" in first.stderr, "the progress shows every phase"
    kept = run([*argv, "--transacoes", "50"])
    assert kept.returncode == 0 and "mantidas" in kept.stdout, kept.stdout
    replaced = run([*argv, "--transacoes", "50", "--force"])
    assert replaced.returncode == 0, replaced.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM transacoes").fetchone() == (50,)


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_worker_fails_a_report_its_source_lacks(
    kind: str,
    pg_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    catalog = pg_catalog(tmp_path / "catalogo", {"SO_POSTGRES": "SELECT 1 AS um"})
    (catalog / "SO_SQLITE.sql").write_text("SELECT sqlite_version() AS versao;\n")
    pg_env.catalog_dir = catalog
    start_worker(kind, pg_env)
    task = push(redis_client, pg_env.queue, "SO_SQLITE", {})
    state = wait_final(redis_client, pg_env, task.task_id, 30)
    assert (state["status"], state["erro_codigo"]) == ("falhou", ErrorCode.UNKNOWN_TYPE), state
    assert "postgresql" in state["erro"], state["erro"]

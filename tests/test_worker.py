"""Worker behaviour that a producer or operator notices, the same for every worker (Python, C).

Messages are pushed straight onto the queue, as any producer following docs/protocol.md may do.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import redis

from relatorios.protocol import ErrorCode, Keys, Stat, new_task_id
from tests.conftest import WORKER_KINDS, WorkerEnv
from tests.helpers import SLOW_ROWS, StartWorker, push, slow_catalog, wait_final


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_poison_messages_are_reported_and_the_worker_keeps_serving(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    worker = start_worker(kind, worker_env)
    keys = Keys(worker_env.queue)
    with_id = new_task_id()
    poison = [
        "not json at all",
        "[]",
        json.dumps({"versao": 1}),
        json.dumps({"versao": 1, "task_id": with_id, "tipo_relatorio": "X", "arquivo": "../x"}),
    ]
    for raw in poison:
        redis_client.lpush(worker_env.queue, raw)
    unknown = push(redis_client, worker_env.queue, "NAO_EXISTE", {})
    missing = push(redis_client, worker_env.queue, "GASTOS_POR_DEPARTAMENTO", {})
    extra = push(redis_client, worker_env.queue, "PAGAMENTOS_PENDENTES", {"x": 1})
    good = push(redis_client, worker_env.queue, "PAGAMENTOS_PENDENTES", {})

    assert wait_final(redis_client, worker_env, good.task_id)["status"] == "concluido"
    invalid = wait_final(redis_client, worker_env, with_id)
    assert invalid["erro_codigo"] == ErrorCode.INVALID_MESSAGE and "arquivo" in invalid["erro"]
    unknown_final = wait_final(redis_client, worker_env, unknown.task_id)
    assert unknown_final["erro_codigo"] == ErrorCode.UNKNOWN_TYPE
    assert "NAO_EXISTE" in unknown_final["erro"]
    for task, name in [(missing, "departamento"), (extra, "x")]:
        final = wait_final(redis_client, worker_env, task.task_id)
        assert final["status"] == "falhou", final
        assert final["erro_codigo"] == ErrorCode.INVALID_PARAMETER, final
        assert name in final["erro"], "the error names the parameter"
    assert worker.poll() is None, "the worker died"
    assert int(redis_client.hget(keys.stats, Stat.INVALID) or 0) == len(poison)
    dead = [json.loads(d) for d in redis_client.lrange(keys.dead, 0, -1)]
    # A parameter no API would send (missing, unknown) is dead-lettered too: no retry helps.
    assert len(dead) == len(poison) + 2
    assert all(d["motivo"] and d["em"] for d in dead)
    held = [redis_client.llen(k) for k in redis_client.scan_iter(f"{keys.processing_prefix}*")]
    assert sum(held) == 0, "every message left the processing list"
    assert not list(worker_env.export_dir.glob("*.part"))
    assert not list(worker_env.export_dir.parent.glob("*.csv")), "nothing written outside export/"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_missing_database_fails_the_task_not_the_worker(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    worker_env.db_path = worker_env.export_dir.parent / "nao_existe.db"
    worker_env.extra.update(RETRY_BASE_S="0.1", MAX_TENTATIVAS="2")
    worker = start_worker(kind, worker_env)
    task = push(redis_client, worker_env.queue, "PAGAMENTOS_PENDENTES", {})
    final = wait_final(redis_client, worker_env, task.task_id)
    # A missing database may be a database being replaced: retried, then given up.
    assert final["status"] == "falhou" and "nao_existe.db" in final["erro"]
    assert final["tentativas"] == "2" and final["erro_codigo"] == ErrorCode.ATTEMPTS_EXHAUSTED
    assert not worker_env.db_path.exists(), "a read-only worker must not create the database"
    assert worker.poll() is None


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_failing_query_fails_the_task_and_leaves_no_partial_file(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "QUEBRADO.sql").write_text("SELECT * FROM tabela_que_nao_existe;\n")
    # Fails mid-stream: abs() of the smallest integer overflows after some rows were written.
    (catalog / "ESTOURA.sql").write_text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)\n"
        "SELECT CASE WHEN i < 40000 THEN i ELSE abs(-9223372036854775807 - 1) END AS v FROM n;\n"
    )
    (catalog / "ESCREVE.sql").write_text("DELETE FROM transacoes;\n")
    worker_env.catalog_dir = catalog
    worker = start_worker(kind, worker_env)
    for report, detail in [
        ("QUEBRADO", "tabela_que_nao_existe"),
        ("ESTOURA", "overflow"),
        ("ESCREVE", "readonly"),
    ]:
        task = push(redis_client, worker_env.queue, report, {})
        final = wait_final(redis_client, worker_env, task.task_id)
        assert final["status"] == "falhou"
        assert final["erro_codigo"] == ErrorCode.QUERY_FAILED, final
        assert final["erro"] and detail not in final["erro"], "no library English for users"
        # The library's own message is for operators: in the worker's log (logged before the
        # failure is recorded), on the line that names the task.
        assert any_log_line(tmp_path, task.task_id, detail), f"{detail} not logged"
        assert not (worker_env.export_dir / task.file).exists()
    assert not list(worker_env.export_dir.iterdir())
    assert worker.poll() is None


def any_log_line(folder: Path, *words: str) -> bool:
    """Whether one line of a worker log in `folder` holds every word (case-insensitive)."""
    for log in folder.glob("worker-*.log"):
        for line in log.read_text("utf-8", "replace").lower().splitlines():
            if all(word.lower() in line.replace(" ", "") or word.lower() in line for word in words):
                return True
    return False


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_progress_is_visible_while_a_long_report_runs(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    worker_env.catalog_dir = slow_catalog(tmp_path / "catalog")
    worker_env.extra["PROGRESS_EVERY"] = "1000"
    start_worker(kind, worker_env)
    task = push(redis_client, worker_env.queue, "LENTO", {})
    key = Keys(worker_env.queue).task(task.task_id)
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, rows = redis_client.hmget(key, ["status", "linhas"])
        if status == "concluido":
            break
        if status == "processando" and rows:
            seen.add(int(rows))
        time.sleep(0.005)
    assert redis_client.hget(key, "linhas") == str(SLOW_ROWS)
    partial = {n for n in seen if 0 < n < SLOW_ROWS}
    assert len(partial) >= 2, f"progress seen while running: {sorted(seen)[:10]}"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_invalid_utf8_mid_report_keeps_every_row_and_every_byte(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """Invalid UTF-8 inside a batch, and again after it, costs no row and changes no byte: the
    Python worker switches decoders at the first bad value and goes on from that very row."""
    values = [f"ação {i}".encode() for i in range(1, 2501)]
    values[1499] = b"meio \xff\xfe do lote, " + bytes([0xC3])  # row 1,500: inside the 2nd batch
    values[2199] = b'depois "\x80" da troca'  # row 2,200: after the switch
    db = tmp_path / "utf8.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        con.executemany("INSERT INTO t (v) VALUES (CAST(? AS TEXT))", [(raw,) for raw in values])
    con.close()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "BYTES.sql").write_text("SELECT id, v FROM t ORDER BY id;\n")
    worker_env.db_path, worker_env.catalog_dir = db, catalog
    start_worker(kind, worker_env)
    task = push(redis_client, worker_env.queue, "BYTES", {})
    final = wait_final(redis_client, worker_env, task.task_id)
    assert final["status"] == "concluido", final
    expected = b"id,v\r\n" + b"".join(
        b"%d,%s\r\n"
        % (i, b'"' + raw.replace(b'"', b'""') + b'"' if b"," in raw or b'"' in raw else raw)
        for i, raw in enumerate(values, 1)
    )
    assert (worker_env.export_dir / task.file).read_bytes() == expected
    assert final["linhas"] == "2500"

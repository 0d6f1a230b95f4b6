"""What an operator sees: /health, /metrics (both workers' results) and JSON logs with task ids."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import WORKER_KINDS, ApiProcess, WorkerEnv, free_port, wait_until

StartWorker = Callable[[str, WorkerEnv], subprocess.Popen[bytes]]
StartApi = Callable[[WorkerEnv], ApiProcess]
PENDENTES = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}


def run_task(api: ApiProcess, body: dict[str, Any] = PENDENTES) -> dict[str, Any]:
    accepted = api.http.post(f"{api.url}/gerar-relatorio", json=body)
    assert accepted.status_code == 202, accepted.text
    final: dict[str, Any] = {}

    def finished() -> bool:
        final.update(api.http.get(accepted.json()["status_url"]).json())
        return final["status"] in ("concluido", "falhou")

    wait_until(finished, 60, "the task to finish")
    assert final["status"] == "concluido", final
    return final


def health(api: ApiProcess) -> httpx.Response:
    return api.http.get(f"{api.url}/health", timeout=10)


def metrics(
    api: ApiProcess, token: str | None = None
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, parsed by Prometheus' own parser, by (name, labels); read with
    the API's admin key, or with METRICS_TOKEN's `token`."""
    if token is None:
        response = api.http.get(f"{api.url}/metrics")
    else:
        response = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def labels(**kw: str) -> frozenset[tuple[str, str]]:
    return frozenset(kw.items())


def test_health_is_ok_only_while_a_worker_is_alive(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker
) -> None:
    api = start_api(worker_env)
    response = health(api)
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] is True and body["banco"] is True
    assert body["trabalhadores_vivos"] == 0
    assert any("nenhum worker" in p for p in body["problemas"])

    start_worker("python", worker_env)
    wait_until(lambda: health(api).status_code == 200, 20, "/health to turn 200")
    body = health(api).json()
    assert body["status"] == "ok" and body["problemas"] == []
    assert body["trabalhadores_vivos"] == 1
    assert body["trabalhadores"][0]["tipo"] == "python"
    assert body["fila"] == 0


def test_health_is_503_when_the_database_is_missing(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker, tmp_path: Path
) -> None:
    env = replace(worker_env, db_path=tmp_path / "nao-existe.db")
    api = start_api(env)
    start_worker("python", env)
    wait_until(lambda: health(api).json()["trabalhadores_vivos"] == 1, 20, "a heartbeat")
    response = health(api)
    assert response.status_code == 503
    assert response.json()["banco"] is False
    assert any("nao-existe.db" in p for p in response.json()["problemas"])


def test_health_is_503_when_the_database_is_not_readable(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker, tmp_path: Path
) -> None:
    garbage = tmp_path / "empresa.db"
    garbage.write_bytes(b"this is not a sqlite database" * 100)
    env = replace(worker_env, db_path=garbage)
    api = start_api(env)
    start_worker("python", env)
    wait_until(lambda: health(api).json()["trabalhadores_vivos"] == 1, 20, "a heartbeat")
    response = health(api)
    assert response.status_code == 503
    assert response.json()["banco"] is False


def test_health_and_metrics_when_redis_goes_down(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker, tmp_path: Path
) -> None:
    server = shutil.which("redis-server")
    assert server
    port = free_port()
    redis_proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        env = replace(
            worker_env,
            redis_url=f"redis://127.0.0.1:{port}/0",
            extra={**worker_env.extra, "METRICS_TOKEN": "token-do-prometheus"},
        )
        wait_until(lambda: _redis_answers(port), 10, "the private redis-server")
        api = start_api(env)
        start_worker("python", env)
        wait_until(lambda: health(api).status_code == 200, 20, "/health to turn 200")
        assert metrics(api)[("relatorios_redis_disponivel", labels())] == 1
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    response = health(api)
    # No key can be checked without Redis: the public answer, which says enough.
    assert (response.status_code, response.json()) == (503, {"status": "degradado"})
    # Prometheus' token needs no Redis: the scrape still says Redis is down.
    assert metrics(api, "token-do-prometheus")[("relatorios_redis_disponivel", labels())] == 0


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


@pytest.mark.parametrize("second", ["c"])
def test_metrics_show_the_work_of_both_workers(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker, second: str
) -> None:
    api = start_api(worker_env)
    python = start_worker("python", worker_env)
    by_python = run_task(api)
    python.terminate()
    python.wait(20)
    start_worker(second, worker_env)
    by_c = run_task(api, {"tipo_relatorio": "RESUMO_MENSAL", "parametros": {"ano": 2024}})
    assert by_c["worker"].startswith(f"{second}-")

    m = metrics(api)
    for kind, task in (("python", by_python), (second, by_c)):
        series = labels(status="concluido", tipo=task["tipo_relatorio"], trabalhador=kind)
        assert m[("relatorios_tarefas", series)] == 1
    assert m[("relatorios_trabalhadores", labels(tipo=second))] == 1
    assert m[("relatorios_trabalhadores", labels(tipo="python"))] == 0  # left cleanly
    assert m[("relatorios_fila_tamanho", labels())] == 0
    assert m[("relatorios_tarefas_concluidas_total", labels())] == 2
    rows, size = by_python["linhas"] + by_c["linhas"], by_python["bytes"] + by_c["bytes"]
    assert m[("relatorios_linhas_exportadas_total", labels())] == rows
    assert m[("relatorios_bytes_exportados_total", labels())] == size
    for kind, task in (("python", by_python), (second, by_c)):
        series = labels(tipo=task["tipo_relatorio"], trabalhador=kind)
        assert m[("relatorios_tarefa_linhas_count", series)] == 1
        assert m[("relatorios_tarefa_linhas_sum", series)] == task["linhas"]
        assert m[("relatorios_tarefa_duracao_segundos_count", series)] == 1
        inf = frozenset({*series, ("le", "+Inf")})
        assert m[("relatorios_tarefa_duracao_segundos_bucket", inf)] == 1


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_json_logs_carry_the_task_id(
    kind: str,
    worker_env: WorkerEnv,
    start_api: StartApi,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    env = replace(worker_env, extra={"LOG_FORMAT": "json"})
    api = start_api(env)
    worker = start_worker(kind, env)
    task = run_task(api)
    worker.terminate()
    worker.wait(20)
    [log] = tmp_path.glob(f"worker-{kind}-*.log")
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    about_task = [e for e in entries if task["task_id"] in e["message"]]
    assert len(about_task) >= 3  # received, querying, done
    for entry in about_task:
        assert entry["task_id"] == task["task_id"], entry
        assert {"time", "level", "message"} <= entry.keys()

"""End to end, as a user runs it: HTTP -> real Redis -> real worker process -> CSV in export/."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WORKER_KINDS, ApiProcess, WorkerEnv, wait_until

StartWorker = Callable[[str, WorkerEnv], subprocess.Popen[bytes]]
StartApi = Callable[[WorkerEnv], ApiProcess]


def submit_and_wait(api: ApiProcess, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    accepted = api.http.post(f"{api.url}/gerar-relatorio", json=body)
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    final: dict[str, Any] = {}

    def finished() -> bool:
        final.update(api.http.get(status_url).json())
        return final["status"] in ("concluido", "falhou")

    wait_until(finished, timeout, f"task {accepted.json()['task_id']} to finish")
    return final


def expected(db: Path, sql: str, params: tuple[object, ...]) -> tuple[int, Decimal]:
    """Count and sum computed independently of the report's SQL, on the same database."""
    with sqlite3.connect(db) as conn:
        count, total = conn.execute(sql, params).fetchone()
    return count, Decimal(total or 0) / 100


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_spec_example_gastos_por_departamento(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    start_worker(kind, worker_env)
    body = {
        "tipo_relatorio": "GASTOS_POR_DEPARTAMENTO",
        "parametros": {"departamento": "Engenharia de Software"},
    }
    task = submit_and_wait(api, body)
    assert task["status"] == "concluido", task
    rows = read_csv(worker_env.export_dir / task["arquivo"])
    count, total = expected(
        worker_env.db_path,
        "SELECT count(*), sum(valor_centavos) FROM transacoes WHERE status != 'CANCELADO' AND "
        "funcionario_id IN (SELECT f.id FROM funcionarios f JOIN departamentos d "
        "ON d.id = f.departamento_id WHERE d.nome = ?)",
        ("Engenharia de Software",),
    )
    assert count > 0
    assert len(rows) == count == task["linhas"]
    assert sum(Decimal(r["valor"]) for r in rows) == total
    assert [(r["data"], int(r["id"])) for r in rows] == sorted(
        (r["data"], int(r["id"])) for r in rows
    )
    assert {r["status"] for r in rows} <= {"PAGO", "PENDENTE"}
    assert task["bytes"] == (worker_env.export_dir / task["arquivo"]).stat().st_size
    assert task["iniciado_em"] and task["concluido_em"] and task["worker"].startswith(kind)


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_spec_example_pagamentos_pendentes_and_download(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    start_worker(kind, worker_env)
    task = submit_and_wait(api, {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}})
    assert task["status"] == "concluido", task
    count, total = expected(
        worker_env.db_path,
        "SELECT count(*), sum(valor_centavos) FROM transacoes WHERE status = 'PENDENTE'",
        (),
    )
    download = api.http.get(task["download_url"])
    assert download.status_code == 200
    assert task["arquivo"] in download.headers["content-disposition"]
    assert download.content.startswith(
        b"id,funcionario,departamento,data,categoria,descricao,valor\r\n"
    )
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8"), newline="")))
    assert len(rows) == count and sum(Decimal(r["valor"]) for r in rows) == total
    assert not list(worker_env.export_dir.glob("*.part"))


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_every_catalog_report_completes(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    start_worker(kind, worker_env)
    for report in api.http.get(f"{api.url}/tipos-relatorio").json():
        params = {p["nome"]: sample_value(p) for p in report["parametros"] if p["obrigatorio"]}
        task = submit_and_wait(api, {"tipo_relatorio": report["tipo"], "parametros": params})
        assert task["status"] == "concluido", task
        assert task["linhas"] > 0, f"{report['tipo']} returned no rows on the sample database"


def sample_value(param: dict[str, Any]) -> object:
    if param["opcoes"]:
        return "Engenharia de Software"
    dates = {"data_inicio": "2025-01-01", "data_fim": "2025-12-31"}
    return dates.get(param["nome"]) or {"integer": 2025, "text": "x"}[param["tipo"]]


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_each_format_downloads_with_its_name_and_media_type(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, start_api: StartApi
) -> None:
    """`formato` and `compressao` chosen per request: the extension follows in the 202 answer,
    the status and the download's Content-Type and Content-Disposition."""
    import gzip

    api = start_api(worker_env)
    start_worker(kind, worker_env)
    body: dict[str, Any] = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}
    plain = api.http.get(submit_and_wait(api, body)["download_url"]).content
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    cases = [
        ("csv", "gzip", ".csv.gz", "application/gzip"),
        ("csv_excel", "nenhuma", ".csv", "text/csv; charset=utf-8"),
        ("xlsx", "nenhuma", ".xlsx", xlsx),
    ]
    for formato, compressao, extension, media in cases:
        accepted = api.http.post(
            f"{api.url}/gerar-relatorio",
            json={**body, "formato": formato, "compressao": compressao},
        ).json()
        assert accepted["arquivo"].endswith(extension), accepted
        assert (accepted["formato"], accepted["compressao"]) == (formato, compressao)
        task = submit_and_wait(api, {**body, "formato": formato, "compressao": compressao})
        assert task["status"] == "concluido", task
        assert task["arquivo"].endswith(extension) and task["formato"] == formato
        download = api.http.get(task["download_url"])
        assert download.headers["content-type"] == media
        assert f'filename="{task["arquivo"]}"' in download.headers["content-disposition"]
        if compressao == "gzip":
            assert gzip.decompress(download.content) == plain
        if formato == "csv_excel":
            assert download.content.startswith(b"\xef\xbb\xbfid;funcionario;")
        if formato == "xlsx":
            assert download.content.startswith(b"PK")

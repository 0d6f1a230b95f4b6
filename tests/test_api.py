"""The API in-process against a real Redis: validation, acceptance, status, download, outages."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from relatorios.api.app import create_app
from relatorios.api.requests import department_names
from relatorios.protocol import (
    FILE_NAME_RE,
    FINAL_STATES,
    STATUS_LABELS,
    TASK_FIELDS,
    ErrorCode,
    F,
    Keys,
    Status,
    parse_message,
)
from relatorios.settings import Settings
from relatorios.tasks import TaskStore
from tests.conftest import bearer, make_key

SPEC_EXAMPLE_1 = {
    "tipo_relatorio": "GASTOS_POR_DEPARTAMENTO",
    "parametros": {"departamento": "Engenharia de Software"},
}
SPEC_EXAMPLE_2 = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}


def settings_for(redis_url: str, queue: str, db: Path, export: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        queue_name=queue,
        db_path=db,
        export_dir=export,
        allowed_hosts=["testserver"],  # TestClient's Host
    )


def keyed(client: TestClient, redis_url: str, queue: str, admin: bool = True) -> TestClient:
    """`client`, sending a new API key of `queue` (an admin one unless told)."""
    name = f"{'admin' if admin else 'usuario'}-{uuid.uuid4().hex[:8]}"
    client.headers.update(bearer(make_key(redis_url, queue, name, admin)))
    return client


@pytest.fixture
def api(redis_url: str, queue_name: str, sample_db: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(redis_url, queue_name, sample_db, tmp_path))
    with TestClient(app) as client:
        yield keyed(client, redis_url, queue_name)


def queued(client: redis.Redis, queue: str) -> list[str]:
    return [str(m) for m in client.lrange(queue, 0, -1)]


@pytest.mark.parametrize("body", [SPEC_EXAMPLE_1, SPEC_EXAMPLE_2])
def test_the_specification_examples_are_accepted_and_queued(
    api: TestClient, redis_client: redis.Redis, queue_name: str, body: dict[str, object]
) -> None:
    response = api.post("/gerar-relatorio", json=body)
    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "na_fila"
    assert FILE_NAME_RE.match(data["arquivo"])
    assert data["arquivo"].startswith(f"relatorio_{body['tipo_relatorio']}_")
    assert response.headers["location"].endswith(f"/relatorios/{data['task_id']}")
    [raw] = queued(redis_client, queue_name)
    message = parse_message(raw)
    assert (message.task_id, message.report_type) == (data["task_id"], body["tipo_relatorio"])
    assert message.params == body["parametros"]
    status = api.get(f"/relatorios/{data['task_id']}").json()
    assert status["status"] == "na_fila" and status["linhas"] == 0


def test_defaults_are_filled_in_before_queueing(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    body = {"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": 2025}}
    assert api.post("/gerar-relatorio", json=body).status_code == 202
    [raw] = queued(redis_client, queue_name)
    assert json.loads(raw)["parametros"] == {"ano": 2025, "limite": 100}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"tipo_relatorio": "NAO_EXISTE", "parametros": {}}, "PAGAMENTOS_PENDENTES"),
        ({"parametros": {}}, "tipo_relatorio: campo obrigatório ausente"),
        (
            {"tipo_relatorio": "GASTOS_POR_DEPARTAMENTO", "parametros": {}},
            "parametros.departamento: campo obrigatório ausente",
        ),
        (
            {"tipo_relatorio": "GASTOS_POR_DEPARTAMENTO", "parametros": {"departamento": "Xyz"}},
            "Engenharia de Software",
        ),
        (
            {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {"x": 1}},
            "parametros.x: campo não permitido",
        ),
        (
            {"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": "2025"}},
            "parametros.ano: deve ser um número inteiro",
        ),
        (
            {"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": 2025, "limite": 0}},
            "parametros.limite: deve ser maior ou igual a 1",
        ),
        (
            {
                "tipo_relatorio": "TRANSACOES_POR_PERIODO",
                "parametros": {"data_inicio": "2025-02-30", "data_fim": "2025-03-01"},
            },
            "parametros.data_inicio: deve ser uma data",
        ),
        (
            {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}, "extra": 1},
            "extra: campo não permitido",
        ),
    ],
)
def test_bad_requests_get_422_naming_the_problem_and_nothing_is_queued(
    api: TestClient,
    redis_client: redis.Redis,
    queue_name: str,
    body: dict[str, object],
    expected: str,
) -> None:
    response = api.post("/gerar-relatorio", json=body)
    assert response.status_code == 422
    assert expected in response.json()["mensagem"]
    assert queued(redis_client, queue_name) == []
    assert redis_client.zcard(Keys(queue_name).tasks) == 0


@pytest.mark.parametrize("body", [b"{nope", b"(\xf1t\xff"])  # the second is not UTF-8
def test_a_body_that_is_not_json_gets_422(api: TestClient, body: bytes) -> None:
    response = api.post(
        "/gerar-relatorio", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON inválido" in response.json()["mensagem"]


def test_the_catalog_lists_types_parameters_and_department_choices(api: TestClient) -> None:
    catalog = {r["tipo"]: r for r in api.get("/tipos-relatorio").json()}
    assert {"GASTOS_POR_DEPARTAMENTO", "PAGAMENTOS_PENDENTES"} <= set(catalog)
    assert len(catalog) >= 5
    [param] = catalog["GASTOS_POR_DEPARTAMENTO"]["parametros"]
    assert param["nome"] == "departamento" and param["obrigatorio"] is True
    assert "Engenharia de Software" in param["opcoes"]
    assert all(r["descricao"] for r in catalog.values())


def test_unknown_task_is_404_and_bad_id_is_422(api: TestClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.get(f"/relatorios/{missing}").status_code == 404
    assert api.get(f"/relatorios/{missing}/download").status_code == 404
    assert api.get("/relatorios/not-a-uuid").status_code == 422


def test_download_before_completion_is_409_with_the_status(api: TestClient) -> None:
    task_id = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()["task_id"]
    response = api.get(f"/relatorios/{task_id}/download")
    assert response.status_code == 409
    assert "na_fila" in response.json()["detail"]


def test_listing_is_newest_first_and_filters(api: TestClient) -> None:
    first = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_1).json()["task_id"]
    second = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()["task_id"]
    page = api.get("/relatorios").json()
    assert [t["task_id"] for t in page["tarefas"]] == [second, first]
    only = api.get("/relatorios", params={"tipo": "GASTOS_POR_DEPARTAMENTO"}).json()
    assert [t["task_id"] for t in only["tarefas"]] == [first]
    assert api.get("/relatorios", params={"status": "concluido"}).json()["total"] == 0


def test_redis_down_gives_503_not_500(queue_name: str, sample_db: Path, tmp_path: Path) -> None:
    from tests.conftest import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(settings_for(dead, queue_name, sample_db, tmp_path))
    with TestClient(app) as client:
        client.headers.update(bearer("uma-chave-qualquer"))  # no Redis: no key can be checked
        response = client.post("/gerar-relatorio", json=SPEC_EXAMPLE_2)
        assert response.status_code == 503
        assert "indisponível" in response.json()["detail"]
        assert response.headers["retry-after"]
        assert client.get("/relatorios").status_code == 503


def test_idempotency_key_returns_the_same_task(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    headers = {"Idempotency-Key": "pedido-42"}
    first = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_1, headers=headers)
    again = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_1, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    assert len(queued(redis_client, queue_name)) == 1
    other = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    fresh = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_1, headers={"Idempotency-Key": "b"})
    assert fresh.json()["task_id"] != first.json()["task_id"]


def test_backpressure_answers_503_with_retry_after(
    redis_url: str, queue_name: str, sample_db: Path, tmp_path: Path, redis_client: redis.Redis
) -> None:
    settings = settings_for(redis_url, queue_name, sample_db, tmp_path)
    app = create_app(settings.model_copy(update={"max_queue": 2}))
    with TestClient(app) as client:
        keyed(client, redis_url, queue_name)
        assert client.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).status_code == 202
        assert client.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).status_code == 202
        full = client.post("/gerar-relatorio", json=SPEC_EXAMPLE_2)
        assert full.status_code == 503
        assert full.headers["retry-after"] and "fila cheia" in full.json()["detail"]
    assert len(queued(redis_client, queue_name)) == 2


def test_cancel_marks_the_task_and_a_final_task_cannot_be_cancelled(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    task_id = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()["task_id"]
    response = api.delete(f"/relatorios/{task_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelado" and response.json()["cancelado_em"]
    assert response.json()["erro_codigo"] == ErrorCode.CANCELLED == "cancelada"
    stored = redis_client.hgetall(Keys(queue_name).task(task_id))
    assert stored[F.ERROR_CODE] == "cancelada" and F.ERROR not in stored
    assert api.get(f"/relatorios/{task_id}").json()["erro_codigo"] == "cancelada"
    again = api.delete(f"/relatorios/{task_id}")
    assert again.status_code == 409 and "cancelado" in again.json()["detail"]
    assert api.delete("/relatorios/00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/relatorios", params={"status": "cancelado"}).json()["total"] == 1


def test_dead_letters_are_listed_newest_first(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    dead = Keys(queue_name).dead
    for reason in ("primeira", "segunda"):
        redis_client.lpush(
            dead,
            json.dumps(
                {
                    "task_id": None,
                    "motivo": reason,
                    "mensagem": "x",
                    "tamanho": 1,
                    "em": "2026-11-28T00:00:00.000Z",
                    "worker": "python-h-1",
                }
            ),
        )
    page = api.get("/fila/mortas").json()
    assert page["total"] == 2
    assert [d["motivo"] for d in page["mortas"]] == ["segunda", "primeira"]


def test_retention_expires_old_finished_tasks_and_their_files(
    api: TestClient, redis_client: redis.Redis, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    async def sweep() -> int:  # the sweep the API runs once a minute, run now
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            return await TaskStore(client, Keys(queue_name), 7 * 86_400).sweep(tmp_path)
        finally:
            await client.aclose()

    done = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    waiting = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    keys = Keys(queue_name)
    redis_client.hset(keys.task(done["task_id"]), "status", "concluido")
    (tmp_path / done["arquivo"]).write_text("id\r\n")
    eight_days_ago = (time.time() - 8 * 86_400) * 1000
    for task in (done, waiting):
        redis_client.zadd(keys.tasks, {task["task_id"]: eight_days_ago})
    assert asyncio.run(sweep()) == 1
    status = api.get(f"/relatorios/{done['task_id']}").json()
    assert status["status"] == "expirado" and status["expirado_em"]
    assert not (tmp_path / done["arquivo"]).exists()
    assert api.get(f"/relatorios/{done['task_id']}/download").status_code == 410
    assert api.get(f"/relatorios/{waiting['task_id']}").json()["status"] == "na_fila"


def test_the_department_list_leaves_no_connection_open(sample_db: Path) -> None:
    def open_handles() -> int:
        return sum(f.path == str(sample_db) for f in psutil.Process().open_files())

    before = open_handles()
    assert "Engenharia de Software" in department_names(sample_db)
    assert open_handles() == before


def test_the_task_states_are_served_from_the_protocol(api: TestClient) -> None:
    states = api.get("/estados").json()
    assert [s["status"] for s in states] == [s.value for s in Status]
    for state in states:
        status = Status(state["status"])
        assert state["nome"] == status.name
        assert state["rotulo"] == STATUS_LABELS[status]
        assert state["final"] is (status in FINAL_STATES)


def test_a_task_shows_every_protocol_field_and_the_schema_describes_them(api: TestClient) -> None:
    task_id = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()["task_id"]
    shown = api.get(f"/relatorios/{task_id}").json()
    names = [f.name for f in TASK_FIELDS]
    assert list(shown) == ["task_id", *names, "status_url", "download_url"]
    schema = api.get("/openapi.json").json()["components"]["schemas"]["TaskStatus"]
    for field in TASK_FIELDS:
        assert schema["properties"][field.name]["description"] == field.doc
    assert {f.name for f in TASK_FIELDS if f.always} <= set(schema["required"])


def test_the_format_is_chosen_per_request_and_xlsx_refuses_gzip(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    accepted = api.post("/gerar-relatorio", json={**SPEC_EXAMPLE_2, "formato": "xlsx"})
    assert accepted.status_code == 202, accepted.text
    task = accepted.json()
    assert task["arquivo"].endswith(".xlsx") and FILE_NAME_RE.match(task["arquivo"])
    assert (task["formato"], task["compressao"]) == ("xlsx", "nenhuma")
    message = parse_message(queued(redis_client, queue_name)[0])
    assert (message.formato, message.file) == ("xlsx", task["arquivo"])
    assert json.loads(queued(redis_client, queue_name)[0])["versao"] == 2
    shown = api.get(f"/relatorios/{task['task_id']}").json()
    assert shown["formato"] == "xlsx" and shown["arquivo"] == task["arquivo"]

    gz = api.post("/gerar-relatorio", json={**SPEC_EXAMPLE_2, "compressao": "gzip"}).json()
    assert gz["arquivo"].endswith(".csv.gz") and gz["formato"] == "csv"
    plain = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2).json()
    assert plain["arquivo"].endswith(".csv") and plain["formato"] == "csv"
    assert json.loads(queued(redis_client, queue_name)[0])["versao"] == 1, "a plain CSV stays v1"

    before = len(queued(redis_client, queue_name))
    for body, words in [
        ({"formato": "xlsx", "compressao": "gzip"}, "não aceita compressão gzip"),
        ({"formato": "ods"}, "formato"),
        ({"compressao": "zip"}, "compressao"),
    ]:
        refused = api.post("/gerar-relatorio", json={**SPEC_EXAMPLE_2, **body})
        assert refused.status_code == 422, refused.text
        assert words in refused.json()["mensagem"], refused.json()
    assert len(queued(redis_client, queue_name)) == before, "nothing queued"


def test_the_catalog_lists_the_formats(api: TestClient) -> None:
    for report in api.get("/tipos-relatorio").json():
        formats = {f["formato"]: f["compressoes"] for f in report["formatos"]}
        assert formats == {
            "csv": ["nenhuma", "gzip"],
            "csv_excel": ["nenhuma", "gzip"],
            "xlsx": ["nenhuma"],
        }


def test_the_status_filter_accepts_only_protocol_states(api: TestClient) -> None:
    for status in Status:
        assert api.get("/relatorios", params={"status": status.value}).status_code == 200
    refused = api.get("/relatorios", params={"status": "pronto"})
    assert refused.status_code == 422
    assert "status: valor inválido; valores válidos: 'na_fila'" in refused.json()["mensagem"]


def test_orders_and_keys_still_work_after_redis_forgets_its_scripts(
    api: TestClient, redis_client: redis.Redis, queue_name: str
) -> None:
    """A restarted Redis has no scripts: the API loads them again instead of failing."""
    assert api.post("/gerar-relatorio", json=SPEC_EXAMPLE_1).status_code == 202
    redis_client.script_flush()
    response = api.post("/gerar-relatorio", json=SPEC_EXAMPLE_2)
    assert response.status_code == 202, response.text
    assert len(queued(redis_client, queue_name)) == 2

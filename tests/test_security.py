"""One regression test per finding of the attack on the API, the workers and `make run`
(docs/security.md): each failed on the code before the fix. Real Redis, real worker processes,
the API in-process (TestClient) or as a real uvicorn process where the wire matters."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from relatorios import redis_server
from relatorios.api.app import create_app
from relatorios.protocol import ErrorCode, F, K, Keys, Message, Status, file_name, new_task_id
from relatorios.settings import Settings
from relatorios.tasks import STALE_PART_S, TaskStore
from tests.conftest import (
    WORKER_KINDS,
    ApiProcess,
    WorkerEnv,
    bearer,
    free_port,
    make_key,
    wait_until,
)
from tests.helpers import StartWorker, push, wait_final

PENDENTES = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}
StartApi = Any


def settings_for(env: WorkerEnv, **overrides: Any) -> Settings:
    return Settings(
        redis_url=env.redis_url,
        queue_name=env.queue,
        db_path=env.db_path,
        export_dir=env.export_dir,
        allowed_hosts=["testserver"],
        **overrides,
    )


def new_key(env: WorkerEnv, admin: bool = False) -> str:
    return make_key(env.redis_url, env.queue, f"chave-{uuid.uuid4().hex[:8]}", admin)


@pytest.fixture
def app_client(worker_env: WorkerEnv) -> Iterator[TestClient]:
    """The API in-process on the test's queue, with no key set."""
    with TestClient(create_app(settings_for(worker_env))) as client:
        yield client


def as_key(secret: str) -> dict[str, str]:
    return bearer(secret)


# ---- 1. No access control ----------------------------------------------------------------------


def test_every_endpoint_but_health_and_the_page_needs_a_key(app_client: TestClient) -> None:
    task = "/relatorios/00000000-0000-4000-8000-000000000000"
    calls = [
        ("POST", "/gerar-relatorio"),
        ("GET", "/tipos-relatorio"),
        ("GET", "/estados"),
        ("GET", "/relatorios"),
        ("GET", task),
        ("DELETE", task),
        ("GET", f"{task}/download"),
        ("GET", "/fila/mortas"),
        ("GET", "/chaves"),
        ("GET", "/metrics"),
    ]
    for method, path in calls:
        for headers in ({}, as_key("chave-que-nao-existe")):
            response = app_client.request(method, path, headers=headers, json=PENDENTES)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "chave de API" in response.json()["detail"]
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert app_client.get(path).status_code == 200
    health = app_client.get("/health")
    assert health.status_code in (200, 503)
    assert health.json() == {"status": "degradado"}  # no worker here; no hosts, pids, paths


def test_key_b_cannot_see_download_or_cancel_key_a_task_and_an_admin_sees_both(
    app_client: TestClient, worker_env: WorkerEnv, redis_client: redis.Redis
) -> None:
    a, b, admin = new_key(worker_env), new_key(worker_env), new_key(worker_env, admin=True)
    mine = app_client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(a)).json()
    theirs = app_client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(b)).json()
    url = f"/relatorios/{mine['task_id']}"
    for method, path in (("GET", url), ("GET", f"{url}/download"), ("DELETE", url)):
        response = app_client.request(method, path, headers=as_key(b))
        assert response.status_code == 404, (method, response.text)  # never 403
    assert redis_client.hget(Keys(worker_env.queue).task(mine["task_id"]), F.STATUS) == "na_fila"
    listed_b = app_client.get("/relatorios", headers=as_key(b)).json()
    assert [t["task_id"] for t in listed_b["tarefas"]] == [theirs["task_id"]]
    assert listed_b["total"] == 1
    assert app_client.get(url, headers=as_key(a)).json()["dono"]
    listed_admin = app_client.get("/relatorios", headers=as_key(admin)).json()
    assert {t["task_id"] for t in listed_admin["tarefas"]} == {mine["task_id"], theirs["task_id"]}
    assert app_client.get(url, headers=as_key(admin)).status_code == 200
    assert app_client.delete(url, headers=as_key(admin)).json()["status"] == "cancelado"


def test_dead_letters_key_usage_and_metrics_are_for_admins(worker_env: WorkerEnv) -> None:
    settings = settings_for(worker_env, metrics_token="token-do-prometheus")
    user, admin = new_key(worker_env), new_key(worker_env, admin=True)
    with TestClient(create_app(settings)) as client:
        client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(user))
        for path in ("/fila/mortas", "/chaves", "/metrics"):
            assert client.get(path, headers=as_key(user)).status_code == 403, path
            assert client.get(path, headers=as_key(admin)).status_code == 200, path
        scraped = client.get("/metrics", headers=as_key("token-do-prometheus"))
        assert scraped.status_code == 200 and "relatorios_fila_tamanho" in scraped.text
        usage = {u["nome"]: u for u in client.get("/chaves", headers=as_key(admin)).json()}
        assert len(usage) == 2
        assert [u["tarefas"] for u in usage.values() if u["papel"] == "usuario"] == [1]


def test_a_revoked_key_is_refused_at_once(
    app_client: TestClient, worker_env: WorkerEnv, redis_client: redis.Redis
) -> None:
    from relatorios.apikeys import create_key, revoke_key

    keys = Keys(worker_env.queue)
    secret = create_key(redis_client, keys, "temporaria")
    assert app_client.get("/relatorios", headers=as_key(secret)).status_code == 200
    digest = str(redis_client.hget(keys.api_key_names, "temporaria"))
    stored = json.dumps(redis_client.hgetall(keys.api_key(digest)))
    assert secret not in stored and K.LAST_USED in stored  # only its hash is kept
    assert revoke_key(redis_client, keys, "temporaria")
    assert app_client.get("/relatorios", headers=as_key(secret)).status_code == 401


# ---- 2 and 7. The download serves only the task's own regular file ----------------------------


def finished_task(client: redis.Redis, env: WorkerEnv, owner: str, arquivo: str) -> str:
    """A task recorded as finished with `arquivo` (as an attacker with Redis access writes it)."""
    task_id = new_task_id()
    client.hset(
        Keys(env.queue).task(task_id),
        mapping={
            F.STATUS: Status.DONE,
            F.TYPE: "PAGAMENTOS_PENDENTES",
            F.FILE: arquivo,
            F.OWNER: owner,
        },
    )
    return task_id


def test_a_tampered_arquivo_never_reaches_outside_export_dir(
    app_client: TestClient, worker_env: WorkerEnv, redis_client: redis.Redis, tmp_path: Path
) -> None:
    admin = new_key(worker_env, admin=True)
    secret = tmp_path / "segredo.txt"
    secret.write_text("salários\n")
    other = file_name("PAGAMENTOS_PENDENTES", new_task_id())
    (worker_env.export_dir / other).write_text("o relatório de outra tarefa\n")
    for arquivo in ("/etc/passwd", "../segredo.txt", str(secret), other):
        task_id = finished_task(redis_client, worker_env, "x", arquivo)
        response = app_client.get(f"/relatorios/{task_id}/download", headers=as_key(admin))
        assert response.status_code == 404, (arquivo, response.text)
        assert "salários" not in response.text and "root:" not in response.text


def test_a_symlink_is_never_served(
    app_client: TestClient, worker_env: WorkerEnv, redis_client: redis.Redis, tmp_path: Path
) -> None:
    admin = new_key(worker_env, admin=True)
    secret = tmp_path / "segredo.txt"
    secret.write_text("salários\n")
    task_id = new_task_id()
    name = file_name("PAGAMENTOS_PENDENTES", task_id)
    (worker_env.export_dir / name).symlink_to(secret)
    redis_client.hset(
        Keys(worker_env.queue).task(task_id),
        mapping={F.STATUS: Status.DONE, F.TYPE: "PAGAMENTOS_PENDENTES", F.FILE: name},
    )
    response = app_client.get(f"/relatorios/{task_id}/download", headers=as_key(admin))
    assert response.status_code == 404 and "salários" not in response.text


# ---- 6 and 7. Workers trust no message and follow no symlink ----------------------------------


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_message_naming_another_tasks_file_cannot_overwrite_it(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    start_worker(kind, worker_env)
    first = push(redis_client, worker_env.queue, "PAGAMENTOS_PENDENTES", {})
    assert wait_final(redis_client, worker_env, first.task_id)["status"] == "concluido"
    target = worker_env.export_dir / first.file
    before = target.read_bytes()
    intruder_id = new_task_id()
    forged = Message(intruder_id, "RESUMO_MENSAL", {"ano": 1900}, first.file)
    redis_client.lpush(worker_env.queue, forged.to_json())
    final = wait_final(redis_client, worker_env, intruder_id)
    assert final["erro_codigo"] == ErrorCode.INVALID_MESSAGE and "arquivo" in final["erro"]
    assert target.read_bytes() == before
    dead = [json.loads(d) for d in redis_client.lrange(Keys(worker_env.queue).dead, 0, -1)]
    assert [d["task_id"] for d in dead] == [intruder_id]


@pytest.mark.parametrize("output", [("csv", "nenhuma"), ("csv", "gzip"), ("xlsx", "nenhuma")])
@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_planted_part_symlink_is_not_followed(
    kind: str,
    output: tuple[str, str],
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """Whatever the format: the xlsx library opens its file by name, so it is checked too."""
    victim = tmp_path / "vitima.txt"
    victim.write_text("não pode mudar\n")
    formato, compressao = output
    task_id = new_task_id()
    name = file_name("PAGAMENTOS_PENDENTES", task_id, formato=formato, compressao=compressao)
    message = Message(
        task_id, "PAGAMENTOS_PENDENTES", {}, name, formato=formato, compressao=compressao
    )
    (worker_env.export_dir / f"{message.file}.part").symlink_to(victim)
    redis_client.hset(Keys(worker_env.queue).task(task_id), F.STATUS, Status.QUEUED)
    redis_client.lpush(worker_env.queue, message.to_json())
    start_worker(kind, worker_env)
    assert wait_final(redis_client, worker_env, task_id)["status"] == "concluido"
    assert victim.read_text() == "não pode mudar\n"
    done = worker_env.export_dir / message.file
    assert stat.S_ISREG(os.lstat(done).st_mode)
    assert done.read_bytes()[:2] in (b"id", b"\x1f\x8b", b"PK")


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_workers_refuse_parameters_the_api_would_refuse(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    start_worker(kind, worker_env)
    huge = push(
        redis_client, worker_env.queue, "MAIORES_GASTADORES", {"ano": 2025, "limite": 2**53 - 1}
    )
    text = push(redis_client, worker_env.queue, "MAIORES_GASTADORES", {"ano": "2025"})
    date = push(
        redis_client,
        worker_env.queue,
        "TRANSACOES_POR_PERIODO",
        {"data_inicio": "2025-13-01", "data_fim": "2025-12-31"},
    )
    expected = {
        huge.task_id: "parâmetro inválido: limite (fora do intervalo [1, 5000])",
        text.task_id: "parâmetro inválido: ano (deve ser um número inteiro)",
        date.task_id: "parâmetro inválido: data_inicio (deve ser uma data AAAA-MM-DD)",
    }
    for task_id, erro in expected.items():
        final = wait_final(redis_client, worker_env, task_id)
        assert (final["status"], final["erro_codigo"]) == ("falhou", ErrorCode.INVALID_PARAMETER)
        assert final["erro"] == erro
    dead = {
        json.loads(d)["task_id"] for d in redis_client.lrange(Keys(worker_env.queue).dead, 0, -1)
    }
    assert dead == set(expected)
    assert not list(worker_env.export_dir.iterdir())


# ---- 4 and 10. Bodies: bounded and strict ------------------------------------------------------


def test_a_1mb_body_is_413_before_parsing(app_client: TestClient, worker_env: WorkerEnv) -> None:
    headers = {**as_key(new_key(worker_env)), "Content-Type": "application/json"}
    padded = json.dumps(PENDENTES) + " " * (1 << 20)
    response = app_client.post("/gerar-relatorio", content=padded, headers=headers)
    assert response.status_code == 413 and "maior que 65536 bytes" in response.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes read
        yield json.dumps(PENDENTES).encode()
        for _ in range(64):
            yield b" " * 16384

    response = app_client.post("/gerar-relatorio", content=chunked(), headers=headers)
    assert response.status_code == 413
    assert app_client.post("/gerar-relatorio", json=PENDENTES, headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": NaN}}', "NaN"),
        ('{"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": Infinity}}', "Infinity"),
        (
            '{"tipo_relatorio": "PAGAMENTOS_PENDENTES", "tipo_relatorio": "RESUMO_MENSAL"}',
            "chave repetida",
        ),
    ],
)
def test_strict_json_is_422_in_portuguese(
    app_client: TestClient, worker_env: WorkerEnv, body: str, problem: str
) -> None:
    headers = {**as_key(new_key(worker_env)), "Content-Type": "application/json"}
    response = app_client.post("/gerar-relatorio", content=body, headers=headers)
    assert response.status_code == 422
    assert (
        problem in response.json()["mensagem"] and "Pedido inválido" in response.json()["mensagem"]
    )


# ---- 5 and 8. Hosts and headers, on the real server --------------------------------------------


def test_an_unknown_host_is_400_and_every_answer_has_the_security_headers(
    worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api: ApiProcess = start_api(worker_env)
    evil = httpx.get(f"{api.url}/health", headers={"Host": "evil.example"})
    assert evil.status_code == 400
    created = api.http.post(
        f"{api.url}/gerar-relatorio", json=PENDENTES, headers={"Host": "evil.example"}
    )
    assert created.status_code == 400 and "evil.example" not in created.text
    page = httpx.get(f"{api.url}/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert api.http.get(f"{api.url}/relatorios").headers["x-content-type-options"] == "nosniff"


# ---- 10. Generic 503, minimal /health ----------------------------------------------------------


def test_503_bodies_do_not_show_the_redis_address(worker_env: WorkerEnv) -> None:
    port = free_port()
    env = WorkerEnv(
        f"redis://127.0.0.1:{port}/0", worker_env.queue, worker_env.db_path, worker_env.export_dir
    )
    with TestClient(create_app(settings_for(env))) as client:
        for response in (
            client.post("/gerar-relatorio", json=PENDENTES, headers=as_key("k")),
            client.get("/relatorios", headers=as_key("k")),
            client.get("/health"),
        ):
            assert response.status_code == 503
            assert str(port) not in response.text and "Error" not in response.text


def test_health_shows_details_only_to_an_admin(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker
) -> None:
    api: ApiProcess = start_api(worker_env)
    start_worker("python", worker_env)
    wait_until(lambda: httpx.get(f"{api.url}/health").status_code == 200, 20, "a live worker")
    assert httpx.get(f"{api.url}/health").json() == {"status": "ok"}
    user = httpx.get(f"{api.url}/health", headers=as_key(new_key(worker_env))).json()
    assert user == {"status": "ok"}
    admin = api.http.get(f"{api.url}/health").json()
    assert admin["trabalhadores_vivos"] == 1


# ---- 9. Quotas per key ---------------------------------------------------------------------


def test_one_keys_flood_gets_429_while_another_key_still_gets_202(worker_env: WorkerEnv) -> None:
    settings = settings_for(worker_env, quota_rate=5)
    flooder, other = new_key(worker_env), new_key(worker_env)
    with TestClient(create_app(settings)) as client:
        codes = [
            client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(flooder)).status_code
            for _ in range(20)
        ]
        assert codes[:5] == [202] * 5 and set(codes[5:]) == {429}
        refused = client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(flooder))
        assert int(refused.headers["retry-after"]) >= 1
        assert (
            client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(other)).status_code
            == 202
        )


def test_active_tasks_and_bytes_per_day_are_limited_per_key(
    worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    settings = settings_for(worker_env, quota_active=2, quota_bytes_day=1000)
    key = new_key(worker_env)
    with TestClient(create_app(settings)) as client:
        ids = [
            client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(key)).json()["task_id"]
            for _ in range(2)
        ]
        third = client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(key))
        assert third.status_code == 429 and "tarefas ativas" in third.json()["detail"]
        assert (
            client.post(
                "/gerar-relatorio", json=PENDENTES, headers=as_key(new_key(worker_env))
            ).status_code
            == 202
        )
        start_worker("python", worker_env)
        for task_id in ids:
            assert wait_final(redis_client, worker_env, task_id)["status"] == "concluido"
        spent = client.post("/gerar-relatorio", json=PENDENTES, headers=as_key(key))
        assert spent.status_code == 429 and "bytes" in spent.json()["detail"]
        assert int(spent.headers["retry-after"]) > 0


def test_max_fila_holds_under_concurrent_clients(
    worker_env: WorkerEnv, start_api: StartApi, redis_client: redis.Redis
) -> None:
    worker_env.extra.update(MAX_FILA="50", COTA_TAREFAS_ATIVAS="1000")
    api: ApiProcess = start_api(worker_env)

    def order(_: int) -> int:
        return api.http.post(f"{api.url}/gerar-relatorio", json=PENDENTES).status_code

    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(order, range(100)))
    assert codes.count(202) == 50 and codes.count(503) == 50
    assert redis_client.llen(worker_env.queue) == 50


# ---- 10. Leftovers ---------------------------------------------------------------------------


def test_the_sweep_removes_stale_part_files(worker_env: WorkerEnv) -> None:
    stale = worker_env.export_dir / (file_name("PAGAMENTOS_PENDENTES", new_task_id()) + ".part")
    fresh = worker_env.export_dir / (file_name("PAGAMENTOS_PENDENTES", new_task_id()) + ".part")
    other = worker_env.export_dir / "notas.part"
    for path in (stale, fresh, other):
        path.write_text("id\n")
    old = time.time() - STALE_PART_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))

    async def sweep() -> None:
        client = redis.asyncio.Redis.from_url(worker_env.redis_url, decode_responses=True)
        await TaskStore(client, Keys(worker_env.queue), 3600).sweep(worker_env.export_dir)
        await client.aclose()

    asyncio.run(sweep())
    assert not stale.exists() and fresh.exists() and other.exists()


# ---- 6. make run's Redis -----------------------------------------------------------------------


def test_make_runs_redis_requires_a_password_and_refuses_writes_when_full(tmp_path: Path) -> None:
    port = free_port()
    proc, url = redis_server.start(tmp_path / "redis", port, maxmemory="2mb")
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        password = tmp_path / "redis" / redis_server.PASSWORD_FILE
        assert stat.S_IMODE(password.stat().st_mode) == 0o600
        assert password.read_text().strip() in url
        client = redis.Redis.from_url(url)
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            for i in range(10_000):
                client.set(f"k{i}", "x" * 1024)
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)


# ---- 3. Bounded listing ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_the_status_indexes_follow_every_status_write(
    kind: str,
    app_client: TestClient,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
) -> None:
    """A status filter reads its own index (O(limit)); the API and both workers keep it exact."""
    key = as_key(new_key(worker_env))
    cancelled = app_client.post("/gerar-relatorio", json=PENDENTES, headers=key).json()["task_id"]
    app_client.delete(f"/relatorios/{cancelled}", headers=key)
    done = app_client.post("/gerar-relatorio", json=PENDENTES, headers=key).json()["task_id"]
    failed = app_client.post(
        "/gerar-relatorio",
        json={"tipo_relatorio": "MAIORES_GASTADORES", "parametros": {"ano": 2025}},
        headers=key,
    ).json()["task_id"]
    # Then a message no API wrote fails in the worker: its record goes to the failed index.
    redis_client.hset(
        Keys(worker_env.queue).task(failed), F.PARAMS, json.dumps({"ano": 2025, "limite": 0})
    )
    redis_client.lset(
        worker_env.queue,
        0,
        Message(
            failed,
            "MAIORES_GASTADORES",
            {"ano": 2025, "limite": 0},
            file_name("MAIORES_GASTADORES", failed),
        ).to_json(),
    )
    start_worker(kind, worker_env)
    assert wait_final(redis_client, worker_env, done)["status"] == "concluido"
    assert wait_final(redis_client, worker_env, failed)["status"] == "falhou"
    keys = Keys(worker_env.queue)
    expected = {Status.DONE: {done}, Status.FAILED: {failed}, Status.CANCELLED: {cancelled}}
    for status in Status:
        assert set(redis_client.zrange(keys.by_status(status), 0, -1)) == expected.get(
            status, set()
        )
        page = app_client.get("/relatorios", params={"status": status.value}, headers=key).json()
        assert {t["task_id"] for t in page["tarefas"]} == expected.get(status, set())
        assert page["total"] == len(expected.get(status, set()))

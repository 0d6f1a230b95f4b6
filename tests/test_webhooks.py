"""Completion webhooks: a real receiver (an HTTP server in the test), the real API, a real worker
and the real notifier process (`python -m relatorios.notifier`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from relatorios.api.app import create_app
from relatorios.protocol import WEBHOOK_SIGNATURE_HEADER, F, Keys, Status
from relatorios.settings import Settings
from relatorios.webhooks import Allowlist, UnsafeUrl, check_url, verify
from tests.conftest import WORKER_KINDS, Receiver, WorkerEnv, bearer, make_key, wait_until
from tests.helpers import StartWorker

SECRET = "segredo-de-teste"
ORDER = {"tipo_relatorio": "PAGAMENTOS_PENDENTES", "parametros": {}}


def env_for(worker_env: WorkerEnv, **extra: str) -> WorkerEnv:
    worker_env.extra.update(
        WEBHOOK_HOSTS_PERMITIDOS="127.0.0.1",
        WEBHOOK_SEGREDO=SECRET,
        NOTIFICADOR_INTERVALO_S="0.1",
        WEBHOOK_ESPERA_S="0.1",
        URL_PUBLICA="http://relatorios.exemplo",
        **extra,
    )
    return worker_env


@pytest.fixture
def start_notifier(tmp_path: Path) -> Iterator[Callable[[WorkerEnv], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: WorkerEnv) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"notifier-{len(procs)}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "relatorios.notifier"]
        proc = subprocess.Popen(cmd, env=env.environ(), stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def api_for(env: WorkerEnv) -> TestClient:
    settings = Settings(
        redis_url=env.redis_url,
        queue_name=env.queue,
        db_path=env.db_path,
        export_dir=env.export_dir,
        WEBHOOK_HOSTS_PERMITIDOS=env.extra.get("WEBHOOK_HOSTS_PERMITIDOS", ""),
        allowed_hosts=["testserver"],  # TestClient's Host
    )
    client = TestClient(create_app(settings))
    client.headers.update(bearer(make_key(env.redis_url, env.queue, "admin-avisos", admin=True)))
    return client


def order_with(api: TestClient, url: str) -> str:
    response = api.post("/gerar-relatorio", json={**ORDER, "notificar_url": url})
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_finished_task_is_posted_to_its_url_with_a_valid_signature(
    kind: str,
    worker_env: WorkerEnv,
    receiver: Receiver,
    start_worker: StartWorker,
    start_notifier: Callable[[WorkerEnv], subprocess.Popen[bytes]],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    env = env_for(worker_env)
    with api_for(env) as api:
        accepted = api.post("/gerar-relatorio", json={**ORDER, "notificar_url": receiver.url})
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        start_worker(kind, env)  # the notifier needs nothing from either worker
        start_notifier(env)
        wait_until(lambda: receiver.got, 30, "the notice")
        task = api.get(f"/relatorios/{task_id}").json()
    notice = receiver.got[0]
    assert notice.path == "/aviso"
    assert verify(SECRET, notice.headers[WEBHOOK_SIGNATURE_HEADER], notice.body)
    assert not verify("outro-segredo", notice.headers[WEBHOOK_SIGNATURE_HEADER], notice.body)
    body = json.loads(notice.body)
    assert body == {
        "task_id": task_id,
        "status": "concluido",
        "tipo_relatorio": "PAGAMENTOS_PENDENTES",
        "arquivo": task["arquivo"],
        "linhas": task["linhas"],
        "bytes": task["bytes"],
        "download_url": f"http://relatorios.exemplo/relatorios/{task_id}/download",
    }
    assert body["linhas"] > 0 and (env.export_dir / body["arquivo"]).stat().st_size == body["bytes"]
    assert task["notificar_url"] == receiver.url
    wait_until(lambda: redis_client.hget(Keys(env.queue).task(task_id), F.NOTIFIED), 10, "mark")
    assert redis_client.zcard(Keys(env.queue).notify) == 0
    assert len(receiver.got) == 1
    log_file = tmp_path / "notifier-0.log"
    delivered = f"Aviso entregue (task_id={task_id})"
    wait_until(lambda: delivered in log_file.read_text(), 10, "the notifier's log line")
    log = log_file.read_text()
    assert "/aviso" not in log  # a webhook URL may carry a token: never logged


def test_a_notice_is_retried_when_the_receiver_answers_500(
    worker_env: WorkerEnv,
    receiver: Receiver,
    start_notifier: Callable[[WorkerEnv], subprocess.Popen[bytes]],
    redis_client: redis.Redis,
) -> None:
    env = env_for(worker_env)
    receiver.answers = [500, 500]
    with api_for(env) as api:
        task_id = order_with(api, receiver.url)
        assert api.delete(f"/relatorios/{task_id}").status_code == 200  # a final state: cancelado
        start_notifier(env)
        wait_until(lambda: len(receiver.got) == 3, 30, "three attempts")
        wait_until(lambda: redis_client.hget(Keys(env.queue).task(task_id), F.NOTIFIED), 10, "ok")
    bodies = [json.loads(r.body) for r in receiver.got]
    assert all(b["task_id"] == task_id and b["status"] == Status.CANCELLED for b in bodies)
    assert bodies[0]["download_url"] is None
    assert all(verify(SECRET, r.headers[WEBHOOK_SIGNATURE_HEADER], r.body) for r in receiver.got)
    assert redis_client.llen(Keys(env.queue).notify_dead) == 0


def test_a_notice_that_keeps_failing_is_dead_lettered_and_redirects_are_not_followed(
    worker_env: WorkerEnv,
    receiver: Receiver,
    start_notifier: Callable[[WorkerEnv], subprocess.Popen[bytes]],
    redis_client: redis.Redis,
) -> None:
    env = env_for(worker_env, WEBHOOK_TENTATIVAS="2")
    receiver.answers = [302, 302]
    with api_for(env) as api:
        task_id = order_with(api, receiver.url)
        api.delete(f"/relatorios/{task_id}")
        start_notifier(env)
        dead = Keys(env.queue).notify_dead
        wait_until(lambda: redis_client.llen(dead) == 1, 30, "the dead letter")
        listed = api.get("/notificacoes/mortas").json()  # where an admin sees it
        assert listed["total"] == 1 and listed["mortas"][0]["task_id"] == task_id
        scrape = api.get("/metrics").text
        assert "relatorios_notificacoes_mortas 1.0" in scrape
        assert "relatorios_notificacoes_pendentes 0.0" in scrape
    entry = json.loads(str(redis_client.lindex(dead, 0)))
    assert entry["task_id"] == task_id and entry["tentativas"] == 2
    assert entry["url"] == receiver.url and "302" in entry["motivo"]
    assert [r.path for r in receiver.got] == ["/aviso", "/aviso"]  # never /desviado
    assert redis_client.zcard(Keys(env.queue).notify) == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "rede privada"),
        ("http://127.0.0.1:9/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "rede privada"),
        ("http://0.0.0.0/", "não especificado"),
        ("http://localhost/", "loopback"),
        ("ftp://exemplo.com/", "http:// ou https://"),
        ("http://usuario:senha@exemplo.com/", "usuário ou senha"),
    ],
)
def test_unsafe_notification_urls_are_refused_with_422(
    worker_env: WorkerEnv, redis_client: redis.Redis, url: str, why: str
) -> None:
    with api_for(worker_env) as api:  # nothing allowed
        response = api.post("/gerar-relatorio", json={**ORDER, "notificar_url": url})
    assert response.status_code == 422, response.text
    assert "notificar_url" in response.json()["mensagem"] and why in response.json()["mensagem"]
    assert redis_client.llen(worker_env.queue) == 0


def test_the_delivery_connects_to_the_checked_address() -> None:
    target = check_url("http://localhost:8123/aviso?x=1", Allowlist.parse("localhost"))
    assert str(target.address) in ("127.0.0.1", "::1")
    assert target.connect_url().startswith(("http://127.0.0.1:8123/aviso?x=1", "http://[::1]"))
    assert target.host_header() == "localhost:8123"
    with pytest.raises(UnsafeUrl):
        check_url("http://localhost:8123/", Allowlist.parse("10.0.0.0/8"))
    assert check_url("http://10.1.2.3/", Allowlist.parse("10.0.0.0/8")).port == 80

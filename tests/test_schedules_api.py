"""`/agendamentos` in-process against a real Redis: save, list, pause, change, delete; 422s that
name the problem; a schedule's tasks in the task listing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from relatorios.api.app import create_app
from relatorios.scheduler import Clock, Scheduler, order_check
from relatorios.settings import Settings
from tests.conftest import bearer, make_key

SP = ZoneInfo("America/Sao_Paulo")
DAILY = {
    "tipo_relatorio": "TRANSACOES_POR_PERIODO",
    "parametros": {"data_inicio": "hoje-7d", "data_fim": "ontem"},
    "cron": "0 7 * * 1-5",
}


@pytest.fixture
def settings(redis_url: str, queue_name: str, sample_db: Path, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        queue_name=queue_name,
        db_path=sample_db,
        export_dir=tmp_path,
        allowed_hosts=["testserver"],  # TestClient's Host
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        secret = make_key(settings.redis_url, settings.queue_name, "admin-agenda", admin=True)
        client.headers.update(bearer(secret))
        yield client


def test_a_schedule_is_saved_listed_paused_changed_and_deleted(api: TestClient) -> None:
    created = api.post("/agendamentos", json=DAILY)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert created.headers["location"].endswith(f"/agendamentos/{schedule['id']}")
    assert schedule["fuso_horario"] == "America/Sao_Paulo" and schedule["ativo"] is True
    assert schedule["perdidas"] == "executar_uma" and schedule["parametros"] == DAILY["parametros"]
    runs = [dt.datetime.fromisoformat(r) for r in schedule["proximas_execucoes"]]
    assert len(runs) == 5 and runs == sorted(runs)
    for run in runs:  # 7:00 on weekdays, São Paulo time
        local = run.astimezone(SP)
        assert (local.hour, local.minute, local.weekday() < 5) == (7, 0, True)
    assert api.get("/agendamentos").json()["total"] == 1
    assert api.get(f"/agendamentos/{schedule['id']}").json()["id"] == schedule["id"]
    scrape = api.get("/metrics").text
    assert "relatorios_agendamentos 1.0" in scrape
    assert "relatorios_agendador_ativo 0.0" in scrape  # no scheduler process in this test

    paused = api.patch(f"/agendamentos/{schedule['id']}", json={"ativo": False}).json()
    assert paused["ativo"] is False and paused["proximas_execucoes"] == []
    changed = api.patch(
        f"/agendamentos/{schedule['id']}",
        json={"ativo": True, "cron": "30 6 1 * *", "fuso_horario": "UTC"},
    ).json()
    assert changed["cron"] == "30 6 1 * *" and changed["parametros"] == DAILY["parametros"]
    first = dt.datetime.fromisoformat(changed["proximas_execucoes"][0])
    assert (first.day, first.hour, first.minute, first.utcoffset()) == (1, 6, 30, dt.timedelta(0))

    assert api.delete(f"/agendamentos/{schedule['id']}").status_code == 204
    assert api.get(f"/agendamentos/{schedule['id']}").status_code == 404
    assert api.delete(f"/agendamentos/{schedule['id']}").status_code == 404
    assert api.get("/agendamentos").json() == {"total": 0, "agendamentos": []}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cron": "61 * * * *"}, "cron: expressão cron: campo minuto inválido ('61')"),
        ({"cron": "0 7 * *"}, "cron: expressão cron deve ter 5 campos"),
        ({"cron": "0 0 31 2 *"}, "nenhuma data possível"),
        ({"fuso_horario": "America/Atlantida"}, "fuso_horario: fuso horário desconhecido"),
        ({"perdidas": "todas"}, "perdidas: valor inválido"),
        ({"tipo_relatorio": "NAO_EXISTE"}, "tipo de relatório desconhecido"),
        ({"parametros": {"data_inicio": "anteontem", "data_fim": "ontem"}}, "data_inicio: deve"),
        ({"parametros": {"data_inicio": "hoje"}}, "data_fim: campo obrigatório ausente"),
        ({"notificar_url": "http://169.254.169.254/"}, "notificar_url: URL recusada"),
        ({"notificar_url": "http://10.0.0.1/"}, "rede privada"),
        ({"notificar_url": ""}, "notificar_url: URL deve começar com http:// ou https://"),
    ],
)
def test_an_invalid_schedule_gets_422_naming_the_problem(
    api: TestClient, change: dict[str, object], problem: str
) -> None:
    response = api.post("/agendamentos", json={**DAILY, **change})
    assert response.status_code == 422, response.text
    assert problem in response.json()["mensagem"]
    assert api.get("/agendamentos").json()["total"] == 0


def test_relative_words_follow_the_parameter_type(api: TestClient) -> None:
    ok = api.post(
        "/agendamentos",
        json={
            "tipo_relatorio": "RESUMO_MENSAL",
            "parametros": {"ano": "ano_passado"},
            "cron": "0 6 1 1 *",
        },
    )
    assert ok.status_code == 201, ok.text
    bad = api.post(
        "/agendamentos",
        json={
            "tipo_relatorio": "RESUMO_MENSAL",
            "parametros": {"ano": "ontem"},
            "cron": "0 6 1 1 *",
        },
    )
    assert bad.status_code == 422 and "ano: deve ser um número inteiro" in bad.json()["mensagem"]
    schedule_id = ok.json()["id"]
    wrong = api.patch(f"/agendamentos/{schedule_id}", json={"cron": "* *"})
    assert wrong.status_code == 422 and "5 campos" in wrong.json()["mensagem"]


def test_a_schedule_s_tasks_appear_in_the_task_listing(api: TestClient, settings: Settings) -> None:
    schedule = api.post("/agendamentos", json=DAILY).json()
    monday_7am = dt.datetime.fromisoformat(schedule["proximas_execucoes"][0])

    async def fire() -> int:
        client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        scheduler = Scheduler(client, settings, order_check(settings), Clock())
        fired = await scheduler.run_once(monday_7am + dt.timedelta(seconds=2))
        await client.aclose()
        return fired

    assert asyncio.run(fire()) == 1
    listed = api.get("/relatorios").json()["tarefas"]
    (task,) = [t for t in listed if t["agendamento"] == schedule["id"]]
    assert task["agendamento"] == schedule["id"] and task["status"] == "na_fila"
    day = monday_7am.astimezone(SP).date()
    assert task["parametros"] == {
        "data_inicio": (day - dt.timedelta(days=7)).isoformat(),
        "data_fim": (day - dt.timedelta(days=1)).isoformat(),
    }
    assert dt.datetime.fromisoformat(task["agendado_para"].replace("Z", "+00:00")) == monday_7am
    shown = api.get(f"/agendamentos/{schedule['id']}").json()
    assert shown["ultima_tarefa"] == task["task_id"]
    assert task["dono"] == shown["dono"] == "admin-agenda"  # the schedule's key owns its tasks


def test_a_schedule_belongs_to_its_key(api: TestClient, settings: Settings) -> None:
    """A user key sees, changes and deletes only its own schedules (another's is a 404)."""
    admins = api.post("/agendamentos", json=DAILY).json()
    ana = bearer(make_key(settings.redis_url, settings.queue_name, "ana"))
    hers = api.post("/agendamentos", json=DAILY, headers=ana)
    assert hers.status_code == 201 and hers.json()["dono"] == "ana"
    listed = api.get("/agendamentos", headers=ana).json()
    assert [s["id"] for s in listed["agendamentos"]] == [hers.json()["id"]]
    for method in ("GET", "PATCH", "DELETE"):
        body = {"ativo": False} if method == "PATCH" else None
        other = api.request(method, f"/agendamentos/{admins['id']}", json=body, headers=ana)
        assert other.status_code == 404, method
    assert api.get("/agendamentos").json()["total"] == 2  # an admin sees every key's
    assert api.get("/agendamentos", headers={"Authorization": ""}).status_code == 401

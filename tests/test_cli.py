"""The `relatorios` command against the real API and a real worker, as an operator types it."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from relatorios.cli import build_parser
from relatorios.protocol import Status
from tests.conftest import ApiProcess, WorkerEnv, free_port

StartWorker = Callable[[str, WorkerEnv], subprocess.Popen[bytes]]
StartApi = Callable[[WorkerEnv], ApiProcess]
# The console script installed next to this interpreter (the venv's), as `make test` runs it.
RELATORIOS = shutil.which("relatorios", path=str(Path(sys.executable).parent)) or "relatorios"


def run(
    args: list[str],
    env: WorkerEnv,
    api: ApiProcess | str,
    cwd: Path | None = None,
    key: str = "",
) -> subprocess.CompletedProcess[str]:
    """`relatorios ARGS` against `api` (with its admin key in RELATORIOS_CHAVE), or against a
    bare URL with `key` (none by default)."""
    environ = env.environ()
    environ.pop("RELATORIOS_CHAVE", None)
    environ["RELATORIOS_API"] = api if isinstance(api, str) else api.url
    # Tables as wide as a usual terminal whatever runs pytest (rich reads COLUMNS; under
    # pytest-xdist it otherwise guessed a width that cut the report's name).
    environ["COLUMNS"] = "200"
    if key or not isinstance(api, str):
        environ["RELATORIOS_CHAVE"] = key or api.key  # type: ignore[union-attr]
    return subprocess.run(
        [RELATORIOS, *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A friendly failure: non-zero exit, one line on stderr, no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Erro: ")
    return lines[0]


@pytest.fixture
def system(
    worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker
) -> tuple[WorkerEnv, ApiProcess]:
    api = start_api(worker_env)
    start_worker("python", worker_env)
    return worker_env, api


def test_gerar_esperar_prints_the_csv_path(
    system: tuple[WorkerEnv, ApiProcess], tmp_path: Path
) -> None:
    env, api = system
    result = run(["gerar", "PAGAMENTOS_PENDENTES", "--esperar"], env, api)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == env.export_dir.resolve()
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == [
        "id",
        "funcionario",
        "departamento",
        "data",
        "categoria",
        "descricao",
        "valor",
    ]
    assert "linhas" in result.stderr  # the progress bar went to stderr, not into the path

    task_id = path.stem.rsplit("_", 1)[1]
    listed = run(["listar"], env, api)
    assert listed.returncode == 0 and task_id in listed.stdout

    [full_id] = [w for w in listed.stdout.split() if w.startswith(task_id)]
    status = run(["status", full_id], env, api)
    assert status.returncode == 0 and "concluido" in status.stdout

    downloaded = run(["baixar", full_id, "-o", str(tmp_path / "copia.csv")], env, api)
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "copia.csv").read_bytes() == path.read_bytes()


def test_gerar_with_typed_parameters(system: tuple[WorkerEnv, ApiProcess]) -> None:
    env, api = system
    args = ["gerar", "maiores_gastadores", "--param", "ano=2024", "-p", "limite=3", "--esperar"]
    result = run(args, env, api)
    assert result.returncode == 0, result.stderr
    with Path(result.stdout.strip()).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) <= 1 + 3


def test_gerar_with_a_format_and_compression(
    system: tuple[WorkerEnv, ApiProcess], tmp_path: Path
) -> None:
    import gzip

    env, api = system
    args = ["gerar", "PAGAMENTOS_PENDENTES", "--formato", "csv_excel", "--compressao", "gzip"]
    result = run([*args, "--esperar"], env, api)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.name.endswith(".csv.gz")
    assert gzip.decompress(path.read_bytes()).startswith(b"\xef\xbb\xbfid;funcionario;")
    refused = run(["gerar", "PAGAMENTOS_PENDENTES", "--formato", "xlsx", "--compressao", "gzip"],
                  env, api)  # fmt: skip
    assert refused.returncode == 2 and "não aceita compressão gzip" in refused.stderr


def test_gerar_without_waiting_prints_the_task_id(system: tuple[WorkerEnv, ApiProcess]) -> None:
    env, api = system
    result = run(["gerar", "PAGAMENTOS_PENDENTES"], env, api)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) == 36


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["gerar", "NAO_EXISTE"], "tipo de relatório desconhecido: NAO_EXISTE"),
        (["gerar", "MAIORES_GASTADORES", "-p", "ano=1800"], "ano: deve ser maior ou igual a 1900"),
        (["gerar", "MAIORES_GASTADORES", "-p", "ano=dois mil"], "ano: deve ser um número inteiro"),
        (["gerar", "MAIORES_GASTADORES", "-p", "cor=azul"], "parâmetro desconhecido"),
        (["gerar", "GASTOS_POR_DEPARTAMENTO"], "departamento: campo obrigatório ausente"),
        (["status", "123"], "ID de tarefa inválido"),
        (["status", "00000000-0000-4000-8000-000000000000"], "tarefa não encontrada"),
    ],
)
def test_bad_requests_are_one_clear_line(
    worker_env: WorkerEnv, start_api: StartApi, args: list[str], expected: str
) -> None:
    api = start_api(worker_env)  # the API alone: nothing here reaches a worker
    assert expected in one_line_error(run(args, worker_env, api))


def test_baixar_before_done_is_one_clear_line(worker_env: WorkerEnv, start_api: StartApi) -> None:
    api = start_api(worker_env)  # no worker: the task stays queued
    queued = run(["gerar", "PAGAMENTOS_PENDENTES"], worker_env, api)
    task_id = queued.stdout.strip()
    line = one_line_error(run(["baixar", task_id], worker_env, api))
    assert "ainda não concluído" in line


def test_api_unreachable_is_one_clear_line(worker_env: WorkerEnv) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["listar"], ["gerar", "PAGAMENTOS_PENDENTES", "--esperar"]):
        line = one_line_error(run(args, worker_env, url))
        assert "API inacessível" in line and url in line


def test_cancelar_a_queued_task(worker_env: WorkerEnv, start_api: StartApi) -> None:
    api = start_api(worker_env)  # no worker: the task stays queued until cancelled
    task_id = run(["gerar", "PAGAMENTOS_PENDENTES"], worker_env, api).stdout.strip()
    cancelled = run(["cancelar", task_id], worker_env, api)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelado" in cancelled.stdout
    status = run(["status", task_id, "--json"], worker_env, api)
    assert '"status": "cancelado"' in status.stdout
    again = one_line_error(run(["cancelar", task_id], worker_env, api))
    assert "cancelado" in again  # already final: the API's 409, in one line


def test_listar_offers_exactly_the_protocols_states(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for status in Status:
        assert parser.parse_args(["listar", "--status", status.value]).status == status
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["listar", "--status", "pronto"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert all(f"'{status.value}'" in error for status in Status), error


def test_agendar_lists_pauses_resumes_and_deletes_a_schedule(
    worker_env: WorkerEnv, start_api: StartApi
) -> None:
    url = start_api(worker_env)
    made = run(
        ["agendar", "resumo_mensal", "--cron", "0 6 1 * *", "-p", "ano=ano_passado"],
        worker_env,
        url,
    )
    assert made.returncode == 0, made.stderr
    schedule_id = made.stdout.strip()
    assert "Próximas: " in made.stderr and "06:00 (-03:00)" in made.stderr
    listed = run(["agendamentos"], worker_env, url)
    assert listed.returncode == 0 and schedule_id in listed.stdout
    assert "RESUMO_MENSAL" in listed.stdout and "ativo" in listed.stdout
    paused = run(["agendamentos", "pausar", schedule_id], worker_env, url)
    assert paused.stdout.strip() == f"Agendamento {schedule_id}: pausado"
    resumed = run(["agendamentos", "retomar", schedule_id], worker_env, url)
    assert resumed.stdout.strip() == f"Agendamento {schedule_id}: ativo"
    bad = one_line_error(run(["agendar", "RESUMO_MENSAL", "--cron", "0 6 1 *"], worker_env, url))
    assert "5 campos" in bad
    assert run(["agendamentos", "apagar", schedule_id], worker_env, url).returncode == 0
    assert "Nenhum agendamento." in run(["agendamentos"], worker_env, url).stdout
    gone = one_line_error(run(["agendamentos", "apagar", schedule_id], worker_env, url))
    assert "não encontrado" in gone


def test_chaves_criar_listar_revogar(worker_env: WorkerEnv, start_api: StartApi) -> None:
    """An operator makes a user key, the API takes it, the listing shows it, revoking it is
    immediate; the secret is printed once and never listed."""
    api = start_api(worker_env)
    made = run(["chaves", "criar", "ana"], worker_env, api)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert len(secret) >= 43  # 32 random bytes, base64url
    assert run(["listar"], worker_env, api.url, key=secret).returncode == 0
    listed = run(["chaves", "listar"], worker_env, api)
    assert "ana" in listed.stdout and "usuario" in listed.stdout and secret not in listed.stdout
    again = run(["chaves", "criar", "ana"], worker_env, api)
    assert again.returncode != 0 and "já existe" in again.stderr
    assert run(["chaves", "revogar", "ana"], worker_env, api).returncode == 0
    refused = one_line_error(run(["listar"], worker_env, api.url, key=secret))
    assert "revogada" in refused and "RELATORIOS_CHAVE" in refused


def test_without_a_key_the_cli_says_how_to_get_one(
    worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    line = one_line_error(run(["listar"], worker_env, api.url))
    assert "chave de API ausente" in line and "relatorios chaves criar" in line

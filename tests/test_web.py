"""The analysts' page in a real headless Chromium, against the real API, worker and Redis."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from relatorios.protocol import STATUS_LABELS, Status
from tests.conftest import ApiProcess, WorkerEnv

StartWorker = Callable[[str, WorkerEnv], subprocess.Popen[bytes]]
StartApi = Callable[[WorkerEnv], ApiProcess]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
GASTOS_HEADER = ["id", "data", "funcionario", "cargo", "categoria", "descricao", "valor", "status"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), "chromium not found: run `make test`, which installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, locale="pt-BR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def log_in(page: Page, api: ApiProcess) -> None:
    """Open the page with make run's link (the key in the fragment), as an operator does."""
    page.goto(f"{api.url}/#chave={api.key}")
    expect(page.get_by_role("button", name="Sair")).to_be_visible()
    assert "chave" not in page.url, "the key leaves the address bar"


def first_department(api: ApiProcess) -> str:
    catalog = api.http.get(f"{api.url}/tipos-relatorio").json()
    [gastos] = [r for r in catalog if r["tipo"] == "GASTOS_POR_DEPARTAMENTO"]
    return str(gastos["parametros"][0]["opcoes"][0])


def test_order_a_report_watch_it_finish_and_download_it(
    page: Page, worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker
) -> None:
    api = start_api(worker_env)
    department = first_department(api)
    log_in(page, api)

    page.get_by_label("Gastos por departamento").check()
    page.get_by_role("combobox", name="Departamento").select_option(department)
    page.get_by_role("button", name="Gerar relatório").click()
    expect(page.locator("#confirmacao")).to_contain_text("Pedido aceito: Gastos por departamento")

    task = page.locator(".tarefa").first
    expect(task.locator(".tarefa-params")).to_have_text(f"departamento: {department}")
    # No worker yet: the task waits in the queue, and can be cancelled from there.
    expect(task.locator(".selo")).to_have_text("Na fila")
    expect(task.get_by_role("button", name="Cancelar")).to_be_visible()

    start_worker("python", worker_env)
    expect(task.locator(".selo")).to_have_text("Concluído", timeout=30_000)
    expect(task.locator(".contagem")).to_contain_text("linhas")
    expect(task.get_by_role("button", name="Cancelar")).to_have_count(0)

    with page.expect_download() as info:
        task.get_by_role("button", name="Baixar CSV").click()
    saved = worker_env.export_dir.parent / "baixado.csv"
    info.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == GASTOS_HEADER
    shown_rows = f"{len(rows) - 1:,}".replace(",", ".")
    expect(task.locator(".contagem")).to_contain_text(f"{shown_rows} linhas")


def test_choose_xlsx_or_gzip_and_download_that_file(
    page: Page, worker_env: WorkerEnv, start_api: StartApi, start_worker: StartWorker
) -> None:
    """The format radios and the gzip box: xlsx turns gzip off (the file is already zipped);
    the task says what it makes and its download is that file."""
    import gzip

    import openpyxl

    api = start_api(worker_env)
    start_worker("python", worker_env)
    log_in(page, api)
    page.get_by_label("Pagamentos pendentes").check()
    expect(page.get_by_label("CSV (vírgula", exact=False)).to_be_checked()

    page.get_by_label("Planilha do Excel (.xlsx)").check()
    expect(page.get_by_label("Compactar com gzip")).to_be_disabled()
    page.get_by_role("button", name="Gerar relatório").click()
    task = page.locator(".tarefa").first
    expect(task.locator(".tarefa-meta")).to_contain_text("XLSX")
    expect(task.locator(".selo")).to_have_text("Concluído", timeout=30_000)
    with page.expect_download() as info:
        task.get_by_role("button", name="Baixar XLSX").click()
    assert info.value.suggested_filename.endswith(".xlsx")
    saved = worker_env.export_dir.parent / "baixado.xlsx"
    info.value.save_as(saved)
    header = next(
        openpyxl.load_workbook(saved, read_only=True)["dados"].iter_rows(values_only=True)
    )
    assert header[0] == "id"

    page.get_by_label("CSV para o Excel", exact=False).check()
    page.get_by_label("Compactar com gzip").check()
    page.get_by_role("button", name="Gerar relatório").click()
    task = page.locator(".tarefa").first
    expect(task.locator(".tarefa-meta")).to_contain_text("CSV para Excel (gzip)")
    expect(task.locator(".selo")).to_have_text("Concluído", timeout=30_000)
    with page.expect_download() as info:
        task.get_by_role("button", name="Baixar CSV.GZ").click()
    assert info.value.suggested_filename.endswith(".csv.gz")
    saved = worker_env.export_dir.parent / "baixado.csv.gz"
    info.value.save_as(saved)
    assert gzip.decompress(saved.read_bytes()).startswith(b"\xef\xbb\xbfid;funcionario;")


def test_validation_errors_appear_next_to_their_field(
    page: Page, worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    log_in(page, api)

    page.get_by_label("Maiores gastadores do ano").check()
    year = page.get_by_label("Ano (ex.: 2025)")
    year.fill("1800")
    page.get_by_role("button", name="Gerar relatório").click()
    expect(page.locator("#erro-ano")).to_have_text("deve ser maior ou igual a 1900")
    expect(year).to_have_attribute("aria-invalid", "true")
    expect(year).to_be_focused()
    # Read out with the field: its range hint, then the error.
    expect(year).to_have_accessible_description(
        "mínimo 1900 · máximo 2100 deve ser maior ou igual a 1900"
    )

    page.get_by_label("Gastos por departamento").check()  # a required field left empty
    page.get_by_role("button", name="Gerar relatório").click()
    expect(page.locator("#erro-departamento")).to_have_text("campo obrigatório ausente")
    expect(page.locator("#resumo")).to_contain_text("Nenhuma tarefa")


def test_a_failed_task_shows_its_error(
    page: Page,
    worker_env: WorkerEnv,
    start_api: StartApi,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    api = start_api(worker_env)
    start_worker("python", replace(worker_env, db_path=tmp_path / "sumiu.db"))
    log_in(page, api)
    page.get_by_label("Pagamentos pendentes").check()
    page.get_by_role("button", name="Gerar relatório").click()
    task = page.locator(".tarefa").first
    expect(task.locator(".selo")).to_have_text("Falhou", timeout=30_000)
    expect(task.locator(".erro-tarefa")).to_contain_text("banco de dados não encontrado")
    expect(task.get_by_role("button", name="Baixar CSV")).to_have_count(0)


def test_the_form_works_from_the_keyboard_alone(
    page: Page, worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    log_in(page, api)
    first = page.get_by_label("Gastos por departamento")
    expect(first).to_be_checked()
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select, button')]"
        ".filter(e => !e.labels?.length && !e.getAttribute('aria-label') && !e.textContent.trim())"
        ".map(e => e.outerHTML)"
    )
    assert unlabelled == []

    first.focus()
    page.keyboard.press("ArrowDown")  # radio group: moves to the next report type
    expect(page.get_by_label("Maiores gastadores do ano")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Ano (ex.: 2025)")).to_be_focused()
    page.keyboard.type("2024")
    page.keyboard.press("Enter")
    task = page.locator(".tarefa").first
    expect(task.locator(".tarefa-titulo")).to_have_text("Maiores gastadores do ano")
    expect(task.locator(".tarefa-params")).to_have_text("ano: 2024 · limite: 100")


def test_the_page_fits_a_phone(page: Page, worker_env: WorkerEnv, start_api: StartApi) -> None:
    api = start_api(worker_env)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, api)
    page.get_by_label("Pagamentos pendentes").check()
    page.get_by_role("button", name="Gerar relatório").click()
    expect(page.locator(".tarefa")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_queued_task_can_be_cancelled(
    page: Page, worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api = start_api(worker_env)  # no worker: the task stays queued until cancelled
    log_in(page, api)
    page.get_by_label("Pagamentos pendentes").check()
    page.get_by_role("button", name="Gerar relatório").click()
    task = page.locator(".tarefa").first
    expect(task.locator(".selo")).to_have_text("Na fila")
    task.get_by_role("button", name="Cancelar").click()
    expect(task.locator(".selo")).to_have_text("Cancelado")
    expect(task.get_by_role("button", name="Cancelar")).to_have_count(0)
    expect(task.get_by_role("button", name="Baixar CSV")).to_have_count(0)


def test_the_page_takes_state_labels_and_filters_from_the_api(
    page: Page, worker_env: WorkerEnv, start_api: StartApi
) -> None:
    """The page spells no state: change GET /estados and the page says what it serves."""
    api = start_api(worker_env)  # no worker: the task stays queued
    served = api.http.get(f"{api.url}/estados").json()
    assert [s["status"] for s in served] == [s.value for s in Status]
    renamed = [{**s, "rotulo": f"<{s['rotulo']}>"} for s in served]
    page.route(f"{api.url}/estados", lambda route: route.fulfill(json=renamed))
    log_in(page, api)
    options = page.locator("#filtro-status option")
    expect(options).to_have_text(["todas", *(s["rotulo"] for s in renamed)])
    page.get_by_label("Pagamentos pendentes").check()
    page.get_by_role("button", name="Gerar relatório").click()
    task = page.locator(".tarefa").first
    expect(task.locator(".selo")).to_have_text(f"<{STATUS_LABELS[Status.QUEUED]}>")
    page.locator("#filtro-status").select_option(Status.QUEUED.value)
    expect(page.locator("#resumo")).to_contain_text(f"(<{STATUS_LABELS[Status.QUEUED]}>)")
    task.get_by_role("button", name="Cancelar").click()
    page.locator("#filtro-status").select_option("")
    expect(task.locator(".selo")).to_have_text(f"<{STATUS_LABELS[Status.CANCELLED]}>")


def test_the_page_asks_for_a_key_and_logs_out(
    page: Page, worker_env: WorkerEnv, start_api: StartApi
) -> None:
    api = start_api(worker_env)
    page.goto(api.url)
    expect(page.get_by_role("heading", name="Entrar")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    key = page.get_by_label("Chave de API")
    key.fill("chave-errada")
    page.get_by_role("button", name="Entrar").click()
    expect(page.locator("#erro-chave")).to_have_text("Chave inválida ou revogada.")
    key.fill(api.key)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_label("Pagamentos pendentes")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('relatorios.chave')") == api.key
    page.reload()  # the key lives as long as the tab
    expect(page.get_by_label("Pagamentos pendentes")).to_be_visible()
    page.get_by_role("button", name="Sair").click()
    expect(page.get_by_role("heading", name="Entrar")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('relatorios.chave')") is None

"""Take docs/screenshot.png (desktop) and docs/screenshot-celular.png (390 px) of the page.

    .venv/bin/python scripts/screenshot.py [--db data/empresa.db]

Runs the real system in private processes (redis-server, the API, Python workers) and gets real
tasks into each state: one that failed (a worker started without its database), some done, one
running and one queued behind it. Then headless Chromium takes the pictures. Needs redis-server
and Debian's chromium; without --db it generates a 1,000,000-transaction database once, in var/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from playwright.sync_api import Page, sync_playwright

from relatorios.api import FACTORY
from relatorios.apikeys import create_key
from relatorios.protocol import Keys

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WHOLE_PERIOD = {"data_inicio": "2000-01-01", "data_fim": "2100-12-31"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


class System:
    """redis-server, the API and workers, each a child process, all stopped by close()."""

    def __init__(self, folder: Path, db: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        redis_port, api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{api_port}"
        self.env = dict(
            os.environ,
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            QUEUE_NAME="fila_relatorios",
            DB_PATH=str(db.resolve()),
            EXPORT_DIR=str(folder / "export"),
            PROGRESS_EVERY="2000",
        )
        (folder / "export").mkdir()
        self.spawn(["redis-server", "--port", str(redis_port), "--save", "", "--dir", str(folder)])
        self.spawn([sys.executable, "-m", "uvicorn", "--factory", FACTORY, "--port", str(api_port)])
        wait_for("the API", lambda: _answers(f"{self.url}/health"))
        client = redis.Redis.from_url(self.env["REDIS_URL"], decode_responses=True)
        self.key = create_key(client, Keys(self.env["QUEUE_NAME"]), "admin", admin=True)
        client.close()
        self.http = httpx.Client(headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        self.login_url = f"{self.url}/#chave={self.key}"

    def spawn(self, cmd: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, env={**self.env, **env}, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def worker(self, **env: str) -> subprocess.Popen[bytes]:
        return self.spawn([sys.executable, "-m", "relatorios.worker"], **env)

    def submit(self, report_type: str, **params: Any) -> str:
        body = {"tipo_relatorio": report_type, "parametros": params}
        response = self.http.post(f"{self.url}/gerar-relatorio", json=body)
        response.raise_for_status()
        return str(response.json()["task_id"])

    def task(self, task_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"{self.url}/relatorios/{task_id}").json())

    def wait_status(self, task_id: str, *states: str) -> None:
        wait_for(f"task {task_id} to be {states}", lambda: self.task(task_id)["status"] in states)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def stage(system: System) -> None:
    """Real tasks in every state: failed, done, running, queued."""
    # A worker whose database is missing (relative to its own folder): its task fails.
    broken = system.worker(DB_PATH="data/empresa.db")
    failed = system.submit("TRANSACOES_POR_PERIODO", **WHOLE_PERIOD)
    system.wait_status(failed, "falhou")
    broken.terminate()
    broken.wait(15)

    system.worker()
    departments = system.http.get(f"{system.url}/tipos-relatorio").json()[0]["parametros"][0][
        "opcoes"
    ]
    done = [
        system.submit("PAGAMENTOS_PENDENTES"),
        system.submit("GASTOS_POR_DEPARTAMENTO", departamento=departments[0]),
        system.submit("MAIORES_GASTADORES", ano=2025, limite=50),
    ]
    for task_id in done:
        system.wait_status(task_id, "concluido", "falhou")
    running = system.submit("TRANSACOES_POR_PERIODO", **WHOLE_PERIOD)
    system.submit("RESUMO_MENSAL", ano=2025)  # queued behind it: one worker
    wait_for("rows to be written", lambda: system.task(running)["linhas"] > 0)


def shoot(page: Page, url: str, width: int, target: Path) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url)
    page.locator(".selo-processando").wait_for()
    page.locator(".selo-na_fila").wait_for()
    page.wait_for_timeout(1200)  # one more poll, so the running task shows its elapsed time
    page.screenshot(path=str(target), full_page=True)
    print(f"saved {target}")


def default_db() -> Path:
    db = REPO / "var" / "screenshot" / "empresa.db"
    if not db.is_file():
        from relatorios.dbgen import generate

        db.parent.mkdir(parents=True, exist_ok=True)
        generate(db, employees=2000, transactions=1_000_000, seed=7, progress=True)
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="database to use (default: generated in var/)")
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    db = args.db or default_db()
    with tempfile.TemporaryDirectory(prefix="screenshot-") as tmp:
        system = System(Path(tmp), db)
        try:
            stage(system)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(locale="pt-BR", timezone_id="America/Sao_Paulo")
                shoot(page, system.login_url, 1280, args.docs / "screenshot.png")
                shoot(page, system.login_url, 390, args.docs / "screenshot-celular.png")
                browser.close()
        finally:
            system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

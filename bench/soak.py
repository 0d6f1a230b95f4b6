"""`make soak` (`python -m bench.soak [--minutos 30]`): the whole system under chaos for a while.

`relatorios up` (what `make run` runs) with its private Redis and two workers serves a steady mix
of small catalog reports and large ones, some cancelled, while this script `kill -9`s a worker
every minute, restarts Redis every five minutes and stops the whole `relatorios up` with a Ctrl-C
(SIGINT to its process group) and starts it again twice. Then it stops ordering work, lets every
task reach a final state and counts what must be zero: lost tasks, duplicated final states,
partial files. It samples the workers' resident memory every few seconds and writes
docs/reliability.md and docs/reliability.png (a shorter run than the default says so there).

Not part of `make test`: it takes its whole duration (30 minutes by default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.measure import REPO
from relatorios.settings import ADMIN_KEY_FILE

WORK = REPO / "var" / "soak"
DOC = REPO / "docs" / "reliability.md"
QUEUE = "soak"
LARGE_ROWS = 1_500_000  # a couple of seconds for the C worker
LARGE_SQL = f"""-- @title Grande (soak)
-- @description {LARGE_ROWS} linhas geradas
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LARGE_ROWS})
SELECT i AS numero, 'linha ' || i AS texto FROM n;
"""
SMALL: list[tuple[str, dict[str, Any]]] = [
    ("GASTOS_POR_DEPARTAMENTO", {"departamento": "Engenharia de Software"}),
    ("MAIORES_GASTADORES", {"ano": 2025, "limite": 10}),
    ("PAGAMENTOS_PENDENTES", {}),
    ("RESUMO_MENSAL", {"ano": 2025}),
    ("TRANSACOES_POR_PERIODO", {"data_inicio": "2025-01-01", "data_fim": "2025-01-31"}),
]
FINAL = {"concluido", "falhou", "cancelado", "expirado"}
SUBMIT_EVERY_S = 0.5
LARGE_SHARE = 0.15
CANCEL_SHARE = 0.10
KILL_WORKER_EVERY_S = 60
RESTART_REDIS_EVERY_S = 300
RSS_EVERY_S = 5
SHUTDOWN_DEADLINE_S = 5
DRAIN_TIMEOUT_S = 600
SUCCESS_RE = re.compile(r"Relatório gerado com sucesso! \(task_id=([0-9a-f-]{36})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Figures:
    started: str = ""
    minutes: float = 0.0
    worker: str = "c"
    submitted: dict[str, str] = field(default_factory=dict)  # task id -> report type
    refused: int = 0  # POSTs that got no 202 (the API was stopping or starting): never accepted
    cancel_asked: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    ctrl_c_exits_s: list[float] = field(default_factory=list)
    rss: list[tuple[float, int, float]] = field(default_factory=list)  # (minute, pid, MiB)
    events: list[tuple[float, str]] = field(default_factory=list)


class System:
    """`relatorios up` in a process group of its own, as a terminal runs `make run`."""

    def __init__(self, env: dict[str, str], log: Path, worker: str, workers: int) -> None:
        self.env, self.log, self.worker, self.workers = env, log, worker, workers
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=5)

    def start(self) -> None:
        cmd = [str(Path(sys.executable).with_name("relatorios")), "up"]
        cmd += ["--worker", self.worker, "--workers", str(self.workers)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                key = (Path(self.env["STATE_DIR"]) / ADMIN_KEY_FILE).read_text().strip()
                self.http.headers["Authorization"] = f"Bearer {key}"  # make run's admin key
                if self.http.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except (httpx.HTTPError, OSError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"relatorios up saiu: veja {self.log}")
            time.sleep(0.5)
        raise RuntimeError(f"relatorios up não ficou saudável em 120 s: veja {self.log}")

    def ctrl_c(self) -> float:
        """SIGINT to the whole process group; seconds until `relatorios up` exited."""
        assert self.proc is not None
        began = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(SHUTDOWN_DEADLINE_S + 60)
        return time.monotonic() - began

    def children(self, needle: str) -> list[psutil.Process]:
        if self.proc is None:
            return []
        found = []
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in tree:
            try:
                if needle in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.Error:
                continue
        return found

    def worker_processes(self) -> list[psutil.Process]:
        return self.children("app/build/worker" if self.worker == "c" else "relatorios.worker")


def prepare(transactions: int) -> dict[str, str]:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "export").mkdir(parents=True)
    catalog = WORK / "catalog"
    catalog.mkdir()
    for sql in (REPO / "catalog").glob("*.sql"):
        shutil.copy(sql, catalog)
    (catalog / "GRANDE.sql").write_text(LARGE_SQL)
    db = REPO / "var" / "soak-db" / f"empresa-{transactions}.db"
    if not db.is_file():
        from relatorios.dbgen.build import generate

        generate(db, employees=2000, transactions=transactions, progress=False)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        PORT=str(free_port()),
        STATE_DIR=str(WORK / "state"),
        EXPORT_DIR=str(WORK / "export"),
        CATALOG_DIR=str(catalog),
        DB_PATH=str(db),
        QUEUE_NAME=QUEUE,
        SHUTDOWN_DEADLINE_S=str(SHUTDOWN_DEADLINE_S),
        PYTHONUNBUFFERED="1",
    )
    return env


def soak(minutes: float, worker: str, transactions: int) -> Figures:
    env = prepare(transactions)
    figures = Figures(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), worker=worker)
    figures.minutes = minutes
    system = System(env, WORK / "up.log", worker, 2)
    system.start()
    rnd = random.Random(14)
    began = time.monotonic()
    end = began + minutes * 60
    ctrl_c_at = [began + minutes * 60 / 3, began + minutes * 60 * 2 / 3]
    next_kill = began + KILL_WORKER_EVERY_S
    next_redis = began + RESTART_REDIS_EVERY_S
    next_rss = began
    cancels: list[tuple[float, str]] = []
    client = system.http

    def note(what: str) -> None:
        figures.events.append(((time.monotonic() - began) / 60, what))
        print(f"[{(time.monotonic() - began) / 60:5.1f} min] {what}", flush=True)

    while (now := time.monotonic()) < end:
        kind, params = ("GRANDE", {}) if rnd.random() < LARGE_SHARE else rnd.choice(SMALL)
        try:
            answer = client.post(
                f"{system.url}/gerar-relatorio", json={"tipo_relatorio": kind, "parametros": params}
            )
            if answer.status_code == 202:
                task_id = answer.json()["task_id"]
                figures.submitted[task_id] = kind
                if rnd.random() < CANCEL_SHARE:
                    cancels.append((now + rnd.uniform(0.1, 4), task_id))
            else:
                figures.refused += 1
        except httpx.HTTPError:
            figures.refused += 1
        for due, task_id in [c for c in cancels if c[0] <= now]:
            cancels.remove((due, task_id))
            try:
                client.delete(f"{system.url}/relatorios/{task_id}")
                figures.cancel_asked += 1
            except httpx.HTTPError:
                pass
        if now >= next_rss:
            next_rss = now + RSS_EVERY_S
            for proc in system.worker_processes():
                try:
                    mib = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                figures.rss.append(((now - began) / 60, proc.pid, mib))
        if now >= next_kill:
            next_kill = now + KILL_WORKER_EVERY_S
            victims = system.worker_processes()
            if victims:
                victim = rnd.choice(victims)
                victim.kill()
                figures.worker_kills += 1
                note(f"kill -9 do worker {victim.pid}")
        if now >= next_redis:
            next_redis = now + RESTART_REDIS_EVERY_S
            for redis_proc in system.children("redis-server"):
                redis_proc.terminate()  # a restart: the supervisor starts it again
                figures.redis_restarts += 1
                note(f"Redis reiniciado (SIGTERM ao redis-server {redis_proc.pid})")
        if ctrl_c_at and now >= ctrl_c_at[0]:
            ctrl_c_at.pop(0)
            took = system.ctrl_c()
            figures.ctrl_c_exits_s.append(took)
            note(f"Ctrl-C em todo o grupo: relatorios up saiu em {took:.1f} s; reiniciando")
            system.start()
        time.sleep(SUBMIT_EVERY_S)
    note("fim dos pedidos; esperando cada tarefa chegar a um estado final")
    drain(system, figures, client)
    took = system.ctrl_c()
    note(f"Ctrl-C final: relatorios up saiu em {took:.1f} s")
    return figures


def statuses(client: httpx.Client, url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for task_id in ids:
        answer = client.get(f"{url}/relatorios/{task_id}")
        if answer.status_code == 200:
            found[task_id] = answer.json()
    return found


def drain(system: System, figures: Figures, client: httpx.Client) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    pending = list(figures.submitted)
    while pending and time.monotonic() < deadline:
        seen = statuses(client, system.url, pending)
        pending = [t for t in pending if seen.get(t, {}).get("status") not in FINAL]
        if pending:
            time.sleep(2)
    with (WORK / "statuses.json").open("w") as out:
        json.dump(statuses(client, system.url, list(figures.submitted)), out)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (b - a).total_seconds()


def analyse(figures: Figures) -> dict[str, Any]:
    seen: dict[str, dict[str, Any]] = json.loads((WORK / "statuses.json").read_text())
    by_status = Counter(s["status"] for s in seen.values())
    lost = [t for t in figures.submitted if seen.get(t, {}).get("status") not in FINAL]
    log = (WORK / "up.log").read_text(errors="replace")
    successes = Counter(SUCCESS_RE.findall(log))
    duplicated = sorted(t for t, n in successes.items() if n > 1)
    export = WORK / "export"
    parts = sorted(p.name for p in export.glob("*.part"))
    bad_files = []
    for task_id, state in seen.items():
        if state["status"] != "concluido":
            continue
        path = export / state["arquivo"]
        if not path.is_file() or path.stat().st_size != state["bytes"]:
            bad_files.append(task_id)
    waits = [
        w
        for s in seen.values()
        if s["status"] == "concluido"
        and (w := seconds_between(s.get("criado_em"), s.get("iniciado_em"))) is not None
    ]
    codes = Counter(s.get("erro_codigo") for s in seen.values() if s["status"] == "falhou")
    rss_first = [m for t, _, m in figures.rss if t <= min(5.0, figures.minutes / 3)]
    rss_last = [
        m for t, _, m in figures.rss if t >= figures.minutes - min(5.0, figures.minutes / 3)
    ]
    return {
        "accepted": len(figures.submitted),
        "by_status": dict(by_status),
        "failure_codes": {str(k): v for k, v in codes.items()},
        "lost": lost,
        "duplicated": duplicated,
        "parts": parts,
        "bad_files": bad_files,
        "wait_p50": percentile(waits, 0.50),
        "wait_p99": percentile(waits, 0.99),
        "rss_first": statistics.median(rss_first) if rss_first else float("nan"),
        "rss_last": statistics.median(rss_last) if rss_last else float("nan"),
        "rss_max": max((m for _, _, m in figures.rss), default=float("nan")),
        "longest_life_min": longest_life(figures),
        "rss_samples": figures.rss,
    }


def longest_life(figures: Figures) -> float:
    """Minutes between the first and last memory sample of the longest-lived worker process."""
    spans: dict[int, list[float]] = {}
    for minute, pid, _ in figures.rss:
        spans.setdefault(pid, []).append(minute)
    return max((max(t) - min(t) for t in spans.values()), default=0.0)


def plot(figures: Figures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for minute, pid, mib in figures.rss:
        by_pid.setdefault(pid, []).append((minute, mib))
    for points in by_pid.values():
        ax.plot([p[0] for p in points], [p[1] for p in points], linewidth=1.2)
    for minute, what in figures.events:
        if what.startswith("kill"):
            ax.axvline(minute, color="0.85", linewidth=0.8, zorder=0)
        elif what.startswith(("Redis", "Ctrl-C")):
            ax.axvline(minute, color="tab:red", linewidth=0.8, linestyle="--", zorder=0)
    ax.set_xlabel("minutos")
    ax.set_ylabel("RSS do worker (MiB)")
    ax.set_title(
        f"Soak de {figures.minutes:g} min: RSS de cada processo worker ({figures.worker}); "
        "cinza: kill -9, vermelho: Redis / Ctrl-C",
        fontsize=9,
    )
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_doc(figures: Figures, result: dict[str, Any], requested: float, doc: Path) -> None:
    short = (
        f"\n**This run was shortened**: {figures.minutes:g} minutes instead of the default 30 "
        "(`make soak` runs 30). The schedule below scales with the duration only where it says "
        "so.\n"
        if figures.minutes < 30
        else ""
    )
    statuses_line = ", ".join(f"{k}: {v}" for k, v in sorted(result["by_status"].items()))
    codes = ", ".join(f"`{k}`: {v}" for k, v in sorted(result["failure_codes"].items())) or "none"
    exits = ", ".join(f"{s:.1f} s" for s in figures.ctrl_c_exits_s)
    events = "\n".join(f"| {m:.1f} | {w} |" for m, w in figures.events)
    partial = len(result["parts"]) + len(result["bad_files"])
    kind_name = "C" if figures.worker == "c" else "Python"
    waits = f"{result['wait_p50']:.2f} s / {result['wait_p99']:.2f} s"
    rss = f"{result['rss_first']:.1f} / {result['rss_last']:.1f} MiB; {result['rss_max']:.1f} MiB"
    doc.write_text(
        f"""# Reliability: the soak run

`make soak` (`bench/soak.py`, `SOAK_MINUTOS=30` by default; not part of `make test`) runs the
whole system as `make run` does (`relatorios up`, its private Redis, two {kind_name}
workers) under a steady load and repeated failures, then checks that nothing was lost. The figures
below come from a real run on this machine ({figures.started}, 2 shared cores, other work running
beside it).
{short}
## What ran

- **Load**: a request every {SUBMIT_EVERY_S} s: {100 - LARGE_SHARE * 100:.0f} % small catalog
  reports (the five of `catalog/`, over a generated database), {LARGE_SHARE * 100:.0f} % a large
  one (`GRANDE`, {LARGE_ROWS:,} rows); {CANCEL_SHARE * 100:.0f} % of the accepted tasks get a
  `DELETE` 0.1 to 4 s later (queued, running or already done: all three happen).
- **`kill -9` of a worker** every {KILL_WORKER_EVERY_S} s (the supervisor restarts it; recovery
  hands its task to the other).
- **A Redis restart** every {RESTART_REDIS_EVERY_S // 60} minutes (SIGTERM to `redis-server`; the
  supervisor starts it again on its append-only files and everyone reconnects).
- **Ctrl-C of the whole `relatorios up`** (SIGINT to its process group, as a terminal does) at
  one third and two thirds of the run, then a new start
  (`SHUTDOWN_DEADLINE_S={SHUTDOWN_DEADLINE_S}`).
- Then no more requests: every accepted task must reach a final state, and a last Ctrl-C stops it.

## Figures

| | |
| --- | --- |
| duration | {figures.minutes:g} min (requested {requested:g}) |
| tasks accepted (202) | {result["accepted"]} |
| requests not accepted (API stopping or starting: the client was told) | {figures.refused} |
| final states | {statuses_line} |
| failure codes | {codes} |
| cancellations asked | {figures.cancel_asked} |
| `kill -9` of a worker | {figures.worker_kills} |
| Redis restarts | {figures.redis_restarts} |
| Ctrl-C of `relatorios up` (exit took) | {len(figures.ctrl_c_exits_s)} ({exits}) |
| **lost tasks** (accepted, never final) | **{len(result["lost"])}** |
| **duplicated final states** (a task recorded done twice) | **{len(result["duplicated"])}** |
| **partial files** (`.part` left; a done task's file missing or wrong size) | **{partial}** |
| wait, accepted to started, of done tasks: p50 / p99 | {waits} |
| worker RSS, median of the first / last minutes; max | {rss} |

"Lost" compares the tasks the API accepted with their status at the end; "duplicated" counts
tasks whose success the workers logged more than once (a final state is written only when the
conditional write succeeds, so the log line is the record); "partial" looks at `EXPORT_DIR` once
everything has stopped. Failed tasks are not lost: their code says why (`tentativas_esgotadas`
when a task's worker was killed on each of its attempts).

![Worker RSS over time]({doc.with_suffix(".png").name})

Each line is one worker process (a killed worker's line stops, its replacement's starts).
With a `kill -9` every minute between two workers, no worker process lives long: the longest
lived {result["longest_life_min"]:.1f} minutes. So the plot shows memory that does not grow over
each process's life and the same level in every process from the first minute to the last; it is
not a {figures.minutes:g}-minute trend of one process (`make bench` measures one worker's
memory on large reports).

## What this run does not cover

- Only the {kind_name} worker: `make soak` runs one kind (`python -m bench.soak --worker
  python` runs the other).
- The Redis restarts are graceful (SIGTERM: Redis writes its append-only file). A `kill -9` of
  `make run`'s Redis is tested in `tests/test_supervisor.py`; with `appendfsync everysec` it may
  lose the last second of writes, so a soak that `kill -9`s Redis could count tasks accepted in
  that second as lost.
- Most `DELETE`s arrive after the task is already done (small reports take milliseconds): the
  API answers 409 and the task stays `concluido`; the cancellations that took effect are in the
  final states above.

## Events

| minute | event |
| --- | --- |
{events}
"""
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument(
        "--minutos", type=float, default=float(os.environ.get("SOAK_MINUTOS", "30"))
    )
    parser.add_argument("--worker", choices=("c", "python"), default="c")
    parser.add_argument("--transacoes", type=int, default=200_000)
    parser.add_argument("--doc", type=Path, default=DOC, help="where the report goes")
    args = parser.parse_args()
    figures = soak(args.minutos, args.worker, args.transacoes)
    result = analyse(figures)
    plot(figures, args.doc.with_suffix(".png"))
    write_doc(figures, result, args.minutos, args.doc)
    (WORK / "result.json").write_text(json.dumps(result, indent=2))
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("lost", "rss_samples")}, indent=2)
    )
    bad = result["lost"] or result["duplicated"] or result["parts"] or result["bad_files"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

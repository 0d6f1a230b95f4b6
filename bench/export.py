"""Benchmark 1, export: one report to CSV by each contender, on databases of growing size.

Contenders: the C worker and the Python worker (end to end: the task is pushed on the queue and
timed until its hash says `concluido`), the `sqlite3` shell (`-csv -header`, output to a file),
`pandas.read_sql` + `to_csv` (the load-everything approach the specification warns against) and
`SELECT count(*)` over the same query in the shell: SQLite's own floor, no output at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import broker, workers
from bench.measure import REPO, VAR, median, peak_rss_kib, rotate, run_process
from bench.plan import Plan, database
from bench.results import Measurement
from relatorios.protocol import F, Keys, ParamValue

CONTENDERS = ("worker C", "worker Python", "sqlite3 -csv", "pandas", "count(*)")
WORK = VAR / "work"
TASK_TIMEOUT_S = 1800
ALL_DATES: dict[str, ParamValue] = {"data_inicio": "2000-01-01", "data_fim": "2099-12-31"}


@dataclass(frozen=True)
class Case:
    report_type: str
    params: dict[str, ParamValue]

    @property
    def sql(self) -> str:
        return (REPO / "catalog" / f"{self.report_type}.sql").read_text(encoding="utf-8")


PENDING = Case("PAGAMENTOS_PENDENTES", {})
DEPARTMENT = Case("GASTOS_POR_DEPARTAMENTO", {"departamento": "Engenharia de Software"})
# The C worker issue's flat-memory check: a 1,000-row report against one of every transaction.
THOUSAND = Case("MAIORES_GASTADORES", {"ano": 2024, "limite": 1000})
EVERYTHING = Case("TRANSACOES_POR_PERIODO", ALL_DATES)


@dataclass(frozen=True)
class Outcome:
    seconds: float
    peak_rss_kib: int
    rows: int
    bytes: int


Contender = Callable[[Path, Case, int], Outcome]


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    results: list[Measurement] = []
    for size in plan.export_sizes:
        db = database(size)
        for case in (PENDING, DEPARTMENT):
            results += measure_case(plan, redis_url, db, size, case, CONTENDERS)
    db = database(plan.default_size)
    for case in (THOUSAND, EVERYTHING):
        results += measure_case(
            plan, redis_url, db, plan.default_size, case, ("worker C", "worker Python")
        )
    return results


def measure_case(
    plan: Plan, redis_url: str, db: Path, size: int, case: Case, names: tuple[str, ...]
) -> list[Measurement]:
    rows = count_rows(db, case)  # also warms the page cache before the first timed run
    label = f"{case.report_type} @ {size:,} transactions"
    print(f"export: {label}: {rows:,} rows", flush=True)
    contenders = _contenders(redis_url)
    found: dict[str, list[Outcome]] = {name: [] for name in names}
    notes: dict[str, str] = {}
    for rep in range(plan.reps):
        for name in rotate(names, rep):
            if name == "worker C" and not workers.available("c"):
                notes[name] = "not built (app/build/worker missing)"
                continue
            outcome = contenders[name](db, case, rows)
            print(f"  {name:14} {outcome.seconds:8.2f} s {outcome.peak_rss_kib / 1024:9.1f} MiB")
            found[name].append(outcome)
    return [_summary(label, name, found[name], notes.get(name, "")) for name in names]


def _summary(case: str, name: str, outcomes: list[Outcome], note: str) -> Measurement:
    m = Measurement(bench="export", case=case, contender=name, note=note, runs=len(outcomes))
    if outcomes:
        m.samples = [o.seconds for o in outcomes]
        m.seconds = median(m.samples)
        m.peak_rss_kib = max(o.peak_rss_kib for o in outcomes)
        m.rows = outcomes[0].rows
        m.bytes = outcomes[0].bytes
    return m


def _contenders(redis_url: str) -> dict[str, Contender]:
    return {
        "worker C": lambda db, case, rows: by_worker("c", redis_url, db, case),
        "worker Python": lambda db, case, rows: by_worker("python", redis_url, db, case),
        "sqlite3 -csv": by_sqlite_shell,
        "pandas": by_pandas,
        "count(*)": by_count,
    }


def by_worker(kind: str, redis_url: str, db: Path, case: Case) -> Outcome:
    """Push one task, time it until `concluido`; peak RSS of the worker process."""
    out = _fresh_dir()
    setup = workers.Setup(redis_url, f"bench_{uuid.uuid4().hex[:8]}", db, out)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(setup.queue)
    message = broker.task(case.report_type, case.params)
    with workers.running(kind, setup) as (proc,):
        started = time.perf_counter()
        broker.enqueue(client, keys, [message])
        fields = broker.wait_final(client, keys, message.task_id, TASK_TIMEOUT_S)
        seconds = time.perf_counter() - started
        rss = peak_rss_kib(proc.pid)
    client.close()
    if fields.get(F.STATUS) != "concluido":
        raise RuntimeError(f"worker {kind} failed: {fields.get(F.ERROR)}")
    shutil.rmtree(out)
    return Outcome(seconds, rss, int(fields[F.ROWS]), int(fields[F.BYTES]))


def by_sqlite_shell(db: Path, case: Case, rows: int) -> Outcome:
    out = _fresh_dir()
    script = out / "export.sql"
    script.write_text(_shell_params(case) + case.sql)
    csv_path = out / "export.csv"
    argv = ["sqlite3", "-readonly", "-batch", "-bail", "-csv", "-header", str(db)]
    done = run_process(argv, stdin=script, stdout=csv_path)
    _check(done.returncode, "sqlite3")
    size = csv_path.stat().st_size
    shutil.rmtree(out)
    return Outcome(done.seconds, done.peak_rss_kib, rows, size)


def by_count(db: Path, case: Case, rows: int) -> Outcome:
    out = _fresh_dir()
    result = out / "count.txt"
    done = run_process(_count_argv(db), stdin=_count_script(out, case), stdout=result)
    _check(done.returncode, "sqlite3 count(*)")
    counted = int(result.read_text().strip())
    shutil.rmtree(out)
    return Outcome(done.seconds, done.peak_rss_kib, counted, 0)


def by_pandas(db: Path, case: Case, rows: int) -> Outcome:
    """Time of read_sql + to_csv inside the process (the import of pandas is not counted)."""
    out = _fresh_dir()
    csv_path = out / "export.csv"
    report = out / "pandas.json"
    argv = [
        sys.executable,
        "-m",
        "bench.pandas_export",
        str(db),
        case.report_type,
        json.dumps(case.params),
        str(csv_path),
    ]
    done = run_process(argv, stdout=report)
    _check(done.returncode, "pandas")
    inside = json.loads(report.read_text())
    size = csv_path.stat().st_size
    shutil.rmtree(out)
    return Outcome(float(inside["seconds"]), done.peak_rss_kib, int(inside["rows"]), size)


def count_rows(db: Path, case: Case) -> int:
    out = _fresh_dir()
    result = out / "count.txt"
    done = run_process(_count_argv(db), stdin=_count_script(out, case), stdout=result)
    _check(done.returncode, "sqlite3 count(*)")
    counted = int(result.read_text().strip())
    shutil.rmtree(out)
    return counted


def _count_argv(db: Path) -> list[str]:
    return ["sqlite3", "-readonly", "-batch", "-bail", str(db)]


def _count_script(out: Path, case: Case) -> Path:
    body = case.sql.rstrip().rstrip(";")
    script = out / "count.sql"
    script.write_text(_shell_params(case) + f"SELECT count(*) FROM (\n{body}\n);\n")
    return script


def _shell_params(case: Case) -> str:
    """`.parameter set` lines: the shell binds them as the workers do (not formatted into SQL)."""
    lines = [".parameter init"]
    for name, value in case.params.items():
        if isinstance(value, str):
            literal = "'" + value.replace("'", "''") + "'"
        elif value is None:
            literal = "NULL"
        else:
            literal = repr(value)
        lines.append(f".parameter set :{name} {literal}")
    return "\n".join(lines) + "\n"


def _fresh_dir() -> Path:
    out = WORK / uuid.uuid4().hex[:8]
    out.mkdir(parents=True)
    return out


def _check(returncode: int, what: str) -> None:
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, what)

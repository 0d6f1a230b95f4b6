"""Benchmark 7, formats: PAGAMENTOS_PENDENTES (about 1,000,000 rows on the default database) as
plain CSV, gzip CSV and XLSX by each worker, and as XLSX by pandas (`read_sql` + `to_excel`, the
whole frame in memory). Workers are timed end to end, as in benchmark 1; a 1,000-row XLSX beside
the big one shows whether memory stays flat.

Targets (issue 13): C XLSX ≤ 3x its own plain CSV; C gzip CSV ≤ 1.5x plain; peak RSS flat,
≤ 16 MB for C and ≤ 64 MB for Python.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from pathlib import Path

import redis

from bench import broker, workers
from bench.export import PENDING, TASK_TIMEOUT_S, THOUSAND, WORK, Case, Outcome, count_rows
from bench.measure import median, peak_rss_kib, rotate, run_process
from bench.plan import Plan, database
from bench.results import Measurement
from relatorios.protocol import F, Keys, Message, file_name, new_task_id

OUTPUTS = {"csv": ("csv", "nenhuma"), "csv.gz": ("csv", "gzip"), "xlsx": ("xlsx", "nenhuma")}
WORKER_CONTENDERS = tuple(f"worker {k} {o}" for k in ("C", "Python") for o in OUTPUTS)
CONTENDERS = (*WORKER_CONTENDERS, "pandas to_excel")


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    db = database(plan.default_size)
    label = f"{PENDING.report_type} @ {plan.default_size:,} transactions"
    rows = count_rows(db, PENDING)
    print(f"formats: {label}: {rows:,} rows", flush=True)
    found: dict[str, list[Outcome]] = {name: [] for name in CONTENDERS}
    for rep in range(plan.reps):
        for name in rotate(CONTENDERS, rep):
            outcome = contender(name, redis_url, db, PENDING)
            print(f"  {name:24} {outcome.seconds:8.2f} s {outcome.peak_rss_kib / 1024:9.1f} MiB")
            found[name].append(outcome)
    results = [summary(label, name, found[name]) for name in CONTENDERS]
    small = f"{THOUSAND.report_type} @ {plan.default_size:,} transactions"
    for kind in ("C", "Python"):
        outcome = contender(f"worker {kind} xlsx", redis_url, db, THOUSAND)
        results.append(summary(small, f"worker {kind} xlsx", [outcome]))
    return results


def contender(name: str, redis_url: str, db: Path, case: Case) -> Outcome:
    if name == "pandas to_excel":
        return by_pandas(db, case)
    _, kind, output = name.split(" ")
    return by_worker(kind.lower(), redis_url, db, case, *OUTPUTS[output])


def summary(case: str, name: str, outcomes: list[Outcome]) -> Measurement:
    m = Measurement(bench="formats", case=case, contender=name, runs=len(outcomes))
    m.samples = [o.seconds for o in outcomes]
    m.seconds = median(m.samples)
    m.peak_rss_kib = max(o.peak_rss_kib for o in outcomes)
    m.rows = outcomes[0].rows
    m.bytes = outcomes[0].bytes
    return m


def by_worker(
    kind: str, redis_url: str, db: Path, case: Case, formato: str, compressao: str
) -> Outcome:
    """Push one task of that format, time it until `concluido`; peak RSS of the worker."""
    out = WORK / uuid.uuid4().hex[:8]
    setup = workers.Setup(redis_url, f"bench_{uuid.uuid4().hex[:8]}", db, out)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(setup.queue)
    task_id = new_task_id()
    file = file_name(case.report_type, task_id, formato=formato, compressao=compressao)
    message = Message(task_id, case.report_type, case.params, file, formato=formato,
                      compressao=compressao)  # fmt: skip
    with workers.running(kind, setup) as (proc,):
        started = time.perf_counter()
        broker.enqueue(client, keys, [message])
        fields = broker.wait_final(client, keys, task_id, TASK_TIMEOUT_S)
        seconds = time.perf_counter() - started
        rss = peak_rss_kib(proc.pid)
    client.close()
    if fields.get(F.STATUS) != "concluido":
        raise RuntimeError(f"worker {kind} {formato}/{compressao} failed: {fields.get(F.ERROR)}")
    shutil.rmtree(out)
    return Outcome(seconds, rss, int(fields[F.ROWS]), int(fields[F.BYTES]))


def by_pandas(db: Path, case: Case) -> Outcome:
    """read_sql + to_excel (XlsxWriter engine) inside the process, after the imports."""
    out = WORK / uuid.uuid4().hex[:8]
    out.mkdir(parents=True)
    target = out / "export.xlsx"
    report = out / "pandas.json"
    argv = [sys.executable, "-m", "bench.pandas_export", str(db), case.report_type,
            json.dumps(case.params), str(target)]  # fmt: skip
    done = run_process(argv, stdout=report)
    if done.returncode != 0:
        raise RuntimeError("pandas to_excel failed")
    inside = json.loads(report.read_text())
    size = target.stat().st_size
    shutil.rmtree(out)
    return Outcome(float(inside["seconds"]), done.peak_rss_kib, int(inside["rows"]), size)

"""Benchmark 6, PostgreSQL: loading it with `popular_banco.py --url`, and reports read from it.

A private PostgreSQL 15 (relatorios/postgres_server.py, with PostgreSQL's own durability
settings) is started for the run. `popular_banco.py --url` is timed whole, as a user runs it
(the same rows as the SQLite file, COPY, keys and indexes, ANALYZE); the database it loads is
then read by each contender:

- the C worker and the Python worker, end to end (task pushed → `concluido`), with DATABASE_URL;
- `psql -c "\\copy (…) to stdout with (format csv, header)"` into a file: PostgreSQL writing its
  own CSV, the floor. `\\copy` binds no parameter, so its SQL has the benchmark's own constant
  values written in (this harness's constants, never a user's input);
- `pandas.read_sql` + `to_csv` (the whole result in memory first).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import redis

from bench import broker, workers
from bench.export import PENDING, THOUSAND, Case, Outcome
from bench.measure import REPO, VAR, median, peak_rss_kib, rotate, run_process
from bench.plan import Plan
from bench.results import Measurement
from relatorios import postgres_server
from relatorios.catalog import load_report
from relatorios.protocol import SOURCE_POSTGRESQL, F, Keys, ParamValue
from relatorios.sql_params import to_numbered

WORK = VAR / "pg-work"
TASK_TIMEOUT_S = 1800
LOAD = "popular_banco.py --url"
CONTENDERS = ("worker C", "worker Python", "psql \\copy", "pandas")
# Every transaction of the database, by date: as many rows as the database has transactions.
EVERYTHING = Case("TRANSACOES_POR_PERIODO", {"data_inicio": "2000-01-01", "data_fim": "2099-12-31"})


def pg_sql(case: Case) -> str:
    return load_report(REPO / "catalog" / f"{case.report_type}.sql").sql_for(SOURCE_POSTGRESQL)


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    server = postgres_server.start(durable=True)
    try:
        server.sql("CREATE DATABASE empresa")
        url = server.url(db="empresa")
        results = [_load(plan, url)]
        size = plan.dbgen_transactions
        for case in (PENDING, EVERYTHING):
            results += _measure(plan, redis_url, url, size, case, CONTENDERS)
        results += _measure(plan, redis_url, url, size, THOUSAND, ("worker C", "worker Python"))
        return results
    finally:
        server.remove()
        shutil.rmtree(WORK, ignore_errors=True)


def _load(plan: Plan, url: str) -> Measurement:
    """`popular_banco.py --url` (replacing the tables each time); the last load is kept."""
    argv = [sys.executable, str(REPO / "popular_banco.py"), "--url", url, "--force"]
    argv += ["--transacoes", str(plan.dbgen_transactions), "--sem-progresso"]
    samples, rss = [], 0
    for _ in range(plan.reps):
        done = run_process(argv)
        if done.returncode != 0:
            raise RuntimeError(f"popular_banco.py --url exited with code {done.returncode}")
        print(f"  {LOAD:24} {done.seconds:8.1f} s {done.peak_rss_kib / 1024:8.1f} MiB", flush=True)
        samples.append(done.seconds)
        rss = max(rss, done.peak_rss_kib)
    m = Measurement("postgres", f"{plan.dbgen_transactions:,} transactions", LOAD)
    m.runs, m.samples, m.seconds = len(samples), samples, median(samples)
    m.peak_rss_kib, m.rows = rss, plan.dbgen_transactions
    m.note = "COPY FROM STDIN, keys, indexes, ANALYZE"
    return m


def _measure(
    plan: Plan, redis_url: str, url: str, size: int, case: Case, names: tuple[str, ...]
) -> list[Measurement]:
    rows = _count(url, case)  # also warms the server's cache before the first timed run
    label = f"{case.report_type} @ {size:,} transactions"
    print(f"postgres: {label}: {rows:,} rows", flush=True)
    found: dict[str, list[Outcome]] = {name: [] for name in names}
    for rep in range(plan.reps):
        for name in rotate(names, rep):
            if name == "worker C" and not workers.available("c"):
                continue
            if name.startswith("worker"):
                kind = "c" if name == "worker C" else "python"
                outcome = _by_worker(kind, redis_url, url, case)
            elif name == "pandas":
                outcome = _by_pandas(url, case)
            else:
                outcome = _by_psql(url, case, rows)
            print(f"  {name:14} {outcome.seconds:8.2f} s {outcome.peak_rss_kib / 1024:9.1f} MiB")
            found[name].append(outcome)
    results = []
    for name in names:
        m = Measurement(bench="postgres", case=label, contender=name, runs=len(found[name]))
        if found[name]:
            m.samples = [o.seconds for o in found[name]]
            m.seconds = median(m.samples)
            m.peak_rss_kib = max(o.peak_rss_kib for o in found[name])
            m.rows, m.bytes = found[name][0].rows, found[name][0].bytes
        else:
            m.note = "not built (app/build/worker missing)"
        results.append(m)
    return results


def _count(url: str, case: Case) -> int:
    sql, names = to_numbered(pg_sql(case))
    with psycopg.connect(url) as conn:
        cur = psycopg.RawCursor(conn)
        cur.execute(f"SELECT count(*) FROM ({sql}) AS q", [case.params[n] for n in names])
        found = cur.fetchone()
    return int(found[0]) if found else 0


def _by_worker(kind: str, redis_url: str, url: str, case: Case) -> Outcome:
    out = _fresh_dir()
    setup = workers.Setup(redis_url, f"bench_{uuid.uuid4().hex[:8]}", out / "none.db", out, url)
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
        raise RuntimeError(f"worker {kind} failed on PostgreSQL: {fields.get(F.ERROR)}")
    shutil.rmtree(out)
    return Outcome(seconds, rss, int(fields[F.ROWS]), int(fields[F.BYTES]))


def literal(value: ParamValue) -> str:
    """A constant of this harness as SQL text (for `\\copy`, which binds nothing)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def psql_command(case: Case) -> str:
    sql, names = to_numbered(pg_sql(case))
    for number in range(len(names), 0, -1):  # $10 before $1
        sql = sql.replace(f"${number}", literal(case.params[names[number - 1]]))
    one_line = " ".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    return f"\\copy ({one_line}) to stdout with (format csv, header)"


def _by_psql(url: str, case: Case, rows: int) -> Outcome:
    out = _fresh_dir()
    csv_path = out / "export.csv"
    psql = str(postgres_server.bin_dir() / "psql")
    done = run_process([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", psql_command(case)],
                       stdout=csv_path)  # fmt: skip
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, "psql \\copy")
    size = csv_path.stat().st_size
    shutil.rmtree(out)
    return Outcome(done.seconds, done.peak_rss_kib, rows, size)


def _by_pandas(url: str, case: Case) -> Outcome:
    out = _fresh_dir()
    csv_path, report = out / "export.csv", out / "pandas.json"
    argv = [sys.executable, "-m", "bench.pandas_export", url, case.report_type]
    done = run_process([*argv, json.dumps(case.params), str(csv_path)], stdout=report)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, "pandas")
    inside = json.loads(report.read_text())
    size = csv_path.stat().st_size
    shutil.rmtree(out)
    return Outcome(float(inside["seconds"]), done.peak_rss_kib, int(inside["rows"]), size)


def _fresh_dir() -> Path:
    out = WORK / uuid.uuid4().hex[:8]
    out.mkdir(parents=True)
    return out

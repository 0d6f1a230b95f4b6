"""Benchmark 4, database generation: `popular_banco.py` against a Faker-per-row loop.

`popular_banco.py --transacoes N` is timed whole (start-up, pools, bulk load, indexes), as a user
runs it. The Faker-per-row loop is `time_faker_per_row` of bench/dbgen_vs_faker.py (Faker called
for every value of every transaction, batched inserts): it runs on a sample, in its own process,
and its time is extrapolated to N rows; it is not charged for indexes, so the ratio favours it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from bench.measure import REPO, VAR, median, rotate, run_process
from bench.plan import Plan
from bench.results import Measurement

WORK = VAR / "dbgen"
OURS = "popular_banco.py"
FAKER = "Faker per row (extrapolated)"
FAKER_LOOP = """
import json, sys
from pathlib import Path
from bench.dbgen_vs_faker import time_faker_per_row
seconds = time_faker_per_row(Path(sys.argv[1]), 5000, int(sys.argv[2]), 42)
print(json.dumps({"seconds": seconds}))
"""


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    seconds: dict[str, list[float]] = {OURS: [], FAKER: []}
    rss: dict[str, int] = {OURS: 0, FAKER: 0}
    for rep in range(plan.reps):
        for name in rotate([OURS, FAKER], rep):
            if name == OURS:
                spent, peak = _ours(plan.dbgen_transactions)
            else:
                spent, peak = _faker(plan.faker_sample, plan.dbgen_transactions)
            print(f"  {name:30} {spent:8.1f} s {peak / 1024:8.1f} MiB", flush=True)
            seconds[name].append(spent)
            rss[name] = max(rss[name], peak)
    _keep_database(plan.dbgen_transactions)
    shutil.rmtree(WORK, ignore_errors=True)
    case = f"{plan.dbgen_transactions:,} transactions"
    results = []
    for name in (OURS, FAKER):
        m = Measurement("dbgen", case, name, runs=len(seconds[name]), rows=plan.dbgen_transactions)
        m.samples = seconds[name]
        m.seconds = median(seconds[name])
        m.peak_rss_kib = rss[name]
        if name == FAKER:
            m.note = f"sample of {plan.faker_sample:,} rows, extrapolated"
        results.append(m)
    return results


def _ours(transactions: int) -> tuple[float, int]:
    target = WORK / "empresa.db"
    argv = [sys.executable, str(REPO / "popular_banco.py"), "--transacoes", str(transactions)]
    argv += ["--saida", str(target), "--force", "--sem-progresso"]
    done = run_process(argv)
    if done.returncode != 0:
        raise RuntimeError(f"popular_banco.py exited with code {done.returncode}")
    return done.seconds, done.peak_rss_kib


def _faker(sample: int, transactions: int) -> tuple[float, int]:
    report = WORK / "faker.json"
    argv = [sys.executable, "-c", FAKER_LOOP, str(WORK), str(sample)]
    done = run_process(argv, stdout=report)
    if done.returncode != 0:
        raise RuntimeError(f"the Faker loop exited with code {done.returncode}")
    inside = json.loads(report.read_text())
    return float(inside["seconds"]) * transactions / sample, done.peak_rss_kib


def _keep_database(transactions: int) -> None:
    """Same seed, same content: the database just timed becomes the cached one of that size."""
    built = WORK / "empresa.db"
    cached = VAR / f"transacoes-{transactions}.db"
    if built.exists() and not cached.exists():
        os.replace(built, cached)

"""Benchmark 5, big report: every transaction of the largest database, by the C worker.

The specification's "a 50 GB report in a few MB of RAM", at the size this machine's disk and time
allow: TRANSACOES_POR_PERIODO over all dates of a 25,000,000-transaction database (a few GB of
CSV), with the worker's peak RSS. The CSV is deleted after each run.
"""

from __future__ import annotations

import shutil

from bench import export, workers
from bench.measure import VAR, median
from bench.plan import Plan, database
from bench.results import Measurement

BYTES_PER_ROW = 120  # generous estimate of one CSV row, for the free-space check


def run(plan: Plan, redis_url: str) -> list[Measurement]:
    db = database(plan.big_size)
    case = export.EVERYTHING
    label = f"{case.report_type} (all dates) @ {plan.big_size:,} transactions"
    m = Measurement("bigreport", label, "worker C")
    if not workers.available("c"):
        m.note = "not built (app/build/worker missing)"
        return [m]
    free = shutil.disk_usage(VAR).free
    needed = plan.big_size * BYTES_PER_ROW * 2
    if free < needed:
        m.note = f"not run: {free / 1e9:.0f} GB free, about {needed / 1e9:.0f} GB needed"
        return [m]
    outcomes = []
    for _ in range(plan.reps):
        outcome = export.by_worker("c", redis_url, db, case)
        print(
            f"  worker C {outcome.rows:,} rows, {outcome.bytes / 1e9:.2f} GB in "
            f"{outcome.seconds:.1f} s, peak RSS {outcome.peak_rss_kib / 1024:.1f} MiB",
            flush=True,
        )
        outcomes.append(outcome)
    m.runs = len(outcomes)
    m.samples = [o.seconds for o in outcomes]
    m.seconds = median(m.samples)
    m.peak_rss_kib = max(o.peak_rss_kib for o in outcomes)
    m.rows = outcomes[0].rows
    m.bytes = outcomes[0].bytes
    return [m]

"""What a run measures (full or quick), and the cached benchmark databases under var/bench/."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import VAR
from relatorios.dbgen import generate

DEFAULT_TRANSACTIONS = 5_000_000  # the specification's database (popular_banco.py's default)


@dataclass(frozen=True)
class Plan:
    quick: bool
    reps: int  # repetitions of every measurement; the median is reported
    export_sizes: tuple[int, ...]  # transactions of each database the export runs on
    default_size: int  # the database of the C worker issue's targets
    big_size: int  # the database of the big report (TRANSACOES_POR_PERIODO over all dates)
    ingest_clients: int
    ingest_seconds: int
    tiny_tasks: int
    tiny_size: int  # a database so small that each tiny report has a few rows
    dbgen_transactions: int
    faker_sample: int  # rows of the Faker-per-row loop, extrapolated to dbgen_transactions

    @property
    def label(self) -> str:
        return "quick" if self.quick else "full"


FULL = Plan(
    quick=False,
    reps=3,
    export_sizes=(500_000, DEFAULT_TRANSACTIONS, 25_000_000),
    default_size=DEFAULT_TRANSACTIONS,
    big_size=25_000_000,
    ingest_clients=1000,
    ingest_seconds=10,
    tiny_tasks=10_000,
    tiny_size=10_000,
    dbgen_transactions=DEFAULT_TRANSACTIONS,
    faker_sample=20_000,
)

QUICK = Plan(
    quick=True,
    reps=1,
    export_sizes=(200_000,),
    default_size=200_000,
    big_size=200_000,
    ingest_clients=1000,
    ingest_seconds=3,
    tiny_tasks=1_000,
    tiny_size=10_000,
    dbgen_transactions=200_000,
    faker_sample=2_000,
)


def database(transactions: int) -> Path:
    """The generated database of `transactions` rows (seed 42), built once and then reused."""
    path = VAR / f"transacoes-{transactions}.db"
    if not path.exists():
        started = time.perf_counter()
        print(f"  generating {path.name} (once; it is cached)...", flush=True)
        generate(path, transactions=transactions, progress=False)
        print(f"  {path.name} ready in {time.perf_counter() - started:.0f} s", flush=True)
    return path

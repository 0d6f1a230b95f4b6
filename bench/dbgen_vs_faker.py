"""Time the generator against the obvious way (Faker called for every transaction).

    .venv/bin/python bench/dbgen_vs_faker.py                   # 5,000,000 transactions
    .venv/bin/python bench/dbgen_vs_faker.py --transacoes 1000000 --amostra 20000 --json

The generator builds the full database (indexes included) in a temporary folder. The Faker loop
would take an hour for millions of rows, so it runs on a sample (`--amostra`) and its time is
extrapolated linearly (generous to it: the insert is batched and the indexes are not counted).
Exit status 1 if the generator is not at least 10x faster or over the time budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faker import Faker

from relatorios.dbgen import generate
from relatorios.dbgen.load import LOAD_PRAGMAS, schema_statements
from relatorios.dbgen.pools import CATEGORIES, PERIOD_END, PERIOD_START

# Faker wants an OrderedDict for weighted choices (plain dicts depend on PYTHONHASHSEED).
STATUSES = OrderedDict([("PAGO", 0.7), ("PENDENTE", 0.2), ("CANCELADO", 0.1)])


@dataclass(frozen=True)
class Result:
    transactions: int
    employees: int
    generator_s: float
    generator_cpu_s: float
    size_mb: float
    faker_sample: int
    faker_sample_s: float
    faker_extrapolated_s: float
    speedup: float
    load_average: float


def time_generator(
    folder: Path, employees: int, transactions: int, seed: int
) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, size in MB) of one full generate()."""
    path = folder / "empresa.db"
    wall, cpu = time.perf_counter(), time.process_time()
    generate(path, employees=employees, transactions=transactions, seed=seed, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = path.stat().st_size / 1e6
    path.unlink()
    return wall, cpu, size


def time_faker_per_row(folder: Path, employees: int, rows: int, seed: int) -> float:
    """Seconds to make and insert `rows` transactions calling Faker for every value of every row."""
    fake = Faker("pt_BR")
    fake.seed_instance(seed)
    path = folder / "faker.db"
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in LOAD_PRAGMAS:
        con.execute(f"PRAGMA {pragma}")
    for statement in schema_statements()[0]:
        con.execute(statement)
    con.execute("PRAGMA foreign_keys = OFF")
    categories = list(CATEGORIES)
    started = time.perf_counter()
    con.execute("BEGIN")
    batch: list[tuple[object, ...]] = []
    for i in range(1, rows + 1):
        categoria = fake.random_element(categories)
        batch.append((
            i,
            fake.random_int(1, employees),
            fake.date_between(PERIOD_START, PERIOD_END).isoformat(),
            fake.random_int(800, 2_500_000),
            categoria,
            f'{categoria}: "{fake.company()}", {fake.city()} — {fake.sentence(nb_words=4)}',
            fake.random_element(STATUSES),
        ))  # fmt: skip
        if len(batch) == 10_000:
            _insert(con, batch)
    _insert(con, batch)
    con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    path.unlink()
    return elapsed


def _insert(con: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    con.executemany("INSERT INTO transacoes VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    batch.clear()


def measure(transactions: int, employees: int, sample: int, seed: int, folder: Path) -> Result:
    with tempfile.TemporaryDirectory(dir=folder) as temp:
        wall, cpu, size = time_generator(Path(temp), employees, transactions, seed)
        faker_s = time_faker_per_row(Path(temp), employees, sample, seed)
    extrapolated = faker_s * transactions / sample
    return Result(
        transactions=transactions,
        employees=employees,
        generator_s=round(wall, 2),
        generator_cpu_s=round(cpu, 2),
        size_mb=round(size),
        faker_sample=sample,
        faker_sample_s=round(faker_s, 2),
        faker_extrapolated_s=round(extrapolated, 1),
        speedup=round(extrapolated / wall, 1),
        load_average=round(os.getloadavg()[0], 2),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transacoes", type=int, default=5_000_000)
    parser.add_argument("--funcionarios", type=int, default=5000)
    parser.add_argument("--amostra", type=int, default=20_000, help="rows of the Faker loop")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pasta", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--limite", type=float, default=20.0, help="time budget, seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = measure(args.transacoes, args.funcionarios, args.amostra, args.seed, args.pasta)
    if args.json:
        print(json.dumps(asdict(r)))
    else:
        print(
            f"generator:      {r.transactions:,} transactions + indexes in {r.generator_s} s "
            f"(CPU {r.generator_cpu_s} s, {r.size_mb} MB, load average {r.load_average})"
        )
        print(
            f"Faker per row:  {r.faker_sample:,} rows in {r.faker_sample_s} s "
            f"-> {r.faker_extrapolated_s} s for {r.transactions:,} (extrapolated)"
        )
        print(f"speedup:        {r.speedup}x")  # fmt: skip
    ok = r.speedup >= 10 and r.generator_s <= args.limite
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

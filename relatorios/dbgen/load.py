"""Bulk load of an empty SQLite database: schema, pools, transactions inside SQLite, indexes.

Millions of transactions never pass through Python one by one. Each day of the period is one
`INSERT ... SELECT` over a table of pre-drawn random numbers (`temp.sorteio`, seeded in Python),
re-scrambled for each day by an odd multiplier and an offset, and joined by rowid with the pool
of descriptions (`temp.despesa`). Scanning a table is much cheaper per row than a recursive CTE,
and the whole load is one transaction with journaling off; indexes are built afterwards.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from importlib import resources

from faker import Faker

from relatorios.dbgen import calendar, pools
from relatorios.dbgen.progress import Progress

# Random numbers are 31-bit so that products of two of them fit SQLite's 64-bit integers
# (an overflowing integer product would silently become a float).
BITS = 31
MASK = (1 << BITS) - 1
# Rows of temp.sorteio, hence the largest INSERT ... SELECT (one day is split if bigger).
DRAW_ROWS = 65_536
EXPENSE_POOL_SIZE = 4_096
STATUS_SHARES = (("PAGO", 0.70), ("PENDENTE", 0.20), ("CANCELADO", 0.10))

LOAD_PRAGMAS = (
    "journal_mode = OFF",  # a failed build is thrown away whole: nothing to roll back
    "synchronous = OFF",
    "locking_mode = EXCLUSIVE",
    "cache_size = -262144",  # 256 MiB
    "temp_store = MEMORY",  # the pools of temp.* are read for every row
    "foreign_keys = OFF",  # references are valid by construction; the tests check them
    "ignore_check_constraints = ON",  # same; checking them costs more than inserting the row
)
# CREATE INDEX sorts in runs of about cache_size bytes, merged at the end. Measured here for
# 5M rows: runs of ~12 MiB (close to the CPU caches) in temp files take about half the time of
# one big in-memory run, and helper threads (PRAGMA threads) only made it slower on two cores.
# temp_store cannot change inside a transaction, hence a second one for the indexes.
INDEX_PRAGMAS = ("temp_store = FILE", "cache_size = -12288", "threads = 0")
FINAL_PRAGMAS = ("ignore_check_constraints = OFF", "journal_mode = DELETE")
# The default: readers fetch rows by rowid at random (index lookups), and bigger pages would
# make each such read copy more.
PAGE_SIZE = 4096

# One day of transactions. Ids are left to SQLite (max + 1, with no per-row uniqueness check):
# days are inserted in date order, so they come out as planned (chunk.first_id..).
# u -> u*u skews values toward the low end of each category's range, as real expenses are.
INSERT_DAY = f"""
INSERT INTO transacoes (funcionario_id, data, valor_centavos, categoria, descricao, status)
SELECT
    1 + ((((s.r1 * :a + :b) & {MASK}) * :elegiveis) >> {BITS}),
    :data,
    d.valor_min + ((((((s.r3 * :a + :b) & {MASK}) * ((s.r3 * :a + :b) & {MASK})) >> {BITS})
                    * d.valor_faixa) >> {BITS}),
    d.categoria,
    d.descricao,
    CASE
        WHEN ((s.r4 * :a + :b) & {MASK}) < :ate_pago THEN 'PAGO'
        WHEN ((s.r4 * :a + :b) & {MASK}) < :ate_pendente THEN 'PENDENTE'
        ELSE 'CANCELADO'
    END
FROM temp.sorteio AS s
CROSS JOIN temp.despesa AS d ON d.id = ((((s.r2 * :a + :b) & {MASK}) * :despesas) >> {BITS})
WHERE s.n < :count
"""


def schema_statements() -> tuple[list[str], list[str]]:
    """relatorios/schema.sql split into (tables and other statements, CREATE INDEX statements)."""
    text = resources.files("relatorios").joinpath("schema.sql").read_text(encoding="utf-8")
    tables: list[str] = []
    indexes: list[str] = []
    for statement in _statements(text):
        code = "\n".join(
            line for line in statement.splitlines() if not line.lstrip().startswith("--")
        ).strip()
        words = code.upper().split()
        is_index = words[:2] == ["CREATE", "INDEX"] or words[:3] == ["CREATE", "UNIQUE", "INDEX"]
        (indexes if is_index else tables).append(code)
    return tables, indexes


def _statements(text: str) -> Iterator[str]:
    buffer = ""
    for line in text.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


def load(
    con: sqlite3.Connection,
    employees: int,
    transactions: int,
    seed: int,
    progress: Progress,
    indexes: bool = True,
) -> None:
    """Fill the empty database of `con` (autocommit connection) and leave it ready to read.

    `indexes=False` skips them: the database is only a step towards another one (PostgreSQL)."""
    rng = random.Random(seed)
    fake = pools.new_faker(seed)
    tables, index_statements = schema_statements()
    con.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    for pragma in LOAD_PRAGMAS:
        con.execute(f"PRAGMA {pragma}")
    con.execute("BEGIN")
    for statement in tables:
        con.execute(statement)
    # schema.sql turns foreign keys on for whoever runs it; the load wants them off (see above).
    con.execute("PRAGMA foreign_keys = OFF")
    progress.phase("Funcionários", employees)
    hire_dates = _load_staff(con, employees, rng, fake)
    progress.advance(employees)
    progress.phase("Transações", transactions)
    _load_transactions(con, transactions, hire_dates, rng, fake, progress)
    con.execute("COMMIT")
    if indexes:
        progress.phase("Índices", len(index_statements))
        _build_indexes(con, index_statements, progress)
    for pragma in FINAL_PRAGMAS:
        con.execute(f"PRAGMA {pragma}")


def _load_staff(
    con: sqlite3.Connection, employees: int, rng: random.Random, fake: Faker
) -> list[str]:
    """Departments and employees; returns the hire dates in employee id order."""
    staff = pools.employees(employees, rng, fake)
    con.executemany(
        "INSERT INTO departamentos (id, nome, centro_custo) VALUES (?, ?, ?)", pools.departments()
    )
    con.executemany(
        "INSERT INTO funcionarios (id, nome, email, cargo, departamento_id, data_admissao,"
        " salario_centavos) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (e.id, e.nome, e.email, e.cargo, e.departamento_id, e.data_admissao,
             e.salario_centavos)
            for e in staff
        ],
    )  # fmt: skip
    return [e.data_admissao for e in staff]


def _load_transactions(
    con: sqlite3.Connection,
    transactions: int,
    hire_dates: list[str],
    rng: random.Random,
    fake: Faker,
    progress: Progress,
) -> None:
    _load_pools(con, rng, fake)
    thresholds = _status_thresholds()
    for chunk in calendar.plan(transactions, hire_dates, rng, DRAW_ROWS):
        con.execute(
            INSERT_DAY,
            {
                "count": chunk.count,
                "data": chunk.data,
                "elegiveis": chunk.elegiveis,
                "a": rng.getrandbits(BITS) | 1,  # odd: a bijection of 31-bit numbers
                "b": rng.getrandbits(BITS),
                "despesas": EXPENSE_POOL_SIZE,
                **thresholds,
            },
        )
        progress.advance(chunk.count)
    con.execute("DROP TABLE temp.sorteio")
    con.execute("DROP TABLE temp.despesa")
    last_id = con.execute("SELECT coalesce(max(id), 0) FROM transacoes").fetchone()[0]
    if last_id != transactions:  # ids are implicit: make sure they are 1..transactions
        raise RuntimeError(f"expected {transactions} transaction ids, the last one is {last_id}")


def _build_indexes(con: sqlite3.Connection, indexes: list[str], progress: Progress) -> None:
    for pragma in INDEX_PRAGMAS:
        con.execute(f"PRAGMA {pragma}")
    con.execute("BEGIN")
    for statement in indexes:
        con.execute(statement)
        progress.advance(1)
    con.execute("COMMIT")


def _load_pools(con: sqlite3.Connection, rng: random.Random, fake: Faker) -> None:
    con.execute(
        "CREATE TEMP TABLE despesa (id INTEGER PRIMARY KEY, categoria TEXT, descricao TEXT,"
        " valor_min INTEGER, valor_faixa INTEGER)"
    )
    expenses = pools.expenses(EXPENSE_POOL_SIZE, rng, fake)
    # The pool's size is rounded per category; cycle it to exactly EXPENSE_POOL_SIZE rows.
    con.executemany(
        "INSERT INTO temp.despesa VALUES (?, ?, ?, ?, ?)",
        [
            (i, e.categoria, e.descricao, e.valor_min_centavos,
             e.valor_max_centavos - e.valor_min_centavos)
            for i, e in ((i, expenses[i % len(expenses)]) for i in range(EXPENSE_POOL_SIZE))
        ],
    )  # fmt: skip
    con.execute(
        "CREATE TEMP TABLE sorteio (n INTEGER PRIMARY KEY, r1 INTEGER, r2 INTEGER,"
        " r3 INTEGER, r4 INTEGER)"
    )
    bits = rng.getrandbits
    con.executemany(
        "INSERT INTO temp.sorteio VALUES (?, ?, ?, ?, ?)",
        [(n, bits(BITS), bits(BITS), bits(BITS), bits(BITS)) for n in range(DRAW_ROWS)],
    )


def _status_thresholds() -> dict[str, int]:
    """Upper bounds of PAGO and PENDENTE on the 31-bit draw (CANCELADO is the rest)."""
    pago = STATUS_SHARES[0][1]
    pendente = pago + STATUS_SHARES[1][1]
    return {"ate_pago": round(pago * (1 << BITS)), "ate_pendente": round(pendente * (1 << BITS))}

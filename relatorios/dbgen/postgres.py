"""`popular_banco.py --url postgresql://…`: the same data as the SQLite file, in PostgreSQL.

The rows are generated exactly as for the SQLite file (relatorios/dbgen/load.py, same seed, same
rows), into a temporary SQLite file without indexes, then streamed into PostgreSQL with
`COPY … FROM STDIN`. Everything happens in one transaction: the tables are replaced (with
`substituir`) or created, filled, given their keys and indexes (relatorios/schema_postgresql.sql)
and committed together, so readers see the old tables or the new ones, never half of them.
"""

from __future__ import annotations

import sqlite3
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from relatorios.dbgen.load import load
from relatorios.dbgen.progress import Progress, make_progress
from relatorios.postgres import redacted

__all__ = ["AlreadyLoaded", "generate_postgres", "redacted"]

# Tables in load order, with their columns (the same names in both schemas).
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("departamentos", ("id", "nome", "centro_custo")),
    ("funcionarios", ("id", "nome", "email", "cargo", "departamento_id", "data_admissao",
                      "salario_centavos")),
    ("transacoes", ("id", "funcionario_id", "data", "valor_centavos", "categoria", "descricao",
                    "status")),
)  # fmt: skip
FETCH_ROWS = 20_000


class AlreadyLoaded(Exception):
    """The database already has the tables and `replace` was not asked for."""


def schema_statements() -> tuple[list[str], list[str]]:
    """relatorios/schema_postgresql.sql as (CREATE TABLE statements, keys and indexes)."""
    text = resources.files("relatorios").joinpath("schema_postgresql.sql").read_text("utf-8")
    tables: list[str] = []
    after: list[str] = []
    for block in text.split("\n\n"):
        code = "\n".join(ln for ln in block.splitlines() if not ln.lstrip().startswith("--"))
        if code.strip():
            (tables if code.lstrip().upper().startswith("CREATE TABLE") else after).append(code)
    return tables, after


def generate_postgres(
    url: str,
    employees: int = 5000,
    transactions: int = 5_000_000,
    seed: int = 42,
    progress: bool = True,
    replace: bool = False,
) -> None:
    """Load the database `url` names. Raises AlreadyLoaded, ValueError or psycopg.Error."""
    import psycopg  # only this command needs it: `pip install faker` runs the SQLite path

    if employees < 1:
        raise ValueError(f"employees must be at least 1, got {employees}")
    if transactions < 0:
        raise ValueError(f"transactions must not be negative, got {transactions}")
    with (
        psycopg.connect(url) as pg,
        tempfile.TemporaryDirectory(prefix="popular-banco-") as folder,
        make_progress(progress) as bar,
    ):
        if _has_tables(pg) and not replace:
            raise AlreadyLoaded
        lite = sqlite3.connect(Path(folder) / "empresa.db", isolation_level=None)
        try:
            load(lite, employees, transactions, seed, bar, indexes=False)
            _copy_all(pg, lite, bar)
        finally:
            lite.close()
        pg.commit()
        pg.autocommit = True
        pg.execute("ANALYZE departamentos, funcionarios, transacoes")  # the planner's statistics


def _has_tables(pg: Any) -> bool:
    found = pg.execute("SELECT to_regclass('transacoes') IS NOT NULL").fetchone()
    return bool(found and found[0])


def _copy_all(pg: Any, lite: sqlite3.Connection, bar: Progress) -> None:
    tables, after = schema_statements()
    for name, _ in reversed(TABLES):
        pg.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    for statement in tables:
        pg.execute(statement)
    total = sum(lite.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name, _ in TABLES)
    bar.phase("Cópia para o PostgreSQL", total)
    for name, columns in TABLES:
        _copy_table(pg, lite, name, columns, bar)
    bar.phase("Índices", len(after))
    for statement in after:
        pg.execute(statement)
        bar.advance(1)


def _csv_line(columns: tuple[str, ...], text: frozenset[str]) -> str:
    """SQLite expression of one row as a line of CSV for `COPY … (FORMAT csv)`: text columns
    always quoted (quotes doubled; commas and line breaks are then plain data), numbers and
    dates as they are. No value here is NULL, which CSV would write as an empty field."""
    fields = [f"'\"' || replace({c}, '\"', '\"\"') || '\"'" if c in text else c for c in columns]
    return " || ',' || ".join(fields) + " || char(10)"


def _copy_table(
    pg: Any, lite: sqlite3.Connection, name: str, columns: tuple[str, ...], bar: Progress
) -> None:
    """COPY one table in id order: SQLite writes each row as a CSV line, Python only joins
    blocks of them (one value per row crosses into Python)."""
    kinds = {row[1]: row[2] for row in lite.execute(f"PRAGMA table_info({name})")}
    text = frozenset(c for c in columns if kinds[c].upper() == "TEXT")
    lines = lite.cursor()
    lines.row_factory = None
    lite.text_factory = bytes  # UTF-8 from SQLite to PostgreSQL, never decoded on the way
    try:
        lines.execute(f"SELECT {_csv_line(columns, text)} FROM {name} ORDER BY id")
        sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        with pg.cursor() as cur, cur.copy(sql) as copy:
            while batch := lines.fetchmany(FETCH_ROWS):
                copy.write(b"".join(line for (line,) in batch))
                bar.advance(len(batch))
    finally:
        lite.text_factory = str

"""The database generator (`python popular_banco.py`): real runs on small sizes."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relatorios.catalog import Report, load_catalog
from relatorios.dbgen import calendar as dbgen_calendar
from relatorios.dbgen import generate
from relatorios.dbgen.load import schema_statements
from relatorios.dbgen.progress import LineProgress, RichProgress, make_progress

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "popular_banco.py"
EMPLOYEES = 200
TRANSACTIONS = 20_000
CATEGORIES = (
    "Viagem",
    "Alimentação",
    "Software",
    "Hardware",
    "Treinamento",
    "Material de escritório",
    "Hospedagem",
    "Transporte",
)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbgen") / "empresa.db"
    generate(path, employees=EMPLOYEES, transactions=TRANSACTIONS, seed=11, progress=False)
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    yield con
    con.close()


def scalar(con: sqlite3.Connection, sql: str, *params: object) -> Any:
    return con.execute(sql, params).fetchone()[0]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """`python popular_banco.py ARGS` from the repository root, without DB_PATH set."""
    env = {k: v for k, v in os.environ.items() if k != "DB_PATH"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- schema and constraints -------------------------------------------------------------------


def test_schema_declares_tables_foreign_keys_and_the_indexes_of_schema_sql(
    db: sqlite3.Connection,
) -> None:
    columns = {
        table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for table in ("departamentos", "funcionarios", "transacoes")
    }
    assert {"id", "nome"} <= columns["departamentos"]
    assert {
        "id",
        "nome",
        "email",
        "cargo",
        "departamento_id",
        "data_admissao",
        "salario_centavos",
    } <= columns["funcionarios"]
    assert {
        "id",
        "funcionario_id",
        "data",
        "valor_centavos",
        "categoria",
        "descricao",
        "status",
    } <= columns["transacoes"]
    fks = {
        table: {(row[2], row[3], row[4]) for row in db.execute(f"PRAGMA foreign_key_list({table})")}
        for table in ("funcionarios", "transacoes")
    }
    assert ("departamentos", "departamento_id", "id") in fks["funcionarios"]
    assert ("funcionarios", "funcionario_id", "id") in fks["transacoes"]
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_schema WHERE type='index'")}
    wanted = {re.findall(r"INDEX\s+(\w+)", sql)[0] for sql in schema_statements()[1]}
    assert wanted and wanted <= indexes


def test_database_is_consistent_and_a_normal_rollback_journal_file(db: sqlite3.Connection) -> None:
    assert scalar(db, "PRAGMA integrity_check") == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert scalar(db, "PRAGMA journal_mode") == "delete"


def test_check_constraints_are_enforced_after_the_load(db_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    copy.write_bytes(db_path.read_bytes())
    con = sqlite3.connect(copy)
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE transacoes SET status = 'ESTORNADO' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE transacoes SET valor_centavos = 0 WHERE id = 1")
    con.close()


# --- content ----------------------------------------------------------------------------------


def test_counts_are_the_requested_ones_with_contiguous_ids(db: sqlite3.Connection) -> None:
    assert db.execute("SELECT count(*), min(id), max(id) FROM funcionarios").fetchone() == (
        EMPLOYEES,
        1,
        EMPLOYEES,
    )
    assert db.execute("SELECT count(*), min(id), max(id) FROM transacoes").fetchone() == (
        TRANSACTIONS,
        1,
        TRANSACTIONS,
    )


def test_departments_are_at_least_twelve_including_engenharia_de_software(
    db: sqlite3.Connection,
) -> None:
    names = [row[0] for row in db.execute("SELECT nome FROM departamentos")]
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert "Engenharia de Software" in names
    assert (
        scalar(
            db,
            "SELECT count(*) FROM funcionarios AS f JOIN departamentos AS d"
            " ON d.id = f.departamento_id WHERE d.nome = 'Engenharia de Software'",
        )
        > 0
    )


def test_employees_look_brazilian_with_unique_ascii_emails(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT nome, email, cargo, salario_centavos FROM funcionarios").fetchall()
    names = [r[0] for r in rows]
    emails = [r[1] for r in rows]
    assert all(len(n.split()) >= 2 for n in names)
    assert any(re.search(r"[áéíóúâêôãõçÁÉÍÓÚÂÊÔÃÕÇ]", n) for n in names), "pt_BR names have accents"
    common = {"Silva", "Souza", "Costa", "Oliveira", "Santos", "Pereira", "Lima", "Gomes"}
    assert any(n.split()[-1] in common for n in names), "common Brazilian surnames"
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+@empresa\.com\.br", e) for e in emails)
    assert len({r[2] for r in rows}) > EMPLOYEES // 2, "job titles vary (Faker pt_BR jobs)"
    assert all(100_000 <= r[3] <= 4_000_000 for r in rows)


def test_dates_are_valid_span_2022_to_2025_and_never_precede_the_hire(
    db: sqlite3.Connection,
) -> None:
    assert scalar(db, "SELECT count(*) FROM transacoes WHERE date(data) IS NOT data") == 0
    assert (
        scalar(
            db, "SELECT count(*) FROM funcionarios WHERE date(data_admissao) IS NOT data_admissao"
        )
        == 0
    )
    years = {row[0] for row in db.execute("SELECT DISTINCT substr(data, 1, 4) FROM transacoes")}
    assert years == {"2022", "2023", "2024", "2025"}
    months_2025 = scalar(
        db, "SELECT count(DISTINCT substr(data, 1, 7)) FROM transacoes WHERE data LIKE '2025-%'"
    )
    assert months_2025 == 12
    before_hire = (
        "SELECT count(*) FROM transacoes AS t JOIN funcionarios AS f ON f.id = t.funcionario_id"
        " WHERE t.data < f.data_admissao"
    )
    assert scalar(db, before_hire) == 0
    # Ids follow the calendar, as in a real ledger.
    assert (
        scalar(
            db,
            "SELECT count(*) FROM transacoes AS a JOIN transacoes AS b"
            " ON b.id = a.id + 1 WHERE b.data < a.data",
        )
        == 0
    )


def test_statuses_are_about_70_20_10_and_values_positive(db: sqlite3.Connection) -> None:
    shares = {
        status: count / TRANSACTIONS
        for status, count in db.execute("SELECT status, count(*) FROM transacoes GROUP BY 1")
    }
    assert set(shares) == {"PAGO", "PENDENTE", "CANCELADO"}
    assert shares["PAGO"] == pytest.approx(0.70, abs=0.03)
    assert shares["PENDENTE"] == pytest.approx(0.20, abs=0.03)
    assert shares["CANCELADO"] == pytest.approx(0.10, abs=0.03)
    assert scalar(db, "SELECT min(valor_centavos) FROM transacoes") > 0
    assert scalar(db, "SELECT typeof(valor_centavos) FROM transacoes GROUP BY 1") == "integer"


def test_categories_are_realistic_and_descriptions_exercise_csv_quoting(
    db: sqlite3.Connection,
) -> None:
    categories = {row[0] for row in db.execute("SELECT DISTINCT categoria FROM transacoes")}
    assert set(CATEGORIES) <= categories
    for label, pattern in [
        ("comma", "%,%"),
        ("double quote", '%"%'),
        ("newline", "%\n%"),
        ("accent", "%ç%"),
    ]:
        count = scalar(db, "SELECT count(*) FROM transacoes WHERE descricao LIKE ?", pattern)
        assert count > 0, f"no description with a {label}"
    newline_share = scalar(db, "SELECT avg(instr(descricao, char(10)) > 0) FROM transacoes")
    assert newline_share < 0.05, "newlines are a small share"
    assert scalar(db, "SELECT count(DISTINCT descricao) FROM transacoes") > 1000


# --- catalog ----------------------------------------------------------------------------------


def report_params(report: Report) -> dict[str, object]:
    """Values for any report's parameters, by kind: the whole of 2025, the spec's department."""
    values: dict[str, object] = {}
    for p in report.params:
        if p.kind == "department":
            values[p.name] = "Engenharia de Software"
        elif p.kind == "date":
            values[p.name] = "2025-12-31" if "fim" in p.name else "2025-01-01"
        elif p.kind == "integer":
            values[p.name] = p.default if p.default is not None else 2025
        else:
            values[p.name] = p.default if p.default is not None else ""
    return values


def test_every_catalog_report_returns_rows_using_an_index(db: sqlite3.Connection) -> None:
    catalog = load_catalog(REPO / "catalog")
    assert {"GASTOS_POR_DEPARTAMENTO", "PAGAMENTOS_PENDENTES"} <= set(catalog)
    for name, report in catalog.items():
        params = report_params(report)
        plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + report.sql, params))
        assert not re.search(r"\bSCAN t\b(?! USING)", plan), (
            f"{name} reads every transaction: {plan}"
        )
        rows = db.execute(report.sql, params).fetchmany(5)
        assert rows, f"{name} returned no row with {params}"


def test_pending_payments_report_lists_every_pending_transaction(db: sqlite3.Connection) -> None:
    report = load_catalog(REPO / "catalog")["PAGAMENTOS_PENDENTES"]
    rows = db.execute(report.sql).fetchall()
    assert len(rows) == scalar(db, "SELECT count(*) FROM transacoes WHERE status = 'PENDENTE'")


# --- determinism ------------------------------------------------------------------------------


def content_digest(path: Path) -> str:
    con = sqlite3.connect(path)
    digest = hashlib.sha256()
    for table in ("departamentos", "funcionarios", "transacoes"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY id"):
            digest.update(repr(row).encode())
    con.close()
    return digest.hexdigest()


def test_same_seed_gives_the_same_database_and_another_seed_another(tmp_path: Path) -> None:
    digests = []
    for name, seed in [("a", 5), ("b", 5), ("c", 6)]:
        generate(
            tmp_path / f"{name}.db", employees=50, transactions=3000, seed=seed, progress=False
        )
        digests.append(content_digest(tmp_path / f"{name}.db"))
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_plan_splits_big_days_and_sums_to_the_exact_count() -> None:
    hires = sorted(["2010-05-01", "2023-02-01", "2024-07-15"])
    chunks = dbgen_calendar.plan(100_003, hires, random.Random(1), max_rows=50)
    assert sum(c.count for c in chunks) == 100_003
    assert all(0 < c.count <= 50 for c in chunks)
    assert [c.first_id for c in chunks] == [1, *(c.first_id + c.count for c in chunks[:-1])]
    assert [c.data for c in chunks] == sorted(c.data for c in chunks)
    assert {c.elegiveis for c in chunks if c.data < "2023-02-01"} == {1}
    assert {c.elegiveis for c in chunks if c.data >= "2024-07-15"} == {3}


# --- API --------------------------------------------------------------------------------------


def test_generate_rejects_bad_counts_and_accepts_zero_transactions(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "x.db", employees=0, transactions=10, progress=False)
    with pytest.raises(ValueError):
        generate(tmp_path / "x.db", employees=10, transactions=-1, progress=False)
    assert not (tmp_path / "x.db").exists()
    generate(tmp_path / "sub" / "zero.db", employees=3, transactions=0, progress=False)
    con = sqlite3.connect(tmp_path / "sub" / "zero.db")
    assert scalar(con, "SELECT count(*) FROM transacoes") == 0
    assert scalar(con, "SELECT count(*) FROM funcionarios") == 3
    con.close()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["zero.db"], "no temp left"


def test_progress_is_a_rich_bar_on_a_terminal_and_plain_lines_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = make_progress(True, screen)
    assert isinstance(bar, RichProgress)
    with bar:
        bar.phase("Transações", 10)
        bar.advance(10)
    assert "Transações" in screen.getvalue()

    log = io.StringIO()
    lines = make_progress(True, log)
    assert isinstance(lines, LineProgress)
    with lines:
        lines.phase("Transações", 1_000_000)
        for _ in range(4):
            lines.advance(250_000)
    assert log.getvalue().splitlines() == [
        "Transações: 0/1.000.000",
        "Transações: 250.000/1.000.000 (25%)",
        "Transações: 500.000/1.000.000 (50%)",
        "Transações: 750.000/1.000.000 (75%)",
        "Transações: 1.000.000/1.000.000 (100%)",
    ]


# --- the script -------------------------------------------------------------------------------


def test_help_is_in_portuguese_and_lists_the_flags() -> None:
    result = run_script("--help")
    assert result.returncode == 0
    for flag in ("--funcionarios", "--transacoes", "--seed", "--saida", "--force"):
        assert flag in result.stdout
    assert "mostra esta ajuda" in result.stdout and "semente" in result.stdout


def test_script_writes_data_empresa_db_by_default_with_only_faker(tmp_path: Path) -> None:
    # Block every third-party module but Faker: the quick start installs only Faker.
    blocked = ["rich", "fastapi", "pydantic", "pydantic_settings", "redis", "uvicorn", "httpx"]
    code = (
        "import runpy, sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"sys.argv = ['popular_banco.py', '--funcionarios', '30', '--transacoes', '2000']\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DB_PATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "empresa.db").is_file()
    assert "Banco gerado: data/empresa.db" in result.stdout
    assert "Transações: 2.000/2.000 (100%)" in result.stderr, "plain progress without Rich"


def test_existing_database_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    target = tmp_path / "empresa.db"
    target.write_text("banco antigo")
    args = ["--funcionarios", "20", "--transacoes", "500", "--saida", str(target)]
    kept = run_script(*args)
    assert kept.returncode == 0
    assert "já existe" in kept.stdout and "--force" in kept.stdout
    assert target.read_text() == "banco antigo"
    replaced = run_script(*args, "--force", "--sem-progresso")
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stderr == ""
    con = sqlite3.connect(target)
    assert scalar(con, "SELECT count(*) FROM transacoes") == 500
    con.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--funcionarios", "0"],
        ["--funcionarios", "-5"],
        ["--transacoes", "-1"],
        ["--transacoes", "muitas"],
        ["--seed", "x"],
    ],
)
def test_bad_values_are_rejected_with_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run_script(*args, "--saida", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert args[0] in result.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_leaves_the_old_database_untouched(
    how: signal.Signals, tmp_path: Path
) -> None:
    target = tmp_path / "empresa.db"
    target.write_text("banco antigo")
    env = {k: v for k, v in os.environ.items() if k != "DB_PATH"}
    big = f"--funcionarios 300 --transacoes 3000000 --force --saida {target}".split()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *big],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # plain progress lines, as stderr is a pipe
        if line.startswith("Transações:") and "%" in line:
            break
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert target.read_text() == "banco antigo"
    if how == signal.SIGTERM:
        assert proc.returncode == 130
        assert "Interrompido" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empresa.db"], "temp file removed"
    else:
        assert proc.returncode == -signal.SIGKILL
        # SIGKILL cannot be caught: the temporary file stays, and the next run removes it.
        assert [p.suffix for p in tmp_path.iterdir() if p.name != "empresa.db"] == [".tmp"]
        small = f"--funcionarios 5 --transacoes 10 --force --sem-progresso --saida {target}"
        assert run_script(*small.split()).returncode == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empresa.db"]

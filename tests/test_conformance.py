"""Every worker writes the same CSV, byte for byte, and a task state of the same meaning as the
Python worker's (docs/protocol.md: the CSV is a contract of bytes, everything else of meaning).

The same task is pushed to one queue per worker kind; each kind's CSV file and task hash are then
compared with the Python worker's (the reference): the CSV byte for byte; the hash field by field
(volatile fields apart), `parametros` as JSON, `erro_codigo` equal and `erro` present on both
sides when either has it (each worker words it its own way). Cases come from the data, not from
the tests: every report of `catalog/` (on the generated database) and every report of
`tests/edge_catalog/` (on a database of awkward values built here). A new report or a new worker
kind is covered without writing a test. Messages are judged by verdict: refused or accepted, and
with which `erro_codigo`.

The C worker runs three times: the release build, the AddressSanitizer + UndefinedBehaviorSanitizer
build, and the release build under valgrind (when installed). The sanitizer and valgrind runs must
also exit cleanly: no error, no leak.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from relatorios.catalog import Report, load_catalog
from relatorios.protocol import (
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    FORMAT_CSV,
    FORMAT_CSV_EXCEL,
    FORMAT_XLSX,
    ErrorCode,
    F,
    Keys,
    Message,
    file_name,
    new_task_id,
)
from tests.conftest import REPO, WORKER_KINDS, PgDatabase, WorkerEnv, wait_until

REFERENCE = "python"
EDGE_CATALOG = Path(__file__).resolve().parent / "edge_catalog"
PG_EDGE_CATALOG = Path(__file__).resolve().parent / "edge_catalog_postgresql"
VALGRIND = shutil.which("valgrind")
# The dynamic loader's own allocations after dlopen(libpq) (the file says which, and why).
VALGRIND_SUPPRESSIONS = Path(__file__).resolve().parent / "data" / "valgrind-dlopen.supp"
# Fields that legitimately differ between two runs of the same task.
VOLATILE_FIELDS = {"iniciado_em", "concluido_em", "worker"}
# Kinds compared with the reference: every worker, plus the C worker's checked builds.
CHECKED_KINDS = [k for k in WORKER_KINDS if k != REFERENCE] + ["c-asan"]
if VALGRIND:
    CHECKED_KINDS.append("c-valgrind")


def edge_reports(folder: Path = EDGE_CATALOG) -> list[Path]:
    return sorted(folder.glob("*.sql"))


def header(path: Path, key: str) -> str | None:
    match = re.search(rf"^--\s*@{re.escape(key)}\s+(.*)$", path.read_text("utf-8"), re.M)
    return match.group(1).strip() if match else None


# ---- the edge-case database ------------------------------------------------------------------

EDGE_TEXTS: list[str | None] = [
    "simples",
    "a,b",
    'diz "oi"',
    '"',
    ",",
    "linha1\nlinha2",
    "cr\rsozinho",
    "crlf\r\nfim",
    "\n",
    "",
    None,
    " espaço nas pontas ",
    "tab\taqui",
    "ação, café, pão — \u201caspas\u201d \u2018simples\u2019",
    "中文 العربية עברית 😀 🇧🇷",
    "nul\x00no meio",
    "'apóstrofo'",
    "barra \\ invertida",
    "fim com vírgula,",
    '""',
    "=1+1",
    "+55 11 99999-0000",
    "-5",
    "@SUM(A1)",
    "\tcomeça com tab",
    "\rcomeça com CR",
    "ponto;e;vírgula",
    "_x0041_ parece escape do Excel",
    "controle \x01\x1f",
]


def edge_reals(count: int) -> list[float]:
    """Reals whose repr is easy to get wrong, then random bit patterns."""
    fixed = [
        0.0,
        -0.0,
        0.1,
        0.5,
        1.0,
        100.0,
        1e15,
        1e16,
        1.5e16,
        1e-4,
        1e-5,
        1.2345e-5,
        123.25,
        1 / 3,
        2 / 3,
        1e22,
        1e23,
        9007199254740993.0,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        -1.5,
        12345678901234567890.0,
        0.30000000000000004,
    ]
    fixed += [2.0**k for k in range(-1074, 1024, 37)]
    rng = random.Random(20261128)
    values = list(fixed)
    while len(values) < count:
        x = rng.choice(
            [
                lambda: struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0],
                lambda: round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)),
                lambda: rng.uniform(-1, 1) * 10.0 ** rng.randint(-20, 20),
            ]
        )()
        if math.isfinite(x):
            values.append(x)
    return values


def build_edge_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE textos (id INTEGER PRIMARY KEY, valor TEXT);
        CREATE TABLE numeros (id INTEGER PRIMARY KEY, valor);
        """
    )
    con.executemany("INSERT INTO textos (valor) VALUES (?)", [(t,) for t in EDGE_TEXTS])
    # Text that is not valid UTF-8 is copied byte for byte by both workers.
    con.execute("INSERT INTO textos (valor) VALUES (CAST(X'41FF42C3' AS TEXT))")
    numbers: list[object] = [0, -1, 1, 2**63 - 1, -(2**63), 10**15, None, "texto", "1.5"]
    numbers += edge_reals(400)
    con.executemany("INSERT INTO numeros (valor) VALUES (?)", [(n,) for n in numbers])
    con.commit()
    con.close()
    return path


# ---- the workers -----------------------------------------------------------------------------


@dataclass
class Run:
    """One kind's outcome for one message: the task hash, the CSV, the dead letter if refused."""

    state: dict[str, str]
    csv: bytes | None
    dead: dict[str, object] | None = None


class Fleet:
    """One worker process per kind, each on its own queue, all serving the same database."""

    def __init__(
        self,
        redis_url: str,
        db: Path,
        catalog: Path,
        root: Path,
        bins: dict[str, Path],
        extra: dict[str, str] | None = None,
    ):
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.envs: dict[str, WorkerEnv] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        for kind in [REFERENCE, *CHECKED_KINDS]:
            export = root / f"export-{kind}"
            export.mkdir()
            env = WorkerEnv(
                redis_url, f"conf_{kind}_{uuid.uuid4().hex[:8]}", db, export, catalog, extra or {}
            )
            self.envs[kind] = env
            self.logs[kind] = root / f"{kind}.log"
            with open(self.logs[kind], "wb") as log:
                self.procs[kind] = subprocess.Popen(
                    self.command(kind, bins),
                    env=env.environ(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    @staticmethod
    def command(kind: str, bins: dict[str, Path]) -> list[str]:
        if kind == "python":
            import sys

            return [sys.executable, "-m", "relatorios.worker"]
        if kind == "c-valgrind":
            assert VALGRIND
            return [
                VALGRIND,
                "--quiet",
                "--leak-check=full",
                "--show-leak-kinds=all",
                "--errors-for-leak-kinds=all",
                f"--suppressions={VALGRIND_SUPPRESSIONS}",
                "--error-exitcode=99",
                str(bins["c"]),
            ]
        return [str(bins[kind])]

    def run(
        self,
        report: str,
        params: dict[str, object],
        output: Output = (FORMAT_CSV, COMPRESSION_NONE),
    ) -> dict[str, Run]:
        """Push the same task to every kind and wait for every final state."""
        task_id = new_task_id()
        formato, compressao = output
        file = file_name(report, task_id, formato=formato, compressao=compressao)
        message = Message(task_id, report, params, file, formato=formato, compressao=compressao)  # type: ignore[arg-type]
        return self.run_raw(message.to_json().encode(), task_id, message.file)

    def run_raw(self, raw: bytes, task_id: str, file: str) -> dict[str, Run]:
        """Push the same raw message to every kind; wait until each finished the task `task_id`
        or dead-lettered the message without naming a task."""
        dead_before = {
            kind: self.client.llen(Keys(env.queue).dead) for kind, env in self.envs.items()
        }
        for env in self.envs.values():
            self.client.lpush(env.queue, raw)
        runs: dict[str, Run] = {}
        for kind, env in self.envs.items():
            keys = Keys(env.queue)
            wait_until(
                lambda kind=kind, keys=keys: self.finished(  # type: ignore[misc]
                    kind, keys, task_id, dead_before[kind]
                ),
                120,
                f"{kind} to finish {raw[:100]!r} (log: {self.logs[kind]})",
            )
            hash_ = self.client.hgetall(keys.task(task_id))
            state = {k: v for k, v in hash_.items() if k not in VOLATILE_FIELDS}
            path = env.export_dir / file
            new_dead = self.client.llen(keys.dead) - dead_before[kind]
            assert new_dead in (0, 1), (kind, new_dead)
            dead = json.loads(self.client.lindex(keys.dead, 0) or "") if new_dead else None
            runs[kind] = Run(state, path.read_bytes() if path.exists() else None, dead)
        return runs

    def finished(self, kind: str, keys: Keys, task_id: str, dead_before: int) -> bool:
        code = self.procs[kind].poll()
        if code is not None:
            log = self.logs[kind].read_text("utf-8", "replace")
            raise AssertionError(f"{kind} died with exit status {code}:\n{log[-4000:]}")
        if self.client.hget(keys.task(task_id), F.STATUS) in ("concluido", "falhou"):
            return True
        if self.client.llen(keys.dead) == dead_before:
            return False
        return json.loads(self.client.lindex(keys.dead, 0) or "")["task_id"] is None

    def stop(self) -> dict[str, int]:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        codes = {}
        for kind, proc in self.procs.items():
            try:
                codes[kind] = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[kind] = proc.wait()
        self.client.close()
        return codes


def start_fleet(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    db: Path,
    catalog: Path,
    extra: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    bins = request.getfixturevalue("c_worker_bins")
    root = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(request.getfixturevalue("redis_url"), db, catalog, root, bins, extra)
    yield fleet
    codes = fleet.stop()
    for kind, code in codes.items():
        log = fleet.logs[kind].read_text("utf-8", "replace")
        assert code == 0, f"{kind} exited with {code}:\n{log[-4000:]}"
        assert "Sanitizer" not in log and "runtime error" not in log, log[-4000:]


@pytest.fixture(scope="module")
def catalog_fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_db: Path
) -> Iterator[Fleet]:
    yield from start_fleet(request, tmp_path_factory, sample_db, REPO / "catalog")


@pytest.fixture(scope="module")
def pg_catalog_fleet(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sample_db: Path,
    pg_db: PgDatabase,
) -> Iterator[Fleet]:
    """The catalog's reports from PostgreSQL (DATABASE_URL), the same data as sample_db."""
    extra = {"DATABASE_URL": pg_db.url}
    yield from start_fleet(request, tmp_path_factory, sample_db, REPO / "catalog", extra)


@pytest.fixture(scope="module")
def pg_edge_fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_db: PgDatabase
) -> Iterator[Fleet]:
    extra = {"DATABASE_URL": build_edge_pg(pg_db)}
    db = tmp_path_factory.mktemp("pg-edge") / "nenhum.db"  # no SQLite: DATABASE_URL wins
    yield from start_fleet(request, tmp_path_factory, db, PG_EDGE_CATALOG, extra)


@pytest.fixture(scope="module")
def edge_fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    db = build_edge_db(tmp_path_factory.mktemp("edge") / "edge.db")
    yield from start_fleet(request, tmp_path_factory, db, EDGE_CATALOG)


def build_edge_pg(db: PgDatabase) -> str:
    """The PostgreSQL edge database (the texts PostgreSQL can hold: no NUL, valid UTF-8, and the
    same reals); returns the reader's DATABASE_URL for it."""
    import psycopg

    db.server.sql("CREATE DATABASE borda")
    with psycopg.connect(db.server.url(db="borda"), autocommit=True) as conn:
        conn.execute("CREATE TABLE textos (id serial PRIMARY KEY, valor text)")
        conn.execute("CREATE TABLE reais (id serial PRIMARY KEY, valor float8)")
        texts = [t for t in EDGE_TEXTS if t is None or "\x00" not in t]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO textos (valor) VALUES (%s)", [(t,) for t in texts])
            cur.executemany(
                "INSERT INTO reais (valor) VALUES (%s)", [(x,) for x in edge_reals(400)]
            )
        conn.execute("GRANT SELECT ON textos, reais TO leitor")
    return db.url.rsplit("/", 1)[0] + "/borda"


# ---- parameters for the catalog's reports, from their @param declarations ----------------------


def catalog_params(report: Report, db: Path) -> dict[str, object]:
    """A valid value for every parameter: a real department, the database's busiest year, and a
    date range of a few months, so that every report returns rows."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        department = con.execute("SELECT nome FROM departamentos ORDER BY id LIMIT 1").fetchone()[0]
        year = con.execute(
            "SELECT substr(data, 1, 4) AS y FROM transacoes GROUP BY y ORDER BY count(*) DESC"
        ).fetchone()[0]
    finally:
        con.close()
    dates = iter([f"{year}-02-01", f"{year}-05-31"])
    params: dict[str, object] = {}
    for p in report.params:
        if p.kind == "department":
            params[p.name] = department
        elif p.kind == "date":
            params[p.name] = next(dates)
        elif p.kind == "integer":
            params[p.name] = p.default if p.default is not None else int(year)
        else:
            params[p.name] = p.default if p.default is not None else "x"
    return params


def assert_same_state(runs: dict[str, Run], kind: str) -> None:
    """The task hashes mean the same: field by field (volatile fields apart), `parametros` as
    JSON, `erro` on both sides or on neither (its words may differ), `erro_codigo` equal."""
    reference, run = dict(runs[REFERENCE].state), dict(runs[kind].state)
    params = [
        json.loads(p) if p is not None else None
        for p in (reference.pop(F.PARAMS, None), run.pop(F.PARAMS, None))
    ]
    assert params[0] == params[1], (kind, params)
    errors = reference.pop(F.ERROR, ""), run.pop(F.ERROR, "")
    assert bool(errors[0]) == bool(errors[1]), (kind, errors)
    assert run == reference, kind


def assert_same(runs: dict[str, Run], kind: str) -> None:
    reference, run = runs[REFERENCE], runs[kind]
    assert reference.state.get("status") == "concluido", reference.state
    assert_same_state(runs, kind)
    assert run.csv is not None and reference.csv is not None
    assert_same_bytes(run.csv, reference.csv, kind)


def assert_same_bytes(ours: bytes, theirs: bytes, kind: str) -> None:
    run, reference = Run({}, ours), Run({}, theirs)
    assert run.csv is not None and reference.csv is not None
    if run.csv != reference.csv:
        pairs = enumerate(zip(run.csv, reference.csv, strict=False))
        at = next((i for i, (a, b) in pairs if a != b), None)
        if at is None:
            pytest.fail(f"{kind} CSV length {len(run.csv)} != {len(reference.csv)}")
        window = slice(max(0, at - 40), at + 40)
        ours, theirs = run.csv[window], reference.csv[window]
        pytest.fail(f"{kind} CSV differs at byte {at}: {ours!r} != {theirs!r}")


CATALOG_TYPES = sorted(load_catalog(REPO / "catalog"))


@pytest.mark.parametrize("report", CATALOG_TYPES)
def test_catalog_report_is_byte_identical(
    report: str, catalog_fleet: Fleet, sample_db: Path
) -> None:
    params = catalog_params(load_catalog(REPO / "catalog")[report], sample_db)
    runs = catalog_fleet.run(report, params)
    assert int(runs[REFERENCE].state["linhas"]) > 0, "the case should return rows"
    for kind in CHECKED_KINDS:
        assert_same(runs, kind)


@pytest.mark.parametrize("path", edge_reports(), ids=lambda p: p.stem)
def test_edge_case_report_is_byte_identical(path: Path, edge_fleet: Fleet) -> None:
    params = json.loads(header(path, "params") or "{}")
    runs = edge_fleet.run(path.stem, params)
    for kind in CHECKED_KINDS:
        assert_same(runs, kind)


@pytest.mark.parametrize("report", CATALOG_TYPES)
def test_catalog_report_from_postgresql_is_byte_identical_to_sqlite(
    report: str, pg_catalog_fleet: Fleet, catalog_fleet: Fleet, sample_db: Path
) -> None:
    """The same data in PostgreSQL (popular_banco --url, same seed) gives every worker the bytes
    the SQLite database gives the reference worker."""
    params = catalog_params(load_catalog(REPO / "catalog")[report], sample_db)
    from_sqlite = catalog_fleet.run(report, params)[REFERENCE].csv
    runs = pg_catalog_fleet.run(report, params)
    assert int(runs[REFERENCE].state["linhas"]) > 0, "the case should return rows"
    assert runs[REFERENCE].csv == from_sqlite, "PostgreSQL and SQLite differ"
    for kind in CHECKED_KINDS:
        assert_same(runs, kind)


@pytest.mark.parametrize("path", edge_reports(PG_EDGE_CATALOG), ids=lambda p: p.stem)
def test_postgresql_edge_case_report_is_byte_identical(path: Path, pg_edge_fleet: Fleet) -> None:
    params = json.loads(header(path, "params") or "{}")
    runs = pg_edge_fleet.run(path.stem, params)
    for kind in CHECKED_KINDS:
        assert_same(runs, kind)


@pytest.mark.parametrize(
    ("report", "params", "code"),
    [
        ("RESUMO_MENSAL", {}, ErrorCode.INVALID_PARAMETER),
        ("RESUMO_MENSAL", {"ano": 2025, "sobrando": 1}, ErrorCode.INVALID_PARAMETER),
        ("NAO_EXISTE", {}, ErrorCode.UNKNOWN_TYPE),
        ("MAIORES_GASTADORES", {"ano": 2025, "limite": 2.5}, ErrorCode.INVALID_PARAMETER),
        ("GASTOS_POR_DEPARTAMENTO", {"departamento": None}, None),
        ("MAIORES_GASTADORES", {"ano": "2025", "limite": 3}, ErrorCode.INVALID_PARAMETER),
        ("MAIORES_GASTADORES", {"ano": 2025.0, "limite": 3.0}, None),
        ("MAIORES_GASTADORES", {"ano": 2025, "limite": 2**53 - 1}, ErrorCode.INVALID_PARAMETER),
        ("MAIORES_GASTADORES", {"ano": 2025, "limite": 5000}, None),
        (
            "TRANSACOES_POR_PERIODO",
            {"data_inicio": "2025-02-30", "data_fim": "2025-03-01"},
            ErrorCode.INVALID_PARAMETER,
        ),
    ],
    ids=[
        "parametro-ausente",
        "parametro-desconhecido",
        "tipo-desconhecido",
        "limite-real",
        "null",
        "ano-texto",
        "inteiros-reais",
        "limite-acima-do-maximo",
        "limite-maximo",
        "data-inexistente",
    ],
)
def test_failures_and_bindings_leave_the_same_state(
    report: str, params: dict[str, object], code: ErrorCode | None, catalog_fleet: Fleet
) -> None:
    runs = catalog_fleet.run(report, params)
    reference = runs[REFERENCE].state
    assert reference.get(F.ERROR_CODE) == code, reference  # the case still tests what it says
    assert reference["status"] == ("falhou" if code else "concluido"), reference
    for kind in CHECKED_KINDS:
        assert_same_state(runs, kind)
        assert runs[kind].csv == runs[REFERENCE].csv


# ---- output formats (docs/protocol.md, "Formats") -----------------------------------------------

Output = tuple[str, str]
# Each format's content must agree: csv_excel byte for byte, gzip once decompressed (the
# compressed bytes, and so `bytes`, may differ), xlsx cell by cell (value and type, every sheet).
# gzip runs once per report kind here (csv_excel of the catalog): tests/test_formats.py checks
# in each worker that a .csv.gz decompresses to exactly the bytes of the same request without
# gzip, so byte-identical CSVs make byte-identical decompressed files.
OUTPUTS: list[Output] = [
    (FORMAT_CSV_EXCEL, COMPRESSION_NONE),
    (FORMAT_XLSX, COMPRESSION_NONE),
]
OUTPUT_IDS = ["csv_excel", "xlsx"]
CATALOG_OUTPUTS = [*OUTPUTS, (FORMAT_CSV_EXCEL, COMPRESSION_GZIP)]
CATALOG_OUTPUT_IDS = [*OUTPUT_IDS, "csv_excel-gzip"]


def xlsx_cells(data: bytes) -> list[tuple[str, list[list[tuple[object, str]]]]]:
    """Every sheet of an xlsx file as openpyxl reads it back: its name, each cell's value and
    type, the number formats that make a date or a money amount."""
    import io

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data))
    return [
        (
            sheet.title,
            [
                [(c.value, c.data_type, c.number_format, c.font.b) for c in row]
                for row in sheet.iter_rows()
            ],
        )
        for sheet in book
    ]


def content(run: Run, output: Output, path_name: str) -> bytes | list[object]:
    """What must be the same whichever worker wrote the file."""
    import gzip

    assert run.csv is not None, path_name
    if output[1] == COMPRESSION_GZIP:
        return gzip.decompress(run.csv)
    if output[0] == FORMAT_XLSX:
        return xlsx_cells(run.csv)  # type: ignore[return-value]
    return run.csv


def assert_same_output(runs: dict[str, Run], kind: str, output: Output) -> None:
    reference, run = runs[REFERENCE], runs[kind]
    assert reference.state.get("status") == "concluido", reference.state
    compressed = output[1] == COMPRESSION_GZIP or output[0] == FORMAT_XLSX
    if compressed:  # `bytes` is the size of each worker's own file
        for r in (reference, run):
            assert r.csv is not None and int(r.state[F.BYTES]) == len(r.csv), r.state
        runs = {k: Run({f: v for f, v in r.state.items() if f != F.BYTES}, r.csv, r.dead)
                for k, r in runs.items()}  # fmt: skip
    assert_same_state(runs, kind)
    ours, theirs = content(run, output, kind), content(reference, output, REFERENCE)
    if isinstance(ours, bytes) and isinstance(theirs, bytes):
        assert_same_bytes(ours, theirs, kind)
    else:
        assert isinstance(ours, list) and isinstance(theirs, list)
        assert [n for n, _ in ours] == [n for n, _ in theirs], kind  # type: ignore[misc]
        for (name, a), (_, b) in zip(ours, theirs, strict=True):  # type: ignore[misc]
            for i, (row_a, row_b) in enumerate(zip(a, b, strict=False)):
                assert row_a == row_b, f"{kind}, sheet {name}, row {i + 1}"
            assert len(a) == len(b), f"{kind}, sheet {name}: {len(a)} != {len(b)} rows"


# xlsx under valgrind takes seconds per thousand rows: the catalog's xlsx cases are the two
# reports that hold every column type (integers, decimals, dates); test_formats.py reads the
# xlsx of PAGAMENTOS_PENDENTES back in each worker.
TYPED_REPORTS = ("RESUMO_MENSAL", "TRANSACOES_POR_PERIODO")
CATALOG_FORMAT_CASES = [
    pytest.param(report, output, id=f"{report}-{name}")
    for report in CATALOG_TYPES
    for output, name in zip(CATALOG_OUTPUTS, CATALOG_OUTPUT_IDS, strict=True)
    if output[0] != FORMAT_XLSX or report in TYPED_REPORTS
]


@pytest.mark.parametrize(("report", "output"), CATALOG_FORMAT_CASES)
def test_catalog_report_formats_agree(
    report: str, output: Output, catalog_fleet: Fleet, sample_db: Path
) -> None:
    params = catalog_params(load_catalog(REPO / "catalog")[report], sample_db)
    runs = catalog_fleet.run(report, params, output)
    assert int(runs[REFERENCE].state["linhas"]) > 0, "the case should return rows"
    for kind in CHECKED_KINDS:
        assert_same_output(runs, kind, output)


# EDGE_MUITAS_LINHAS as xlsx takes valgrind most of a minute and adds no cell the others lack.
EDGE_FORMAT_CASES = [
    pytest.param(path, output, id=f"{path.stem}-{name}")
    for path in edge_reports()
    for output, name in zip(OUTPUTS, OUTPUT_IDS, strict=True)
    if not (path.stem == "EDGE_MUITAS_LINHAS" and output[0] == FORMAT_XLSX)
]


@pytest.mark.parametrize(("path", "output"), EDGE_FORMAT_CASES)
def test_edge_case_formats_agree(path: Path, output: Output, edge_fleet: Fleet) -> None:
    params = json.loads(header(path, "params") or "{}")
    runs = edge_fleet.run(path.stem, params, output)
    for kind in CHECKED_KINDS:
        assert_same_output(runs, kind, output)


@pytest.mark.parametrize("output", [(FORMAT_XLSX, COMPRESSION_NONE)], ids=["xlsx"])
# Integers and decimals from PostgreSQL's text (its dates are the SQLite ones' text too).
@pytest.mark.parametrize("report", ["RESUMO_MENSAL"])
def test_catalog_report_formats_from_postgresql_are_those_from_sqlite(
    report: str, output: Output, pg_catalog_fleet: Fleet, catalog_fleet: Fleet, sample_db: Path
) -> None:
    """Typed columns make the same cells whether PostgreSQL's text or SQLite's values fill them."""
    params = catalog_params(load_catalog(REPO / "catalog")[report], sample_db)
    from_sqlite = catalog_fleet.run(report, params, output)[REFERENCE]
    runs = pg_catalog_fleet.run(report, params, output)
    assert content(runs[REFERENCE], output, "pg") == content(from_sqlite, output, "sqlite")
    for kind in CHECKED_KINDS:
        assert_same_output(runs, kind, output)


@pytest.mark.parametrize(
    ("formato", "compressao", "extension"),
    [("ods", "nenhuma", ".csv"), ("xlsx", "gzip", ".xlsx"), ("csv_excel", "nenhuma", ".xlsx")],
    ids=["formato-desconhecido", "xlsx-gzip", "extensao-errada"],
)
def test_an_output_no_worker_can_write_fails_alike(
    formato: str, compressao: str, extension: str, catalog_fleet: Fleet
) -> None:
    task_id = new_task_id()
    name = file_name("PAGAMENTOS_PENDENTES", task_id).replace(".csv", extension)
    body = {"versao": 2, "task_id": task_id, "tipo_relatorio": "PAGAMENTOS_PENDENTES",
            "arquivo": name, "formato": formato, "compressao": compressao}  # fmt: skip
    runs = catalog_fleet.run_raw(json.dumps(body).encode(), task_id, name)
    assert runs[REFERENCE].state[F.ERROR_CODE] == ErrorCode.UNSUPPORTED_FORMAT, runs[REFERENCE]
    for kind in CHECKED_KINDS:
        assert runs[kind].dead is None and runs[kind].csv is None, kind
        assert_same_state(runs, kind)


# ---- message verdicts --------------------------------------------------------------------------


def verdict_case(task_id: str, case: str) -> tuple[bytes, str]:
    """The message of one case of MESSAGE_CASES for the task `task_id`, and its file name."""
    body: dict[str, object] = {
        "versao": 1,
        "task_id": task_id,
        "tipo_relatorio": "MAIORES_GASTADORES",
        "parametros": {"ano": 2025, "limite": 3},
        "arquivo": file_name("MAIORES_GASTADORES", task_id),
    }
    params = dict(body["parametros"])  # type: ignore[call-overload]
    text = json.dumps(body)
    changes: dict[str, dict[str, object] | str] = {
        "aceita-versao-1.0": {"versao": 1.0},
        "aceita-membro-desconhecido": {"prioridade": "alta"},
        "aceita-nul-fora-dos-parametros": {"criado_em": "2026\x00"},
        "aceita-inteiro-como-real": {"parametros": {**params, "limite": 3.0}},
        "aceita-versao-2": {"versao": 2},
        "aceita-versao-2-csv": {"versao": 2, "formato": "csv", "compressao": "nenhuma"},
        "versao-3": {"versao": 3},
        "versao-1.5": {"versao": 1.5},
        "versao-texto": {"versao": "1"},
        "formato-numero": {"versao": 2, "formato": 1},
        "formato-maiusculo": {"versao": 2, "formato": "CSV"},
        "compressao-vazia": {"versao": 2, "compressao": ""},
        "tipo-minusculo": {"tipo_relatorio": "maiores_gastadores"},
        "tipo-com-quebra-de-linha": {"tipo_relatorio": "MAIORES_GASTADORES\n"},
        "tipo-caminho": {"tipo_relatorio": "../MAIORES_GASTADORES"},
        "task-id-maiusculo": {"task_id": task_id.upper()},
        "arquivo-caminho": {"arquivo": "../../etc/passwd"},
        "arquivo-absoluto": {"arquivo": f"/tmp/{body['arquivo']}"},
        "arquivo-part": {"arquivo": f"{body['arquivo']}.part"},
        "parametro-maiusculo": {"parametros": {**params, "Ano": 1}},
        "parametro-2^53": {"parametros": {**params, "limite": 2**53}},
        "parametro-menos-2^53": {"parametros": {**params, "limite": -(2**53) - 1}},
        "parametro-1e300": {"parametros": {**params, "limite": 1e300}},
        "parametro-nul": {"parametros": {**params, "ano": "20\x0025"}},
        "parametro-surrogate": {"parametros": {**params, "ano": "\ud800"}},
        "parametro-booleano": {"parametros": {**params, "limite": True}},
        "parametro-lista": {"parametros": {**params, "limite": [3]}},
        "parametro-texto-longo": {"parametros": {**params, "ano": "x" * 1025}},
        "parametros-demais": {"parametros": {f"p{i}": i for i in range(33)}},
        "grande-demais": {"x": "y" * 70_000},
        "chave-repetida": text[:-1] + ', "versao": 1}',
        "chave-repetida-nos-parametros": text.replace('"limite": 3', '"limite": 3, "limite": 4'),
        "nan": text.replace('"limite": 3', '"limite": NaN'),
        "infinito": text.replace('"limite": 3', '"limite": -Infinity'),
    }
    change = changes[case]
    if isinstance(change, str):
        assert change != text, case
        return change.encode(), str(body["arquivo"])
    return json.dumps({**body, **change}).encode(), str(body["arquivo"])


MESSAGE_CASES = [
    "aceita-versao-1.0",
    "aceita-membro-desconhecido",
    "aceita-nul-fora-dos-parametros",
    "aceita-inteiro-como-real",
    "aceita-versao-2",
    "aceita-versao-2-csv",
    "versao-3",
    "versao-1.5",
    "versao-texto",
    "formato-numero",
    "formato-maiusculo",
    "compressao-vazia",
    "tipo-minusculo",
    "tipo-com-quebra-de-linha",
    "tipo-caminho",
    "task-id-maiusculo",
    "arquivo-caminho",
    "arquivo-absoluto",
    "arquivo-part",
    "parametro-maiusculo",
    "parametro-2^53",
    "parametro-menos-2^53",
    "parametro-1e300",
    "parametro-nul",
    "parametro-surrogate",
    "parametro-booleano",
    "parametro-lista",
    "parametro-texto-longo",
    "parametros-demais",
    "grande-demais",
    "chave-repetida",
    "chave-repetida-nos-parametros",
    "nan",
    "infinito",
]


@pytest.mark.parametrize("case", MESSAGE_CASES)
def test_message_verdicts_agree(case: str, catalog_fleet: Fleet) -> None:
    """Standard JSON that the protocol refuses (patterns, paths, limits, duplicated keys, NaN,
    NUL) or accepts: every worker gives the reference's verdict, and when the reference names the
    task, the worker names it too and fails it with the same code."""
    task_id = new_task_id()
    raw, file = verdict_case(task_id, case)
    runs = catalog_fleet.run_raw(raw, task_id, file)
    reference = runs[REFERENCE]
    assert (reference.dead is None) == case.startswith("aceita-"), reference
    if reference.dead is None:
        assert reference.state["status"] == "concluido", reference.state
    elif reference.state:
        assert reference.state[F.ERROR_CODE] == ErrorCode.INVALID_MESSAGE, reference.state
    for kind in CHECKED_KINDS:
        run = runs[kind]
        assert (run.dead is None) == (reference.dead is None), (kind, run.dead)
        if run.dead is not None and reference.dead is not None:
            assert run.dead["task_id"] == reference.dead["task_id"], (kind, run.dead)
            assert run.dead["tamanho"] == reference.dead["tamanho"], (kind, run.dead)
        assert_same_state(runs, kind)
        assert run.csv == reference.csv, kind

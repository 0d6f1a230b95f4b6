"""Every worker writes the same CSV, byte for byte, and the same task state as the Python worker.

The same task is pushed to one queue per worker kind; each kind's CSV file and task hash are then
compared with the Python worker's (the reference). Cases come from the data, not from the tests:
every report of `catalog/` (on the generated database) and every report of `tests/edge_catalog/`
(on a database of awkward values built here). A new report or a new worker kind is covered
without writing a test.

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
from relatorios.protocol import Keys, Message, file_name, new_task_id
from tests.conftest import REPO, WORKER_KINDS, WorkerEnv, wait_until

REFERENCE = "python"
EDGE_CATALOG = Path(__file__).resolve().parent / "edge_catalog"
VALGRIND = shutil.which("valgrind")
# Fields that legitimately differ between two runs of the same task.
VOLATILE_FIELDS = {"iniciado_em", "concluido_em", "worker"}
# Kinds compared with the reference: every worker, plus the C worker's checked builds.
CHECKED_KINDS = [k for k in WORKER_KINDS if k != REFERENCE] + ["c-asan"]
if VALGRIND:
    CHECKED_KINDS.append("c-valgrind")


def edge_reports() -> list[Path]:
    return sorted(EDGE_CATALOG.glob("*.sql"))


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
    """One kind's outcome for one task."""

    state: dict[str, str]
    csv: bytes | None


class Fleet:
    """One worker process per kind, each on its own queue, all serving the same database."""

    def __init__(self, redis_url: str, db: Path, catalog: Path, root: Path, bins: dict[str, Path]):
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.envs: dict[str, WorkerEnv] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        for kind in [REFERENCE, *CHECKED_KINDS]:
            export = root / f"export-{kind}"
            export.mkdir()
            env = WorkerEnv(redis_url, f"conf_{kind}_{uuid.uuid4().hex[:8]}", db, export, catalog)
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
                "--error-exitcode=99",
                str(bins["c"]),
            ]
        return [str(bins[kind])]

    def run(self, report: str, params: dict[str, object]) -> dict[str, Run]:
        """Push the same task to every kind and wait for every final state."""
        task_id = new_task_id()
        message = Message(task_id, report, params, file_name(report, task_id))  # type: ignore[arg-type]
        for env in self.envs.values():
            self.client.lpush(env.queue, message.to_json())
        runs: dict[str, Run] = {}
        for kind, env in self.envs.items():
            key = Keys(env.queue).task(task_id)
            wait_until(
                lambda kind=kind, key=key: self.finished(kind, key),  # type: ignore[misc]
                120,
                f"{kind} to finish {report} (log: {self.logs[kind]})",
            )
            state = {k: v for k, v in self.client.hgetall(key).items() if k not in VOLATILE_FIELDS}
            path = env.export_dir / message.file
            runs[kind] = Run(state, path.read_bytes() if path.exists() else None)
        return runs

    def finished(self, kind: str, key: str) -> bool:
        code = self.procs[kind].poll()
        if code is not None:
            log = self.logs[kind].read_text("utf-8", "replace")
            raise AssertionError(f"{kind} died with exit status {code}:\n{log[-4000:]}")
        return self.client.hget(key, "status") in ("concluido", "falhou")

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
) -> Iterator[Fleet]:
    bins = request.getfixturevalue("c_worker_bins")
    fleet = Fleet(
        request.getfixturevalue("redis_url"), db, catalog, tmp_path_factory.mktemp("fleet"), bins
    )
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
def edge_fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    db = build_edge_db(tmp_path_factory.mktemp("edge") / "edge.db")
    yield from start_fleet(request, tmp_path_factory, db, EDGE_CATALOG)


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


def assert_same(runs: dict[str, Run], kind: str) -> None:
    reference, run = runs[REFERENCE], runs[kind]
    assert reference.state.get("status") == "concluido", reference.state
    assert run.state == reference.state
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


@pytest.mark.parametrize(
    ("report", "params"),
    [
        ("RESUMO_MENSAL", {}),
        ("RESUMO_MENSAL", {"ano": 2025, "sobrando": 1}),
        ("NAO_EXISTE", {}),
        ("GASTOS_POR_DEPARTAMENTO", {"departamento": None}),
        ("MAIORES_GASTADORES", {"ano": "2025", "limite": 3.0}),
    ],
    ids=["parametro-ausente", "parametro-desconhecido", "tipo-desconhecido", "null", "tipos"],
)
def test_failures_and_bindings_leave_the_same_state(
    report: str, params: dict[str, object], catalog_fleet: Fleet
) -> None:
    runs = catalog_fleet.run(report, params)
    for kind in CHECKED_KINDS:
        assert runs[kind].state == runs[REFERENCE].state
        assert runs[kind].csv == runs[REFERENCE].csv

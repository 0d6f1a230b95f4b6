"""Shared fixtures: a real redis-server, a real generated SQLite database, a real PostgreSQL
loaded with the same data, real worker processes."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis

from relatorios import postgres_server
from relatorios.api import FACTORY as API_FACTORY

REPO = Path(__file__).resolve().parent.parent
C_WORKER = REPO / "app" / "build" / "worker"
C_WORKER_ASAN = REPO / "app" / "build" / "worker-asan"
WORKER_KINDS = ("python", "c")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-xdist (`--dist loadgroup`, see pyproject.toml) sends the tests of one group to one
    process. Every test that needs PostgreSQL goes to one group, so that only one private
    PostgreSQL is started and loaded; a test that uses a module-scoped fixture (a fleet of
    workers, Chromium) goes with the rest of its module, so that the fixture starts once."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        names = set(getattr(item, "fixturenames", ()))
        if names & {"pg_db", "pg_server"}:
            item.add_marker(pytest.mark.xdist_group("postgresql"))
            continue
        info = getattr(item, "_fixtureinfo", None)
        defs = getattr(info, "name2fixturedefs", {})
        if any(d and d[-1].scope == "module" for n, d in defs.items() if n in names):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float = 30, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_redis(port: int, folder: Path, persistent: bool = False) -> subprocess.Popen[bytes]:
    """A real redis-server on 127.0.0.1:port, answering before this returns.

    `persistent`: append-only file, fsync'd on every write, so that a restart loses nothing.
    """
    server = shutil.which("redis-server")
    assert server, "redis-server not found: run `make test`, which installs it"
    aof = (
        ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    )
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(folder),
            *aof,
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    wait_until(lambda: _pings(client), 10, "redis-server to start")
    client.close()
    return proc


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the whole session (no persistence: tests make their own data)."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def queue_name() -> str:
    """A queue (and key prefix) of its own for each test, so tests never see each other's tasks."""
    return f"teste_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small database made by the real generator (same code as `python popular_banco.py`)."""
    from relatorios.dbgen import generate

    path = tmp_path_factory.mktemp("db") / "empresa.db"
    generate(path, employees=300, transactions=30_000, seed=7, progress=False)
    return path


# The PostgreSQL tests' database: the sample database's data (same counts, same seed), read by a
# role that may only SELECT from its three tables, beside a table it may not read at all.
PG_DATABASE = "empresa"
PG_READER = "leitor"
PG_READER_PASSWORD = "senha-do-leitor"


@dataclass(frozen=True)
class PgDatabase:
    server: postgres_server.PrivatePostgres
    url: str  # the reader's (what workers and the API get as DATABASE_URL)
    owner_url: str  # the superuser's, for set-up and checks

    def execute(self, statement: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.owner_url, autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres_server.PrivatePostgres]:
    """A private PostgreSQL (initdb in a temporary folder, a free port), stopped at the end."""
    server = postgres_server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def pg_db(pg_server: postgres_server.PrivatePostgres) -> PgDatabase:
    """`popular_banco.py --url`'s loader, with sample_db's counts and seed, and a reader role."""
    from relatorios.dbgen.postgres import generate_postgres

    pg_server.sql(f"CREATE DATABASE {PG_DATABASE}")
    owner = pg_server.url(db=PG_DATABASE)
    generate_postgres(owner, employees=300, transactions=30_000, seed=7, progress=False)
    db = PgDatabase(pg_server, pg_server.url(PG_READER, PG_READER_PASSWORD, PG_DATABASE), owner)
    db.execute(f"CREATE ROLE {PG_READER} LOGIN PASSWORD '{PG_READER_PASSWORD}'")
    db.execute(f"GRANT SELECT ON departamentos, funcionarios, transacoes TO {PG_READER}")
    db.execute("CREATE TABLE segredos (salario bigint); INSERT INTO segredos VALUES (1)")
    return db


@pytest.fixture(scope="session")
def c_worker_bins() -> dict[str, Path]:
    """Build the C worker (release and ASan+UBSan builds) once per session. `make test` has built
    them already (then make only checks); a file lock keeps the pytest-xdist processes from
    running two makes over the same build folder at once."""
    (REPO / "app" / "build").mkdir(exist_ok=True)
    with (REPO / "app" / "build" / ".make.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["make", "-s", "-C", str(REPO / "app"), "all"], check=True)
    return {"c": C_WORKER, "c-asan": C_WORKER_ASAN}


@dataclass
class WorkerEnv:
    redis_url: str
    queue: str
    db_path: Path
    export_dir: Path
    catalog_dir: Path = REPO / "catalog"
    extra: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.redis_url,
            QUEUE_NAME=self.queue,
            DB_PATH=str(self.db_path),
            EXPORT_DIR=str(self.export_dir),
            CATALOG_DIR=str(self.catalog_dir),
            PYTHONUNBUFFERED="1",
            **self.extra,
        )
        return env


@pytest.fixture
def worker_env(redis_url: str, queue_name: str, sample_db: Path, tmp_path: Path) -> WorkerEnv:
    export = tmp_path / "export"
    export.mkdir()
    return WorkerEnv(redis_url, queue_name, sample_db, export)


@pytest.fixture
def start_worker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a real worker process: start_worker("python" | "c" | "c-asan", env)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(kind: str, env: WorkerEnv) -> subprocess.Popen[bytes]:
        if kind == "python":
            cmd = [sys.executable, "-m", "relatorios.worker"]
        else:
            cmd = [str(request.getfixturevalue("c_worker_bins")[kind])]
        log = open(tmp_path / f"worker-{kind}-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=env.environ(), stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_key(redis_url: str, queue: str, name: str, admin: bool = False) -> str:
    """A real API key (as `relatorios chaves criar`), its secret returned."""
    from relatorios.apikeys import create_key
    from relatorios.protocol import Keys

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return create_key(client, Keys(queue), name, admin)
    finally:
        client.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class ApiProcess:
    url: str
    proc: subprocess.Popen[bytes]
    key: str  # an admin key of this API's queue
    http: httpx.Client  # sends that key with every request


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[[WorkerEnv], ApiProcess]]:
    """Start the real API (uvicorn in its own process) on a free port: start_api(env). Its
    `http` client sends an admin key made for the test (`key`)."""
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []

    def start(env: WorkerEnv) -> ApiProcess:
        port = free_port()
        log = open(tmp_path / f"api-{port}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "uvicorn", "--factory", API_FACTORY, "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env.environ(), stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url) or proc.poll() is not None, 30, "the API to start")
        assert proc.poll() is None, (tmp_path / f"api-{port}.log").read_text()
        key = make_key(env.redis_url, env.queue, f"admin-{uuid.uuid4().hex[:8]}", admin=True)
        client = httpx.Client(headers=bearer(key), timeout=30)
        clients.append(client)
        return ApiProcess(url, proc, key, client)

    yield start
    for client in clients:
        client.close()
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server answering each POST with the next status of `answers` (then 200)."""

    url: str
    answers: list[int]
    got: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("", [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.got.append(Received(self.path, dict(self.headers.items()), body))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if status in (301, 302):
                self.send_header("Location", "/desviado")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/aviso"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()

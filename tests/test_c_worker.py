"""The C worker under bad input and faults, in its release, sanitizer and valgrind builds.

Whatever happens - a hostile message, a broken database, a full disk, Redis going away, a
signal - the worker keeps serving or leaves cleanly, no task stays half-done, no `.part` file
is left behind, and the checked builds report no memory error and no leak. Failures are judged by
their meaning (docs/protocol.md): the task's `erro_codigo`, an `erro` in Portuguese that never
carries the library's English (that goes to the log line), and log lines by their event and
task id. Invalid messages are judged by the reference's verdict: what
relatorios.protocol.parse_message refuses, the C worker refuses.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from relatorios.protocol import (
    ERROR_TEXTS,
    ErrorCode,
    InvalidMessage,
    Keys,
    Message,
    file_name,
    new_task_id,
    parse_message,
)
from tests.conftest import REPO, WorkerEnv, free_port, start_redis, wait_until

DATA = Path(__file__).resolve().parent / "data" / "c_worker"
CATALOG = DATA / "catalog"
VALGRIND = shutil.which("valgrind")
C_KINDS = ["c", "c-asan"] + (["c-valgrind"] if VALGRIND else [])
# The events of docs/protocol.md ("Log lines"): a line is compared by its event and task id.
EVENTS = (
    "Aguardando por tarefas na fila",
    "Nova tarefa recebida",
    "Executando consulta SQL pesada...",
    "Relatório gerado com sucesso!",
    "Falha na tarefa",
    "Falha temporária",
    "Tarefa cancelada",
    "Tarefa ignorada",
    "Tarefa recuperada de worker morto",
    "Tarefa devolvida à fila no desligamento",
    "Mensagem inválida descartada",
    "Tarefa já finalizada por outro caminho",
    "Conexão com o Redis perdida",
    "Conexão com o Redis restabelecida",
    "Redis indisponível ao registrar",
    "Encerrando.",
)


def event(message: str) -> str:
    """The event of a log message (without its prefix); fails on a line of no known event."""
    [name] = [e for e in EVENTS if message.startswith(e)]
    return name


class CWorker:
    """A C worker process of one build, with its log; `stop()` checks it left cleanly."""

    def __init__(
        self,
        kind: str,
        env: WorkerEnv,
        bins: dict[str, Path],
        log: Path,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.kind, self.log_path = kind, log
        cmd = [str(bins["c" if kind == "c-valgrind" else kind])]
        if kind == "c-valgrind":
            assert VALGRIND
            cmd = [
                VALGRIND,
                "--quiet",
                "--leak-check=full",
                "--show-leak-kinds=all",
                "--errors-for-leak-kinds=all",
                "--error-exitcode=99",
                *cmd,
            ]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env.environ(), stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec
            )

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in the {self.kind} log")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code

    def assert_clean_exit(self) -> None:
        code = self.stop()
        log = self.log()
        assert code == 0, f"{self.kind} exited with {code}:\n{log[-4000:]}"
        assert "Sanitizer" not in log and "runtime error" not in log, log[-4000:]


@pytest.fixture
def start_c(c_worker_bins: dict[str, Path], tmp_path: Path) -> Iterator[Callable[..., CWorker]]:
    workers: list[CWorker] = []

    def start(kind: str, env: WorkerEnv, preexec: Callable[[], None] | None = None) -> CWorker:
        worker = CWorker(kind, env, c_worker_bins, tmp_path / f"{kind}-{len(workers)}.log", preexec)
        workers.append(worker)
        worker.wait_log("Aguardando por tarefas", 60)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def tiny_db(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"linha {i}") for i in range(100)])
    con.commit()
    con.close()
    return path


@pytest.fixture
def env(redis_url: str, queue_name: str, tiny_db: Path, tmp_path: Path) -> WorkerEnv:
    export = tmp_path / "export"
    export.mkdir()
    fast_retries = {"RETRY_BASE_S": "0.05"}
    return WorkerEnv(redis_url, queue_name, tiny_db, export, CATALOG, extra=fast_retries)


def new_message(report: str, params: dict[str, object]) -> Message:
    task_id = new_task_id()
    return Message(task_id, report, params, file_name(report, task_id))  # type: ignore[arg-type]


def push(client: redis.Redis, queue: str, report: str, params: dict[str, object]) -> Message:
    message = new_message(report, params)
    client.lpush(queue, message.to_json())
    return message


def final_state(
    client: redis.Redis, queue: str, task_id: str, timeout: float = 60
) -> dict[str, str]:
    key = Keys(queue).task(task_id)
    wait_until(lambda: client.hget(key, "status") in ("concluido", "falhou"), timeout, task_id)
    return client.hgetall(key)  # type: ignore[return-value]


def leftovers(export: Path) -> list[str]:
    return sorted(p.name for p in export.iterdir())


# ---- hostile messages --------------------------------------------------------------------------


def body(task_id: str, /, **fields: object) -> dict[str, object]:
    msg: dict[str, object] = {
        "versao": 1,
        "task_id": task_id,
        "tipo_relatorio": "LINHAS",
        "parametros": {"n": 1},
        "arquivo": file_name("LINHAS", task_id),
    }
    msg.update(fields)
    return {k: v for k, v in msg.items() if v is not DROP}


DROP = object()


def hostile_messages() -> tuple[list[bytes], list[bytes]]:
    """Invalid messages: (standard JSON as json.dumps writes it, then everything else).

    A worker reads the task id of a standard-JSON message exactly when the reference does; for
    the others (bad UTF-8, non-standard JSON) that may differ (docs/protocol.md, "Message").
    """
    ids = iter(new_task_id() for _ in range(100))
    js = lambda **f: json.dumps(body(next(ids), **f), ensure_ascii=False).encode()  # noqa: E731
    escaped = lambda **f: json.dumps(body(next(ids), **f)).encode()  # noqa: E731
    raw = lambda text: text.replace("TID", next(ids)).encode()  # noqa: E731
    many = {f"p{i}": i for i in range(33)}
    standard = [
        js(versao="1"),
        js(versao=True),
        js(versao=3),
        js(versao=2, formato=1),
        js(versao=2, compressao="GZIP"),
        js(versao=1.5),
        js(versao=DROP),
        js(tipo_relatorio="linhas"),
        js(tipo_relatorio="A-B"),
        js(tipo_relatorio="A" * 65),
        js(tipo_relatorio=DROP),
        js(tipo_relatorio=5),
        js(arquivo="../../etc/passwd"),
        js(arquivo="/tmp/relatorio_LINHAS_20261128T232324Z_0b7f6b8e.csv"),
        js(arquivo="relatorio_LINHAS_20261128T232324Z_0b7f6b8e.csv.part"),
        js(arquivo=DROP),
        js(parametros=[]),
        js(parametros=None),
        js(parametros="n=1"),
        js(parametros=many),
        js(parametros={"Ano": 1}),
        js(parametros={"1a": 1}),
        js(parametros={"a-b": 1}),
        js(parametros={"ação": 1}),
        js(parametros={"a" * 65: 1}),
        js(parametros={"it's": 1}),
        js(parametros={"x\ty\u2028\u00a0é": 1}),
        js(parametros={"n": True}),
        js(parametros={"n": [1]}),
        js(parametros={"n": {"a": 1}}),
        js(parametros={"n": "x" * 1025}),
        js(parametros={"n": "é" * 513}),
        js(parametros={"n": "a\x00b"}),
        escaped(parametros={"n": "\ud800"}),
        escaped(parametros={"n": "x\udfff"}),
        js(parametros={"n": 2**53}),
        js(parametros={"n": 2**53 + 1}),
        js(parametros={"n": -(2**53) - 1}),
        js(parametros={"n": 1e300}),
        js(parametros={"n": 10**30}),
        js(x="y" * 70_000),
        js(task_id="0B7F6B8E-5D0E-4A2B-9A53-2F4F5B6C7D8E"),
        js(task_id=5),
        js(task_id=DROP),
        raw('{"versao":1,"task_id":"TID","versao":1}'),
        raw('{"versao":1,"task_id":"TID","x":{"k":1,"k":2}}'),
        raw('{"versao":1,"task_id":"TID","x":"\\u0000"}'),
        b"[]",
        b"null",
        b'"texto"',
        b"{}",
    ]
    other = [
        raw('{"versao":1,"task_id":"TID","parametros":{"n":NaN}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":-Infinity}}'),
        raw('{"versao":1,"task_id":"TID"} {}'),
        b'{"versao":1,"task_id":"' + next(ids).encode() + b'","x":"\xc3\x28"}',
        b'{"versao":1,"task_id":"' + next(ids).encode() + b'","x":"\xed\xa0\x80"}',
        b"",
        b"   ",
        b"{",
        b"\xff\xfe",
        b"not json",
    ]
    return standard, other


def reason_of(raw: bytes) -> InvalidMessage:
    try:
        parse_message(raw)
    except InvalidMessage as exc:
        return exc
    raise AssertionError(f"the reference accepts {raw[:200]!r}")


def task_id_in(raw: bytes) -> str | None:
    """The task id a standard-JSON message carries, valid or not."""
    obj = json.loads(raw)
    value = obj.get("task_id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def assert_invalid_message_failed(state: dict[str, str], context: object) -> None:
    assert state.get("status") == "falhou", context
    assert state["erro_codigo"] == ErrorCode.INVALID_MESSAGE, (state, context)
    assert state["erro"].startswith(ERROR_TEXTS[ErrorCode.INVALID_MESSAGE]), (state, context)


@pytest.mark.parametrize("kind", C_KINDS)
def test_hostile_messages_are_refused_as_the_reference_refuses_them_and_the_worker_keeps_serving(
    kind: str, env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c(kind, env)
    standard, other = hostile_messages()
    messages = standard + other
    for raw in messages:
        reason_of(raw)  # the reference refuses every one of them
        redis_client.lpush(env.queue, raw)
    good = push(redis_client, env.queue, "LINHAS", {"n": 3})
    assert final_state(redis_client, env.queue, good.task_id, 120)["status"] == "concluido"

    stats = redis_client.hgetall(Keys(env.queue).stats)
    assert stats["mensagens_invalidas"] == str(len(messages))
    dead = [json.loads(d) for d in redis_client.lrange(f"{env.queue}:mortas", 0, -1)]
    assert len(dead) == len(messages)
    assert all(d["worker"].startswith("c-") and d["motivo"] for d in dead)
    assert sorted(d["tamanho"] for d in dead) == sorted(len(m) for m in messages)
    # The excerpt: the first 1,024 bytes, invalid UTF-8 replaced (one byte at a time here).
    excerpts = [m[:1024].decode("utf-8", "replace") for m in messages]
    assert sorted(d["mensagem"] for d in dead) == sorted(excerpts)
    assert redis_client.llen(f"{env.queue}:processando:{dead[0]['worker']}") == 0
    log = worker.log()
    assert log.count("Mensagem inválida descartada: ") == len(messages)

    read = {d["task_id"] for d in dead} - {None}
    in_standard = {task_id_in(raw) for raw in standard} - {None}
    expected = {reason_of(raw).task_id for raw in standard} - {None}
    assert read & in_standard == expected
    assert len(expected) > 30  # most of them: the case list has not lost its point
    for task_id in read:  # every task the worker could name fails with the code
        state = redis_client.hgetall(Keys(env.queue).task(task_id))
        assert_invalid_message_failed(state, task_id)
        assert f"Falha na tarefa (task_id={task_id}): " in log
    assert leftovers(env.export_dir) == [good.file]
    worker.assert_clean_exit()


def test_deep_nesting_a_trailing_newline_nul_and_surrogates_are_refused(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    """Deep nesting (past cJSON's limit), a report type with a trailing newline (a `$` that
    matched before it would let it through), \\u0000 (cJSON would cut the text there) and a lone
    surrogate (cJSON refuses the whole message) are invalid, as the reference says, and but for
    the nesting the worker still names the task that failed."""
    worker = start_c("c-asan", env)
    task_id = new_task_id()
    nested = (
        b'{"versao":1,"task_id":"' + task_id.encode() + b'","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    )
    newline = json.dumps(body(new_task_id(), tipo_relatorio="LINHAS\n")).encode()
    nul = json.dumps(body(new_task_id(), parametros={"n": "a\x00b"})).encode()
    surrogate = json.dumps(body(new_task_id(), parametros={"n": "\ud800"})).encode()
    for raw in (nested, newline, nul, surrogate):
        reason_of(raw)
        redis_client.lpush(env.queue, raw)
    good = push(redis_client, env.queue, "LINHAS", {"n": 1})
    assert final_state(redis_client, env.queue, good.task_id)["status"] == "concluido"
    assert redis_client.hget(Keys(env.queue).stats, "mensagens_invalidas") == "4"
    for raw, field in ((newline, "tipo_relatorio"), (nul, "'n'"), (surrogate, "'n'")):
        state = redis_client.hgetall(Keys(env.queue).task(task_id_in(raw) or ""))
        assert_invalid_message_failed(state, raw)
        assert field in state["erro"], state
    worker.assert_clean_exit()


def test_numbers_bind_as_the_protocol_says(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    """1.0 is the version 1; an integral number binds as INTEGER (3.0 as 3), any other as REAL;
    2^53 - 1 is still exact; `parametros` keeps the message's values (compared as JSON)."""
    start_c("c", env)
    cases = [
        (body(new_task_id(), versao=1.0, parametros={"n": 3.0}), "3"),
        (body(new_task_id(), parametros={"n": 2.5}), "3"),  # 1, 2, 3: 2 < 2.5 goes on once more
        (body(new_task_id(), parametros={"n": -(2**53) + 1}), "0"),
        (body(new_task_id(), parametros={"n": 0.30000000000000004}), "1"),
    ]
    for message, _ in cases:
        redis_client.lpush(env.queue, json.dumps(message))
    for message, rows in cases:
        state = final_state(redis_client, env.queue, str(message["task_id"]))
        assert (state["status"], state["linhas"]) == ("concluido", rows), message
        assert json.loads(state["parametros"]) == message["parametros"]


# ---- database and SQL faults -------------------------------------------------------------------


def assert_failed(
    worker: CWorker,
    state: dict[str, str],
    task_id: str,
    code: ErrorCode,
    *,
    named: str | None = None,
    detail: str | None = None,
) -> None:
    """`falhou` with `code` and an `erro` that the log line repeats; `named` (a parameter, a
    report type) appears in `erro`; `detail`, the library's English, only in the log line."""
    assert (state.get("status"), state.get("erro_codigo")) == ("falhou", code), state
    erro = state["erro"]
    assert erro, state
    if named is not None:
        assert re.search(rf"\b{re.escape(named)}\b", erro), erro
    prefix = f"Worker C: Falha na tarefa (task_id={task_id}): "
    [line] = [line for line in worker.log().splitlines() if line.startswith(prefix)]
    assert erro in line, line
    if detail is not None:
        assert detail in line and detail not in erro, line


@pytest.mark.parametrize(
    ("report", "params", "code", "named", "detail"),
    [
        ("TABELA", {"x": 1}, ErrorCode.INVALID_PARAMETER, "x", None),
        ("LINHAS", {}, ErrorCode.INVALID_PARAMETER, "n", None),
        ("NAO_EXISTE", {}, ErrorCode.UNKNOWN_TYPE, "NAO_EXISTE", None),
        ("DUAS_CONSULTAS", {}, ErrorCode.QUERY_FAILED, None, None),
        ("POSICIONAL", {}, ErrorCode.QUERY_FAILED, None, None),
        ("ERRO_EM_TEMPO_DE_EXECUCAO", {}, ErrorCode.QUERY_FAILED, None, "malformed JSON"),
    ],
)
def test_sql_faults_fail_the_task_and_leave_no_file(
    report: str,
    params: dict[str, object],
    code: ErrorCode,
    named: str | None,
    detail: str | None,
    env: WorkerEnv,
    start_c: Callable[..., CWorker],
    redis_client: redis.Redis,
) -> None:
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, report, params)
    state = final_state(redis_client, env.queue, task.task_id)
    assert state["tentativas"] == "1"  # permanent: not retried
    assert_failed(worker, state, task.task_id, code, named=named, detail=detail)
    assert leftovers(env.export_dir) == []
    worker.assert_clean_exit()


def test_a_locked_database_is_retried_until_it_is_free(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    lock = sqlite3.connect(env.db_path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # readers get SQLITE_BUSY after the 1 s busy timeout
    env.extra["RETRY_BASE_S"] = "1"
    worker = start_c("c", env)
    task = push(redis_client, env.queue, "TABELA", {})
    waiting = f"Falha temporária (task_id={task.task_id}, tentativa=1): "
    worker.wait_log(waiting)
    retrying = redis_client.hgetall(Keys(env.queue).task(task.task_id))
    lock.execute("ROLLBACK")
    lock.close()
    assert retrying["erro_codigo"] == ErrorCode.DATABASE_UNAVAILABLE, retrying
    assert "proxima_tentativa_em" in retrying and "database is locked" not in retrying["erro"]
    [line] = [line for line in worker.log().splitlines() if waiting in line]
    assert "database is locked" in line and line.endswith("; nova tentativa em 1.0s"), line
    state = final_state(redis_client, env.queue, task.task_id)
    assert (state["status"], state["linhas"], state["tentativas"]) == ("concluido", "100", "2")
    assert "proxima_tentativa_em" not in state
    assert leftovers(env.export_dir) == [task.file]
    worker.assert_clean_exit()


def test_database_faults_fail_the_task_not_the_worker(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis, tmp_path: Path
) -> None:
    not_db = tmp_path / "texto.db"
    not_db.write_text("isto não é um banco SQLite " * 100)
    missing = tmp_path / "nao-existe.db"
    # A missing database is transient (it may be being generated): retried, then given up with
    # an `erro` that quotes the last one. A file that is not a database fails at once.
    env.db_path = missing
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, "TABELA", {})
    exhausted = final_state(redis_client, env.queue, task.task_id)
    detail = "No such file or directory"
    assert_failed(worker, exhausted, task.task_id, ErrorCode.ATTEMPTS_EXHAUSTED, detail=detail)
    assert exhausted["tentativas"] == "3"
    assert ERROR_TEXTS[ErrorCode.DATABASE_UNAVAILABLE] in exhausted["erro"]
    assert str(missing) in exhausted["erro"]  # the setting at fault, for the operator
    worker.assert_clean_exit()

    env.db_path = not_db
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, "TABELA", {})
    state = final_state(redis_client, env.queue, task.task_id)
    assert_failed(
        worker, state, task.task_id, ErrorCode.QUERY_FAILED, detail="file is not a database"
    )
    worker.assert_clean_exit()
    dead = [json.loads(d) for d in redis_client.lrange(f"{env.queue}:mortas", 0, -1)]
    assert [d["motivo"] for d in dead] == [exhausted["erro"]]
    assert leftovers(env.export_dir) == []


# ---- write faults ------------------------------------------------------------------------------


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))


def test_a_file_size_limit_fails_the_task_and_removes_the_part_file(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c-asan", env, preexec=limit_file_size)
    big = push(redis_client, env.queue, "LINHAS", {"n": 200_000})
    state = final_state(redis_client, env.queue, big.task_id)
    # EFBIG is not transient: failed at once.
    assert_failed(worker, state, big.task_id, ErrorCode.WRITE_FAILED, detail="File too large")
    assert state["tentativas"] == "1"
    small = push(redis_client, env.queue, "LINHAS", {"n": 10})
    assert final_state(redis_client, env.queue, small.task_id)["status"] == "concluido"
    assert leftovers(env.export_dir) == [small.file]
    worker.assert_clean_exit()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real ENOSPC (needs root to mount)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "cheio"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_fails_the_task_and_removes_the_part_file(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis, full_disk: Path
) -> None:
    env.export_dir = full_disk
    worker = start_c("c", env)
    big = push(redis_client, env.queue, "LINHAS", {"n": 200_000})
    state = final_state(redis_client, env.queue, big.task_id)
    # A full disk is transient: retried, then given up with an `erro` quoting the last one.
    detail = "No space left on device"
    assert_failed(worker, state, big.task_id, ErrorCode.ATTEMPTS_EXHAUSTED, detail=detail)
    assert ERROR_TEXTS[ErrorCode.DISK_FULL] in state["erro"] and state["tentativas"] == "3"
    assert leftovers(full_disk) == []
    worker.assert_clean_exit()


def test_a_vanished_export_folder_fails_the_task(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c", env)
    env.export_dir.rmdir()
    task = push(redis_client, env.queue, "LINHAS", {"n": 5})
    state = final_state(redis_client, env.queue, task.task_id)
    detail = "No such file or directory"
    assert_failed(worker, state, task.task_id, ErrorCode.WRITE_FAILED, detail=detail)
    worker.assert_clean_exit()


# ---- Redis, signals, heartbeat, configuration ----------------------------------------------------


def test_a_lost_redis_connection_is_logged_and_recovered(
    env: WorkerEnv, start_c: Callable[..., CWorker], tmp_path: Path
) -> None:
    port = free_port()
    server = start_redis(port, tmp_path)
    env.redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        worker = start_c("c-asan", env)
        server.terminate()
        server.wait(10)
        worker.wait_log("Conexão com o Redis perdida (")
        time.sleep(1.5)  # a few failed attempts, with backoff
        server = start_redis(port, tmp_path)
        client = redis.Redis(port=port, decode_responses=True)
        task = push(client, env.queue, "LINHAS", {"n": 2})
        assert final_state(client, env.queue, task.task_id, 30)["status"] == "concluido"
        assert "Conexão com o Redis restabelecida" in worker.log()
        client.close()
        worker.assert_clean_exit()
    finally:
        server.terminate()
        server.wait(10)


def test_sigterm_finishes_the_current_task_then_exits_zero(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c", env)
    heartbeat = Keys(env.queue).worker(f"c-{os.uname().nodename}-{worker.proc.pid}")
    beat = json.loads(redis_client.get(heartbeat) or "{}")
    assert beat["tipo"] == "c" and beat["pid"] == worker.proc.pid and beat["tarefa"] is None
    assert 0 < redis_client.ttl(heartbeat) <= 10
    task = push(redis_client, env.queue, "LINHAS", {"n": 2_000_000})
    key = Keys(env.queue).task(task.task_id)
    wait_until(lambda: redis_client.hget(key, "status") == "processando", 30, "the task to start")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(120) == 0
    assert redis_client.hget(key, "status") == "concluido"
    assert (env.export_dir / task.file).stat().st_size > 50_000_000
    assert redis_client.exists(heartbeat) == 0
    assert worker.log().rstrip().endswith("Worker C: Encerrando.")


def test_past_the_shutdown_deadline_the_task_goes_back_to_the_queue(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    env.extra["SHUTDOWN_DEADLINE_S"] = "0.5"
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, "LINHAS", {"n": 50_000_000})
    key = Keys(env.queue).task(task.task_id)
    wait_until(lambda: redis_client.hget(key, "status") == "processando", 30, "the task to start")
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(30) == 0
    assert time.monotonic() - started < 10
    state = redis_client.hgetall(key)
    assert (state["status"], state["tentativas"]) == ("na_fila", "0")
    assert redis_client.lrange(env.queue, 0, -1) == [task.to_json()]
    assert leftovers(env.export_dir) == []
    assert f"Tarefa devolvida à fila no desligamento (task_id={task.task_id})" in worker.log()
    worker.assert_clean_exit()


def test_an_idle_worker_stops_at_once(env: WorkerEnv, start_c: Callable[..., CWorker]) -> None:
    worker = start_c("c", env)
    time.sleep(0.5)  # inside the blocking pop
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(10) == 0
    assert time.monotonic() - started < 1.5
    assert "Conexão com o Redis perdida" not in worker.log()


def test_a_running_task_is_cancelled_within_half_a_second(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, "LINHAS", {"n": 50_000_000})
    key = Keys(env.queue).task(task.task_id)
    wait_until(lambda: int(redis_client.hget(key, "linhas") or 0) > 0, 30, "rows to be written")
    redis_client.hset(key, mapping={"status": "cancelado"})  # as the API does
    worker.wait_log(f"Tarefa cancelada (task_id={task.task_id})", 5)
    assert leftovers(env.export_dir) == []
    assert redis_client.hget(Keys(env.queue).stats, "tarefas_canceladas") is None  # already final
    after = push(redis_client, env.queue, "LINHAS", {"n": 1})
    assert final_state(redis_client, env.queue, after.task_id)["status"] == "concluido"
    worker.assert_clean_exit()


def test_final_tasks_are_skipped_and_exhausted_ones_are_dead_lettered(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c", env)
    cancelled = new_message("LINHAS", {"n": 1})
    redis_client.hset(Keys(env.queue).task(cancelled.task_id), mapping={"status": "cancelado"})
    redis_client.lpush(env.queue, cancelled.to_json())
    worker.wait_log(f"Tarefa ignorada (task_id={cancelled.task_id}, status=cancelado)")
    crashed = new_message("LINHAS", {"n": 1})
    redis_client.hset(Keys(env.queue).task(crashed.task_id), mapping={"tentativas": 3})
    redis_client.lpush(env.queue, crashed.to_json())
    state = final_state(redis_client, env.queue, crashed.task_id)
    assert_failed(worker, state, crashed.task_id, ErrorCode.ATTEMPTS_EXHAUSTED)
    assert state["tentativas"] == "4"  # the attempt that found the limit passed is not run
    assert 0 < redis_client.ttl(Keys(env.queue).task(crashed.task_id)) <= 8 * 86400
    assert json.loads(redis_client.lindex(f"{env.queue}:mortas", 0))["task_id"] == crashed.task_id
    assert leftovers(env.export_dir) == []


def test_the_messages_of_a_dead_worker_are_recovered(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    task = new_message("LINHAS", {"n": 4})
    redis_client.hset(Keys(env.queue).task(task.task_id), mapping={"status": "processando"})
    redis_client.lpush(f"{env.queue}:processando:python-morto-1", task.to_json())
    worker = start_c("c-asan", env)
    state = final_state(redis_client, env.queue, task.task_id)
    assert (state["status"], state["linhas"]) == ("concluido", "4")
    assert (
        f"Tarefa recuperada de worker morto (task_id={task.task_id}, worker=python-morto-1)"
    ) in worker.log()
    assert redis_client.exists(f"{env.queue}:processando:python-morto-1") == 0
    worker.assert_clean_exit()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("QUEUE_NAME", "fila com espaço"), ("REDIS_URL", "http://localhost"), ("PROGRESS_EVERY", "0")],
)
def test_a_bad_setting_stops_the_worker_at_start_up(
    variable: str, value: str, env: WorkerEnv, c_worker_bins: dict[str, Path]
) -> None:
    environ = {**env.environ(), variable: value}
    done = subprocess.run(
        [str(c_worker_bins["c"])], env=environ, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 2
    assert variable in done.stderr and "configuração inválida" in done.stderr


# ---- memory, fuzzing -----------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_memory_stays_flat_whatever_the_number_of_rows(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c", env)
    small = push(redis_client, env.queue, "LINHAS", {"n": 1_000})
    final_state(redis_client, env.queue, small.task_id)
    after_small = peak_rss_kib(worker.proc.pid)
    big = push(redis_client, env.queue, "LINHAS", {"n": 500_000})
    assert final_state(redis_client, env.queue, big.task_id)["linhas"] == "500000"
    after_big = peak_rss_kib(worker.proc.pid)
    assert after_big <= after_small * 1.10, (after_small, after_big)
    assert after_big < 8 * 1024


@pytest.mark.skipif(not shutil.which("clang"), reason="the fuzzer needs clang (libFuzzer)")
def test_the_message_parser_survives_a_short_fuzzing_run() -> None:
    done = subprocess.run(
        ["make", "-C", str(REPO / "app"), "fuzz-smoke", "FUZZ_SMOKE_SECONDS=10"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done" in done.stderr and "ERROR" not in done.stderr


# ---- machine-readable logs ---------------------------------------------------------------------


def test_log_format_json_writes_one_object_per_line_with_the_task_id(
    env: WorkerEnv,
    start_c: Callable[..., CWorker],
    redis_client: redis.Redis,
    c_worker_bins: dict[str, Path],
    tmp_path: Path,
) -> None:
    """LOG_FORMAT=json: the members of docs/protocol.md, the task's id on every line about a
    task, the events in their order, and valid UTF-8 JSON even when a line quotes bytes that
    are not UTF-8 (SQLite's message naming a table)."""
    bad = {**env.environ(), "LOG_FORMAT": "xml"}
    done = subprocess.run([str(c_worker_bins["c"])], env=bad, capture_output=True, timeout=10)
    assert done.returncode == 2 and b"LOG_FORMAT" in done.stderr

    env.catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG, env.catalog_dir)
    (env.catalog_dir / "NAO_UTF8.sql").write_bytes(b'SELECT * FROM "tabela_\xff";\n')
    env.extra["LOG_FORMAT"] = "json"
    recovered = new_message("LINHAS", {"n": 1})
    redis_client.lpush(f"{env.queue}:processando:python-morto-3", recovered.to_json())
    worker = start_c("c-asan", env)
    good = push(redis_client, env.queue, "LINHAS", {"n": 2})
    invalid_id = new_task_id()
    invalid = json.dumps(body(invalid_id, versao=3)).encode()
    redis_client.lpush(env.queue, invalid, b"not json")
    not_utf8 = push(redis_client, env.queue, "NAO_UTF8", {})
    task_ids = (recovered.task_id, good.task_id, invalid_id, not_utf8.task_id)
    # (This client decodes strictly: every field, `erro` included, is valid UTF-8.)
    states = {task_id: final_state(redis_client, env.queue, task_id) for task_id in task_ids}
    assert states[not_utf8.task_id]["erro_codigo"] == ErrorCode.QUERY_FAILED
    worker.assert_clean_exit()

    lines = worker.log_path.read_bytes().decode("utf-8").splitlines()  # strict: valid UTF-8
    entries = [json.loads(line) for line in lines]
    time_format = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    for entry in entries:
        keys = ["time", "level", "logger", "message"]
        assert list(entry) in (keys, [*keys, "task_id"]), entry
        assert re.fullmatch(time_format, entry["time"]), entry
        assert entry["logger"] == "relatorios.worker", entry
        assert entry["level"] in ("info", "warning", "error"), entry
        assert not entry["message"].startswith("Worker C"), entry
        assert entry.get("task_id") in (None, *task_ids), entry
        named = [task_id for task_id in task_ids if task_id in entry["message"]]
        if named:  # a line that names a task carries its id
            assert entry.get("task_id") == named[0], entry

    def about(task_id: str) -> list[tuple[str, str]]:
        return [(e["level"], event(e["message"])) for e in entries if e.get("task_id") == task_id]

    assert about(good.task_id) == [
        ("info", "Nova tarefa recebida"),
        ("info", "Executando consulta SQL pesada..."),
        ("info", "Relatório gerado com sucesso!"),
    ]
    success = [e["message"] for e in entries if e.get("task_id") == good.task_id][-1]
    assert f"linhas=2, bytes={states[good.task_id]['bytes']}" in success, success
    assert about(invalid_id) == [
        ("warning", "Mensagem inválida descartada"),
        ("error", "Falha na tarefa"),
    ]
    assert about(recovered.task_id)[0] == ("warning", "Tarefa recuperada de worker morto")
    assert about(not_utf8.task_id)[-1] == ("error", "Falha na tarefa")
    failure = [e["message"] for e in entries if e.get("task_id") == not_utf8.task_id][-1]
    assert "tabela_\ufffd" in failure, failure
    without_id = [e for e in entries if "task_id" not in e]
    [not_json] = [e for e in without_id if event(e["message"]) == "Mensagem inválida descartada"]
    assert not_json["level"] == "warning"
    assert event(without_id[0]["message"]) == "Aguardando por tarefas na fila"
    assert without_id[-1] == {**without_id[-1], "level": "info", "message": "Encerrando."}

"""The C worker under bad input and faults, in its release, sanitizer and valgrind builds.

Whatever happens - a hostile message, a broken database, a full disk, Redis going away, a
signal - the worker keeps serving or leaves cleanly, no task stays half-done, no `.part` file
is left behind, and the checked builds report no memory error and no leak. Invalid messages are
judged by the reference: relatorios.protocol.parse_message gives the reason the C worker must
give too.
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

from relatorios.protocol import InvalidMessage, Keys, Message, file_name, new_task_id, parse_message
from tests.conftest import REPO, WorkerEnv, free_port, start_redis, wait_until

DATA = Path(__file__).resolve().parent / "data" / "c_worker"
CATALOG = DATA / "catalog"
VALGRIND = shutil.which("valgrind")
C_KINDS = ["c", "c-asan"] + (["c-valgrind"] if VALGRIND else [])


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


def hostile_messages() -> list[bytes]:
    """Messages with a valid task id (their task must fail with the reason) and without."""
    ids = iter(new_task_id() for _ in range(100))
    js = lambda **f: json.dumps(body(next(ids), **f), ensure_ascii=False).encode()  # noqa: E731
    raw = lambda text: text.replace("TID", next(ids)).encode()  # noqa: E731
    many = {f"p{i}": i for i in range(33)}
    return [
        js(versao=1.0),
        js(versao="1"),
        js(versao=True),
        js(versao=2),
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
        js(parametros={"n": 2**53 + 1}),
        js(parametros={"n": -(2**53) - 1}),
        js(parametros={"n": 10**30}),
        raw('{"versao":1,"task_id":"TID","versao":1}'),
        raw('{"versao":1,"task_id":"TID","x":{"k":1,"k":2}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":NaN}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":-Infinity}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":01}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":1.}}'),
        raw('{"versao":1,"task_id":"TID","parametros":{"n":"\x01"}}'),
        raw('{"versao":1,"task_id":"TID"}\x0c'),
        raw('{"versao":1,"task_id":"TID"} {}'),
        raw('{"versao":1,"task_id":"TID","x":"\\u0000"}'),
        b'{"versao":1,"task_id":"' + next(ids).encode() + b'","x":"\xc3\x28"}',
        b'{"versao":1,"task_id":"' + next(ids).encode() + b'","x":"\xed\xa0\x80"}',
        js(x="y" * 70_000),
        js(task_id="0B7F6B8E-5D0E-4A2B-9A53-2F4F5B6C7D8E"),
        js(task_id=5),
        js(task_id=DROP),
        b"",
        b"   ",
        b"[]",
        b"null",
        b'"texto"',
        b"{",
        b"{}",
        b"\xff\xfe",
        b"not json",
    ]


def reason_of(raw: bytes) -> InvalidMessage:
    try:
        parse_message(raw)
    except InvalidMessage as exc:
        return exc
    raise AssertionError(f"the reference accepts {raw[:200]!r}")


@pytest.mark.parametrize("kind", C_KINDS)
def test_hostile_messages_fail_with_the_reference_reason_and_the_worker_keeps_serving(
    kind: str, env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c(kind, env)
    messages = [m for m in hostile_messages() if b"\\u0000" not in m]
    for raw in messages:
        redis_client.lpush(env.queue, raw)
    good = push(redis_client, env.queue, "LINHAS", {"n": 3})
    assert final_state(redis_client, env.queue, good.task_id, 120)["status"] == "concluido"

    stats = redis_client.hgetall(Keys(env.queue).stats)
    assert stats["mensagens_invalidas"] == str(len(messages))
    dead = [json.loads(d) for d in redis_client.lrange(f"{env.queue}:mortas", 0, -1)]
    assert len(dead) == len(messages)
    assert all(d["worker"].startswith("c-") for d in dead)
    assert sorted(d["tamanho"] for d in dead) == sorted(len(m) for m in messages)
    assert redis_client.llen(f"{env.queue}:processando:{dead[0]['worker']}") == 0
    log = worker.log()
    for raw in messages:
        expected = reason_of(raw)
        if expected.reason.startswith("mensagem não é JSON válido"):
            # The detail is the parser's own words; only the verdict must agree.
            assert expected.task_id is None
            continue
        assert f"Mensagem inválida descartada: {expected.reason}\n" in log
        if expected.task_id:
            state = redis_client.hgetall(Keys(env.queue).task(expected.task_id))
            assert state.get("status") == "falhou", raw[:300]
            assert state["erro"] == f"mensagem inválida: {expected.reason}"
    assert log.count("Mensagem inválida descartada: mensagem não é JSON válido") == sum(
        reason_of(raw).reason.startswith("mensagem não é JSON válido") for raw in messages
    )
    assert leftovers(env.export_dir) == [good.file]
    worker.assert_clean_exit()


def test_messages_the_python_reference_mishandles_are_rejected(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    """Deep nesting (RecursionError in Python), a name with a trailing newline (Python's `$`
    matches before it), \\u0000 (not representable in a C string) and a lone surrogate (cJSON
    refuses it) are invalid messages for the C worker."""
    worker = start_c("c-asan", env)
    task_id = new_task_id()
    nested = (
        b'{"versao":1,"task_id":"' + task_id.encode() + b'","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    )
    newline = json.dumps(body(new_task_id(), tipo_relatorio="LINHAS\n")).encode()
    nul = json.dumps(body(new_task_id(), parametros={"n": "a\x00b"})).encode()
    surrogate = json.dumps(body(new_task_id(), x="\ud800")).encode()
    for raw in (nested, newline, nul, surrogate):
        redis_client.lpush(env.queue, raw)
    good = push(redis_client, env.queue, "LINHAS", {"n": 1})
    assert final_state(redis_client, env.queue, good.task_id)["status"] == "concluido"
    assert redis_client.hget(Keys(env.queue).stats, "mensagens_invalidas") == "4"
    assert "campo 'tipo_relatorio' ausente ou inválido" in worker.log()
    worker.assert_clean_exit()


def test_numbers_bind_as_the_protocol_says(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    """2^53 is still an exact integer; 5.0 binds as INTEGER; the message's JSON is kept."""
    start_c("c", env)
    task_id = new_task_id()
    raw = json.dumps(body(task_id, parametros={"n": 3.0}))
    redis_client.lpush(env.queue, raw)
    state = final_state(redis_client, env.queue, task_id)
    assert state["status"] == "concluido" and state["linhas"] == "3"
    assert state["parametros"] == '{"n": 3.0}'
    edge = push(redis_client, env.queue, "LINHAS", {"n": -(2**53)})
    assert final_state(redis_client, env.queue, edge.task_id)["linhas"] == "0"


# ---- database and SQL faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "params", "erro"),
    [
        ("TABELA", {"x": 1}, "parâmetro desconhecido: x"),
        ("LINHAS", {}, "parâmetro ausente: n"),
        ("NAO_EXISTE", {}, "tipo de relatório desconhecido: NAO_EXISTE"),
        (
            "DUAS_CONSULTAS",
            {},
            "erro no SQL do relatório: You can only execute one statement at a time.",
        ),
        (
            "POSICIONAL",
            {},
            "erro no SQL do relatório: Binding 1 has no name, but you supplied a "
            "dictionary (which has only names).",
        ),
        ("ERRO_EM_TEMPO_DE_EXECUCAO", {}, "erro do SQLite: malformed JSON"),
    ],
)
def test_sql_faults_fail_the_task_and_leave_no_file(
    report: str,
    params: dict[str, object],
    erro: str,
    env: WorkerEnv,
    start_c: Callable[..., CWorker],
    redis_client: redis.Redis,
) -> None:
    worker = start_c("c-asan", env)
    task = push(redis_client, env.queue, report, params)
    state = final_state(redis_client, env.queue, task.task_id)
    assert (state["status"], state["erro"]) == ("falhou", erro)
    assert f"Falha na tarefa (task_id={task.task_id}): {erro}" in worker.log()
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
    worker.wait_log(
        f"Falha temporária (task_id={task.task_id}, tentativa=1): "
        "erro do SQLite: database is locked; nova tentativa em 1.0s"
    )
    lock.execute("ROLLBACK")
    lock.close()
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
    for path, erro in [
        # Transient (the database may be being generated): retried, then given up.
        (missing, f"tentativas esgotadas (3): banco de dados não encontrado: {missing}"),
        (not_db, "erro do SQLite: file is not a database"),
    ]:
        env.db_path = path
        worker = start_c("c-asan", env)
        task = push(redis_client, env.queue, "TABELA", {})
        assert final_state(redis_client, env.queue, task.task_id)["erro"] == erro
        worker.assert_clean_exit()
    dead = [json.loads(d) for d in redis_client.lrange(f"{env.queue}:mortas", 0, -1)]
    reason = f"tentativas esgotadas (3): banco de dados não encontrado: {missing}"
    assert [d["motivo"] for d in dead] == [reason]
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
    assert state["status"] == "falhou"
    assert state["erro"] == f"erro de escrita em {big.file}.part: File too large"
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
    # A full disk is transient: retried, then given up.
    assert state["erro"] == (
        f"tentativas esgotadas (3): erro de escrita em {big.file}.part: No space left on device"
    )
    assert leftovers(full_disk) == []
    worker.assert_clean_exit()


def test_a_vanished_export_folder_fails_the_task(
    env: WorkerEnv, start_c: Callable[..., CWorker], redis_client: redis.Redis
) -> None:
    worker = start_c("c", env)
    env.export_dir.rmdir()
    task = push(redis_client, env.queue, "LINHAS", {"n": 5})
    state = final_state(redis_client, env.queue, task.task_id)
    assert state["erro"] == f"erro de escrita em {task.file}.part: No such file or directory"
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
    assert state["erro"] == "tentativas esgotadas (3): o worker parou durante a tarefa"
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
    """LOG_FORMAT=json: the lines of relatorios.logs.JsonFormatter, the task's id on every line
    about a task, and valid UTF-8 JSON even when a message quotes bytes that are not UTF-8."""
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
    invalid = json.dumps(body(invalid_id, versao=2)).encode()
    redis_client.lpush(env.queue, invalid, b"not json")
    not_utf8 = push(redis_client, env.queue, "NAO_UTF8", {})
    task_ids = (recovered.task_id, good.task_id, invalid_id, not_utf8.task_id)
    states = {task_id: final_state(redis_client, env.queue, task_id) for task_id in task_ids[:3]}
    # Its `erro` holds the byte 0xff, which this (decoding) client cannot read: wait on `status`.
    key = Keys(env.queue).task(not_utf8.task_id)
    wait_until(lambda: redis_client.hget(key, "status") == "falhou", 30, not_utf8.task_id)
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
        return [(e["level"], e["message"]) for e in entries if e.get("task_id") == task_id]

    assert about(good.task_id) == [
        ("info", f"Nova tarefa recebida (task_id={good.task_id}, tipo=LINHAS)"),
        ("info", f"Executando consulta SQL pesada... (task_id={good.task_id})"),
        (
            "info",
            f"Relatório gerado com sucesso! (task_id={good.task_id}, arquivo={good.file}, "
            f"linhas=2, bytes={states[good.task_id]['bytes']})",
        ),
    ]
    reason = reason_of(invalid).reason
    assert about(invalid_id) == [
        ("warning", f"Mensagem inválida descartada: {reason}"),
        ("error", f"Falha na tarefa (task_id={invalid_id}): mensagem inválida: {reason}"),
    ]
    recovery = f"Tarefa recuperada de worker morto (task_id={recovered.task_id}, worker="
    assert about(recovered.task_id)[0][0] == "warning"
    assert about(recovered.task_id)[0][1].startswith(recovery)
    failure = about(not_utf8.task_id)[-1]
    assert failure[0] == "error" and "tabela_\ufffd" in failure[1], failure
    without_id = [e for e in entries if "task_id" not in e]
    [not_json] = [e for e in without_id if e["message"].startswith("Mensagem inválida")]
    assert not_json["level"] == "warning"
    assert not_json["message"].startswith("Mensagem inválida descartada: mensagem não é JSON")
    assert without_id[0]["message"].startswith("Aguardando por tarefas na fila")
    assert without_id[-1] == {**without_id[-1], "level": "info", "message": "Encerrando."}

"""The worker's life: wait on the queue, run one task at a time, record its state in Redis."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import FrameType

import redis

from relatorios.logs import setup_logging
from relatorios.protocol import (
    HEARTBEAT_EVERY_S,
    HEARTBEAT_TTL_S,
    POP_TIMEOUT_S,
    F,
    InvalidMessage,
    Keys,
    Message,
    Stat,
    Status,
    now_iso,
    parse_message,
)
from relatorios.settings import Settings, get_settings
from relatorios.worker.export import ReportError, bind_params, open_readonly, write_csv

log = logging.getLogger("relatorios.worker")
MAX_BACKOFF_S = 5.0


class Shutdown(Exception):
    """Raised by the signal handler to leave a blocking pop at once."""


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.queue_name)
        self.id = f"python-{socket.gethostname()}-{os.getpid()}"
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        # Messages are popped as bytes: one that is not UTF-8 must be rejected, not crash the pop.
        # Its read timeout must outlast the blocking pop, or every idle BRPOP looks like an outage.
        self.queue = redis.Redis.from_url(settings.redis_url, socket_timeout=POP_TIMEOUT_S + 10)
        self.stopping = False
        self.popping = False
        self.current: str | None = None
        self.started_at = now_iso()
        self._last_beat = 0.0

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: finish the current task, then leave; if idle, leave now."""
        self.stopping = True
        if self.popping:
            raise Shutdown

    def run(self) -> None:
        log.info("Aguardando por tarefas na fila '%s' (Comando BRPOP)...", self.keys.queue)
        backoff = 0.5
        while not self.stopping:
            try:
                self.heartbeat(force=True)
                popped = self.pop()
                backoff = 0.5
            except Shutdown:
                break
            except redis.RedisError as exc:
                log.warning(
                    "Conexão com o Redis perdida (%s); nova tentativa em %.1fs", exc, backoff
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if popped is not None:
                _queue, raw = popped
                self.handle(raw if isinstance(raw, bytes) else raw.encode())
                log.info("Aguardando por tarefas na fila '%s' (Comando BRPOP)...", self.keys.queue)
        self.redis.delete(self.keys.worker(self.id))

    def pop(self) -> tuple[bytes, bytes] | None:
        self.popping = True
        try:
            if self.stopping:
                raise Shutdown
            return self.queue.brpop([self.keys.queue], timeout=POP_TIMEOUT_S)  # type: ignore[return-value]
        finally:
            self.popping = False

    def heartbeat(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < HEARTBEAT_EVERY_S:
            return
        beat = {
            "id": self.id,
            "tipo": "python",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "iniciado_em": self.started_at,
            "tarefa": self.current,
        }
        self.redis.set(self.keys.worker(self.id), json.dumps(beat), ex=HEARTBEAT_TTL_S)
        self._last_beat = time.monotonic()

    def handle(self, raw: bytes) -> None:
        try:
            message = parse_message(raw)
        except InvalidMessage as exc:
            self.reject(exc)
            return
        log.info("Nova tarefa recebida (task_id=%s, tipo=%s)", message.task_id, message.report_type)
        self.current = message.task_id
        try:
            self.execute(message)
        finally:
            self.current = None

    def reject(self, exc: InvalidMessage) -> None:
        log.warning("Mensagem inválida descartada: %s", exc.reason)
        self.redis.hincrby(self.keys.stats, Stat.INVALID, 1)
        if exc.task_id:
            self.fail(exc.task_id, f"mensagem inválida: {exc.reason}")

    def execute(self, message: Message) -> None:
        key = self.keys.task(message.task_id)
        self.redis.zadd(self.keys.tasks, {message.task_id: int(time.time() * 1000)}, nx=True)
        self.redis.hset(
            key,
            mapping={
                F.STATUS: Status.RUNNING,
                F.TYPE: message.report_type,
                F.FILE: message.file,
                F.PARAMS: json.dumps(message.params, ensure_ascii=False),
                F.STARTED: now_iso(),
                F.WORKER: self.id,
                F.ROWS: 0,
                F.BYTES: 0,
            },
        )
        self.heartbeat(force=True)
        try:
            rows, size = self.export(message)
        except ReportError as exc:
            self.fail(message.task_id, str(exc))
            return
        self.redis.hset(
            key, mapping={F.STATUS: Status.DONE, F.ROWS: rows, F.BYTES: size, F.FINISHED: now_iso()}
        )
        self.count(Stat.DONE, rows, size)
        log.info(
            "Relatório gerado com sucesso! (task_id=%s, arquivo=%s, linhas=%d, bytes=%d)",
            message.task_id,
            message.file,
            rows,
            size,
        )

    def export(self, message: Message) -> tuple[int, int]:
        sql_path = self.settings.catalog_dir / f"{message.report_type}.sql"
        if not sql_path.is_file():
            raise ReportError(f"tipo de relatório desconhecido: {message.report_type}")
        sql = sql_path.read_text(encoding="utf-8")
        conn = open_readonly(self.settings.db_path)
        try:
            params = bind_params(conn, sql, message.params)
            log.info("Executando consulta SQL pesada... (task_id=%s)", message.task_id)
            key = self.keys.task(message.task_id)

            def progress(rows: int, size: int) -> None:
                self.redis.hset(key, mapping={F.ROWS: rows, F.BYTES: size})
                self.heartbeat()

            target = self.settings.export_dir / message.file
            return write_csv(conn, sql, params, target, progress, self.settings.progress_every)
        finally:
            conn.close()

    def fail(self, task_id: str, error: str) -> None:
        log.error("Falha na tarefa (task_id=%s): %s", task_id, error)
        self.redis.zadd(self.keys.tasks, {task_id: int(time.time() * 1000)}, nx=True)
        self.redis.hset(
            self.keys.task(task_id),
            mapping={
                F.STATUS: Status.FAILED,
                F.ERROR: error,
                F.FINISHED: now_iso(),
                F.WORKER: self.id,
            },
        )
        self.count(Stat.FAILED, 0, 0)

    def count(self, outcome: str, rows: int, size: int) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(self.keys.stats, outcome, 1)
        pipe.hincrby(self.keys.stats, Stat.ROWS, rows)
        pipe.hincrby(self.keys.stats, Stat.BYTES, size)
        pipe.execute()


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_format, prefix="Worker Python: ")
    Path(settings.export_dir).mkdir(parents=True, exist_ok=True)
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()
    return 0

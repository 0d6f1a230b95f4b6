"""The worker's life: take a task reliably, run it, record its final state (docs/protocol.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType

import redis

from relatorios.catalog import CatalogError, load_report
from relatorios.logs import current_task, setup_logging
from relatorios.protocol import (
    ERROR_TEXTS,
    FINAL_STATES,
    FINAL_WRITE_ATTEMPTS,
    HEARTBEAT_EVERY_S,
    HEARTBEAT_TTL_S,
    MOVE_DUE_RETRIES_LUA,
    POP_TIMEOUT_S,
    POSTGRESQL_URL_PREFIXES,
    RECOVER_EVERY_S,
    REDIS_BACKOFF_FIRST_S,
    REDIS_BACKOFF_MAX_S,
    RETRY_MOVE_BATCH,
    SOURCE_POSTGRESQL,
    WATCH_EVERY_S,
    Beat,
    ErrorCode,
    F,
    InvalidMessage,
    Keys,
    Message,
    Stat,
    Status,
    iso,
    now_iso,
    parse_message,
    retry_delay,
)
from relatorios.settings import Settings, get_settings
from relatorios.worker.export import Output, check_output, export, resolve_params
from relatorios.worker.report import Interrupted, ReportError
from relatorios.worker.source import open_source
from relatorios.worker.state import Fields, TaskStates, recover

log = logging.getLogger("relatorios.worker")
SHUTDOWN = "desligamento"
STALLED = "parada"  # no new row for the report's stall timeout
DEAD_LETTER_CODES = frozenset({ErrorCode.PERMISSION_DENIED, ErrorCode.INVALID_PARAMETER})
WAITING = "Aguardando por tarefas na fila '%s' (Comando BRPOP)..."


class Shutdown(Exception):
    """Raised by the signal handler to leave a blocking pop at once."""


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.queue_name)
        self.id = f"python-{socket.gethostname()}-{os.getpid()}"
        # Replace, don't raise: a field written by another worker may hold invalid UTF-8.
        self.redis = redis.Redis.from_url(
            settings.redis_url, decode_responses=True, encoding_errors="replace"
        )
        # Messages are handled as bytes: one that is not UTF-8 must be rejected, not crash the pop.
        # Its read timeout must outlast the blocking pop, or every idle pop looks like an outage.
        self.queue = redis.Redis.from_url(settings.redis_url, socket_timeout=POP_TIMEOUT_S + 10)
        # Delayed retries (docs/protocol.md): the protocol's scripts, run with EVALSHA.
        self.move_due_retries = self.queue.register_script(MOVE_DUE_RETRIES_LUA)
        self.pop_timeout: float = POP_TIMEOUT_S
        retention_s = int(settings.retention_days * 86_400)
        self.states = TaskStates(self.redis, self.keys, self.id, retention_s)
        self.stopping = False
        self.popping = False
        self.deadline = math.inf
        self.current: str | None = None
        # The stall clock of the running attempt: rows seen, when they last moved, the limit.
        self.rows_seen = 0
        self.moved_at = math.inf
        self.stall_s = 0.0
        self.started_at = now_iso()
        self._last_beat = self._last_watch = self._last_recover = -math.inf

    # --- the idle loop -------------------------------------------------------------------

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: take no more tasks; finish the current one before the deadline."""
        if not self.stopping:
            self.deadline = time.monotonic() + self.settings.shutdown_deadline_s
        self.stopping = True
        if self.popping:
            raise Shutdown

    def wait_for_database(self) -> bool:
        """PostgreSQL: reach the server before serving, retrying with backoff while it is down.
        False when it refuses the credentials (the worker exits: a setting to fix)."""
        if self.settings.source != SOURCE_POSTGRESQL:
            return True
        if not self.settings.database_url.startswith(POSTGRESQL_URL_PREFIXES):
            log.error("DATABASE_URL deve começar com postgresql:// ou postgres://")
            return False
        # Imported here: psycopg weighs about 20 MB, which a SQLite worker never needs.
        import psycopg

        from relatorios import postgres

        backoff = REDIS_BACKOFF_FIRST_S
        while not self.stopping:
            try:
                postgres.ping(self.settings.database_url)
                return True
            except postgres.Refused as exc:
                log.error("%s", exc)
                return False
            except psycopg.Error as exc:
                log.warning(
                    "Banco de dados indisponível (%s: %s); nova tentativa em %.1fs",
                    postgres.connection_problem(exc),
                    postgres.server_said(exc),
                    backoff,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, REDIS_BACKOFF_MAX_S)
        return True

    def run(self) -> None:
        log.info(WAITING, self.keys.queue)
        backoff, lost = REDIS_BACKOFF_FIRST_S, False
        while not self.stopping:
            try:
                if lost:
                    self._last_recover = -math.inf  # leftovers of the outage go back first
                self.tick()
                raw = self.pop()
                if lost:
                    log.info("Conexão com o Redis restabelecida")
                backoff, lost = REDIS_BACKOFF_FIRST_S, False
                if raw is not None:
                    self.handle(raw)
                    log.info(WAITING, self.keys.queue)
            except Shutdown:
                break
            except redis.RedisError as exc:
                log.warning(
                    "Conexão com o Redis perdida (%s); nova tentativa em %.1fs", exc, backoff
                )
                time.sleep(backoff)
                backoff, lost = min(backoff * 2, REDIS_BACKOFF_MAX_S), True
        self.goodbye()

    def tick(self) -> None:
        self.heartbeat()
        if time.monotonic() - self._last_recover >= RECOVER_EVERY_S:
            # At start-up and after an outage (never recovered: -inf), a scan of every list.
            recover(self.queue, self.states, idle=True, scan=self._last_recover == -math.inf)
            self._last_recover = time.monotonic()
        self.move_retries()

    def move_retries(self) -> None:
        """Due retries go to the queue; the pop waits no longer than the next one's due time."""
        keys = [self.keys.retries, self.keys.queue]
        _moved, wait_ms = self.move_due_retries(keys=keys, args=[RETRY_MOVE_BATCH])
        wait_s = int(wait_ms) / 1000
        self.pop_timeout = POP_TIMEOUT_S if wait_s < 0 else min(POP_TIMEOUT_S, max(wait_s, 0.01))

    def pop(self) -> bytes | None:
        self.popping = True
        try:
            if self.stopping:
                raise Shutdown
            return self.queue.blmove(  # type: ignore[return-value]
                self.keys.queue,
                self.keys.processing(self.id),
                self.pop_timeout,  # type: ignore[arg-type]  # Redis takes fractional seconds
                "RIGHT",
                "LEFT",
            )
        finally:
            self.popping = False

    def heartbeat(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < HEARTBEAT_EVERY_S:
            return
        beat = {
            Beat.ID: self.id,
            Beat.KIND: "python",
            Beat.PID: os.getpid(),
            Beat.HOST: socket.gethostname(),
            Beat.STARTED: self.started_at,
            Beat.TASK: self.current,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.worker(self.id), json.dumps(beat), ex=HEARTBEAT_TTL_S)
        pipe.zadd(self.keys.workers, {self.id: int(time.time() * 1000)})
        pipe.execute()
        self._last_beat = time.monotonic()

    def goodbye(self) -> None:
        with contextlib.suppress(redis.RedisError):  # otherwise it expires by itself
            self.redis.delete(self.keys.worker(self.id))
            self.redis.zrem(self.keys.workers, self.id)
        log.info("Encerrando.")

    # --- one message ---------------------------------------------------------------------

    def handle(self, raw: bytes) -> None:
        try:
            message = parse_message(raw)
        except InvalidMessage as exc:
            token = current_task.set(exc.task_id)
            try:
                self.reject(raw, exc)
            finally:
                current_task.reset(token)
            return
        token = current_task.set(message.task_id)
        try:
            self.handle_task(message, raw)
        finally:
            current_task.reset(token)

    def handle_task(self, message: Message, raw: bytes) -> None:
        status = self.redis.hget(self.keys.task(message.task_id), F.STATUS)
        if status in FINAL_STATES:
            log.info("Tarefa ignorada (task_id=%s, status=%s)", message.task_id, status)
            self.states.release(raw)
            return
        log.info("Nova tarefa recebida (task_id=%s, tipo=%s)", message.task_id, message.report_type)
        self.current = message.task_id
        try:
            self.attempts(message, raw)
        finally:
            self.current = None

    def reject(self, raw: bytes, exc: InvalidMessage) -> None:
        log.warning("Mensagem inválida descartada: %s", exc.reason)
        self.redis.hincrby(self.keys.stats, Stat.INVALID, 1)
        self.states.dead_letter(raw, exc.reason, exc.task_id)
        if exc.task_id:
            error = ReportError(ErrorCode.INVALID_MESSAGE, f"mensagem inválida: {exc.reason}")
            self.fail(exc.task_id, raw, error)
        else:
            self.states.release(raw)

    def attempts(self, message: Message, raw: bytes) -> None:
        """Run one attempt: the task reaches a final state, waits for a retry or goes back."""
        key = self.keys.task(message.task_id)
        limit = self.settings.max_attempts
        attempt = int(self.redis.hincrby(key, F.ATTEMPTS, 1))
        if attempt > limit:
            last = self.redis.hget(key, F.ERROR) or "o worker parou durante a tarefa"
            self.give_up(message.task_id, raw, limit, str(last))
            return
        self.mark_running(message)
        try:
            rows, size = self.export(message)
        except Interrupted as exc:
            self.interrupted(message, raw, exc.reason)
            return
        except ReportError as exc:
            if not exc.transient:
                self.fail(message.task_id, raw, exc)
            elif attempt >= limit:
                self.give_up(message.task_id, raw, limit, str(exc))
            else:
                self.retry_later(message, raw, attempt, exc)
            return
        self.done(message, raw, rows, size)

    def mark_running(self, message: Message) -> None:
        key = self.keys.task(message.task_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.keys.tasks, {message.task_id: int(time.time() * 1000)}, nx=True)
        pipe.hset(
            key,
            mapping={
                F.STATUS: Status.RUNNING,
                F.TYPE: message.report_type,
                F.FILE: message.file,
                F.FORMAT: message.formato,
                F.COMPRESSION: message.compressao,
                F.PARAMS: json.dumps(message.params, ensure_ascii=False),
                F.STARTED: now_iso(),
                F.WORKER: self.id,
                F.ROWS: 0,
                F.BYTES: 0,
            },
        )
        pipe.hdel(key, F.NEXT_ATTEMPT)  # the retry it announced is this attempt
        pipe.eval(*self.keys.index_status(message.task_id, Status.RUNNING))
        pipe.execute()
        self.heartbeat(force=True)

    def export(self, message: Message) -> tuple[int, int]:
        sql_path = self.settings.catalog_dir / f"{message.report_type}.sql"
        if not sql_path.is_file():
            text = f"{ERROR_TEXTS[ErrorCode.UNKNOWN_TYPE]}: {message.report_type}"
            raise ReportError(ErrorCode.UNKNOWN_TYPE, text)
        try:
            report = load_report(sql_path)
        except (CatalogError, OSError, UnicodeDecodeError) as exc:
            raise ReportError(ErrorCode.QUERY_FAILED, detail=str(exc)) from None
        if self.settings.source not in report.sources:
            text = f"{ERROR_TEXTS[ErrorCode.UNKNOWN_TYPE]}: {message.report_type}"
            where = f"não disponível em {self.settings.source}"
            raise ReportError(ErrorCode.UNKNOWN_TYPE, f"{text} ({where})")
        params = resolve_params(report, message.params)
        output = Output(
            message.formato,
            message.compressao,
            self.settings.neutralizar_formulas,
            self.settings.xlsx_linhas_por_aba,
        )
        check_output(output, message.file)
        log.info("Executando consulta SQL pesada... (task_id=%s)", message.task_id)
        key = self.keys.task(message.task_id)

        def progress(rows: int, size: int) -> None:
            # Progress is advisory; the final state is retried until recorded.
            with contextlib.suppress(redis.RedisError):
                self.redis.hset(key, mapping={F.ROWS: rows, F.BYTES: size})

        target = self.settings.export_dir / message.file
        every = self.settings.progress_every
        source = partial(open_source, self.settings)
        self.stall_s = (
            self.settings.task_timeout_s if report.timeout_s is None else report.timeout_s
        )
        self.rows_seen, self.moved_at = 0, time.monotonic()
        try:
            return export(
                report, params, source, target, progress, every, self.check, output, self.written
            )
        finally:
            self.moved_at = math.inf

    def written(self, rows: int, size: int) -> None:
        """After every batch: the stall clock restarts, and the task's limits are enforced."""
        if rows != self.rows_seen:
            self.rows_seen, self.moved_at = rows, time.monotonic()
        limit_rows, limit_bytes = self.settings.max_task_rows, self.settings.max_task_bytes
        if limit_rows and rows > limit_rows:
            text = f"{ERROR_TEXTS[ErrorCode.ROW_LIMIT]}: mais de {limit_rows} linhas"
            raise ReportError(ErrorCode.ROW_LIMIT, text)
        if limit_bytes and size > limit_bytes:
            text = f"{ERROR_TEXTS[ErrorCode.BYTE_LIMIT]}: mais de {limit_bytes} bytes"
            raise ReportError(ErrorCode.BYTE_LIMIT, text)

    def check(self) -> str | None:
        """Called while a task runs: why it must stop now (cancelled, shutdown), or None."""
        now = time.monotonic()
        if self.stopping and now >= self.deadline:
            return SHUTDOWN
        if self.stall_s and now - self.moved_at >= self.stall_s:
            return STALLED
        if now - self._last_watch < WATCH_EVERY_S or self.current is None:
            return None
        self._last_watch = now
        try:
            self.heartbeat()
            status = self.redis.hget(self.keys.task(self.current), F.STATUS)
        except redis.RedisError:
            return None
        return Status.CANCELLED if status == Status.CANCELLED else None

    def retry_later(self, message: Message, raw: bytes, attempt: int, error: ReportError) -> None:
        """A transient error: the message waits in `Q:adiadas` until its retry is due, and this
        worker serves other tasks meanwhile (docs/protocol.md, "Delayed retries")."""
        delay = retry_delay(self.settings.retry_base_s, attempt)
        next_at = iso(datetime.now(UTC) + timedelta(seconds=delay))
        if not self.states.schedule_retry(message.task_id, raw, delay, error, next_at):
            log.info("Tarefa cancelada (task_id=%s)", message.task_id)
            return
        log.warning(
            "Falha temporária (task_id=%s, tentativa=%d): %s%s; nova tentativa em %.1fs",
            message.task_id,
            attempt,
            error,
            f" ({error.detail})" if error.detail else "",
            delay,
        )

    # --- final states --------------------------------------------------------------------

    def done(self, message: Message, raw: bytes, rows: int, size: int) -> None:
        target = self.settings.export_dir / message.file
        fields: Fields = {F.ROWS: rows, F.BYTES: size}
        if self.record(message.task_id, raw, Status.DONE, fields, target):
            log.info(
                "Relatório gerado com sucesso! (task_id=%s, arquivo=%s, linhas=%d, bytes=%d)",
                message.task_id,
                message.file,
                rows,
                size,
            )
        else:
            log.info("Tarefa já finalizada por outro caminho (task_id=%s)", message.task_id)

    def interrupted(self, message: Message, raw: bytes, reason: str) -> None:
        if reason == Status.CANCELLED:
            self.record(message.task_id, raw, Status.CANCELLED, {})
            log.info("Tarefa cancelada (task_id=%s)", message.task_id)
        elif reason == STALLED:
            text = f"{ERROR_TEXTS[ErrorCode.STALLED]}: {self.stall_s:g} s sem linhas novas"
            self.fail(message.task_id, raw, ReportError(ErrorCode.STALLED, text))
        else:
            self.states.put_back(message.task_id, raw)
            log.info("Tarefa devolvida à fila no desligamento (task_id=%s)", message.task_id)

    def fail(self, task_id: str, raw: bytes, error: ReportError) -> None:
        detail = f" ({error.detail})" if error.detail else ""
        log.error("Falha na tarefa (task_id=%s): %s%s", task_id, error, detail)
        # No retry can succeed: an operator's case (a permission), or a message no API wrote.
        if error.code in DEAD_LETTER_CODES:
            self.states.dead_letter(raw, str(error), task_id)
        fields: Fields = {F.ERROR: str(error), F.ERROR_CODE: error.code}
        self.record(task_id, raw, Status.FAILED, fields)

    def give_up(self, task_id: str, raw: bytes, limit: int, last: str) -> None:
        """Attempts exhausted: dead-letter the message and fail the task, quoting the last error."""
        text = f"{ERROR_TEXTS[ErrorCode.ATTEMPTS_EXHAUSTED]} ({limit}): {last}"
        self.states.dead_letter(raw, text, task_id)
        self.fail(task_id, raw, ReportError(ErrorCode.ATTEMPTS_EXHAUSTED, text))

    def record(
        self,
        task_id: str,
        raw: bytes,
        status: Status,
        fields: Fields,
        output: Path | None = None,
    ) -> bool:
        """Record a final state, retrying while Redis is away (the file is already complete)."""
        backoff = REDIS_BACKOFF_FIRST_S
        for _ in range(FINAL_WRITE_ATTEMPTS):
            try:
                return self.states.finish(task_id, raw, status, fields, output)
            except redis.RedisError as exc:
                log.warning("Redis indisponível ao registrar %s (%s); nova tentativa", task_id, exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, REDIS_BACKOFF_MAX_S)
        # Still in our processing list: recovery will run it again once Redis is back.
        raise redis.ConnectionError(f"não foi possível registrar o estado final de {task_id}")


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_format, prefix="Worker Python: ")
    Path(settings.export_dir).mkdir(parents=True, exist_ok=True)
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if not worker.wait_for_database():
        return 2
    worker.run()
    return 0

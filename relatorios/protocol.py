"""The queue protocol shared by the API and every worker.

This module is the single source of truth for key names, message fields and task states;
docs/protocol.md describes the same thing for humans and app/protocol.h mirrors it for the
C worker. Nobody else spells a key name.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1
DEFAULT_QUEUE = "fila_relatorios"
MAX_MESSAGE_BYTES = 64 * 1024
MAX_PARAMS = 32
MAX_PARAM_TEXT = 1024  # bytes of UTF-8
# JSON numbers are exact integers only up to 2**53 in a double (and in cJSON): beyond that, invalid.
MAX_SAFE_INTEGER = 2**53

# A worker refreshes its heartbeat at least this often, and the key lives this long: a worker
# silent for HEARTBEAT_TTL_S is dead, and recovery puts its tasks back on the queue.
HEARTBEAT_EVERY_S = 2
HEARTBEAT_TTL_S = 10
RECOVER_EVERY_S = 10
# While a task runs, the worker looks at its status (cancellation) and beats this often.
WATCH_EVERY_S = 0.5
# Blocking pop timeout: bounds how long a worker takes to notice a shutdown request.
POP_TIMEOUT_S = 5
RETRY_MAX_DELAY_S = 30
DEAD_LETTERS_KEPT = 10_000
DEAD_LETTER_EXCERPT = 1024
# Progress (rows, bytes) is written to the task hash every this many rows.
PROGRESS_EVERY_ROWS = 10_000

# \Z, not $: `$` also matches before a trailing newline, and "X\n" must not pass for "X".
TASK_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
REPORT_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")
FILE_NAME_RE = re.compile(r"^relatorio_[A-Z][A-Z0-9_]{0,63}_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}\.csv\Z")
PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


class Status(StrEnum):
    """Task states, as stored in the task hash's `status` field."""

    QUEUED = "na_fila"
    RUNNING = "processando"
    DONE = "concluido"
    FAILED = "falhou"
    CANCELLED = "cancelado"
    EXPIRED = "expirado"


FINAL_STATES = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, Status.EXPIRED})


class F:
    """Field names of the task hash `<queue>:tarefa:<task_id>`."""

    STATUS = "status"
    TYPE = "tipo_relatorio"
    PARAMS = "parametros"  # JSON object, as in the message
    FILE = "arquivo"
    ROWS = "linhas"
    BYTES = "bytes"
    CREATED = "criado_em"
    STARTED = "iniciado_em"
    FINISHED = "concluido_em"
    ERROR = "erro"
    WORKER = "worker"
    ATTEMPTS = "tentativas"
    NEXT_ATTEMPT = "proxima_tentativa_em"
    CANCELLED = "cancelado_em"
    EXPIRED = "expirado_em"


class Stat:
    """Counter fields of the statistics hash `<queue>:estatisticas`."""

    DONE = "tarefas_concluidas"
    FAILED = "tarefas_falhas"
    CANCELLED = "tarefas_canceladas"
    INVALID = "mensagens_invalidas"
    ROWS = "linhas"
    BYTES = "bytes"


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one queue. All keys start with the queue name."""

    queue: str = DEFAULT_QUEUE

    def task(self, task_id: str) -> str:
        return f"{self.queue}:tarefa:{task_id}"

    @property
    def tasks(self) -> str:
        """Sorted set of task ids, scored by creation time in epoch milliseconds."""
        return f"{self.queue}:tarefas"

    @property
    def dead(self) -> str:
        """Dead letters: messages that can never succeed, newest first."""
        return f"{self.queue}:mortas"

    @property
    def processing_prefix(self) -> str:
        return f"{self.queue}:processando:"

    def processing(self, worker_id: str) -> str:
        """Messages taken by one worker and not finished yet."""
        return f"{self.processing_prefix}{worker_id}"

    def idempotency(self, key_hash: str) -> str:
        return f"{self.queue}:idempotencia:{key_hash}"

    @property
    def sweep_lock(self) -> str:
        return f"{self.queue}:limpeza"

    @property
    def stats(self) -> str:
        return f"{self.queue}:estatisticas"

    @property
    def worker_prefix(self) -> str:
        return f"{self.queue}:trabalhador:"

    def worker(self, worker_id: str) -> str:
        return f"{self.worker_prefix}{worker_id}"


def now_iso() -> str:
    """UTC time as ISO 8601 with milliseconds and a Z, e.g. 2026-11-28T23:23:24.123Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_task_id() -> str:
    return str(uuid.uuid4())


def file_name(report_type: str, task_id: str, when: datetime | None = None) -> str:
    """relatorio_<TYPE>_<UTC yyyymmddThhmmssZ>_<first 8 hex of the task id>.csv"""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"relatorio_{report_type}_{stamp}_{task_id[:8]}.csv"


ParamValue = str | int | float | None


class InvalidMessage(ValueError):
    """A queue message that no worker can process. `task_id` is set when one could be read."""

    def __init__(self, reason: str, task_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id


@dataclass(frozen=True)
class Message:
    """One task on the queue (see docs/protocol.md, "Message")."""

    task_id: str
    report_type: str
    params: dict[str, ParamValue]
    file: str
    created_at: str = field(default_factory=now_iso)

    def to_json(self) -> str:
        return json.dumps(
            {
                "versao": PROTOCOL_VERSION,
                "task_id": self.task_id,
                "tipo_relatorio": self.report_type,
                "parametros": self.params,
                "arquivo": self.file,
                "criado_em": self.created_at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


def parse_message(raw: bytes | str) -> Message:
    """Validate a raw queue message. Raises InvalidMessage with a reason in Portuguese."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"mensagem maior que {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidMessage(f"mensagem não é JSON válido: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidMessage("mensagem não é um objeto JSON")
    task_id = obj.get("task_id")
    if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        raise InvalidMessage("campo 'task_id' ausente ou inválido (UUID em minúsculas)")
    return _parse_body(obj, task_id)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("chave repetida em um objeto")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} não é JSON válido")


def bind_value(value: ParamValue) -> ParamValue:
    """How a parameter is bound to SQL: an integral number within 2**53 is an INTEGER.

    Both workers apply this rule, so 5 and 5.0 bind the same way whichever worker runs the task.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    return value


def _parse_body(obj: dict[str, Any], task_id: str) -> Message:
    def bad(reason: str) -> InvalidMessage:
        return InvalidMessage(reason, task_id)

    version = obj.get("versao")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise bad(f"campo 'versao' ausente ou diferente de {PROTOCOL_VERSION}")
    report_type = obj.get("tipo_relatorio")
    if not isinstance(report_type, str) or not REPORT_TYPE_RE.match(report_type):
        raise bad("campo 'tipo_relatorio' ausente ou inválido")
    file = obj.get("arquivo")
    if not isinstance(file, str) or not FILE_NAME_RE.match(file):
        raise bad("campo 'arquivo' ausente ou inválido")
    params = obj.get("parametros", {})
    if not isinstance(params, dict):
        raise bad("campo 'parametros' deve ser um objeto")
    if len(params) > MAX_PARAMS:
        raise bad(f"mais de {MAX_PARAMS} parâmetros")
    for name, value in params.items():
        _check_param(name, value, bad)
    created = obj.get("criado_em")
    created_at = created if isinstance(created, str) and len(created) <= 64 else now_iso()
    return Message(task_id, report_type, params, file, created_at)


def text_problem(value: str) -> str | None:
    """Why a text parameter cannot travel in a message (the API and the workers agree)."""
    # NUL and lone surrogates (\u0000, \ud800) have no place in a C string or in UTF-8.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        return "contém NUL ou surrogate inválido"
    if len(value.encode("utf-8")) > MAX_PARAM_TEXT:
        return f"maior que {MAX_PARAM_TEXT} bytes"
    return None


def _check_text(name: str, value: str, bad: Any) -> None:
    problem = text_problem(value)
    if problem:
        raise bad(f"parâmetro '{name}' {problem}")


def _check_param(name: str, value: Any, bad: Any) -> None:
    if not PARAM_NAME_RE.match(name):
        raise bad(f"nome de parâmetro inválido: {name[:64]!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float | None):
        raise bad(f"parâmetro '{name}' deve ser texto, número ou null")
    if isinstance(value, str):
        _check_text(name, value, bad)
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise bad(f"parâmetro '{name}' fora do intervalo de inteiros exatos (±2^53)")

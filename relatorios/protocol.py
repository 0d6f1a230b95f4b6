"""The queue protocol shared by the API and every worker: the single source of truth.

Key names, message fields, task states, error codes, limits and shared timings are defined here
and nowhere else. docs/protocol.md describes the same thing for humans; the C worker's
`app/protocol.h` is generated from this module (`make protocol-header`, see protocol_header.py)
and a test fails when it is stale. Nobody else spells a key, a field, a state or an error code.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The highest message version this code reads and writes. A producer writes the lowest version
# that carries what the message says: 1 for a plain CSV (so older workers still serve it), 2 when
# it asks for another format or compression (an older worker refuses that message as invalid
# instead of writing the wrong file). Workers read every version from 1 to PROTOCOL_VERSION.
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 1
DEFAULT_QUEUE = "fila_relatorios"

# ---- limits of a message -----------------------------------------------------------------------
MAX_MESSAGE_BYTES = 64 * 1024
MAX_PARAMS = 32
MAX_PARAM_TEXT = 1024  # bytes of UTF-8
MAX_NAME = 64  # report types and parameter names
MAX_CREATED_AT = 64  # characters of `criado_em` kept from a message
# Every JSON number of a message must be smaller than this in magnitude: above it a double (and
# so cJSON) no longer holds every integer exactly, and the two workers would read different values.
MAX_SAFE_INTEGER = 2**53

# ---- shared timings ----------------------------------------------------------------------------
# A worker refreshes its heartbeat at least this often, and the key lives this long: a worker
# silent for HEARTBEAT_TTL_S is dead, and recovery puts its tasks back on the queue.
HEARTBEAT_EVERY_S = 2
HEARTBEAT_TTL_S = 10
RECOVER_EVERY_S = 10
# While a task runs, the worker looks at its status (cancellation) and beats this often.
WATCH_EVERY_S = 0.5
# Blocking pop timeout: bounds how long a worker takes to notice a shutdown request.
POP_TIMEOUT_S = 5
# Transient task errors: the n-th retry waits min(RETRY_BASE_S * 2^(n-1), RETRY_MAX_DELAY_S).
RETRY_MAX_DELAY_S = 30
# A lost Redis connection is retried after REDIS_BACKOFF_FIRST_S, doubling up to the maximum.
REDIS_BACKOFF_FIRST_S = 0.5
REDIS_BACKOFF_MAX_S = 5
# A final state is written this many times (with the backoff above) before the worker gives up
# and leaves the message to recovery: about a minute.
FINAL_WRITE_ATTEMPTS = 20
# SQLite: a locked database fails fast and is retried later, and the worker gets control back
# every this many virtual-machine steps (heartbeat and cancellation, even before the first row).
SQLITE_BUSY_TIMEOUT_MS = 1000
SQLITE_PROGRESS_STEPS = 10_000
# PostgreSQL (docs/catalog.md, docs/protocol.md "Sources"): while the server computes or sends
# rows, a worker gets control back at least this often (heartbeat, cancellation), and a worker
# that cannot reach the server at start-up tries again after the Redis backoff above.
PG_POLL_S = 0.1
# Seconds to wait for the server to accept a connection before it counts as unavailable.
PG_CONNECT_TIMEOUT_S = 5
# Default of STATEMENT_TIMEOUT_S: 0 means no limit (PostgreSQL's statement_timeout = 0).
DEFAULT_STATEMENT_TIMEOUT_S = 0
MAX_STATEMENT_TIMEOUT_S = 86_400
DEAD_LETTERS_KEPT = 10_000
DEAD_LETTER_EXCERPT = 1024
# Progress (rows, bytes) is written to the task hash every this many rows (setting PROGRESS_EVERY).
PROGRESS_EVERY_ROWS = 10_000
# Defaults of the settings every process reads (docs/protocol.md, "Configuration").
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_BASE_S = 1
DEFAULT_SHUTDOWN_DEADLINE_S = 20
# A running task whose row count has not moved for this long is stopped and failed
# (`tarefa_parada`); settable per report (`-- @timeout N` in the catalog) and by TIMEOUT_TAREFA_S.
# 0 turns the check off. The count starts when the attempt starts: it includes the query's time
# to the first row.
DEFAULT_TASK_TIMEOUT_S = 600
MAX_TASK_TIMEOUT_S = 86_400
# Limits of one task's output (MAX_LINHAS_TAREFA, MAX_BYTES_TAREFA): past them the task fails
# (`limite_linhas`, `limite_bytes`) and its `.part` is removed. 0 means no limit.
DEFAULT_MAX_TASK_ROWS = 0
DEFAULT_MAX_TASK_BYTES = 0
DEFAULT_RETENTION_DAYS = 7
# A finished task's record outlives its retention by this much (its file is gone by then).
RECORD_GRACE_S = 86_400

# ---- schedules and webhooks (docs/protocol.md, "Schedules", "Webhooks") -------------------------
DEFAULT_TIME_ZONE = "America/Sao_Paulo"
# An occurrence later than this (seconds of schedule time) is "missed": the schedule's policy
# `perdidas` decides whether one of them runs. A scheduler taking over a lease is well within it.
DEFAULT_SCHEDULE_GRACE_S = 300
DEFAULT_SCHEDULER_TICK_S = 1.0
DEFAULT_SCHEDULER_LEASE_S = 10.0
# An occurrence's key outlives the occurrence by this much (a restart never fires it again).
OCCURRENCE_KEPT_S = 7 * 86_400
SCHEDULES_MAX = 1000
NEXT_RUNS_SHOWN = 5
DEFAULT_WEBHOOK_ATTEMPTS = 5
DEFAULT_WEBHOOK_BACKOFF_S = 2.0
WEBHOOK_BACKOFF_MAX_S = 300
DEFAULT_WEBHOOK_TIMEOUT_S = 5.0
DEFAULT_NOTIFIER_TICK_S = 1.0
# How long one notifier owns a delivery before another may take it over.
NOTIFY_CLAIM_S = 60
MAX_URL = 2048
WEBHOOK_SIGNATURE_HEADER = "X-Relatorios-Assinatura"
WEBHOOK_EVENT_HEADER = "X-Relatorios-Evento"
WEBHOOK_EVENT = "tarefa.finalizada"

# ---- patterns ----------------------------------------------------------------------------------
# POSIX extended regular expressions that also mean the same in Python: the C worker compiles
# them with regcomp(3). Each one must match a whole string.
TASK_ID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REPORT_TYPE_PATTERN = "[A-Z][A-Z0-9_]{0,63}"
PARAM_NAME_PATTERN = "[a-z][a-z0-9_]{0,63}"
FILE_NAME_PATTERN = (
    "relatorio_[A-Z][A-Z0-9_]{0,63}_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}[.](csv|csv[.]gz|xlsx)"
)
# `formato` and `compressao` of a version-2 message: a short lowercase word. Which words a worker
# can produce is FORMATS x COMPRESSIONS (below); any other well-formed word is a format this
# worker cannot produce (formato_nao_suportado), not a malformed message.
FORMAT_WORD_PATTERN = "[a-z][a-z0-9_]{0,31}"

# ---- output formats (docs/protocol.md, "Formats") ----------------------------------------------
FORMAT_CSV = "csv"  # the specification's CSV, byte for byte (the default)
FORMAT_CSV_EXCEL = "csv_excel"  # `;`, UTF-8 BOM, decimal comma, CRLF: a double click in Excel
FORMAT_XLSX = "xlsx"
FORMATS = (FORMAT_CSV, FORMAT_CSV_EXCEL, FORMAT_XLSX)
COMPRESSION_NONE = "nenhuma"
COMPRESSION_GZIP = "gzip"
COMPRESSIONS = (COMPRESSION_NONE, COMPRESSION_GZIP)
DEFAULT_FORMAT = FORMAT_CSV
DEFAULT_COMPRESSION = COMPRESSION_NONE
# Formats that take gzip (an xlsx file is already a zip archive).
GZIP_FORMATS = (FORMAT_CSV, FORMAT_CSV_EXCEL)
# zlib level of `.csv.gz` in both workers: the fastest, so that compressing costs little more
# than writing (a CSV still shrinks several times over).
GZIP_LEVEL = 1
# Excel's rows per worksheet, the header row included: past it rows continue on a new sheet
# (`dados_2`, …), each with the header row. Setting XLSX_LINHAS_POR_ABA lowers it (tests only).
XLSX_MAX_SHEET_ROWS = 1_048_576
XLSX_SHEET_PREFIX = "dados"
# Setting NEUTRALIZAR_FORMULAS (default on): in csv_excel and xlsx, a text cell that begins with
# one of these characters is neutralised as OWASP describes ("CSV injection"): it is prefixed
# with a single quote, so a spreadsheet never reads it as a formula. Numbers written as numbers
# (typed cells) are not text and keep their minus sign.
FORMULA_START_CHARS = "=+-@\t\r"
# Column types of the catalog (`-- @column name type`, docs/catalog.md): how csv_excel and xlsx
# write a column's values; plain csv ignores them.
COLUMN_TYPES = ("text", "integer", "decimal", "date")
# In csv_excel and xlsx, a text value of a `decimal` (or `integer`) column is a number when it
# matches this pattern (the catalog's SQL prints money as `1234.56`): csv_excel writes it with a
# decimal comma, xlsx as a number cell. Fifteen digits at most: what a double holds exactly.
DECIMAL_TEXT_PATTERN = "-?[0-9]{1,15}([.][0-9]{1,15})?"
INTEGER_TEXT_PATTERN = "-?[0-9]{1,15}"
# Excel's longest text cell, in UTF-16 units: longer text is cut there in xlsx.
XLSX_MAX_TEXT_UNITS = 32_767
# Number formats of typed xlsx cells.
XLSX_DATE_FORMAT = "dd/mm/yyyy"
XLSX_DECIMAL_FORMAT = "#,##0.00"

# ---- sources -----------------------------------------------------------------------------------
# The databases a deployment can read reports from: SQLite (DB_PATH, the default) or PostgreSQL
# (DATABASE_URL). A report's SQL for a source is CATALOG_DIR/<source>/<TYPE>.sql when that file
# exists, else CATALOG_DIR/<TYPE>.sql (docs/catalog.md, "Sources and dialects").
SOURCE_SQLITE = "sqlite"
SOURCE_POSTGRESQL = "postgresql"
SOURCES = (SOURCE_SQLITE, SOURCE_POSTGRESQL)
# DATABASE_URL schemes that select PostgreSQL (libpq's own URI schemes).
POSTGRESQL_URL_PREFIX = "postgresql://"
POSTGRES_URL_PREFIX = "postgres://"
POSTGRESQL_URL_PREFIXES = (POSTGRESQL_URL_PREFIX, POSTGRES_URL_PREFIX)


def _whole(pattern: str) -> re.Pattern[str]:
    # \Z, not $: `$` also matches before a trailing newline, and "X\n" must not pass for "X".
    return re.compile(rf"^(?:{pattern})\Z")


TASK_ID_RE = _whole(TASK_ID_PATTERN)
REPORT_TYPE_RE = _whole(REPORT_TYPE_PATTERN)
PARAM_NAME_RE = _whole(PARAM_NAME_PATTERN)
FILE_NAME_RE = _whole(FILE_NAME_PATTERN)
FORMAT_WORD_RE = _whole(FORMAT_WORD_PATTERN)

# ---- keys --------------------------------------------------------------------------------------
# Every key starts with the queue name. `{id}` is a task id, a worker id or a hash, as named.
KEY_TASK = "{queue}:tarefa:{id}"
KEY_TASKS = "{queue}:tarefas"
KEY_DEAD = "{queue}:mortas"
KEY_PROCESSING = "{queue}:processando:{id}"
KEY_IDEMPOTENCY = "{queue}:idempotencia:{id}"
KEY_SWEEP_LOCK = "{queue}:limpeza"
KEY_STATS = "{queue}:estatisticas"
KEY_WORKER = "{queue}:trabalhador:{id}"
# Schedules (docs/protocol.md, "Schedules"): one hash per schedule, an index of ids, the lease
# of the scheduler process that fires them, and one key per fired occurrence
# (`<schedule id>:<occurrence epoch seconds>`), set with NX in the transaction that queues it.
KEY_SCHEDULE = "{queue}:agendamento:{id}"
KEY_SCHEDULES = "{queue}:agendamentos"
KEY_SCHEDULER_LEASE = "{queue}:agendador"
KEY_OCCURRENCE = "{queue}:disparo:{id}"
# Webhooks (docs/protocol.md, "Webhooks"): tasks that asked for a notification and are not
# notified yet (sorted set scored by when to look next, epoch ms), their delivery attempts,
# one notifier's claim on a task, the dead letters of deliveries, the deployment's secret.
KEY_NOTIFY = "{queue}:notificacoes"
KEY_NOTIFY_ATTEMPTS = "{queue}:notificacoes_tentativas"
KEY_NOTIFY_CLAIM = "{queue}:notificando:{id}"
KEY_NOTIFY_DEAD = "{queue}:notificacoes_mortas"
KEY_WEBHOOK_SECRET = "{queue}:segredo_webhook"
KEY_RETRIES = "{queue}:adiadas"
# Every worker id scored by its last heartbeat (epoch milliseconds), written with the heartbeat:
# readers find the live workers here instead of scanning the keyspace.
KEY_WORKERS = "{queue}:trabalhadores"
# API keys (docs/security.md): `{id}` is the SHA-256 (hex) of the secret; the names index maps a
# key's name to that hash. Quotas: a token bucket and a daily byte counter per key name.
KEY_API_KEY = "{queue}:chave:{id}"
KEY_API_KEY_NAMES = "{queue}:chaves"
KEY_RATE = "{queue}:cota:{id}"
KEY_BYTES_DAY = "{queue}:bytes_dia:{id}"
# Listing indexes (sorted sets of task ids scored like KEY_TASKS), one per status, owner, type.
# Tasks of one key that may still be active (pruned when a request of that key is accepted).
KEY_ACTIVE = "{queue}:ativas:{id}"
KEY_BY_STATUS = "{queue}:por_status:{id}"
KEY_BY_OWNER = "{queue}:por_dono:{id}"
KEY_BY_TYPE = "{queue}:por_tipo:{id}"


class Status(StrEnum):
    """Task states, as stored in the task hash's `status` field."""

    QUEUED = "na_fila"
    RUNNING = "processando"
    DONE = "concluido"
    FAILED = "falhou"
    CANCELLED = "cancelado"
    EXPIRED = "expirado"


FINAL_STATES = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, Status.EXPIRED})
ACTIVE_STATES = frozenset({Status.QUEUED, Status.RUNNING})
# How people read a state (the page, the CLI): one word, capitalised where a sentence starts.
STATUS_LABELS: dict[Status, str] = {
    Status.QUEUED: "Na fila",
    Status.RUNNING: "Processando",
    Status.DONE: "Concluído",
    Status.FAILED: "Falhou",
    Status.CANCELLED: "Cancelado",
    Status.EXPIRED: "Expirado",
}


# A task's entry in the status indexes (`<queue>:por_status:<status>`, sorted sets scored like
# `<queue>:tarefas`) moves with its status. Every writer of a status (the API and both workers)
# runs this one script in the same transaction as the status write:
#     EVAL INDEX_STATUS_SCRIPT 1 <queue>:tarefas <queue>:por_status: <task_id> <status>
# A task not in `<queue>:tarefas` (swept) is left out of every status index.
INDEX_STATUS_SCRIPT = (
    "local score = redis.call('ZSCORE', KEYS[1], ARGV[2]) "
    "for _, s in ipairs({{{states}}}) do "
    "if s ~= ARGV[3] or not score then redis.call('ZREM', ARGV[1] .. s, ARGV[2]) end end "
    "if score then redis.call('ZADD', ARGV[1] .. ARGV[3], score, ARGV[2]) end "
    "return score and 1 or 0"
).format(states=", ".join(f"'{s.value}'" for s in Status))


class ErrorCode(StrEnum):
    """Why a task failed (field `erro_codigo`): stable, for programs; `erro` is for people."""

    INVALID_MESSAGE = "mensagem_invalida"
    UNKNOWN_TYPE = "tipo_desconhecido"
    INVALID_PARAMETER = "parametro_invalido"
    DATABASE_UNAVAILABLE = "banco_indisponivel"
    QUERY_FAILED = "consulta_falhou"
    DISK_FULL = "disco_cheio"
    WRITE_FAILED = "escrita_falhou"
    ATTEMPTS_EXHAUSTED = "tentativas_esgotadas"
    CANCELLED = "cancelada"
    QUERY_TIMEOUT = "tempo_esgotado"
    PERMISSION_DENIED = "permissao_negada"
    STALLED = "tarefa_parada"
    ROW_LIMIT = "limite_linhas"
    BYTE_LIMIT = "limite_bytes"
    UNSUPPORTED_FORMAT = "formato_nao_suportado"


# The Portuguese text of each code when there is nothing more specific to say. Workers may word
# their `erro` their own way; they never show a library's English message to users.
ERROR_TEXTS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_MESSAGE: "mensagem inválida",
    ErrorCode.UNKNOWN_TYPE: "tipo de relatório desconhecido",
    ErrorCode.INVALID_PARAMETER: "parâmetro inválido",
    ErrorCode.DATABASE_UNAVAILABLE: "banco de dados indisponível",
    ErrorCode.QUERY_FAILED: "a consulta do relatório falhou",
    ErrorCode.DISK_FULL: "disco cheio ao gravar o relatório",
    ErrorCode.WRITE_FAILED: "erro ao gravar o relatório",
    ErrorCode.ATTEMPTS_EXHAUSTED: "tentativas esgotadas",
    ErrorCode.CANCELLED: "tarefa cancelada",
    ErrorCode.QUERY_TIMEOUT: "a consulta passou do tempo limite (STATEMENT_TIMEOUT_S)",
    ErrorCode.PERMISSION_DENIED: "sem permissão para ler os dados do relatório",
    ErrorCode.STALLED: "a tarefa parou de progredir: nenhuma linha nova no tempo limite "
    "(TIMEOUT_TAREFA_S ou @timeout do relatório)",
    ErrorCode.ROW_LIMIT: "o relatório passou do limite de linhas por tarefa (MAX_LINHAS_TAREFA)",
    ErrorCode.BYTE_LIMIT: "o relatório passou do limite de bytes por tarefa (MAX_BYTES_TAREFA)",
    ErrorCode.UNSUPPORTED_FORMAT: "formato de arquivo não suportado por este worker",
}


class M:
    """Members of a queue message (docs/protocol.md, "Message")."""

    VERSION = "versao"
    TASK_ID = "task_id"
    TYPE = "tipo_relatorio"
    PARAMS = "parametros"
    FILE = "arquivo"
    CREATED = "criado_em"
    FORMAT = "formato"  # version 2; default FORMAT_CSV
    COMPRESSION = "compressao"  # version 2; default COMPRESSION_NONE


class Beat:
    """Members of a worker's heartbeat, the JSON value of `<queue>:trabalhador:<worker_id>`."""

    ID = "id"
    KIND = "tipo"  # "c" or "python"
    PID = "pid"
    HOST = "host"
    STARTED = "iniciado_em"
    TASK = "tarefa"  # the task id being run, or null


class Dead:
    """Members of a dead letter, one JSON object of the list `<queue>:mortas`."""

    TASK_ID = "task_id"  # or null when the message named none
    REASON = "motivo"
    MESSAGE = "mensagem"  # the raw message, at most DEAD_LETTER_EXCERPT bytes
    SIZE = "tamanho"  # of the whole raw message, in bytes
    AT = "em"
    WORKER = "worker"


class F:
    """Field names of the task hash `<queue>:tarefa:<task_id>`."""

    STATUS = "status"
    TYPE = "tipo_relatorio"
    PARAMS = "parametros"  # JSON object, as in the message
    FILE = "arquivo"
    FORMAT = "formato"
    COMPRESSION = "compressao"
    ROWS = "linhas"
    BYTES = "bytes"
    CREATED = "criado_em"
    STARTED = "iniciado_em"
    FINISHED = "concluido_em"
    ERROR = "erro"
    ERROR_CODE = "erro_codigo"
    WORKER = "worker"
    ATTEMPTS = "tentativas"
    NEXT_ATTEMPT = "proxima_tentativa_em"
    CANCELLED = "cancelado_em"
    EXPIRED = "expirado_em"
    # Written by the API and the scheduler when the task is queued; workers leave them alone.
    SCHEDULE = "agendamento"
    SCHEDULED_FOR = "agendado_para"
    NOTIFY_URL = "notificar_url"
    # Written by the notifier (docs/protocol.md, "Webhooks").
    NOTIFIED = "notificado_em"
    OWNER = "dono"  # the name of the API key that ordered the task


@dataclass(frozen=True)
class TaskField:
    """One field of a task as the API shows it: its name, its JSON type and what it means."""

    name: str
    kind: type[int] | type[str] | type[dict[str, Any]]
    doc: str
    always: bool = False  # present in every task record (otherwise it may be null)


# The task record as every reader shows it, in this order (API responses, CLI, page).
TASK_FIELDS: tuple[TaskField, ...] = (
    TaskField(
        F.STATUS, str, "na_fila, processando, concluido, falhou, cancelado ou expirado", True
    ),
    TaskField(F.TYPE, str, "o tipo de relatório", True),
    TaskField(F.PARAMS, dict, "os parâmetros do pedido", True),
    TaskField(F.FILE, str, "nome do arquivo gerado em export/", True),
    # Not `always`: tasks recorded before version 2 have neither (they are csv, nenhuma).
    TaskField(F.FORMAT, str, "formato do arquivo: " + ", ".join(FORMATS)),
    TaskField(F.COMPRESSION, str, "compressão do arquivo: " + ", ".join(COMPRESSIONS)),
    TaskField(F.ROWS, int, "linhas de dados escritas até agora", True),
    TaskField(F.BYTES, int, "bytes do arquivo escritos até agora", True),
    TaskField(F.ATTEMPTS, int, "tentativas iniciadas (falhas temporárias são repetidas)", True),
    TaskField(F.CREATED, str, "quando o pedido foi aceito (UTC, ISO 8601)"),
    TaskField(F.STARTED, str, "quando a última tentativa começou"),
    TaskField(F.FINISHED, str, "quando a tarefa terminou (qualquer estado final)"),
    TaskField(F.NEXT_ATTEMPT, str, "quando a próxima tentativa começa"),
    TaskField(F.CANCELLED, str, "quando foi cancelada"),
    TaskField(F.EXPIRED, str, "quando o arquivo foi apagado pela retenção"),
    TaskField(F.ERROR, str, "por que falhou, em português"),
    TaskField(F.ERROR_CODE, str, "código estável do erro: " + ", ".join(ErrorCode)),
    TaskField(F.WORKER, str, "o worker que executou a última tentativa"),
    TaskField(F.SCHEDULE, str, "o agendamento que criou a tarefa"),
    TaskField(F.SCHEDULED_FOR, str, "a ocorrência do agendamento (UTC, ISO 8601)"),
    TaskField(F.NOTIFY_URL, str, "endereço avisado (POST) quando a tarefa terminar"),
    TaskField(F.NOTIFIED, str, "quando o aviso foi entregue"),
    TaskField(F.OWNER, str, "o nome da chave de API que pediu o relatório"),
)


class Sched:
    """Field names of the schedule hash `<queue>:agendamento:<id>`."""

    TYPE = "tipo_relatorio"
    PARAMS = "parametros"  # JSON object; values may be relative dates (docs/operations.md)
    CRON = "cron"
    TIME_ZONE = "fuso_horario"
    ACTIVE = "ativo"  # "1" or "0"
    MISSED = "perdidas"  # MissedPolicy
    NOTIFY_URL = "notificar_url"
    CREATED = "criado_em"
    # The last occurrence dealt with (fired or skipped), UTC ISO 8601; occurrences after it are
    # due. Set to the time of creation or of re-activation so that none before is ever fired.
    LAST = "ultima_ocorrencia"
    LAST_TASK = "ultima_tarefa"
    LAST_ERROR = "ultimo_erro"
    OWNER = "dono"  # the API key that made it: its tasks are that key's


class MissedPolicy(StrEnum):
    """What a schedule does with occurrences missed while no scheduler ran (`perdidas`)."""

    RUN_ONE = "executar_uma"
    SKIP = "ignorar"


class Notice:
    """Members of a webhook's JSON body and of a dead delivery (`<queue>:notificacoes_mortas`)."""

    TASK_ID = "task_id"
    STATUS = "status"
    TYPE = "tipo_relatorio"
    FILE = "arquivo"
    ROWS = "linhas"
    BYTES = "bytes"
    DOWNLOAD_URL = "download_url"
    URL = "url"
    REASON = "motivo"
    ATTEMPTS = "tentativas"
    AT = "em"


class Role(StrEnum):
    """What an API key may do: a `usuario` sees only their own tasks, an `admin` sees all."""

    USER = "usuario"
    ADMIN = "admin"


class K:
    """Fields of an API key's hash `<queue>:chave:<sha256 of the secret>`."""

    NAME = "nome"
    ROLE = "papel"
    CREATED = "criada_em"
    LAST_USED = "usada_em"
    # Per-key quota overrides (absent: the settings' defaults).
    RATE = "req_por_min"
    ACTIVE = "tarefas_ativas"
    BYTES_DAY = "bytes_por_dia"


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

    def _key(self, template: str, id: str = "") -> str:
        return template.format(queue=self.queue, id=id)

    def task(self, task_id: str) -> str:
        return self._key(KEY_TASK, task_id)

    @property
    def tasks(self) -> str:
        """Sorted set of task ids, scored by creation time in epoch milliseconds."""
        return self._key(KEY_TASKS)

    @property
    def dead(self) -> str:
        """Dead letters: messages that can never succeed, newest first."""
        return self._key(KEY_DEAD)

    @property
    def processing_prefix(self) -> str:
        return self._key(KEY_PROCESSING)

    def processing(self, worker_id: str) -> str:
        """Messages taken by one worker and not finished yet."""
        return self._key(KEY_PROCESSING, worker_id)

    def idempotency(self, key_hash: str) -> str:
        return self._key(KEY_IDEMPOTENCY, key_hash)

    @property
    def sweep_lock(self) -> str:
        return self._key(KEY_SWEEP_LOCK)

    @property
    def stats(self) -> str:
        return self._key(KEY_STATS)

    @property
    def worker_prefix(self) -> str:
        return self._key(KEY_WORKER)

    def worker(self, worker_id: str) -> str:
        return self._key(KEY_WORKER, worker_id)

    def schedule(self, schedule_id: str) -> str:
        return self._key(KEY_SCHEDULE, schedule_id)

    @property
    def schedules(self) -> str:
        """Sorted set of schedule ids, scored by creation time in epoch milliseconds."""
        return self._key(KEY_SCHEDULES)

    @property
    def scheduler_lease(self) -> str:
        return self._key(KEY_SCHEDULER_LEASE)

    def occurrence(self, schedule_id: str, epoch_s: int) -> str:
        return self._key(KEY_OCCURRENCE, f"{schedule_id}:{epoch_s}")

    @property
    def notify(self) -> str:
        return self._key(KEY_NOTIFY)

    @property
    def notify_attempts(self) -> str:
        return self._key(KEY_NOTIFY_ATTEMPTS)

    def notify_claim(self, task_id: str) -> str:
        return self._key(KEY_NOTIFY_CLAIM, task_id)

    @property
    def notify_dead(self) -> str:
        return self._key(KEY_NOTIFY_DEAD)

    @property
    def webhook_secret(self) -> str:
        return self._key(KEY_WEBHOOK_SECRET)

    @property
    def workers(self) -> str:
        """Sorted set: worker id -> time of its last heartbeat (epoch ms)."""
        return self._key(KEY_WORKERS)

    def api_key(self, key_hash: str) -> str:
        return self._key(KEY_API_KEY, key_hash)

    @property
    def api_key_names(self) -> str:
        """Hash: key name -> SHA-256 of its secret."""
        return self._key(KEY_API_KEY_NAMES)

    def rate(self, name: str) -> str:
        return self._key(KEY_RATE, name)

    def bytes_day(self, name: str, day: str) -> str:
        return self._key(KEY_BYTES_DAY, f"{name}:{day}")

    def active(self, owner: str) -> str:
        return self._key(KEY_ACTIVE, owner)

    def by_status(self, status: str) -> str:
        return self._key(KEY_BY_STATUS, status)

    @property
    def by_status_prefix(self) -> str:
        return self._key(KEY_BY_STATUS)

    def index_status(self, task_id: str, status: str) -> tuple[str, int, str, str, str, str]:
        """The arguments of EVAL that move `task_id` to the index of `status` (redis-py's
        `eval(*keys.index_status(id, status))`), run with every status write."""
        return (INDEX_STATUS_SCRIPT, 1, self.tasks, self.by_status_prefix, task_id, status)

    def by_owner(self, owner: str) -> str:
        return self._key(KEY_BY_OWNER, owner)

    def by_type(self, report_type: str) -> str:
        return self._key(KEY_BY_TYPE, report_type)

    @property
    def retries(self) -> str:
        """Sorted set of messages waiting for a retry, scored by when it is due (epoch ms)."""
        return self._key(KEY_RETRIES)


# ---- scripts (docs/protocol.md, "Delayed retries") ----------------------------------------------
# A transient error moves the message from the worker's processing list to `Q:adiadas`, scored by
# Redis's own clock (TIME) plus the delay, in the conditional write of the task's status (WATCH,
# MULTI, the status index script, EXEC). Due retries are moved back by this script, run by both
# workers and the API; it reads the same clock, so due times mean the same to every process.
# At most this many due retries move per call (the rest move on the next one).
RETRY_MOVE_BATCH = 100
# Moves the retries that are due from KEYS[1] (`Q:adiadas`) to the end of KEYS[2] (the queue) that
# is taken next, each exactly once. ARGV[1]: the batch. Returns {moved, milliseconds until the next
# retry is due, or -1 when none waits}: a worker blocks on the queue no longer than that.
MOVE_DUE_RETRIES_LUA = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('RPUSH', KEYS[2], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt > 0 then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, wait}
"""


def now_iso() -> str:
    """UTC time as ISO 8601 with milliseconds and a Z, e.g. 2026-11-28T23:23:24.123Z."""
    return iso(datetime.now(UTC))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_task_id() -> str:
    return str(uuid.uuid4())


def file_extension(formato: str = DEFAULT_FORMAT, compressao: str = DEFAULT_COMPRESSION) -> str:
    """The extension of a file of `formato` and `compressao` (".csv", ".csv.gz", ".xlsx").

    Raises ValueError for a combination no worker produces (an unknown word, xlsx with gzip)."""
    if formato not in FORMATS or compressao not in COMPRESSIONS:
        raise ValueError(f"formato {formato!r} com compressão {compressao!r} não existe")
    if compressao == COMPRESSION_GZIP and formato not in GZIP_FORMATS:
        raise ValueError(f"o formato {formato} não aceita compressão {compressao}")
    base = ".xlsx" if formato == FORMAT_XLSX else ".csv"
    return base + (".gz" if compressao == COMPRESSION_GZIP else "")


# How a downloaded file is served: its media type by extension (the longest first).
MEDIA_TYPES: tuple[tuple[str, str], ...] = (
    (".csv.gz", "application/gzip"),
    (".csv", "text/csv; charset=utf-8"),
    (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)


def media_type(file: str) -> str:
    return next((media for ext, media in MEDIA_TYPES if file.endswith(ext)), "text/csv")


def file_name(
    report_type: str,
    task_id: str,
    when: datetime | None = None,
    formato: str = DEFAULT_FORMAT,
    compressao: str = DEFAULT_COMPRESSION,
) -> str:
    """relatorio_<TYPE>_<UTC yyyymmddThhmmssZ>_<first 8 hex of the task id><extension>"""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    extension = file_extension(formato, compressao)
    return f"relatorio_{report_type}_{stamp}_{task_id[:8]}{extension}"


def file_belongs(name: str, report_type: str, task_id: str) -> bool:
    """Whether `name` is a report file name (FILE_NAME_PATTERN) of this type and this task: the
    only names a worker writes and the API serves (docs/security.md)."""
    # The extension's tie to the task's format is output_problem()'s (formato_nao_suportado).
    prefix = f"relatorio_{report_type}_"
    after_stamp = name[len(prefix) + len("yyyymmddThhmmssZ") :]
    return (
        FILE_NAME_RE.match(name) is not None
        and name.startswith(prefix)
        and after_stamp.startswith(f"_{task_id[:8]}.")
    )


def retry_delay(base_s: float, attempt: int) -> float:
    """Seconds to wait after the `attempt`-th attempt failed with a transient error."""
    return float(min(base_s * 2 ** (attempt - 1), RETRY_MAX_DELAY_S))


def format_real(value: float) -> str:
    """A REAL in the CSV (docs/protocol.md): `%.15g`, or `%.17g` when 15 digits do not
    read back to the same double. Both workers implement this rule in a few lines, as cJSON does."""
    short = f"{value:.15g}"
    return short if float(short) == value else f"{value:.17g}"


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
    formato: str = DEFAULT_FORMAT
    compressao: str = DEFAULT_COMPRESSION

    @property
    def is_default_output(self) -> bool:
        return self.formato == DEFAULT_FORMAT and self.compressao == DEFAULT_COMPRESSION

    def to_json(self) -> str:
        """Version 1 for a plain CSV (every worker reads it), version 2 with the output fields."""
        body: dict[str, Any] = {
            M.VERSION: MIN_PROTOCOL_VERSION if self.is_default_output else PROTOCOL_VERSION,
            M.TASK_ID: self.task_id,
            M.TYPE: self.report_type,
            M.PARAMS: self.params,
            M.FILE: self.file,
            M.CREATED: self.created_at,
        }
        if not self.is_default_output:
            body[M.FORMAT] = self.formato
            body[M.COMPRESSION] = self.compressao
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def parse_message(raw: bytes | str) -> Message:
    """Validate a raw queue message. Raises InvalidMessage with a reason in Portuguese."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"mensagem maior que {MAX_MESSAGE_BYTES} bytes")
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates (ED A0 80) through.
        text = data.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Refused as exc:
        raise InvalidMessage(f"mensagem não é JSON válido: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # json's own reasons are English and name positions: the message is simply not JSON.
        raise InvalidMessage("mensagem não é JSON válido em UTF-8") from None
    if not isinstance(obj, dict):
        raise InvalidMessage("mensagem não é um objeto JSON")
    task_id = obj.get(M.TASK_ID)
    if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id):
        raise InvalidMessage("campo 'task_id' ausente ou inválido (UUID em minúsculas)")
    return _parse_body(obj, task_id)


class _Refused(ValueError):
    """JSON that Python's parser reads but the protocol refuses."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused("chave repetida em um objeto")
    return obj


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} não é um número JSON")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bind_value(value: ParamValue) -> ParamValue:
    """How a parameter is bound to SQL: an integral number is an INTEGER, any other a REAL.

    Both workers apply this rule, so 5 and 5.0 bind the same way whichever worker runs the task.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _parse_body(obj: dict[str, Any], task_id: str) -> Message:
    def bad(reason: str) -> InvalidMessage:
        return InvalidMessage(reason, task_id)

    version: Any = obj.get(M.VERSION)
    if not is_number(version) or version not in range(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION + 1):
        raise bad(f"campo 'versao' ausente ou fora de {MIN_PROTOCOL_VERSION} a {PROTOCOL_VERSION}")
    formato, compressao = DEFAULT_FORMAT, DEFAULT_COMPRESSION
    if version >= 2:
        formato = _word(obj, M.FORMAT, DEFAULT_FORMAT, bad)
        compressao = _word(obj, M.COMPRESSION, DEFAULT_COMPRESSION, bad)
    report_type = obj.get(M.TYPE)
    if not isinstance(report_type, str) or not REPORT_TYPE_RE.match(report_type):
        raise bad("campo 'tipo_relatorio' ausente ou inválido")
    file = obj.get(M.FILE)
    if not isinstance(file, str) or not file_belongs(file, report_type, task_id):
        raise bad("campo 'arquivo' ausente, inválido ou de outra tarefa")
    params = obj.get(M.PARAMS, {})
    if not isinstance(params, dict):
        raise bad("campo 'parametros' deve ser um objeto")
    if len(params) > MAX_PARAMS:
        raise bad(f"mais de {MAX_PARAMS} parâmetros")
    for name, value in params.items():
        _check_param(name, value, bad)
    created = obj.get(M.CREATED)
    created_at = created if isinstance(created, str) and len(created) <= MAX_CREATED_AT else ""
    return Message(task_id, report_type, params, file, created_at or now_iso(), formato, compressao)


def _word(obj: dict[str, Any], member: str, default: str, bad: Any) -> str:
    value = obj.get(member, default)
    if not isinstance(value, str) or not FORMAT_WORD_RE.match(value):
        raise bad(f"campo '{member}' inválido")
    return value


def output_problem(formato: str, compressao: str, file: str) -> str | None:
    """Why a worker cannot write `file` as `formato` with `compressao` (formato_nao_suportado):
    a format or compression it does not know, a combination that does not exist (xlsx with
    gzip), or a file name whose extension is not the format's. None when it can."""
    try:
        extension = file_extension(formato, compressao)
    except ValueError:
        if formato not in FORMATS:
            return f"formato '{formato}' não suportado"
        if compressao not in COMPRESSIONS:
            return f"compressão '{compressao}' não suportada"
        return f"o formato {formato} não aceita compressão {compressao}"
    if not file.endswith(extension):
        return f"o arquivo de formato {formato} com compressão {compressao} termina em {extension}"
    return None


def text_problem(value: str) -> str | None:
    """Why a text parameter cannot travel in a message (the API and the workers agree)."""
    # NUL and lone surrogates (\u0000, \ud800) have no place in a C string or in UTF-8.
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        return "contém NUL ou surrogate inválido"
    if len(value.encode("utf-8")) > MAX_PARAM_TEXT:
        return f"maior que {MAX_PARAM_TEXT} bytes"
    return None


def _check_param(name: str, value: Any, bad: Any) -> None:
    if not PARAM_NAME_RE.match(name):
        raise bad("nome de parâmetro inválido")
    if not (value is None or isinstance(value, str) or is_number(value)):
        raise bad(f"parâmetro '{name}' deve ser texto, número ou null")
    if isinstance(value, str) and (problem := text_problem(value)):
        raise bad(f"parâmetro '{name}' {problem}")
    if is_number(value) and not abs(value) < MAX_SAFE_INTEGER:
        raise bad(f"parâmetro '{name}' fora do intervalo dos números exatos (±2^53)")

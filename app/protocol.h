/* protocol.h -- GENERATED from relatorios/protocol.py by `make protocol-header`.
 * Do not edit: change relatorios/protocol.py and regenerate (a test fails when stale).
 *
 * The only place of the C worker that spells a Redis key, a field of the task hash, a
 * task state, an error code or a protocol limit (docs/protocol.md). */
#ifndef RELATORIOS_PROTOCOL_H
#define RELATORIOS_PROTOCOL_H

/* Constants: limits, timings, defaults and patterns (POSIX ERE, whole string). */
#define PROTO_PROTOCOL_VERSION 2
#define PROTO_MIN_PROTOCOL_VERSION 1
#define PROTO_DEFAULT_QUEUE "fila_relatorios"
#define PROTO_MAX_MESSAGE_BYTES 65536
#define PROTO_MAX_PARAMS 32
#define PROTO_MAX_PARAM_TEXT 1024
#define PROTO_MAX_NAME 64
#define PROTO_MAX_CREATED_AT 64
#define PROTO_MAX_SAFE_INTEGER 9007199254740992LL
#define PROTO_HEARTBEAT_EVERY_S 2
#define PROTO_HEARTBEAT_TTL_S 10
#define PROTO_RECOVER_EVERY_S 10
#define PROTO_WATCH_EVERY_S 0.5
#define PROTO_POP_TIMEOUT_S 5
#define PROTO_RETRY_MAX_DELAY_S 30
#define PROTO_REDIS_BACKOFF_FIRST_S 0.5
#define PROTO_REDIS_BACKOFF_MAX_S 5
#define PROTO_FINAL_WRITE_ATTEMPTS 20
#define PROTO_SQLITE_BUSY_TIMEOUT_MS 1000
#define PROTO_SQLITE_PROGRESS_STEPS 10000
#define PROTO_PG_POLL_S 0.1
#define PROTO_PG_CONNECT_TIMEOUT_S 5
#define PROTO_DEFAULT_STATEMENT_TIMEOUT_S 0
#define PROTO_MAX_STATEMENT_TIMEOUT_S 86400
#define PROTO_DEAD_LETTERS_KEPT 10000
#define PROTO_DEAD_LETTER_EXCERPT 1024
#define PROTO_PROGRESS_EVERY_ROWS 10000
#define PROTO_DEFAULT_MAX_ATTEMPTS 3
#define PROTO_DEFAULT_RETRY_BASE_S 1
#define PROTO_DEFAULT_SHUTDOWN_DEADLINE_S 20
#define PROTO_DEFAULT_TASK_TIMEOUT_S 600
#define PROTO_MAX_TASK_TIMEOUT_S 86400
#define PROTO_DEFAULT_MAX_TASK_ROWS 0
#define PROTO_DEFAULT_MAX_TASK_BYTES 0
#define PROTO_DEFAULT_RETENTION_DAYS 7
#define PROTO_RECORD_GRACE_S 86400
#define PROTO_DEFAULT_TIME_ZONE "America/Sao_Paulo"
#define PROTO_DEFAULT_SCHEDULE_GRACE_S 300
#define PROTO_DEFAULT_SCHEDULER_TICK_S 1
#define PROTO_DEFAULT_SCHEDULER_LEASE_S 10
#define PROTO_OCCURRENCE_KEPT_S 604800
#define PROTO_SCHEDULES_MAX 1000
#define PROTO_NEXT_RUNS_SHOWN 5
#define PROTO_DEFAULT_WEBHOOK_ATTEMPTS 5
#define PROTO_DEFAULT_WEBHOOK_BACKOFF_S 2
#define PROTO_WEBHOOK_BACKOFF_MAX_S 300
#define PROTO_DEFAULT_WEBHOOK_TIMEOUT_S 5
#define PROTO_DEFAULT_NOTIFIER_TICK_S 1
#define PROTO_NOTIFY_CLAIM_S 60
#define PROTO_MAX_URL 2048
#define PROTO_WEBHOOK_SIGNATURE_HEADER "X-Relatorios-Assinatura"
#define PROTO_WEBHOOK_EVENT_HEADER "X-Relatorios-Evento"
#define PROTO_WEBHOOK_EVENT "tarefa.finalizada"
#define PROTO_TASK_ID_PATTERN "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#define PROTO_REPORT_TYPE_PATTERN "[A-Z][A-Z0-9_]{0,63}"
#define PROTO_PARAM_NAME_PATTERN "[a-z][a-z0-9_]{0,63}"
#define PROTO_FILE_NAME_PATTERN "relatorio_[A-Z][A-Z0-9_]{0,63}_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}[.](csv|csv[.]gz|xlsx)"
#define PROTO_FORMAT_WORD_PATTERN "[a-z][a-z0-9_]{0,31}"
#define PROTO_FORMAT_CSV "csv"
#define PROTO_FORMAT_CSV_EXCEL "csv_excel"
#define PROTO_FORMAT_XLSX "xlsx"
#define PROTO_COMPRESSION_NONE "nenhuma"
#define PROTO_COMPRESSION_GZIP "gzip"
#define PROTO_DEFAULT_FORMAT "csv"
#define PROTO_DEFAULT_COMPRESSION "nenhuma"
#define PROTO_GZIP_LEVEL 1
#define PROTO_XLSX_MAX_SHEET_ROWS 1048576
#define PROTO_XLSX_SHEET_PREFIX "dados"
#define PROTO_FORMULA_START_CHARS "=+-@\t\r"
#define PROTO_DECIMAL_TEXT_PATTERN "-?[0-9]{1,15}([.][0-9]{1,15})?"
#define PROTO_INTEGER_TEXT_PATTERN "-?[0-9]{1,15}"
#define PROTO_XLSX_MAX_TEXT_UNITS 32767
#define PROTO_XLSX_DATE_FORMAT "dd/mm/yyyy"
#define PROTO_XLSX_DECIMAL_FORMAT "#,##0.00"
#define PROTO_SOURCE_SQLITE "sqlite"
#define PROTO_SOURCE_POSTGRESQL "postgresql"
#define PROTO_POSTGRESQL_URL_PREFIX "postgresql://"
#define PROTO_POSTGRES_URL_PREFIX "postgres://"
#define PROTO_INDEX_STATUS_SCRIPT "local score = redis.call('ZSCORE', KEYS[1], ARGV[2]) for _, s in ipairs({'na_fila', 'processando', 'concluido', 'falhou', 'cancelado', 'expirado'}) do if s ~= ARGV[3] or not score then redis.call('ZREM', ARGV[1] .. s, ARGV[2]) end end if score then redis.call('ZADD', ARGV[1] .. ARGV[3], score, ARGV[2]) end return score and 1 or 0"
#define PROTO_RETRY_MOVE_BATCH 100
#define PROTO_MOVE_DUE_RETRIES_LUA "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\nlocal due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))\nfor _, m in ipairs(due) do\n  redis.call('ZREM', KEYS[1], m)\n  redis.call('RPUSH', KEYS[2], m)\nend\nlocal nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\nlocal wait = -1\nif #nxt > 0 then wait = math.max(0, tonumber(nxt[2]) - now) end\nreturn {#due, wait}\n"

/* Keys: every key starts with the queue name. Arguments: queue, then the id. */
#define KEY_TASK_FMT "%s:tarefa:%s"
#define KEY_TASKS_FMT "%s:tarefas"
#define KEY_DEAD_FMT "%s:mortas"
#define KEY_PROCESSING_FMT "%s:processando:%s"
#define KEY_IDEMPOTENCY_FMT "%s:idempotencia:%s"
#define KEY_SWEEP_LOCK_FMT "%s:limpeza"
#define KEY_STATS_FMT "%s:estatisticas"
#define KEY_WORKER_FMT "%s:trabalhador:%s"
#define KEY_SCHEDULE_FMT "%s:agendamento:%s"
#define KEY_SCHEDULES_FMT "%s:agendamentos"
#define KEY_SCHEDULER_LEASE_FMT "%s:agendador"
#define KEY_OCCURRENCE_FMT "%s:disparo:%s"
#define KEY_NOTIFY_FMT "%s:notificacoes"
#define KEY_NOTIFY_ATTEMPTS_FMT "%s:notificacoes_tentativas"
#define KEY_NOTIFY_CLAIM_FMT "%s:notificando:%s"
#define KEY_NOTIFY_DEAD_FMT "%s:notificacoes_mortas"
#define KEY_WEBHOOK_SECRET_FMT "%s:segredo_webhook"
#define KEY_RETRIES_FMT "%s:adiadas"
#define KEY_WORKERS_FMT "%s:trabalhadores"
#define KEY_API_KEY_FMT "%s:chave:%s"
#define KEY_API_KEY_NAMES_FMT "%s:chaves"
#define KEY_RATE_FMT "%s:cota:%s"
#define KEY_BYTES_DAY_FMT "%s:bytes_dia:%s"
#define KEY_ACTIVE_FMT "%s:ativas:%s"
#define KEY_BY_STATUS_FMT "%s:por_status:%s"
#define KEY_BY_OWNER_FMT "%s:por_dono:%s"
#define KEY_BY_TYPE_FMT "%s:por_tipo:%s"

/* Task states (field `status`). */
#define STATUS_QUEUED "na_fila"
#define STATUS_RUNNING "processando"
#define STATUS_DONE "concluido"
#define STATUS_FAILED "falhou"
#define STATUS_CANCELLED "cancelado"
#define STATUS_EXPIRED "expirado"

/* Members of a queue message, a heartbeat and a dead letter. */
#define M_VERSION "versao"
#define M_TASK_ID "task_id"
#define M_TYPE "tipo_relatorio"
#define M_PARAMS "parametros"
#define M_FILE "arquivo"
#define M_CREATED "criado_em"
#define M_FORMAT "formato"
#define M_COMPRESSION "compressao"
#define BEAT_ID "id"
#define BEAT_KIND "tipo"
#define BEAT_PID "pid"
#define BEAT_HOST "host"
#define BEAT_STARTED "iniciado_em"
#define BEAT_TASK "tarefa"
#define DEAD_TASK_ID "task_id"
#define DEAD_REASON "motivo"
#define DEAD_MESSAGE "mensagem"
#define DEAD_SIZE "tamanho"
#define DEAD_AT "em"
#define DEAD_WORKER "worker"

/* Fields of the task hash. */
#define F_STATUS "status"
#define F_TYPE "tipo_relatorio"
#define F_PARAMS "parametros"
#define F_FILE "arquivo"
#define F_FORMAT "formato"
#define F_COMPRESSION "compressao"
#define F_ROWS "linhas"
#define F_BYTES "bytes"
#define F_CREATED "criado_em"
#define F_STARTED "iniciado_em"
#define F_FINISHED "concluido_em"
#define F_ERROR "erro"
#define F_ERROR_CODE "erro_codigo"
#define F_WORKER "worker"
#define F_ATTEMPTS "tentativas"
#define F_NEXT_ATTEMPT "proxima_tentativa_em"
#define F_CANCELLED "cancelado_em"
#define F_EXPIRED "expirado_em"
#define F_SCHEDULE "agendamento"
#define F_SCHEDULED_FOR "agendado_para"
#define F_NOTIFY_URL "notificar_url"
#define F_NOTIFIED "notificado_em"
#define F_OWNER "dono"

/* Counters of the statistics hash. */
#define STAT_DONE "tarefas_concluidas"
#define STAT_FAILED "tarefas_falhas"
#define STAT_CANCELLED "tarefas_canceladas"
#define STAT_INVALID "mensagens_invalidas"
#define STAT_ROWS "linhas"
#define STAT_BYTES "bytes"

/* Error codes (field `erro_codigo`) and their default Portuguese texts. */
#define ERR_INVALID_MESSAGE "mensagem_invalida"
#define ERR_UNKNOWN_TYPE "tipo_desconhecido"
#define ERR_INVALID_PARAMETER "parametro_invalido"
#define ERR_DATABASE_UNAVAILABLE "banco_indisponivel"
#define ERR_QUERY_FAILED "consulta_falhou"
#define ERR_DISK_FULL "disco_cheio"
#define ERR_WRITE_FAILED "escrita_falhou"
#define ERR_ATTEMPTS_EXHAUSTED "tentativas_esgotadas"
#define ERR_CANCELLED "cancelada"
#define ERR_QUERY_TIMEOUT "tempo_esgotado"
#define ERR_PERMISSION_DENIED "permissao_negada"
#define ERR_STALLED "tarefa_parada"
#define ERR_ROW_LIMIT "limite_linhas"
#define ERR_BYTE_LIMIT "limite_bytes"
#define ERR_UNSUPPORTED_FORMAT "formato_nao_suportado"
#define ERR_INVALID_MESSAGE_TEXT "mensagem inválida"
#define ERR_UNKNOWN_TYPE_TEXT "tipo de relatório desconhecido"
#define ERR_INVALID_PARAMETER_TEXT "parâmetro inválido"
#define ERR_DATABASE_UNAVAILABLE_TEXT "banco de dados indisponível"
#define ERR_QUERY_FAILED_TEXT "a consulta do relatório falhou"
#define ERR_DISK_FULL_TEXT "disco cheio ao gravar o relatório"
#define ERR_WRITE_FAILED_TEXT "erro ao gravar o relatório"
#define ERR_ATTEMPTS_EXHAUSTED_TEXT "tentativas esgotadas"
#define ERR_CANCELLED_TEXT "tarefa cancelada"
#define ERR_QUERY_TIMEOUT_TEXT "a consulta passou do tempo limite (STATEMENT_TIMEOUT_S)"
#define ERR_PERMISSION_DENIED_TEXT "sem permissão para ler os dados do relatório"
#define ERR_STALLED_TEXT "a tarefa parou de progredir: nenhuma linha nova no tempo limite (TIMEOUT_TAREFA_S ou @timeout do relatório)"
#define ERR_ROW_LIMIT_TEXT "o relatório passou do limite de linhas por tarefa (MAX_LINHAS_TAREFA)"
#define ERR_BYTE_LIMIT_TEXT "o relatório passou do limite de bytes por tarefa (MAX_BYTES_TAREFA)"
#define ERR_UNSUPPORTED_FORMAT_TEXT "formato de arquivo não suportado por este worker"

#endif

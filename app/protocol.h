/* protocol.h -- the queue protocol (docs/protocol.md), mirrored from relatorios/protocol.py.
 *
 * This header is the only place of the C worker that spells a Redis key, a field of the task
 * hash, a task state or a protocol limit. When relatorios/protocol.py changes, change this file
 * in the same commit. */
#ifndef RELATORIOS_PROTOCOL_H
#define RELATORIOS_PROTOCOL_H

#define PROTO_VERSION 1
#define PROTO_DEFAULT_QUEUE "fila_relatorios"
#define PROTO_MAX_MESSAGE_BYTES 65536
#define PROTO_MAX_PARAMS 32
#define PROTO_MAX_PARAM_TEXT 1024 /* bytes of UTF-8 */
#define PROTO_MAX_NAME 64         /* report types and parameter names */
/* JSON numbers are exact integers only up to 2^53 in a double: beyond that, invalid. */
#define PROTO_MAX_SAFE_INTEGER 9007199254740992LL

#define PROTO_HEARTBEAT_EVERY_S 2
#define PROTO_HEARTBEAT_TTL_S 10
#define PROTO_RECOVER_EVERY_S 10
#define PROTO_WATCH_EVERY_S 0.5 /* while a task runs: heartbeat and cancellation check */
#define PROTO_POP_TIMEOUT_S 5
#define PROTO_RETRY_MAX_DELAY_S 30
#define PROTO_DEAD_LETTERS_KEPT 10000
#define PROTO_DEAD_LETTER_EXCERPT 1024
#define PROTO_PROGRESS_EVERY_ROWS 10000

/* Keys: every key starts with the queue name. Arguments: queue, then the id. */
#define KEY_TASK_FMT "%s:tarefa:%s"
#define KEY_TASKS_FMT "%s:tarefas"
#define KEY_STATS_FMT "%s:estatisticas"
#define KEY_WORKER_FMT "%s:trabalhador:%s"
#define KEY_PROCESSING_FMT "%s:processando:%s"
#define KEY_DEAD_FMT "%s:mortas"

/* Task states (field `status`). */
#define STATUS_QUEUED "na_fila"
#define STATUS_RUNNING "processando"
#define STATUS_DONE "concluido"
#define STATUS_FAILED "falhou"
#define STATUS_CANCELLED "cancelado"
#define STATUS_EXPIRED "expirado"

/* Fields of the task hash. */
#define F_STATUS "status"
#define F_TYPE "tipo_relatorio"
#define F_PARAMS "parametros"
#define F_FILE "arquivo"
#define F_ROWS "linhas"
#define F_BYTES "bytes"
#define F_CREATED "criado_em"
#define F_STARTED "iniciado_em"
#define F_FINISHED "concluido_em"
#define F_ERROR "erro"
#define F_WORKER "worker"
#define F_ATTEMPTS "tentativas"
#define F_NEXT_ATTEMPT "proxima_tentativa_em"
#define F_CANCELLED "cancelado_em"

/* Counters of the statistics hash. */
#define STAT_DONE "tarefas_concluidas"
#define STAT_FAILED "tarefas_falhas"
#define STAT_CANCELLED "tarefas_canceladas"
#define STAT_INVALID "mensagens_invalidas"
#define STAT_ROWS "linhas"
#define STAT_BYTES "bytes"

/* Every log line starts with this (docs/protocol.md, "Log lines"). */
#define LOG_PREFIX "Worker C: "
#define WORKER_KIND "c"

#endif

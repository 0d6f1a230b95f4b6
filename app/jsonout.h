/* jsonout.h -- JSON written exactly as Python's json.dumps() writes it (", " and ": " as
 * separators), so that a task hash or a heartbeat reads the same whichever worker wrote it. */
#ifndef RELATORIOS_JSONOUT_H
#define RELATORIOS_JSONOUT_H

#include <stddef.h>

#include "message.h"

/* A growing, NUL-terminated text. After an allocation failure `oom` is set, later appends do
 * nothing, and the functions below return WK_ERR. */
typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} jsonout;

void jsonout_init(jsonout *j);
void jsonout_free(jsonout *j);

/* json.dumps(params, ensure_ascii=False) of the message's parameters, e.g.
 * {"ano": 2025, "nome": "Jo\u00e3o"} is written {"ano": 2025, "nome": "João"}. */
int jsonout_params(jsonout *j, const message *m);

/* json.dumps() (ensure_ascii=True) of the heartbeat object of docs/protocol.md; `task` may be
 * NULL (written null). */
int jsonout_heartbeat(jsonout *j, const char *id, const char *kind, long pid, const char *host,
                      const char *started, const char *task);

/* json.dumps(entry, ensure_ascii=False) of a dead letter (docs/protocol.md, "Dead letters"):
 * {"task_id", "motivo", "mensagem", "tamanho", "em", "worker"}, where "mensagem" is the first
 * PROTO_DEAD_LETTER_EXCERPT bytes of `raw` decoded as Python's .decode("utf-8", "replace") does
 * (each maximal invalid subpart becomes U+FFFD). `task_id` may be NULL (written null). */
int jsonout_dead_letter(jsonout *j, const char *task_id, const char *reason, const char *raw,
                        size_t len, const char *when, const char *worker_id);

/* json.dumps(entry, ensure_ascii=False) of a log line as relatorios.logs.JsonFormatter writes
 * it: {"time", "level", "logger", "message", "task_id"}, "task_id" left out when NULL or "". Every
 * string is decoded as Python's .decode("utf-8", "replace") does, so the line is valid UTF-8
 * JSON whatever bytes the message holds (an SQLite error may quote invalid UTF-8). */
int jsonout_log_entry(jsonout *j, const char *when, const char *level, const char *logger,
                      const char *text, const char *task_id);

#endif

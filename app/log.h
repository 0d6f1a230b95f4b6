/* log.h -- one line per event on standard output, flushed at once (docs/protocol.md, "Log lines").
 *
 * LOG_FORMAT=text (the default) writes "Worker C: <message>". LOG_FORMAT=json writes one JSON
 * object per line (cJSON), with the members of docs/protocol.md:
 *   {"time":"2026-11-29T00:33:48.123+00:00","level":"info","logger":"relatorios.worker",
 *    "message":"<message>","task_id":"<id>"}
 * with "task_id" only when the event concerns a task. */
#ifndef RELATORIOS_LOG_H
#define RELATORIOS_LOG_H

#include "wk.h"

/* Every text line starts with this (docs/protocol.md, "Log lines"). */
#define LOG_PREFIX "Worker C: "

typedef enum { LOG_TEXT = 0, LOG_JSON } log_format;

/* Chooses the format of every later line; LOG_TEXT until called. */
void log_init(log_format format);

/* Write one line of the level their name says: info for the normal course of events, warning
 * for what the worker survives (an invalid message, a transient failure, a lost connection, a
 * recovered task), error for a failed task. `task_id` is the task the event concerns, or NULL.
 * Output errors are ignored on purpose: a worker whose log pipe is gone must keep serving the
 * queue. An event whose JSON line cannot be built (no memory) is still written, without its
 * message. */
void log_info(const char *task_id, const char *fmt, ...) WK_PRINTF(2, 3);
void log_warning(const char *task_id, const char *fmt, ...) WK_PRINTF(2, 3);
void log_error(const char *task_id, const char *fmt, ...) WK_PRINTF(2, 3);

#endif

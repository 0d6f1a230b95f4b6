/* log.h -- one line per event on standard output, prefixed "Worker C: ", flushed at once. */
#ifndef RELATORIOS_LOG_H
#define RELATORIOS_LOG_H

#include "wk.h"

/* Prints LOG_PREFIX, the formatted text and a newline to stdout, then flushes. Output errors
 * are ignored on purpose: a worker whose log pipe is gone must keep serving the queue. */
void log_line(const char *fmt, ...) WK_PRINTF(1, 2);

#endif

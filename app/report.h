/* report.h -- what every part of one report run shares: the values of a row, and the error of a
 * failed attempt (docs/protocol.md, "Error codes").
 *
 * A source (source.h) produces rows of values; a sink (sink.h) writes them into a file; export.c
 * runs one between the other. Each of them reports a failure the same way: report_fail() sets
 * the task's `erro_codigo`, whether another attempt may succeed, the Portuguese `erro` users see,
 * and keeps the library's own words in `detail`, for the log only. */
#ifndef RELATORIOS_REPORT_H
#define RELATORIOS_REPORT_H

#include <stddef.h>

#include "wk.h"

typedef enum { VALUE_NULL, VALUE_INT, VALUE_REAL, VALUE_TEXT } value_type;

/* One value of a row. `text` (not NUL-terminated, `len` bytes) lives until the next row. */
typedef struct {
    value_type type;
    long long i;
    double d;
    const char *text;
    size_t len;
} value;

typedef struct {
    const char *code; /* the task's erro_codigo (ERR_* of protocol.h) */
    int transient;    /* worth another attempt (locked database, full disk, I/O) */
    int interrupted;  /* the tick callback asked to stop (cancellation, shutdown) */
    char errstr[WK_ERRSTR_LEN]; /* the task's erro, in Portuguese */
    char detail[WK_ERRSTR_LEN]; /* the library's message, or "" (for the log) */
} report_error;

/* Sets the code, whether it is transient and the `erro` (printf-style); returns WK_ERR. */
int report_fail(report_error *e, const char *code, int transient, const char *fmt, ...)
    WK_PRINTF(4, 5);

/* Makes every page of [p, p+n) resident now, so that a buffer allocated once at start-up costs
 * the same memory for every report. Not memset(0): the compiler may turn malloc+memset into
 * calloc, whose fresh pages stay untouched until the first big report. */
void report_touch(void *p, size_t n);

/* Called now and then while the database works, even inside one long step (a big sort before
 * the first row): lets the caller keep its heartbeat alive and stop the query (cancellation,
 * shutdown) by returning non-zero. Must be cheap when there is nothing to do. */
typedef int (*report_tick_fn)(void *ud);

#endif

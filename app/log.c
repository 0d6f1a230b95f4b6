/* log.c -- see log.h. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonout.h"
#include "protocol.h"

/* The Python worker's logger name: the JSON lines of both workers read alike. */
#define LOG_LOGGER "relatorios.worker"

static log_format current_format = LOG_TEXT;

void log_init(log_format format) { current_format = format; }

/* The line as LOG_FORMAT=text writes it. One fputs/vfprintf/fputc sequence under the stdio
 * lock, so lines never interleave. */
static void write_text(const char *fmt, va_list ap) {
    flockfile(stdout);
    (void)fputs(LOG_PREFIX, stdout);
    (void)vfprintf(stdout, fmt, ap);
    (void)fputc('\n', stdout);
    (void)fflush(stdout);
    funlockfile(stdout);
}

/* The formatted message in a new buffer (the caller frees it), or NULL when out of memory. */
static char *format_message(const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s != NULL) (void)vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

/* Now as Python's datetime.now(UTC).isoformat(timespec="milliseconds") writes it. */
static void now_iso_offset(char *out, size_t cap) {
    char z[CLOCK_ISO_LEN];
    clock_now_iso(z); /* "...T23:23:24.123Z" */
    size_t n = strlen(z);
    if (n > 0 && z[n - 1] == 'Z') z[--n] = '\0';
    (void)snprintf(out, cap, "%s+00:00", z);
}

static void write_json(const char *level, const char *task_id, const char *fmt, va_list ap) {
    char when[CLOCK_ISO_LEN + 8];
    now_iso_offset(when, sizeof when);
    char *text = format_message(fmt, ap);
    jsonout j;
    jsonout_init(&j);
    int ok = text != NULL &&
             jsonout_log_entry(&j, when, level, LOG_LOGGER, text, task_id) == WK_OK;
    flockfile(stdout);
    if (ok) {
        (void)fwrite(j.buf, 1, j.len, stdout);
        (void)fputc('\n', stdout);
    } else {
        (void)fprintf(stdout,
                      "{\"time\": \"%s\", \"level\": \"%s\", \"logger\": \"" LOG_LOGGER
                      "\", \"message\": \"(memória insuficiente para escrever a mensagem)\"}\n",
                      when, level);
    }
    (void)fflush(stdout);
    funlockfile(stdout);
    jsonout_free(&j);
    free(text);
}

static void write_line(const char *level, const char *task_id, const char *fmt, va_list ap) {
    if (current_format == LOG_JSON) write_json(level, task_id, fmt, ap);
    else write_text(fmt, ap);
}

void log_info(const char *task_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line("info", task_id, fmt, ap);
    va_end(ap);
}

void log_warning(const char *task_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line("warning", task_id, fmt, ap);
    va_end(ap);
}

void log_error(const char *task_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line("error", task_id, fmt, ap);
    va_end(ap);
}

/* log.c -- see log.h. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "utf8.h"

/* The logger name of both workers' JSON lines. */
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

/* Now in ISO 8601 with milliseconds and an explicit offset: 2026-11-29T00:33:48.123+00:00. */
static void now_iso_offset(char *out, size_t cap) {
    char z[CLOCK_ISO_LEN];
    clock_now_iso(z); /* "...T23:23:24.123Z" */
    size_t n = strlen(z);
    if (n > 0 && z[n - 1] == 'Z') z[--n] = '\0';
    (void)snprintf(out, cap, "%s+00:00", z);
}

/* The line as cJSON prints it, or NULL when out of memory. The message may quote bytes that are
 * not UTF-8 (an SQLite error naming a table): they are replaced, so the line is valid JSON. */
static char *json_line(const char *when, const char *level, const char *task_id, const char *text) {
    char *clean = text != NULL ? utf8_clean(text, strlen(text)) : NULL;
    cJSON *obj = cJSON_CreateObject();
    char *line = NULL;
    if (clean != NULL && obj != NULL && cJSON_AddStringToObject(obj, "time", when) &&
        cJSON_AddStringToObject(obj, "level", level) &&
        cJSON_AddStringToObject(obj, "logger", LOG_LOGGER) &&
        cJSON_AddStringToObject(obj, "message", clean) &&
        (task_id == NULL || task_id[0] == '\0' || cJSON_AddStringToObject(obj, "task_id", task_id)))
        line = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    free(clean);
    return line;
}

static void write_json(const char *level, const char *task_id, const char *fmt, va_list ap) {
    char when[CLOCK_ISO_LEN + 8];
    now_iso_offset(when, sizeof when);
    char *text = format_message(fmt, ap);
    char *line = json_line(when, level, task_id, text);
    flockfile(stdout);
    if (line != NULL) {
        (void)fputs(line, stdout);
        (void)fputc('\n', stdout);
    } else {
        (void)fprintf(stdout,
                      "{\"time\": \"%s\", \"level\": \"%s\", \"logger\": \"" LOG_LOGGER
                      "\", \"message\": \"(memória insuficiente para escrever a mensagem)\"}\n",
                      when, level);
    }
    (void)fflush(stdout);
    funlockfile(stdout);
    cJSON_free(line);
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

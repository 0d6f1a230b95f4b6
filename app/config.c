/* config.c -- see config.h. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol.h"

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* Parses a whole decimal number in [lo, hi]; returns 1 on success. */
static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* Parses a whole decimal number in [lo, hi]; returns 1 on success. */
/* A whole number >= 0 that fits a long long (a count of rows or bytes). */
static int parse_count(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0') return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

/* Copies [s, s+n) into dst (size cap); returns 0 if it does not fit. */
static int copy(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/* "[user][:password]@" before the host or path, read as urllib (and so redis-py) reads it;
 * advances *rest past it. */
static int parse_credentials(config *c, const char **rest, const char *url) {
    const char *at = strchr(*rest, '@');
    const char *slash = strchr(*rest, '/');
    if (at == NULL || (slash != NULL && slash < at && strncmp(url, "redis", 5) == 0)) return WK_OK;
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    const char *user_end = colon ? colon : at;
    if (!copy(c->redis_user, sizeof c->redis_user, *rest, (size_t)(user_end - *rest)) ||
        (colon && !copy(c->redis_password, sizeof c->redis_password, colon + 1,
                        (size_t)(at - colon - 1))))
        return wk_error(c->errstr, "REDIS_URL: usuário ou senha longos demais");
    *rest = at + 1;
    return WK_OK;
}

int config_parse_redis_url(config *c, const char *url) {
    c->redis_host[0] = c->redis_socket[0] = c->redis_user[0] = c->redis_password[0] = '\0';
    c->redis_port = 6379;
    c->redis_db = 0;
    long v;
    const char *rest;
    if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        if (parse_credentials(c, &rest, url) != WK_OK) return WK_ERR;
        const char *q = strchr(rest, '?');
        size_t n = q ? (size_t)(q - rest) : strlen(rest);
        if (n == 0 || !copy(c->redis_socket, sizeof c->redis_socket, rest, n))
            return wk_error(c->errstr, "REDIS_URL inválida (unix://[senha@]/caminho[?db=N]): %s",
                            url);
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || !parse_long(q + 4, 0, 1 << 20, &v))
                return wk_error(c->errstr, "REDIS_URL: parâmetro db inválido: %s", url);
            c->redis_db = (int)v;
        }
        return WK_OK;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return wk_error(c->errstr, "REDIS_URL deve começar com redis:// ou unix://: %s", url);
    rest = url + 8;
    if (parse_credentials(c, &rest, url) != WK_OK) return WK_ERR;
    const char *slash = strchr(rest, '/');
    const char *host_end = slash ? slash : rest + strlen(rest);
    const char *colon = memchr(rest, ':', (size_t)(host_end - rest));
    const char *name_end = colon ? colon : host_end;
    if (name_end == rest) {
        if (!copy(c->redis_host, sizeof c->redis_host, "localhost", 9)) return WK_ERR;
    } else if (!copy(c->redis_host, sizeof c->redis_host, rest, (size_t)(name_end - rest))) {
        return wk_error(c->errstr, "REDIS_URL: nome de servidor longo demais");
    }
    if (colon != NULL) {
        char port[16];
        if (!copy(port, sizeof port, colon + 1, (size_t)(host_end - colon - 1)) ||
            !parse_long(port, 1, 65535, &v))
            return wk_error(c->errstr, "REDIS_URL: porta inválida: %s", url);
        c->redis_port = (int)v;
    }
    if (slash != NULL && slash[1] != '\0') {
        if (!parse_long(slash + 1, 0, 1 << 20, &v))
            return wk_error(c->errstr, "REDIS_URL: número do banco inválido: %s", url);
        c->redis_db = (int)v;
    }
    return WK_OK;
}

/* 1, 0, or -1 for a word that is not a boolean: the words pydantic reads as one. */
static int parse_bool(const char *v) {
    static const char *const yes[] = {"1", "true", "t", "yes", "y", "on"};
    static const char *const no[] = {"0", "false", "f", "no", "n", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(v, yes[i]) == 0) return 1;
        if (strcasecmp(v, no[i]) == 0) return 0;
    }
    return -1;
}

/* ^[A-Za-z0-9_.-]{1,64}$, as relatorios.settings validates QUEUE_NAME. */
static int valid_queue(const char *q) {
    size_t n = strlen(q);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = q[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

int config_load(config *c) {
    memset(c, 0, sizeof *c);
    if (config_parse_redis_url(c, env_or("REDIS_URL", "redis://localhost:6379/0")) != WK_OK)
        return WK_ERR;
    c->db_path = env_or("DB_PATH", "data/empresa.db");
    c->database_url = env_or("DATABASE_URL", NULL);
    c->source = c->database_url ? PROTO_SOURCE_POSTGRESQL : PROTO_SOURCE_SQLITE;
    if (c->database_url && strncmp(c->database_url, PROTO_POSTGRESQL_URL_PREFIX,
                                   strlen(PROTO_POSTGRESQL_URL_PREFIX)) != 0 &&
        strncmp(c->database_url, PROTO_POSTGRES_URL_PREFIX, strlen(PROTO_POSTGRES_URL_PREFIX)) != 0)
        return wk_error(c->errstr, "DATABASE_URL deve começar com %s ou %s",
                        PROTO_POSTGRESQL_URL_PREFIX, PROTO_POSTGRES_URL_PREFIX);
    c->export_dir = env_or("EXPORT_DIR", "export");
    c->queue = env_or("QUEUE_NAME", PROTO_DEFAULT_QUEUE);
    c->catalog_dir = env_or("CATALOG_DIR", "catalog");
    if (!valid_queue(c->queue))
        return wk_error(c->errstr, "QUEUE_NAME inválido (1 a 64 de A-Z a-z 0-9 _ . -): %s",
                        c->queue);
    const char *every = env_or("PROGRESS_EVERY", NULL);
    c->progress_every = PROTO_PROGRESS_EVERY_ROWS;
    if (every != NULL && !parse_long(every, 1, 1000000000L, &c->progress_every))
        return wk_error(c->errstr, "PROGRESS_EVERY deve ser um inteiro >= 1: %s", every);
    const char *v;
    c->max_attempts = PROTO_DEFAULT_MAX_ATTEMPTS;
    if ((v = env_or("MAX_TENTATIVAS", NULL)) && !parse_long(v, 1, 100, &c->max_attempts))
        return wk_error(c->errstr, "MAX_TENTATIVAS deve ser um inteiro de 1 a 100: %s", v);
    c->retry_base_s = PROTO_DEFAULT_RETRY_BASE_S;
    if ((v = env_or("RETRY_BASE_S", NULL)) && !parse_double(v, 0, 60, &c->retry_base_s))
        return wk_error(c->errstr, "RETRY_BASE_S deve ser um número de 0 a 60: %s", v);
    c->shutdown_deadline_s = PROTO_DEFAULT_SHUTDOWN_DEADLINE_S;
    if ((v = env_or("SHUTDOWN_DEADLINE_S", NULL)) &&
        !parse_double(v, 0, 3600, &c->shutdown_deadline_s))
        return wk_error(c->errstr, "SHUTDOWN_DEADLINE_S deve ser um número de 0 a 3600: %s", v);
    c->retention_days = PROTO_DEFAULT_RETENTION_DAYS;
    if ((v = env_or("RETENCAO_DIAS", NULL)) &&
        (!parse_double(v, 0, 3650, &c->retention_days) || c->retention_days <= 0))
        return wk_error(c->errstr, "RETENCAO_DIAS deve ser um número maior que 0 e até 3650: %s",
                        v);
    c->task_timeout_s = PROTO_DEFAULT_TASK_TIMEOUT_S;
    if ((v = env_or("TIMEOUT_TAREFA_S", NULL)) &&
        !parse_double(v, 0, PROTO_MAX_TASK_TIMEOUT_S, &c->task_timeout_s))
        return wk_error(c->errstr, "TIMEOUT_TAREFA_S deve ser um número de 0 a %d: %s",
                        PROTO_MAX_TASK_TIMEOUT_S, v);
    c->max_task_rows = PROTO_DEFAULT_MAX_TASK_ROWS;
    if ((v = env_or("MAX_LINHAS_TAREFA", NULL)) && !parse_count(v, &c->max_task_rows))
        return wk_error(c->errstr, "MAX_LINHAS_TAREFA deve ser um inteiro >= 0: %s", v);
    c->max_task_bytes = PROTO_DEFAULT_MAX_TASK_BYTES;
    if ((v = env_or("MAX_BYTES_TAREFA", NULL)) && !parse_count(v, &c->max_task_bytes))
        return wk_error(c->errstr, "MAX_BYTES_TAREFA deve ser um inteiro >= 0: %s", v);
    c->statement_timeout_s = PROTO_DEFAULT_STATEMENT_TIMEOUT_S;
    if ((v = env_or("STATEMENT_TIMEOUT_S", NULL)) &&
        !parse_double(v, 0, PROTO_MAX_STATEMENT_TIMEOUT_S, &c->statement_timeout_s))
        return wk_error(c->errstr, "STATEMENT_TIMEOUT_S deve ser um número de 0 a %d: %s",
                        PROTO_MAX_STATEMENT_TIMEOUT_S, v);
    c->neutralize_formulas = 1;
    if ((v = env_or("NEUTRALIZAR_FORMULAS", NULL)) &&
        (c->neutralize_formulas = parse_bool(v)) < 0)
        return wk_error(c->errstr, "NEUTRALIZAR_FORMULAS deve ser true ou false (1 ou 0): %s", v);
    c->xlsx_sheet_rows = PROTO_XLSX_MAX_SHEET_ROWS;
    if ((v = env_or("XLSX_LINHAS_POR_ABA", NULL)) &&
        !parse_long(v, 2, PROTO_XLSX_MAX_SHEET_ROWS, &c->xlsx_sheet_rows))
        return wk_error(c->errstr, "XLSX_LINHAS_POR_ABA deve ser um inteiro de 2 a %d: %s",
                        PROTO_XLSX_MAX_SHEET_ROWS, v);
    v = env_or("LOG_FORMAT", "text");
    if (strcmp(v, "text") == 0) c->log_format = LOG_TEXT;
    else if (strcmp(v, "json") == 0) c->log_format = LOG_JSON;
    else return wk_error(c->errstr, "LOG_FORMAT deve ser text ou json: %s", v);
    return WK_OK;
}

/* sql_params.c -- see sql_params.h. Each step mirrors a branch of relatorios/sql_params.py. */
#define _POSIX_C_SOURCE 200809L
#include "sql_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static int is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Length of the `$tag$` opening a dollar-quoted string at s (s[0] == '$'), or 0. */
static size_t dollar_tag(const char *s) {
    if (s[1] >= '0' && s[1] <= '9') return 0; /* $1 is a positional parameter */
    size_t j = 1;
    while (is_word(s[j])) j++;
    return s[j] == '$' ? j + 1 : 0;
}

/* The end of the literal or identifier opened by the quote at s, or NULL if unclosed. */
static const char *skip_quoted(const char *s, char quote, int backslash) {
    for (const char *p = s + 1; *p; p++) {
        if (backslash && *p == '\\') {
            if (*++p == '\0') return NULL;
        } else if (*p == quote) {
            if (p[1] != quote) return p + 1;
            p++;
        }
    }
    return NULL;
}

static const char *skip_block_comment(const char *s) {
    int depth = 0;
    for (const char *p = s; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            depth++;
            p += 2;
        } else if (p[0] == '*' && p[1] == '/') {
            p += 2;
            if (--depth == 0) return p;
        } else {
            p++;
        }
    }
    return NULL;
}

/* Finds the next parameter at or after *at: sets *start, *len (of ":name") and returns 1; 0 at
 * the end; WK_ERR (errstr) on an unclosed literal or comment or a bad name. */
static int next_param(const char *sql, const char **at, const char **start, size_t *len,
                      char errstr[WK_ERRSTR_LEN]) {
    const char *p = *at;
    while (*p) {
        const char *end = NULL;
        size_t tag;
        if (*p == '\'') {
            int escaped = p > sql && (p[-1] == 'e' || p[-1] == 'E') &&
                          (p - 1 == sql || !is_word(p[-2]));
            if ((end = skip_quoted(p, '\'', escaped)) == NULL)
                return wk_error(errstr, "literal aberto e não fechado (')");
        } else if (*p == '"') {
            if ((end = skip_quoted(p, '"', 0)) == NULL)
                return wk_error(errstr, "literal aberto e não fechado (\")");
        } else if (p[0] == '-' && p[1] == '-') {
            end = strchr(p, '\n');
            end = end ? end + 1 : p + strlen(p);
        } else if (p[0] == '/' && p[1] == '*') {
            if ((end = skip_block_comment(p)) == NULL)
                return wk_error(errstr, "comentário /* aberto e não fechado");
        } else if (*p == '$' && (p == sql || !is_word(p[-1])) && (tag = dollar_tag(p)) > 0) {
            char quote[130];
            const char *close = NULL;
            if (tag < sizeof quote) {
                memcpy(quote, p, tag);
                quote[tag] = '\0';
                close = strstr(p + tag, quote);
            }
            if (close == NULL)
                return wk_error(errstr, "literal %.*s aberto e não fechado", (int)tag, p);
            end = close + tag;
        } else if (*p == '$' && (p == sql || !is_word(p[-1])) && p[1] >= '0' && p[1] <= '9') {
            return wk_error(errstr, "parâmetro posicional ($1): use :nome");
        } else if (p[0] == ':' && p[1] == ':') {
            end = p + 2;
        } else if (p[0] == ':' && is_alpha(p[1])) {
            size_t n = 1;
            while (is_word(p[n])) n++;
            char name[PROTO_MAX_NAME + 2];
            if (n - 1 > PROTO_MAX_NAME || (snprintf(name, sizeof name, "%.*s", (int)(n - 1), p + 1),
                                           !message_is_param_name(name)))
                return wk_error(errstr, "nome de parâmetro inválido: %.*s", (int)(n > 70 ? 70 : n),
                                p);
            *start = p;
            *len = n;
            *at = p + n;
            return 1;
        } else {
            end = p + 1;
        }
        p = end;
    }
    *at = p;
    return 0;
}

/* The index of `name` (n bytes) in out->names, adding it if new; WK_ERR when full. */
static int number_of(sql_numbered *out, const char *name, size_t n) {
    for (int k = 0; k < out->count; k++)
        if (strlen(out->names[k]) == n && strncmp(out->names[k], name, n) == 0) return k + 1;
    if (out->count == PROTO_MAX_PARAMS) return WK_ERR;
    snprintf(out->names[out->count], sizeof out->names[0], "%.*s", (int)n, name);
    return ++out->count;
}

int sql_to_numbered(const char *sql, sql_numbered *out, char errstr[WK_ERRSTR_LEN]) {
    memset(out, 0, sizeof *out);
    /* `$n` has at most 3 characters (PROTO_MAX_PARAMS < 100) and `:name` at least 2. */
    size_t size = 2 * strlen(sql) + 1;
    char *dst = malloc(size);
    if (dst == NULL) return wk_error(errstr, "memória insuficiente");
    size_t used = 0;
    const char *at = sql, *start = NULL;
    size_t len = 0;
    int rc;
    const char *copied = sql;
    while ((rc = next_param(sql, &at, &start, &len, errstr)) == 1) {
        int number = number_of(out, start + 1, len - 1);
        if (number == WK_ERR) {
            rc = wk_error(errstr, "mais de %d parâmetros", PROTO_MAX_PARAMS);
            break;
        }
        memcpy(dst + used, copied, (size_t)(start - copied));
        used += (size_t)(start - copied);
        used += (size_t)snprintf(dst + used, size - used, "$%d", number);
        copied = start + len;
    }
    if (rc != 0) {
        free(dst);
        return WK_ERR;
    }
    memcpy(dst + used, copied, strlen(copied) + 1);
    out->sql = dst;
    return WK_OK;
}

void sql_numbered_free(sql_numbered *n) {
    free(n->sql);
    n->sql = NULL;
}

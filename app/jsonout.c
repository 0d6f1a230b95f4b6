/* jsonout.c -- see jsonout.h. */
#include "jsonout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floatrepr.h"
#include "jsonlex.h"

void jsonout_init(jsonout *j) { memset(j, 0, sizeof *j); }

void jsonout_free(jsonout *j) {
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static void put(jsonout *j, const char *s, size_t n) {
    if (j->oom) return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (b == NULL) {
            j->oom = 1;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(jsonout *j, const char *s) { put(j, s, strlen(s)); }

static void putf(jsonout *j, const char *fmt, ...) WK_PRINTF(2, 3);
static void putf(jsonout *j, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(j, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The `n` bytes at s as a JSON string, escaped as Python escapes it; with `ascii`, non-ASCII
 * becomes \uXXXX (UTF-16). */
static void put_string(jsonout *j, const char *s, size_t n_bytes, int ascii) {
    put(j, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + n_bytes;
    while (p < end) {
        unsigned c = *p;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc) {
            puts_(j, esc);
            p++;
        } else if (c < 0x20) {
            putf(j, "\\u%04x", c);
            p++;
        } else if (c < 0x80 || !ascii) {
            put(j, (const char *)p, 1);
            p++;
        } else {
            size_t n = jsonlex_utf8_seq(p, (size_t)(end - p));
            if (n == 0) { /* not UTF-8: show the byte as Python's surrogateescape would */
                putf(j, "\\u%04x", 0xDC00u + c);
                p++;
                continue;
            }
            unsigned long cp = n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
            for (size_t i = 1; i < n; i++) cp = (cp << 6) | (p[i] & 0x3Fu);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                putf(j, "\\u%04lx\\u%04lx", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                putf(j, "\\u%04lx", cp);
            }
            p += n;
        }
    }
    put(j, "\"", 1);
}

static void put_real(jsonout *j, double d) {
    char tmp[FLOATREPR_MAX];
    float_repr(d, tmp);
    /* json.dumps spells the non-finite values as JavaScript does. */
    if (strcmp(tmp, "inf") == 0) puts_(j, "Infinity");
    else if (strcmp(tmp, "-inf") == 0) puts_(j, "-Infinity");
    else if (strcmp(tmp, "nan") == 0) puts_(j, "NaN");
    else puts_(j, tmp);
}

int jsonout_params(jsonout *j, const message *m) {
    puts_(j, "{");
    for (int i = 0; i < m->nparams; i++) {
        const message_param *p = &m->params[i];
        if (i > 0) puts_(j, ", ");
        put_string(j, p->name, strlen(p->name), 0);
        puts_(j, ": ");
        switch (p->kind) {
        case PARAM_NULL: puts_(j, "null"); break;
        case PARAM_INT: putf(j, "%lld", p->i); break;
        case PARAM_REAL: put_real(j, p->d); break;
        case PARAM_TEXT: put_string(j, p->text, p->text_len, 0); break;
        }
    }
    puts_(j, "}");
    return j->oom ? WK_ERR : WK_OK;
}

/* Length of the strict UTF-8 sequence at p (surrogates refused, as Python's decoder does), or 0;
 * in *subpart, the length of the maximal invalid subpart to replace when it is 0. */
static size_t strict_seq(const unsigned char *p, size_t avail, size_t *subpart) {
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    size_t ok = n > 0 ? 1 : 0;
    for (size_t i = 1; i < n && i < avail; i++) {
        unsigned b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
        ok++;
    }
    *subpart = ok > 0 ? ok : 1;
    return n > 0 && ok == n ? n : 0;
}

/* A JSON string of `len` bytes decoded with errors="replace" (ensure_ascii=False escaping). */
static void put_string_replaced(jsonout *j, const char *s, size_t len) {
    char *tmp = malloc(4 * len + 1); /* each byte becomes at most U+FFFD (3 bytes) */
    if (tmp == NULL) {
        j->oom = 1;
        return;
    }
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t sub, n = strict_seq(p + i, len - i, &sub);
        if (n > 0) { /* a NUL byte is kept: put_string escapes it as \u0000 */
            memcpy(tmp + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(tmp + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += sub;
        }
    }
    put_string(j, tmp, o, 0);
    free(tmp);
}

int jsonout_dead_letter(jsonout *j, const char *task_id, const char *reason, const char *raw,
                        size_t len, const char *when, const char *worker_id) {
    puts_(j, "{\"task_id\": ");
    if (task_id) put_string(j, task_id, strlen(task_id), 0);
    else puts_(j, "null");
    puts_(j, ", \"motivo\": ");
    put_string(j, reason, strlen(reason), 0);
    puts_(j, ", \"mensagem\": ");
    put_string_replaced(j, raw, len < PROTO_DEAD_LETTER_EXCERPT ? len : PROTO_DEAD_LETTER_EXCERPT);
    putf(j, ", \"tamanho\": %zu, \"em\": ", len);
    put_string(j, when, strlen(when), 0);
    puts_(j, ", \"worker\": ");
    put_string(j, worker_id, strlen(worker_id), 0);
    puts_(j, "}");
    return j->oom ? WK_ERR : WK_OK;
}

static void put_field(jsonout *j, const char *sep_name, const char *value) {
    puts_(j, sep_name);
    put_string_replaced(j, value, strlen(value));
}

int jsonout_log_entry(jsonout *j, const char *when, const char *level, const char *logger,
                      const char *text, const char *task_id) {
    put_field(j, "{\"time\": ", when);
    put_field(j, ", \"level\": ", level);
    put_field(j, ", \"logger\": ", logger);
    put_field(j, ", \"message\": ", text);
    if (task_id && task_id[0]) put_field(j, ", \"task_id\": ", task_id);
    puts_(j, "}");
    return j->oom ? WK_ERR : WK_OK;
}

int jsonout_heartbeat(jsonout *j, const char *id, const char *kind, long pid, const char *host,
                      const char *started, const char *task) {
    puts_(j, "{\"id\": ");
    put_string(j, id, strlen(id), 1);
    puts_(j, ", \"tipo\": ");
    put_string(j, kind, strlen(kind), 1);
    putf(j, ", \"pid\": %ld, \"host\": ", pid);
    put_string(j, host, strlen(host), 1);
    puts_(j, ", \"iniciado_em\": ");
    put_string(j, started, strlen(started), 1);
    puts_(j, ", \"tarefa\": ");
    if (task) put_string(j, task, strlen(task), 1);
    else puts_(j, "null");
    puts_(j, "}");
    return j->oom ? WK_ERR : WK_OK;
}

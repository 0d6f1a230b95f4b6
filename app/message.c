/* message.c -- see message.h. The checks and their reasons follow relatorios/protocol.py line by
 * line; when one changes, change the other. */
#define _POSIX_C_SOURCE 200809L
#include "message.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlex.h"
#include "pyrepr.h"

static int bad(message *m, const char *fmt, ...) WK_PRINTF(2, 3);
static int bad(message *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->errstr, sizeof m->errstr, fmt, ap);
    va_end(ap);
    return WK_ERR;
}

/* ---- tiny matchers for the protocol's regular expressions (anchored at both ends) ---- */

static int is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ */
static int match_task_id(const char *s) {
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_lower_hex(s[i])) return 0;
    }
    return 1;
}

/* [A-Z][A-Z0-9_]{0,63} at s; returns the length matched, 0 if none. */
static size_t span_type(const char *s) {
    if (!is_upper(s[0])) return 0;
    size_t n = 1;
    while (n < PROTO_MAX_NAME && (is_upper(s[n]) || is_digit(s[n]) || s[n] == '_')) n++;
    return n;
}

/* ^[A-Z][A-Z0-9_]{0,63}$ */
static int match_type(const char *s) {
    size_t n = span_type(s);
    return n > 0 && s[n] == '\0';
}

/* ^[a-z][a-z0-9_]{0,63}$ */
static int match_param_name(const char *s) {
    if (!is_lower(s[0])) return 0;
    size_t n = 1;
    while (is_lower(s[n]) || is_digit(s[n]) || s[n] == '_') n++;
    return s[n] == '\0' && n <= PROTO_MAX_NAME;
}

static int digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (!is_digit(s[i])) return 0;
    return 1;
}

/* ^relatorio_[A-Z][A-Z0-9_]{0,63}_[0-9]{8}T[0-9]{6}Z_[0-9a-f]{8}\.csv$
 * The type part may itself contain '_', so the fixed-size tail is matched from the end. */
static int match_file_name(const char *s) {
    static const char prefix[] = "relatorio_";
    size_t len = strlen(s), tail = strlen("_20261128T232324Z_0b7f6b8e.csv");
    if (len <= sizeof prefix - 1 + tail || strncmp(s, prefix, sizeof prefix - 1) != 0) return 0;
    const char *type = s + sizeof prefix - 1, *t = s + len - tail;
    size_t type_len = (size_t)(t - type);
    if (span_type(type) < type_len) return 0;
    if (t[0] != '_' || !digits(t + 1, 8) || t[9] != 'T' || !digits(t + 10, 6) || t[16] != 'Z' ||
        t[17] != '_')
        return 0;
    for (int i = 18; i < 26; i++)
        if (!is_lower_hex(t[i])) return 0;
    return strcmp(t + 26, ".csv") == 0;
}

/* ---- JSON-level rules ---- */

static int compare_keys(const void *a, const void *b) {
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* WK_ERR if any object in the tree has a repeated key (Python: "chave repetida"). */
static int check_duplicates(message *m, const cJSON *node) {
    for (const cJSON *c = node->child; c != NULL; c = c->next)
        if (check_duplicates(m, c) != WK_OK) return WK_ERR;
    if (!cJSON_IsObject(node)) return WK_OK;
    size_t n = 0;
    for (const cJSON *c = node->child; c != NULL; c = c->next) n++;
    if (n < 2) return WK_OK;
    const cJSON **keys = malloc(n * sizeof *keys);
    if (keys == NULL) return bad(m, "memória insuficiente para ler a mensagem");
    size_t i = 0;
    for (const cJSON *c = node->child; c != NULL; c = c->next) keys[i++] = c;
    qsort(keys, n, sizeof *keys, compare_keys);
    int rc = WK_OK;
    for (i = 1; i < n && rc == WK_OK; i++)
        if (strcmp(keys[i - 1]->string, keys[i]->string) == 0)
            rc = bad(m, "mensagem não é JSON válido: chave repetida em um objeto");
    free(keys);
    return rc;
}

/* The number tokens of the nodes we read (versao and the parameters), matched to the tree by a
 * pre-order walk: cJSON keeps members in document order, so the k-th number node of the walk is
 * the k-th number token of the text. */
typedef struct {
    const cJSON *node;
    const char *start;
    size_t n;
} number_token;

typedef struct {
    jsonlex_numbers it;
    number_token *wanted;
    int nwanted;
    int found;
} number_walk;

static void walk_numbers(number_walk *w, const cJSON *node) {
    for (; node != NULL && w->found < w->nwanted; node = node->next) {
        if (cJSON_IsNumber(node)) {
            const char *start = NULL;
            size_t n = 0;
            if (!jsonlex_next_number(&w->it, &start, &n)) return;
            for (int i = 0; i < w->nwanted; i++)
                if (w->wanted[i].node == node) {
                    w->wanted[i].start = start;
                    w->wanted[i].n = n;
                    w->found++;
                }
        }
        walk_numbers(w, node->child);
    }
}

static const number_token *token_of(const number_token *t, int n, const cJSON *node) {
    for (int i = 0; i < n; i++)
        if (t[i].node == node && t[i].start != NULL) return &t[i];
    return NULL;
}

/* ---- the fields ---- */

static int parse_param(message *m, const cJSON *item, const number_token *tok) {
    char shown[PYREPR_MAX];
    if (!match_param_name(item->string)) {
        py_repr_str(item->string, 64, shown, sizeof shown);
        return bad(m, "nome de parâmetro inválido: %s", shown);
    }
    message_param *p = &m->params[m->nparams];
    snprintf(p->name, sizeof p->name, "%s", item->string);
    if (cJSON_IsNull(item)) {
        p->kind = PARAM_NULL;
    } else if (cJSON_IsString(item)) {
        size_t n = strlen(item->valuestring);
        if (n > PROTO_MAX_PARAM_TEXT)
            return bad(m, "parâmetro '%s' maior que %d bytes", p->name, PROTO_MAX_PARAM_TEXT);
        p->kind = PARAM_TEXT;
        memcpy(p->text, item->valuestring, n + 1);
        p->text_len = n;
    } else if (cJSON_IsNumber(item) && tok != NULL) {
        /* raw[len] is '\0', and a token inside an object is followed by ',', '}' or space, so
         * strtod/strtoll stop at its end. */
        if (jsonlex_is_integer(tok->start, tok->n)) {
            errno = 0;
            long long v = strtoll(tok->start, NULL, 10);
            if (errno == ERANGE || v > PROTO_MAX_SAFE_INTEGER || v < -PROTO_MAX_SAFE_INTEGER)
                return bad(m, "parâmetro '%s' fora do intervalo de inteiros exatos (±2^53)",
                           p->name);
            p->kind = PARAM_INT;
            p->i = v;
        } else {
            p->kind = PARAM_REAL;
            p->d = strtod(tok->start, NULL); /* may be +-inf, as in Python */
        }
    } else {
        return bad(m, "parâmetro '%s' deve ser texto, número ou null", p->name);
    }
    m->nparams++;
    return WK_OK;
}

/* Everything after the task id, in the order of protocol.py's _parse_body. */
static int parse_body(message *m, const cJSON *obj, const char *raw, size_t len) {
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(obj, "versao");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(obj, "parametros");
    number_token wanted[1 + PROTO_MAX_PARAMS];
    int nwanted = 0;
    if (cJSON_IsNumber(version)) wanted[nwanted++] = (number_token){version, NULL, 0};
    int nparams = cJSON_IsObject(params) ? cJSON_GetArraySize(params) : 0;
    if (nparams <= PROTO_MAX_PARAMS)
        for (const cJSON *p = params ? params->child : NULL; p != NULL; p = p->next)
            if (cJSON_IsNumber(p)) wanted[nwanted++] = (number_token){p, NULL, 0};
    number_walk walk = {.wanted = wanted, .nwanted = nwanted, .found = 0};
    jsonlex_numbers_init(&walk.it, raw, len);
    walk_numbers(&walk, obj);

    const number_token *vt = token_of(wanted, nwanted, version);
    if (vt == NULL || !jsonlex_is_integer(vt->start, vt->n) || vt->n != 1 || vt->start[0] != '1')
        return bad(m, "campo 'versao' ausente ou diferente de %d", PROTO_PROTOCOL_VERSION);
    const cJSON *tipo = cJSON_GetObjectItemCaseSensitive(obj, "tipo_relatorio");
    if (!cJSON_IsString(tipo) || !match_type(tipo->valuestring))
        return bad(m, "campo 'tipo_relatorio' ausente ou inválido");
    snprintf(m->tipo, sizeof m->tipo, "%s", tipo->valuestring);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(obj, "arquivo");
    if (!cJSON_IsString(file) || !match_file_name(file->valuestring))
        return bad(m, "campo 'arquivo' ausente ou inválido");
    snprintf(m->arquivo, sizeof m->arquivo, "%s", file->valuestring);
    if (params != NULL && !cJSON_IsObject(params))
        return bad(m, "campo 'parametros' deve ser um objeto");
    if (nparams > PROTO_MAX_PARAMS) return bad(m, "mais de %d parâmetros", PROTO_MAX_PARAMS);
    for (const cJSON *p = params ? params->child : NULL; p != NULL; p = p->next)
        if (parse_param(m, p, token_of(wanted, nwanted, p)) != WK_OK) return WK_ERR;
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(obj, "criado_em");
    if (cJSON_IsString(created) && py_len(created->valuestring) <= 64)
        snprintf(m->criado_em, sizeof m->criado_em, "%s", created->valuestring);
    return WK_OK;
}

int message_parse(message *m, const char *raw, size_t len) {
    memset(m, 0, offsetof(message, params));
    m->has_task_id = 0;
    m->errstr[0] = '\0';
    if (len > PROTO_MAX_MESSAGE_BYTES)
        return bad(m, "mensagem maior que %d bytes", PROTO_MAX_MESSAGE_BYTES);
    char why[WK_ERRSTR_LEN];
    if (jsonlex_check(raw, len, why) != WK_OK) return bad(m, "mensagem não é JSON válido: %s", why);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(raw, len, &end, 0);
    if (root == NULL) {
        size_t at = end != NULL && end >= raw ? (size_t)(end - raw) : 0;
        return bad(m, "mensagem não é JSON válido: erro de sintaxe perto do byte %zu", at);
    }
    /* cJSON stops after the value: only JSON whitespace (checked by jsonlex) may follow. */
    for (; end < raw + len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(root);
            return bad(m, "mensagem não é JSON válido: dados extras no byte %zu",
                       (size_t)(end - raw));
        }
    int rc = check_duplicates(m, root);
    if (rc == WK_OK && !cJSON_IsObject(root)) rc = bad(m, "mensagem não é um objeto JSON");
    if (rc == WK_OK) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "task_id");
        if (!cJSON_IsString(id) || !match_task_id(id->valuestring)) {
            rc = bad(m, "campo 'task_id' ausente ou inválido (UUID em minúsculas)");
        } else {
            memcpy(m->task_id, id->valuestring, 37);
            m->has_task_id = 1;
            rc = parse_body(m, root, raw, len);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int message_param_is_integral(const message_param *p, long long *as_int) {
    if (p->kind == PARAM_INT) {
        *as_int = p->i;
        return 1;
    }
    if (p->kind == PARAM_REAL && isfinite(p->d) && p->d == floor(p->d) &&
        fabs(p->d) <= (double)PROTO_MAX_SAFE_INTEGER) {
        *as_int = (long long)p->d;
        return 1;
    }
    return 0;
}

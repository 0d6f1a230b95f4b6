/* message.c -- see message.h. */
#define _POSIX_C_SOURCE 200809L
#include "message.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "utf8.h"

enum { RE_TASK_ID, RE_TYPE, RE_PARAM_NAME, RE_FILE_NAME, RE_FORMAT_WORD, RE_COUNT };
static struct {
    const char *pattern;
    regex_t re;
} rules[RE_COUNT] = {
    {PROTO_TASK_ID_PATTERN, {0}},
    {PROTO_REPORT_TYPE_PATTERN, {0}},
    {PROTO_PARAM_NAME_PATTERN, {0}},
    {PROTO_FILE_NAME_PATTERN, {0}},
    {PROTO_FORMAT_WORD_PATTERN, {0}},
};
static int compiled;

int message_init(char *errstr) {
    for (int i = 0; i < RE_COUNT && !compiled; i++) {
        char whole[256]; /* the pattern must match the whole string */
        snprintf(whole, sizeof whole, "^(%s)$", rules[i].pattern);
        if (regcomp(&rules[i].re, whole, REG_EXTENDED | REG_NOSUB) != 0) {
            (void)wk_error(errstr, "padrão do protocolo inválido: %s", rules[i].pattern);
            while (--i >= 0) regfree(&rules[i].re);
            return WK_ERR;
        }
    }
    compiled = 1;
    return WK_OK;
}

void message_shutdown(void) {
    for (int i = 0; i < RE_COUNT && compiled; i++) regfree(&rules[i].re);
    compiled = 0;
}

static int matches(int rule, const char *s) {
    return regexec(&rules[rule].re, s, 0, NULL, 0) == 0;
}

int message_is_param_name(const char *s) { return compiled && matches(RE_PARAM_NAME, s); }

/* A string field of `obj` that matches `rule`, or NULL. */
static const char *field(const cJSON *obj, const char *name, int rule) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) && matches(rule, item->valuestring) ? item->valuestring : NULL;
}

/* The code unit of the escape \uXXXX at s[0..avail), or -1 if there is none. */
static long escape_at(const char *s, size_t avail) {
    if (avail < 6 || s[0] != '\\' || s[1] != 'u') return -1;
    long v = 0;
    for (int k = 2; k < 6; k++) {
        const char *digit = strchr("0123456789abcdef", tolower((unsigned char)s[k]));
        if (digit == NULL || s[k] == '\0') return -1;
        v = v * 16 + (digit - "0123456789abcdef");
    }
    return v;
}

#define MARK '\xFF' /* never in valid UTF-8: stands for an escape cJSON cannot carry */

/* cJSON ends a string at the escape \u0000, silently, and refuses a whole message for one lone
 * surrogate (\ud800). In the copy it parses, each of these escapes becomes six MARK bytes, so
 * that the message can still name its task, and the parameter holding one is refused. */
static void mark_bad_escapes(char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        long u = escape_at(s + i, n - i), next = n - i > 6 ? escape_at(s + i + 6, n - i - 6) : -1;
        if (u >= 0xD800 && u <= 0xDBFF && next >= 0xDC00 && next <= 0xDFFF) {
            i += 11; /* a surrogate pair: one character */
        } else if (u == 0 || (u >= 0xD800 && u <= 0xDFFF)) {
            memset(s + i, MARK, 6);
            i += 5;
        } else {
            i++; /* the escaped character: in \\u0000 the second backslash is not an escape */
        }
    }
}

static int compare_keys(const void *a, const void *b) {
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* WK_ERR if any object in the tree has a repeated key (cJSON would keep the first silently). */
static int check_duplicates(message *m, const cJSON *node) {
    for (const cJSON *c = node->child; c != NULL; c = c->next)
        if (check_duplicates(m, c) != WK_OK) return WK_ERR;
    int n = cJSON_IsObject(node) ? cJSON_GetArraySize(node) : 0;
    if (n < 2) return WK_OK;
    const cJSON **keys = malloc((size_t)n * sizeof *keys);
    if (keys == NULL) return wk_error(m->errstr, "memória insuficiente para ler a mensagem");
    int i = 0, rc = WK_OK;
    for (const cJSON *c = node->child; c != NULL; c = c->next) keys[i++] = c;
    qsort(keys, (size_t)n, sizeof *keys, compare_keys);
    for (i = 1; i < n && rc == WK_OK; i++)
        if (strcmp(keys[i - 1]->string, keys[i]->string) == 0)
            rc = wk_error(m->errstr, "mensagem não é JSON válido: chave repetida em um objeto");
    free(keys);
    return rc;
}

static int parse_param(message *m, const cJSON *item) {
    if (!matches(RE_PARAM_NAME, item->string))
        return wk_error(m->errstr, "nome de parâmetro inválido");
    message_param *p = &m->params[m->nparams];
    snprintf(p->name, sizeof p->name, "%s", item->string);
    if (cJSON_IsNull(item)) {
        p->kind = PARAM_NULL;
    } else if (cJSON_IsString(item)) {
        if (strchr(item->valuestring, MARK) != NULL)
            return wk_error(m->errstr, "parâmetro '%s' contém NUL ou surrogate inválido", p->name);
        if (strlen(item->valuestring) > PROTO_MAX_PARAM_TEXT)
            return wk_error(m->errstr, "parâmetro '%s' maior que %d bytes", p->name,
                            PROTO_MAX_PARAM_TEXT);
        p->kind = PARAM_TEXT;
        snprintf(p->text, sizeof p->text, "%s", item->valuestring);
    } else if (cJSON_IsNumber(item)) {
        if (!(fabs(item->valuedouble) < (double)PROTO_MAX_SAFE_INTEGER))
            return wk_error(m->errstr,
                            "parâmetro '%s' fora do intervalo dos números exatos (±2^53)", p->name);
        p->kind = PARAM_NUMBER;
        p->number = item->valuedouble;
    } else {
        return wk_error(m->errstr, "parâmetro '%s' deve ser texto, número ou null", p->name);
    }
    m->nparams++;
    return WK_OK;
}

/* 1 if `arquivo` (already matching PROTO_FILE_NAME_PATTERN) is a file of this type and task:
 * relatorio_<tipo>_<16-character stamp>_<first 8 hex of task_id>.<extension>, as
 * protocol.file_belongs checks it (the extension's tie to the format is export.c's). A message
 * naming another task's file must never make a worker write there. */
static int file_belongs(const char *arquivo, const char *tipo, const char *task_id) {
    char prefix[PROTO_MAX_NAME + 16], id[16];
    snprintf(prefix, sizeof prefix, "relatorio_%s_", tipo);
    snprintf(id, sizeof id, "_%.8s.", task_id);
    size_t n = strlen(arquivo), np = strlen(prefix), ni = strlen(id);
    const size_t stamp = 16; /* yyyymmddThhmmssZ */
    return n > np + stamp + ni && strncmp(arquivo, prefix, np) == 0 &&
           strncmp(arquivo + np + stamp, id, ni) == 0;
}

/* `formato` or `compressao` of a version-2 message: absent (the default stays in `out`) or a
 * string matching PROTO_FORMAT_WORD_PATTERN. */
static int output_word(message *m, const cJSON *obj, const char *member, char *out, size_t cap) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, member);
    if (item == NULL) return WK_OK;
    if (!cJSON_IsString(item) || !matches(RE_FORMAT_WORD, item->valuestring))
        return wk_error(m->errstr, "campo '%s' inválido", member);
    snprintf(out, cap, "%s", item->valuestring);
    return WK_OK;
}

/* Everything after the task id (docs/protocol.md, "Message"). */
static int parse_body(message *m, const cJSON *obj) {
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(obj, M_VERSION);
    double v = cJSON_IsNumber(version) ? version->valuedouble : 0;
    if (!cJSON_IsNumber(version) || v != floor(v) || v < PROTO_MIN_PROTOCOL_VERSION ||
        v > PROTO_PROTOCOL_VERSION)
        return wk_error(m->errstr, "campo '%s' ausente ou fora de %d a %d", M_VERSION,
                        PROTO_MIN_PROTOCOL_VERSION, PROTO_PROTOCOL_VERSION);
    snprintf(m->formato, sizeof m->formato, "%s", PROTO_DEFAULT_FORMAT);
    snprintf(m->compressao, sizeof m->compressao, "%s", PROTO_DEFAULT_COMPRESSION);
    if (v >= 2 && (output_word(m, obj, M_FORMAT, m->formato, sizeof m->formato) != WK_OK ||
                   output_word(m, obj, M_COMPRESSION, m->compressao, sizeof m->compressao) !=
                       WK_OK))
        return WK_ERR;
    const char *tipo = field(obj, M_TYPE, RE_TYPE);
    if (tipo == NULL) return wk_error(m->errstr, "campo '%s' ausente ou inválido", M_TYPE);
    snprintf(m->tipo, sizeof m->tipo, "%s", tipo);
    const char *arquivo = field(obj, M_FILE, RE_FILE_NAME);
    if (arquivo == NULL || !file_belongs(arquivo, m->tipo, m->task_id))
        return wk_error(m->errstr, "campo '%s' ausente, inválido ou de outra tarefa", M_FILE);
    snprintf(m->arquivo, sizeof m->arquivo, "%s", arquivo);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(obj, M_PARAMS);
    if (params != NULL && !cJSON_IsObject(params))
        return wk_error(m->errstr, "campo '%s' deve ser um objeto", M_PARAMS);
    if (cJSON_GetArraySize(params) > PROTO_MAX_PARAMS)
        return wk_error(m->errstr, "mais de %d parâmetros", PROTO_MAX_PARAMS);
    for (const cJSON *p = params ? params->child : NULL; p != NULL; p = p->next)
        if (parse_param(m, p) != WK_OK) return WK_ERR;
    return WK_OK;
}

int message_parse(message *m, const char *raw, size_t len) {
    memset(m, 0, offsetof(message, params));
    m->has_task_id = 0;
    m->errstr[0] = '\0';
    if (!compiled) return wk_error(m->errstr, "message_init() não foi chamada");
    if (len > PROTO_MAX_MESSAGE_BYTES)
        return wk_error(m->errstr, "mensagem maior que %d bytes", PROTO_MAX_MESSAGE_BYTES);
    size_t bad = utf8_check(raw, len);
    if (bad < len)
        return wk_error(m->errstr, "mensagem não é JSON válido em UTF-8 (byte %zu)", bad);
    char *text = malloc(len + 1);
    if (text == NULL) return wk_error(m->errstr, "memória insuficiente para ler a mensagem");
    memcpy(text, raw, len + 1);
    mark_bad_escapes(text, len);
    /* No NUL inside and text[len] == '\0': cJSON reads it all and allows only spaces after it. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
    free(text);
    if (root == NULL) return wk_error(m->errstr, "mensagem não é JSON válido (byte %zu)", at);
    int rc = check_duplicates(m, root);
    if (rc == WK_OK && !cJSON_IsObject(root))
        rc = wk_error(m->errstr, "mensagem não é um objeto JSON");
    if (rc == WK_OK) {
        const char *id = field(root, M_TASK_ID, RE_TASK_ID);
        if (id == NULL) {
            rc = wk_error(m->errstr, "campo '%s' ausente ou inválido (UUID em minúsculas)",
                          M_TASK_ID);
        } else {
            snprintf(m->task_id, sizeof m->task_id, "%s", id);
            m->has_task_id = 1;
            rc = parse_body(m, root);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int message_param_is_integral(const message_param *p, long long *as_int) {
    if (p->kind != PARAM_NUMBER || p->number != floor(p->number)) return 0;
    *as_int = (long long)p->number; /* exact: |number| < 2^53 */
    return 1;
}

char *message_params_json(const message *m) {
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; obj != NULL && i < m->nparams; i++) {
        const message_param *p = &m->params[i];
        char number[CSV_REAL_LEN];
        long long as_int;
        if (message_param_is_integral(p, &as_int)) snprintf(number, sizeof number, "%lld", as_int);
        else if (p->kind == PARAM_NUMBER) (void)csv_format_real(p->number, number);
        const cJSON *added = p->kind == PARAM_NULL ? cJSON_AddNullToObject(obj, p->name)
                             : p->kind == PARAM_TEXT
                                 ? cJSON_AddStringToObject(obj, p->name, p->text)
                                 : cJSON_AddRawToObject(obj, p->name, number);
        if (added == NULL) {
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    char *json = obj != NULL ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return json;
}

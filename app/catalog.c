/* catalog.c -- see catalog.h. The header lines are read as relatorios/catalog.py reads them:
 * a line (trimmed) `--`, spaces, `@key`, spaces, value; @param values are split into words as
 * shlex.split() does (POSIX: quotes and backslashes). */
#define _POSIX_C_SOURCE 200809L
#include "catalog.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "message.h"

#define MAX_WORDS 16
#define MAX_WORD 512

/* Reads the whole file into a new NUL-terminated string (*out). */
static int read_file(const char *path, char **out, char errstr[WK_ERRSTR_LEN]) {
    FILE *f = fopen(path, "rb");
    char *text = f != NULL ? malloc(CATALOG_MAX_SQL + 1) : NULL;
    size_t n = text != NULL ? fread(text, 1, CATALOG_MAX_SQL + 1, f) : 0;
    int err = f == NULL ? errno : text == NULL ? ENOMEM : ferror(f) ? EIO : 0;
    if (f != NULL && fclose(f) != 0 && err == 0) err = errno;
    if (err == 0 && n > CATALOG_MAX_SQL) err = EFBIG;
    if (err != 0) {
        free(text);
        return wk_error(errstr, "%s: %s", path, strerror(err));
    }
    text[n] = '\0';
    *out = text;
    return WK_OK;
}

/* Appends byte c to word `w` (MAX_WORD bytes, *len used). */
static int put(char *w, size_t *len, char c) {
    if (*len + 1 >= MAX_WORD) return WK_ERR;
    w[(*len)++] = c;
    w[*len] = '\0';
    return WK_OK;
}

/* Splits s[0..n) into words as shlex.split() does. Returns the number of words or WK_ERR. */
static int split_words(const char *s, size_t n, char words[MAX_WORDS][MAX_WORD]) {
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && isspace((unsigned char)s[i])) i++;
        if (i == n) break;
        if (count == MAX_WORDS) return WK_ERR;
        char *w = words[count++];
        size_t len = 0;
        w[0] = '\0';
        while (i < n && !isspace((unsigned char)s[i])) {
            char c = s[i++];
            if (c == '\'' || c == '"') { /* a quoted part of the word */
                for (;; i++) {
                    if (i == n) return WK_ERR; /* no closing quotation */
                    if (s[i] == c) break;
                    if (c == '"' && s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
                        i++;
                    if (put(w, &len, s[i]) != WK_OK) return WK_ERR;
                }
                i++;
            } else if (c == '\\' && i < n) {
                if (put(w, &len, s[i++]) != WK_OK) return WK_ERR;
            } else if (put(w, &len, c) != WK_OK) {
                return WK_ERR;
            }
        }
    }
    return count;
}

static int parse_number(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return WK_ERR;
    *out = v;
    return WK_OK;
}

static int parse_kind(const char *s, catalog_kind *kind) {
    static const char *const names[] = {"text", "integer", "date", "department"};
    for (int k = 0; k < 4; k++)
        if (strcmp(s, names[k]) == 0) {
            *kind = (catalog_kind)k;
            return WK_OK;
        }
    return WK_ERR;
}

/* One option word of an @param line: required, optional, default=, min=, max=, or the label. */
static int parse_option(catalog_param *p, const char *word, int *optional) {
    const char *eq = strchr(word, '=');
    if (strcmp(word, "required") == 0) return WK_OK;
    if (strcmp(word, "optional") == 0) {
        *optional = 1;
        return WK_OK;
    }
    if (eq == NULL) return WK_OK; /* the label: only the API shows it */
    size_t klen = (size_t)(eq - word);
    if (klen == 7 && strncmp(word, "default", 7) == 0) {
        p->has_default = 1;
        long long unused;
        if (p->kind == KIND_INTEGER && parse_number(eq + 1, &unused) != WK_OK) return WK_ERR;
        return (size_t)snprintf(p->default_text, sizeof p->default_text, "%s", eq + 1) <
                       sizeof p->default_text
                   ? WK_OK
                   : WK_ERR;
    }
    if (klen == 3 && strncmp(word, "min", 3) == 0) {
        p->has_min = 1;
        return parse_number(eq + 1, &p->min);
    }
    if (klen == 3 && strncmp(word, "max", 3) == 0) {
        p->has_max = 1;
        return parse_number(eq + 1, &p->max);
    }
    return WK_OK; /* another option: ignored, as the API ignores it */
}

/* `name kind [options] "label"` into r->params. */
static int parse_param(catalog_report *r, const char *spec, size_t n) {
    static char words[MAX_WORDS][MAX_WORD]; /* large: not on the stack (single-threaded) */
    int count = split_words(spec, n, words);
    if (count < 2 || r->nparams == PROTO_MAX_PARAMS || !message_is_param_name(words[0]))
        return WK_ERR;
    catalog_param *p = &r->params[r->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%.*s", PROTO_MAX_NAME, words[0]); /* matched: fits */
    if (parse_kind(words[1], &p->kind) != WK_OK) return WK_ERR;
    int optional = 0;
    for (int i = 2; i < count; i++)
        if (parse_option(p, words[i], &optional) != WK_OK) return WK_ERR;
    p->required = !p->has_default && !optional;
    r->nparams++;
    return WK_OK;
}

/* If `line` (n bytes, trimmed) is `--` spaces `@key` spaces value, sets key/value. */
static int header_line(const char *line, size_t n, const char **key, size_t *klen,
                       const char **value, size_t *vlen) {
    if (n < 2 || line[0] != '-' || line[1] != '-') return 0;
    size_t i = 2;
    while (i < n && isspace((unsigned char)line[i])) i++;
    if (i == n || line[i++] != '@') return 0;
    *key = line + i;
    while (i < n && (isalnum((unsigned char)line[i]) || line[i] == '_')) i++;
    *klen = (size_t)(line + i - *key);
    size_t gap = i;
    while (i < n && isspace((unsigned char)line[i])) i++;
    if (*klen == 0 || i == gap) return 0; /* `\s+` after the key, as the Python reader */
    *value = line + i;
    *vlen = n - i;
    return 1;
}

/* Whether the words of an @sources line (n bytes) name `source`; WK_ERR if one is unknown. */
static int sources_name(const char *value, size_t n, const char *source) {
    static char words[MAX_WORDS][MAX_WORD];
    int count = split_words(value, n, words), found = 0;
    if (count <= 0) return WK_ERR;
    for (int i = 0; i < count; i++) {
        if (strcmp(words[i], PROTO_SOURCE_SQLITE) != 0 &&
            strcmp(words[i], PROTO_SOURCE_POSTGRESQL) != 0)
            return WK_ERR;
        found |= strcmp(words[i], source) == 0;
    }
    return found;
}

/* An @timeout line: whole seconds, 0 to PROTO_MAX_TASK_TIMEOUT_S (as the Python reader). */
static int parse_timeout(catalog_report *r, const char *value, size_t n) {
    if (n < 1 || n > 5) return WK_ERR;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (value[i] < '0' || value[i] > '9') return WK_ERR;
        v = v * 10 + (value[i] - '0');
    }
    if (v > PROTO_MAX_TASK_TIMEOUT_S) return WK_ERR;
    r->has_timeout = 1;
    r->timeout_s = v;
    return WK_OK;
}

/* An @column line: exactly two words, a name and one of the types (the words of
 * relatorios/catalog.py's str.split()). */
static int parse_column(catalog_report *r, const char *spec, size_t n) {
    static const char *const names[] = {"text", "integer", "decimal", "date"};
    static const column_type types[] = {COLUMN_TEXT, COLUMN_INTEGER, COLUMN_DECIMAL, COLUMN_DATE};
    char words[2][CATALOG_MAX_COLUMN_NAME];
    int count = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && isspace((unsigned char)spec[i])) i++;
        if (i == n) break;
        size_t start = i;
        while (i < n && !isspace((unsigned char)spec[i])) i++;
        if (count == 2 || i - start >= CATALOG_MAX_COLUMN_NAME) return WK_ERR;
        memcpy(words[count], spec + start, i - start);
        words[count++][i - start] = '\0';
    }
    if (count != 2 || r->ncolumns == CATALOG_MAX_COLUMNS) return WK_ERR;
    for (size_t t = 0; t < sizeof names / sizeof *names; t++)
        if (strcmp(words[1], names[t]) == 0) {
            catalog_column *c = &r->columns[r->ncolumns++];
            memcpy(c->name, words[0], sizeof c->name);
            c->type = types[t];
            return WK_OK;
        }
    return WK_ERR;
}

/* Parses every header line of r->sql; *sources is set to 1 or 0 if an @sources line says
 * whether `source` is supported, and left alone otherwise. */
static int parse_headers(catalog_report *r, const char *type, const char *source, int *sources,
                         char errstr[WK_ERRSTR_LEN]) {
    for (const char *line = r->sql; *line;) {
        const char *end = strchr(line, '\n');
        const char *next = end ? end + 1 : line + strlen(line);
        if (end == NULL) end = next;
        while (line < end && isspace((unsigned char)*line)) line++;
        while (end > line && isspace((unsigned char)end[-1])) end--;
        const char *key, *value;
        size_t klen, vlen;
        int header = header_line(line, (size_t)(end - line), &key, &klen, &value, &vlen);
        if (header && klen == 5 && strncmp(key, "param", 5) == 0 &&
            parse_param(r, value, vlen) != WK_OK)
            return wk_error(errstr, "%s.sql: linha @param inválida: %.*s", type, (int)vlen, value);
        if (header && klen == 7 && strncmp(key, "timeout", 7) == 0 &&
            parse_timeout(r, value, vlen) != WK_OK)
            return wk_error(errstr, "%s.sql: linha @timeout inválida: %.*s", type, (int)vlen,
                            value);
        if (header && klen == 6 && strncmp(key, "column", 6) == 0 &&
            parse_column(r, value, vlen) != WK_OK)
            return wk_error(errstr, "%s.sql: linha @column inválida: %.*s", type, (int)vlen,
                            value);
        if (header && klen == 7 && strncmp(key, "sources", 7) == 0 &&
            (*sources = sources_name(value, vlen, source)) == WK_ERR)
            return wk_error(errstr, "%s.sql: linha @sources inválida: %.*s", type, (int)vlen,
                            value);
        line = next;
    }
    return WK_OK;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int catalog_load(catalog_report *r, const char *dir, const char *type, const char *source,
                 char errstr[WK_ERRSTR_LEN]) {
    memset(r, 0, sizeof *r);
    char path[4096], dialect[4096];
    if (snprintf(path, sizeof path, "%s/%s.sql", dir, type) >= (int)sizeof path || !is_file(path))
        return CATALOG_NOT_FOUND;
    int own = snprintf(dialect, sizeof dialect, "%s/%s/%s.sql", dir, source, type) <
                  (int)sizeof dialect && is_file(dialect);
    /* Without an @sources line: SQLite, and every source with a file of its own. */
    int supported = own || strcmp(source, PROTO_SOURCE_SQLITE) == 0;
    if (read_file(path, &r->sql, errstr) != WK_OK) return WK_ERR;
    int rc = parse_headers(r, type, source, &supported, errstr);
    if (rc == WK_OK && !supported) rc = CATALOG_UNSUPPORTED;
    if (rc == WK_OK && own) { /* the headers stay those of <type>.sql; the SQL is the dialect's */
        free(r->sql);
        r->sql = NULL;
        rc = read_file(dialect, &r->sql, errstr);
    }
    if (rc != WK_OK) catalog_free(r);
    return rc;
}

column_type catalog_column_type(const catalog_report *r, const char *name) {
    /* The last line naming a column wins, as dict() does with the Python reader's pairs. */
    for (int i = r->ncolumns - 1; i >= 0; i--)
        if (strcmp(r->columns[i].name, name) == 0) return r->columns[i].type;
    return COLUMN_UNTYPED;
}

const catalog_param *catalog_param_named(const catalog_report *r, const char *name) {
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0) return &r->params[i];
    return NULL;
}

void catalog_free(catalog_report *r) {
    free(r->sql);
    r->sql = NULL;
    r->nparams = 0;
    r->ncolumns = 0;
}

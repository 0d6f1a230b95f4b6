/* source_sqlite.c -- see source_sqlite.h. */
#define _POSIX_C_SOURCE 200809L
#include "source_sqlite.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol.h"

/* SQLite's default cache is 2,000 KiB: 500 pages of 4 KiB, plus slack for the header. */
#define CACHE_PAGE_BYTES 4096
#define CACHE_SLOTS 520

typedef struct {
    source base;
    sqlite3 *db;
    sqlite3_stmt *stmt;
    int step; /* the result of the last sqlite3_step, 0 before the first */
    report_tick_fn tick;
    void *ud;
} sqlite_source;

static void *page_cache;

int source_sqlite_global_init(char errstr[WK_ERRSTR_LEN]) {
    int hdr = 0;
    if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) != SQLITE_OK)
        return wk_error(errstr, "sqlite3_config falhou (SQLite já iniciado?)");
    size_t slot = ((size_t)CACHE_PAGE_BYTES + (size_t)hdr + 7) & ~(size_t)7;
    page_cache = malloc(slot * CACHE_SLOTS);
    if (page_cache == NULL) return wk_error(errstr, "memória insuficiente para o cache do SQLite");
    report_touch(page_cache, slot * CACHE_SLOTS);
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, page_cache, (int)slot, CACHE_SLOTS) != SQLITE_OK) {
        free(page_cache);
        page_cache = NULL;
        return wk_error(errstr, "sqlite3_config(SQLITE_CONFIG_PAGECACHE) falhou");
    }
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK) return wk_error(errstr, "sqlite3_initialize: %s", sqlite3_errstr(rc));
    return WK_OK;
}

void source_sqlite_global_shutdown(void) {
    /* The block belongs to SQLite until sqlite3_shutdown() returns. */
    if (sqlite3_shutdown() == SQLITE_OK) {
        free(page_cache);
        page_cache = NULL;
    }
}

/* An SQLite error (docs/protocol.md, "Error codes"): the database cannot be opened or read now
 * (BUSY, LOCKED, CANTOPEN, IOERR*: banco_indisponivel), a temporary file filled the disk (FULL:
 * disco_cheio), both transient; anything else is the report's query failing, for good. */
static int sqlite_failed(report_error *e, int rc, const char *said) {
    (void)wk_error(e->detail, "SQLite: %s", said);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        return report_fail(e, ERR_DATABASE_UNAVAILABLE, 1, "%s (código SQLite %d)",
                           ERR_DATABASE_UNAVAILABLE_TEXT, rc);
    case SQLITE_FULL:
        return report_fail(e, ERR_DISK_FULL, 1, "%s (código SQLite %d)", ERR_DISK_FULL_TEXT, rc);
    default:
        return report_fail(e, ERR_QUERY_FAILED, 0, "%s (código SQLite %d)", ERR_QUERY_FAILED_TEXT,
                           rc);
    }
}

/* The connection's last error. */
static int db_failed(sqlite_source *s) {
    return sqlite_failed(s->base.err, sqlite3_extended_errcode(s->db), sqlite3_errmsg(s->db));
}

/* Skips whitespace and SQL comments; what remains after the first statement must be empty. */
static int only_comments(const char *p) {
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n') p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (end == NULL) return 1;
            p = end + 2;
        } else {
            return *p == '\0';
        }
    }
}

static int bind_one(sqlite3_stmt *st, int i, const value *v) {
    switch (v->type) {
    case VALUE_NULL: return sqlite3_bind_null(st, i);
    case VALUE_INT: return sqlite3_bind_int64(st, i, v->i);
    case VALUE_REAL: return sqlite3_bind_double(st, i, v->d);
    default: return sqlite3_bind_text(st, i, v->text, (int)v->len, SQLITE_TRANSIENT);
    }
}

/* Binds every named parameter of the statement to the resolved parameter of the same name; the
 * catalog's declarations and the statement must agree both ways, as relatorios/catalog.py checks. */
static int bind_params(sqlite_source *s, const source_param *params, int nparams) {
    int count = sqlite3_bind_parameter_count(s->stmt);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(s->stmt, i);
        const source_param *p = NULL;
        for (int k = 0; name != NULL && name[0] != '?' && k < nparams && p == NULL; k++)
            if (strcmp(params[k].name, name + 1) == 0) p = &params[k];
        if (p == NULL)
            return report_fail(s->base.err, ERR_QUERY_FAILED, 0,
                               "%s: parâmetro do SQL não declarado no catálogo (%s)",
                               ERR_QUERY_FAILED_TEXT, name ? name : "?");
        if (bind_one(s->stmt, i, &p->v) != SQLITE_OK) return db_failed(s);
    }
    for (int k = 0; k < nparams; k++) { /* and every declared one must be used */
        char named[PROTO_MAX_NAME + 2];
        snprintf(named, sizeof named, ":%s", params[k].name);
        if (sqlite3_bind_parameter_index(s->stmt, named) == 0)
            return report_fail(s->base.err, ERR_QUERY_FAILED, 0,
                               "%s: parâmetro declarado no catálogo e ausente do SQL (%s)",
                               ERR_QUERY_FAILED_TEXT, params[k].name);
    }
    return WK_OK;
}

/* Non-zero makes SQLite interrupt the statement (SQLITE_INTERRUPT). */
static int on_sqlite_progress(void *arg) {
    sqlite_source *s = arg;
    if (!s->base.err->interrupted && s->tick(s->ud) != 0) s->base.err->interrupted = 1;
    return s->base.err->interrupted;
}

static void put_value(sqlite3_stmt *st, int i, value *v) {
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        v->type = VALUE_INT;
        v->i = sqlite3_column_int64(st, i);
        break;
    case SQLITE_FLOAT:
        v->type = VALUE_REAL;
        v->d = sqlite3_column_double(st, i);
        break;
    case SQLITE_NULL: v->type = VALUE_NULL; break;
    case SQLITE_BLOB: /* no CSV meaning (docs/protocol.md): its bytes, as text */
        v->type = VALUE_TEXT;
        v->text = sqlite3_column_blob(st, i);
        v->len = v->text ? (size_t)sqlite3_column_bytes(st, i) : 0;
        break;
    default: /* SQLITE_TEXT */
        v->type = VALUE_TEXT;
        v->text = (const char *)sqlite3_column_text(st, i);
        v->len = (size_t)sqlite3_column_bytes(st, i);
    }
}

static int sqlite_next(source *base, value *row) {
    sqlite_source *s = (sqlite_source *)base;
    if (s->step == SQLITE_DONE) return SOURCE_DONE;
    s->step = sqlite3_step(s->stmt);
    if (s->step == SQLITE_DONE) return SOURCE_DONE;
    if (s->step != SQLITE_ROW) return db_failed(s);
    for (int i = 0; i < base->ncols; i++) {
        put_value(s->stmt, i, &row[i]);
        /* A NULL pointer for a TEXT value (never for an empty one) is SQLite out of memory. */
        if (row[i].type == VALUE_TEXT && row[i].text == NULL &&
            sqlite3_errcode(s->db) == SQLITE_NOMEM)
            return db_failed(s);
        if (row[i].type == VALUE_TEXT && row[i].text == NULL) row[i].text = "";
    }
    return SOURCE_ROW;
}

static const char *sqlite_column_name(source *base, int i) {
    return sqlite3_column_name(((sqlite_source *)base)->stmt, i);
}

static void sqlite_close(source *base) {
    sqlite_source *s = (sqlite_source *)base;
    if (s->db != NULL) sqlite3_progress_handler(s->db, 0, NULL, NULL);
    /* sqlite3_finalize returns the last step's error, already reported; nothing to add. */
    if (s->stmt != NULL) (void)sqlite3_finalize(s->stmt);
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK) (void)sqlite3_close_v2(s->db);
    free(s);
}

static const source_ops sqlite_ops = {sqlite_next, sqlite_column_name, sqlite_close};

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int source_sqlite_open(source **out, const char *db_path, const char *sql,
                       const source_param *params, int nparams, report_tick_fn tick, void *ud,
                       report_error *err) {
    sqlite_source *s = calloc(1, sizeof *s);
    *out = (source *)s;
    if (s == NULL)
        return report_fail(err, ERR_DATABASE_UNAVAILABLE, 1, "%s: memória insuficiente",
                           ERR_DATABASE_UNAVAILABLE_TEXT);
    s->base = (source){&sqlite_ops, 0, err};
    s->tick = tick;
    s->ud = ud;
    if (!is_regular_file(db_path)) { /* transient: it may be being generated or replaced now */
        (void)wk_error(err->detail, "%s", strerror(ENOENT));
        return report_fail(err, ERR_DATABASE_UNAVAILABLE, 1, "%s: %s não encontrado",
                           ERR_DATABASE_UNAVAILABLE_TEXT, db_path);
    }
    int rc = sqlite3_open_v2(db_path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(s->db, PROTO_SQLITE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) return s->db != NULL ? db_failed(s) : sqlite_failed(err, rc, sqlite3_errstr(rc));
    const char *tail = NULL;
    rc = sqlite3_prepare_v2(s->db, sql, -1, &s->stmt, &tail);
    if (rc != SQLITE_OK) return db_failed(s);
    if (s->stmt == NULL || (tail != NULL && !only_comments(tail)))
        return report_fail(err, ERR_QUERY_FAILED, 0, "%s: o arquivo do catálogo deve ter uma só consulta",
                           ERR_QUERY_FAILED_TEXT);
    if (bind_params(s, params, nparams) != WK_OK) return WK_ERR;
    s->base.ncols = sqlite3_column_count(s->stmt);
    /* The handler rate-limits itself through `tick`; it lives as long as the source. */
    sqlite3_progress_handler(s->db, PROTO_SQLITE_PROGRESS_STEPS, on_sqlite_progress, s);
    return WK_OK;
}

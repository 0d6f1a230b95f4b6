/* export.c -- see export.h. */
#define _POSIX_C_SOURCE 200809L
#include "export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "protocol.h"

#define MAX_SQL_BYTES (1 << 20)
/* SQLite's default cache is 2,000 KiB: 500 pages of 4 KiB, plus slack for the header. */
#define CACHE_PAGE_BYTES 4096
#define CACHE_SLOTS 520

static void *page_cache;

/* Makes every page of [p, p+n) resident now. Not memset(0): the compiler may turn malloc+memset
 * into calloc, whose fresh pages stay untouched, and the memory would then grow with the first
 * big report instead of being the same for every report. */
static void touch(void *p, size_t n) {
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i += 4096) b[i] = 0xA5;
}
/* The CSV buffer, allocated and touched once: memory does not depend on the report. */
static unsigned char *csv_buffer;

int export_global_init(char *errstr) {
    csv_buffer = malloc(CSV_BUFFER_BYTES);
    if (csv_buffer == NULL) return wk_error(errstr, "memória insuficiente para o buffer do CSV");
    touch(csv_buffer, CSV_BUFFER_BYTES);
    int hdr = 0;
    if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) != SQLITE_OK)
        return wk_error(errstr, "sqlite3_config falhou (SQLite já iniciado?)");
    size_t slot = ((size_t)CACHE_PAGE_BYTES + (size_t)hdr + 7) & ~(size_t)7;
    page_cache = malloc(slot * CACHE_SLOTS);
    if (page_cache == NULL) return wk_error(errstr, "memória insuficiente para o cache do SQLite");
    touch(page_cache, slot * CACHE_SLOTS);
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, page_cache, (int)slot, CACHE_SLOTS) != SQLITE_OK) {
        free(page_cache);
        page_cache = NULL;
        return wk_error(errstr, "sqlite3_config(SQLITE_CONFIG_PAGECACHE) falhou");
    }
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK) return wk_error(errstr, "sqlite3_initialize: %s", sqlite3_errstr(rc));
    return WK_OK;
}

void export_global_shutdown(void) {
    free(csv_buffer);
    csv_buffer = NULL;
    /* The block belongs to SQLite until sqlite3_shutdown() returns. */
    if (sqlite3_shutdown() == SQLITE_OK) {
        free(page_cache);
        page_cache = NULL;
    }
}

/* Sets the job's code and whether it is transient, and returns WK_ERR: the caller then writes
 * the `erro` with wk_error(job->errstr, ...). */
static int failed(export_job *job, const char *code, int transient) {
    job->code = code;
    job->transient = transient;
    return WK_ERR;
}

/* An SQLite error (docs/protocol.md, "Error codes"): the database cannot be opened or read now
 * (BUSY, LOCKED, CANTOPEN, IOERR*: banco_indisponivel), a temporary file filled the disk (FULL:
 * disco_cheio), both transient; anything else is the report's query failing, for good. */
static int sqlite_failed(export_job *job, int rc, const char *said) {
    (void)wk_error(job->detail, "SQLite: %s", said);
    const char *text = ERR_QUERY_FAILED_TEXT;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        (void)failed(job, ERR_DATABASE_UNAVAILABLE, 1);
        text = ERR_DATABASE_UNAVAILABLE_TEXT;
        break;
    case SQLITE_FULL:
        (void)failed(job, ERR_DISK_FULL, 1);
        text = ERR_DISK_FULL_TEXT;
        break;
    default: (void)failed(job, ERR_QUERY_FAILED, 0);
    }
    return wk_error(job->errstr, "%s (código SQLite %d)", text, rc);
}

/* The connection's last error. */
static int db_failed(export_job *job) {
    return sqlite_failed(job, sqlite3_extended_errcode(job->db), sqlite3_errmsg(job->db));
}

/* Writing <arquivo>.part failed with `err`: no space or quota is disco_cheio, anything else
 * escrita_falhou; EIO and EAGAIN may pass, so they are retried. */
static int write_failed(export_job *job, const char *arquivo, int err) {
    (void)wk_error(job->detail, "%s.part: %s", arquivo, strerror(err));
    if (err == ENOSPC || err == EDQUOT) {
        (void)failed(job, ERR_DISK_FULL, 1);
        return wk_error(job->errstr, "%s (errno %d)", ERR_DISK_FULL_TEXT, err);
    }
    (void)failed(job, ERR_WRITE_FAILED, err == EIO || err == EAGAIN);
    return wk_error(job->errstr, "%s (errno %d)", ERR_WRITE_FAILED_TEXT, err);
}

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the whole SQL file into a NUL-terminated heap string (*out, freed by the caller). A
 * catalog file that cannot be read is the report's fault: consulta_falhou. */
static int read_sql(export_job *job, const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char *sql = f != NULL ? malloc(MAX_SQL_BYTES + 1) : NULL;
    size_t n = sql != NULL ? fread(sql, 1, MAX_SQL_BYTES + 1, f) : 0;
    int err = f == NULL ? errno : sql == NULL ? ENOMEM : ferror(f) ? EIO : 0;
    if (f != NULL && fclose(f) != 0 && err == 0) err = errno;
    if (err == 0 && n > MAX_SQL_BYTES) err = EFBIG;
    if (err != 0) {
        free(sql);
        (void)wk_error(job->detail, "%s: %s", path, strerror(err));
        (void)failed(job, ERR_QUERY_FAILED, 0);
        return wk_error(job->errstr, "%s: arquivo do catálogo ilegível", ERR_QUERY_FAILED_TEXT);
    }
    sql[n] = '\0';
    *out = sql;
    return WK_OK;
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

static const message_param *find_param(const message *m, const char *name) {
    for (int k = 0; k < m->nparams; k++)
        if (strcmp(m->params[k].name, name) == 0) return &m->params[k];
    return NULL;
}

static int bind_one(sqlite3_stmt *st, int i, const message_param *p) {
    long long as_int;
    if (p->kind == PARAM_NULL) return sqlite3_bind_null(st, i);
    if (p->kind == PARAM_TEXT) return sqlite3_bind_text(st, i, p->text, -1, SQLITE_TRANSIENT);
    if (message_param_is_integral(p, &as_int)) return sqlite3_bind_int64(st, i, as_int);
    return sqlite3_bind_double(st, i, p->number);
}

/* Binds the message's parameters by name: every parameter of the statement must be given, and
 * every given parameter must be one of the statement's (parametro_invalido, naming it). */
static int bind_params(export_job *job, const message *m) {
    sqlite3_stmt *st = job->stmt;
    int count = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (name == NULL || name[0] == '?') {
            (void)failed(job, ERR_QUERY_FAILED, 0);
            return wk_error(job->errstr, "%s: parâmetro sem nome no SQL", ERR_QUERY_FAILED_TEXT);
        }
        const message_param *p = find_param(m, name + 1);
        if (p == NULL) {
            (void)failed(job, ERR_INVALID_PARAMETER, 0);
            return wk_error(job->errstr, "parâmetro ausente: %s", name + 1);
        }
        if (bind_one(st, i, p) != SQLITE_OK) return db_failed(job);
    }
    for (int k = 0; k < m->nparams; k++) {
        int known = 0;
        for (int i = 1; i <= count && !known; i++)
            known = strcmp(sqlite3_bind_parameter_name(st, i) + 1, m->params[k].name) == 0;
        if (!known) {
            (void)failed(job, ERR_INVALID_PARAMETER, 0);
            return wk_error(job->errstr, "parâmetro desconhecido: %s", m->params[k].name);
        }
    }
    return WK_OK;
}

int export_prepare(export_job *job, const config *cfg, const message *m) {
    memset(job, 0, sizeof *job);
    char path[4096];
    /* tipo matched PROTO_REPORT_TYPE_PATTERN, so this path never leaves the catalog. */
    if (snprintf(path, sizeof path, "%s/%s.sql", cfg->catalog_dir, m->tipo) >= (int)sizeof path ||
        !is_regular_file(path)) {
        (void)failed(job, ERR_UNKNOWN_TYPE, 0);
        return wk_error(job->errstr, "%s: %s", ERR_UNKNOWN_TYPE_TEXT, m->tipo);
    }
    char *sql;
    if (read_sql(job, path, &sql) != WK_OK) return WK_ERR;
    if (!is_regular_file(cfg->db_path)) {
        free(sql);
        /* Transient: the database may be being generated or replaced right now. */
        (void)wk_error(job->detail, "%s", strerror(ENOENT));
        (void)failed(job, ERR_DATABASE_UNAVAILABLE, 1);
        return wk_error(job->errstr, "%s: %s não encontrado", ERR_DATABASE_UNAVAILABLE_TEXT,
                        cfg->db_path);
    }
    int rc = sqlite3_open_v2(cfg->db_path, &job->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(job->db, PROTO_SQLITE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        free(sql);
        return job->db != NULL ? db_failed(job) : sqlite_failed(job, rc, sqlite3_errstr(rc));
    }
    const char *tail = NULL;
    rc = sqlite3_prepare_v2(job->db, sql, -1, &job->stmt, &tail);
    int several = rc == SQLITE_OK && tail != NULL && !only_comments(tail);
    free(sql);
    if (rc != SQLITE_OK) return db_failed(job);
    if (job->stmt == NULL || several) {
        (void)failed(job, ERR_QUERY_FAILED, 0);
        return wk_error(job->errstr, "%s: o arquivo do catálogo deve ter uma só consulta",
                        ERR_QUERY_FAILED_TEXT);
    }
    return bind_params(job, m);
}

/* Writes one value of the current row. A NULL pointer for a TEXT value (never for an empty
 * one), or for a non-empty BLOB, is SQLite running out of memory. */
static int put_column(export_job *job, csv_writer *w, int i) {
    sqlite3_stmt *st = job->stmt;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return csv_put_int(w, sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: return csv_put_real(w, sqlite3_column_double(st, i));
    case SQLITE_NULL: return csv_put_null(w);
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);
        if (p == NULL && sqlite3_errcode(job->db) == SQLITE_NOMEM) return db_failed(job);
        return csv_put_text(w, p, p ? (size_t)n : 0);
    }
    default: { /* SQLITE_TEXT */
        const unsigned char *p = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        if (p == NULL) return sqlite_failed(job, SQLITE_NOMEM, sqlite3_errstr(SQLITE_NOMEM));
        return csv_put_text(w, p, (size_t)n);
    }
    }
}

static int write_rows(export_job *job, csv_writer *w, int rc, long every,
                      export_progress_fn progress, void *ud, uint64_t *rows) {
    sqlite3_stmt *st = job->stmt;
    int ncols = sqlite3_column_count(st);
    for (int i = 0; i < ncols; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (name == NULL) return sqlite_failed(job, SQLITE_NOMEM, sqlite3_errstr(SQLITE_NOMEM));
        if (csv_put_text(w, name, strlen(name)) != WK_OK) return WK_ERR;
    }
    if (csv_end_row(w) != WK_OK) return WK_ERR;
    uint64_t n = 0;
    long until_progress = every;
    while (rc == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++)
            if (put_column(job, w, i) != WK_OK) return WK_ERR;
        if (csv_end_row(w) != WK_OK) return WK_ERR;
        n++;
        if (--until_progress == 0) {
            until_progress = every;
            progress(ud, n, csv_bytes(w));
        }
        rc = sqlite3_step(st);
    }
    *rows = n;
    if (rc != SQLITE_DONE) return db_failed(job);
    return WK_OK;
}

typedef struct {
    export_tick_fn tick;
    void *ud;
    int stopped;
} tick_state;

/* Non-zero makes SQLite interrupt the statement (SQLITE_INTERRUPT). */
static int on_sqlite_progress(void *arg) {
    tick_state *t = arg;
    if (!t->stopped && t->tick(t->ud) != 0) t->stopped = 1;
    return t->stopped;
}

/* Writes the rows into `part` and renames it to `target`. On WK_ERR the error is set. */
static int write_file(export_job *job, const config *cfg, const char *arquivo, const char *part,
                      const char *target, int rc, export_progress_fn progress, void *ud,
                      uint64_t *rows, uint64_t *bytes) {
    /* Without export_global_init (a failed start-up), one buffer per report. */
    unsigned char *own = csv_buffer ? NULL : malloc(CSV_BUFFER_BYTES);
    unsigned char *buffer = csv_buffer ? csv_buffer : own;
    if (buffer == NULL) return write_failed(job, arquivo, ENOMEM);
    csv_writer w;
    int written = csv_open(&w, part, buffer, CSV_BUFFER_BYTES) == WK_OK
                      ? write_rows(job, &w, rc, cfg->progress_every, progress, ud, rows)
                      : WK_ERR;
    int db_error = written != WK_OK && w.err == 0; /* SQLite's error, already set */
    *bytes = csv_bytes(&w);
    int closed = csv_close(&w); /* after a failed open it only reports that failure */
    free(own);
    if (db_error) return WK_ERR;
    if (closed != WK_OK) return write_failed(job, arquivo, w.err);
    if (rename(part, target) != 0) return write_failed(job, arquivo, errno);
    return WK_OK;
}

int export_stream(export_job *job, const config *cfg, const char *arquivo,
                  export_progress_fn progress, export_tick_fn tick, void *ud, uint64_t *rows,
                  uint64_t *bytes) {
    char target[4096], part[4096 + 8];
    if (snprintf(target, sizeof target, "%s/%s", cfg->export_dir, arquivo) >= (int)sizeof target)
        return write_failed(job, arquivo, ENAMETOOLONG);
    snprintf(part, sizeof part, "%s.part", target);
    tick_state t = {tick, ud, 0};
    /* The callback rate-limits itself. Removed before returning: `t` lives on this frame. */
    sqlite3_progress_handler(job->db, PROTO_SQLITE_PROGRESS_STEPS, on_sqlite_progress, &t);
    /* The first step runs the query: its errors come before any file exists. */
    int rc = sqlite3_step(job->stmt);
    int result = rc == SQLITE_ROW || rc == SQLITE_DONE
                     ? write_file(job, cfg, arquivo, part, target, rc, progress, ud, rows, bytes)
                     : db_failed(job);
    sqlite3_progress_handler(job->db, 0, NULL, NULL);
    job->interrupted = t.stopped;
    if (result != WK_OK) (void)unlink(part);
    return result;
}

void export_close(export_job *job) {
    /* sqlite3_finalize returns the last step's error, already reported; nothing to add. */
    if (job->stmt != NULL) (void)sqlite3_finalize(job->stmt);
    if (job->db != NULL && sqlite3_close(job->db) != SQLITE_OK) {
        /* Cannot happen once the statement is finalized; keep the handle rather than leak it. */
        (void)sqlite3_close_v2(job->db);
    }
    job->stmt = NULL;
    job->db = NULL;
}

/* export.c -- see export.h. */
#define _POSIX_C_SOURCE 200809L
#include "export.h"

#include <errno.h>
#include <stdarg.h>
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
    if (csv_buffer == NULL) {
        snprintf(errstr, WK_ERRSTR_LEN, "memória insuficiente para o buffer do CSV");
        return WK_ERR;
    }
    touch(csv_buffer, CSV_BUFFER_BYTES);
    int hdr = 0;
    if (sqlite3_config(SQLITE_CONFIG_SINGLETHREAD) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) != SQLITE_OK) {
        snprintf(errstr, WK_ERRSTR_LEN, "sqlite3_config falhou (SQLite já iniciado?)");
        return WK_ERR;
    }
    size_t slot = ((size_t)CACHE_PAGE_BYTES + (size_t)hdr + 7) & ~(size_t)7;
    page_cache = malloc(slot * CACHE_SLOTS);
    if (page_cache == NULL) {
        snprintf(errstr, WK_ERRSTR_LEN, "memória insuficiente para o cache do SQLite");
        return WK_ERR;
    }
    touch(page_cache, slot * CACHE_SLOTS);
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, page_cache, (int)slot, CACHE_SLOTS) != SQLITE_OK) {
        free(page_cache);
        page_cache = NULL;
        snprintf(errstr, WK_ERRSTR_LEN, "sqlite3_config(SQLITE_CONFIG_PAGECACHE) falhou");
        return WK_ERR;
    }
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK) {
        snprintf(errstr, WK_ERRSTR_LEN, "sqlite3_initialize: %s", sqlite3_errstr(rc));
        return WK_ERR;
    }
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

static int bad(export_job *job, const char *fmt, ...) WK_PRINTF(2, 3);
static int bad(export_job *job, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->errstr, sizeof job->errstr, fmt, ap);
    va_end(ap);
    return WK_ERR;
}

/* SQLite errors worth a retry (docs/protocol.md): BUSY, LOCKED, FULL, CANTOPEN, IOERR*. */
static int sqlite_transient(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL ||
           primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR;
}

/* "erro do SQLite: <message>", classified by the connection's extended error code. */
static int sqlite_error(export_job *job) {
    job->transient = sqlite_transient(sqlite3_extended_errcode(job->db));
    return bad(job, "erro do SQLite: %s", sqlite3_errmsg(job->db));
}

/* Write errors worth a retry: a full disk or quota, an I/O error. */
static int errno_transient(int err) {
    return err == ENOSPC || err == EIO || err == EDQUOT || err == EAGAIN;
}

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the whole SQL file into a NUL-terminated heap string (*out, freed by the caller). */
static int read_sql(export_job *job, const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return bad(job, "erro ao ler %s: %s", path, strerror(errno));
    char *sql = malloc(MAX_SQL_BYTES + 1);
    if (sql == NULL) {
        (void)fclose(f);
        return bad(job, "memória insuficiente para ler %s", path);
    }
    size_t n = fread(sql, 1, MAX_SQL_BYTES + 1, f);
    int read_error = ferror(f);
    if (fclose(f) != 0 || read_error) {
        free(sql);
        return bad(job, "erro ao ler %s", path);
    }
    if (n > MAX_SQL_BYTES) {
        free(sql);
        return bad(job, "%s maior que %d bytes", path, MAX_SQL_BYTES);
    }
    sql[n] = '\0';
    *out = sql;
    return WK_OK;
}

/* Skips whitespace and SQL comments; what remains after the first statement must be empty
 * (Python's sqlite3 refuses more than one statement in the same way). */
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

/* Binds the message's parameters: every statement parameter must be given, and every given
 * parameter must be in the statement (the same checks and order as the Python worker). */
static int bind_params(export_job *job, const message *m) {
    sqlite3_stmt *st = job->stmt;
    int count = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (name == NULL)
            return bad(job,
                       "erro no SQL do relatório: Binding %d has no name, but you supplied a "
                       "dictionary (which has only names).",
                       i);
        int found = 0;
        for (int k = 0; k < m->nparams && !found; k++) found = strcmp(m->params[k].name, name + 1) == 0;
        if (!found) return bad(job, "parâmetro ausente: %s", name + 1);
    }
    for (int k = 0; k < m->nparams; k++) {
        const message_param *p = &m->params[k];
        static const char prefixes[] = ":@$";
        for (const char *pre = prefixes; *pre; pre++) {
            char full[PROTO_MAX_NAME + 2];
            snprintf(full, sizeof full, "%c%s", *pre, p->name);
            int idx = sqlite3_bind_parameter_index(st, full);
            if (idx == 0) continue;
            long long as_int;
            int rc;
            if (p->kind == PARAM_NULL) rc = sqlite3_bind_null(st, idx);
            else if (p->kind == PARAM_TEXT)
                rc = sqlite3_bind_text(st, idx, p->text, (int)p->text_len, SQLITE_TRANSIENT);
            else if (message_param_is_integral(p, &as_int)) rc = sqlite3_bind_int64(st, idx, as_int);
            else rc = sqlite3_bind_double(st, idx, p->d);
            if (rc != SQLITE_OK) return sqlite_error(job);
        }
    }
    for (int k = 0; k < m->nparams; k++) {
        int known = 0;
        for (int i = 1; i <= count && !known; i++)
            known = strcmp(sqlite3_bind_parameter_name(st, i) + 1, m->params[k].name) == 0;
        if (!known) return bad(job, "parâmetro desconhecido: %s", m->params[k].name);
    }
    return WK_OK;
}

int export_prepare(export_job *job, const config *cfg, const message *m) {
    memset(job, 0, sizeof *job);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.sql", cfg->catalog_dir, m->tipo) >= (int)sizeof path)
        return bad(job, "caminho do catálogo longo demais");
    /* tipo was matched against ^[A-Z][A-Z0-9_]{0,63}$, so this path never leaves the catalog. */
    if (!is_regular_file(path)) return bad(job, "tipo de relatório desconhecido: %s", m->tipo);
    char *sql;
    if (read_sql(job, path, &sql) != WK_OK) return WK_ERR;
    if (!is_regular_file(cfg->db_path)) {
        free(sql);
        job->transient = 1; /* the database may be being generated or replaced right now */
        return bad(job, "banco de dados não encontrado: %s", cfg->db_path);
    }
    int rc = sqlite3_open_v2(cfg->db_path, &job->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        free(sql);
        if (job->db != NULL) return sqlite_error(job);
        job->transient = sqlite_transient(rc);
        return bad(job, "erro do SQLite: %s", sqlite3_errstr(rc));
    }
    if (sqlite3_busy_timeout(job->db, PROTO_SQLITE_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        free(sql);
        return sqlite_error(job);
    }
    const char *tail = NULL;
    rc = sqlite3_prepare_v2(job->db, sql, -1, &job->stmt, &tail);
    int several = rc == SQLITE_OK && tail != NULL && !only_comments(tail);
    free(sql);
    if (rc != SQLITE_OK) return sqlite_error(job);
    if (job->stmt == NULL) return bad(job, "erro no SQL do relatório: nenhuma consulta no arquivo");
    if (several)
        return bad(job, "erro no SQL do relatório: You can only execute one statement at a time.");
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
        if (p == NULL && sqlite3_errcode(job->db) == SQLITE_NOMEM)
            return bad(job, "erro do SQLite: out of memory");
        return csv_put_text(w, p, p ? (size_t)n : 0);
    }
    default: { /* SQLITE_TEXT */
        const unsigned char *p = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        if (p == NULL) return bad(job, "erro do SQLite: out of memory");
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
        if (name == NULL) return bad(job, "erro do SQLite: out of memory");
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
    if (rc != SQLITE_DONE) return sqlite_error(job);
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

int export_stream(export_job *job, const config *cfg, const char *arquivo,
                  export_progress_fn progress, export_tick_fn tick, void *ud, uint64_t *rows,
                  uint64_t *bytes) {
    char target[4096], part[4096 + 8];
    if (snprintf(target, sizeof target, "%s/%s", cfg->export_dir, arquivo) >= (int)sizeof target)
        return bad(job, "caminho de exportação longo demais");
    snprintf(part, sizeof part, "%s.part", target);
    tick_state t = {tick, ud, 0};
    /* Every 10,000 virtual-machine steps (as the Python worker); the callback rate-limits itself.
     * Removed before returning: `t` lives on this stack frame. */
    sqlite3_progress_handler(job->db, PROTO_SQLITE_PROGRESS_STEPS, on_sqlite_progress, &t);
    /* The first step runs the query: its errors come before any file exists. */
    int rc = sqlite3_step(job->stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_progress_handler(job->db, 0, NULL, NULL);
        job->interrupted = t.stopped;
        return sqlite_error(job);
    }
    /* Without export_global_init (a failed start-up), one buffer per report. */
    unsigned char *own = csv_buffer ? NULL : malloc(CSV_BUFFER_BYTES);
    unsigned char *buffer = csv_buffer ? csv_buffer : own;
    csv_writer w;
    if (buffer == NULL) {
        sqlite3_progress_handler(job->db, 0, NULL, NULL);
        return bad(job, "erro de escrita em %s.part: %s", arquivo, strerror(ENOMEM));
    }
    if (csv_open(&w, part, buffer, CSV_BUFFER_BYTES) != WK_OK) {
        free(own);
        sqlite3_progress_handler(job->db, 0, NULL, NULL);
        bad(job, "erro de escrita em %s.part: %s", arquivo, w.errstr);
        job->transient = errno_transient(w.err);
        (void)unlink(part);
        return WK_ERR;
    }
    int ok = write_rows(job, &w, rc, cfg->progress_every, progress, ud, rows) == WK_OK;
    if (!ok && w.err) {
        bad(job, "erro de escrita em %s.part: %s", arquivo, w.errstr);
        job->transient = errno_transient(w.err);
    }
    *bytes = csv_bytes(&w);
    if (csv_close(&w) != WK_OK && ok) {
        bad(job, "erro de escrita em %s.part: %s", arquivo, w.errstr);
        job->transient = errno_transient(w.err);
        ok = 0;
    }
    if (ok && rename(part, target) != 0) {
        bad(job, "erro de escrita em %s.part: %s", arquivo, strerror(errno));
        ok = 0;
    }
    free(own);
    sqlite3_progress_handler(job->db, 0, NULL, NULL);
    job->interrupted = t.stopped;
    if (!ok) {
        (void)unlink(part);
        return WK_ERR;
    }
    return WK_OK;
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

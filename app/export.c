/* export.c -- see export.h. */
#define _POSIX_C_SOURCE 200809L
#include "export.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"
#include "sink_csv.h"
#include "sink_xlsx.h"
#include "source_pg.h"
#include "source_sqlite.h"
#include "xw.h"

int export_global_init(char errstr[WK_ERRSTR_LEN]) {
    if (sink_csv_global_init(errstr) != WK_OK) return WK_ERR;
    return source_sqlite_global_init(errstr);
}

void export_global_shutdown(void) {
    xw_unload();
    sink_csv_global_shutdown();
    source_sqlite_global_shutdown();
}

/* Writing <arquivo>.part failed with `err`: no space or quota is disco_cheio, anything else
 * escrita_falhou; EIO and EAGAIN may pass, so they are retried. */
static int write_failed(report_error *e, const char *arquivo, int err) {
    (void)wk_error(e->detail, "%s.part: %s", arquivo, strerror(err));
    if (err == ENOSPC || err == EDQUOT)
        return report_fail(e, ERR_DISK_FULL, 1, "%s (errno %d)", ERR_DISK_FULL_TEXT, err);
    return report_fail(e, ERR_WRITE_FAILED, err == EIO || err == EAGAIN, "%s (errno %d)",
                       ERR_WRITE_FAILED_TEXT, err);
}

/* The value of a parameter the message left out: its default, or NULL. */
static value default_value(const catalog_param *p) {
    value v = {VALUE_NULL, 0, 0, NULL, 0};
    if (!p->has_default) return v;
    if (p->kind == KIND_INTEGER) {
        v.type = VALUE_INT;
        v.i = strtoll(p->default_text, NULL, 10); /* checked by catalog_load */
    } else {
        v.type = VALUE_TEXT;
        v.text = p->default_text;
        v.len = strlen(p->default_text);
    }
    return v;
}

static value message_value(const message_param *p) {
    value v = {VALUE_NULL, 0, 0, NULL, 0};
    long long as_int;
    if (p->kind == PARAM_TEXT) {
        v.type = VALUE_TEXT;
        v.text = p->text;
        v.len = strlen(p->text);
    } else if (p->kind == PARAM_NUMBER && message_param_is_integral(p, &as_int)) {
        v.type = VALUE_INT;
        v.i = as_int;
    } else if (p->kind == PARAM_NUMBER) {
        v.type = VALUE_REAL;
        v.d = p->number;
    }
    return v;
}

static const message_param *given(const message *m, const char *name) {
    for (int k = 0; k < m->nparams; k++)
        if (strcmp(m->params[k].name, name) == 0) return &m->params[k];
    return NULL;
}

/* 1 if `s` is a real calendar date written YYYY-MM-DD (as Python's date.fromisoformat reads it
 * for that form). */
static int is_date(const char *s) {
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
    int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[mo - 1] + (mo == 2 && leap);
}

/* Why the message's value `p` is not one the API would have accepted for an integer or date
 * parameter `c` (its kind, min and max), or NULL; text and null bind as they are. `why` holds the
 * words, the same as relatorios/worker/export.py's. */
static const char *value_problem(const catalog_param *c, const message_param *p, char *why,
                                 size_t cap) {
    long long n;
    if (p->kind == PARAM_NULL || (c->kind != KIND_INTEGER && c->kind != KIND_DATE)) return NULL;
    if (c->kind == KIND_INTEGER) {
        if (p->kind != PARAM_NUMBER || !message_param_is_integral(p, &n))
            return "deve ser um número inteiro";
        if ((c->has_min && n < c->min) || (c->has_max && n > c->max)) {
            char lo[24] = "-", hi[24] = "-";
            if (c->has_min) snprintf(lo, sizeof lo, "%lld", c->min);
            if (c->has_max) snprintf(hi, sizeof hi, "%lld", c->max);
            snprintf(why, cap, "fora do intervalo [%s, %s]", lo, hi);
            return why;
        }
        return NULL;
    }
    if (p->kind != PARAM_TEXT || !is_date(p->text)) return "deve ser uma data AAAA-MM-DD";
    return NULL;
}

/* Every declared parameter gets a value (the message's, or its default when optional), and the
 * message may not carry one the report does not declare, nor a value outside what the catalog
 * allows (kind, min, max): parametro_invalido, naming it. */
static int resolve_params(export_job *job, const message *m) {
    const catalog_report *r = &job->report;
    for (int i = 0; i < r->nparams; i++)
        if (r->params[i].required && given(m, r->params[i].name) == NULL)
            return report_fail(&job->err, ERR_INVALID_PARAMETER, 0, "parâmetro ausente: %s",
                               r->params[i].name);
    for (int k = 0; k < m->nparams; k++)
        if (catalog_param_named(r, m->params[k].name) == NULL)
            return report_fail(&job->err, ERR_INVALID_PARAMETER, 0, "parâmetro desconhecido: %s",
                               m->params[k].name);
    for (int k = 0; k < m->nparams; k++) {
        char why[96];
        const char *problem = value_problem(catalog_param_named(r, m->params[k].name),
                                            &m->params[k], why, sizeof why);
        if (problem != NULL)
            return report_fail(&job->err, ERR_INVALID_PARAMETER, 0, "parâmetro inválido: %s (%s)",
                               m->params[k].name, problem);
    }
    for (int i = 0; i < r->nparams; i++) {
        const message_param *p = given(m, r->params[i].name);
        job->params[i].name = r->params[i].name;
        job->params[i].v = p ? message_value(p) : default_value(&r->params[i]);
    }
    job->nparams = r->nparams;
    return WK_OK;
}

static int ends_with(const char *s, const char *end) {
    size_t n = strlen(s), k = strlen(end);
    return n >= k && strcmp(s + n - k, end) == 0;
}

/* Whether this worker can write m->arquivo as m->formato with m->compressao (the rule of
 * protocol.output_problem()): formato_nao_suportado when it cannot. Sets the job's output. */
static int check_output(export_job *job, const message *m) {
    const char *f = m->formato, *c = m->compressao;
    int excel = strcmp(f, PROTO_FORMAT_CSV_EXCEL) == 0, xlsx = strcmp(f, PROTO_FORMAT_XLSX) == 0;
    int gzip = strcmp(c, PROTO_COMPRESSION_GZIP) == 0;
    const char *why = NULL;
    if (!excel && !xlsx && strcmp(f, PROTO_FORMAT_CSV) != 0) why = "formato não suportado";
    else if (!gzip && strcmp(c, PROTO_COMPRESSION_NONE) != 0) why = "compressão não suportada";
    else if (xlsx && gzip) why = "o formato não aceita essa compressão";
    const char *extension = xlsx ? ".xlsx" : gzip ? ".csv.gz" : ".csv";
    if (why == NULL && !ends_with(m->arquivo, extension))
        why = "o nome do arquivo não tem a extensão do formato";
    if (why != NULL)
        return report_fail(&job->err, ERR_UNSUPPORTED_FORMAT, 0, "%s: %s (%s, %s)",
                           ERR_UNSUPPORTED_FORMAT_TEXT, why, f, c);
    job->excel = excel;
    job->xlsx = xlsx;
    job->gzip = gzip;
    return WK_OK;
}

int export_prepare(export_job *job, const config *cfg, const message *m, report_tick_fn tick,
                   void *ud) {
    memset(job, 0, sizeof *job);
    job->tick = tick;
    job->tick_ud = ud;
    int rc = catalog_load(&job->report, cfg->catalog_dir, m->tipo, cfg->source, job->err.detail);
    if (rc == CATALOG_NOT_FOUND)
        return report_fail(&job->err, ERR_UNKNOWN_TYPE, 0, "%s: %s", ERR_UNKNOWN_TYPE_TEXT,
                           m->tipo);
    if (rc == CATALOG_UNSUPPORTED)
        return report_fail(&job->err, ERR_UNKNOWN_TYPE, 0, "%s: %s (não disponível em %s)",
                           ERR_UNKNOWN_TYPE_TEXT, m->tipo, cfg->source);
    if (rc != WK_OK)
        return report_fail(&job->err, ERR_QUERY_FAILED, 0, "%s: catálogo inválido (%s)",
                           ERR_QUERY_FAILED_TEXT, m->tipo);
    if (resolve_params(job, m) != WK_OK || check_output(job, m) != WK_OK) return WK_ERR;
    if (job->xlsx) { /* libxlsxwriter is loaded now, so that a worker without it says so */
        char why[WK_ERRSTR_LEN];
        if (xw_load(why) != WK_OK) {
            (void)wk_error(job->err.detail, "%s", why);
            return report_fail(&job->err, ERR_UNSUPPORTED_FORMAT, 0, "%s: %s",
                               ERR_UNSUPPORTED_FORMAT_TEXT, "xlsx (biblioteca ausente)");
        }
    }
    if (cfg->database_url != NULL)
        return source_pg_open(&job->src, cfg->database_url, cfg->statement_timeout_s,
                              job->report.sql, job->params, job->nparams, tick, ud, &job->err);
    return source_sqlite_open(&job->src, cfg->db_path, job->report.sql, job->params, job->nparams,
                              tick, ud, &job->err);
}

#define MAX_COLUMNS SINK_MAX_COLUMNS

/* Copies every row of the source into the sink; `row` holds the first one (`first` is the
 * result of that first next()). WK_ERR with job->err set by the source, or with the sink's
 * errno in sink->err. */
static int copy_rows(export_job *job, sink *out, value *row, int first, const config *cfg,
                     export_progress_fn progress, void *ud, uint64_t *rows) {
    long every = cfg->progress_every;
    uint64_t max_rows = (uint64_t)cfg->max_task_rows, max_bytes = (uint64_t)cfg->max_task_bytes;
    source *src = job->src;
    const char *names[MAX_COLUMNS];
    column_type types[MAX_COLUMNS];
    for (int i = 0; i < src->ncols; i++) {
        if ((names[i] = src->ops->column_name(src, i)) == NULL) names[i] = "";
        types[i] = catalog_column_type(&job->report, names[i]);
    }
    if (out->ops->header(out, names, types, src->ncols) != WK_OK) return WK_ERR;
    uint64_t n = 0;
    long until_progress = every;
    int rc = first;
    for (; rc == SOURCE_ROW; rc = src->ops->next(src, row)) {
        if (out->ops->row(out, row, src->ncols) != WK_OK) return WK_ERR;
        job->rows_now = ++n;
        if (max_rows != 0 && n > max_rows)
            return report_fail(&job->err, ERR_ROW_LIMIT, 0, "%s: mais de %llu linhas",
                               ERR_ROW_LIMIT_TEXT, (unsigned long long)max_rows);
        if (max_bytes != 0 && out->ops->bytes(out) > max_bytes)
            return report_fail(&job->err, ERR_BYTE_LIMIT, 0, "%s: mais de %llu bytes",
                               ERR_BYTE_LIMIT_TEXT, (unsigned long long)max_bytes);
        if (--until_progress == 0) {
            until_progress = every;
            progress(ud, n, out->ops->bytes(out));
        }
    }
    *rows = n;
    return rc == SOURCE_DONE ? WK_OK : WK_ERR;
}

typedef struct {
    sink *out;
    int err;
    atomic_int done;
} closer;

static void *close_sink(void *arg) {
    closer *c = arg;
    c->err = c->out->ops->close(c->out);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Closes the sink; returns its close()'s result. An xlsx workbook is assembled when it closes
 * (every sheet's XML zipped), seconds for a big report, so that happens on a thread of its own
 * while this one calls the tick every 0.1 s: the heartbeat stays alive (the tick cannot stop a
 * close; a cancellation is seen when the final state is written). */
static int close_ticking(export_job *job, sink *out) {
    closer c = {out, 0, 0};
    pthread_t thread;
    if (!job->xlsx || job->tick == NULL || pthread_create(&thread, NULL, close_sink, &c) != 0)
        return out->ops->close(out);
    const struct timespec pause = {0, 100 * 1000 * 1000};
    while (!atomic_load(&c.done)) {
        (void)nanosleep(&pause, NULL);
        (void)job->tick(job->tick_ud);
    }
    (void)pthread_join(thread, NULL);
    return c.err;
}

/* The sink of the job's format. WK_ERR with the errno in *err, or with *err 0 and job->err set. */
static int open_sink(export_job *job, const config *cfg, const char *part, sink **out, int *err) {
    if (job->xlsx) {
        sink_xlsx_options opt = {cfg->neutralize_formulas, cfg->xlsx_sheet_rows, cfg->export_dir};
        int rc = sink_xlsx_open(out, part, &opt, err, job->err.detail);
        if (rc != WK_OK && *err == 0)
            (void)report_fail(&job->err, ERR_UNSUPPORTED_FORMAT, 0, "%s",
                              ERR_UNSUPPORTED_FORMAT_TEXT);
        return rc;
    }
    sink_csv_options opt = {job->excel, job->gzip, cfg->neutralize_formulas};
    return sink_csv_open(out, part, &opt, err);
}

/* Writes the rows into `part`; `row` holds the first one. WK_OK, or WK_ERR with job->err set. */
static int write_file(export_job *job, const config *cfg, const char *arquivo, const char *part,
                      value *row, int first, export_progress_fn progress, void *ud,
                      uint64_t *rows, uint64_t *bytes) {
    sink *out;
    int err = 0;
    if (open_sink(job, cfg, part, &out, &err) != WK_OK)
        return err == 0 ? WK_ERR : write_failed(&job->err, arquivo, err);
    int rc = copy_rows(job, out, row, first, cfg, progress, ud, rows);
    int source_failed = rc != WK_OK && out->err == 0;
    err = close_ticking(job, out);
    if (source_failed) return WK_ERR; /* the source's error is set */
    if (err != 0) return write_failed(&job->err, arquivo, err);
    struct stat st; /* the size of the file, whatever its format */
    if (stat(part, &st) != 0) return write_failed(&job->err, arquivo, errno);
    *bytes = (uint64_t)st.st_size;
    return WK_OK;
}

int export_stream(export_job *job, const config *cfg, const char *arquivo,
                  export_progress_fn progress, void *ud, uint64_t *rows, uint64_t *bytes) {
    char target[4096], part[4096 + 8];
    if (snprintf(target, sizeof target, "%s/%s", cfg->export_dir, arquivo) >= (int)sizeof target)
        return write_failed(&job->err, arquivo, ENAMETOOLONG);
    snprintf(part, sizeof part, "%s.part", target);
    if (job->src->ncols > MAX_COLUMNS)
        return report_fail(&job->err, ERR_QUERY_FAILED, 0, "%s: mais de %d colunas",
                           ERR_QUERY_FAILED_TEXT, MAX_COLUMNS);
    value row[MAX_COLUMNS];
    /* The first row runs the query: its errors come before any file exists. */
    int first = job->src->ops->next(job->src, row);
    if (first == WK_ERR) return WK_ERR;
    /* A leftover of an interrupted attempt (or anything planted there, a symlink included) is
     * removed, not followed: unlink(2) removes the link itself, and the .part is then created
     * with O_EXCL | O_NOFOLLOW (csv_open). */
    int rc = WK_OK;
    if (unlink(part) != 0 && errno != ENOENT) rc = write_failed(&job->err, arquivo, errno);
    if (rc == WK_OK)
        rc = write_file(job, cfg, arquivo, part, row, first, progress, ud, rows, bytes);
    if (rc == WK_OK && rename(part, target) != 0) rc = write_failed(&job->err, arquivo, errno);
    if (rc != WK_OK) (void)unlink(part);
    return rc;
}

void export_close(export_job *job) {
    if (job->src != NULL) job->src->ops->close(job->src);
    job->src = NULL;
    catalog_free(&job->report);
}

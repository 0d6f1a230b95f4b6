/* source_pg.c -- see source_pg.h. relatorios/worker/source_postgres.py is the Python twin. */
#define _POSIX_C_SOURCE 200809L
#include "source_pg.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pq.h"
#include "protocol.h"
#include "sql_params.h"

/* PostgreSQL's type oids (pg_type.h, stable since forever). */
#define OID_UNKNOWN 0
#define OID_INT8 20
#define OID_FLOAT4 700
#define OID_FLOAT8 701
/* Rows read from libpq's buffer between two looks at the clock (the tick is rate-limited). */
#define ROWS_PER_TICK 256

typedef struct {
    source base;
    PGconn *conn;
    PGresult *row;  /* the current row (single-row mode), cleared at the next one */
    sql_numbered q; /* the SQL with `$n`, and the names in that order */
    const char *values[PROTO_MAX_PARAMS];
    char numbers[PROTO_MAX_PARAMS][32]; /* the text of numeric values */
    char **names;                       /* column names, ncols of them */
    int *is_real;                       /* per column: float4 or float8 */
    int started, done, cancelled;
    unsigned rows_since_tick;
    double timeout_s;
    report_tick_fn tick;
    void *ud;
} pg_source;

/* The session every report runs in, as relatorios/postgres.py opens it. */
static PGconn *pg_connect(const char *url, double timeout_s) {
    char options[256], connect_timeout[16];
    snprintf(options, sizeof options,
             "-c default_transaction_read_only=on -c DateStyle=ISO,YMD -c TimeZone=UTC"
             " -c IntervalStyle=postgres -c statement_timeout=%lld",
             (long long)llround(timeout_s * 1000));
    snprintf(connect_timeout, sizeof connect_timeout, "%d", PROTO_PG_CONNECT_TIMEOUT_S);
    /* Entries before dbname (the URL) are defaults the URL may override; those after it
     * override the URL. GSSAPI encryption is off unless the URL asks for it: probing for
     * Kerberos credentials costs every connection a round trip and leaves libkrb5 allocations
     * for the life of the process. */
    const char *keys[] = {"gssencmode", "dbname", "options", "client_encoding",
                          "application_name", "connect_timeout", NULL};
    const char *values[] = {"disable", url, options, "UTF8", "relatorios", connect_timeout, NULL};
    return pq.PQconnectdbParams(keys, values, 1);
}

/* libpq's last error, first line only (for the log). */
static void first_line(char *dst, size_t n, const char *text) {
    size_t len = strcspn(text ? text : "", "\n");
    snprintf(dst, n, "%.*s", (int)len, text ? text : "");
}

static int refused(const PGconn *conn) {
    return pq.PQconnectionNeedsPassword(conn) || pq.PQconnectionUsedPassword(conn);
}

static const char *connection_problem(const PGconn *conn) {
    return refused(conn) ? "DATABASE_URL: o PostgreSQL recusou o usuário ou a senha (confira "
                           "DATABASE_URL)"
                         : "DATABASE_URL: não foi possível conectar ao PostgreSQL";
}

static int starts(const char *state, const char *prefix) {
    return strncmp(state, prefix, strlen(prefix)) == 0;
}

/* What a failed result means for the task (docs/protocol.md, "Error codes"): the server gone,
 * restarting, out of connections or memory, or a deadlock or serialization victim is
 * banco_indisponivel (retried); 57014 is statement_timeout (our own cancel sets
 * err->interrupted, which the caller checks first); 42501 is permissao_negada; the rest is
 * the report's query failing, for good. */
static int pg_failed(pg_source *s, const PGresult *res) {
    report_error *e = s->base.err;
    const char *state = res ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *said = res ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[WK_ERRSTR_LEN];
    first_line(line, sizeof line, said ? said : pq.PQerrorMessage(s->conn));
    (void)wk_error(e->detail, "PostgreSQL: %s %s", state ? state : "", line);
    if (state == NULL || state[0] == '\0') {
        if (pq.PQstatus(s->conn) == CONNECTION_BAD)
            return report_fail(e, ERR_DATABASE_UNAVAILABLE, 1, "%s (conexão perdida)",
                               ERR_DATABASE_UNAVAILABLE_TEXT);
        return report_fail(e, ERR_QUERY_FAILED, 0, "%s", ERR_QUERY_FAILED_TEXT);
    }
    if (strcmp(state, "57014") == 0)
        return report_fail(e, ERR_QUERY_TIMEOUT, 0, "%s: %g s", ERR_QUERY_TIMEOUT_TEXT,
                           s->timeout_s);
    if (strcmp(state, "42501") == 0)
        return report_fail(e, ERR_PERMISSION_DENIED, 0, "%s", ERR_PERMISSION_DENIED_TEXT);
    if (strcmp(state, "25006") == 0)
        return report_fail(e, ERR_QUERY_FAILED, 0, "%s: o relatório tentou escrever no banco",
                           ERR_QUERY_FAILED_TEXT);
    if (starts(state, "08") || starts(state, "53") || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return report_fail(e, ERR_DATABASE_UNAVAILABLE, 1, "%s (SQLSTATE %s)",
                           ERR_DATABASE_UNAVAILABLE_TEXT, state);
    return report_fail(e, ERR_QUERY_FAILED, 0, "%s (SQLSTATE %s)", ERR_QUERY_FAILED_TEXT, state);
}

/* Calls the tick unless the query is already being cancelled; cancels it when asked to stop. */
static void tick_now(pg_source *s) {
    if (s->cancelled || s->tick(s->ud) == 0) return;
    s->base.err->interrupted = 1;
    s->cancelled = 1;
    PGcancel *cancel = pq.PQgetCancel(s->conn);
    char why[256];
    /* If the request cannot be sent, the query runs to its end and is then discarded. */
    if (cancel != NULL) (void)pq.PQcancel(cancel, why, (int)sizeof why);
    pq.PQfreeCancel(cancel);
}

/* The next result of the query in flight, or NULL at its end, waiting in slices of
 * PROTO_PG_POLL_S so that the tick runs while the server works. */
static PGresult *next_result(pg_source *s) {
    /* Without a socket there is nothing to wait for: PQgetResult says what went wrong. */
    while (pq.PQisBusy(s->conn) && pq.PQsocket(s->conn) >= 0) {
        struct pollfd pfd = {pq.PQsocket(s->conn), POLLIN, 0};
        int rc = poll(&pfd, 1, (int)(PROTO_PG_POLL_S * 1000));
        if (rc < 0 && errno != EINTR) break;           /* PQgetResult reports the error */
        if (rc > 0 && !pq.PQconsumeInput(s->conn)) break; /* the connection is gone: same */
        tick_now(s);
    }
    return pq.PQgetResult(s->conn);
}

/* Reads results up to the end of the current command (there is nothing more to know). */
static void drain(pg_source *s) {
    PGresult *res;
    while ((res = next_result(s)) != NULL) pq.PQclear(res);
}

/* One step of the extended protocol that answers `expected`; WK_ERR with err set otherwise. */
static int finish_step(pg_source *s, ExecStatusType expected, PGresult **keep) {
    PGresult *res = next_result(s);
    int rc = pq.PQresultStatus(res) == expected ? WK_OK : pg_failed(s, res);
    if (rc == WK_OK && keep != NULL) *keep = res;
    else pq.PQclear(res);
    drain(s);
    return rc;
}

/* Binds each `$n` to the value of its name; the names must be exactly the declared ones. */
static int bind_values(pg_source *s, const source_param *params, int nparams, Oid *types) {
    if (s->q.count != nparams)
        return report_fail(s->base.err, ERR_QUERY_FAILED, 0,
                           "%s: parâmetros do SQL e do catálogo diferem", ERR_QUERY_FAILED_TEXT);
    for (int i = 0; i < s->q.count; i++) {
        const source_param *p = NULL;
        for (int k = 0; k < nparams && p == NULL; k++)
            if (strcmp(params[k].name, s->q.names[i]) == 0) p = &params[k];
        if (p == NULL)
            return report_fail(s->base.err, ERR_QUERY_FAILED, 0,
                               "%s: parâmetros do SQL e do catálogo diferem",
                               ERR_QUERY_FAILED_TEXT);
        types[i] = OID_UNKNOWN;
        s->values[i] = NULL;
        if (p->v.type == VALUE_INT) {
            types[i] = OID_INT8;
            snprintf(s->numbers[i], sizeof s->numbers[i], "%lld", p->v.i);
            s->values[i] = s->numbers[i];
        } else if (p->v.type == VALUE_REAL) {
            types[i] = OID_FLOAT8;
            snprintf(s->numbers[i], sizeof s->numbers[i], "%.17g", p->v.d); /* exact */
            s->values[i] = s->numbers[i];
        } else if (p->v.type == VALUE_TEXT) {
            s->values[i] = p->v.text; /* NUL-terminated (source.h) */
        }
    }
    return WK_OK;
}

/* The columns of the prepared statement: their names and which are float4 or float8. */
static int read_columns(pg_source *s, const PGresult *desc) {
    int n = pq.PQnfields(desc);
    s->names = calloc((size_t)n + 1, sizeof *s->names);
    s->is_real = calloc((size_t)n + 1, sizeof *s->is_real);
    if (s->names == NULL || s->is_real == NULL)
        return report_fail(s->base.err, ERR_DATABASE_UNAVAILABLE, 1, "%s: memória insuficiente",
                           ERR_DATABASE_UNAVAILABLE_TEXT);
    for (int i = 0; i < n; i++) {
        if ((s->names[i] = strdup(pq.PQfname(desc, i))) == NULL)
            return report_fail(s->base.err, ERR_DATABASE_UNAVAILABLE, 1,
                               "%s: memória insuficiente", ERR_DATABASE_UNAVAILABLE_TEXT);
        s->is_real[i] = pq.PQftype(desc, i) == OID_FLOAT4 || pq.PQftype(desc, i) == OID_FLOAT8;
    }
    s->base.ncols = n;
    return WK_OK;
}

static int pg_next(source *base, value *row) {
    pg_source *s = (pg_source *)base;
    if (s->done) return SOURCE_DONE;
    if (!s->started) {
        s->started = 1;
        if (!pq.PQsendQueryPrepared(s->conn, "", s->q.count, s->values, NULL, NULL, 0) ||
            !pq.PQsetSingleRowMode(s->conn))
            return pg_failed(s, NULL);
    }
    pq.PQclear(s->row);
    s->row = NULL;
    if (++s->rows_since_tick == ROWS_PER_TICK) {
        s->rows_since_tick = 0;
        tick_now(s);
    }
    PGresult *res = next_result(s);
    ExecStatusType status = pq.PQresultStatus(res);
    if (status == PGRES_TUPLES_OK) { /* the end: zero rows, the command's completion */
        pq.PQclear(res);
        drain(s);
        s->done = 1;
        return SOURCE_DONE;
    }
    if (status != PGRES_SINGLE_TUPLE) {
        int rc = pg_failed(s, res);
        pq.PQclear(res);
        drain(s);
        return rc;
    }
    s->row = res;
    for (int i = 0; i < base->ncols; i++) {
        value *v = &row[i];
        if (pq.PQgetisnull(res, 0, i)) {
            v->type = VALUE_NULL;
        } else if (s->is_real[i]) {
            v->type = VALUE_REAL;
            v->d = strtod(pq.PQgetvalue(res, 0, i), NULL); /* PostgreSQL's shortest exact text */
        } else {
            v->type = VALUE_TEXT;
            v->text = pq.PQgetvalue(res, 0, i);
            v->len = (size_t)pq.PQgetlength(res, 0, i);
        }
    }
    return SOURCE_ROW;
}

static const char *pg_column_name(source *base, int i) { return ((pg_source *)base)->names[i]; }

static void pg_close(source *base) {
    pg_source *s = (pg_source *)base;
    pq.PQclear(s->row);
    pq.PQfinish(s->conn); /* a query still running stops when the server sees the socket close */
    for (int i = 0; s->names != NULL && s->names[i] != NULL; i++) free(s->names[i]);
    free(s->names);
    free(s->is_real);
    sql_numbered_free(&s->q);
    free(s);
}

static const source_ops pg_ops = {pg_next, pg_column_name, pg_close};

int source_pg_open(source **out, const char *url, double timeout_s, const char *sql,
                   const source_param *params, int nparams, report_tick_fn tick, void *ud,
                   report_error *err) {
    pg_source *s = calloc(1, sizeof *s);
    *out = (source *)s;
    if (s == NULL)
        return report_fail(err, ERR_DATABASE_UNAVAILABLE, 1, "%s: memória insuficiente",
                           ERR_DATABASE_UNAVAILABLE_TEXT);
    s->base = (source){&pg_ops, 0, err};
    s->tick = tick;
    s->ud = ud;
    s->timeout_s = timeout_s;
    if (sql_to_numbered(sql, &s->q, err->detail) != WK_OK)
        return report_fail(err, ERR_QUERY_FAILED, 0, "%s", ERR_QUERY_FAILED_TEXT);
    Oid types[PROTO_MAX_PARAMS];
    if (bind_values(s, params, nparams, types) != WK_OK) return WK_ERR;
    s->conn = pg_connect(url, timeout_s);
    if (pq.PQstatus(s->conn) != CONNECTION_OK) {
        char line[WK_ERRSTR_LEN];
        first_line(line, sizeof line, pq.PQerrorMessage(s->conn));
        (void)wk_error(err->detail, "PostgreSQL: %s", line);
        /* Transient: the server may be restarting; refused credentials stop the worker at
         * start-up (source_pg_ping), so here they mean a change made since. */
        return report_fail(err, ERR_DATABASE_UNAVAILABLE, 1, "%s (%s)",
                           ERR_DATABASE_UNAVAILABLE_TEXT, connection_problem(s->conn));
    }
    PGresult *desc = NULL;
    if (!pq.PQsendPrepare(s->conn, "", s->q.sql, s->q.count, types)) return pg_failed(s, NULL);
    if (finish_step(s, PGRES_COMMAND_OK, NULL) != WK_OK) return WK_ERR;
    if (!pq.PQsendDescribePrepared(s->conn, "")) return pg_failed(s, NULL);
    if (finish_step(s, PGRES_COMMAND_OK, &desc) != WK_OK) return WK_ERR;
    int rc = read_columns(s, desc);
    pq.PQclear(desc);
    return rc;
}

int source_pg_ping(const char *url, char errstr[WK_ERRSTR_LEN]) {
    PGconn *conn = pg_connect(url, 0);
    char line[WK_ERRSTR_LEN];
    int rc = SOURCE_PG_READY;
    if (pq.PQstatus(conn) != CONNECTION_OK) {
        first_line(line, sizeof line, pq.PQerrorMessage(conn));
        rc = refused(conn) ? SOURCE_PG_REFUSED : SOURCE_PG_DOWN;
        (void)wk_error(errstr, "%s: %s", connection_problem(conn), line);
    } else {
        PGresult *res = pq.PQexec(conn, "SELECT 1");
        if (pq.PQresultStatus(res) != PGRES_TUPLES_OK) {
            first_line(line, sizeof line, pq.PQerrorMessage(conn));
            rc = SOURCE_PG_DOWN;
            (void)wk_error(errstr, "DATABASE_URL: o PostgreSQL não respondeu: %s", line);
        }
        pq.PQclear(res);
    }
    pq.PQfinish(conn);
    return rc;
}

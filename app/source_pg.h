/* source_pg.h -- rows from PostgreSQL (DATABASE_URL) with libpq, in a read-only session, one row
 * at a time (single-row mode), so memory does not grow with the report.
 *
 * The catalog's `:name`s become `$n` (sql_params.h) and the values are bound, never formatted
 * into the SQL: integers as int8, reals as float8, text and NULL as `unknown` (the server infers
 * their type), as the Python worker binds them. Every value is read in PostgreSQL's text format;
 * float4 and float8 columns become VALUE_REAL (the protocol's REAL rule), the rest VALUE_TEXT.
 * While the server works, `tick` is called at least every PROTO_PG_POLL_S; when it answers
 * non-zero the query is cancelled on the server (PQcancel) and err->interrupted is set. */
#ifndef RELATORIOS_SOURCE_PG_H
#define RELATORIOS_SOURCE_PG_H

#include "source.h"

/* Connects to `url` (statement_timeout `timeout_s`, 0 for none), prepares `sql` with `params`
 * (each name of the SQL must be among them, and each of them in the SQL) and reads the columns.
 * Returns WK_OK or WK_ERR with `err` set (*out may still hold a source to close). */
int source_pg_open(source **out, const char *url, double timeout_s, const char *sql,
                   const source_param *params, int nparams, report_tick_fn tick, void *ud,
                   report_error *err);

#define SOURCE_PG_READY 0
#define SOURCE_PG_REFUSED 1 /* the server refused the credentials: fix DATABASE_URL */
#define SOURCE_PG_DOWN 2    /* the server could not be reached or did not answer: try later */

/* Start-up check: connects to `url` and runs SELECT 1. Returns one of SOURCE_PG_*, with the
 * reason in errstr (it names DATABASE_URL, never its value) unless SOURCE_PG_READY. */
int source_pg_ping(const char *url, char errstr[WK_ERRSTR_LEN]);

#endif

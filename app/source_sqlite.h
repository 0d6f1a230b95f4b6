/* source_sqlite.h -- rows from the SQLite database DB_PATH, opened read-only (SQLITE_OPEN_READONLY),
 * stepped one row at a time (sqlite3_step), so memory does not grow with the report. */
#ifndef RELATORIOS_SOURCE_SQLITE_H
#define RELATORIOS_SOURCE_SQLITE_H

#include "source.h"

/* Configures SQLite for this process, before any other SQLite call: single-threaded, no memory
 * statistics, and a page cache in one pre-allocated, pre-touched block, so that the worker's
 * memory is the same for a report of ten rows or ten million. Returns WK_OK, or WK_ERR with the
 * reason in `errstr`; the worker still works then, with SQLite's defaults. */
int source_sqlite_global_init(char errstr[WK_ERRSTR_LEN]);
void source_sqlite_global_shutdown(void);

/* Opens `db_path` read-only, prepares `sql` (one statement) and binds `params` by name (every
 * named parameter of the statement must be among them). `tick` is called every
 * PROTO_SQLITE_PROGRESS_STEPS virtual-machine steps; non-zero interrupts the query. Returns a
 * source, or NULL with `err` set (a source may still have been allocated: *out, to close). */
int source_sqlite_open(source **out, const char *db_path, const char *sql,
                       const source_param *params, int nparams, report_tick_fn tick, void *ud,
                       report_error *err);

#endif

/* export.h -- one report: the catalog's SQL, run read-only on SQLite, streamed row by row into
 * EXPORT_DIR/<arquivo>.part and renamed into place when complete (docs/protocol.md, steps 4-7).
 *
 * export_prepare() does everything that can fail before a row is read (catalog file, database,
 * SQL, parameters); export_stream() writes the file. The caller logs between the two, as the
 * protocol's log lines require.
 *
 * A failure sets the task's `erro_codigo` (an ERR_* of protocol.h), its `erro` (Portuguese,
 * without a library's words) and whether it is worth another attempt (docs/protocol.md, "Error
 * codes"); what SQLite or the system said goes to `detail`, for the log only. */
#ifndef RELATORIOS_EXPORT_H
#define RELATORIOS_EXPORT_H

#include <sqlite3.h>
#include <stdint.h>

#include "config.h"
#include "message.h"
#include "wk.h"

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *stmt;
    const char *code; /* on WK_ERR: the task's erro_codigo (ERR_*) */
    int transient;    /* on WK_ERR: worth another attempt (locked database, full disk, I/O) */
    int interrupted;  /* on WK_ERR: the tick callback asked to stop */
    char errstr[WK_ERRSTR_LEN]; /* on WK_ERR: the task's erro */
    char detail[WK_ERRSTR_LEN]; /* on WK_ERR: the library's message, or "" (for the log) */
} export_job;

/* Configures SQLite for this process, before any other SQLite call: single-threaded, no memory
 * statistics, and a page cache in one pre-allocated, pre-touched block; allocates the CSV buffer
 * the same way. The worker's memory is then the same for a report of ten rows or ten million. Returns WK_OK, or WK_ERR with
 * the reason in `errstr` (WK_ERRSTR_LEN bytes); the worker still works then, with SQLite's
 * defaults. Call export_global_shutdown() at exit to release the block. */
int export_global_init(char *errstr);
void export_global_shutdown(void);

/* Called every `progress_every` rows with the rows and bytes written so far; its return value is
 * ignored (progress is best effort). */
typedef void (*export_progress_fn)(void *ud, uint64_t rows, uint64_t bytes);

/* Called now and then while SQLite works, even inside one long step (a big sort before the first
 * row): lets the caller keep its heartbeat alive and stop the query (cancellation, shutdown) by
 * returning non-zero. Must be cheap when there is nothing to do. */
typedef int (*export_tick_fn)(void *ud);

/* Reads CATALOG_DIR/<tipo>.sql, opens DB_PATH read-only, prepares the statement and binds the
 * message's parameters by name. Returns WK_OK with job->db and job->stmt ready, or WK_ERR with
 * the error set (above); in both cases export_close() must be called. */
int export_prepare(export_job *job, const config *cfg, const message *m);

/* Steps through the rows and writes the CSV; on success renames <arquivo>.part to <arquivo> and
 * sets *rows and *bytes. On any error returns WK_ERR with the error and job->interrupted set, and
 * the .part file has been removed. */
int export_stream(export_job *job, const config *cfg, const char *arquivo,
                  export_progress_fn progress, export_tick_fn tick, void *ud, uint64_t *rows,
                  uint64_t *bytes);

/* Finalizes the statement and closes the database; safe on a job in any state. */
void export_close(export_job *job);

#endif

/* export.h -- one report, from the catalog to EXPORT_DIR/<arquivo> (docs/protocol.md, steps 5-7):
 * the catalog's SQL (catalog.h) run by a source (source.h) whose rows a sink (sink.h) writes into
 * <arquivo>.part, renamed into place when complete.
 *
 * export_prepare() does everything that can fail before a row is read (catalog file, parameters,
 * database, SQL); export_stream() writes the file. The caller logs between the two, as the
 * protocol's log lines require. A failure fills job->err (report.h). */
#ifndef RELATORIOS_EXPORT_H
#define RELATORIOS_EXPORT_H

#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "message.h"
#include "report.h"
#include "source.h"

typedef struct {
    catalog_report report;
    source_param params[PROTO_MAX_PARAMS];
    int nparams;
    source *src;
    int excel, xlsx, gzip; /* the message's output, checked by export_prepare() */
    report_tick_fn tick;   /* export_prepare()'s tick, also called while a workbook closes */
    void *tick_ud;
    report_error err;
    uint64_t rows_now; /* rows written so far, for the stall clock of the tick callback */
} export_job;

/* The process-wide buffers of the sources and sinks, allocated once (constant memory). Returns
 * WK_OK, or WK_ERR with the reason in `errstr`; the worker still works then. Call
 * export_global_shutdown() at exit. */
int export_global_init(char errstr[WK_ERRSTR_LEN]);
void export_global_shutdown(void);

/* Called every `progress_every` rows with the rows and bytes written so far (best effort). */
typedef void (*export_progress_fn)(void *ud, uint64_t rows, uint64_t bytes);

/* Reads CATALOG_DIR/<tipo>.sql, resolves the message's parameters against the report's declared
 * ones (a missing optional one takes its default), opens the database read-only and prepares the
 * query. `tick` (with `ud`) is called while the database works. Returns WK_OK or WK_ERR (job->err
 * set); in both cases export_close() must be called. */
int export_prepare(export_job *job, const config *cfg, const message *m, report_tick_fn tick,
                   void *ud);

/* Reads the rows and writes the file; on success renames <arquivo>.part to <arquivo> and sets
 * *rows and *bytes. On any error returns WK_ERR with job->err set, and the .part file has been
 * removed. */
int export_stream(export_job *job, const config *cfg, const char *arquivo,
                  export_progress_fn progress, void *ud, uint64_t *rows, uint64_t *bytes);

/* Releases the source and the catalog report; safe on a job in any state. */
void export_close(export_job *job);

#endif

/* sink.h -- where a report's rows go: a file of one format, written as `<arquivo>.part` (the
 * caller renames it when complete).
 *
 * header() once with the column names and their catalog types, row() per row, then close(), which must be called in
 * every case: it flushes, closes, frees the sink and returns 0 or the errno of the first failure.
 * A write error is remembered: later calls return WK_ERR and `err` holds its errno. */
#ifndef RELATORIOS_SINK_H
#define RELATORIOS_SINK_H

#include <stdint.h>

#include "catalog.h"
#include "report.h"

/* The most columns a report may have (export.c refuses more before opening a sink). */
#define SINK_MAX_COLUMNS 1024

typedef struct sink sink;

typedef struct {
    int (*header)(sink *k, const char *const *names, const column_type *types, int n);
    int (*row)(sink *k, const value *row, int n);
    uint64_t (*bytes)(const sink *k); /* bytes of the file so far, as far as known */
    int (*close)(sink *k); /* 0, or the errno of the first failure; frees k */
} sink_ops;

struct sink {
    const sink_ops *ops;
    int err; /* errno of the first failure, 0 while healthy */
};

#endif

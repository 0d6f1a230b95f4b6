/* source.h -- where a report's rows come from: one query of the catalog, run read-only, whose
 * rows are read one at a time (constant memory whatever their number).
 *
 * A source is opened by its implementation (source_sqlite.h), which prepares the query and binds
 * its parameters; then next() is called until it answers SOURCE_DONE. A failure fills the
 * report_error given at open time. close() releases everything, in any state. */
#ifndef RELATORIOS_SOURCE_H
#define RELATORIOS_SOURCE_H

#include "report.h"

#define SOURCE_ROW 1
#define SOURCE_DONE 0

/* A parameter of the query, resolved from the message and the catalog (export.c). */
typedef struct {
    const char *name;
    value v; /* VALUE_NULL, VALUE_INT, VALUE_REAL or VALUE_TEXT (NUL-terminated) */
} source_param;

typedef struct source source;

typedef struct {
    /* Runs the query on the first call and steps to the next row: fills row[0..ncols) and
     * returns SOURCE_ROW, or returns SOURCE_DONE at the end, or WK_ERR (error set). */
    int (*next)(source *s, value *row);
    /* The name of column i (0 <= i < ncols), valid until close(); NULL when out of memory. */
    const char *(*column_name)(source *s, int i);
    void (*close)(source *s);
} source_ops;

struct source {
    const source_ops *ops;
    int ncols;
    report_error *err;
};

#endif

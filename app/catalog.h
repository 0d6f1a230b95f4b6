/* catalog.h -- one report of the catalog folder (docs/catalog.md): its SQL and what its header
 * lines declare, read as relatorios/catalog.py reads them.
 *
 * A report file opens with `-- @key value` comment lines; the database ignores them, the API
 * and both workers read them:
 *
 *     -- @param limite integer default=100 min=1 max=5000 "Quantos funcionários listar"
 *
 * catalog_load() reads CATALOG_DIR/<type>.sql whole (at most CATALOG_MAX_SQL bytes) and parses
 * its @param, @column and @sources lines. The SQL a source runs is CATALOG_DIR/<source>/<type>.sql when
 * that file exists, else the SQL of <type>.sql; a report supports the sources its @sources line
 * names, or, with no such line, sqlite and every source with a file of its own (docs/catalog.md,
 * "Sources and dialects"). The report owns its SQL text: free it with catalog_free(). */
#ifndef RELATORIOS_CATALOG_H
#define RELATORIOS_CATALOG_H

#include "protocol.h"
#include "wk.h"

#define CATALOG_MAX_SQL (1 << 20)
#define CATALOG_MAX_DEFAULT 256

typedef enum { KIND_TEXT, KIND_INTEGER, KIND_DATE, KIND_DEPARTMENT } catalog_kind;

typedef struct {
    char name[PROTO_MAX_NAME + 1];
    catalog_kind kind;
    int required;    /* no default and not `optional`: the message must carry it */
    int has_default; /* `default=` given (else an optional parameter defaults to NULL) */
    char default_text[CATALOG_MAX_DEFAULT];
    int has_min, has_max;
    long long min, max;
} catalog_param;

/* The type of a result column (`-- @column name type`): how csv_excel and xlsx write it. */
typedef enum { COLUMN_UNTYPED, COLUMN_TEXT, COLUMN_INTEGER, COLUMN_DECIMAL, COLUMN_DATE } column_type;

#define CATALOG_MAX_COLUMNS 64
#define CATALOG_MAX_COLUMN_NAME 128

typedef struct {
    char name[CATALOG_MAX_COLUMN_NAME];
    column_type type;
} catalog_column;

typedef struct {
    char *sql; /* the SQL of the requested source (a whole file), NUL-terminated */
    int nparams;
    catalog_param params[PROTO_MAX_PARAMS];
    int has_timeout; /* an @timeout line: its stall limit instead of TIMEOUT_TAREFA_S */
    long timeout_s;
    int ncolumns;
    catalog_column columns[CATALOG_MAX_COLUMNS];
} catalog_report;

#define CATALOG_NOT_FOUND 1   /* catalog_load(): no such report file */
#define CATALOG_UNSUPPORTED 2 /* catalog_load(): the report does not support that source */

/* Reads <dir>/<type>.sql and the SQL of `source` (PROTO_SOURCE_*); `type` must already match
 * PROTO_REPORT_TYPE_PATTERN and `source` is one of ours, so the paths never leave `dir`.
 * Returns WK_OK, CATALOG_NOT_FOUND, CATALOG_UNSUPPORTED, or WK_ERR with the reason in errstr
 * (an unreadable file or a malformed header line: a deployment bug). On anything but WK_OK, `r`
 * holds nothing to free. */
int catalog_load(catalog_report *r, const char *dir, const char *type, const char *source,
                 char errstr[WK_ERRSTR_LEN]);

/* The @column type of the result column `name` (COLUMN_UNTYPED when no line names it). */
column_type catalog_column_type(const catalog_report *r, const char *name);

/* The declared parameter named `name`, or NULL. */
const catalog_param *catalog_param_named(const catalog_report *r, const char *name);

void catalog_free(catalog_report *r);

#endif

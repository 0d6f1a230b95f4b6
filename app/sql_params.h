/* sql_params.h -- the named parameters of a catalog SQL (`:name`), found as
 * relatorios/sql_params.py finds them, and rewritten as PostgreSQL's `$n`.
 *
 * Outside string literals ('…' with '', E'…' with backslash escapes, $tag$…$tag$), quoted
 * identifiers ("…"), -- and (nested) block comments, `::` being a cast and a positional `$1`
 * refused (it would collide with ours): a `:` followed by a
 * letter starts a parameter whose name is the longest run of letters, digits and `_` after it,
 * and must match PROTO_PARAM_NAME_PATTERN. Each distinct name becomes the `$n` of its first
 * appearance, so the values are bound in the order of `names`. The values never enter the SQL. */
#ifndef RELATORIOS_SQL_PARAMS_H
#define RELATORIOS_SQL_PARAMS_H

#include "protocol.h"
#include "wk.h"

typedef struct {
    char *sql; /* the rewritten SQL (malloc'd, NUL-terminated) */
    int count; /* distinct parameters */
    char names[PROTO_MAX_PARAMS][PROTO_MAX_NAME + 1];
} sql_numbered;

/* Rewrites `sql` into `out` (free out->sql with sql_numbered_free). Returns WK_OK, or WK_ERR
 * with the reason in errstr (a bad name, a literal or comment left open, more than
 * PROTO_MAX_PARAMS names, no memory); out->sql is then NULL. */
int sql_to_numbered(const char *sql, sql_numbered *out, char errstr[WK_ERRSTR_LEN]);

void sql_numbered_free(sql_numbered *n);

#endif

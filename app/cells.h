/* cells.h -- how csv_excel and xlsx read a value (docs/protocol.md, "Formats"): a number, a date
 * or text, by the value's own type and its column's catalog type (`-- @column`), and text
 * neutralised against formulas. relatorios/worker/cells.py applies the same rules. */
#ifndef RELATORIOS_CELLS_H
#define RELATORIOS_CELLS_H

#include <stddef.h>

#include "catalog.h"

/* Integers of this magnitude or more lose digits as a spreadsheet number: they stay text. */
#define CELLS_EXACT_INTEGER 9007199254740992LL /* 2^53 */

/* 1 if text[0..len) of a `decimal` (or `integer`) column reads as a number:
 * PROTO_DECIMAL_TEXT_PATTERN (PROTO_INTEGER_TEXT_PATTERN), checked without regcomp. */
int cells_number_text(const char *text, size_t len, column_type type);

/* 1 if text[0..len) of a `date` column is a real YYYY-MM-DD date from 1900 on; sets the parts. */
int cells_date(const char *text, size_t len, column_type type, int *year, int *month, int *day);

/* 1 if the text begins with one of PROTO_FORMULA_START_CHARS (= + - @ tab CR). */
int cells_formula_like(const char *text, size_t len);

/* Text as an xlsx cell holds it, in a new NUL-terminated buffer (free() it): invalid UTF-8 and
 * NUL as U+FFFD (utf8_clean), cut at PROTO_XLSX_MAX_TEXT_UNITS UTF-16 units, never inside a
 * character. NULL when out of memory. */
char *cells_xlsx_text(const char *text, size_t len);

#endif

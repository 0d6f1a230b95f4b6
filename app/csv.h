/* csv.h -- the CSV format of docs/protocol.md ("CSV format"), the same bytes whichever worker
 * writes them, through one large buffer onto a file descriptor.
 *
 * Usage: csv_open(); for each row { csv_put_*() per field; csv_end_row(); } csv_close().
 * Every function returns WK_OK or WK_ERR; after the first error the writer stays failed, `err`
 * holds the errno, and later calls do nothing but return WK_ERR. */
#ifndef RELATORIOS_CSV_H
#define RELATORIOS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "wk.h"

#define CSV_BUFFER_BYTES (1u << 20) /* the size callers should give csv_open() */
#define CSV_REAL_LEN 32              /* room for csv_format_real(): "-2.2250738585072014e-308" */

typedef struct csv_writer {
    int fd;
    unsigned char *buf; /* the caller's buffer */
    size_t cap;         /* its size */
    size_t len;         /* bytes waiting in buf */
    uint64_t total;     /* bytes accepted so far (written or buffered) */
    uint64_t row_start; /* `total` when the current row began */
    int row_fields;
    int err; /* errno of the first failure, 0 while healthy */
} csv_writer;

/* Creates (or truncates) `path` with mode 0644 and prepares `w` to write through `buf` (`cap`
 * bytes, owned by the caller, which keeps it for the writer's life: one buffer allocated once
 * keeps the process's memory the same from one report to the next). On WK_ERR nothing is left
 * open. */
int csv_open(csv_writer *w, const char *path, unsigned char *buf, size_t cap);

/* Fields of the current row. Text is copied byte for byte, quoted when it holds , " CR or LF. */
int csv_put_text(csv_writer *w, const void *bytes, size_t len);
int csv_put_int(csv_writer *w, long long v);
int csv_put_real(csv_writer *w, double v); /* as csv_format_real() */
int csv_put_null(csv_writer *w);           /* an empty field */

/* Writes a REAL as the protocol does into `out` (CSV_REAL_LEN bytes) and returns its length:
 * printf("%.15g"), or "%.17g" when the 15-digit text does not read back to the same double
 * ("0.1", "1", "1e+16", "0.30000000000000004", "-0", "inf"). */
size_t csv_format_real(double v, char *out);

/* Ends the row with CRLF; a row of one empty field is written as "", not as an empty line. */
int csv_end_row(csv_writer *w);

/* Bytes of CSV produced so far: what the file will hold once flushed. */
static inline uint64_t csv_bytes(const csv_writer *w) { return w->total; }

/* Flushes the buffer and closes the file, checking both; safe to call on a failed writer (then
 * it only closes and returns WK_ERR). */
int csv_close(csv_writer *w);

#endif

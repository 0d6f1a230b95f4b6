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

struct z_stream_s;

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
    unsigned char delim;         /* ',' (csv_open), or ';' (csv_set_delimiter) */
    struct z_stream_s *z;        /* gzip stream after csv_start_gzip(), else NULL */
    unsigned char *zout;         /* its output buffer (CSV_ZOUT_BYTES) */
    uint64_t file_bytes;         /* bytes written to the file so far (compressed ones with gzip) */
} csv_writer;

#define CSV_ZOUT_BYTES (1u << 18)

/* Creates (or truncates) `path` with mode 0644 and prepares `w` to write through `buf` (`cap`
 * bytes, owned by the caller, which keeps it for the writer's life: one buffer allocated once
 * keeps the process's memory the same from one report to the next). On WK_ERR nothing is left
 * open. */
int csv_open(csv_writer *w, const char *path, unsigned char *buf, size_t cap);

/* Separates fields with `delim` instead of ',' (csv_excel's ';'); before the first field. */
void csv_set_delimiter(csv_writer *w, unsigned char delim);

/* From now on the bytes go through gzip (zlib, `level`, no name, mtime 0) before the file; call
 * right after csv_open(). csv_close() writes the gzip trailer. WK_ERR (ENOMEM) leaves the writer
 * failed. */
int csv_start_gzip(csv_writer *w, int level);

/* Fields of the current row. Text is copied byte for byte, quoted when it holds , " CR or LF. */
int csv_put_text(csv_writer *w, const void *bytes, size_t len);
int csv_put_int(csv_writer *w, long long v);
int csv_put_real(csv_writer *w, double v); /* as csv_format_real() */
int csv_put_null(csv_writer *w);           /* an empty field */
/* A text field made of `prefix` then the text (csv_excel's neutralised formulas); `prefix` is
 * not a byte that forces quoting. */
int csv_put_text_after(csv_writer *w, unsigned char prefix, const void *bytes, size_t len);
/* Raw bytes outside any field (csv_excel's BOM, before the first row). */
int csv_put_raw(csv_writer *w, const void *bytes, size_t len);

/* Writes a REAL as the protocol does into `out` (CSV_REAL_LEN bytes) and returns its length:
 * printf("%.15g"), or "%.17g" when the 15-digit text does not read back to the same double
 * ("0.1", "1", "1e+16", "0.30000000000000004", "-0", "inf"). */
size_t csv_format_real(double v, char *out);

/* Ends the row with CRLF; a row of one empty field is written as "", not as an empty line. */
int csv_end_row(csv_writer *w);

/* Bytes of the file so far: with gzip the compressed bytes written, else the CSV produced
 * (what the file will hold once flushed). */
static inline uint64_t csv_bytes(const csv_writer *w) { return w->z ? w->file_bytes : w->total; }

/* Flushes the buffer (and the gzip stream) and closes the file, checking both; safe to call on a
 * failed writer (then it only closes, frees and returns WK_ERR). */
int csv_close(csv_writer *w);

#endif

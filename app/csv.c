/* csv.c -- see csv.h.
 *
 * The row loop is the worker's hot path: no allocation per field, a 256-entry table to find
 * the four bytes that force quoting, and write(2) straight from our own buffer so that every
 * error (ENOSPC, EFBIG, EIO) is seen where it happens rather than at an fclose(). */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* 1 for the bytes that force quoting a field (docs/protocol.md), the delimiter apart: quote,
 * CR, LF. */
static const unsigned char quote_needed[256] = {['\n'] = 1, ['\r'] = 1, ['"'] = 1};

static int fail(csv_writer *w, int err) {
    if (w->err == 0) w->err = err;
    return WK_ERR;
}

int csv_open(csv_writer *w, const char *path, unsigned char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    w->delim = ',';
    /* A new file only: never through a symlink, never into a file that is already there. */
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return w->fd < 0 ? fail(w, errno) : WK_OK;
}

void csv_set_delimiter(csv_writer *w, unsigned char delim) { w->delim = delim; }

int csv_start_gzip(csv_writer *w, int level) {
    if (w->err) return WK_ERR;
    w->z = calloc(1, sizeof *w->z);
    w->zout = malloc(CSV_ZOUT_BYTES);
    if (w->z == NULL || w->zout == NULL) return fail(w, ENOMEM);
    /* 15 + 16: a gzip wrapper (no name, mtime 0) around a 32 KiB window. */
    if (deflateInit2(w->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(w->z);
        w->z = NULL;
        return fail(w, ENOMEM);
    }
    return WK_OK;
}

/* Writes all of [p, p+n) to the file, retrying short writes and EINTR. */
static int write_raw(csv_writer *w, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return fail(w, errno);
        }
        if (k == 0) return fail(w, EIO);
        p += k;
        n -= (size_t)k;
        w->file_bytes += (uint64_t)k;
    }
    return WK_OK;
}

/* Compresses [p, p+n) into the file; `flush` Z_FINISH ends the gzip stream. */
static int deflate_all(csv_writer *w, const unsigned char *p, size_t n, int flush) {
    z_stream *z = w->z;
    z->next_in = (Bytef *)(uintptr_t)p; /* zlib does not write through next_in */
    z->avail_in = (uInt)n;
    int rc;
    do {
        z->next_out = w->zout;
        z->avail_out = CSV_ZOUT_BYTES;
        rc = deflate(z, flush);
        if (rc == Z_STREAM_ERROR) return fail(w, EIO);
        if (write_raw(w, w->zout, CSV_ZOUT_BYTES - z->avail_out) != WK_OK) return WK_ERR;
    } while (z->avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return WK_OK;
}

/* The bytes of the CSV, to the file or through gzip. */
static int write_all(csv_writer *w, const unsigned char *p, size_t n) {
    if (w->z == NULL) return write_raw(w, p, n);
    while (n > 0) { /* avail_in is an unsigned int */
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        if (deflate_all(w, p, chunk, Z_NO_FLUSH) != WK_OK) return WK_ERR;
        p += chunk;
        n -= chunk;
    }
    return WK_OK;
}

static int flush(csv_writer *w) {
    if (w->err) return WK_ERR;
    int rc = write_all(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

/* Appends raw bytes, flushing when the buffer is full; a chunk larger than the buffer goes
 * straight to the file. */
static int append(csv_writer *w, const void *bytes, size_t n) {
    if (w->err) return WK_ERR;
    if (n == 0) return WK_OK; /* an empty BLOB comes as (NULL, 0): memcpy must not see it */
    w->total += n;
    if (n <= w->cap - w->len) {
        memcpy(w->buf + w->len, bytes, n);
        w->len += n;
        return WK_OK;
    }
    if (flush(w) != WK_OK) return WK_ERR;
    if (n >= w->cap) return write_all(w, bytes, n);
    memcpy(w->buf, bytes, n);
    w->len = n;
    return WK_OK;
}

static inline int append_byte(csv_writer *w, unsigned char c) {
    if (w->len < w->cap && !w->err) {
        w->buf[w->len++] = c;
        w->total++;
        return WK_OK;
    }
    return append(w, &c, 1);
}

static inline int start_field(csv_writer *w) {
    return w->row_fields++ > 0 ? append_byte(w, w->delim) : (w->err ? WK_ERR : WK_OK);
}

/* The body of a quoted field (its opening quote written) and the closing quote. */
static int put_quoted_body(csv_writer *w, const unsigned char *p, size_t n) {
    const unsigned char *end = p + n;
    while (p < end) {
        const unsigned char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL) {
            if (append(w, p, (size_t)(end - p)) != WK_OK) return WK_ERR;
            break;
        }
        /* Copy up to and including the quote, then double it. */
        if (append(w, p, (size_t)(q - p) + 1) != WK_OK || append_byte(w, '"') != WK_OK)
            return WK_ERR;
        p = q + 1;
    }
    return append_byte(w, '"');
}

static int put_quoted(csv_writer *w, const unsigned char *p, size_t n) {
    if (append_byte(w, '"') != WK_OK) return WK_ERR;
    return put_quoted_body(w, p, n);
}

/* 1 if [p, p+n) holds a byte that forces quoting. With SSE2 (every x86-64), 16 bytes per step;
 * the tail, and other machines, use the table. */
static int needs_quotes(const unsigned char *p, size_t n, unsigned char delim) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i comma = _mm_set1_epi8((char)delim), quote = _mm_set1_epi8('"');
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (_mm_movemask_epi8(hit)) return 1;
    }
#endif
    for (; i < n; i++)
        if (quote_needed[p[i]] || p[i] == delim) return 1;
    return 0;
}

int csv_put_text(csv_writer *w, const void *bytes, size_t len) {
    if (start_field(w) != WK_OK) return WK_ERR;
    const unsigned char *p = bytes;
    return needs_quotes(p, len, w->delim) ? put_quoted(w, p, len) : append(w, p, len);
}

int csv_put_text_after(csv_writer *w, unsigned char prefix, const void *bytes, size_t len) {
    if (start_field(w) != WK_OK) return WK_ERR;
    const unsigned char *p = bytes;
    if (needs_quotes(p, len, w->delim))
        return append_byte(w, '"') == WK_OK && append_byte(w, prefix) == WK_OK
                   ? put_quoted_body(w, p, len)
                   : WK_ERR;
    return append_byte(w, prefix) == WK_OK ? append(w, p, len) : WK_ERR;
}

int csv_put_raw(csv_writer *w, const void *bytes, size_t len) {
    if (append(w, bytes, len) != WK_OK) return WK_ERR;
    w->row_start = w->total;
    return WK_OK;
}

int csv_put_int(csv_writer *w, long long v) {
    if (start_field(w) != WK_OK) return WK_ERR;
    char tmp[24];
    char *end = tmp + sizeof tmp, *s = end;
    /* Unsigned arithmetic so that LLONG_MIN is formatted without overflow. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--s = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--s = '-';
    return append(w, s, (size_t)(end - s));
}

int csv_put_real(csv_writer *w, double v) {
    if (start_field(w) != WK_OK) return WK_ERR;
    char tmp[CSV_REAL_LEN];
    return append(w, tmp, csv_format_real(v, tmp));
}

size_t csv_format_real(double v, char *out) {
    int n = snprintf(out, CSV_REAL_LEN, "%.15g", v);
    if (strtod(out, NULL) != v) n = snprintf(out, CSV_REAL_LEN, "%.17g", v);
    return (size_t)n;
}

int csv_put_null(csv_writer *w) { return start_field(w); }

int csv_end_row(csv_writer *w) {
    if (w->err) return WK_ERR;
    int rc = WK_OK;
    if (w->row_fields == 1 && w->total == w->row_start) rc = append(w, "\"\"", 2);
    if (rc == WK_OK) rc = append(w, "\r\n", 2);
    w->row_fields = 0;
    w->row_start = w->total;
    return rc;
}

int csv_close(csv_writer *w) {
    int rc = w->err ? WK_ERR : flush(w);
    if (w->z != NULL) {
        if (rc == WK_OK) rc = deflate_all(w, NULL, 0, Z_FINISH);
        (void)deflateEnd(w->z);
        free(w->z);
        w->z = NULL;
    }
    free(w->zout);
    w->zout = NULL;
    if (w->fd >= 0) {
        if (close(w->fd) != 0 && rc == WK_OK) rc = fail(w, errno);
        w->fd = -1;
    }
    return rc;
}

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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* 1 for the bytes that force quoting a field (docs/protocol.md): delimiter, quote, CR, LF. */
static const unsigned char quote_needed[256] = {['\n'] = 1, ['\r'] = 1, ['"'] = 1, [','] = 1};

static int fail(csv_writer *w, int err) {
    if (w->err == 0) w->err = err;
    return WK_ERR;
}

int csv_open(csv_writer *w, const char *path, unsigned char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    /* A new file only: never through a symlink, never into a file that is already there. */
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return w->fd < 0 ? fail(w, errno) : WK_OK;
}

/* Writes all of [p, p+n) to the file, retrying short writes and EINTR. */
static int write_all(csv_writer *w, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return fail(w, errno);
        }
        if (k == 0) return fail(w, EIO);
        p += k;
        n -= (size_t)k;
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
    return w->row_fields++ > 0 ? append_byte(w, ',') : (w->err ? WK_ERR : WK_OK);
}

static int put_quoted(csv_writer *w, const unsigned char *p, size_t n) {
    if (append_byte(w, '"') != WK_OK) return WK_ERR;
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

/* 1 if [p, p+n) holds a byte that forces quoting. With SSE2 (every x86-64), 16 bytes per step;
 * the tail, and other machines, use the table. */
static int needs_quotes(const unsigned char *p, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i comma = _mm_set1_epi8(','), quote = _mm_set1_epi8('"');
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (_mm_movemask_epi8(hit)) return 1;
    }
#endif
    for (; i < n; i++)
        if (quote_needed[p[i]]) return 1;
    return 0;
}

int csv_put_text(csv_writer *w, const void *bytes, size_t len) {
    if (start_field(w) != WK_OK) return WK_ERR;
    const unsigned char *p = bytes;
    return needs_quotes(p, len) ? put_quoted(w, p, len) : append(w, p, len);
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
    if (w->fd >= 0) {
        if (close(w->fd) != 0 && rc == WK_OK) rc = fail(w, errno);
        w->fd = -1;
    }
    return rc;
}

/* sink_xlsx.c -- see sink_xlsx.h. */
#define _POSIX_C_SOURCE 200809L
#include "sink_xlsx.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cells.h"
#include "csv.h"
#include "protocol.h"
#include "xw.h"

/* Column width (characters) by catalog type, and the bounds of any width (sink_xlsx.py). */
#define DEFAULT_WIDTH 18
#define MAX_WIDTH 60

typedef struct {
    sink base;
    lxw_workbook *book;
    lxw_worksheet *sheet;
    lxw_format *bold, *date, *decimal;
    sink_xlsx_options opt;
    int ncols, sheets;
    long row; /* the next row of the current sheet */
    char **names;
    column_type *types;
    int fd;     /* the .part as created here: libxlsxwriter writes it by name at close */
    char *path;
} xlsx_sink;

static int write_text(xlsx_sink *k, lxw_row_t row, lxw_col_t col, char *text, lxw_format *fmt);

static int fail(xlsx_sink *k, lxw_error e) {
    if (k->base.err == 0) k->base.err = e == LXW_ERROR_MEMORY_MALLOC_FAILED ? ENOMEM : EIO;
    return WK_ERR;
}

static int check(xlsx_sink *k, lxw_error e) { return e == LXW_NO_ERROR ? WK_OK : fail(k, e); }

static int type_width(column_type t) {
    return t == COLUMN_DATE ? 12 : t == COLUMN_DECIMAL ? 14 : t == COLUMN_INTEGER ? 12
                                                                                  : DEFAULT_WIDTH;
}

/* The header's length in characters plus room for the filter button, at least the type's. */
static double column_width(const char *name, column_type t) {
    int chars = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) chars += (*p & 0xC0) != 0x80;
    int w = chars + 4 > type_width(t) ? chars + 4 : type_width(t);
    return w > MAX_WIDTH ? MAX_WIDTH : w;
}

static void finish_sheet(xlsx_sink *k) {
    if (k->sheet != NULL && k->ncols > 0 && k->base.err == 0)
        (void)check(k, xw.worksheet_autofilter(k->sheet, 0, 0, (lxw_row_t)(k->row - 1),
                                               (lxw_col_t)(k->ncols - 1)));
}

static int new_sheet(xlsx_sink *k) {
    finish_sheet(k);
    char name[32];
    if (++k->sheets == 1) snprintf(name, sizeof name, "%s", PROTO_XLSX_SHEET_PREFIX);
    else snprintf(name, sizeof name, "%s_%d", PROTO_XLSX_SHEET_PREFIX, k->sheets);
    k->sheet = xw.workbook_add_worksheet(k->book, name);
    if (k->sheet == NULL) return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    for (int c = 0; c < k->ncols; c++)
        if (check(k, xw.worksheet_set_column(k->sheet, (lxw_col_t)c, (lxw_col_t)c,
                                             column_width(k->names[c], k->types[c]), NULL)) != WK_OK ||
            write_text(k, 0, (lxw_col_t)c, k->names[c], k->bold) != WK_OK)
            return WK_ERR;
    xw.worksheet_freeze_panes(k->sheet, 1, 0);
    k->row = 1;
    return WK_OK;
}

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1 if s begins with `_xHHHH_`, the form of Excel's escapes of control characters. */
static int excel_escape_at(const char *s) {
    return s[0] == '_' && s[1] == 'x' && is_hex(s[2]) && is_hex(s[3]) && is_hex(s[4]) &&
           is_hex(s[5]) && s[6] == '_';
}

/* Text that already reads as `_xHHHH_` keeps its meaning in Excel when its underscore is escaped
 * (`_x005F_xHHHH_`), as XlsxWriter does and libxlsxwriter 1.1 does not: a new string, or `text`
 * itself when there is nothing to escape, or NULL when out of memory. */
static char *escape_escapes(char *text) {
    size_t n = 0, len = strlen(text);
    for (size_t i = 0; i + 7 <= len; i++)
        if (excel_escape_at(text + i)) n++, i += 6;
    if (n == 0) return text;
    char *out = malloc(len + 6 * n + 1), *o = out;
    if (out == NULL) return NULL;
    for (size_t i = 0; i < len;) {
        if (i + 7 <= len && excel_escape_at(text + i)) {
            memcpy(o, "_x005F", 6);
            memcpy(o + 6, text + i, 7);
            o += 13;
            i += 7;
        } else {
            *o++ = text[i++];
        }
    }
    *o = '\0';
    return out;
}

/* Writes a text cell (never empty) with `fmt`. */
static int write_text(xlsx_sink *k, lxw_row_t row, lxw_col_t col, char *text, lxw_format *fmt) {
    char *escaped = escape_escapes(text);
    if (escaped == NULL) return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    int rc = check(k, xw.worksheet_write_string(k->sheet, row, col, escaped, fmt));
    if (escaped != text) free(escaped);
    return rc;
}

/* A text cell: cleaned and cut as cells_xlsx_text() says, neutralised when it could start a
 * formula (OWASP's single quote, then cut again). */
static int put_text(xlsx_sink *k, lxw_col_t col, const char *text, size_t len) {
    char *clean = cells_xlsx_text(text, len);
    if (clean == NULL) return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    size_t n = strlen(clean);
    if (k->opt.neutralise && cells_formula_like(clean, n)) {
        char *quoted = malloc(n + 2);
        if (quoted != NULL) {
            quoted[0] = '\'';
            memcpy(quoted + 1, clean, n + 1);
        }
        free(clean);
        clean = quoted != NULL ? cells_xlsx_text(quoted, n + 1) : NULL;
        free(quoted);
        if (clean == NULL) return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    }
    int rc = clean[0] ? write_text(k, (lxw_row_t)k->row, col, clean, NULL) : WK_OK;
    free(clean);
    return rc;
}

static int put_value(xlsx_sink *k, lxw_col_t col, const value *v, column_type t) {
    lxw_row_t row = (lxw_row_t)k->row;
    lxw_format *number = t == COLUMN_DECIMAL ? k->decimal : NULL;
    char tmp[CSV_REAL_LEN];
    int y, m, d;
    switch (v->type) {
    case VALUE_TEXT:
        if (cells_number_text(v->text, v->len, t)) {
            char digits[40]; /* at most 32 bytes: the pattern's sign, digits and point */
            memcpy(digits, v->text, v->len);
            digits[v->len] = '\0';
            return check(k, xw.worksheet_write_number(k->sheet, row, col, strtod(digits, NULL),
                                                      number));
        }
        if (cells_date(v->text, v->len, t, &y, &m, &d)) {
            lxw_datetime when = {y, m, d, 0, 0, 0};
            return check(k, xw.worksheet_write_datetime(k->sheet, row, col, &when, k->date));
        }
        return put_text(k, col, v->text, v->len);
    case VALUE_INT:
        if (v->i > -CELLS_EXACT_INTEGER && v->i < CELLS_EXACT_INTEGER)
            return check(k, xw.worksheet_write_number(k->sheet, row, col, (double)v->i, number));
        snprintf(tmp, sizeof tmp, "%lld", v->i);
        return check(k, xw.worksheet_write_string(k->sheet, row, col, tmp, NULL));
    case VALUE_REAL:
        if (isfinite(v->d))
            return check(k, xw.worksheet_write_number(k->sheet, row, col, v->d, number));
        (void)csv_format_real(v->d, tmp);
        return check(k, xw.worksheet_write_string(k->sheet, row, col, tmp, NULL));
    default:
        return WK_OK; /* NULL: an empty cell */
    }
}

static int xlsx_header(sink *base, const char *const *names, const column_type *types, int n) {
    xlsx_sink *k = (xlsx_sink *)base;
    k->names = calloc((size_t)n + 1, sizeof *k->names);
    k->types = calloc((size_t)n + 1, sizeof *k->types);
    if (k->names == NULL || k->types == NULL) return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    k->ncols = n;
    for (int c = 0; c < n; c++) {
        k->types[c] = types[c];
        if ((k->names[c] = cells_xlsx_text(names[c], strlen(names[c]))) == NULL) {
            k->ncols = c;
            return fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
        }
    }
    return new_sheet(k);
}

static int xlsx_row(sink *base, const value *row, int n) {
    xlsx_sink *k = (xlsx_sink *)base;
    if (k->base.err) return WK_ERR;
    if (k->row >= k->opt.sheet_rows && new_sheet(k) != WK_OK) return WK_ERR;
    for (int c = 0; c < n; c++)
        if (put_value(k, (lxw_col_t)c, &row[c], k->types[c]) != WK_OK) return WK_ERR;
    k->row++;
    return WK_OK;
}

/* The file is assembled at close(): nothing is known before. */
static uint64_t xlsx_bytes(const sink *base) {
    (void)base;
    return 0;
}

/* 1 if `path` is still the regular file `fd` was created as: libxlsxwriter opens its file by
 * name, so this is how a name swapped for a symlink after we created it is caught. */
static int still_ours(int fd, const char *path) {
    struct stat created, now;
    return fstat(fd, &created) == 0 && lstat(path, &now) == 0 && S_ISREG(now.st_mode) &&
           created.st_dev == now.st_dev && created.st_ino == now.st_ino;
}

static int xlsx_close(sink *base) {
    xlsx_sink *k = (xlsx_sink *)base;
    finish_sheet(k);
    if (k->sheet == NULL && k->base.err == 0 &&
        xw.workbook_add_worksheet(k->book, PROTO_XLSX_SHEET_PREFIX) == NULL)
        (void)fail(k, LXW_ERROR_MEMORY_MALLOC_FAILED);
    lxw_error e = xw.workbook_close(k->book); /* frees the workbook in every case */
    if (e != LXW_NO_ERROR) (void)fail(k, e);
    if (k->base.err == 0 && !still_ours(k->fd, k->path)) k->base.err = ELOOP;
    (void)close(k->fd);
    free(k->path);
    int err = k->base.err;
    for (int c = 0; c < k->ncols; c++) free(k->names[c]);
    free(k->names);
    free(k->types);
    free(k);
    return err;
}

static const sink_ops xlsx_ops = {xlsx_header, xlsx_row, xlsx_bytes, xlsx_close};

int sink_xlsx_open(sink **out, const char *path, const sink_xlsx_options *opt, int *err,
                   char errstr[WK_ERRSTR_LEN]) {
    *out = NULL;
    *err = 0;
    if (xw_load(errstr) != WK_OK) return WK_ERR;
    xlsx_sink *k = calloc(1, sizeof *k);
    if (k == NULL) {
        *err = ENOMEM;
        return WK_ERR;
    }
    k->base.ops = &xlsx_ops;
    k->opt = *opt;
    /* The name is claimed as the CSV sink claims it: a new file only, never through a symlink
     * (docs/security.md); xlsx_close() checks that libxlsxwriter wrote this very file. */
    k->path = strdup(path);
    k->fd = k->path == NULL ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                         0644);
    if (k->fd < 0) {
        *err = k->path == NULL ? ENOMEM : errno;
        free(k->path);
        free(k);
        return WK_ERR;
    }
    lxw_workbook_options options = {.constant_memory = 1, .tmpdir = (char *)opt->tmpdir};
    k->book = xw.workbook_new_opt(path, &options);
    if (k->book == NULL) {
        (void)close(k->fd);
        free(k->path);
        free(k);
        *err = ENOMEM; /* libxlsxwriter opens the file at close: only memory can fail here */
        return WK_ERR;
    }
    k->bold = xw.workbook_add_format(k->book);
    k->date = xw.workbook_add_format(k->book);
    k->decimal = xw.workbook_add_format(k->book);
    if (k->bold == NULL || k->date == NULL || k->decimal == NULL) {
        (void)xlsx_close(&k->base);
        *err = ENOMEM;
        return WK_ERR;
    }
    xw.format_set_bold(k->bold);
    xw.format_set_num_format(k->date, PROTO_XLSX_DATE_FORMAT);
    xw.format_set_num_format(k->decimal, PROTO_XLSX_DECIMAL_FORMAT);
    *out = &k->base;
    return WK_OK;
}

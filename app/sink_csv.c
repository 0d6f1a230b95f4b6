/* sink_csv.c -- see sink_csv.h. */
#define _POSIX_C_SOURCE 200809L
#include "sink_csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "csv.h"
#include "protocol.h"

typedef struct {
    sink base;
    csv_writer w;
    unsigned char *own; /* the buffer of this report, when the global one is missing */
    sink_csv_options opt;
    column_type types[SINK_MAX_COLUMNS]; /* the catalog type of each column (csv_excel) */
} csv_sink;

static unsigned char *csv_buffer; /* allocated and touched once for the process */

int sink_csv_global_init(char errstr[WK_ERRSTR_LEN]) {
    csv_buffer = malloc(CSV_BUFFER_BYTES);
    if (csv_buffer == NULL) return wk_error(errstr, "memória insuficiente para o buffer do CSV");
    report_touch(csv_buffer, CSV_BUFFER_BYTES);
    return WK_OK;
}

void sink_csv_global_shutdown(void) {
    free(csv_buffer);
    csv_buffer = NULL;
}

/* The writer's first error, if any, becomes the sink's. */
static int track(csv_sink *k, int rc) {
    if (rc != WK_OK && k->base.err == 0) k->base.err = k->w.err ? k->w.err : EIO;
    return rc;
}

/* csv_excel's text: neutralised when it could start a formula. */
static int put_excel_text(csv_sink *k, const char *text, size_t len) {
    if (k->opt.neutralise && cells_formula_like(text, len))
        return csv_put_text_after(&k->w, '\'', text, len);
    return csv_put_text(&k->w, text, len);
}

/* A number's text with a decimal comma (at most CSV_REAL_LEN bytes: no quoting needed). */
static int put_comma(csv_writer *w, const char *text, size_t len) {
    char tmp[CSV_REAL_LEN];
    if (len > sizeof tmp) return csv_put_text(w, text, len);
    for (size_t i = 0; i < len; i++) tmp[i] = text[i] == '.' ? ',' : text[i];
    return csv_put_text(w, tmp, len);
}

static int excel_value(csv_sink *k, const value *v, column_type type) {
    csv_writer *w = &k->w;
    char tmp[CSV_REAL_LEN];
    switch (v->type) {
    case VALUE_TEXT:
        if (cells_number_text(v->text, v->len, type)) return put_comma(w, v->text, v->len);
        return put_excel_text(k, v->text, v->len);
    case VALUE_INT:
        return csv_put_int(w, v->i);
    case VALUE_REAL:
        return put_comma(w, tmp, csv_format_real(v->d, tmp));
    default:
        return csv_put_null(w);
    }
}

static int csv_header(sink *base, const char *const *names, const column_type *types, int n) {
    csv_sink *k = (csv_sink *)base;
    for (int i = 0; i < n; i++) {
        k->types[i] = types[i];
        int rc = k->opt.excel ? put_excel_text(k, names[i], strlen(names[i]))
                              : csv_put_text(&k->w, names[i], strlen(names[i]));
        if (rc != WK_OK) return track(k, WK_ERR);
    }
    return track(k, csv_end_row(&k->w));
}

static int csv_row(sink *base, const value *row, int n) {
    csv_sink *k = (csv_sink *)base;
    csv_writer *w = &k->w;
    if (k->opt.excel) {
        for (int i = 0; i < n; i++)
            if (excel_value(k, &row[i], k->types[i]) != WK_OK) return track(k, WK_ERR);
        return track(k, csv_end_row(w));
    }
    for (int i = 0; i < n; i++) {
        const value *v = &row[i];
        int rc = v->type == VALUE_TEXT  ? csv_put_text(w, v->text, v->len)
                 : v->type == VALUE_INT ? csv_put_int(w, v->i)
                 : v->type == VALUE_REAL ? csv_put_real(w, v->d)
                                         : csv_put_null(w);
        if (rc != WK_OK) return track(k, rc);
    }
    return track(k, csv_end_row(w));
}

static uint64_t csv_sink_bytes(const sink *base) { return csv_bytes(&((const csv_sink *)base)->w); }

static int csv_sink_close(sink *base) {
    csv_sink *k = (csv_sink *)base;
    (void)track(k, csv_close(&k->w));
    int err = k->base.err;
    free(k->own);
    free(k);
    return err;
}

static const sink_ops csv_ops = {csv_header, csv_row, csv_sink_bytes, csv_sink_close};

int sink_csv_open(sink **out, const char *path, const sink_csv_options *opt, int *err) {
    *out = NULL;
    csv_sink *k = calloc(1, sizeof *k);
    unsigned char *buffer = csv_buffer;
    if (k != NULL && buffer == NULL) buffer = k->own = malloc(CSV_BUFFER_BYTES);
    if (k == NULL || buffer == NULL) {
        free(k);
        *err = ENOMEM;
        return WK_ERR;
    }
    k->base.ops = &csv_ops;
    k->opt = *opt;
    if (csv_open(&k->w, path, buffer, CSV_BUFFER_BYTES) != WK_OK) {
        *err = k->w.err;
        free(k->own);
        free(k);
        return WK_ERR;
    }
    if (opt->excel) csv_set_delimiter(&k->w, ';');
    int rc = opt->gzip ? csv_start_gzip(&k->w, PROTO_GZIP_LEVEL) : WK_OK;
    if (rc == WK_OK && opt->excel) rc = csv_put_raw(&k->w, "\xEF\xBB\xBF", 3); /* the BOM */
    if (rc != WK_OK) {
        *err = k->w.err ? k->w.err : EIO;
        (void)csv_close(&k->w);
        free(k->own);
        free(k);
        return WK_ERR;
    }
    *out = &k->base;
    return WK_OK;
}

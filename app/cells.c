/* cells.c -- see cells.h. */
#define _POSIX_C_SOURCE 200809L
#include "cells.h"

#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "utf8.h"

#define MAX_DIGITS 15 /* the {1,15} of the patterns */

static size_t digits(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    return i;
}

int cells_number_text(const char *text, size_t len, column_type type) {
    if (type != COLUMN_DECIMAL && type != COLUMN_INTEGER) return 0;
    size_t i = len > 0 && text[0] == '-' ? 1 : 0;
    size_t whole = digits(text + i, len - i);
    if (whole < 1 || whole > MAX_DIGITS) return 0;
    i += whole;
    if (i == len) return 1;
    if (type != COLUMN_DECIMAL || text[i] != '.') return 0;
    size_t frac = digits(text + i + 1, len - i - 1);
    return frac >= 1 && frac <= MAX_DIGITS && i + 1 + frac == len;
}

int cells_date(const char *text, size_t len, column_type type, int *year, int *month, int *day) {
    if (type != COLUMN_DATE || len != 10 || text[4] != '-' || text[7] != '-' ||
        digits(text, 4) != 4 || digits(text + 5, 2) != 2 || digits(text + 8, 2) != 2)
        return 0;
    int y = atoi(text), m = atoi(text + 5), d = atoi(text + 8);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > days[m - 1] + (m == 2 && leap)) return 0;
    *year = y;
    *month = m;
    *day = d;
    return 1;
}

int cells_formula_like(const char *text, size_t len) {
    return len > 0 && text[0] != '\0' && strchr(PROTO_FORMULA_START_CHARS, text[0]) != NULL;
}

char *cells_xlsx_text(const char *text, size_t len) {
    char *clean = utf8_clean(text, len);
    if (clean == NULL) return NULL;
    size_t units = 0;
    for (unsigned char *p = (unsigned char *)clean; *p; p++) {
        if ((*p & 0xC0) == 0x80) continue; /* a continuation byte */
        units += *p >= 0xF0 ? 2 : 1;        /* four bytes: beyond U+FFFF, a surrogate pair */
        if (units > PROTO_XLSX_MAX_TEXT_UNITS) {
            *p = '\0';
            break;
        }
    }
    return clean;
}

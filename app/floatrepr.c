/* floatrepr.c -- see floatrepr.h.
 *
 * glibc's printf rounds correctly, so the nearest p-digit decimal of x is "%.{p-1}e". The
 * shortest round-trip string is the first such candidate, for p = 1..17, that strtod() reads
 * back to x. The one exception is a power of two, whose rounding interval is narrower below x
 * than above it: there the nearest candidate may fail while its upper neighbour, one unit in
 * the last digit away, reads back to x; Python's dtoa picks that neighbour, so we try it too. */
#define _POSIX_C_SOURCE 200809L
#include "floatrepr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char digits[24]; /* significant digits, no trailing zero */
    int ndigits;
    int exp10; /* x = d.ddd * 10^exp10 */
} decimal;

/* Reads "d.ddde+XX" (printf %e output) into `d`. */
static void decimal_from_e(const char *s, decimal *d) {
    d->ndigits = 0;
    for (; *s != 'e'; s++)
        if (*s != '.') d->digits[d->ndigits++] = *s;
    d->exp10 = atoi(s + 1);
    while (d->ndigits > 1 && d->digits[d->ndigits - 1] == '0') d->ndigits--;
    d->digits[d->ndigits] = '\0';
}

/* The candidate one unit in the last of `p` digits above "%.{p-1}e" of ax; returns 1 if it
 * reads back to ax (and fills `d`). */
static int try_upper_neighbour(double ax, const char *nearest, int p, decimal *d) {
    decimal n;
    decimal_from_e(nearest, &n);
    unsigned long long m = 0;
    for (int i = 0; i < p; i++) m = m * 10 + (unsigned long long)(i < n.ndigits ? n.digits[i] - '0' : 0);
    int exp10 = n.exp10 - (p - 1); /* ax ~ m * 10^exp10 */
    m++;
    char buf[48];
    snprintf(buf, sizeof buf, "%llue%d", m, exp10);
    if (strtod(buf, NULL) != ax) return 0;
    /* Rebuild "d.ddde+X" from m so decimal_from_e can normalise it. */
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", m);
    snprintf(buf, sizeof buf, "%c.%se%d", digits[0], digits + 1, exp10 + len - 1);
    decimal_from_e(buf, d);
    return 1;
}

static void shortest(double ax, decimal *d) {
    char buf[40];
    int pow2 = frexp(ax, &(int){0}) == 0.5;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, ax);
        if (strtod(buf, NULL) == ax) {
            decimal_from_e(buf, d);
            return;
        }
        if (pow2 && strtod(buf, NULL) < ax && try_upper_neighbour(ax, buf, p, d)) return;
    }
    snprintf(buf, sizeof buf, "%.16e", ax); /* 17 digits always round-trip */
    decimal_from_e(buf, d);
}

static size_t format_positional(const decimal *d, char *out) {
    char *o = out;
    int point = d->exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -point; i++) *o++ = '0';
        memcpy(o, d->digits, (size_t)d->ndigits);
        o += d->ndigits;
    } else if (point < d->ndigits) {
        memcpy(o, d->digits, (size_t)point);
        o += point;
        *o++ = '.';
        memcpy(o, d->digits + point, (size_t)(d->ndigits - point));
        o += d->ndigits - point;
    } else {
        memcpy(o, d->digits, (size_t)d->ndigits);
        o += d->ndigits;
        for (int i = d->ndigits; i < point; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    }
    *o = '\0';
    return (size_t)(o - out);
}

static size_t format_scientific(const decimal *d, char *out) {
    char *o = out;
    *o++ = d->digits[0];
    if (d->ndigits > 1) {
        *o++ = '.';
        memcpy(o, d->digits + 1, (size_t)(d->ndigits - 1));
        o += d->ndigits - 1;
    }
    o += sprintf(o, "e%c%02d", d->exp10 < 0 ? '-' : '+', abs(d->exp10));
    return (size_t)(o - out);
}

size_t float_repr(double x, char *out) {
    if (isnan(x)) return (size_t)sprintf(out, "nan");
    if (isinf(x)) return (size_t)sprintf(out, x < 0 ? "-inf" : "inf");
    size_t sign = 0;
    if (signbit(x)) {
        out[sign++] = '-';
        x = -x;
    }
    if (x == 0.0) return sign + (size_t)sprintf(out + sign, "0.0");
    decimal d;
    shortest(x, &d);
    if (d.exp10 >= -4 && d.exp10 < 16) return sign + format_positional(&d, out + sign);
    return sign + format_scientific(&d, out + sign);
}

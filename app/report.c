/* report.c -- see report.h. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>

int report_fail(report_error *e, const char *code, int transient, const char *fmt, ...) {
    e->code = code;
    e->transient = transient;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(e->errstr, sizeof e->errstr, fmt, ap);
    va_end(ap);
    return WK_ERR;
}

void report_touch(void *p, size_t n) {
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i += 4096) b[i] = 0xA5;
}

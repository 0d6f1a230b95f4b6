/* wk.c -- see wk.h. */
#include "wk.h"

#include <stdarg.h>
#include <stdio.h>

int wk_error(char errstr[WK_ERRSTR_LEN], const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(errstr, WK_ERRSTR_LEN, fmt, ap);
    va_end(ap);
    return WK_ERR;
}

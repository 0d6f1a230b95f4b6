/* log.c -- see log.h. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "protocol.h"

void log_line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    /* One fputs/vfprintf/fputc sequence under the stdio lock, so lines never interleave. */
    flockfile(stdout);
    (void)fputs(LOG_PREFIX, stdout);
    (void)vfprintf(stdout, fmt, ap);
    (void)fputc('\n', stdout);
    (void)fflush(stdout);
    funlockfile(stdout);
    va_end(ap);
}

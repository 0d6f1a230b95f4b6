/* clock.c -- see clock.h. */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void clock_now_iso(char *out) { clock_iso_in(0, out); }

void clock_iso_in(double seconds, char *out) {
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    long long ns = (long long)ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    if (gmtime_r(&ts.tv_sec, &tm) == NULL || strftime(out, CLOCK_ISO_LEN, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, CLOCK_ISO_LEN, "1970-01-01T00:00:00.000Z");
        return;
    }
    size_t n = strlen(out);
    snprintf(out + n, CLOCK_ISO_LEN - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

long long clock_epoch_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double clock_monotonic(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void clock_sleep(double seconds) {
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    /* EINTR ends the sleep on purpose: the caller checks whether it was asked to stop. */
    (void)nanosleep(&ts, NULL);
}

/* clock.h -- the clocks of the protocol: wall time for timestamps, monotonic time for timers. */
#ifndef RELATORIOS_CLOCK_H
#define RELATORIOS_CLOCK_H

#define CLOCK_ISO_LEN 40 /* "2026-11-28T23:23:24.123Z" plus room */

/* Writes the current UTC time as ISO 8601 with milliseconds and a Z into `out` (at least
 * CLOCK_ISO_LEN bytes). Never fails: on a clock error it writes the epoch. */
void clock_now_iso(char *out);

/* The same for the time `seconds` from now. */
void clock_iso_in(double seconds, char *out);

/* Milliseconds since the Unix epoch (the score of the tasks' sorted set). */
long long clock_epoch_ms(void);

/* Seconds on a monotonic clock, for intervals only. */
double clock_monotonic(void);

/* Sleeps `seconds`; returns early (without error) when a signal arrives. */
void clock_sleep(double seconds);

#endif

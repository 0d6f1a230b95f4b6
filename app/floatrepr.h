/* floatrepr.h -- Python's repr(float), byte for byte (docs/protocol.md, "CSV format"). */
#ifndef RELATORIOS_FLOATREPR_H
#define RELATORIOS_FLOATREPR_H

#include <stddef.h>

#define FLOATREPR_MAX 32 /* longest output ("-2.2250738585072014e-308") plus NUL, rounded up */

/* Writes repr(x) into `out` (at least FLOATREPR_MAX bytes), NUL-terminated, and returns its
 * length: the shortest digit string that reads back to x, positional when the decimal exponent
 * is in [-4, 16) ("1.0", "0.0001"), scientific otherwise ("1e-05", "1.5e+16"); "inf", "-inf",
 * "nan", "-0.0". Never fails. */
size_t float_repr(double x, char *out);

#endif

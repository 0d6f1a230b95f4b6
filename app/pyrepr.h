/* pyrepr.h -- Python's view of a UTF-8 string: its length and its repr(), for messages that must
 * read the same whichever worker wrote them. */
#ifndef RELATORIOS_PYREPR_H
#define RELATORIOS_PYREPR_H

#include <stddef.h>

#define PYREPR_MAX 700 /* repr of 64 code points: 64 * len("\U0010ffff") + quotes + NUL */

/* len(s) in Python: the number of code points of a valid UTF-8 string. */
size_t py_len(const char *s);

/* Writes repr(s[:max_cp]) into `out` (`outlen` bytes, at least PYREPR_MAX for max_cp = 64),
 * NUL-terminated: quotes chosen as Python does, escapes for backslash, the quote, \t \n \r and
 * control characters. Non-ASCII characters are kept except the common non-printable ones
 * (C1 controls, no-break and zero-width spaces, line and paragraph separators, BOM, private
 * use), which become \x, \u or \U escapes; Python's exact table of printable characters is
 * larger than this approximation. */
void py_repr_str(const char *s, size_t max_cp, char *out, size_t outlen);

#endif

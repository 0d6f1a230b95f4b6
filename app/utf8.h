/* utf8.h -- text as the protocol carries it: UTF-8 (RFC 3629) without NUL, since every string
 * of the worker is a C string and every JSON it writes must be valid UTF-8. */
#ifndef RELATORIOS_UTF8_H
#define RELATORIOS_UTF8_H

#include <stddef.h>

/* The offset of the first byte of s[0..n) that does not begin a valid UTF-8 sequence (overlong
 * forms, surrogates and code points above U+10FFFF are invalid), or of the first NUL; n when
 * the whole text is valid. */
size_t utf8_check(const char *s, size_t n);

/* A copy of s[0..n) in a new NUL-terminated buffer (free() it) where each byte that utf8_check()
 * would stop at becomes U+FFFD: valid UTF-8 whatever `s` holds, as Python's
 * .decode("utf-8", "replace") makes it (one U+FFFD per byte rather than per invalid sequence).
 * Returns NULL when out of memory. */
char *utf8_clean(const char *s, size_t n);

#endif

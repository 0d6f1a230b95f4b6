/* utf8.c -- see utf8.h. */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* The length of the valid sequence at s[0..avail), or 0 (NUL counts as invalid). */
static size_t sequence(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    if (c != 0 && c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF, surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

size_t utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n && (k = sequence(u + i, n - i)) != 0) i += k;
    return i;
}

char *utf8_clean(const char *s, size_t n) {
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    char *out = malloc(3 * n + 1), *o = out;
    if (out == NULL) return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = sequence((const unsigned char *)s + i, n - i);
        memcpy(o, k ? s + i : replacement, k ? k : 3);
        o += k ? k : 3;
        i += k ? k : 1;
    }
    *o = '\0';
    return out;
}

/* pyrepr.c -- see pyrepr.h. */
#include "pyrepr.h"

#include <stdio.h>
#include <string.h>

size_t py_len(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Decodes one code point of valid UTF-8 at *s and advances *s. */
static unsigned long decode(const unsigned char **s) {
    const unsigned char *p = *s;
    unsigned long cp;
    int extra;
    if (p[0] < 0x80) cp = p[0], extra = 0;
    else if (p[0] < 0xE0) cp = p[0] & 0x1F, extra = 1;
    else if (p[0] < 0xF0) cp = p[0] & 0x0F, extra = 2;
    else cp = p[0] & 0x07, extra = 3;
    p++;
    for (int i = 0; i < extra && (*p & 0xC0) == 0x80; i++) cp = (cp << 6) | (*p++ & 0x3F);
    *s = p;
    return cp;
}

static int is_printable(unsigned long cp) {
    if (cp < 0x20 || cp == 0x7F) return 0;
    if (cp >= 0x80 && cp <= 0xA0) return 0;
    if (cp == 0xAD || cp == 0x1680 || cp == 0x3000 || cp == 0xFEFF) return 0;
    if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return 0;
    if ((cp >= 0x205F && cp <= 0x206F) || (cp >= 0xFFF9 && cp <= 0xFFFB)) return 0;
    if (cp >= 0xE000 && cp <= 0xF8FF) return 0;
    return 1;
}

void py_repr_str(const char *s, size_t max_cp, char *out, size_t outlen) {
    /* Python uses double quotes only when the text has a ' and no ". */
    size_t bytes = 0, cps = 0;
    while (s[bytes] && cps < max_cp) {
        cps++;
        bytes++;
        while (((unsigned char)s[bytes] & 0xC0) == 0x80) bytes++;
    }
    int has_single = memchr(s, '\'', bytes) != NULL, has_double = memchr(s, '"', bytes) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(out + o, o < outlen ? outlen - o : 0, __VA_ARGS__)
    PUT("%c", quote);
    const unsigned char *p = (const unsigned char *)s, *end = p + bytes;
    while (p < end && o < outlen) {
        const unsigned char *start = p;
        unsigned long cp = decode(&p);
        if (cp == (unsigned char)quote || cp == '\\') PUT("\\%c", (int)cp);
        else if (cp == '\t') PUT("\\t");
        else if (cp == '\n') PUT("\\n");
        else if (cp == '\r') PUT("\\r");
        else if (is_printable(cp)) PUT("%.*s", (int)(p - start), (const char *)start);
        else if (cp <= 0xFF) PUT("\\x%02lx", cp);
        else if (cp <= 0xFFFF) PUT("\\u%04lx", cp);
        else PUT("\\U%08lx", cp);
    }
    PUT("%c", quote);
#undef PUT
    if (outlen > 0 && o >= outlen) out[outlen - 1] = '\0';
}

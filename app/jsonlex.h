/* jsonlex.h -- the lexical rules of Python's json.loads that cJSON does not enforce.
 *
 * cJSON accepts some texts that Python rejects (invalid UTF-8, "01", "1.", "-.5", control
 * characters inside strings, any byte <= 0x20 as whitespace), and it cannot tell 1 from 1.0.
 * This pass runs before cJSON so that both workers accept exactly the same messages, and it
 * hands out the number tokens in document order so the parser can see how each was written. */
#ifndef RELATORIOS_JSONLEX_H
#define RELATORIOS_JSONLEX_H

#include <stddef.h>

#include "wk.h"

/* Checks `text[0..len)`. Returns WK_OK, or WK_ERR with a reason (Portuguese) in `errstr`
 * (WK_ERRSTR_LEN bytes). Rejects: invalid UTF-8 (as json.loads(bytes) decodes it), bytes other than
 * space, tab, CR and LF between tokens, raw control characters inside strings, the escape
 * \u0000 (C strings cannot carry it), and numbers outside the JSON grammar. */
int jsonlex_check(const char *text, size_t len, char *errstr);

/* An iterator over the number tokens of an already checked text, in document order. */
typedef struct {
    const char *text;
    size_t len, pos;
} jsonlex_numbers;

void jsonlex_numbers_init(jsonlex_numbers *it, const char *text, size_t len);

/* Sets *start and *n to the next number token and returns 1, or returns 0 at the end. */
int jsonlex_next_number(jsonlex_numbers *it, const char **start, size_t *n);

/* 1 if a number token is written as an integer (no fraction, no exponent), like Python's int. */
int jsonlex_is_integer(const char *start, size_t n);

/* Returns the length of the UTF-8 sequence starting at s[0] (with `avail` bytes available), or 0
 * if it is not UTF-8 as json.loads(bytes) reads it: strict, except that encoded surrogates
 * (U+D800..U+DFFF) are accepted, as Python's "surrogatepass" does. */
size_t jsonlex_utf8_seq(const unsigned char *s, size_t avail);

#endif

/* jsonlex.c -- see jsonlex.h. */
#include "jsonlex.h"

#include <stdio.h>
#include <string.h>

size_t jsonlex_utf8_seq(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        /* Encoded UTF-16 surrogates (ED A0..BF) pass: json.loads(bytes) decodes with
         * "surrogatepass", and both workers must accept the same messages. */
        if (c == 0xE0) lo = 0xA0; /* overlong */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_number_char(char c) {
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number_is_valid(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n || !is_digit(s[i])) return 0;
    if (s[i] == '0') i++;
    else
        while (i < n && is_digit(s[i])) i++;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) return 0;
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !is_digit(s[i])) return 0;
        while (i < n && is_digit(s[i])) i++;
    }
    return i == n;
}

/* Skips the string starting at text[*pos] == '"'; returns WK_ERR on a control character, on
 * \u0000 or on a missing closing quote. */
static int skip_string(const char *text, size_t len, size_t *pos, char *errstr) {
    size_t i = *pos + 1;
    while (i < len && text[i] != '"') {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20) {
            snprintf(errstr, WK_ERRSTR_LEN, "caractere de controle dentro de texto (byte %zu)", i);
            return WK_ERR;
        }
        if (c == '\\') {
            if (i + 5 < len && text[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0) {
                snprintf(errstr, WK_ERRSTR_LEN, "\\u0000 não é aceito em texto (byte %zu)", i);
                return WK_ERR;
            }
            i++; /* the escaped character; cJSON checks the escape itself */
        }
        i++;
    }
    if (i >= len) {
        snprintf(errstr, WK_ERRSTR_LEN, "texto sem aspas de fechamento");
        return WK_ERR;
    }
    *pos = i + 1;
    return WK_OK;
}

int jsonlex_check(const char *text, size_t len, char *errstr) {
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n = jsonlex_utf8_seq(u + i, len - i);
        if (n == 0) {
            snprintf(errstr, WK_ERRSTR_LEN, "UTF-8 inválido no byte %zu", i);
            return WK_ERR;
        }
        i += n;
    }
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '"') {
            if (skip_string(text, len, &i, errstr) != WK_OK) return WK_ERR;
        } else if (c == '-' || is_digit(c)) {
            size_t start = i;
            while (i < len && is_number_char(text[i])) i++;
            if (!number_is_valid(text + start, i - start)) {
                snprintf(errstr, WK_ERRSTR_LEN, "número inválido no byte %zu", start);
                return WK_ERR;
            }
        } else if ((unsigned char)c <= 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            snprintf(errstr, WK_ERRSTR_LEN, "caractere inesperado no byte %zu", i);
            return WK_ERR;
        } else {
            i++;
        }
    }
    return WK_OK;
}

void jsonlex_numbers_init(jsonlex_numbers *it, const char *text, size_t len) {
    it->text = text;
    it->len = len;
    it->pos = 0;
}

int jsonlex_next_number(jsonlex_numbers *it, const char **start, size_t *n) {
    const char *t = it->text;
    size_t i = it->pos;
    while (i < it->len) {
        if (t[i] == '"') {
            for (i++; i < it->len && t[i] != '"'; i++)
                if (t[i] == '\\') i++;
            i++;
        } else if (t[i] == '-' || is_digit(t[i])) {
            size_t s = i;
            while (i < it->len && is_number_char(t[i])) i++;
            *start = t + s;
            *n = i - s;
            it->pos = i;
            return 1;
        } else {
            i++;
        }
    }
    it->pos = i;
    return 0;
}

int jsonlex_is_integer(const char *start, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (start[i] == '.' || start[i] == 'e' || start[i] == 'E') return 0;
    return 1;
}

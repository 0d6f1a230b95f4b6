/* wk.h -- the one error convention of the worker (as in hiredis).
 *
 * A function that can fail returns WK_OK or WK_ERR (or NULL), and writes a human-readable
 * reason, in Portuguese when it may reach a user, into the `errstr` of the context it was given
 * (WK_ERRSTR_LEN bytes), with wk_error(). Nothing else is changed when it fails unless its
 * contract says so. */
#ifndef RELATORIOS_WK_H
#define RELATORIOS_WK_H

#define WK_OK 0
#define WK_ERR -1
#define WK_ERRSTR_LEN 512

#if defined(__GNUC__)
#define WK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WK_PRINTF(fmt, args)
#endif

/* Formats the reason into `errstr` (truncated to WK_ERRSTR_LEN bytes) and returns WK_ERR, so that
 * a failing function can end with `return wk_error(ctx->errstr, "...", ...);`. */
int wk_error(char errstr[WK_ERRSTR_LEN], const char *fmt, ...) WK_PRINTF(2, 3);

#endif

/* xw.h -- libxlsxwriter, loaded only when a task asks for xlsx.
 *
 * Linking libxlsxwriter brings libcrypto and minizip into every worker, resident memory that a
 * worker writing CSV would pay for nothing; so, as pq.h does for libpq, it is opened with
 * dlopen() at the first xlsx task and its functions are called through `xw`:
 * `xw.workbook_close(wb)` is libxlsxwriter's workbook_close. The types come from xlsxwriter.h
 * (libxlsxwriter-dev at build time); libxlsxwriter4 is needed at run time only for xlsx. */
#ifndef RELATORIOS_XW_H
#define RELATORIOS_XW_H

#include <xlsxwriter.h>

#include "wk.h"

/* X(return type, name, parameters) for every libxlsxwriter function the worker calls. */
#define XW_FUNCTIONS(X)                                                                        \
    X(lxw_workbook *, workbook_new_opt, (const char *, lxw_workbook_options *))                \
    X(lxw_worksheet *, workbook_add_worksheet, (lxw_workbook *, const char *))                 \
    X(lxw_format *, workbook_add_format, (lxw_workbook *))                                     \
    X(lxw_error, workbook_close, (lxw_workbook *))                                             \
    X(void, format_set_bold, (lxw_format *))                                                   \
    X(void, format_set_num_format, (lxw_format *, const char *))                               \
    X(lxw_error, worksheet_write_string,                                                       \
      (lxw_worksheet *, lxw_row_t, lxw_col_t, const char *, lxw_format *))                     \
    X(lxw_error, worksheet_write_number,                                                       \
      (lxw_worksheet *, lxw_row_t, lxw_col_t, double, lxw_format *))                           \
    X(lxw_error, worksheet_write_datetime,                                                     \
      (lxw_worksheet *, lxw_row_t, lxw_col_t, lxw_datetime *, lxw_format *))                   \
    X(lxw_error, worksheet_set_column,                                                         \
      (lxw_worksheet *, lxw_col_t, lxw_col_t, double, lxw_format *))                           \
    X(void, worksheet_freeze_panes, (lxw_worksheet *, lxw_row_t, lxw_col_t))                   \
    X(lxw_error, worksheet_autofilter,                                                         \
      (lxw_worksheet *, lxw_row_t, lxw_col_t, lxw_row_t, lxw_col_t))                           \
    X(char *, lxw_strerror, (lxw_error))

#define XW_POINTER(ret, name, params) ret(*name) params;
typedef struct {
    XW_FUNCTIONS(XW_POINTER)
} xw_api;
#undef XW_POINTER

/* libxlsxwriter's functions, once xw_load() succeeded. */
extern xw_api xw;

/* Opens libxlsxwriter (once; later calls return at once) and finds every function. Returns
 * WK_OK, or WK_ERR with the reason in errstr (libxlsxwriter4 not installed). Call xw_unload()
 * at exit. */
int xw_load(char errstr[WK_ERRSTR_LEN]);
void xw_unload(void);

#endif

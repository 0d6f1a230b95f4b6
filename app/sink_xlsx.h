/* sink_xlsx.h -- the xlsx file of docs/protocol.md ("Formats"), with libxlsxwriter (xw.h) in
 * constant_memory mode: rows go to a temporary file as they come, the workbook is assembled at
 * close. Bold frozen header with an autofilter, widths by column type, typed cells by cells.h's
 * rules, and past `sheet_rows` rows (Excel's 1,048,576, header included) a new sheet, `dados_2`,
 * `dados_3`…, each with the header. relatorios/worker/sink_xlsx.py writes the same cells. */
#ifndef RELATORIOS_SINK_XLSX_H
#define RELATORIOS_SINK_XLSX_H

#include "sink.h"

typedef struct {
    int neutralise;  /* NEUTRALIZAR_FORMULAS */
    long sheet_rows; /* XLSX_LINHAS_POR_ABA: rows per sheet, header included */
    const char *tmpdir; /* where libxlsxwriter keeps its temporary files (EXPORT_DIR) */
} sink_xlsx_options;

/* Loads libxlsxwriter if needed and starts the workbook `path`. Returns WK_OK with *out set, or
 * WK_ERR with *out NULL and either the errno in *err or, when the library cannot be loaded,
 * *err 0 and the reason in errstr (formato_nao_suportado). */
int sink_xlsx_open(sink **out, const char *path, const sink_xlsx_options *opt, int *err,
                   char errstr[WK_ERRSTR_LEN]);

#endif

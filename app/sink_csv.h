/* sink_csv.h -- the CSV files of docs/protocol.md ("CSV format", "Formats") through csv.c's
 * writer: `csv` as the specification has it, or `csv_excel` (`;`, a UTF-8 BOM, decimal commas,
 * text neutralised against formulas, by cells.h's rules); either one gzip-streamed. */
#ifndef RELATORIOS_SINK_CSV_H
#define RELATORIOS_SINK_CSV_H

#include "sink.h"

/* Allocates (and touches) the CSV buffer once for the process: its memory does not depend on the
 * report. Returns WK_OK or WK_ERR (errstr); without it each report allocates its own. */
int sink_csv_global_init(char errstr[WK_ERRSTR_LEN]);
void sink_csv_global_shutdown(void);

typedef struct {
    int excel;      /* csv_excel instead of csv */
    int gzip;       /* through gzip (PROTO_GZIP_LEVEL) */
    int neutralise; /* NEUTRALIZAR_FORMULAS, csv_excel only */
} sink_csv_options;

/* Creates `path` (truncating a leftover). Returns WK_OK with *out set, or WK_ERR with *out NULL
 * and the errno in *err. */
int sink_csv_open(sink **out, const char *path, const sink_csv_options *opt, int *err);

#endif

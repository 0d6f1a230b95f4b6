/* sink_csv.h -- the CSV file of docs/protocol.md ("CSV format"), through csv.c's writer. */
#ifndef RELATORIOS_SINK_CSV_H
#define RELATORIOS_SINK_CSV_H

#include "sink.h"

/* Allocates (and touches) the CSV buffer once for the process: its memory does not depend on the
 * report. Returns WK_OK or WK_ERR (errstr); without it each report allocates its own. */
int sink_csv_global_init(char errstr[WK_ERRSTR_LEN]);
void sink_csv_global_shutdown(void);

/* Creates `path` (truncating a leftover). Returns WK_OK with *out set, or WK_ERR with *out NULL
 * and the errno in *err. */
int sink_csv_open(sink **out, const char *path, int *err);

#endif

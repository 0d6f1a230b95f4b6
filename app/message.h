/* message.h -- parsing and validation of one queue message (docs/protocol.md, "Message").
 *
 * message_parse() refuses what the protocol refuses, with a reason in Portuguese: a message that
 * is not UTF-8, not JSON to cJSON, has a duplicated key, breaks a field's pattern (compiled once
 * with regcomp(3) from protocol.h) or a limit. It allocates nothing that outlives the call: a
 * parsed message is plain data, copied into the struct. */
#ifndef RELATORIOS_MESSAGE_H
#define RELATORIOS_MESSAGE_H

#include <stddef.h>

#include "protocol.h"
#include "wk.h"

typedef enum { PARAM_NULL, PARAM_NUMBER, PARAM_TEXT } param_kind;

typedef struct {
    char name[PROTO_MAX_NAME + 1];
    param_kind kind;
    double number;                       /* PARAM_NUMBER: |number| < 2^53 */
    char text[PROTO_MAX_PARAM_TEXT + 1]; /* PARAM_TEXT: UTF-8 without NUL */
} message_param;

typedef struct {
    char task_id[37];
    char tipo[PROTO_MAX_NAME + 1];
    char arquivo[128];
    char formato[33];    /* PROTO_FORMAT_WORD_PATTERN; PROTO_DEFAULT_FORMAT in version 1 */
    char compressao[33]; /* the same; PROTO_DEFAULT_COMPRESSION in version 1 */
    int nparams;
    message_param params[PROTO_MAX_PARAMS];
    int has_task_id; /* set on failure too, when a valid task_id could be read */
    char errstr[WK_ERRSTR_LEN];
} message;

/* Compiles the protocol's patterns; call once before message_parse(). Returns WK_OK, or WK_ERR
 * with the reason in `errstr` (WK_ERRSTR_LEN bytes). message_shutdown() frees them. */
int message_init(char *errstr);
void message_shutdown(void);

/* Parses `raw[0..len)`; `raw[len]` must be readable and '\0' (hiredis guarantees it for a
 * reply's string). Returns WK_OK with `m` filled in, or WK_ERR with the reason in m->errstr and
 * m->has_task_id / m->task_id set when the task could be identified. Safe on any input (this is
 * the function the fuzzer drives). */
int message_parse(message *m, const char *raw, size_t len);

/* 1 if `s` matches PROTO_PARAM_NAME_PATTERN (after message_init()). */
int message_is_param_name(const char *s);

/* How a number binds to SQL: an integral value binds as INTEGER (even when written 5.0), so this
 * sets *as_int and returns 1; any other value binds as REAL (returns 0). */
int message_param_is_integral(const message_param *p, long long *as_int);

/* The parameters as a JSON object (the task hash's `parametros`): a new string, freed with
 * cJSON_free(), or NULL when out of memory. Integral numbers are written as integers, others as
 * the CSV writes REALs, so that the value reads back exactly. */
char *message_params_json(const message *m);

#endif

/* message.h -- parsing and validation of one queue message (docs/protocol.md, "Message").
 *
 * message_parse() accepts exactly the messages that relatorios.protocol.parse_message accepts,
 * and rejects the others with the same reason, in the same order of checks. It allocates
 * nothing that outlives the call: a parsed message is plain data, copied into the struct. */
#ifndef RELATORIOS_MESSAGE_H
#define RELATORIOS_MESSAGE_H

#include <stddef.h>

#include "protocol.h"
#include "wk.h"

typedef enum { PARAM_NULL, PARAM_INT, PARAM_REAL, PARAM_TEXT } param_kind;

typedef struct {
    char name[PROTO_MAX_NAME + 1];
    param_kind kind;
    long long i; /* PARAM_INT: written as an integer in the message, |i| <= 2^53 */
    double d;    /* PARAM_REAL: written with a fraction or an exponent */
    char text[PROTO_MAX_PARAM_TEXT + 1]; /* PARAM_TEXT, NUL-terminated UTF-8 */
    size_t text_len;
} message_param;

typedef struct {
    char task_id[37];
    char tipo[PROTO_MAX_NAME + 1];
    char arquivo[128];
    char criado_em[4 * 64 + 1]; /* at most 64 code points, or empty when absent */
    int nparams;
    message_param params[PROTO_MAX_PARAMS];
    int has_task_id; /* set on failure too, when a valid task_id could be read */
    char errstr[WK_ERRSTR_LEN];
} message;

/* Parses `raw[0..len)`; `raw[len]` must be readable and '\0' (hiredis guarantees it for a
 * reply's string). Returns WK_OK with `m` filled in, or WK_ERR with the reason in m->errstr and
 * m->has_task_id / m->task_id set when the task could be identified. Never allocates memory that
 * survives the call; safe on any input (this is the function the fuzzer drives). */
int message_parse(message *m, const char *raw, size_t len);

/* How a parameter binds to SQL (relatorios.protocol.bind_value): an integral number within
 * +-2^53 binds as INTEGER, even when written 5.0. Sets *as_int and returns 1 in that case. */
int message_param_is_integral(const message_param *p, long long *as_int);

#endif

/* store.h -- the worker's Redis connection (hiredis, blocking) and the commands it sends.
 *
 * Commands are written as hiredis's redisCommand() writes them: a printf-style format where %s
 * is a C string, %b a binary string (a pointer, then its length as a size_t) and %d, %lld, %llu
 * numbers, e.g. store_run(s, "LREM %s 1 %b", key, raw, len). hiredis knows nothing of the
 * arguments' types: each conversion must get exactly the type it names.
 *
 * A store owns at most one connection. Any command that fails on the connection (I/O, EOF,
 * protocol, out of memory) drops it, so the next call starts by reconnecting: callers never hold
 * a broken context. Every reply is checked; every reply is freed here, except the one
 * store_command() hands out. */
#ifndef RELATORIOS_STORE_H
#define RELATORIOS_STORE_H

#include <hiredis/hiredis.h>

#include "config.h"
#include "wk.h"

typedef struct {
    redisContext *c; /* NULL while disconnected */
    const config *cfg;
    int pending; /* replies owed for the commands store_append() sent */
    int failed;  /* an append of the current batch failed: the batch fails as a whole */
    char errstr[WK_ERRSTR_LEN];
} store;

#define STORE_ABORTED 1 /* store_exec(): EXEC answered nil because a WATCHed key changed */

void store_init(store *s, const config *cfg);

/* Connects (dropping any previous connection), authenticates and selects the database.
 * Returns WK_OK, or WK_ERR with s->errstr set and no connection kept. */
int store_connect(store *s);

/* Connects if disconnected. Returns WK_OK or WK_ERR (s->errstr). */
int store_ensure(store *s);

/* Closes the connection, if any. */
void store_close(store *s);

/* Runs one command and returns its reply, which the caller frees with freeReplyObject(); or
 * NULL with s->errstr set on a connection error or an error reply (nothing to free). Not inside
 * a batch. */
redisReply *store_command(store *s, const char *fmt, ...);

/* Runs one command whose reply only has to be a success. Returns WK_OK or WK_ERR (s->errstr). */
int store_run(store *s, const char *fmt, ...);

/* Adds a command to the current batch: it is sent now and its reply read by store_flush() or
 * store_exec(), so a batch costs one round trip. A failure (the connection, memory) is
 * remembered, later appends of the batch do nothing, and store_flush()/store_exec() report it. */
void store_append(store *s, const char *fmt, ...);

/* Reads every reply of the batch, even after an error, so that the connection stays in step.
 * Returns WK_OK when every reply is a success, or WK_ERR with the first error in s->errstr. */
int store_flush(store *s);

/* Ends a transaction opened with store_append(s, "MULTI"): appends EXEC and reads every reply.
 * Returns WK_OK, STORE_ABORTED when EXEC answered nil (a WATCHed key changed: nothing was done),
 * or WK_ERR with the first error in s->errstr. */
int store_exec(store *s);

#endif

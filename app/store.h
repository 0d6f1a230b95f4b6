/* store.h -- the worker's Redis connection (hiredis, blocking) and the commands it sends.
 *
 * A store owns at most one connection. Any command that fails on the connection (I/O, EOF,
 * protocol) drops it, so the next call starts by reconnecting: callers never hold a broken
 * context. Every reply is checked and freed here, except the one store_pop() hands out. */
#ifndef RELATORIOS_STORE_H
#define RELATORIOS_STORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "config.h"
#include "wk.h"

#define STORE_MAX_ARGS 24

typedef struct {
    redisContext *c; /* NULL while disconnected */
    const config *cfg;
    char errstr[WK_ERRSTR_LEN];
} store;

/* One command as an argument vector (binary safe). Build it with store_cmd_init/arg/argf. */
typedef struct {
    int argc;
    const char *argv[STORE_MAX_ARGS];
    size_t argvlen[STORE_MAX_ARGS];
    char numbers[8][32]; /* storage for formatted arguments */
    int nnumbers;
} store_cmd;

void store_init(store *s, const config *cfg);

/* Connects (dropping any previous connection), authenticates and selects the database.
 * Returns WK_OK, or WK_ERR with s->errstr set and no connection kept. */
int store_connect(store *s);

/* Connects if disconnected. Returns WK_OK or WK_ERR (s->errstr). */
int store_ensure(store *s);

/* 1 while a connection is open. */
int store_connected(const store *s);

/* Closes the connection, if any. */
void store_close(store *s);

#define STORE_ABORTED 1 /* store_run(atomic): EXEC was refused because a WATCHed key changed */

/* BLMOVE <queue> <processing> RIGHT LEFT <timeout>: takes the next message into this worker's
 * processing list. Returns WK_OK with *reply set to the message (a string reply, freed by the
 * caller with freeReplyObject()), or NULL on timeout; WK_ERR (s->errstr) on a connection or
 * server error. */
int store_pop(store *s, const char *processing, redisReply **reply);

/* Runs one command and hands its reply to the caller (freed with freeReplyObject()). Returns
 * WK_OK, or WK_ERR (s->errstr; nothing to free) on a connection error or an error reply. */
int store_query(store *s, store_cmd *cmd, redisReply **reply);

void store_cmd_init(store_cmd *cmd);
void store_cmd_arg(store_cmd *cmd, const char *s);
void store_cmd_argn(store_cmd *cmd, const char *s, size_t n);
void store_cmd_argll(store_cmd *cmd, long long v);

/* Runs `n` commands in one round trip; inside MULTI/EXEC when `atomic`. Returns WK_OK when every
 * reply is a success, STORE_ABORTED when EXEC answered nil (a WATCHed key changed: nothing was
 * done), or WK_ERR with the first error in s->errstr. */
int store_run(store *s, store_cmd *cmds, int n, int atomic);

#endif

/* store.c -- see store.h. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>

#include "protocol.h"

void store_init(store *s, const config *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
}

void store_close(store *s) {
    if (s->c != NULL) redisFree(s->c);
    s->c = NULL;
    s->pending = 0;
}

/* Records the context's error and drops the connection: hiredis contexts do not recover. */
static int drop(store *s) {
    (void)wk_error(s->errstr, "%s",
                   s->c != NULL && s->c->errstr[0] ? s->c->errstr : "conexão perdida");
    store_close(s);
    return WK_ERR;
}

/* WK_ERR, with the server's message in s->errstr, for an error reply or an EXEC reply holding
 * one; WK_OK otherwise. */
static int check_reply(store *s, const redisReply *r) {
    if (r->type == REDIS_REPLY_ERROR) return wk_error(s->errstr, "%s", r->str);
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_ERROR)
                return wk_error(s->errstr, "%s", r->element[i]->str);
    return WK_OK;
}

int store_connect(store *s) {
    const config *cfg = s->cfg;
    store_close(s);
    struct timeval connect_timeout = {2, 0};
    s->c = cfg->redis_socket[0]
               ? redisConnectUnixWithTimeout(cfg->redis_socket, connect_timeout)
               : redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, connect_timeout);
    if (s->c == NULL) return wk_error(s->errstr, "memória insuficiente para a conexão");
    /* Replies may take the whole blocking pop's timeout; anything much slower is a dead server. */
    struct timeval io_timeout = {PROTO_POP_TIMEOUT_S + 10, 0};
    if (s->c->err || redisSetTimeout(s->c, io_timeout) != REDIS_OK ||
        (!cfg->redis_socket[0] && redisEnableKeepAlive(s->c) != REDIS_OK))
        return drop(s);
    if (cfg->redis_password[0] && cfg->redis_user[0])
        store_append(s, "AUTH %s %s", cfg->redis_user, cfg->redis_password);
    else if (cfg->redis_password[0])
        store_append(s, "AUTH %s", cfg->redis_password);
    if (cfg->redis_db != 0) store_append(s, "SELECT %d", cfg->redis_db);
    if (store_flush(s) != WK_OK) {
        store_close(s);
        return WK_ERR;
    }
    return WK_OK;
}

int store_ensure(store *s) { return s->c != NULL ? WK_OK : store_connect(s); }

static redisReply *vcommand(store *s, const char *fmt, va_list ap) {
    if (store_ensure(s) != WK_OK) return NULL;
    redisReply *r = redisvCommand(s->c, fmt, ap);
    if (r == NULL) {
        (void)drop(s);
        return NULL;
    }
    if (check_reply(s, r) != WK_OK) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *store_command(store *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcommand(s, fmt, ap);
    va_end(ap);
    return r;
}

int store_run(store *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcommand(s, fmt, ap);
    va_end(ap);
    freeReplyObject(r); /* accepts NULL */
    return r != NULL ? WK_OK : WK_ERR;
}

void store_append(store *s, const char *fmt, ...) {
    if (s->failed) return;
    if (s->pending == 0 && store_ensure(s) != WK_OK) {
        s->failed = 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(s->c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        (void)drop(s); /* the replies owed so far can no longer be matched to their commands */
        s->failed = 1;
        return;
    }
    s->pending++;
}

/* Reads the batch's replies; in a transaction (`atomic`) the last one is EXEC's. */
static int read_replies(store *s, int atomic) {
    int n = s->pending, rc = s->failed ? WK_ERR : WK_OK;
    s->pending = 0;
    s->failed = 0;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(s->c, &reply) != REDIS_OK) return drop(s);
        redisReply *r = reply;
        if (atomic && i == n - 1 && r->type == REDIS_REPLY_NIL && rc == WK_OK) rc = STORE_ABORTED;
        else if (rc == WK_OK) rc = check_reply(s, r); /* the first error is the one reported */
        freeReplyObject(r);
    }
    return rc;
}

int store_flush(store *s) { return read_replies(s, 0); }

int store_exec(store *s) {
    store_append(s, "EXEC");
    return read_replies(s, 1);
}

/* store.c -- see store.h. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "protocol.h"

void store_init(store *s, const config *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
}

int store_connected(const store *s) { return s->c != NULL; }

void store_close(store *s) {
    if (s->c != NULL) redisFree(s->c);
    s->c = NULL;
}

/* Records the context's error and drops the connection: hiredis contexts do not recover. */
static int drop(store *s) {
    snprintf(s->errstr, sizeof s->errstr, "%s",
             s->c != NULL && s->c->errstr[0] ? s->c->errstr : "conexão perdida");
    store_close(s);
    return WK_ERR;
}

/* Checks one reply: NULL means the connection failed, an error reply is the server's. Frees it. */
static int check_reply(store *s, redisReply *r) {
    if (r == NULL) return drop(s);
    int rc = WK_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->errstr, sizeof s->errstr, "%s", r->str);
        rc = WK_ERR;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && rc == WK_OK; i++)
            if (r->element[i]->type == REDIS_REPLY_ERROR) {
                snprintf(s->errstr, sizeof s->errstr, "%s", r->element[i]->str);
                rc = WK_ERR;
            }
    }
    freeReplyObject(r);
    return rc;
}

int store_connect(store *s) {
    const config *cfg = s->cfg;
    store_close(s);
    struct timeval connect_timeout = {2, 0};
    s->c = cfg->redis_socket[0]
               ? redisConnectUnixWithTimeout(cfg->redis_socket, connect_timeout)
               : redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, connect_timeout);
    if (s->c == NULL) {
        snprintf(s->errstr, sizeof s->errstr, "memória insuficiente para a conexão");
        return WK_ERR;
    }
    if (s->c->err) return drop(s);
    /* Replies may take the whole BRPOP timeout; anything much slower is a dead server. */
    struct timeval io_timeout = {PROTO_POP_TIMEOUT_S + 10, 0};
    if (redisSetTimeout(s->c, io_timeout) != REDIS_OK) return drop(s);
    if (!cfg->redis_socket[0] && redisEnableKeepAlive(s->c) != REDIS_OK) return drop(s);
    store_cmd cmd[2];
    int n = 0;
    if (cfg->redis_password[0]) {
        store_cmd_init(&cmd[n]);
        store_cmd_arg(&cmd[n], "AUTH");
        if (cfg->redis_user[0]) store_cmd_arg(&cmd[n], cfg->redis_user);
        store_cmd_arg(&cmd[n++], cfg->redis_password);
    }
    if (cfg->redis_db != 0) {
        store_cmd_init(&cmd[n]);
        store_cmd_arg(&cmd[n], "SELECT");
        store_cmd_argll(&cmd[n++], cfg->redis_db);
    }
    if (n > 0 && store_run(s, cmd, n, 0) != WK_OK) {
        store_close(s);
        return WK_ERR;
    }
    return WK_OK;
}

int store_ensure(store *s) { return s->c != NULL ? WK_OK : store_connect(s); }

int store_pop(store *s, const char *processing, redisReply **reply) {
    *reply = NULL;
    if (store_ensure(s) != WK_OK) return WK_ERR;
    store_cmd cmd;
    store_cmd_init(&cmd);
    const char *args[] = {"BLMOVE", s->cfg->queue, processing, "RIGHT", "LEFT"};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++) store_cmd_arg(&cmd, args[i]);
    store_cmd_argll(&cmd, PROTO_POP_TIMEOUT_S);
    redisReply *r = redisCommandArgv(s->c, cmd.argc, cmd.argv, cmd.argvlen);
    if (r == NULL) return drop(s);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return WK_OK;
    }
    if (r->type != REDIS_REPLY_STRING) {
        snprintf(s->errstr, sizeof s->errstr, "resposta inesperada ao BLMOVE: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "tipo errado");
        freeReplyObject(r);
        return WK_ERR;
    }
    *reply = r;
    return WK_OK;
}

int store_query(store *s, store_cmd *cmd, redisReply **reply) {
    *reply = NULL;
    if (store_ensure(s) != WK_OK) return WK_ERR;
    redisReply *r = redisCommandArgv(s->c, cmd->argc, cmd->argv, cmd->argvlen);
    if (r == NULL) return drop(s);
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->errstr, sizeof s->errstr, "%s", r->str);
        freeReplyObject(r);
        return WK_ERR;
    }
    *reply = r;
    return WK_OK;
}

void store_cmd_init(store_cmd *cmd) {
    cmd->argc = 0;
    cmd->nnumbers = 0;
}

void store_cmd_argn(store_cmd *cmd, const char *s, size_t n) {
    /* The commands are built by this program with known sizes: overflowing is a bug. */
    if (cmd->argc >= STORE_MAX_ARGS) return;
    cmd->argv[cmd->argc] = s;
    cmd->argvlen[cmd->argc++] = n;
}

void store_cmd_arg(store_cmd *cmd, const char *s) { store_cmd_argn(cmd, s, strlen(s)); }

void store_cmd_argll(store_cmd *cmd, long long v) {
    if (cmd->nnumbers >= 8) return;
    char *buf = cmd->numbers[cmd->nnumbers++];
    int n = snprintf(buf, sizeof cmd->numbers[0], "%lld", v);
    store_cmd_argn(cmd, buf, (size_t)n);
}

int store_run(store *s, store_cmd *cmds, int n, int atomic) {
    if (store_ensure(s) != WK_OK) return WK_ERR;
    static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    static const size_t multi_len[] = {5}, exec_len[] = {4};
    if (atomic && redisAppendCommandArgv(s->c, 1, multi, multi_len) != REDIS_OK) return drop(s);
    for (int i = 0; i < n; i++)
        if (redisAppendCommandArgv(s->c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) != REDIS_OK)
            return drop(s);
    if (atomic && redisAppendCommandArgv(s->c, 1, exec, exec_len) != REDIS_OK) return drop(s);
    int replies = n + (atomic ? 2 : 0), rc = WK_OK;
    /* Read every reply even after an error, so that the connection stays in step. */
    for (int i = 0; i < replies; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK) return drop(s);
        if (atomic && i == replies - 1 && ((redisReply *)r)->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return rc == WK_OK ? STORE_ABORTED : rc;
        }
        char keep[WK_ERRSTR_LEN];
        memcpy(keep, s->errstr, sizeof keep);
        if (check_reply(s, r) != WK_OK && rc == WK_OK) rc = WK_ERR;
        else if (rc == WK_ERR) memcpy(s->errstr, keep, sizeof keep);
    }
    return rc;
}

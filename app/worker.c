/* worker.c -- see worker.h. */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jsonout.h"
#include "log.h"
#include "protocol.h"

void worker_init(worker *w, const config *cfg, volatile sig_atomic_t *stopping,
                 volatile sig_atomic_t *pop_fd) {
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    store_init(&w->st, &w->cfg);
    if (gethostname(w->host, sizeof w->host) != 0) snprintf(w->host, sizeof w->host, "desconhecido");
    w->host[sizeof w->host - 1] = '\0';
    snprintf(w->id, sizeof w->id, "%s-%s-%ld", WORKER_KIND, w->host, (long)getpid());
    snprintf(w->processing, sizeof w->processing, KEY_PROCESSING_FMT, w->cfg.queue, w->id);
    clock_now_iso(w->started);
    w->backoff = PROTO_REDIS_BACKOFF_FIRST_S;
    w->stopping = stopping;
    w->pop_fd = pop_fd;
}

void worker_close(worker *w) { store_close(&w->st); }

int worker_heartbeat(worker *w, int force) {
    double now = clock_monotonic();
    if (!force && w->last_beat != 0 && now - w->last_beat < PROTO_HEARTBEAT_EVERY_S) return WK_OK;
    jsonout j;
    jsonout_init(&j);
    if (jsonout_heartbeat(&j, w->id, WORKER_KIND, (long)getpid(), w->host, w->started,
                          w->current) != WK_OK) {
        jsonout_free(&j);
        snprintf(w->st.errstr, sizeof w->st.errstr, "memória insuficiente");
        return WK_ERR;
    }
    char key[512];
    snprintf(key, sizeof key, KEY_WORKER_FMT, w->cfg.queue, w->id);
    store_cmd cmd;
    store_cmd_init(&cmd);
    store_cmd_arg(&cmd, "SET");
    store_cmd_arg(&cmd, key);
    store_cmd_argn(&cmd, j.buf, j.len);
    store_cmd_arg(&cmd, "EX");
    store_cmd_argll(&cmd, PROTO_HEARTBEAT_TTL_S);
    int rc = store_run(&w->st, &cmd, 1, 0);
    jsonout_free(&j);
    if (rc == WK_OK) w->last_beat = now;
    return rc;
}

void worker_backoff(worker *w) {
    log_warning(NULL, "Conexão com o Redis perdida (%s); nova tentativa em %.1fs", w->st.errstr,
                w->backoff);
    clock_sleep(w->backoff);
    w->backoff = w->backoff * 2 > PROTO_REDIS_BACKOFF_MAX_S ? PROTO_REDIS_BACKOFF_MAX_S : w->backoff * 2;
}

void worker_backoff_reset(worker *w) { w->backoff = PROTO_REDIS_BACKOFF_FIRST_S; }

worker_check_result worker_check(worker *w) {
    double now = clock_monotonic();
    if (*w->stopping) {
        if (w->deadline == 0) w->deadline = now + w->cfg.shutdown_deadline_s;
        if (now >= w->deadline) return CHECK_SHUTDOWN;
    }
    if (w->current == NULL || now - w->last_watch < PROTO_WATCH_EVERY_S) return CHECK_CONTINUE;
    w->last_watch = now;
    if (worker_heartbeat(w, 0) != WK_OK) return CHECK_CONTINUE; /* Redis away: keep working */
    char key[256];
    snprintf(key, sizeof key, KEY_TASK_FMT, w->cfg.queue, w->current);
    store_cmd cmd;
    store_cmd_init(&cmd);
    store_cmd_arg(&cmd, "HGET");
    store_cmd_arg(&cmd, key);
    store_cmd_arg(&cmd, F_STATUS);
    redisReply *r;
    if (store_query(&w->st, &cmd, &r) != WK_OK) return CHECK_CONTINUE;
    int cancelled = r->type == REDIS_REPLY_STRING && strcmp(r->str, STATUS_CANCELLED) == 0;
    freeReplyObject(r);
    return cancelled ? CHECK_CANCELLED : CHECK_CONTINUE;
}

/* Moves every message of one processing list back to the end of the queue taken next. */
static int requeue_all(worker *w, const char *key, const char *owner) {
    for (;;) {
        store_cmd cmd;
        store_cmd_init(&cmd);
        const char *args[] = {"LMOVE", key, w->cfg.queue, "RIGHT", "RIGHT"};
        for (size_t i = 0; i < sizeof args / sizeof *args; i++) store_cmd_arg(&cmd, args[i]);
        redisReply *r;
        if (store_query(&w->st, &cmd, &r) != WK_OK) return WK_ERR;
        if (r->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return WK_OK;
        }
        task_requeued(w, r->str, r->len, owner);
        freeReplyObject(r);
    }
}

/* 1 if the worker `owner` has a live heartbeat, 0 if not, -1 on a Redis error. */
static int is_alive(worker *w, const char *owner) {
    char key[512];
    snprintf(key, sizeof key, KEY_WORKER_FMT, w->cfg.queue, owner);
    store_cmd cmd;
    store_cmd_init(&cmd);
    store_cmd_arg(&cmd, "EXISTS");
    store_cmd_arg(&cmd, key);
    redisReply *r;
    if (store_query(&w->st, &cmd, &r) != WK_OK) return -1;
    int alive = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return alive;
}

int worker_recover(worker *w, int idle) {
    char pattern[300], prefix[256], cursor[32] = "0";
    snprintf(prefix, sizeof prefix, KEY_PROCESSING_FMT, w->cfg.queue, "");
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    do {
        store_cmd cmd;
        store_cmd_init(&cmd);
        const char *args[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "100"};
        for (size_t i = 0; i < sizeof args / sizeof *args; i++) store_cmd_arg(&cmd, args[i]);
        redisReply *r;
        if (store_query(&w->st, &cmd, &r) != WK_OK) return WK_ERR;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            snprintf(w->st.errstr, sizeof w->st.errstr, "resposta inesperada ao SCAN");
            return WK_ERR;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        int rc = WK_OK;
        for (size_t i = 0; i < r->element[1]->elements && rc == WK_OK; i++) {
            const char *key = r->element[1]->element[i]->str;
            const char *owner = key + strlen(prefix);
            int mine = strcmp(owner, w->id) == 0;
            if (mine && !idle) continue;
            if (!mine) {
                int alive = is_alive(w, owner);
                if (alive != 0) {
                    rc = alive < 0 ? WK_ERR : WK_OK;
                    continue;
                }
            }
            rc = requeue_all(w, key, owner);
        }
        freeReplyObject(r);
        if (rc != WK_OK) return WK_ERR;
    } while (strcmp(cursor, "0") != 0);
    return WK_OK;
}

static void log_waiting(const worker *w) {
    log_info(NULL, "Aguardando por tarefas na fila '%s' (Comando BRPOP)...", w->cfg.queue);
}

/* The blocking pop, which a stop signal may cut short by shutting its socket down. */
static int pop(worker *w, redisReply **reply) {
    *reply = NULL;
    if (store_ensure(&w->st) != WK_OK) return WK_ERR;
    *w->pop_fd = (sig_atomic_t)w->st.c->fd;
    int rc = *w->stopping ? WK_OK : store_pop(&w->st, w->processing, reply);
    *w->pop_fd = -1;
    return rc;
}

/* Heartbeat, and recovery when it is due. */
static int idle_tick(worker *w) {
    if (worker_heartbeat(w, 0) != WK_OK) return WK_ERR;
    double now = clock_monotonic();
    if (w->last_recover != 0 && now - w->last_recover < PROTO_RECOVER_EVERY_S) return WK_OK;
    if (worker_recover(w, 1) != WK_OK) return WK_ERR;
    w->last_recover = clock_monotonic();
    return WK_OK;
}

void worker_run(worker *w) {
    log_waiting(w);
    int lost = 0;
    while (!*w->stopping) {
        redisReply *reply = NULL;
        if (lost) w->last_recover = 0; /* leftovers of the outage go back first */
        if (idle_tick(w) != WK_OK || pop(w, &reply) != WK_OK) {
            if (*w->stopping) break; /* the stop signal closed the pop's socket */
            worker_backoff(w);
            lost = 1;
            continue;
        }
        if (lost) log_info(NULL, "Conexão com o Redis restabelecida");
        lost = 0;
        worker_backoff_reset(w);
        if (reply == NULL) continue; /* the pop timed out: heartbeat, signals, recovery */
        task_handle(w, reply->str, reply->len);
        freeReplyObject(reply);
        log_waiting(w);
    }
    char key[512];
    snprintf(key, sizeof key, KEY_WORKER_FMT, w->cfg.queue, w->id);
    store_cmd cmd;
    store_cmd_init(&cmd);
    store_cmd_arg(&cmd, "DEL");
    store_cmd_arg(&cmd, key);
    (void)store_run(&w->st, &cmd, 1, 0); /* the key expires anyway */
    log_info(NULL, "Encerrando.");
}

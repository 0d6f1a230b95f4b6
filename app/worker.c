/* worker.c -- see worker.h. */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "protocol.h"

void worker_init(worker *w, const config *cfg, volatile sig_atomic_t *stopping,
                 volatile sig_atomic_t *pop_fd) {
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    store_init(&w->st, &w->cfg);
    if (gethostname(w->host, sizeof w->host) != 0)
        snprintf(w->host, sizeof w->host, "desconhecido");
    w->host[sizeof w->host - 1] = '\0';
    snprintf(w->id, sizeof w->id, "%s-%s-%ld", WORKER_KIND, w->host, (long)getpid());
    snprintf(w->processing, sizeof w->processing, KEY_PROCESSING_FMT, w->cfg.queue, w->id);
    clock_now_iso(w->started);
    w->backoff = PROTO_REDIS_BACKOFF_FIRST_S;
    w->pop_timeout = PROTO_POP_TIMEOUT_S;
    w->stopping = stopping;
    w->pop_fd = pop_fd;
}

void worker_close(worker *w) { store_close(&w->st); }

/* The heartbeat of docs/protocol.md, as cJSON prints it; NULL when out of memory. */
static char *heartbeat_json(const worker *w) {
    cJSON *obj = cJSON_CreateObject();
    char *json = NULL;
    if (obj != NULL && cJSON_AddStringToObject(obj, BEAT_ID, w->id) &&
        cJSON_AddStringToObject(obj, BEAT_KIND, WORKER_KIND) &&
        cJSON_AddNumberToObject(obj, BEAT_PID, (double)getpid()) &&
        cJSON_AddStringToObject(obj, BEAT_HOST, w->host) &&
        cJSON_AddStringToObject(obj, BEAT_STARTED, w->started) &&
        (w->current ? cJSON_AddStringToObject(obj, BEAT_TASK, w->current)
                    : cJSON_AddNullToObject(obj, BEAT_TASK)))
        json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return json;
}

int worker_heartbeat(worker *w, int force) {
    double now = clock_monotonic();
    if (!force && w->last_beat != 0 && now - w->last_beat < PROTO_HEARTBEAT_EVERY_S) return WK_OK;
    char *json = heartbeat_json(w);
    if (json == NULL) return wk_error(w->st.errstr, "memória insuficiente");
    char key[512], workers[256];
    snprintf(key, sizeof key, KEY_WORKER_FMT, w->cfg.queue, w->id);
    snprintf(workers, sizeof workers, KEY_WORKERS_FMT, w->cfg.queue);
    store_append(&w->st, "SET %s %s EX %d", key, json, PROTO_HEARTBEAT_TTL_S);
    store_append(&w->st, "ZADD %s %lld %s", workers, clock_epoch_ms(), w->id);
    int rc = store_flush(&w->st);
    cJSON_free(json);
    if (rc == WK_OK) w->last_beat = now;
    return rc;
}

void worker_backoff(worker *w) {
    log_warning(NULL, "Conexão com o Redis perdida (%s); nova tentativa em %.1fs", w->st.errstr,
                w->backoff);
    clock_sleep(w->backoff);
    w->backoff = fmin(w->backoff * 2, PROTO_REDIS_BACKOFF_MAX_S);
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
    redisReply *r = store_command(&w->st, "HGET %s %s", key, F_STATUS);
    if (r == NULL) return CHECK_CONTINUE;
    int cancelled = r->type == REDIS_REPLY_STRING && strcmp(r->str, STATUS_CANCELLED) == 0;
    freeReplyObject(r);
    return cancelled ? CHECK_CANCELLED : CHECK_CONTINUE;
}

/* Moves every message of one processing list back to the end of the queue taken next. */
static int requeue_all(worker *w, const char *key, const char *owner) {
    for (;;) {
        redisReply *r = store_command(&w->st, "LMOVE %s %s RIGHT RIGHT", key, w->cfg.queue);
        if (r == NULL) return WK_ERR;
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
    redisReply *r = store_command(&w->st, "EXISTS %s", key);
    if (r == NULL) return -1;
    int alive = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return alive;
}

/* Recovers the processing list of `owner` (its key `key`) unless it is ours while busy or its
 * owner is alive; a dead owner leaves the registry once its list is empty. */
static int recover_owner(worker *w, const char *key, const char *owner, int idle) {
    int mine = strcmp(owner, w->id) == 0;
    if (mine && !idle) return WK_OK;
    if (!mine) {
        int alive = is_alive(w, owner);
        if (alive != 0) return alive < 0 ? WK_ERR : WK_OK;
    }
    if (requeue_all(w, key, owner) != WK_OK) return WK_ERR;
    if (mine) return WK_OK;
    char workers[256];
    snprintf(workers, sizeof workers, KEY_WORKERS_FMT, w->cfg.queue);
    return store_run(&w->st, "ZREM %s %s", workers, owner);
}

/* Every processing list found by SCAN: also those of workers that never registered. */
static int recover_scan(worker *w, int idle) {
    char pattern[300], prefix[256], cursor[32] = "0";
    snprintf(prefix, sizeof prefix, KEY_PROCESSING_FMT, w->cfg.queue, "");
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    do {
        redisReply *r = store_command(&w->st, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (r == NULL) return WK_ERR;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return wk_error(w->st.errstr, "resposta inesperada ao SCAN");
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        int rc = WK_OK;
        for (size_t i = 0; i < r->element[1]->elements && rc == WK_OK; i++) {
            const char *key = r->element[1]->element[i]->str;
            rc = recover_owner(w, key, key + strlen(prefix), idle);
        }
        freeReplyObject(r);
        if (rc != WK_OK) return WK_ERR;
    } while (strcmp(cursor, "0") != 0);
    return WK_OK;
}

/* The processing lists of the workers in the registry Q:trabalhadores: no scan of the keyspace,
 * whatever the number of tasks recorded. */
static int recover_registry(worker *w, int idle) {
    char workers[256];
    snprintf(workers, sizeof workers, KEY_WORKERS_FMT, w->cfg.queue);
    redisReply *r = store_command(&w->st, "ZRANGE %s 0 -1", workers);
    if (r == NULL) return WK_ERR;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return wk_error(w->st.errstr, "resposta inesperada ao ZRANGE");
    }
    int rc = WK_OK;
    for (size_t i = 0; i < r->elements && rc == WK_OK; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) continue;
        const char *owner = r->element[i]->str;
        char key[512];
        snprintf(key, sizeof key, KEY_PROCESSING_FMT, w->cfg.queue, owner);
        rc = recover_owner(w, key, owner, idle);
    }
    freeReplyObject(r);
    return rc;
}

int worker_recover(worker *w, int idle) {
    /* At start-up and after an outage, a scan also finds the lists of unregistered workers. */
    return w->last_recover == 0 ? recover_scan(w, idle) : recover_registry(w, idle);
}

static void log_waiting(const worker *w) {
    log_info(NULL, "Aguardando por tarefas na fila '%s' (Comando BRPOP)...", w->cfg.queue);
}

/* BLMOVE <queue> <processing> RIGHT LEFT <timeout>: the next message, taken into this worker's
 * processing list. Returns WK_OK with *reply set to the message (a string reply, freed by the
 * caller), or to NULL on timeout or when stopping; WK_ERR (w->st.errstr) on an error. A stop
 * signal may cut the pop short by shutting its socket down. */
static int pop(worker *w, redisReply **reply) {
    *reply = NULL;
    if (store_ensure(&w->st) != WK_OK) return WK_ERR;
    *w->pop_fd = (sig_atomic_t)w->st.c->fd;
    redisReply *r = *w->stopping ? NULL
                                 : store_command(&w->st, "BLMOVE %s %s RIGHT LEFT %.3f",
                                                 w->cfg.queue, w->processing, w->pop_timeout);
    *w->pop_fd = -1;
    if (r == NULL) return *w->stopping ? WK_OK : WK_ERR;
    int type = r->type;
    if (type == REDIS_REPLY_STRING) *reply = r;
    else freeReplyObject(r);
    if (type != REDIS_REPLY_STRING && type != REDIS_REPLY_NIL)
        return wk_error(w->st.errstr, "resposta inesperada ao BLMOVE");
    return WK_OK;
}

/* Due retries go to the queue (docs/protocol.md, "Delayed retries"), and the next pop blocks no
 * longer than until the next one is due. */
static int move_retries(worker *w) {
    char retries[256];
    snprintf(retries, sizeof retries, KEY_RETRIES_FMT, w->cfg.queue);
    redisReply *r = store_command(&w->st, "EVAL %s 2 %s %s %d", PROTO_MOVE_DUE_RETRIES_LUA, retries,
                                  w->cfg.queue, PROTO_RETRY_MOVE_BATCH);
    if (r == NULL) return WK_ERR;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_INTEGER;
    long long wait_ms = ok ? r->element[1]->integer : -1;
    freeReplyObject(r);
    if (!ok) return wk_error(w->st.errstr, "resposta inesperada ao mover tentativas adiadas");
    w->pop_timeout = wait_ms < 0 ? PROTO_POP_TIMEOUT_S
                                 : fmin(PROTO_POP_TIMEOUT_S, fmax((double)wait_ms / 1000, 0.01));
    return WK_OK;
}

/* Heartbeat, recovery when it is due, and due retries to the queue. */
static int idle_tick(worker *w) {
    if (worker_heartbeat(w, 0) != WK_OK) return WK_ERR;
    double now = clock_monotonic();
    if (w->last_recover == 0 || now - w->last_recover >= PROTO_RECOVER_EVERY_S) {
        if (worker_recover(w, 1) != WK_OK) return WK_ERR;
        w->last_recover = clock_monotonic();
    }
    return move_retries(w);
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
    char key[512], workers[256];
    snprintf(key, sizeof key, KEY_WORKER_FMT, w->cfg.queue, w->id);
    snprintf(workers, sizeof workers, KEY_WORKERS_FMT, w->cfg.queue);
    store_append(&w->st, "DEL %s", key); /* the key expires anyway */
    store_append(&w->st, "ZREM %s %s", workers, w->id);
    (void)store_flush(&w->st);
    log_info(NULL, "Encerrando.");
}

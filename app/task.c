/* task.c -- one message, from the processing list to a final state in the task hash
 * (docs/protocol.md, "One message"). Same steps, texts and Redis writes as the Python worker's
 * relatorios/worker/loop.py and state.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "jsonout.h"
#include "log.h"
#include "protocol.h"
#include "worker.h"

typedef enum { RECORDED = 1, ALREADY_FINAL = 0, NOT_RECORDED = -1 } record_result;

static void task_key(const worker *w, const char *task_id, char *key, size_t n) {
    snprintf(key, n, KEY_TASK_FMT, w->cfg.queue, task_id);
}

static void cmd_args(store_cmd *c, const char *const *args, size_t n) {
    store_cmd_init(c);
    for (size_t i = 0; i < n; i++) store_cmd_arg(c, args[i]);
}

static void cmd_lrem(store_cmd *c, const worker *w, const char *raw, size_t len) {
    const char *args[] = {"LREM", w->processing, "1"};
    cmd_args(c, args, 3);
    store_cmd_argn(c, raw, len);
}

/* HGET <key> <field> into out (empty when missing). WK_OK or WK_ERR. */
static int hget(worker *w, const char *key, const char *field, char *out, size_t n) {
    store_cmd c;
    const char *args[] = {"HGET", key, field};
    cmd_args(&c, args, 3);
    redisReply *r;
    if (store_query(&w->st, &c, &r) != WK_OK) return WK_ERR;
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return WK_OK;
}

static int is_final(const char *status) {
    return strcmp(status, STATUS_DONE) == 0 || strcmp(status, STATUS_FAILED) == 0 ||
           strcmp(status, STATUS_CANCELLED) == 0 || strcmp(status, STATUS_EXPIRED) == 0;
}

typedef struct {
    const char *status; /* STATUS_DONE, STATUS_FAILED or STATUS_CANCELLED */
    const char *error;  /* `erro`, or NULL */
    uint64_t rows, bytes;
    const char *output; /* the file this attempt wrote, removed if the task was cancelled */
} final_state;

/* One conditional write (WATCH/MULTI/EXEC) of a final state with the release of the message. */
static int record_once(worker *w, const char *task_id, const char *raw, size_t len,
                       const final_state *f, record_result *result) {
    char key[256], stats[256], now[CLOCK_ISO_LEN], current[64];
    task_key(w, task_id, key, sizeof key);
    snprintf(stats, sizeof stats, KEY_STATS_FMT, w->cfg.queue);
    store_cmd c[8];
    const char *watch[] = {"WATCH", key};
    cmd_args(&c[0], watch, 2);
    if (store_run(&w->st, c, 1, 0) != WK_OK) return WK_ERR;
    if (hget(w, key, F_STATUS, current, sizeof current) != WK_OK) return WK_ERR;
    cmd_lrem(&c[0], w, raw, len);
    int n = 1;
    if (!is_final(current)) {
        clock_now_iso(now);
        const char *hset[] = {"HSET", key, F_STATUS, f->status, F_FINISHED, now, F_WORKER, w->id};
        cmd_args(&c[n], hset, 8);
        if (strcmp(f->status, STATUS_CANCELLED) == 0) {
            store_cmd_arg(&c[n], F_CANCELLED);
            store_cmd_arg(&c[n], now);
        }
        if (f->error) {
            store_cmd_arg(&c[n], F_ERROR);
            store_cmd_arg(&c[n], f->error);
        }
        if (strcmp(f->status, STATUS_DONE) == 0) {
            store_cmd_arg(&c[n], F_ROWS);
            store_cmd_argll(&c[n], (long long)f->rows);
            store_cmd_arg(&c[n], F_BYTES);
            store_cmd_argll(&c[n], (long long)f->bytes);
        }
        n++;
        const char *hdel[] = {"HDEL", key, F_NEXT_ATTEMPT};
        cmd_args(&c[n++], hdel, 3);
        const char *expire[] = {"EXPIRE", key};
        cmd_args(&c[n], expire, 2);
        store_cmd_argll(&c[n++], (long long)(w->cfg.retention_days * 86400) + PROTO_RECORD_GRACE_S);
        const char *outcome = strcmp(f->status, STATUS_DONE) == 0     ? STAT_DONE
                              : strcmp(f->status, STATUS_FAILED) == 0 ? STAT_FAILED
                                                                      : STAT_CANCELLED;
        const char *counters[3] = {outcome, STAT_ROWS, STAT_BYTES};
        long long values[3] = {1, (long long)f->rows, (long long)f->bytes};
        for (int i = 0; i < 3; i++) {
            const char *incr[] = {"HINCRBY", stats, counters[i]};
            cmd_args(&c[n], incr, 3);
            store_cmd_argll(&c[n++], values[i]);
        }
    }
    int rc = store_run(&w->st, c, n, 1);
    if (rc != WK_OK) return rc; /* WK_ERR or STORE_ABORTED */
    if (is_final(current)) {
        if (strcmp(current, STATUS_CANCELLED) == 0 && f->output) (void)unlink(f->output);
        *result = ALREADY_FINAL;
    } else {
        *result = RECORDED;
    }
    return WK_OK;
}

/* Records a final state, retrying while Redis is away (the file is already complete). When it
 * cannot, the message stays in the processing list and recovery runs the task again later. */
static record_result record(worker *w, const char *task_id, const char *raw, size_t len,
                            const final_state *f) {
    double backoff = PROTO_REDIS_BACKOFF_FIRST_S;
    for (int attempt = 0; attempt < PROTO_FINAL_WRITE_ATTEMPTS;) {
        record_result result = NOT_RECORDED;
        int rc = record_once(w, task_id, raw, len, f, &result);
        if (rc == WK_OK) return result;
        if (rc == STORE_ABORTED) continue; /* the task changed meanwhile: read it again */
        log_warning(task_id, "Redis indisponível ao registrar %s (%s); nova tentativa", task_id,
                    w->st.errstr);
        clock_sleep(backoff);
        backoff = backoff * 2 > PROTO_REDIS_BACKOFF_MAX_S ? PROTO_REDIS_BACKOFF_MAX_S : backoff * 2;
        attempt++;
    }
    return NOT_RECORDED;
}

static int release(worker *w, const char *raw, size_t len) {
    store_cmd c;
    cmd_lrem(&c, w, raw, len);
    return store_run(&w->st, &c, 1, 0);
}

static int dead_letter(worker *w, const char *raw, size_t len, const char *reason,
                       const char *task_id) {
    char now[CLOCK_ISO_LEN], dead[256];
    clock_now_iso(now);
    snprintf(dead, sizeof dead, KEY_DEAD_FMT, w->cfg.queue);
    jsonout j;
    jsonout_init(&j);
    if (jsonout_dead_letter(&j, task_id, reason, raw, len, now, w->id) != WK_OK) {
        jsonout_free(&j);
        snprintf(w->st.errstr, sizeof w->st.errstr, "memória insuficiente");
        return WK_ERR;
    }
    store_cmd c[2];
    const char *lpush[] = {"LPUSH", dead};
    cmd_args(&c[0], lpush, 2);
    store_cmd_argn(&c[0], j.buf, j.len);
    const char *ltrim[] = {"LTRIM", dead, "0"};
    cmd_args(&c[1], ltrim, 3);
    store_cmd_argll(&c[1], PROTO_DEAD_LETTERS_KEPT - 1);
    int rc = store_run(&w->st, c, 2, 1);
    jsonout_free(&j);
    return rc;
}

static void fail(worker *w, const char *task_id, const char *raw, size_t len, const char *error) {
    log_error(task_id, "Falha na tarefa (task_id=%s): %s", task_id, error);
    final_state f = {STATUS_FAILED, error, 0, 0, NULL};
    (void)record(w, task_id, raw, len, &f);
}

static void give_up(worker *w, const char *task_id, const char *raw, size_t len,
                    const char *error) {
    if (dead_letter(w, raw, len, error, task_id) != WK_OK) return; /* recovery retries it */
    fail(w, task_id, raw, len, error);
}

static void reject(worker *w, const message *m, const char *raw, size_t len) {
    log_warning(m->has_task_id ? m->task_id : NULL, "Mensagem inválida descartada: %s",
                m->errstr);
    char stats[256];
    snprintf(stats, sizeof stats, KEY_STATS_FMT, w->cfg.queue);
    store_cmd c;
    const char *incr[] = {"HINCRBY", stats, STAT_INVALID, "1"};
    cmd_args(&c, incr, 4);
    if (store_run(&w->st, &c, 1, 0) != WK_OK) return;
    if (dead_letter(w, raw, len, m->errstr, m->has_task_id ? m->task_id : NULL) != WK_OK) return;
    if (m->has_task_id) {
        char error[WK_ERRSTR_LEN + 32];
        snprintf(error, sizeof error, "mensagem inválida: %s", m->errstr);
        fail(w, m->task_id, raw, len, error);
    } else {
        (void)release(w, raw, len);
    }
}

/* ---- one attempt ---- */

typedef struct {
    worker *w;
    char key[256];
    worker_check_result why; /* why the tick stopped the query */
} run_ctx;

static int on_tick(void *ud) {
    run_ctx *p = ud;
    p->why = worker_check(p->w);
    return p->why != CHECK_CONTINUE;
}

/* Progress is advisory: a lost connection must not stop a report that is being written. */
static void on_progress(void *ud, uint64_t rows, uint64_t bytes) {
    run_ctx *p = ud;
    store_cmd c;
    const char *hset[] = {"HSET", p->key, F_ROWS};
    cmd_args(&c, hset, 3);
    store_cmd_argll(&c, (long long)rows);
    store_cmd_arg(&c, F_BYTES);
    store_cmd_argll(&c, (long long)bytes);
    (void)store_run(&p->w->st, &c, 1, 0);
}

static int mark_running(worker *w, const message *m, const char *key) {
    jsonout params;
    jsonout_init(&params);
    if (jsonout_params(&params, m) != WK_OK) {
        jsonout_free(&params);
        snprintf(w->st.errstr, sizeof w->st.errstr, "memória insuficiente");
        return WK_ERR;
    }
    char tasks[256], now[CLOCK_ISO_LEN];
    clock_now_iso(now);
    snprintf(tasks, sizeof tasks, KEY_TASKS_FMT, w->cfg.queue);
    store_cmd c[2];
    const char *zadd[] = {"ZADD", tasks, "NX"};
    cmd_args(&c[0], zadd, 3);
    store_cmd_argll(&c[0], clock_epoch_ms());
    store_cmd_arg(&c[0], m->task_id);
    const char *hset[] = {"HSET", key, F_STATUS, STATUS_RUNNING, F_TYPE, m->tipo, F_FILE,
                          m->arquivo, F_STARTED, now, F_WORKER, w->id, F_ROWS, "0", F_BYTES, "0"};
    cmd_args(&c[1], hset, sizeof hset / sizeof *hset);
    store_cmd_arg(&c[1], F_PARAMS);
    store_cmd_argn(&c[1], params.buf, params.len);
    int rc = store_run(&w->st, c, 2, 0);
    jsonout_free(&params);
    if (rc == WK_OK) (void)worker_heartbeat(w, 1);
    return rc;
}

/* Runs the report once. Returns WK_OK with rows/bytes, or WK_ERR with job->errstr, transient
 * and *why (the reason a tick stopped it) set. */
static int run_once(worker *w, const message *m, run_ctx *ctx, export_job *job, uint64_t *rows,
                    uint64_t *bytes) {
    ctx->why = CHECK_CONTINUE;
    int rc = export_prepare(job, &w->cfg, m);
    if (rc == WK_OK) {
        log_info(m->task_id, "Executando consulta SQL pesada... (task_id=%s)", m->task_id);
        rc = export_stream(job, &w->cfg, m->arquivo, on_progress, on_tick, ctx, rows, bytes);
    }
    export_close(job);
    return rc;
}

/* Waits before the next attempt, watching for cancellation and shutdown. */
static worker_check_result retry_later(worker *w, const message *m, const char *key, long attempt,
                                       const char *error) {
    double delay = w->cfg.retry_base_s;
    for (long i = 1; i < attempt && delay < PROTO_RETRY_MAX_DELAY_S; i++) delay *= 2;
    if (delay > PROTO_RETRY_MAX_DELAY_S) delay = PROTO_RETRY_MAX_DELAY_S;
    char next_at[CLOCK_ISO_LEN];
    clock_iso_in(delay, next_at);
    store_cmd c;
    const char *hset[] = {"HSET", key, F_ERROR, error, F_NEXT_ATTEMPT, next_at};
    cmd_args(&c, hset, 6);
    (void)store_run(&w->st, &c, 1, 0);
    log_warning(m->task_id,
                "Falha temporária (task_id=%s, tentativa=%ld): %s; nova tentativa em %.1fs",
                m->task_id, attempt, error, delay);
    double end = clock_monotonic() + delay;
    while (clock_monotonic() < end) {
        if (*w->stopping) return CHECK_SHUTDOWN;
        worker_check_result why = worker_check(w);
        if (why != CHECK_CONTINUE) return why;
        double left = end - clock_monotonic();
        clock_sleep(left < 0.1 ? (left > 0 ? left : 0) : 0.1);
    }
    return CHECK_CONTINUE;
}

/* Shutdown past the deadline: the task goes back to the queue, next in line. */
static void put_back(worker *w, const message *m, const char *key, const char *raw, size_t len) {
    store_cmd c[4];
    const char *hset[] = {"HSET", key, F_STATUS, STATUS_QUEUED};
    cmd_args(&c[0], hset, 4);
    const char *decr[] = {"HINCRBY", key, F_ATTEMPTS, "-1"};
    cmd_args(&c[1], decr, 4);
    cmd_lrem(&c[2], w, raw, len);
    const char *rpush[] = {"RPUSH", w->cfg.queue};
    cmd_args(&c[3], rpush, 2);
    store_cmd_argn(&c[3], raw, len);
    (void)store_run(&w->st, c, 4, 1); /* if Redis is away, recovery puts it back */
    log_info(m->task_id, "Tarefa devolvida à fila no desligamento (task_id=%s)", m->task_id);
}

static void interrupted(worker *w, const message *m, const char *key, const char *raw, size_t len,
                        worker_check_result why) {
    if (why == CHECK_CANCELLED) {
        final_state f = {STATUS_CANCELLED, NULL, 0, 0, NULL};
        (void)record(w, m->task_id, raw, len, &f);
        log_info(m->task_id, "Tarefa cancelada (task_id=%s)", m->task_id);
    } else {
        put_back(w, m, key, raw, len);
    }
}

static void done(worker *w, const message *m, const char *raw, size_t len, uint64_t rows,
                 uint64_t bytes) {
    char output[4096];
    snprintf(output, sizeof output, "%s/%s", w->cfg.export_dir, m->arquivo);
    final_state f = {STATUS_DONE, NULL, rows, bytes, output};
    record_result r = record(w, m->task_id, raw, len, &f);
    if (r == RECORDED)
        log_info(m->task_id,
                 "Relatório gerado com sucesso! (task_id=%s, arquivo=%s, linhas=%llu, bytes=%llu)",
                 m->task_id, m->arquivo, (unsigned long long)rows, (unsigned long long)bytes);
    else if (r == ALREADY_FINAL)
        log_info(m->task_id, "Tarefa já finalizada por outro caminho (task_id=%s)", m->task_id);
}

/* Attempts until the task reaches a final state or goes back to the queue. */
static void attempts(worker *w, const message *m, const char *raw, size_t len) {
    run_ctx ctx = {.w = w};
    task_key(w, m->task_id, ctx.key, sizeof ctx.key);
    long limit = w->cfg.max_attempts;
    for (;;) {
        store_cmd c;
        const char *incr[] = {"HINCRBY", ctx.key, F_ATTEMPTS, "1"};
        cmd_args(&c, incr, 4);
        redisReply *r;
        if (store_query(&w->st, &c, &r) != WK_OK) return; /* stays in the processing list */
        long attempt = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 1;
        freeReplyObject(r);
        char error[WK_ERRSTR_LEN + 64];
        if (attempt > limit) {
            char last[WK_ERRSTR_LEN];
            if (hget(w, ctx.key, F_ERROR, last, sizeof last) != WK_OK) return;
            snprintf(error, sizeof error, "tentativas esgotadas (%ld): %s", limit,
                     last[0] ? last : "o worker parou durante a tarefa");
            give_up(w, m->task_id, raw, len, error);
            return;
        }
        if (mark_running(w, m, ctx.key) != WK_OK) return;
        export_job job;
        uint64_t rows = 0, bytes = 0;
        if (run_once(w, m, &ctx, &job, &rows, &bytes) == WK_OK) {
            done(w, m, raw, len, rows, bytes);
            return;
        }
        if (job.interrupted && ctx.why != CHECK_CONTINUE) {
            interrupted(w, m, ctx.key, raw, len, ctx.why);
            return;
        }
        if (!job.transient) {
            fail(w, m->task_id, raw, len, job.errstr);
            return;
        }
        if (attempt >= limit) {
            snprintf(error, sizeof error, "tentativas esgotadas (%ld): %s", limit, job.errstr);
            give_up(w, m->task_id, raw, len, error);
            return;
        }
        worker_check_result why = retry_later(w, m, ctx.key, attempt, job.errstr);
        if (why != CHECK_CONTINUE) {
            interrupted(w, m, ctx.key, raw, len, why);
            return;
        }
    }
}

void task_handle(worker *w, const char *raw, size_t len) {
    message *m = &w->msg;
    if (message_parse(m, raw, len) != WK_OK) {
        reject(w, m, raw, len);
        return;
    }
    char key[256], status[64];
    task_key(w, m->task_id, key, sizeof key);
    if (hget(w, key, F_STATUS, status, sizeof status) != WK_OK) return;
    if (is_final(status)) {
        log_info(m->task_id, "Tarefa ignorada (task_id=%s, status=%s)", m->task_id, status);
        (void)release(w, raw, len);
        return;
    }
    log_info(m->task_id, "Nova tarefa recebida (task_id=%s, tipo=%s)", m->task_id, m->tipo);
    w->current = m->task_id;
    w->last_watch = 0;
    attempts(w, m, raw, len);
    w->current = NULL;
}

void task_requeued(worker *w, const char *raw, size_t len, const char *owner) {
    message *m = &w->msg;
    (void)message_parse(m, raw, len);
    const char *task_id = m->has_task_id ? m->task_id : NULL;
    log_warning(task_id, "Tarefa recuperada de worker morto (task_id=%s, worker=%s)",
                task_id ? task_id : "None", owner);
    if (!m->has_task_id) return;
    char key[256], status[64];
    task_key(w, m->task_id, key, sizeof key);
    store_cmd c;
    const char *watch[] = {"WATCH", key};
    cmd_args(&c, watch, 2);
    if (store_run(&w->st, &c, 1, 0) != WK_OK) return;
    if (hget(w, key, F_STATUS, status, sizeof status) != WK_OK) return;
    if (strcmp(status, STATUS_RUNNING) == 0) {
        const char *hset[] = {"HSET", key, F_STATUS, STATUS_QUEUED};
        cmd_args(&c, hset, 4);
        (void)store_run(&w->st, &c, 1, 1); /* aborted: someone else's write stands */
    } else {
        const char *unwatch[] = {"UNWATCH"};
        cmd_args(&c, unwatch, 1);
        (void)store_run(&w->st, &c, 1, 0);
    }
}

/* task.c -- one message, from the processing list to a final state in the task hash
 * (docs/protocol.md, "One message"). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "log.h"
#include "protocol.h"
#include "utf8.h"
#include "worker.h"

typedef enum { RECORDED = 1, ALREADY_FINAL = 0, NOT_RECORDED = -1 } record_result;

static void task_key(const worker *w, const char *task_id, char *key, size_t n) {
    snprintf(key, n, KEY_TASK_FMT, w->cfg.queue, task_id);
}

/* HGET <key> <field> into out (empty when missing), as valid UTF-8 whoever wrote it.
 * WK_OK or WK_ERR. */
static int hget(worker *w, const char *key, const char *field, char *out, size_t n) {
    redisReply *r = store_command(&w->st, "HGET %s %s", key, field);
    if (r == NULL) return WK_ERR;
    char *text = r->type == REDIS_REPLY_STRING ? utf8_clean(r->str, r->len) : NULL;
    snprintf(out, n, "%s", text != NULL ? text : "");
    free(text);
    freeReplyObject(r);
    return WK_OK;
}

static int is_final(const char *status) {
    return strcmp(status, STATUS_DONE) == 0 || strcmp(status, STATUS_FAILED) == 0 ||
           strcmp(status, STATUS_CANCELLED) == 0 || strcmp(status, STATUS_EXPIRED) == 0;
}

typedef struct {
    const char *status; /* STATUS_DONE, STATUS_FAILED or STATUS_CANCELLED */
    const char *code;   /* `erro_codigo`, or NULL */
    const char *error;  /* `erro`, or NULL */
    uint64_t rows, bytes;
    const char *output; /* the file this attempt wrote, removed if the task was cancelled */
} final_state;

/* Appends the EVAL of PROTO_INDEX_STATUS_SCRIPT that moves `task_id` to the status index of
 * `status` (docs/protocol.md, "Status indexes"): with every status write, in its transaction. */
static void append_index_status(worker *w, const char *task_id, const char *status) {
    char tasks[256], prefix[256];
    snprintf(tasks, sizeof tasks, KEY_TASKS_FMT, w->cfg.queue);
    snprintf(prefix, sizeof prefix, KEY_BY_STATUS_FMT, w->cfg.queue, "");
    store_append(&w->st, "EVAL %s 1 %s %s %s %s", PROTO_INDEX_STATUS_SCRIPT, tasks, prefix,
                 task_id, status);
}

/* The writes of a final state, inside the caller's MULTI. */
static void append_final(worker *w, const char *task_id, const char *key, const final_state *f) {
    store *s = &w->st;
    char now[CLOCK_ISO_LEN], stats[256];
    clock_now_iso(now);
    snprintf(stats, sizeof stats, KEY_STATS_FMT, w->cfg.queue);
    int done = strcmp(f->status, STATUS_DONE) == 0;
    int cancelled = strcmp(f->status, STATUS_CANCELLED) == 0;
    store_append(s, "HSET %s %s %s %s %s %s %s", key, F_STATUS, f->status, F_FINISHED, now,
                 F_WORKER, w->id);
    append_index_status(w, task_id, f->status);
    if (cancelled)
        store_append(s, "HSET %s %s %s %s %s", key, F_CANCELLED, now, F_ERROR_CODE, ERR_CANCELLED);
    if (f->error != NULL)
        store_append(s, "HSET %s %s %s %s %s", key, F_ERROR, f->error, F_ERROR_CODE, f->code);
    unsigned long long rows = done ? f->rows : 0, bytes = done ? f->bytes : 0;
    if (done) store_append(s, "HSET %s %s %llu %s %llu", key, F_ROWS, rows, F_BYTES, bytes);
    store_append(s, "HDEL %s %s", key, F_NEXT_ATTEMPT);
    store_append(s, "EXPIRE %s %lld", key,
                 (long long)(w->cfg.retention_days * 86400) + PROTO_RECORD_GRACE_S);
    store_append(s, "HINCRBY %s %s 1", stats,
                 done ? STAT_DONE : cancelled ? STAT_CANCELLED : STAT_FAILED);
    store_append(s, "HINCRBY %s %s %llu", stats, STAT_ROWS, rows);
    store_append(s, "HINCRBY %s %s %llu", stats, STAT_BYTES, bytes);
}

/* One conditional write (WATCH/MULTI/EXEC) of a final state with the release of the message.
 * Returns WK_OK (*result set), STORE_ABORTED or WK_ERR. */
static int record_once(worker *w, const char *task_id, const char *raw, size_t len,
                       const final_state *f, record_result *result) {
    char key[256], current[64];
    task_key(w, task_id, key, sizeof key);
    if (store_run(&w->st, "WATCH %s", key) != WK_OK ||
        hget(w, key, F_STATUS, current, sizeof current) != WK_OK)
        return WK_ERR;
    int final = is_final(current);
    store_append(&w->st, "MULTI");
    store_append(&w->st, "LREM %s 1 %b", w->processing, raw, len);
    if (!final) append_final(w, task_id, key, f);
    int rc = store_exec(&w->st);
    if (rc != WK_OK) return rc;
    if (final && strcmp(current, STATUS_CANCELLED) == 0 && f->output) (void)unlink(f->output);
    *result = final ? ALREADY_FINAL : RECORDED;
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
        backoff = fmin(backoff * 2, PROTO_REDIS_BACKOFF_MAX_S);
        attempt++;
    }
    return NOT_RECORDED;
}

static int release(worker *w, const char *raw, size_t len) {
    return store_run(&w->st, "LREM %s 1 %b", w->processing, raw, len);
}

/* The dead letter of docs/protocol.md, as cJSON prints it; NULL when out of memory. */
static char *dead_letter_json(const worker *w, const char *raw, size_t len, const char *reason,
                              const char *task_id) {
    char now[CLOCK_ISO_LEN];
    clock_now_iso(now);
    size_t shown = len < PROTO_DEAD_LETTER_EXCERPT ? len : PROTO_DEAD_LETTER_EXCERPT;
    char *excerpt = utf8_clean(raw, shown);
    cJSON *obj = cJSON_CreateObject();
    char *json = NULL;
    if (excerpt != NULL && obj != NULL &&
        (task_id ? cJSON_AddStringToObject(obj, DEAD_TASK_ID, task_id)
                 : cJSON_AddNullToObject(obj, DEAD_TASK_ID)) &&
        cJSON_AddStringToObject(obj, DEAD_REASON, reason) &&
        cJSON_AddStringToObject(obj, DEAD_MESSAGE, excerpt) &&
        cJSON_AddNumberToObject(obj, DEAD_SIZE, (double)len) &&
        cJSON_AddStringToObject(obj, DEAD_AT, now) && cJSON_AddStringToObject(obj, DEAD_WORKER, w->id))
        json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    free(excerpt);
    return json;
}

static int dead_letter(worker *w, const char *raw, size_t len, const char *reason,
                       const char *task_id) {
    char *json = dead_letter_json(w, raw, len, reason, task_id);
    if (json == NULL) return wk_error(w->st.errstr, "memória insuficiente");
    char dead[256];
    snprintf(dead, sizeof dead, KEY_DEAD_FMT, w->cfg.queue);
    store_append(&w->st, "MULTI");
    store_append(&w->st, "LPUSH %s %s", dead, json);
    store_append(&w->st, "LTRIM %s 0 %d", dead, PROTO_DEAD_LETTERS_KEPT - 1);
    int rc = store_exec(&w->st);
    cJSON_free(json);
    return rc;
}

/* Records `falhou` with its code and text; `detail` (the library's words, may be "") is logged. */
static void fail(worker *w, const char *task_id, const char *raw, size_t len, const char *code,
                 const char *error, const char *detail) {
    log_error(task_id, "Falha na tarefa (task_id=%s): %s%s%s%s", task_id, error,
              detail[0] ? " [" : "", detail, detail[0] ? "]" : "");
    /* No retry can succeed: an operator's case (a permission), or a message no API wrote (a
     * parameter outside the catalog's limits): kept with the reason. */
    if ((strcmp(code, ERR_PERMISSION_DENIED) == 0 || strcmp(code, ERR_INVALID_PARAMETER) == 0) &&
        dead_letter(w, raw, len, error, task_id) != WK_OK)
        return; /* recovery runs it again */
    final_state f = {STATUS_FAILED, code, error, 0, 0, NULL};
    (void)record(w, task_id, raw, len, &f);
}

/* Attempts exhausted: dead-lettered, then `falhou` with tentativas_esgotadas quoting `last`. */
static void give_up(worker *w, const char *task_id, const char *raw, size_t len, const char *last,
                    const char *detail) {
    char error[2 * WK_ERRSTR_LEN];
    snprintf(error, sizeof error, "%s (%ld): %s", ERR_ATTEMPTS_EXHAUSTED_TEXT,
             w->cfg.max_attempts, last);
    if (dead_letter(w, raw, len, error, task_id) != WK_OK) return; /* recovery retries it */
    fail(w, task_id, raw, len, ERR_ATTEMPTS_EXHAUSTED, error, detail);
}

static void reject(worker *w, const message *m, const char *raw, size_t len) {
    const char *task_id = m->has_task_id ? m->task_id : NULL;
    log_warning(task_id, "Mensagem inválida descartada: %s", m->errstr);
    char stats[256];
    snprintf(stats, sizeof stats, KEY_STATS_FMT, w->cfg.queue);
    if (store_run(&w->st, "HINCRBY %s %s 1", stats, STAT_INVALID) != WK_OK ||
        dead_letter(w, raw, len, m->errstr, task_id) != WK_OK)
        return;
    if (task_id == NULL) {
        (void)release(w, raw, len);
        return;
    }
    char error[WK_ERRSTR_LEN + 32];
    snprintf(error, sizeof error, "%s: %s", ERR_INVALID_MESSAGE_TEXT, m->errstr);
    fail(w, task_id, raw, len, ERR_INVALID_MESSAGE, error, "");
}

/* ---- one attempt ---- */

typedef struct {
    worker *w;
    char key[256];
    worker_check_result why; /* why the tick stopped the query */
    const export_job *job;   /* the attempt's job: its rows feed the stall clock */
    double stall_s;          /* the report's stall limit, 0 = none */
    uint64_t last_rows;      /* rows when the clock last moved */
    double moved_at;         /* monotonic time the rows last moved (or the attempt started) */
} run_ctx;

static int on_tick(void *ud) {
    run_ctx *p = ud;
    p->why = worker_check(p->w);
    if (p->why == CHECK_CONTINUE && p->stall_s > 0) {
        double now = clock_monotonic();
        if (p->job->rows_now != p->last_rows) {
            p->last_rows = p->job->rows_now;
            p->moved_at = now;
        } else if (now - p->moved_at >= p->stall_s) {
            p->why = CHECK_STALLED;
        }
    }
    return p->why != CHECK_CONTINUE;
}

/* Progress is advisory: a lost connection must not stop a report that is being written. */
static void on_progress(void *ud, uint64_t rows, uint64_t bytes) {
    run_ctx *p = ud;
    (void)store_run(&p->w->st, "HSET %s %s %llu %s %llu", p->key, F_ROWS,
                    (unsigned long long)rows, F_BYTES, (unsigned long long)bytes);
}

static int mark_running(worker *w, const message *m, const char *key) {
    char *params = message_params_json(m);
    if (params == NULL) return wk_error(w->st.errstr, "memória insuficiente");
    char tasks[256], now[CLOCK_ISO_LEN];
    clock_now_iso(now);
    snprintf(tasks, sizeof tasks, KEY_TASKS_FMT, w->cfg.queue);
    store_append(&w->st, "ZADD %s NX %lld %s", tasks, clock_epoch_ms(), m->task_id);
    store_append(&w->st, "HSET %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s 0 %s 0 %s %s",
                 key, F_STATUS, STATUS_RUNNING, F_TYPE, m->tipo, F_FILE, m->arquivo, F_FORMAT,
                 m->formato, F_COMPRESSION, m->compressao, F_STARTED, now, F_WORKER, w->id, F_ROWS,
                 F_BYTES, F_PARAMS, params);
    store_append(&w->st, "HDEL %s %s", key, F_NEXT_ATTEMPT); /* this is the announced retry */
    append_index_status(w, m->task_id, STATUS_RUNNING);
    int rc = store_flush(&w->st);
    cJSON_free(params);
    if (rc == WK_OK) (void)worker_heartbeat(w, 1);
    return rc;
}

/* Runs the report once. Returns WK_OK with rows/bytes, or WK_ERR with the job's error set and
 * ctx->why (the reason a tick stopped it). */
static int run_once(worker *w, const message *m, run_ctx *ctx, export_job *job, uint64_t *rows,
                    uint64_t *bytes) {
    ctx->why = CHECK_CONTINUE;
    ctx->job = job;
    ctx->stall_s = 0;
    ctx->last_rows = 0;
    ctx->moved_at = clock_monotonic();
    int rc = export_prepare(job, &w->cfg, m, on_tick, ctx);
    if (rc == WK_OK) {
        ctx->stall_s =
            job->report.has_timeout ? (double)job->report.timeout_s : w->cfg.task_timeout_s;
        log_info(m->task_id, "Executando consulta SQL pesada... (task_id=%s)", m->task_id);
        rc = export_stream(job, &w->cfg, m->arquivo, on_progress, ctx, rows, bytes);
    }
    export_close(job);
    return rc;
}

/* A transient error: the message waits in Q:adiadas for min(RETRY_BASE_S * 2^(attempt-1),
 * RETRY_MAX_DELAY_S) seconds, with the error and the next try in the task meanwhile, and this
 * worker serves other tasks (docs/protocol.md, "Delayed retries"). */
static void retry_later(worker *w, const message *m, const char *key, const char *raw, size_t len,
                        long attempt, const export_job *job) {
    double delay = fmin(ldexp(w->cfg.retry_base_s, (int)attempt - 1), PROTO_RETRY_MAX_DELAY_S);
    char next_at[CLOCK_ISO_LEN], retries[256], status[64];
    clock_iso_in(delay, next_at);
    snprintf(retries, sizeof retries, KEY_RETRIES_FMT, w->cfg.queue);
    for (int tries = 0; tries < 100; tries++) { /* a conditional write, as the final states */
        if (store_run(&w->st, "WATCH %s", key) != WK_OK ||
            hget(w, key, F_STATUS, status, sizeof status) != WK_OK)
            return; /* stays in the processing list: recovery runs it again */
        int running = strcmp(status, STATUS_RUNNING) == 0;
        redisReply *r = store_command(&w->st, "TIME"); /* Redis's clock: every process agrees */
        if (r == NULL) return;
        long long due = -1;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
            due = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                  strtoll(r->element[1]->str, NULL, 10) / 1000 + (long long)(delay * 1000);
        freeReplyObject(r);
        if (due < 0) {
            (void)store_run(&w->st, "UNWATCH");
            return;
        }
        store_append(&w->st, "MULTI");
        store_append(&w->st, "LREM %s 1 %b", w->processing, raw, len);
        if (running) {
            store_append(&w->st, "HSET %s %s %s %s %s %s %s %s %s", key, F_STATUS, STATUS_QUEUED,
                         F_ERROR, job->err.errstr, F_ERROR_CODE, job->err.code, F_NEXT_ATTEMPT,
                         next_at);
            store_append(&w->st, "ZADD %s %lld %b", retries, due, raw, len);
            append_index_status(w, m->task_id, STATUS_QUEUED);
        }
        int rc = store_exec(&w->st);
        if (rc == STORE_ABORTED) continue; /* the task changed meanwhile: read it again */
        if (rc != WK_OK) return;
        if (!running) {
            log_info(m->task_id, "Tarefa cancelada (task_id=%s)", m->task_id);
            return;
        }
        log_warning(m->task_id,
                    "Falha temporária (task_id=%s, tentativa=%ld): %s [%s]; nova tentativa em "
                    "%.1fs",
                    m->task_id, attempt, job->err.errstr, job->err.detail, delay);
        return;
    }
}

/* Shutdown past the deadline: the task goes back to the queue, next in line. */
static void put_back(worker *w, const message *m, const char *key, const char *raw, size_t len) {
    store *s = &w->st;
    store_append(s, "MULTI");
    store_append(s, "HSET %s %s %s", key, F_STATUS, STATUS_QUEUED);
    append_index_status(w, m->task_id, STATUS_QUEUED);
    store_append(s, "HINCRBY %s %s -1", key, F_ATTEMPTS);
    store_append(s, "LREM %s 1 %b", w->processing, raw, len);
    store_append(s, "RPUSH %s %b", w->cfg.queue, raw, len);
    (void)store_exec(s); /* if Redis is away, recovery puts it back */
    log_info(m->task_id, "Tarefa devolvida à fila no desligamento (task_id=%s)", m->task_id);
}

static void interrupted(worker *w, const message *m, const char *key, const char *raw, size_t len,
                        worker_check_result why, double stall_s) {
    if (why == CHECK_CANCELLED) {
        final_state f = {STATUS_CANCELLED, NULL, NULL, 0, 0, NULL};
        (void)record(w, m->task_id, raw, len, &f);
        log_info(m->task_id, "Tarefa cancelada (task_id=%s)", m->task_id);
    } else if (why == CHECK_STALLED) {
        char error[WK_ERRSTR_LEN];
        snprintf(error, sizeof error, "%s: %g s sem linhas novas", ERR_STALLED_TEXT,
                 stall_s);
        fail(w, m->task_id, raw, len, ERR_STALLED, error, "");
    } else {
        put_back(w, m, key, raw, len);
    }
}

static void done(worker *w, const message *m, const char *raw, size_t len, uint64_t rows,
                 uint64_t bytes) {
    char output[4096];
    snprintf(output, sizeof output, "%s/%s", w->cfg.export_dir, m->arquivo);
    final_state f = {STATUS_DONE, NULL, NULL, rows, bytes, output};
    record_result r = record(w, m->task_id, raw, len, &f);
    if (r == RECORDED)
        log_info(m->task_id,
                 "Relatório gerado com sucesso! (task_id=%s, arquivo=%s, linhas=%llu, bytes=%llu)",
                 m->task_id, m->arquivo, (unsigned long long)rows, (unsigned long long)bytes);
    else if (r == ALREADY_FINAL)
        log_info(m->task_id, "Tarefa já finalizada por outro caminho (task_id=%s)", m->task_id);
}

/* One attempt: the task reaches a final state, waits for its retry or goes back to the queue. */
static void attempts(worker *w, const message *m, const char *raw, size_t len) {
    run_ctx ctx = {.w = w};
    task_key(w, m->task_id, ctx.key, sizeof ctx.key);
    redisReply *r = store_command(&w->st, "HINCRBY %s %s 1", ctx.key, F_ATTEMPTS);
    if (r == NULL) return; /* stays in the processing list */
    long attempt = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 1;
    freeReplyObject(r);
    if (attempt > w->cfg.max_attempts) { /* the task stopped its worker every time */
        char last[WK_ERRSTR_LEN];
        if (hget(w, ctx.key, F_ERROR, last, sizeof last) != WK_OK) return;
        give_up(w, m->task_id, raw, len, last[0] ? last : "o worker parou durante a tarefa", "");
        return;
    }
    if (mark_running(w, m, ctx.key) != WK_OK) return;
    export_job job;
    uint64_t rows = 0, bytes = 0;
    if (run_once(w, m, &ctx, &job, &rows, &bytes) == WK_OK) {
        done(w, m, raw, len, rows, bytes);
        return;
    }
    if (job.err.interrupted && ctx.why != CHECK_CONTINUE)
        interrupted(w, m, ctx.key, raw, len, ctx.why, ctx.stall_s);
    else if (!job.err.transient)
        fail(w, m->task_id, raw, len, job.err.code, job.err.errstr, job.err.detail);
    else if (attempt >= w->cfg.max_attempts)
        give_up(w, m->task_id, raw, len, job.err.errstr, job.err.detail);
    else
        retry_later(w, m, ctx.key, raw, len, attempt, &job);
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
    if (!m->has_task_id) {
        log_warning(NULL, "Tarefa recuperada de worker morto (worker=%s)", owner);
        return;
    }
    log_warning(m->task_id, "Tarefa recuperada de worker morto (task_id=%s, worker=%s)",
                m->task_id, owner);
    char key[256], status[64];
    task_key(w, m->task_id, key, sizeof key);
    if (store_run(&w->st, "WATCH %s", key) != WK_OK ||
        hget(w, key, F_STATUS, status, sizeof status) != WK_OK)
        return;
    if (strcmp(status, STATUS_RUNNING) != 0) {
        (void)store_run(&w->st, "UNWATCH");
        return;
    }
    store_append(&w->st, "MULTI");
    store_append(&w->st, "HSET %s %s %s", key, F_STATUS, STATUS_QUEUED);
    append_index_status(w, m->task_id, STATUS_QUEUED);
    (void)store_exec(&w->st); /* aborted: someone else's write stands */
}

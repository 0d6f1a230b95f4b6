/* worker.h -- the worker's life: wait on the queue, run one task at a time, record its state in
 * Redis, keep a heartbeat, survive a lost connection (docs/protocol.md, "What a worker does"). */
#ifndef RELATORIOS_WORKER_H
#define RELATORIOS_WORKER_H

#include <signal.h>
#include <stddef.h>

#include "clock.h"
#include "config.h"
#include "message.h"
#include "store.h"

#define WORKER_KIND "c" /* the first part of worker_id and the heartbeat's "tipo" */

typedef struct {
    config cfg;
    store st;
    char id[320];   /* c-<hostname>-<pid> */
    char host[256];
    char processing[512]; /* <queue>:processando:<id>, this worker's processing list */
    char started[CLOCK_ISO_LEN];
    const char *current; /* task id being run, or NULL */
    double last_beat;    /* monotonic time of the last heartbeat, 0 if none */
    double last_watch;   /* monotonic time of the last cancellation check while running */
    double last_recover; /* monotonic time of the last recovery, 0 to recover at once */
    double deadline;     /* monotonic time a stopping worker must give its task back, 0 if unset */
    double backoff;      /* seconds before the next reconnection attempt */
    double pop_timeout;  /* seconds the next pop may block: until the next retry is due, at most */
    volatile sig_atomic_t *stopping;
    volatile sig_atomic_t *pop_fd; /* the socket of a blocking pop in progress, else -1 */
    message msg; /* the message being run (large: kept here, not on the stack) */
} worker;

/* Why a running task must stop now (worker_check). */
typedef enum {
    CHECK_CONTINUE = 0,
    CHECK_CANCELLED,
    CHECK_SHUTDOWN,
    CHECK_STALLED /* no new row for the report's stall timeout (set by the task's tick) */
} worker_check_result;

/* Prepares `w` from a loaded configuration; `stopping` becomes non-zero on SIGTERM/SIGINT, and
 * the signal handler may shut down `*pop_fd` (when >= 0) to end a blocking pop at once. */
void worker_init(worker *w, const config *cfg, volatile sig_atomic_t *stopping,
                 volatile sig_atomic_t *pop_fd);

/* Serves the queue until *stopping; the current task is always finished first. Removes the
 * heartbeat key on the way out (best effort). */
void worker_run(worker *w);

/* Releases the connection. */
void worker_close(worker *w);

/* Refreshes the heartbeat key when `force` or when PROTO_HEARTBEAT_EVERY_S have passed.
 * Returns WK_OK or WK_ERR (w->st.errstr). */
int worker_heartbeat(worker *w, int force);

/* After a failed Redis call: logs the loss with the error, sleeps the current backoff (cut short
 * by a signal) and doubles it up to a cap. */
void worker_backoff(worker *w);

/* After a successful Redis call: the next loss starts again from the shortest backoff. */
void worker_backoff_reset(worker *w);

/* While a task runs (at most every PROTO_WATCH_EVERY_S): refreshes the heartbeat and reads the
 * task's status. Says whether the task must stop: cancelled, or the shutdown deadline passed. */
worker_check_result worker_check(worker *w);

/* Puts back on the queue the messages of dead workers, and this worker's own leftovers when
 * `idle` (docs/protocol.md, "Recovery"). The workers of the registry Q:trabalhadores are looked
 * at, or, when w->last_recover is 0 (start-up, after an outage), every processing list a SCAN
 * finds. Returns WK_OK or WK_ERR (w->st.errstr). */
int worker_recover(worker *w, int idle);

/* Handles one raw message taken into the processing list (task.c). */
void task_handle(worker *w, const char *raw, size_t len);

/* A message that went back to the queue: logs it and sets its task back to na_fila if it was
 * processando (task.c). */
void task_requeued(worker *w, const char *raw, size_t len, const char *owner);

#endif

/* app.c -- the C worker of "Gerador de Relatórios com Worker-C Assíncrono".
 *
 * Reads its settings from the environment (docs/protocol.md, "Configuration"), then serves the
 * Redis queue until SIGTERM or SIGINT, finishing the task in hand before it exits 0.
 * Exit status 2: the configuration is invalid. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "config.h"
#include "export.h"
#include "log.h"
#include "message.h"
#include "pq.h"
#include "source_pg.h"
#include "worker.h"

static volatile sig_atomic_t stopping = 0;
static volatile sig_atomic_t pop_fd = -1;

/* An idle worker leaves at once: shutting the socket down ends the blocking pop (a message it
 * took meanwhile stays in its processing list, and recovery puts it back). A busy worker is
 * told to stop and finishes its task within SHUTDOWN_DEADLINE_S. */
static void on_stop(int signo) {
    (void)signo;
    stopping = 1;
    if (pop_fd >= 0) (void)shutdown(pop_fd, SHUT_RDWR); /* async-signal-safe */
}

/* SIGTERM/SIGINT ask for a clean stop; SIGPIPE and SIGXFSZ become EPIPE and EFBIG errors of the
 * call that caused them (a full file-size limit fails the task, it does not kill the worker). */
static int install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigaction(SIGXFSZ, &sa, NULL) != 0) return -1;
    return 0;
}

/* mkdir -p for EXPORT_DIR, as the Python worker does at start-up. */
static int make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* PostgreSQL: reaches the server before serving, retrying with backoff while it is down (a
 * stop signal ends the wait). 0 when the server refuses DATABASE_URL's credentials: a setting to
 * fix, so the worker exits 2 with the reason (which names the setting, never its value). */
static int wait_for_database(const config *cfg) {
    double backoff = PROTO_REDIS_BACKOFF_FIRST_S;
    char why[WK_ERRSTR_LEN];
    while (!stopping) {
        int rc = source_pg_ping(cfg->database_url, why);
        if (rc == SOURCE_PG_READY) return 1;
        if (rc == SOURCE_PG_REFUSED) {
            log_error(NULL, "%s", why);
            return 0;
        }
        log_warning(NULL, "Banco de dados indisponível (%s); nova tentativa em %.1fs", why,
                    backoff);
        clock_sleep(backoff);
        backoff = backoff * 2 < PROTO_REDIS_BACKOFF_MAX_S ? backoff * 2 : PROTO_REDIS_BACKOFF_MAX_S;
    }
    return 1;
}

static worker w; /* large (it holds a message): static, not on the stack */

int main(void) {
    config cfg;
    if (config_load(&cfg) != WK_OK) {
        fprintf(stderr, "Worker C: configuração inválida: %s\n", cfg.errstr);
        return 2;
    }
    log_init(cfg.log_format);
    if (install_signals() != 0) {
        fprintf(stderr, "Worker C: sinais: %s\n", strerror(errno));
        return 1;
    }
    if (make_dirs(cfg.export_dir) != 0) {
        fprintf(stderr, "Worker C: não foi possível criar EXPORT_DIR %s: %s\n", cfg.export_dir,
                strerror(errno));
        return 2;
    }
    char why[WK_ERRSTR_LEN];
    if (message_init(why) != WK_OK) {
        fprintf(stderr, "Worker C: %s\n", why);
        return 1;
    }
    if (export_global_init(why) != WK_OK)
        log_warning(NULL, "SQLite com a configuração padrão: %s", why);
    if (cfg.database_url != NULL && pq_load(why) != WK_OK) {
        fprintf(stderr, "Worker C: %s\n", why);
        export_global_shutdown();
        message_shutdown();
        return 2;
    }
    if (cfg.database_url != NULL && !wait_for_database(&cfg)) {
        pq_unload();
        export_global_shutdown();
        message_shutdown();
        return 2;
    }
    worker_init(&w, &cfg, &stopping, &pop_fd);
    worker_run(&w);
    worker_close(&w);
    pq_unload();
    export_global_shutdown();
    message_shutdown();
    return 0;
}

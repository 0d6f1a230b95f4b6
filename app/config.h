/* config.h -- the worker's settings, from the environment (docs/protocol.md, "Configuration"),
 * validated once at start-up. */
#ifndef RELATORIOS_CONFIG_H
#define RELATORIOS_CONFIG_H

#include "log.h"
#include "wk.h"

typedef struct {
    /* REDIS_URL: redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path[?db=N] */
    char redis_host[256];
    int redis_port;
    char redis_socket[256]; /* non-empty for a unix socket */
    char redis_user[128];
    char redis_password[256];
    int redis_db;
    const char *db_path;     /* DB_PATH, default data/empresa.db */
    /* DATABASE_URL: postgresql://… selects PostgreSQL instead of SQLite; NULL when unset. It
     * holds a password: messages name the setting, never its value. */
    const char *database_url;
    const char *source;          /* PROTO_SOURCE_POSTGRESQL with DATABASE_URL, else SQLite */
    double statement_timeout_s;  /* STATEMENT_TIMEOUT_S, PostgreSQL only, 0 = no limit */
    const char *export_dir;  /* EXPORT_DIR, default export */
    const char *queue;       /* QUEUE_NAME, default fila_relatorios */
    const char *catalog_dir; /* CATALOG_DIR, default catalog */
    long progress_every;     /* PROGRESS_EVERY, rows between progress updates, default 10000 */
    long max_attempts;       /* MAX_TENTATIVAS, attempts before a task is dead-lettered, 3 */
    double retry_base_s;     /* RETRY_BASE_S, first retry delay (doubles per attempt), 1 */
    double shutdown_deadline_s; /* SHUTDOWN_DEADLINE_S, time a stopping worker may finish, 20 */
    double retention_days;   /* RETENCAO_DIAS, how long task records are kept, 7 */
    double task_timeout_s;   /* TIMEOUT_TAREFA_S, no new row this long: tarefa_parada; 0 = off */
    long long max_task_rows;  /* MAX_LINHAS_TAREFA, 0 = no limit */
    long long max_task_bytes; /* MAX_BYTES_TAREFA, 0 = no limit */
    log_format log_format;   /* LOG_FORMAT, text (default) or json */
    int neutralize_formulas; /* NEUTRALIZAR_FORMULAS, csv_excel and xlsx, default on */
    long xlsx_sheet_rows;    /* XLSX_LINHAS_POR_ABA, rows per xlsx sheet (tests lower it) */
    char errstr[WK_ERRSTR_LEN];
} config;

/* Reads the environment into `c`. Returns WK_OK, or WK_ERR with the first problem in
 * c->errstr (the variable, the value and what was expected). The strings point into the
 * environment and live as long as the process. */
int config_load(config *c);

/* Parses a REDIS_URL into the redis_* fields of `c`. Returns WK_OK or WK_ERR (c->errstr). */
int config_parse_redis_url(config *c, const char *url);

#endif

/* pq.h -- libpq, loaded only when the worker reads PostgreSQL (DATABASE_URL).
 *
 * Linking libpq brings Kerberos, LDAP and two TLS libraries into every worker, about 5 MB of
 * resident memory even when the worker reads SQLite, which would break its memory budget. So
 * libpq is opened with dlopen() at start-up when DATABASE_URL is set, and its functions are
 * called through `pq`: `pq.PQstatus(conn)` is libpq's PQstatus. The types come from libpq-fe.h
 * (libpq-dev at build time); libpq5 is needed at run time only for PostgreSQL. */
#ifndef RELATORIOS_PQ_H
#define RELATORIOS_PQ_H

#include <libpq-fe.h>

#include "wk.h"

/* X(return type, name, parameters) for every libpq function the worker calls. */
#define PQ_FUNCTIONS(X)                                                                        \
    X(PGconn *, PQconnectdbParams, (const char *const *, const char *const *, int))           \
    X(ConnStatusType, PQstatus, (const PGconn *))                                              \
    X(char *, PQerrorMessage, (const PGconn *))                                                \
    X(int, PQconnectionNeedsPassword, (const PGconn *))                                        \
    X(int, PQconnectionUsedPassword, (const PGconn *))                                         \
    X(void, PQfinish, (PGconn *))                                                              \
    X(int, PQsocket, (const PGconn *))                                                         \
    X(int, PQsendPrepare, (PGconn *, const char *, const char *, int, const Oid *))            \
    X(int, PQsendDescribePrepared, (PGconn *, const char *))                                   \
    X(int, PQsendQueryPrepared,                                                                \
      (PGconn *, const char *, int, const char *const *, const int *, const int *, int))       \
    X(int, PQsetSingleRowMode, (PGconn *))                                                     \
    X(int, PQisBusy, (PGconn *))                                                               \
    X(int, PQconsumeInput, (PGconn *))                                                         \
    X(PGresult *, PQgetResult, (PGconn *))                                                     \
    X(PGresult *, PQexec, (PGconn *, const char *))                                            \
    X(ExecStatusType, PQresultStatus, (const PGresult *))                                      \
    X(char *, PQresultErrorField, (const PGresult *, int))                                     \
    X(int, PQnfields, (const PGresult *))                                                      \
    X(char *, PQfname, (const PGresult *, int))                                                \
    X(Oid, PQftype, (const PGresult *, int))                                                   \
    X(int, PQgetisnull, (const PGresult *, int, int))                                          \
    X(char *, PQgetvalue, (const PGresult *, int, int))                                        \
    X(int, PQgetlength, (const PGresult *, int, int))                                          \
    X(void, PQclear, (PGresult *))                                                             \
    X(PGcancel *, PQgetCancel, (PGconn *))                                                     \
    X(int, PQcancel, (PGcancel *, char *, int))                                                \
    X(void, PQfreeCancel, (PGcancel *))

#define PQ_POINTER(ret, name, params) ret(*name) params;
typedef struct {
    PQ_FUNCTIONS(PQ_POINTER)
} pq_api;
#undef PQ_POINTER

/* libpq's functions, once pq_load() succeeded. */
extern pq_api pq;

/* Opens libpq (libpq.so.5) and finds every function. Returns WK_OK, or WK_ERR with the reason
 * in errstr (libpq5 not installed). Call pq_unload() at exit. */
int pq_load(char errstr[WK_ERRSTR_LEN]);
void pq_unload(void);

#endif

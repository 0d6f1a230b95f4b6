/* pq.c -- see pq.h. */
#define _POSIX_C_SOURCE 200809L
#include "pq.h"

#include <dlfcn.h>
#include <string.h>

#define LIBPQ "libpq.so.5" /* libpq's soname since PostgreSQL 8.2 */

pq_api pq;
static void *handle;

int pq_load(char errstr[WK_ERRSTR_LEN]) {
    if (handle != NULL) return WK_OK;
    handle = dlopen(LIBPQ, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        return wk_error(errstr, "DATABASE_URL pede o PostgreSQL, mas %s não carregou: %s", LIBPQ,
                        dlerror());
    /* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define PQ_FIND(ret, name, params)                                                             \
    if ((*(void **)&pq.name = dlsym(handle, #name)) == NULL) {                                 \
        pq_unload();                                                                           \
        return wk_error(errstr, "%s sem a função %s", LIBPQ, #name);                           \
    }
    PQ_FUNCTIONS(PQ_FIND)
#undef PQ_FIND
    return WK_OK;
}

void pq_unload(void) {
    if (handle != NULL) (void)dlclose(handle);
    handle = NULL;
    memset(&pq, 0, sizeof pq);
}

/* xw.c -- see xw.h. */
#define _POSIX_C_SOURCE 200809L
#include "xw.h"

#include <dlfcn.h>
#include <string.h>

#define LIBXW "libxlsxwriter.so.4" /* Debian's libxlsxwriter4 */

xw_api xw;
static void *handle;

int xw_load(char errstr[WK_ERRSTR_LEN]) {
    if (handle != NULL) return WK_OK;
    handle = dlopen(LIBXW, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        return wk_error(errstr, "o formato xlsx pede a biblioteca %s, que não carregou: %s", LIBXW,
                        dlerror());
    /* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define XW_FIND(ret, name, params)                                                             \
    if ((*(void **)&xw.name = dlsym(handle, #name)) == NULL) {                                 \
        xw_unload();                                                                           \
        return wk_error(errstr, "%s sem a função %s", LIBXW, #name);                           \
    }
    XW_FUNCTIONS(XW_FIND)
#undef XW_FIND
    return WK_OK;
}

void xw_unload(void) {
    if (handle != NULL) (void)dlclose(handle);
    handle = NULL;
    memset(&xw, 0, sizeof xw);
}

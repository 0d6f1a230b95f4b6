/* fuzz_message.c -- libFuzzer harness for message_parse(), the function that reads untrusted
 * queue messages. Any input must give WK_OK or WK_ERR, never a crash, a leak or undefined
 * behaviour; an accepted message must respect the protocol's limits and its parameters must
 * serialise (message_params_json) into JSON that cJSON reads back. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../message.h"

static message m;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char why[WK_ERRSTR_LEN];
    if (message_init(why) != WK_OK) abort();
    return 0;
}

static void check_accepted(void) {
    if (m.nparams > PROTO_MAX_PARAMS || strlen(m.task_id) != 36) abort();
    for (int i = 0; i < m.nparams; i++) {
        const message_param *p = &m.params[i];
        size_t n = p->kind == PARAM_TEXT ? strlen(p->text) : 0;
        if (n > PROTO_MAX_PARAM_TEXT || memchr(p->text, 0xFF, n) != NULL) abort();
        if (p->kind == PARAM_NUMBER && !(fabs(p->number) < (double)PROTO_MAX_SAFE_INTEGER)) abort();
    }
    char *json = message_params_json(&m);
    if (json == NULL) abort();
    cJSON *back = cJSON_Parse(json);
    if (!cJSON_IsObject(back) || cJSON_GetArraySize(back) != m.nparams) abort();
    for (int i = 0; i < m.nparams; i++) { /* every number reads back to the same value */
        const message_param *p = &m.params[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(back, p->name);
        if (p->kind == PARAM_NUMBER && !(cJSON_IsNumber(v) && v->valuedouble == p->number))
            abort();
    }
    cJSON_Delete(back);
    cJSON_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* hiredis hands the worker a NUL-terminated copy; do the same. */
    char *raw = malloc(size + 1);
    if (raw == NULL) return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    if (message_parse(&m, raw, size) == WK_OK) check_accepted();
    else if (m.errstr[0] == '\0') abort(); /* a rejection always says why */
    free(raw);
    return 0;
}

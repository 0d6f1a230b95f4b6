/* fuzz_message.c -- libFuzzer harness for message_parse(), the function that reads untrusted
 * queue messages. Any input must give WK_OK or WK_ERR, never a crash, a leak or undefined
 * behaviour; an accepted message must also serialise (jsonout_params), and its fields must
 * respect the protocol's limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../jsonout.h"
#include "../message.h"

static message m;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* hiredis hands the worker a NUL-terminated copy; do the same. */
    char *raw = malloc(size + 1);
    if (raw == NULL) return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    if (message_parse(&m, raw, size) == WK_OK) {
        if (m.nparams > PROTO_MAX_PARAMS || strlen(m.task_id) != 36) abort();
        for (int i = 0; i < m.nparams; i++)
            if (m.params[i].kind == PARAM_TEXT && m.params[i].text_len > PROTO_MAX_PARAM_TEXT)
                abort();
        jsonout j;
        jsonout_init(&j);
        if (jsonout_params(&j, &m) != WK_OK) abort();
        jsonout_free(&j);
    } else if (m.errstr[0] == '\0') {
        abort(); /* a rejection always says why */
    }
    free(raw);
    return 0;
}

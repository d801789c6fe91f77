/* libFuzzer: the Secret answer parser (the value of one key of a Secret's base64
 * data). Invariants that fail abort: a value has the length said, no NUL, at most
 * JB_SECRET_MAX bytes and no trailing line break; a failure says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "kube/jb_kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = NULL;
    size_t len = 0;
    jb_err err = {{0}};
    jb_status st =
        jb_kube_secret_value((const char *)data, size, "ns/name", "token", &value, &len, &err);
    if (st == JB_OK) {
        if (value == NULL || len > JB_SECRET_MAX || strlen(value) != len ||
            (len > 0 && (value[len - 1] == '\n' || value[len - 1] == '\r')))
            abort();
        jb_secret_free(value);
    } else if (err.msg[0] == '\0' || value != NULL) {
        abort();
    }
    return 0;
}

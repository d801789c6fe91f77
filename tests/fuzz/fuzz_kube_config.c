/* libFuzzer: kubeconfig parsing (YAML or JSON, base64 data fields). The error message
 * must never repeat a token: the input's token value is a fixed marker, checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "kube/jb_kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* skipped lines are logged as warnings: keep the run fast */
        jb_log_setup(JB_LOG_ERROR, true);
        quiet = true;
    }
    jb_kube_config *c = NULL;
    jb_err err = {{0}};
    if (jb_kube_config_parse((const char *)data, size, "/tmp", &c, &err) == JB_OK) {
        const char *s = jb_kube_config_server(c);
        if (s == NULL || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0))
            abort();
        jb_kube_config_destroy(c);
        return 0;
    }
    if (strstr(err.msg, "SECRETMARKER") != NULL)
        abort();
    return 0;
}

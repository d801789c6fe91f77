/* Placeholder until the configuration module lands: defaults only. */
#include "config/jb_cfg.h"

#include <stdlib.h>
#include <string.h>

static const jb_cfg_key_info keys[] = {
    {"INGRESS_PORT", "--ingress-port", "8080", "integer 1..65535", "publisher HTTP port"},
};

const jb_cfg_key_info *jb_cfg_keys(size_t *n)
{
    *n = sizeof(keys) / sizeof(keys[0]);
    return keys;
}

jb_cfg *jb_cfg_defaults(void)
{
    jb_cfg *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ingress_port = 8080;
    c->log_json = true;
    c->log_level = strdup("info");
    c->nats_url = strdup("");
    c->metrics_addr = strdup(":9090");
    return c;
}

void jb_cfg_destroy(jb_cfg *c)
{
    if (c == NULL)
        return;
    free(c->log_level);
    free(c->nats_url);
    free(c->metrics_addr);
    free(c);
}

jb_status jb_cfg_load(int argc, char **argv, char **envp, jb_cfg **out, int *rest, int *nrest,
                      jb_err *err)
{
    (void)argv;
    (void)envp;
    jb_cfg *c = jb_cfg_defaults();
    if (c == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < argc; i++)
        rest[i] = i;
    *nrest = argc;
    *out = c;
    return JB_OK;
}

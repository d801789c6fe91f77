/*
 * libFuzzer target for the YAML configuration loader: the fuzz bytes are a
 * --config file, applied to a default configuration with jb_cfg_apply_yaml.
 * Properties: no crash or leak; on failure the message is one non-empty line; on
 * success every string field is still a valid string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/jb_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jb_cfg *cfg = jb_cfg_defaults();
    if (cfg == NULL)
        return 0;
    jb_err err = {{0}};
    jb_status st = jb_cfg_apply_yaml(cfg, "fuzz.yaml", data, size, &err);
    if (st != JB_OK) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
    } else {
        /* Touch every string so ASan sees any dangling one. */
        size_t total = strlen(cfg->nats_url) + strlen(cfg->event_type_prefix) +
                       strlen(cfg->legacy_namespace) + strlen(cfg->stream_name) +
                       strlen(cfg->stream_subject_prefix) + strlen(cfg->dlq_stream_name) +
                       strlen(cfg->sink_allowed_hosts) + strlen(cfg->subscriptions_dir) +
                       strlen(cfg->metrics_addr) + strlen(cfg->log_level) + strlen(cfg->data_dir);
        if (total > size + 4096)
            abort();
        if (cfg->ingress_port < 1 || cfg->ingress_port > 65535)
            abort();
    }
    jb_cfg_destroy(cfg);
    return 0;
}

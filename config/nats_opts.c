/* The NATS connection settings of a configuration, for common/'s jb_nats_connect
 * (common/ does not read the configuration: the host fills its options). */
#include "common/jb_common.h"
#include "config/jb_cfg.h"

void jb_cfg_nats_opts(const jb_cfg *cfg, jb_nats_opts *out)
{
    *out = (jb_nats_opts){
        .url = cfg->nats_url,
        .creds = cfg->nats_creds,
        .nkey_seed = cfg->nats_nkey_seed,
        .user = cfg->nats_user,
        .password_file = cfg->nats_password_file,
        .token_file = cfg->nats_token_file,
        .tls_ca = cfg->nats_tls_ca,
        .tls_cert = cfg->nats_tls_cert,
        .tls_key = cfg->nats_tls_key,
        .max_reconnects = cfg->max_reconnects,
        .reconnect_wait_ms = cfg->reconnect_wait_ms,
        .request_timeout_ms = cfg->request_timeout_ms,
        .publish_max_in_flight = cfg->publish_max_in_flight,
    };
}

jb_status jb_cfg_nats_connect(const jb_cfg *cfg, struct event_base *base, const char *name,
                              bool retry_on_failed_connect, natsConnection **nc, jsCtx **js,
                              jb_err *err)
{
    jb_nats_opts no;
    jb_cfg_nats_opts(cfg, &no);
    return jb_nats_connect(&no, base, name, retry_on_failed_connect, nc, js, err);
}

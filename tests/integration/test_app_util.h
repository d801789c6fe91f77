/*
 * Shared by the application suites: what a reader of NATS sees in a KV bucket.
 */
#ifndef TEST_APP_UTIL_H
#define TEST_APP_UTIL_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_testenv.h"

/* A real nats-server, a connection to it, and the application store on it. */
typedef struct app_env {
    jb_tnats *n;
    jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    jb_app_store *st;
} app_env;

static inline bool app_env_start(app_env *e)
{
    memset(e, 0, sizeof(*e));
    jb_err err = {{0}};
    e->n = jb_tnats_start();
    e->cfg = jb_cfg_defaults();
    if (e->n == NULL || e->cfg == NULL)
        return false;
    free(e->cfg->nats_url);
    e->cfg->nats_url = strdup(jb_tnats_url(e->n));
    e->cfg->reconnect_wait_ms = 100;
    if (jb_cfg_nats_connect(e->cfg, NULL, "test", false, &e->nc, &e->js, &err) != JB_OK ||
        jb_app_store_open(e->cfg, e->js, &e->st, &err) != JB_OK) {
        fprintf(stderr, "env: %s\n", err.msg);
        return false;
    }
    return true;
}

static inline void app_env_stop(app_env *e)
{
    jb_app_store_close(e->st);
    if (e->nc != NULL)
        jb_nats_close(e->nc, e->js);
    jb_cfg_destroy(e->cfg);
    jb_tnats_stop(e->n);
}

/* Every key and value of bucket (read with js), one "key=value" line each: what an
 * attacker with read access to NATS would see. malloc'd; "" when the bucket is
 * missing. */
static inline char *app_bucket_dump(jsCtx *js, const char *bucket)
{
    size_t cap = 1 << 20, n = 0;
    char *out = calloc(1, cap);
    kvStore *kv = NULL;
    if (out == NULL || js_KeyValue(&kv, js, bucket) != NATS_OK)
        return out;
    kvKeysList keys = {0};
    if (kvStore_Keys(&keys, kv, NULL) == NATS_OK) {
        for (int i = 0; i < keys.Count && n < cap; i++) {
            kvEntry *en = NULL;
            n += (size_t)snprintf(out + n, cap - n, "%s=", keys.Keys[i]);
            if (n < cap && kvStore_Get(&en, kv, keys.Keys[i]) == NATS_OK)
                n += (size_t)snprintf(out + n, cap - n, "%.*s\n", kvEntry_ValueLen(en),
                                      (const char *)kvEntry_Value(en));
            kvEntry_Destroy(en);
        }
        kvKeysList_Destroy(&keys);
    }
    kvStore_Destroy(kv);
    return out;
}

#endif

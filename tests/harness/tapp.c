/* The Application store suites' environment (test_app_util.h). */
#include "test_app_util.h"

bool app_env_start(app_env *e)
{
    memset(e, 0, sizeof(*e));
    jb_err err = {{0}};
    if ((e->n = jb_tnats_start()) == NULL || !jb_tnats_client(e->n, &e->cfg, &e->nc, &e->js))
        return false;
    if (jb_app_store_open(e->cfg, e->js, &e->st, &err) != JB_OK) {
        fprintf(stderr, "env: %s\n", err.msg);
        return false;
    }
    return true;
}

void app_env_stop(app_env *e)
{
    jb_app_store_close(e->st);
    jb_tnats_client_close(e->cfg, e->nc, e->js);
    jb_tnats_stop(e->n);
}

char *app_bucket_dump(jsCtx *js, const char *bucket)
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

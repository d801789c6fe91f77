/*
 * Shared by the application suites: what a reader of NATS sees in a KV bucket.
 */
#ifndef TEST_APP_UTIL_H
#define TEST_APP_UTIL_H

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

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

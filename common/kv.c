/* NATS KV helpers shared by the stores (see jb_kv.h). */
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_kv.h"

jb_status jb_nats_err(int nats_status, const char *what, jb_err *err)
{
    natsStatus s = (natsStatus)nats_status;
    const char *last = nats_GetLastError(NULL);
    const char *text = last && last[0] ? last : natsStatus_GetText(s);
    jb_status code = JB_ERR_NATS;
    switch (s) {
    case NATS_NOT_FOUND:
        code = JB_ERR_NOT_FOUND;
        break;
    case NATS_TIMEOUT:
        code = JB_ERR_TIMEOUT;
        break;
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
        code = JB_ERR_NOT_CONNECTED;
        break;
    case NATS_NO_MEMORY:
        code = JB_ERR_NOMEM;
        break;
    default:
        break;
    }
    return jb_err_set(err, code, "%s: %s", what, text);
}

jb_status jb_kv_open(jsCtx *js, const char *name, bool memory, int replicas, kvStore **out,
                     jb_err *err)
{
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, js, name);
    if (s == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = name;
        kc.History = 1;
        kc.StorageType = memory ? js_MemoryStorage : js_FileStorage;
        kc.Replicas = replicas > 0 ? replicas : 1;
        /* Another process may create it at the same moment: same config, so the
         * server answers with the existing bucket. */
        s = js_CreateKeyValue(&kv, js, &kc);
        if (s != NATS_OK)
            s = js_KeyValue(&kv, js, name);
    }
    if (s != NATS_OK)
        return jb_nats_err(s, name, err);
    *out = kv;
    return JB_OK;
}

jb_status jb_kv_get(kvStore *kv, const char *key, const char *what, kvEntry **out, jb_err *err)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, kv, key);
    if (s == NATS_NOT_FOUND)
        return JB_ERR_NOT_FOUND;
    if (s != NATS_OK)
        return jb_nats_err(s, what, err);
    *out = e;
    return JB_OK;
}

jb_status jb_kv_each(kvStore *kv, const char *what, jb_kv_entry_fn fn, void *ud, jb_err *err)
{
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    kvWatcher *w = NULL;
    natsStatus s = kvStore_WatchAll(&w, kv, &o);
    if (s != NATS_OK)
        return jb_nats_err(s, what, err);
    jb_status rc = JB_OK;
    int64_t deadline = jb_now_monotonic_ns() / 1000000 + JB_KV_LIST_TIMEOUT_MS;
    for (;;) {
        kvEntry *e = NULL;
        int64_t left = deadline - jb_now_monotonic_ns() / 1000000;
        s = kvWatcher_Next(&e, w, left > 0 ? left : 1);
        if (s != NATS_OK) {
            rc = jb_nats_err(s, what, err);
            break;
        }
        if (e == NULL)
            break; /* every current value was seen */
        if (kvEntry_Operation(e) == kvOp_Put)
            rc = fn(e, ud, err);
        kvEntry_Destroy(e);
        if (rc != JB_OK)
            break;
    }
    kvWatcher_Destroy(w);
    return rc;
}

/* One attempt of jb_kv_update; *raced when another writer won (JB_ERR_CONFLICT).
 * fn may answer JB_ERR_CONFLICT itself (a refusal): that one is not retried. */
static jb_status update_once(kvStore *kv, const char *key, const char *what, jb_kv_next_fn fn,
                             void *ud, bool *raced, jb_err *err)
{
    kvEntry *e = NULL;
    char *next = NULL;
    jb_status rc = jb_kv_get(kv, key, what, &e, err);
    if (rc != JB_OK && rc != JB_ERR_NOT_FOUND)
        return rc;
    uint64_t rev = e ? kvEntry_Revision(e) : 0;
    rc = fn(e ? kvEntry_Value(e) : NULL, e ? (size_t)kvEntry_ValueLen(e) : 0, ud, &next, err);
    kvEntry_Destroy(e);
    if (rc != JB_OK || next == NULL)
        goto done;
    int len = (int)strlen(next);
    natsStatus s = rev == 0 ? kvStore_Create(NULL, kv, key, next, len)
                            : kvStore_Update(NULL, kv, key, next, len, rev);
    if (s != NATS_OK) {
        rc = jb_nats_err(s, what, err);
        /* A wrong-revision answer means another writer won: try again. */
        if (rc == JB_ERR_NATS) {
            rc = JB_ERR_CONFLICT;
            *raced = true;
        }
    }
done:
    free(next);
    return rc;
}

jb_status jb_kv_update(kvStore *kv, const char *key, const char *what, jb_kv_next_fn fn, void *ud,
                       jb_err *err)
{
    jb_status rc = JB_ERR_CONFLICT;
    bool raced = true;
    for (int i = 0; i < JB_KV_PUT_ATTEMPTS && raced; i++) {
        raced = false;
        rc = update_once(kv, key, what, fn, ud, &raced, err);
    }
    return rc;
}

jb_status jb_kv_delete(kvStore *kv, const char *key, const char *what, jb_err *err)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, kv, key);
    kvEntry_Destroy(e);
    if (s == NATS_NOT_FOUND)
        return JB_ERR_NOT_FOUND;
    if (s == NATS_OK)
        s = kvStore_Delete(kv, key);
    return s == NATS_OK ? JB_OK : jb_nats_err(s, what, err);
}

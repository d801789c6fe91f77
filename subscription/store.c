/* The subscription store: NATS KV buckets jetbridge-subscriptions (manifests as
 * JSON) and jetbridge-status (Kyma-shaped status), key "<namespace>.<name>". */
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

/* A put races with other writers through the KV revision; after this many lost
 * races something is wrong. */
#define PUT_ATTEMPTS 8
/* How long a listing waits for the bucket's current values. */
#define LIST_TIMEOUT_MS 10000

struct jb_sub_store {
    kvStore *subs;
    kvStore *status;
};

jb_status sub_nats_err(int nats_status, const char *what, jb_err *err)
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

static jb_status open_bucket(const jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out,
                             jb_err *err)
{
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, js, name);
    if (s == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = name;
        kc.History = 1;
        kc.StorageType =
            cfg && cfg->stream_storage == JB_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
        kc.Replicas = cfg && cfg->stream_replicas > 0 ? cfg->stream_replicas : 1;
        /* Another process may create it at the same moment: same config, so the
         * server answers with the existing bucket. */
        s = js_CreateKeyValue(&kv, js, &kc);
        if (s != NATS_OK)
            s = js_KeyValue(&kv, js, name);
    }
    if (s != NATS_OK)
        return sub_nats_err(s, name, err);
    *out = kv;
    return JB_OK;
}

jb_status jb_sub_kv_open(const jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out, jb_err *err)
{
    return open_bucket(cfg, js, name, out, err);
}

jb_status jb_sub_nats_err(int nats_status, const char *what, jb_err *err)
{
    return sub_nats_err(nats_status, what, err);
}

jb_status jb_sub_store_open(const jb_cfg *cfg, jsCtx *js, jb_sub_store **out, jb_err *err)
{
    jb_sub_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    jb_status rc = open_bucket(cfg, js, JB_SUB_BUCKET, &st->subs, err);
    if (rc == JB_OK)
        rc = open_bucket(cfg, js, JB_SUB_STATUS_BUCKET, &st->status, err);
    if (rc != JB_OK) {
        jb_sub_store_close(st);
        return rc;
    }
    *out = st;
    return JB_OK;
}

void jb_sub_store_close(jb_sub_store *st)
{
    if (st == NULL)
        return;
    kvStore_Destroy(st->subs);
    kvStore_Destroy(st->status);
    free(st);
}

const char *jb_sub_apply_result_str(jb_sub_apply_result r)
{
    switch (r) {
    case JB_SUB_CREATED:
        return "created";
    case JB_SUB_CONFIGURED:
        return "configured";
    case JB_SUB_UNCHANGED:
        return "unchanged";
    }
    return "?";
}

/* False when ns/name cannot name a subscription (so nothing is stored under it). */
static bool make_key(char *out, size_t cap, const char *ns, const char *name)
{
    if (!sub_dns_name(ns, 63, false) || !sub_dns_name(name, 253, true))
        return false;
    snprintf(out, cap, "%s.%s", ns, name);
    return true;
}

static jb_status not_found(jb_err *err, const char *ns, const char *name)
{
    return jb_err_set(err, JB_ERR_NOT_FOUND,
                      "subscriptions.eventing.kyma-project.io \"%s\" not found in namespace "
                      "\"%s\"",
                      name, ns);
}

/* One attempt: reads the current value, then creates or updates on its revision. */
static jb_status put_once(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *res, jb_err *err)
{
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, st->subs, s->key);
    if (ns != NATS_OK && ns != NATS_NOT_FOUND)
        return sub_nats_err(ns, "reading the subscription", err);
    jb_sub *old = NULL, *next = NULL;
    uint64_t rev = e ? kvEntry_Revision(e) : 0;
    if (e != NULL) {
        jb_err perr;
        if (jb_sub_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &old, &perr) != JB_OK)
            old = NULL; /* a broken stored value gets replaced */
        kvEntry_Destroy(e);
    }
    jb_status rc = JB_OK;
    if (old != NULL && sub_equal_spec(old, s)) {
        *res = JB_SUB_UNCHANGED;
        goto done;
    }
    int64_t created = old && old->created_ms ? old->created_ms : jb_now_wall_ms();
    if ((next = sub_with_meta(s, created, NULL, NULL)) == NULL) {
        rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int len = (int)strlen(next->json);
    ns = rev == 0 ? kvStore_Create(NULL, st->subs, s->key, next->json, len)
                  : kvStore_Update(NULL, st->subs, s->key, next->json, len, rev);
    if (ns != NATS_OK) {
        rc = sub_nats_err(ns, "writing the subscription", err);
        /* A wrong-revision answer means another writer won: try again. */
        if (rc == JB_ERR_NATS)
            rc = JB_ERR_CONFLICT;
        goto done;
    }
    *res = rev == 0 || old == NULL ? JB_SUB_CREATED : JB_SUB_CONFIGURED;
done:
    jb_sub_destroy(old);
    jb_sub_destroy(next);
    return rc;
}

jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *res, jb_err *err)
{
    jb_status rc = JB_ERR_CONFLICT;
    for (int i = 0; i < PUT_ATTEMPTS && rc == JB_ERR_CONFLICT; i++)
        rc = put_once(st, s, res, err);
    return rc;
}

jb_status jb_sub_store_get(jb_sub_store *st, const char *ns, const char *name, jb_sub **out,
                           jb_err *err)
{
    char key[400];
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->subs, key);
    if (s == NATS_NOT_FOUND)
        return not_found(err, ns, name);
    if (s != NATS_OK)
        return sub_nats_err(s, "reading the subscription", err);
    jb_status rc = sub_from_entry(key, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out, err);
    kvEntry_Destroy(e);
    return rc;
}

jb_status sub_from_entry(const char *key, const void *val, size_t len, jb_sub **out, jb_err *err)
{
    jb_sub *s = NULL;
    jb_status st = jb_sub_from_json(val, len, &s, err);
    if (st != JB_OK)
        return st;
    /* The key is what names a subscription's consumers and status: an entry written
     * under another subscription's key (by hand, or by a client with KV access)
     * must not take that subscription over. */
    if (strcmp(s->key, key) != 0) {
        char *k = jb_escape_text(key, strlen(key));
        st = jb_err_set(err, JB_ERR_INVALID, "key %s does not match metadata %s", k ? k : "",
                        s->key);
        free(k);
        jb_sub_destroy(s);
        return st;
    }
    *out = s;
    return JB_OK;
}

static int cmp_sub(const void *a, const void *b)
{
    const jb_sub *x = *(jb_sub *const *)a, *y = *(jb_sub *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

jb_status jb_sub_store_list(jb_sub_store *st, const char *ns, jb_sub_vec *out, jb_err *err)
{
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    kvWatcher *w = NULL;
    natsStatus s = kvStore_WatchAll(&w, st->subs, &o);
    if (s != NATS_OK)
        return sub_nats_err(s, "listing subscriptions", err);
    jb_sub_vec tmp = {0};
    jb_status rc = JB_OK;
    int64_t deadline = jb_now_monotonic_ns() / 1000000 + LIST_TIMEOUT_MS;
    for (;;) {
        kvEntry *e = NULL;
        int64_t left = deadline - jb_now_monotonic_ns() / 1000000;
        s = kvWatcher_Next(&e, w, left > 0 ? left : 1);
        if (s != NATS_OK) {
            rc = sub_nats_err(s, "listing subscriptions", err);
            break;
        }
        if (e == NULL)
            break; /* every current value was seen */
        jb_sub *sub = NULL;
        jb_err perr;
        if (kvEntry_Operation(e) == kvOp_Put &&
            sub_from_entry(kvEntry_Key(e), kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &sub,
                           &perr) == JB_OK) {
            if (ns == NULL || strcmp(sub->ns, ns) == 0) {
                if ((rc = sub_vec_push(&tmp, sub)) != JB_OK)
                    jb_err_set(err, rc, "out of memory");
            } else {
                jb_sub_destroy(sub);
            }
        } else if (kvEntry_Operation(e) == kvOp_Put) {
            jb_log(JB_LOG_WARN, "subscription", "skipping invalid stored subscription", "key",
                   kvEntry_Key(e), "error", perr.msg, NULL);
        }
        kvEntry_Destroy(e);
        if (rc != JB_OK)
            break;
    }
    kvWatcher_Destroy(w);
    if (rc == JB_OK && tmp.n > 1)
        qsort(tmp.items, tmp.n, sizeof(jb_sub *), cmp_sub);
    for (size_t i = 0; rc == JB_OK && i < tmp.n; i++) {
        rc = sub_vec_push(out, tmp.items[i]);
        tmp.items[i] = NULL;
    }
    jb_sub_vec_clear(&tmp);
    return rc;
}

jb_status jb_sub_store_delete(jb_sub_store *st, const char *ns, const char *name, jb_err *err)
{
    char key[400];
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->subs, key);
    kvEntry_Destroy(e);
    if (s == NATS_NOT_FOUND)
        return not_found(err, ns, name);
    if (s == NATS_OK)
        s = kvStore_Delete(st->subs, key);
    if (s != NATS_OK)
        return sub_nats_err(s, "deleting the subscription", err);
    /* The status goes with it; a reconciler that races may write it once more and
     * then removes it when it sees the delete. */
    s = kvStore_Delete(st->status, key);
    if (s != NATS_OK && s != NATS_NOT_FOUND)
        return sub_nats_err(s, "deleting the status", err);
    return JB_OK;
}

jb_status jb_sub_store_get_status(jb_sub_store *st, const char *ns, const char *name, char **json,
                                  jb_err *err)
{
    char key[400];
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->status, key);
    if (s == NATS_NOT_FOUND)
        return jb_err_set(err, JB_ERR_NOT_FOUND, "no status for %s", key);
    if (s != NATS_OK)
        return sub_nats_err(s, "reading the status", err);
    char *out = strndup(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
    kvEntry_Destroy(e);
    if (out == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    *json = out;
    return JB_OK;
}

jb_status jb_sub_store_put_status(jb_sub_store *st, const char *ns, const char *name,
                                  const char *json, bool *changed, jb_err *err)
{
    char key[400];
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->status, key);
    if (s != NATS_OK && s != NATS_NOT_FOUND)
        return sub_nats_err(s, "reading the status", err);
    bool same = e != NULL && (size_t)kvEntry_ValueLen(e) == strlen(json) &&
                memcmp(kvEntry_Value(e), json, strlen(json)) == 0;
    kvEntry_Destroy(e);
    if (!same) {
        s = kvStore_PutString(NULL, st->status, key, json);
        if (s != NATS_OK)
            return sub_nats_err(s, "writing the status", err);
    }
    if (changed != NULL)
        *changed = !same;
    return JB_OK;
}

/* Writes a status without reading it first (the reconciler compared it with its
 * cached copy already). */
jb_status sub_store_write_status(jb_sub_store *st, const char *key, const char *json, jb_err *err)
{
    natsStatus s = kvStore_PutString(NULL, st->status, key, json);
    return s == NATS_OK ? JB_OK : sub_nats_err(s, "writing the status", err);
}

/* Deletes a status only (for reconcilers cleaning up after a delete). */
jb_status sub_store_delete_status(jb_sub_store *st, const char *key, jb_err *err)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->status, key);
    kvEntry_Destroy(e);
    if (s == NATS_NOT_FOUND)
        return JB_OK;
    if (s == NATS_OK)
        s = kvStore_Delete(st->status, key);
    return s == NATS_OK ? JB_OK : sub_nats_err(s, "deleting the status", err);
}

jb_status jb_sub_store_subscribed_json(jb_sub_store *st, const jb_cfg *cfg, const char *app,
                                       size_t app_len, char **json, size_t *json_len, jb_err *err)
{
    jb_sub_vec v = {0};
    jb_status rc = jb_sub_store_list(st, NULL, &v, err);
    if (rc == JB_OK &&
        (rc = jb_sub_subscribed_json(&v, cfg, app, app_len, json, json_len)) != JB_OK)
        jb_err_set(err, rc, "out of memory");
    jb_sub_vec_clear(&v);
    return rc;
}

/* Exposes the watchable KV handle to the reconciler. */
kvStore *sub_store_kv(jb_sub_store *st)
{
    return st->subs;
}

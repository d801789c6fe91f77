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

/* ------------------------------------------------------------------ listing */

/* Longest "$KV.<bucket>.>" a listing handles (ours are about 30 characters). */
#define KV_SUBJECT_MAX 256

typedef struct kv_list {
    natsSubscription *sub;
    size_t prelen; /* strlen("$KV.<bucket>."): a key is the subject after it */
    const char *what;
    jb_kv_entry_fn fn;
    void *ud;
    int64_t deadline_ms; /* monotonic */
} kv_list;

static int64_t kv_left_ms(const kv_list *l)
{
    return l->deadline_ms - jb_now_monotonic_ns() / 1000000;
}

/* True for a delete or purge marker: nats.c's KV-Operation header says DEL or PURGE
 * (kvStore_Delete, kvStore_Purge); a put has no such header. */
static bool kv_marker(natsMsg *m)
{
    const char *op = NULL;
    return natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != NULL &&
           (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
}

/* Hands one fetched value to fn (markers skipped); *pending becomes the number of
 * values the consumer still had to deliver after it (its metadata's num_pending). */
static jb_status kv_list_msg(kv_list *l, natsMsg *m, uint64_t *pending, jb_err *err)
{
    jsMsgMetaData *md = NULL;
    natsStatus s = natsMsg_GetMetaData(&md, m);
    if (s != NATS_OK)
        return jb_nats_err(s, l->what, err);
    *pending = md->NumPending;
    jsMsgMetaData_Destroy(md);
    const char *subj = natsMsg_GetSubject(m);
    /* The consumer's filter is "$KV.<bucket>.>": nats.c refuses anything shorter. */
    if (subj == NULL || strlen(subj) <= l->prelen)
        return jb_err_set(err, JB_ERR_NATS, "%s: a value without a key", l->what);
    if (kv_marker(m))
        return JB_OK;
    jb_kv_item it = {subj + l->prelen, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m)};
    return l->fn(&it, l->ud, err);
}

/* Fetches values in batches and hands them over until the consumer has none left
 * (pending, then each value's num_pending, is 0). */
static jb_status kv_list_fetch(kv_list *l, uint64_t pending, jb_err *err)
{
    jb_status rc = JB_OK;
    while (rc == JB_OK && pending > 0) {
        int64_t left = kv_left_ms(l);
        if (left <= 0)
            return jb_err_set(err, JB_ERR_TIMEOUT, "%s: no answer within %d ms", l->what,
                              JB_KV_LIST_TIMEOUT_MS);
        natsMsgList list = {0};
        int batch = pending < JB_KV_LIST_BATCH ? (int)pending : JB_KV_LIST_BATCH;
        natsStatus s = natsSubscription_Fetch(&list, l->sub, batch, left, NULL);
        if (s != NATS_OK)
            return jb_nats_err(s, l->what, err);
        for (int i = 0; i < list.Count && rc == JB_OK; i++)
            rc = kv_list_msg(l, list.Msgs[i], &pending, err);
        natsMsgList_Destroy(&list);
    }
    return rc;
}

jb_status jb_kv_each(jsCtx *js, kvStore *kv, const char *what, jb_kv_entry_fn fn, void *ud,
                     jb_err *err)
{
    kv_list l = {NULL, 0, what, fn, ud, 0};
    l.deadline_ms = jb_now_monotonic_ns() / 1000000 + JB_KV_LIST_TIMEOUT_MS;
    /* The names nats.c 3.4.1 gives a bucket's stream and subjects (kv.c: "KV_%s",
     * "$KV.%s.>"). */
    const char *bucket = kvStore_Bucket(kv);
    char stream[KV_SUBJECT_MAX], filter[KV_SUBJECT_MAX];
    int n = snprintf(filter, sizeof(filter), "$KV.%s.>", bucket ? bucket : "");
    if (bucket == NULL || n < 0 || (size_t)n >= sizeof(filter))
        return jb_err_set(err, JB_ERR_INVALID, "%s: bucket name too long", what);
    snprintf(stream, sizeof(stream), "KV_%s", bucket);
    l.prelen = (size_t)n - 1;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JB_KV_LIST_TIMEOUT_MS;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    so.Config.AckPolicy = js_AckNone;
    /* When the consumer cannot be deleted (NATS away), the server drops it. */
    so.Config.InactiveThreshold = (int64_t)JB_KV_LIST_TIMEOUT_MS * 2 * 1000000;
    natsStatus s = js_PullSubscribe(&l.sub, js, filter, NULL, &jo, &so, NULL);
    if (s != NATS_OK)
        return jb_nats_err(s, what, err);
    jsConsumerInfo *ci = NULL;
    int64_t left = kv_left_ms(&l);
    jo.Wait = left > 0 ? left : 1;
    s = natsSubscription_GetConsumerInfo(&ci, l.sub, &jo, NULL);
    /* An empty bucket: NumPending 0, nothing to fetch. */
    jb_status rc =
        s == NATS_OK ? kv_list_fetch(&l, ci->NumPending, err) : jb_nats_err(s, what, err);
    jsConsumerInfo_Destroy(ci);
    /* Unsubscribe deletes the consumer (Destroy alone does not). While NATS is away
     * the delete would wait for its timeout: the server drops the consumer then. */
    if (rc != JB_ERR_NOT_CONNECTED && rc != JB_ERR_TIMEOUT)
        (void)natsSubscription_Unsubscribe(l.sub);
    natsSubscription_Destroy(l.sub);
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

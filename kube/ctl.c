/* The controller: Subscriptions from the API server mirrored into the KV store, their
 * KV status written back to the status subresource, a finalizer guarding deletion,
 * and one leader doing all writes. One worker thread owns the cache below; watches,
 * the Lease and the KV status watch feed it through the mailbox. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "kube/kube_internal.h"
#include "subscription/jb_sub.h"

#define SUB_RESOURCE   "subscriptions.eventing.kyma-project.io"
#define SUB_GV_PATH    "/apis/eventing.kyma-project.io/v1alpha2"
#define APP_RESOURCE   "applications.applicationconnector.kyma-project.io"
#define APP_GV_PATH    "/apis/applicationconnector.kyma-project.io/v1alpha1"
#define APP_KEY_PREFIX "app/" /* '/' is in no Subscription key: one table for both */
#define MAX_NAMESPACES 32
#define MAILBOX_ITEMS  4096
#define MAILBOX_BYTES  (32 * 1024 * 1024)
#define RETRY_NS       (INT64_C(2) * 1000000000)
#define WRITERS        16 /* concurrent patches (the writer allows 16 at most) */

/* One object the controller knows: a Subscription in the API server and/or a status
 * in KV. */
typedef struct obj {
    kube_res res;
    char *key;       /* "<ns>.<name>", or APP_KEY_PREFIX "<name>" */
    cJSON *cr;       /* the object as last seen; NULL when not (or no longer) there */
    char *kv_status; /* the KV status, NULL when none */
    char *mirrored;  /* the manifest last put into KV */
    char *patched;   /* the status last written to the API server */
    char *bad_rv;    /* resourceVersion whose manifest did not parse (logged once) */
    bool seen;       /* listed in the current relist */
    bool inflight;   /* a writer job for it is not back yet */
    bool dirty;      /* in the dirty queue: to be reconciled */
    int64_t retry_at;
    struct obj *next;  /* hash chain */
    struct obj *dnext; /* dirty queue */
} obj;

struct jb_kube_ctl {
    const jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    jb_kube_config *kc;
    atomic_bool stop;
    jb_mailbox *mb;
    kube_informer *subs[MAX_NAMESPACES];
    size_t nsubs;
    kube_informer *apps;
    jb_app_store *app_store;
    bool apps_synced;
    char *namespaces[MAX_NAMESPACES]; /* WATCH_NAMESPACES; none = all */
    size_t nns;
    kube_elector *elector;
    kube_writer *writer;
    pthread_t worker;
    pthread_t status_thread;
    bool worker_started, status_started;
    kube_client *client; /* the worker's */
    jb_sub_store *store;
    jb_metric *requests;
    jb_metric *status_writes;
    jb_metric *leader_gauge;
    /* the cache: a chained hash table, owned by the worker */
    obj **buckets;
    size_t nbuckets;
    size_t nobjs;
    /* Objects to reconcile, in the order they changed: a round costs what changed, not
     * a walk over every object (2,000 objects created at once arrive in thousands of
     * small mailbox batches). */
    obj *dirty_head, *dirty_tail;
    int64_t next_retry; /* earliest retry_at set, 0: none */
    bool was_leader;
    bool gc_due;
    char *synced[MAX_NAMESPACES]; /* scopes whose first list the worker applied */
    size_t nsynced;
};

/* ---------------------------------------------------------------- cache */

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static obj *find(jb_kube_ctl *c, const char *key)
{
    for (obj *o = c->buckets[hash(key) & (c->nbuckets - 1)]; o != NULL; o = o->next)
        if (strcmp(o->key, key) == 0)
            return o;
    return NULL;
}

static void grow(jb_kube_ctl *c)
{
    size_t n = c->nbuckets * 2;
    obj **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        obj *o = c->buckets[i];
        while (o != NULL) {
            obj *next = o->next;
            size_t h = hash(o->key) & (n - 1);
            o->next = b[h];
            b[h] = o;
            o = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

static obj *find_or_add(jb_kube_ctl *c, const char *key)
{
    obj *o = find(c, key);
    if (o != NULL)
        return o;
    if (c->nobjs >= c->nbuckets * 2)
        grow(c);
    o = calloc(1, sizeof(*o));
    if (o == NULL || (o->key = strdup(key)) == NULL) {
        free(o);
        return NULL;
    }
    size_t h = hash(key) & (c->nbuckets - 1);
    o->next = c->buckets[h];
    c->buckets[h] = o;
    c->nobjs++;
    return o;
}

static void obj_free(obj *o)
{
    free(o->key);
    cJSON_Delete(o->cr);
    free(o->kv_status);
    free(o->mirrored);
    free(o->patched);
    free(o->bad_rv);
    free(o);
}

static void remove_obj(jb_kube_ctl *c, obj *o)
{
    if (o->dirty) { /* not on the paths that remove objects today; a walk, to be safe */
        obj *prev = NULL;
        for (obj *d = c->dirty_head; d != NULL; prev = d, d = d->dnext)
            if (d == o) {
                if (prev != NULL)
                    prev->dnext = o->dnext;
                else
                    c->dirty_head = o->dnext;
                if (c->dirty_tail == o)
                    c->dirty_tail = prev;
                break;
            }
    }
    obj **p = &c->buckets[hash(o->key) & (c->nbuckets - 1)];
    while (*p != o)
        p = &(*p)->next;
    *p = o->next;
    c->nobjs--;
    obj_free(o);
}

static void mark_dirty(jb_kube_ctl *c, obj *o)
{
    if (o->dirty)
        return;
    o->dirty = true;
    o->dnext = NULL;
    if (c->dirty_tail != NULL)
        c->dirty_tail->dnext = o;
    else
        c->dirty_head = o;
    c->dirty_tail = o;
}

static void set_retry(jb_kube_ctl *c, obj *o, int64_t at)
{
    o->retry_at = at;
    if (c->next_retry == 0 || at < c->next_retry)
        c->next_retry = at;
}

static void replace_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
}

/* ------------------------------------------------------------ CR fields */

static const char *meta_str(const cJSON *cr, const char *field)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cr, "metadata"), field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool has_finalizer(const cJSON *cr)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cr, "metadata"), "finalizers");
    const cJSON *it;
    cJSON_ArrayForEach(it, f)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, JB_KUBE_FINALIZER) == 0)
            return true;
    }
    return false;
}

/* "<ns>.<name>" of a Subscription object; false when it has neither. */
static bool cr_key(const cJSON *cr, char *out, size_t cap)
{
    const char *ns = meta_str(cr, "namespace"), *name = meta_str(cr, "name");
    if (ns == NULL || name == NULL)
        return false;
    snprintf(out, cap, "%s.%s", ns, name);
    return true;
}

/* The manifest jetbridge keeps: the user's metadata and spec, marked as Kubernetes'.
 * kubectl's last-applied copy is dropped (it repeats the whole object). */
static jb_sub *to_sub(const cJSON *cr, jb_err *err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(doc, "metadata");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cr, "metadata");
    static const char *const keep[] = {"name", "namespace", "labels", "annotations",
                                       "creationTimestamp"};
    cJSON_AddStringToObject(doc, "apiVersion", "eventing.kyma-project.io/v1alpha2");
    cJSON_AddStringToObject(doc, "kind", "Subscription");
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[i]);
        if (v != NULL)
            cJSON_AddItemToObject(meta, keep[i], cJSON_Duplicate(v, 1));
    }
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    if (ann == NULL)
        ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(ann,
                                            "kubectl.kubernetes.io/last-applied-configuration");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, JB_KUBE_MANAGED_BY);
    cJSON_AddStringToObject(ann, JB_KUBE_MANAGED_BY, JB_KUBE_MANAGED_BY_VAL);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cr, "spec");
    if (spec != NULL)
        cJSON_AddItemToObject(doc, "spec", cJSON_Duplicate(spec, 1));
    char *json = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (json == NULL) {
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    jb_sub_vec v = {0};
    jb_sub *s = NULL;
    if (jb_sub_parse(json, strlen(json), "kubernetes", NULL, &v, err) == JB_OK && v.n == 1) {
        s = v.items[0];
        v.items[0] = NULL;
        v.n = 0;
    }
    jb_sub_vec_clear(&v);
    free(json);
    return s;
}

/* ---------------------------------------------------------- API writes */

static void sub_path(const cJSON *cr, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, SUB_GV_PATH "/namespaces/%s/subscriptions/%s%s", meta_str(cr, "namespace"),
             meta_str(cr, "name"), suffix);
}

/* The body that sets metadata.finalizers to the current ones plus (add) or minus
 * ours, guarded by the resourceVersion: a 409 means a newer version is on its way. */
static char *finalizer_body(const cJSON *cr, bool add)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON *list = cJSON_AddArrayToObject(meta, "finalizers");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cr, "metadata"), "finalizers");
    const cJSON *it;
    cJSON_ArrayForEach(it, f)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, JB_KUBE_FINALIZER) != 0)
            cJSON_AddItemToArray(list, cJSON_CreateString(it->valuestring));
    }
    if (add)
        cJSON_AddItemToArray(list, cJSON_CreateString(JB_KUBE_FINALIZER));
    cJSON_AddStringToObject(meta, "resourceVersion", meta_str(cr, "resourceVersion"));
    char *body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

/* Hands a patch of o to the writers; o waits for its result (KI_RESULT). */
static bool submit(jb_kube_ctl *c, obj *o, kube_job job, const char *suffix, char *body,
                   const char *memo)
{
    kube_item *it = calloc(1, sizeof(*it));
    char path[800];
    sub_path(o->cr, suffix, path, sizeof(path));
    const char *rv = meta_str(o->cr, "resourceVersion");
    if (it == NULL || body == NULL || (it->key = strdup(o->key)) == NULL ||
        (it->path = strdup(path)) == NULL || (memo != NULL && (it->memo = strdup(memo)) == NULL) ||
        (rv != NULL && (it->rv = strdup(rv)) == NULL)) {
        free(body);
        kube_item_free(it);
        return false;
    }
    it->job = job;
    it->json = body;
    it->bytes = sizeof(*it) + strlen(body);
    o->inflight = true;
    kube_writer_submit(c->writer, &it);
    return true;
}

/* True when the fields jetbridge writes differ between the object's status and kv. */
static bool status_differs(const cJSON *cr, const cJSON *kv)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(cr, "status");
    static const char *const fields[] = {"ready", "types", "conditions"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(cur, fields[i]);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(kv, fields[i]);
        if ((a == NULL) != (b == NULL) || (a != NULL && !cJSON_Compare(a, b, true)))
            return true;
    }
    const cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cur, "backend"), "types");
    const cJSON *b =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(kv, "backend"), "types");
    return (a == NULL) != (b == NULL) || (a != NULL && !cJSON_Compare(a, b, true));
}

/* Writes the KV status to the status subresource when the object shows another. */
static bool sync_status(jb_kube_ctl *c, obj *o)
{
    if (o->inflight)
        return true; /* its result re-dirties o */
    if (o->kv_status == NULL || (o->patched != NULL && strcmp(o->patched, o->kv_status) == 0))
        return true;
    cJSON *kv = cJSON_Parse(o->kv_status);
    if (kv == NULL)
        return true; /* not ours to fix: the reconciler rewrites it */
    /* Kyma's Go types omit an empty condition message (omitempty), and the API
     * server refuses "" there: the object shows what Kyma would write. */
    const cJSON *cond;
    cJSON_ArrayForEach(cond, cJSON_GetObjectItemCaseSensitive(kv, "conditions"))
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cond, "message");
        if (cJSON_IsString(m) && m->valuestring[0] == '\0')
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)cond, "message");
    }
    bool ok = true;
    if (status_differs(o->cr, kv)) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddItemToObject(root, "status", kv);
        kv = NULL;
        char *body = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        ok = submit(c, o, KUBE_JOB_STATUS, "/status", body, o->kv_status);
    }
    cJSON_Delete(kv);
    return ok;
}

/* ------------------------------------------------------------- deletion */

static void add_name(char names[][33], size_t *n, size_t cap, const char *name)
{
    if (strlen(name) != 32 || *n >= cap)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return;
    memcpy(names[(*n)++], name, 33);
}

/* Deletes the subscription's consumers (as the reconcilers would) and says whether
 * none is left. Names come from the status it showed and from its current spec. */
static bool consumers_gone(jb_kube_ctl *c, const cJSON *cr)
{
    char names[64][33];
    size_t n = 0;
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cr, "status"), "backend"),
        "types");
    const cJSON *it;
    cJSON_ArrayForEach(it, bt)
    {
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(it, "consumerName");
        if (cJSON_IsString(cn))
            add_name(names, &n, 64, cn->valuestring);
    }
    jb_err err;
    jb_sub *s = to_sub(cr, &err);
    jb_sub_consumer_list l = {0};
    if (s != NULL && jb_sub_consumers(s, c->cfg, &l, &err) == JB_OK)
        for (size_t i = 0; i < l.n; i++)
            add_name(names, &n, 64, l.items[i].consumer);
    jb_sub_consumer_list_free(&l);
    jb_sub_destroy(s);
    bool gone = true;
    for (size_t i = 0; i < n; i++) {
        jsErrCode jerr = 0;
        natsStatus ns = js_DeleteConsumer(c->js, c->cfg->stream_name, names[i], NULL, &jerr);
        if (ns == NATS_OK || ns == NATS_NOT_FOUND)
            continue;
        jsConsumerInfo *ci = NULL;
        ns = js_GetConsumerInfo(&ci, c->js, c->cfg->stream_name, names[i], NULL, &jerr);
        if (ns == NATS_OK)
            jsConsumerInfo_Destroy(ci);
        if (ns != NATS_NOT_FOUND)
            gone = false;
    }
    return gone;
}

/* The object is being deleted: take it out of KV, wait for its consumers to be gone,
 * then let it go. */
static bool finalize(jb_kube_ctl *c, obj *o)
{
    const char *ns = meta_str(o->cr, "namespace"), *name = meta_str(o->cr, "name");
    jb_err err = {{0}};
    jb_status st = jb_sub_store_delete(c->store, ns, name, &err);
    if (st != JB_OK && st != JB_ERR_NOT_FOUND)
        return false;
    replace_str(&o->mirrored, NULL);
    if (!consumers_gone(c, o->cr))
        return false;
    char path[800];
    sub_path(o->cr, "", path, sizeof(path));
    char *body = finalizer_body(o->cr, false);
    long code = 0;
    bool ok = body != NULL && kube_patch(c->client, SUB_RESOURCE, path, body, &code) == JB_OK &&
              (code == 200 || code == 404 || code == 409);
    free(body);
    if (!ok)
        return false;
    jb_log(JB_LOG_INFO, "kube", "subscription finalized", "namespace", ns, "name", name, NULL);
    return true;
}

/* ----------------------------------------------------------- reconcile */

static bool mirror(jb_kube_ctl *c, obj *o)
{
    const char *rv = meta_str(o->cr, "resourceVersion");
    if (o->bad_rv != NULL && rv != NULL && strcmp(o->bad_rv, rv) == 0)
        return true;
    jb_err err = {{0}};
    jb_sub *s = to_sub(o->cr, &err);
    if (s == NULL) {
        jb_log(JB_LOG_WARN, "kube", "subscription not mirrored: its manifest does not parse",
               "subscription", o->key, "error", err.msg, NULL);
        replace_str(&o->bad_rv, rv);
        return true;
    }
    bool ok = true;
    if (o->mirrored == NULL || strcmp(o->mirrored, jb_sub_json(s)) != 0) {
        jb_sub_apply_result res;
        if (jb_sub_store_put(c->store, s, &res, &err) == JB_OK) {
            replace_str(&o->mirrored, jb_sub_json(s));
            if (res != JB_SUB_UNCHANGED)
                jb_log(JB_LOG_INFO, "kube", "subscription mirrored", "subscription", o->key,
                       "result", jb_sub_apply_result_str(res), NULL);
        } else {
            jb_log(JB_LOG_WARN, "kube", "subscription not mirrored", "subscription", o->key,
                   "error", err.msg, NULL);
            ok = false;
        }
    }
    jb_sub_destroy(s);
    return ok;
}

/* An Application, as leader: mirrored, or forgotten once gone. */
static bool reconcile_app(jb_kube_ctl *c, obj *o)
{
    jb_err err = {{0}};
    const char *name = o->key + strlen(APP_KEY_PREFIX);
    if (o->cr == NULL) {
        if (kube_app_forget(c->app_store, name, &err) != JB_OK)
            return false;
        remove_obj(c, o);
        return true;
    }
    const char *rv = meta_str(o->cr, "resourceVersion");
    if (o->bad_rv != NULL && rv != NULL && strcmp(o->bad_rv, rv) == 0)
        return true;
    jb_status st = kube_app_mirror(c->app_store, o->cr, &o->mirrored, &err);
    if (st == JB_ERR_INVALID) {
        jb_log(JB_LOG_WARN, "kube", "application not mirrored: invalid", "application", name,
               "error", err.msg, NULL);
        replace_str(&o->bad_rv, rv);
        return true;
    }
    if (st != JB_OK)
        jb_log(JB_LOG_WARN, "kube", "application not mirrored", "application", name, "error",
               err.msg, NULL);
    return st == JB_OK;
}

/* One object, as leader. False: try again in a while. */
static bool reconcile(jb_kube_ctl *c, obj *o)
{
    if (o->res == KUBE_RES_APP)
        return reconcile_app(c, o);
    if (o->cr == NULL) {
        /* Gone from the API server: gone from KV too (the store deletes its status). */
        if (o->mirrored != NULL || o->kv_status != NULL) {
            const char *dot = strchr(o->key, '.');
            char ns[64];
            snprintf(ns, sizeof(ns), "%.*s", (int)(dot - o->key), o->key);
            jb_err err;
            jb_status st = jb_sub_store_delete(c->store, ns, dot + 1, &err);
            if (st != JB_OK && st != JB_ERR_NOT_FOUND)
                return false;
        }
        remove_obj(c, o);
        return true;
    }
    if (o->inflight)
        return true; /* the writer's result brings o back */
    if (meta_str(o->cr, "deletionTimestamp") != NULL)
        return has_finalizer(o->cr) ? finalize(c, o) : true;
    bool ok = mirror(c, o);
    /* The finalizer first; the status follows once its result is back. */
    if (!has_finalizer(o->cr))
        return submit(c, o, KUBE_JOB_FINALIZER, "", finalizer_body(o->cr, true), NULL) && ok;
    return sync_status(c, o) && ok;
}

/* Deletes KV entries mirrored from Kubernetes whose object no longer exists (deleted
 * while no controller ran). Only after every watched scope was listed. */
static void collect_garbage(jb_kube_ctl *c)
{
    jb_sub_vec v = {0};
    jb_err err;
    if (jb_sub_store_list(c->store, NULL, &v, &err) != JB_OK) {
        c->gc_due = true;
        return;
    }
    for (size_t i = 0; i < v.n; i++) {
        const jb_sub *s = v.items[i];
        const char *mb = jb_sub_annotation(s, JB_KUBE_MANAGED_BY);
        if (mb == NULL || strcmp(mb, JB_KUBE_MANAGED_BY_VAL) != 0)
            continue;
        bool watched = c->nns == 0;
        for (size_t j = 0; j < c->nns; j++)
            watched = watched || strcmp(c->namespaces[j], jb_sub_namespace(s)) == 0;
        obj *o = find(c, jb_sub_key(s));
        if (!watched || (o != NULL && o->cr != NULL))
            continue;
        jb_log(JB_LOG_INFO, "kube", "removing a mirrored subscription whose object is gone",
               "subscription", jb_sub_key(s), NULL);
        (void)jb_sub_store_delete(c->store, jb_sub_namespace(s), jb_sub_name(s), &err);
    }
    jb_sub_vec_clear(&v);
}

/* True once every watched scope finished a list, as the worker has applied it (the
 * informers' own flags run ahead of the mailbox). */
static bool all_synced(jb_kube_ctl *c)
{
    return c->nsynced >= c->nsubs;
}

static void note_synced(jb_kube_ctl *c, const char *scope)
{
    for (size_t i = 0; i < c->nsynced; i++)
        if (strcmp(c->synced[i], scope) == 0)
            return;
    if (c->nsynced < MAX_NAMESPACES && (c->synced[c->nsynced] = strdup(scope)) != NULL)
        c->nsynced++;
}

/* ------------------------------------------------------------- the worker */

static bool app_key(const cJSON *cr, char *out, size_t cap)
{
    const char *name = meta_str(cr, "name");
    if (name == NULL)
        return false;
    snprintf(out, cap, APP_KEY_PREFIX "%s", name);
    return true;
}

static bool in_scope(const char *scope, const char *key)
{
    size_t n = strlen(scope);
    return n == 0 || (strncmp(key, scope, n) == 0 && key[n] == '.');
}

static void apply_item(jb_kube_ctl *c, kube_item *it)
{
    char key[400];
    obj *o;
    switch (it->kind) {
    case KI_UPSERT:
    case KI_DELETE:
        if (!(it->res == KUBE_RES_APP ? app_key(it->obj, key, sizeof(key))
                                      : cr_key(it->obj, key, sizeof(key))) ||
            (o = find_or_add(c, key)) == NULL)
            return;
        o->res = it->res;
        cJSON_Delete(o->cr);
        o->cr = NULL;
        if (it->kind == KI_UPSERT) {
            o->cr = it->obj;
            it->obj = NULL;
        }
        o->seen = true;
        mark_dirty(c, o);
        return;
    case KI_SYNC_BEGIN:
        for (size_t i = 0; i < c->nbuckets; i++)
            for (o = c->buckets[i]; o != NULL; o = o->next)
                if (o->res == it->res && in_scope(it->scope, o->key))
                    o->seen = false;
        return;
    case KI_SYNC_END:
        for (size_t i = 0; i < c->nbuckets; i++)
            for (o = c->buckets[i]; o != NULL; o = o->next)
                if (o->res == it->res && in_scope(it->scope, o->key) && !o->seen && o->cr != NULL) {
                    cJSON_Delete(o->cr); /* deleted while we were not watching */
                    o->cr = NULL;
                    mark_dirty(c, o);
                }
        if (it->res == KUBE_RES_APP)
            c->apps_synced = true;
        else
            note_synced(c, it->scope);
        c->gc_due = true;
        return;
    case KI_STATUS:
    case KI_STATUS_DELETE:
        if ((o = it->kind == KI_STATUS ? find_or_add(c, it->key) : find(c, it->key)) == NULL)
            return;
        free(o->kv_status);
        o->kv_status = it->json;
        it->json = NULL;
        if (o->cr != NULL)
            mark_dirty(c, o);
        return;
    case KI_RESULT:
        if ((o = find(c, it->key)) == NULL)
            return;
        o->inflight = false;
        /* The answer replaces our copy unless a newer one came by the watch meanwhile. */
        const char *rv = o->cr ? meta_str(o->cr, "resourceVersion") : NULL;
        if (it->code == 200 && cJSON_IsObject(it->obj) && rv != NULL && it->rv != NULL &&
            strcmp(rv, it->rv) == 0) {
            cJSON_Delete(o->cr);
            o->cr = it->obj;
            it->obj = NULL;
        }
        if (it->code == 200 || it->code == 404) {
            mark_dirty(c, o); /* a watch event skipped while in flight may be waiting */
            if (it->job == KUBE_JOB_STATUS && it->code == 200) {
                jb_metric_add(c->status_writes, NULL, 1);
                free(o->patched);
                o->patched = it->memo;
                it->memo = NULL;
            }
        } else {
            /* 409: a newer version is on its way through the watch; else a failure. */
            set_retry(c, o, jb_now_monotonic_ns() + (it->code == 409 ? RETRY_NS / 4 : RETRY_NS));
        }
        return;
    case KI_WAKE:
        return;
    }
}

static bool open_store(jb_kube_ctl *c)
{
    if (c->store != NULL && c->app_store != NULL)
        return true;
    jb_err err = {{0}};
    if ((c->store != NULL || jb_sub_store_open(c->cfg, c->js, &c->store, &err) == JB_OK) &&
        jb_app_store_open(c->cfg, c->js, &c->app_store, &err) == JB_OK)
        return true;
    jb_log(JB_LOG_WARN, "kube", "subscription store not reachable yet", "error", err.msg, NULL);
    return false;
}

static bool app_known(void *ud, const char *name)
{
    char key[400];
    snprintf(key, sizeof(key), APP_KEY_PREFIX "%s", name);
    obj *o = find(ud, key);
    return o != NULL && o->cr != NULL;
}

/* Queues the objects whose retry time has come (a walk over every object, but only
 * when the earliest retry is due: retries follow failures, they are rare). */
static void queue_retries(jb_kube_ctl *c, int64_t now)
{
    if (c->next_retry == 0 || c->next_retry > now)
        return;
    c->next_retry = 0;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (obj *o = c->buckets[i]; o != NULL; o = o->next) {
            if (o->retry_at == 0)
                continue;
            if (o->retry_at <= now) {
                o->retry_at = 0;
                mark_dirty(c, o);
            } else if (c->next_retry == 0 || o->retry_at < c->next_retry) {
                c->next_retry = o->retry_at;
            }
        }
}

static void leader_round(jb_kube_ctl *c)
{
    if (!open_store(c))
        return;
    int64_t now = jb_now_monotonic_ns();
    if (!c->was_leader) {
        c->was_leader = true;
        c->gc_due = true;
        for (size_t i = 0; i < c->nbuckets; i++)
            for (obj *o = c->buckets[i]; o != NULL; o = o->next)
                if (o->cr != NULL || o->mirrored != NULL)
                    mark_dirty(c, o);
    }
    queue_retries(c, now);
    obj *q = c->dirty_head;
    c->dirty_head = c->dirty_tail = NULL;
    while (q != NULL && kube_elector_leader(c->elector) && !atomic_load(&c->stop)) {
        obj *o = q;
        q = o->dnext;
        o->dirty = false;
        o->dnext = NULL;
        o->retry_at = 0;
        /* reconcile may free o (and only o); it returns false only when o is kept */
        if (!reconcile(c, o))
            set_retry(c, o, now + RETRY_NS);
    }
    /* Leadership lost (or stopping) half-way: the rest stays queued, still marked. */
    if (q != NULL) {
        obj *last = q;
        while (last->dnext != NULL)
            last = last->dnext;
        last->dnext = c->dirty_head;
        if (c->dirty_head == NULL)
            c->dirty_tail = last;
        c->dirty_head = q;
    }
    if (c->gc_due && all_synced(c) && kube_elector_leader(c->elector)) {
        c->gc_due = false;
        collect_garbage(c);
        if (c->apps_synced)
            kube_app_collect_garbage(c->app_store, app_known, c);
    }
}

/* Objects deleted from the API server are forgotten by a standby (the leader
 * cleans KV); it keeps the rest so that it can take over at once. */
static bool standby_forgets(const obj *o)
{
    return o->cr == NULL && o->kv_status == NULL;
}

static void standby_round(jb_kube_ctl *c)
{
    c->was_leader = false;
    /* Out of the dirty queue first: it must never point at a freed object. */
    obj **pp = &c->dirty_head;
    c->dirty_tail = NULL;
    while (*pp != NULL) {
        obj *o = *pp;
        if (standby_forgets(o)) {
            *pp = o->dnext;
            o->dirty = false;
            o->dnext = NULL;
        } else {
            c->dirty_tail = o;
            pp = &o->dnext;
        }
    }
    for (size_t i = 0; i < c->nbuckets; i++) {
        obj *o = c->buckets[i];
        while (o != NULL) {
            obj *next = o->next;
            if (standby_forgets(o))
                remove_obj(c, o);
            o = next;
        }
    }
}

static void *worker(void *arg)
{
    jb_kube_ctl *c = arg;
    kube_thread_name("kube-worker");
    while (!atomic_load(&c->stop)) {
        /* The first item (waiting at most a second), then what else waits, at most a
         * mailbox's worth, before a round. */
        jb_mail m;
        jb_status st = jb_mailbox_take(c->mb, &m, 1000);
        for (size_t n = 0; st == JB_OK; st = jb_mailbox_take(c->mb, &m, 0)) {
            apply_item(c, m.ptr);
            kube_item_free(m.ptr);
            if (++n >= MAILBOX_ITEMS)
                break;
        }
        if (st == JB_ERR_CLOSED)
            break;
        bool leader = kube_elector_leader(c->elector);
        jb_metric_set(c->leader_gauge, NULL, leader ? 1 : 0);
        if (leader)
            leader_round(c);
        else
            standby_round(c);
    }
    return NULL;
}

/* ------------------------------------------------------ KV status watch */

static bool push_status(jb_kube_ctl *c, kvEntry *e)
{
    kube_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return false;
    it->kind = kvEntry_Operation(e) == kvOp_Put ? KI_STATUS : KI_STATUS_DELETE;
    it->key = strdup(kvEntry_Key(e));
    int len = kvEntry_ValueLen(e);
    if (it->kind == KI_STATUS && (it->json = malloc((size_t)len + 1)) != NULL) {
        memcpy(it->json, kvEntry_Value(e), (size_t)len);
        it->json[len] = '\0';
    }
    it->bytes = sizeof(*it) + (size_t)len;
    if (it->key == NULL || (it->kind == KI_STATUS && it->json == NULL)) {
        kube_item_free(it);
        return true;
    }
    bool posted = kube_post(c->mb, &it); /* takes it, on failure too */
    return posted;
}

static void *status_watch(void *arg)
{
    jb_kube_ctl *c = arg;
    kube_thread_name("kube-status");
    while (!atomic_load(&c->stop)) {
        kvStore *kv = NULL;
        kvWatcher *w = NULL;
        if (js_KeyValue(&kv, c->js, JB_SUB_STATUS_BUCKET) != NATS_OK ||
            kvStore_WatchAll(&w, kv, NULL) != NATS_OK) {
            kvStore_Destroy(kv);
            kube_sleep(&c->stop, 2000);
            continue;
        }
        while (!atomic_load(&c->stop)) {
            kvEntry *e = NULL;
            natsStatus s = kvWatcher_Next(&e, w, 1000);
            if (s == NATS_TIMEOUT)
                continue;
            if (s != NATS_OK)
                break;
            if (e == NULL)
                continue; /* the initial values are all in */
            bool ok = push_status(c, e);
            kvEntry_Destroy(e);
            if (!ok)
                break;
        }
        kvWatcher_Destroy(w);
        kvStore_Destroy(kv);
        kube_sleep(&c->stop, 1000);
    }
    return NULL;
}

/* ------------------------------------------------------------- lifecycle */

static void on_leader_change(void *ud)
{
    jb_kube_ctl *c = ud;
    kube_item *it = calloc(1, sizeof(*it));
    if (it != NULL) {
        it->kind = KI_WAKE;
        it->bytes = sizeof(*it);
        (void)kube_post(c->mb, &it);
    }
}

static jb_status split_namespaces(jb_kube_ctl *c, jb_err *err)
{
    const char *s = c->cfg->watch_namespaces;
    while (*s) {
        while (*s == ',' || *s == ' ')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 0)
            break;
        if (c->nns >= MAX_NAMESPACES)
            return jb_err_set(err, JB_ERR_CONFIG, "WATCH_NAMESPACES: more than %d namespaces",
                              MAX_NAMESPACES);
        if ((c->namespaces[c->nns] = strndup(s, n)) == NULL)
            return JB_ERR_NOMEM;
        c->nns++;
        s += n;
    }
    return JB_OK;
}

static void register_metrics(jb_kube_ctl *c, jb_metrics *m)
{
    static const char *const req_labels[] = {"verb", "resource", "code"};
    c->requests = jb_metrics_counter(m, "jetbridge_kube_requests_total",
                                     "Kubernetes API requests by verb, resource and HTTP code "
                                     "(0: no answer).",
                                     3, req_labels);
    c->status_writes = jb_metrics_counter(m, "jetbridge_kube_status_writes_total",
                                          "Subscription status writes to the API server.", 0, NULL);
    c->leader_gauge = jb_metrics_gauge(m, "jetbridge_kube_leader",
                                       "1 while this process holds the controller Lease.", 0, NULL);
}

static jb_status start_threads(jb_kube_ctl *c, jb_err *err)
{
    kube_informer_spec spec = {KUBE_RES_SUB, SUB_RESOURCE, SUB_GV_PATH, "subscriptions", "", false};
    for (size_t i = 0; i < (c->nns ? c->nns : 1); i++) {
        spec.ns = c->nns ? c->namespaces[i] : "";
        c->subs[i] = kube_informer_start(&spec, c->kc, c->cfg, c->requests, c->mb, &c->stop, err);
        if (c->subs[i] == NULL)
            return JB_ERR_IO;
        c->nsubs++;
    }
    kube_informer_spec aspec = {KUBE_RES_APP, APP_RESOURCE, APP_GV_PATH, "applications", "", true};
    c->apps = kube_informer_start(&aspec, c->kc, c->cfg, c->requests, c->mb, &c->stop, err);
    if (c->apps == NULL)
        return JB_ERR_IO;
    c->writer = kube_writer_start(c->kc, c->cfg, c->requests, c->mb, &c->stop, WRITERS);
    if (c->writer == NULL)
        return jb_err_set(err, JB_ERR_IO, "cannot start the writer threads");
    c->elector = kube_elector_start(c->kc, c->cfg, c->requests, &c->stop, on_leader_change, c, err);
    if (c->elector == NULL)
        return JB_ERR_IO;
    if (pthread_create(&c->worker, NULL, worker, c) != 0)
        return jb_err_set(err, JB_ERR_IO, "cannot start the controller thread");
    c->worker_started = true;
    if (pthread_create(&c->status_thread, NULL, status_watch, c) != 0)
        return jb_err_set(err, JB_ERR_IO, "cannot start the status watch thread");
    c->status_started = true;
    return JB_OK;
}

jb_status jb_kube_ctl_start(const jb_cfg *cfg, natsConnection *nc, jsCtx *js, jb_metrics *metrics,
                            jb_kube_ctl **out, jb_err *err)
{
    jb_kube_ctl *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return JB_ERR_NOMEM;
    c->cfg = cfg;
    c->nc = nc;
    c->js = js;
    atomic_init(&c->stop, false);
    c->nbuckets = 1024;
    jb_status st = split_namespaces(c, err);
    if (st == JB_OK)
        st = jb_kube_config_load(cfg, &c->kc, err);
    if (st != JB_OK)
        goto fail;
    register_metrics(c, metrics);
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    c->mb = kube_mailbox_create(MAILBOX_ITEMS, MAILBOX_BYTES);
    c->client = kube_client_create(c->kc, cfg, c->requests, NULL);
    if (c->buckets == NULL || c->mb == NULL || c->client == NULL) {
        st = JB_ERR_NOMEM;
        goto fail;
    }
    if ((st = start_threads(c, err)) != JB_OK)
        goto fail;
    char *server = jb_redact_url(jb_kube_config_server(c->kc));
    jb_log(JB_LOG_INFO, "kube", "controller started", "server", server != NULL ? server : "",
           "identity", kube_elector_identity(c->elector), "lease_namespace", cfg->pod_namespace,
           NULL);
    free(server);
    *out = c;
    return JB_OK;
fail:
    jb_kube_ctl_stop(c);
    return st;
}

static bool health_ok(kube_health *h, bool need_sync, char *reason, size_t cap)
{
    pthread_mutex_lock(&h->mu);
    bool ok = (h->ok || atomic_load(&h->live) || h->absent) && (!need_sync || h->synced);
    if (!ok)
        snprintf(reason, cap, "%s",
                 h->synced || !need_sync || !h->ok ? h->why : "first list not finished");
    pthread_mutex_unlock(&h->mu);
    return ok;
}

bool jb_kube_ctl_ready(jb_kube_ctl *c, char *reason, size_t cap)
{
    for (size_t i = 0; i < c->nsubs; i++)
        if (!health_ok(kube_informer_health(c->subs[i]), true, reason, cap))
            return false;
    if (!health_ok(kube_informer_health(c->apps), false, reason, cap))
        return false;
    return health_ok(kube_elector_health(c->elector), false, reason, cap);
}

bool jb_kube_ready_fn(void *ctl, char *reason, size_t cap)
{
    return jb_kube_ctl_ready(ctl, reason, cap);
}

bool jb_kube_ctl_leader(jb_kube_ctl *c)
{
    return c->elector != NULL && kube_elector_leader(c->elector);
}

void jb_kube_ctl_stop(jb_kube_ctl *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    if (c->mb != NULL)
        jb_mailbox_close(c->mb); /* producers waiting for room give up, the worker ends */
    if (c->worker_started)
        pthread_join(c->worker, NULL);
    if (c->status_started)
        pthread_join(c->status_thread, NULL);
    for (size_t i = 0; i < c->nsubs; i++)
        kube_informer_join(c->subs[i]);
    kube_informer_join(c->apps);
    kube_writer_join(c->writer);
    kube_elector_join(c->elector);
    for (size_t i = 0; c->buckets != NULL && i < c->nbuckets; i++) {
        obj *o = c->buckets[i];
        while (o != NULL) {
            obj *next = o->next;
            obj_free(o);
            o = next;
        }
    }
    free(c->buckets);
    jb_mailbox_destroy(c->mb, kube_item_dispose, NULL);
    kube_client_destroy(c->client);
    jb_sub_store_close(c->store);
    jb_app_store_close(c->app_store);
    for (size_t i = 0; i < c->nns; i++)
        free(c->namespaces[i]);
    for (size_t i = 0; i < c->nsynced; i++)
        free(c->synced[i]);
    jb_kube_config_destroy(c->kc);
    free(c);
}

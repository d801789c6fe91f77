/* The subscription store: NATS KV buckets jetbridge-subscriptions (manifests as
 * JSON) and jetbridge-status (Kyma-shaped status), key "<namespace>.<name>". */
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

struct jb_sub_store {
    jsCtx *js; /* the caller's; jb_kv_each lists through it */
    kvStore *subs;
    kvStore *status;
};

/* Buckets take the stream's storage type and replicas. */
static jb_status open_bucket(const jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out,
                             jb_err *err)
{
    return jb_kv_open(js, name, cfg->stream_storage == JB_STORAGE_MEMORY, cfg->stream_replicas, out,
                      err);
}

jb_status jb_sub_store_open(const jb_cfg *cfg, jsCtx *js, jb_sub_store **out, jb_err *err)
{
    jb_sub_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    st->js = js;
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
    case JB_SUB_REFUSED:
        return "refused";
    }
    return "?";
}

/* False when ns/name cannot name a subscription (so nothing is stored under it). */
static bool make_key(char *out, size_t cap, const char *ns, const char *name)
{
    if (!jb_dns_name(ns, 63, false) || !jb_dns_name(name, 253, true))
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

/* What jb_kv_update needs to decide one write of a subscription. */
typedef struct put_ctx {
    const jb_sub *s;
    bool from_cli;
    jb_sub_apply_result *res;
} put_ctx;

/* A subscription that `run --subscriptions DIR` applied carries the file it came
 * from; a CLI apply over it keeps that annotation, so removing the file from the
 * directory still deletes the subscription. Returns the subscription to write (s
 * itself, or a copy that *copy owns), NULL when out of memory. */
static const jb_sub *keep_dir_annotation(const jb_sub *s, const jb_sub *old, jb_sub **copy)
{
    const char *from = old ? jb_sub_annotation(old, JB_SUB_ANNOTATION_DIR) : NULL;
    if (from == NULL || jb_sub_annotation(s, JB_SUB_ANNOTATION_DIR) != NULL)
        return s;
    return *copy = sub_with_meta(s, 0, JB_SUB_ANNOTATION_DIR, from);
}

/* jb_kv_update's callback: the stored value, read once per apply, decides. */
static jb_status put_next(const char *val, size_t len, void *ud, char **next, jb_err *err)
{
    put_ctx *p = ud;
    jb_sub *old = NULL, *copy = NULL, *stamped = NULL;
    jb_err perr;
    if (val != NULL && jb_sub_from_json(val, len, &old, &perr) != JB_OK)
        old = NULL; /* a broken stored value gets replaced */
    jb_status rc = JB_OK;
    const jb_sub *s = p->s;
    if (p->from_cli && old != NULL && jb_sub_kubernetes_owned(old)) {
        /* The controller would overwrite (or resurrect) what the CLI writes. */
        *p->res = JB_SUB_REFUSED;
        goto done;
    }
    if (p->from_cli && (s = keep_dir_annotation(s, old, &copy)) == NULL)
        goto nomem;
    if (old != NULL && sub_equal_spec(old, s)) {
        *p->res = JB_SUB_UNCHANGED;
        goto done;
    }
    int64_t created = old && old->created_ms ? old->created_ms : jb_now_wall_ms();
    if ((stamped = sub_with_meta(s, created, NULL, NULL)) == NULL ||
        (*next = strdup(stamped->json)) == NULL)
        goto nomem;
    *p->res = old == NULL ? JB_SUB_CREATED : JB_SUB_CONFIGURED;
    goto done;
nomem:
    rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
done:
    jb_sub_destroy(old);
    jb_sub_destroy(copy);
    jb_sub_destroy(stamped);
    return rc;
}

jb_status jb_sub_store_apply(jb_sub_store *st, const jb_sub *s, bool from_cli,
                             jb_sub_apply_result *res, jb_err *err)
{
    put_ctx p = {s, from_cli, res};
    return jb_kv_update(st->subs, s->key, "writing the subscription", put_next, &p, err);
}

jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *res, jb_err *err)
{
    return jb_sub_store_apply(st, s, false, res, err);
}

/* The entry of ns/name in kv, with the resource's not-found wording. */
static jb_status get_entry(kvStore *kv, const char *ns, const char *name, const char *what,
                           char *key, size_t cap, kvEntry **e, jb_err *err)
{
    if (!make_key(key, cap, ns, name))
        return not_found(err, ns, name);
    jb_status rc = jb_kv_get(kv, key, what, e, err);
    return rc == JB_ERR_NOT_FOUND ? not_found(err, ns, name) : rc;
}

jb_status jb_sub_store_get(jb_sub_store *st, const char *ns, const char *name, jb_sub **out,
                           jb_err *err)
{
    char key[400];
    kvEntry *e = NULL;
    jb_status rc =
        get_entry(st->subs, ns, name, "reading the subscription", key, sizeof(key), &e, err);
    if (rc != JB_OK)
        return rc;
    rc = sub_from_entry(key, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out, err);
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

typedef struct list_ctx {
    const char *ns;
    jb_sub_vec *out;
} list_ctx;

static jb_status list_one(const jb_kv_item *it, void *ud, jb_err *err)
{
    list_ctx *l = ud;
    jb_sub *sub = NULL;
    jb_err perr;
    if (sub_from_entry(it->key, it->value, it->len, &sub, &perr) != JB_OK) {
        jb_log(JB_LOG_WARN, "subscription", "skipping invalid stored subscription", "key", it->key,
               "error", perr.msg, NULL);
        return JB_OK;
    }
    if (l->ns != NULL && strcmp(sub->ns, l->ns) != 0) {
        jb_sub_destroy(sub);
        return JB_OK;
    }
    jb_status rc = jb_sub_vec_push(l->out, sub);
    return rc == JB_OK ? JB_OK : jb_err_set(err, rc, "out of memory");
}

jb_status jb_sub_store_list(jb_sub_store *st, const char *ns, jb_sub_vec *out, jb_err *err)
{
    size_t n0 = out->n;
    bool had_items = out->items != NULL;
    list_ctx l = {ns, out};
    jb_status rc = jb_kv_each(st->js, st->subs, "listing subscriptions", list_one, &l, err);
    if (rc == JB_OK && out->n - n0 > 1)
        qsort(out->items + n0, out->n - n0, sizeof(jb_sub *), cmp_sub);
    if (rc != JB_OK)
        sub_vec_truncate(out, n0, had_items);
    return rc;
}

jb_status jb_sub_store_delete(jb_sub_store *st, const char *ns, const char *name, jb_err *err)
{
    char key[400];
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    jb_status rc = jb_kv_delete(st->subs, key, "deleting the subscription", err);
    if (rc == JB_ERR_NOT_FOUND)
        return not_found(err, ns, name);
    if (rc != JB_OK)
        return rc;
    /* The status goes with it; a reconciler that races may write it once more and
     * then removes it when it sees the delete. */
    rc = jb_kv_delete(st->status, key, "deleting the status", err);
    return rc == JB_ERR_NOT_FOUND ? JB_OK : rc;
}

jb_status jb_sub_store_get_status(jb_sub_store *st, const char *ns, const char *name, char **json,
                                  jb_err *err)
{
    char key[400];
    kvEntry *e = NULL;
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    jb_status rc = jb_kv_get(st->status, key, "reading the status", &e, err);
    if (rc == JB_ERR_NOT_FOUND)
        return jb_err_set(err, JB_ERR_NOT_FOUND, "no status for %s", key);
    if (rc != JB_OK)
        return rc;
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
    kvEntry *e = NULL;
    if (!make_key(key, sizeof(key), ns, name))
        return not_found(err, ns, name);
    jb_status rc = jb_kv_get(st->status, key, "reading the status", &e, err);
    if (rc != JB_OK && rc != JB_ERR_NOT_FOUND)
        return rc;
    bool same = e != NULL && (size_t)kvEntry_ValueLen(e) == strlen(json) &&
                memcmp(kvEntry_Value(e), json, strlen(json)) == 0;
    kvEntry_Destroy(e);
    if (!same && (rc = sub_store_write_status(st, key, json, err)) != JB_OK)
        return rc;
    if (changed != NULL)
        *changed = !same;
    return JB_OK;
}

/* Writes a status without reading it first (the reconciler compared it with its
 * cached copy already). */
jb_status sub_store_write_status(jb_sub_store *st, const char *key, const char *json, jb_err *err)
{
    natsStatus s = kvStore_PutString(NULL, st->status, key, json);
    return s == NATS_OK ? JB_OK : jb_nats_err(s, "writing the status", err);
}

/* Deletes a status only (for reconcilers cleaning up after a delete). */
jb_status sub_store_delete_status(jb_sub_store *st, const char *key, jb_err *err)
{
    jb_status rc = jb_kv_delete(st->status, key, "deleting the status", err);
    return rc == JB_ERR_NOT_FOUND ? JB_OK : rc;
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

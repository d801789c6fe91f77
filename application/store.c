/* The application store: NATS KV buckets jetbridge-applications (manifests as JSON,
 * key = name) and jetbridge-app-tokens (key = hex SHA-256 of a token, value
 * {"application":NAME,"created":RFC3339}). A token itself is never stored. */
#include <nats/nats.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "application/app_internal.h"
#include "common/jb_common.h"
#include "proto/jb_ce.h"
#include "common/jb_kv.h"
#include "common/jb_manifest.h"
#include "config/jb_cfg.h"

#define RESOURCE     "applications.applicationconnector.kyma-project.io"
#define TOKEN_RANDOM 32

struct jb_app_store {
    jsCtx *js; /* the caller's; jb_kv_each lists through it */
    kvStore *apps;
    kvStore *tokens;
};

jb_status app_kv_open(const struct jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out,
                      jb_err *err)
{
    return jb_kv_open(js, name, cfg->stream_storage == JB_STORAGE_MEMORY, cfg->stream_replicas, out,
                      err);
}

jb_status jb_app_store_open(const struct jb_cfg *cfg, jsCtx *js, jb_app_store **out, jb_err *err)
{
    jb_app_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    st->js = js;
    jb_status rc = app_kv_open(cfg, js, JB_APP_BUCKET, &st->apps, err);
    if (rc == JB_OK)
        rc = app_kv_open(cfg, js, JB_APP_TOKEN_BUCKET, &st->tokens, err);
    if (rc != JB_OK) {
        jb_app_store_close(st);
        return rc;
    }
    *out = st;
    return JB_OK;
}

void jb_app_store_close(jb_app_store *st)
{
    if (st == NULL)
        return;
    kvStore_Destroy(st->apps);
    kvStore_Destroy(st->tokens);
    free(st);
}

const char *jb_app_apply_result_str(jb_app_apply_result r)
{
    switch (r) {
    case JB_APP_CREATED:
        return "created";
    case JB_APP_CONFIGURED:
        return "configured";
    case JB_APP_UNCHANGED:
        return "unchanged";
    }
    return "?";
}

static jb_status not_found(jb_err *err, const char *name)
{
    return jb_err_set(err, JB_ERR_NOT_FOUND, RESOURCE " \"%s\" not found", name);
}

/* What jb_kv_update needs to decide one write of an application. */
typedef struct put_ctx {
    const jb_app *a;
    bool force;
    jb_app_apply_result *res;
} put_ctx;

/* jb_kv_update's callback: the stored value decides. */
static jb_status put_next(const char *val, size_t len, void *ud, char **next, jb_err *err)
{
    put_ctx *p = ud;
    jb_app *old = NULL, *stamped = NULL;
    jb_err perr;
    if (val != NULL && jb_app_from_json(val, len, &old, &perr) != JB_OK)
        old = NULL; /* a broken stored value gets replaced */
    jb_status rc = JB_OK;
    if (old != NULL && old->k8s_owned && !p->force) {
        rc = jb_err_set(err, JB_ERR_CONFLICT,
                        RESOURCE " \"%s\" is managed by Kubernetes: change it there (kubectl)",
                        p->a->name);
    } else if (old != NULL && jb_app_equal(old, p->a)) {
        *p->res = JB_APP_UNCHANGED;
    } else {
        int64_t created = old && old->created_ms ? old->created_ms : jb_now_wall_ms();
        if ((stamped = app_with_created(p->a, created)) == NULL ||
            (*next = strdup(stamped->json)) == NULL)
            rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        *p->res = old == NULL ? JB_APP_CREATED : JB_APP_CONFIGURED;
    }
    jb_app_destroy(old);
    jb_app_destroy(stamped);
    return rc;
}

jb_status jb_app_store_apply(jb_app_store *st, const jb_app *a, bool force,
                             jb_app_apply_result *res, jb_err *err)
{
    jb_app_apply_result r = JB_APP_UNCHANGED;
    put_ctx p = {a, force, &r};
    jb_status rc = jb_kv_update(st->apps, a->name, "writing the application", put_next, &p, err);
    if (rc == JB_OK && res != NULL)
        *res = r;
    return rc;
}

jb_status jb_app_store_put(jb_app_store *st, const jb_app *a, bool force, jb_err *err)
{
    return jb_app_store_apply(st, a, force, NULL, err);
}

jb_status jb_app_store_get(jb_app_store *st, const char *name, jb_app **out, jb_err *err)
{
    if (!jb_dns_name(name, 253, true))
        return not_found(err, name);
    kvEntry *e = NULL;
    jb_status rc = jb_kv_get(st->apps, name, "reading the application", &e, err);
    if (rc == JB_ERR_NOT_FOUND)
        return not_found(err, name);
    if (rc != JB_OK)
        return rc;
    rc = jb_app_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out, err);
    kvEntry_Destroy(e);
    return rc;
}

static jb_status list_one(const jb_kv_item *it, void *ud, jb_err *err)
{
    jb_app *a = NULL;
    jb_err perr;
    if (jb_app_from_json(it->value, it->len, &a, &perr) != JB_OK) {
        jb_log(JB_LOG_WARN, "application", "skipping unparseable stored application", "key",
               it->key, "error", perr.msg, NULL);
        return JB_OK;
    }
    jb_status rc = jb_app_vec_push(ud, a);
    return rc == JB_OK ? JB_OK : jb_err_set(err, rc, "out of memory");
}

static int cmp_app(const void *x, const void *y)
{
    return strcmp((*(jb_app *const *)x)->name, (*(jb_app *const *)y)->name);
}

jb_status jb_app_store_list(jb_app_store *st, jb_app_vec *out, jb_err *err)
{
    size_t n0 = out->n;
    bool had_items = out->items != NULL;
    jb_status rc = jb_kv_each(st->js, st->apps, "listing applications", list_one, out, err);
    if (rc == JB_OK && out->n - n0 > 1)
        qsort(out->items + n0, out->n - n0, sizeof(jb_app *), cmp_app);
    if (rc != JB_OK)
        app_vec_truncate(out, n0, had_items);
    return rc;
}

jb_status jb_app_store_delete(jb_app_store *st, const char *name, jb_err *err)
{
    if (!jb_dns_name(name, 253, true))
        return not_found(err, name);
    jb_status rc = jb_kv_delete(st->apps, name, "deleting the application", err);
    if (rc == JB_ERR_NOT_FOUND)
        return not_found(err, name);
    if (rc != JB_OK)
        return rc;
    return jb_app_token_revoke(st, name, NULL, err);
}

/* ---------------------------------------------------------------- tokens */

/* JB_APP_TOKEN_PREFIX and the URL-safe base64 (RFC 4648 section 5, no padding) of
 * raw: what a client sends. NULL when out of memory. */
static char *token_text(const unsigned char *raw, size_t n)
{
    char *b64 = NULL;
    size_t len = 0;
    if (jb_base64_encode(raw, n, &b64, &len) != JB_OK)
        return NULL;
    size_t plen = strlen(JB_APP_TOKEN_PREFIX);
    char *tok = malloc(plen + len + 1);
    if (tok != NULL) {
        memcpy(tok, JB_APP_TOKEN_PREFIX, plen);
        size_t o = plen;
        for (size_t i = 0; i < len && b64[i] != '='; i++)
            tok[o++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
        tok[o] = '\0';
    }
    OPENSSL_cleanse(b64, len);
    free(b64);
    return tok;
}

jb_status jb_app_token_create(jb_app_store *st, const char *name, char **token_out, jb_err *err)
{
    jb_app *a = NULL;
    jb_status rc = jb_app_store_get(st, name, &a, err);
    if (rc != JB_OK)
        return rc;
    jb_app_destroy(a);
    unsigned char raw[TOKEN_RANDOM];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return jb_err_set(err, JB_ERR_INTERNAL, "no random bytes from OpenSSL");
    char *tok = token_text(raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    if (tok == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    char hash[65], ts[32];
    jb_sha256_hex(tok, strlen(tok), hash);
    jb_k8s_time_format(jb_now_wall_ms(), ts);
    cJSON *v = cJSON_CreateObject();
    char *json = NULL;
    if (v == NULL || !cJSON_AddStringToObject(v, "application", name) ||
        !cJSON_AddStringToObject(v, "created", ts) || (json = cJSON_PrintUnformatted(v)) == NULL) {
        rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    } else {
        natsStatus s = kvStore_Create(NULL, st->tokens, hash, json, (int)strlen(json));
        if (s != NATS_OK)
            rc = jb_nats_err(s, "storing the token's hash", err);
    }
    cJSON_Delete(v);
    free(json);
    if (rc != JB_OK) {
        OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
        return rc;
    }
    *token_out = tok;
    return JB_OK;
}

/* The application a token entry belongs to, or NULL (caller frees). */
static char *token_owner(const jb_kv_item *it)
{
    cJSON *j = cJSON_ParseWithLength(it->value, it->len);
    const cJSON *app = cJSON_GetObjectItemCaseSensitive(j, "application");
    char *name = cJSON_IsString(app) ? strdup(app->valuestring) : NULL;
    cJSON_Delete(j);
    return name;
}

typedef struct token_scan {
    const char *name;
    size_t n;
    bool revoke;
    kvStore *kv;
} token_scan;

static jb_status scan_token(const jb_kv_item *it, void *ud, jb_err *err)
{
    token_scan *t = ud;
    char *owner = token_owner(it);
    bool mine = owner != NULL && strcmp(owner, t->name) == 0;
    free(owner);
    if (!mine)
        return JB_OK;
    if (t->revoke) {
        natsStatus s = kvStore_Delete(t->kv, it->key);
        if (s != NATS_OK)
            return jb_nats_err(s, "revoking a token", err);
    }
    t->n++;
    return JB_OK;
}

jb_status jb_app_token_revoke(jb_app_store *st, const char *name, size_t *n, jb_err *err)
{
    token_scan t = {name, 0, true, st->tokens};
    jb_status rc = jb_kv_each(st->js, st->tokens, "listing tokens", scan_token, &t, err);
    if (n != NULL)
        *n = t.n;
    return rc;
}

jb_status jb_app_token_count(jb_app_store *st, const char *name, size_t *n, jb_err *err)
{
    token_scan t = {name, 0, false, st->tokens};
    jb_status rc = jb_kv_each(st->js, st->tokens, "listing tokens", scan_token, &t, err);
    if (rc == JB_OK)
        *n = t.n;
    return rc;
}

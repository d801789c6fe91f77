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
#include "subscription/jb_sub.h"

/* A put races with other writers through the KV revision; after this many lost
 * races something is wrong. */
#define PUT_ATTEMPTS 8
/* How long a listing waits for a bucket's current values. */
#define LIST_TIMEOUT_MS 10000
#define RESOURCE        "applications.applicationconnector.kyma-project.io"
#define TOKEN_RANDOM    32

struct jb_app_store {
    kvStore *apps;
    kvStore *tokens;
};

jb_status jb_app_store_open(const struct jb_cfg *cfg, jsCtx *js, jb_app_store **out, jb_err *err)
{
    jb_app_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    jb_status rc = jb_sub_kv_open(cfg, js, JB_APP_BUCKET, &st->apps, err);
    if (rc == JB_OK)
        rc = jb_sub_kv_open(cfg, js, JB_APP_TOKEN_BUCKET, &st->tokens, err);
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

/* A name that cannot be an application is never looked up (nor used as a key). */
static bool key_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return false;
    }
    return name[0] != '.' && name[len - 1] != '.';
}

/* Reads the stored application (NULL when absent or unreadable) and its revision (0
 * when absent). */
static jb_status read_entry(jb_app_store *st, const char *name, jb_app **out, uint64_t *rev,
                            jb_err *err)
{
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, st->apps, name);
    *out = NULL;
    *rev = 0;
    if (ns == NATS_NOT_FOUND)
        return JB_OK;
    if (ns != NATS_OK)
        return jb_sub_nats_err(ns, "reading the application", err);
    *rev = kvEntry_Revision(e);
    jb_err perr;
    if (jb_app_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out, &perr) != JB_OK)
        *out = NULL; /* a broken stored value gets replaced */
    kvEntry_Destroy(e);
    return JB_OK;
}

/* One attempt: reads the current value, then creates or updates on its revision. */
static jb_status put_once(jb_app_store *st, const jb_app *a, bool force, jb_app_apply_result *res,
                          bool *refused, jb_err *err)
{
    jb_app *old = NULL, *next = NULL;
    uint64_t rev = 0;
    jb_status rc = read_entry(st, a->name, &old, &rev, err);
    if (rc != JB_OK)
        return rc;
    if (old != NULL && old->k8s_owned && !force) {
        *refused = true;
        rc = jb_err_set(err, JB_ERR_CONFLICT,
                        RESOURCE " \"%s\" is managed by Kubernetes: change it there (kubectl)",
                        a->name);
        goto done;
    }
    if (old != NULL && jb_app_equal(old, a)) {
        *res = JB_APP_UNCHANGED;
        goto done;
    }
    int64_t created = old && old->created_ms ? old->created_ms : jb_now_wall_ms();
    if ((next = app_with_created(a, created)) == NULL) {
        rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int len = (int)strlen(next->json);
    natsStatus ns = rev == 0 ? kvStore_Create(NULL, st->apps, a->name, next->json, len)
                             : kvStore_Update(NULL, st->apps, a->name, next->json, len, rev);
    if (ns != NATS_OK) {
        rc = jb_sub_nats_err(ns, "writing the application", err);
        /* A wrong-revision answer means another writer won: try again. */
        if (rc == JB_ERR_NATS)
            rc = JB_ERR_CONFLICT;
        goto done;
    }
    *res = rev == 0 || old == NULL ? JB_APP_CREATED : JB_APP_CONFIGURED;
done:
    jb_app_destroy(old);
    jb_app_destroy(next);
    return rc;
}

jb_status jb_app_store_apply(jb_app_store *st, const jb_app *a, bool force,
                             jb_app_apply_result *res, jb_err *err)
{
    jb_app_apply_result r = JB_APP_UNCHANGED;
    jb_status rc = JB_ERR_CONFLICT;
    bool refused = false; /* for ownership: a conflict too, but no race to retry */
    for (int i = 0; i < PUT_ATTEMPTS && rc == JB_ERR_CONFLICT && !refused; i++)
        rc = put_once(st, a, force, &r, &refused, err);
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
    if (!key_ok(name))
        return not_found(err, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->apps, name);
    if (s == NATS_NOT_FOUND)
        return not_found(err, name);
    if (s != NATS_OK)
        return jb_sub_nats_err(s, "reading the application", err);
    jb_status rc = jb_app_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out, err);
    kvEntry_Destroy(e);
    return rc;
}

/* Calls fn for every current entry of kv (deletes skipped); stops at the first
 * non-OK from fn. */
typedef jb_status (*entry_fn)(kvEntry *e, void *ud, jb_err *err);
static jb_status each_entry(kvStore *kv, const char *what, entry_fn fn, void *ud, jb_err *err)
{
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    kvWatcher *w = NULL;
    natsStatus s = kvStore_WatchAll(&w, kv, &o);
    if (s != NATS_OK)
        return jb_sub_nats_err(s, what, err);
    jb_status rc = JB_OK;
    int64_t deadline = jb_now_monotonic_ns() / 1000000 + LIST_TIMEOUT_MS;
    for (;;) {
        kvEntry *e = NULL;
        int64_t left = deadline - jb_now_monotonic_ns() / 1000000;
        s = kvWatcher_Next(&e, w, left > 0 ? left : 1);
        if (s != NATS_OK) {
            rc = jb_sub_nats_err(s, what, err);
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

static jb_status list_one(kvEntry *e, void *ud, jb_err *err)
{
    jb_app *a = NULL;
    jb_err perr;
    if (jb_app_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &a, &perr) != JB_OK) {
        jb_log(JB_LOG_WARN, "application", "skipping unparseable stored application", "key",
               kvEntry_Key(e), "error", perr.msg, NULL);
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
    jb_app_vec tmp = {0};
    jb_status rc = each_entry(st->apps, "listing applications", list_one, &tmp, err);
    if (rc == JB_OK && tmp.n > 1)
        qsort(tmp.items, tmp.n, sizeof(jb_app *), cmp_app);
    for (size_t i = 0; rc == JB_OK && i < tmp.n; i++) {
        if ((rc = jb_app_vec_push(out, tmp.items[i])) != JB_OK)
            jb_err_set(err, rc, "out of memory");
        tmp.items[i] = NULL;
    }
    jb_app_vec_clear(&tmp);
    return rc;
}

jb_status jb_app_store_delete(jb_app_store *st, const char *name, jb_err *err)
{
    if (!key_ok(name))
        return not_found(err, name);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, st->apps, name);
    kvEntry_Destroy(e);
    if (s == NATS_NOT_FOUND)
        return not_found(err, name);
    if (s == NATS_OK)
        s = kvStore_Delete(st->apps, name);
    if (s != NATS_OK)
        return jb_sub_nats_err(s, "deleting the application", err);
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
    jb_sub_format_time(jb_now_wall_ms(), ts);
    cJSON *v = cJSON_CreateObject();
    char *json = NULL;
    if (v == NULL || !cJSON_AddStringToObject(v, "application", name) ||
        !cJSON_AddStringToObject(v, "created", ts) || (json = cJSON_PrintUnformatted(v)) == NULL) {
        rc = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    } else {
        natsStatus s = kvStore_Create(NULL, st->tokens, hash, json, (int)strlen(json));
        if (s != NATS_OK)
            rc = jb_sub_nats_err(s, "storing the token's hash", err);
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
static char *token_owner(kvEntry *e)
{
    cJSON *j = cJSON_ParseWithLength(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
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

static jb_status scan_token(kvEntry *e, void *ud, jb_err *err)
{
    token_scan *t = ud;
    char *owner = token_owner(e);
    bool mine = owner != NULL && strcmp(owner, t->name) == 0;
    free(owner);
    if (!mine)
        return JB_OK;
    if (t->revoke) {
        natsStatus s = kvStore_Delete(t->kv, kvEntry_Key(e));
        if (s != NATS_OK)
            return jb_sub_nats_err(s, "revoking a token", err);
    }
    t->n++;
    return JB_OK;
}

jb_status jb_app_token_revoke(jb_app_store *st, const char *name, size_t *n, jb_err *err)
{
    token_scan t = {name, 0, true, st->tokens};
    jb_status rc = each_entry(st->tokens, "listing tokens", scan_token, &t, err);
    if (n != NULL)
        *n = t.n;
    return rc;
}

jb_status jb_app_token_count(jb_app_store *st, const char *name, size_t *n, jb_err *err)
{
    token_scan t = {name, 0, false, st->tokens};
    jb_status rc = each_entry(st->tokens, "listing tokens", scan_token, &t, err);
    if (rc == JB_OK)
        *n = t.n;
    return rc;
}

/* The registry: an in-memory copy of both KV buckets for the publisher's hot path,
 * kept current by one watcher thread per bucket, read under a read-write lock from
 * any thread. Each watcher first loads the bucket's current contents into fresh maps
 * and swaps them in (at start, and again after its watch failed, so that deletes
 * missed meanwhile are not kept), then applies changes one by one. */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "application/app_internal.h"
#include "common/jb_common.h"
#include "common/jb_kv.h"

/* How long a load of a bucket's contents may wait for the next entry. */
#define LOAD_TIMEOUT_MS 10000
/* How often a blocked watcher looks at the stop flag, and the pause before a failed
 * watch is set up again. */
#define POLL_MS  500
#define RETRY_MS 1000
/* Longer tokens are not ours (ours are JB_APP_TOKEN_LEN): no need to hash them. */
#define TOKEN_MAX_LEN 512

/* A client id may be listed by several applications: it then identifies nobody. */
typedef struct cid_entry {
    char *app; /* one application listing it */
    size_t n;  /* how many list it */
} cid_entry;

typedef enum bucket_kind { BUCKET_APPS, BUCKET_TOKENS } bucket_kind;

typedef struct jb_app_registry jb_app_registry;

/* One watched bucket and its thread. */
typedef struct watch {
    jb_app_registry *r;
    bucket_kind kind;
    kvStore *kv;        /* opened on first use (the bucket may not exist yet) */
    atomic_bool loaded; /* the bucket's contents were loaded at least once */
    pthread_mutex_t mu; /* guards w against stop */
    kvWatcher *w;
    pthread_t thread;
    bool started;
} watch;

/* The indexes: what the lock guards. */
typedef struct indexes {
    app_map apps;   /* name -> jb_app (one reference each) */
    app_map cids;   /* client id -> cid_entry */
    app_map tokens; /* hex SHA-256 -> owner name (malloc'd) */
} indexes;

struct jb_app_registry {
    size_t max_apps, max_tokens; /* JB_APP_MAX_APPLICATIONS, JB_APP_MAX_TOKENS */
    const struct jb_cfg *cfg;
    jsCtx *js;     /* the caller's, or own_js */
    jsCtx *own_js; /* made from the connection when the caller gave no context */
    pthread_rwlock_t lock;
    indexes ix;
    watch watches[2];
    atomic_bool stop;
};

/* ------------------------------------------------------------ index updates */

static void release_val(void *v)
{
    jb_app_release(v);
}

static void free_cid(void *v)
{
    cid_entry *c = v;
    free(c->app);
    free(c);
}

typedef struct cid_scan {
    const char *cid, *skip;
    const char *found;
} cid_scan;

static void find_claimant(const char *key, void *val, void *ud)
{
    cid_scan *s = ud;
    const jb_app *a = val;
    if (s->found != NULL || strcmp(key, s->skip) == 0)
        return;
    for (size_t i = 0; i < a->client_ids.n; i++)
        if (strcmp(a->client_ids.items[i], s->cid) == 0)
            s->found = a->name;
}

/* True when a lists cid before position i (a list may repeat an entry). */
static bool listed_before(const jb_app *a, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (strcmp(a->client_ids.items[k], a->client_ids.items[i]) == 0)
            return true;
    return false;
}

/* Drops a's client ids from the index; another application of a's name must not be
 * in ix->apps (the caller removed or has not added it). */
static void cids_remove(indexes *ix, const jb_app *a)
{
    for (size_t i = 0; i < a->client_ids.n; i++) {
        const char *cid = a->client_ids.items[i];
        cid_entry *c = app_map_get(&ix->cids, cid, strlen(cid));
        if (c == NULL || listed_before(a, i))
            continue;
        if (--c->n == 0) {
            free_cid(app_map_del(&ix->cids, cid, strlen(cid)));
        } else if (strcmp(c->app, a->name) == 0) {
            cid_scan s = {cid, a->name, NULL};
            app_map_each(&ix->apps, find_claimant, &s);
            char *name = s.found ? strdup(s.found) : NULL;
            if (name != NULL) {
                free(c->app);
                c->app = name;
            }
        }
    }
}

static void cids_add(indexes *ix, const jb_app *a)
{
    for (size_t i = 0; i < a->client_ids.n; i++) {
        const char *cid = a->client_ids.items[i];
        if (listed_before(a, i))
            continue;
        cid_entry *c = app_map_get(&ix->cids, cid, strlen(cid));
        if (c != NULL) {
            if (c->n++ == 1)
                jb_log(JB_LOG_WARN, "application",
                       "client id listed by several applications identifies none of them",
                       "client_id", cid, "application", a->name, "other", c->app, NULL);
            continue;
        }
        void *old = NULL;
        if ((c = calloc(1, sizeof(*c))) == NULL || (c->app = strdup(a->name)) == NULL ||
            app_map_put(&ix->cids, cid, strlen(cid), c, &old) != JB_OK) {
            if (c != NULL)
                free(c->app);
            free(c);
            jb_log(JB_LOG_ERROR, "application", "out of memory indexing a client id", "client_id",
                   cid, NULL);
            continue;
        }
        c->n = 1;
    }
}

/* Takes the reference a. */
static void apps_put(indexes *ix, size_t max, jb_app *a)
{
    size_t len = strlen(a->name);
    jb_app *old = app_map_get(&ix->apps, a->name, len);
    if (old == NULL && ix->apps.n >= max) {
        jb_log(JB_LOG_WARN, "application",
               "registry full: application not loaded (JB_APP_MAX_APPLICATIONS)", "application",
               a->name, NULL);
        jb_app_release(a);
        return;
    }
    if (old != NULL) {
        app_map_del(&ix->apps, a->name, len);
        cids_remove(ix, old);
        jb_app_release(old);
    }
    void *prev = NULL;
    if (app_map_put(&ix->apps, a->name, len, a, &prev) != JB_OK) {
        jb_log(JB_LOG_ERROR, "application", "out of memory loading an application", "application",
               a->name, NULL);
        jb_app_release(a);
        return;
    }
    cids_add(ix, a);
}

static void apps_del(indexes *ix, const char *name)
{
    jb_app *old = app_map_del(&ix->apps, name, strlen(name));
    if (old != NULL) {
        cids_remove(ix, old);
        jb_app_release(old);
    }
}

/* Takes owner. */
static void tokens_put(indexes *ix, size_t max, const char *hash, char *owner)
{
    size_t len = strlen(hash);
    if (app_map_get(&ix->tokens, hash, len) == NULL && ix->tokens.n >= max) {
        /* The hash names no secret; the owner says whose token is not usable. */
        jb_log(JB_LOG_WARN, "application", "registry full: token not loaded (JB_APP_MAX_TOKENS)",
               "application", owner, NULL);
        free(owner);
        return;
    }
    void *old = NULL;
    if (app_map_put(&ix->tokens, hash, len, owner, &old) != JB_OK) {
        jb_log(JB_LOG_ERROR, "application", "out of memory loading a token", "application", owner,
               NULL);
        free(owner);
        return;
    }
    free(old);
}

/* Applies one KV entry of the watched bucket to ix. Parsing happens here too; callers
 * on the live indexes hold the write lock. */
static void apply_entry(const jb_app_registry *r, bucket_kind kind, kvEntry *e, indexes *ix)
{
    const char *key = kvEntry_Key(e);
    bool put = kvEntry_Operation(e) == kvOp_Put;
    if (kind == BUCKET_APPS && !put) {
        apps_del(ix, key);
    } else if (kind == BUCKET_APPS) {
        jb_app *a = NULL;
        jb_err err;
        if (jb_app_from_json(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &a, &err) == JB_OK &&
            strcmp(a->name, key) == 0)
            apps_put(ix, r->max_apps, a);
        else {
            jb_log(JB_LOG_WARN, "application", "ignoring an unparseable stored application", "key",
                   key, "error", a ? "name differs from the key" : err.msg, NULL);
            jb_app_release(a);
            apps_del(ix, key);
        }
    } else if (!put) {
        free(app_map_del(&ix->tokens, key, strlen(key)));
    } else {
        cJSON *j = cJSON_ParseWithLength(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
        const cJSON *app = cJSON_GetObjectItemCaseSensitive(j, "application");
        char *owner = cJSON_IsString(app) ? strdup(app->valuestring) : NULL;
        cJSON_Delete(j);
        if (owner != NULL)
            tokens_put(ix, r->max_tokens, key, owner);
    }
}

static void free_indexes(indexes *ix, bucket_kind kind)
{
    if (kind == BUCKET_APPS) {
        app_map_clear(&ix->apps, release_val);
        app_map_clear(&ix->cids, free_cid);
    } else {
        app_map_clear(&ix->tokens, free);
    }
}

/* ------------------------------------------------------------- watching */

/* Reads w's current contents (up to its end-of-initial-values marker) into fresh
 * indexes and swaps them in. */
static jb_status load(watch *wa, kvWatcher *w, jb_err *err)
{
    indexes fresh = {0};
    int64_t deadline = jb_now_monotonic_ns() / 1000000 + LOAD_TIMEOUT_MS;
    const char *bucket = wa->kind == BUCKET_APPS ? JB_APP_BUCKET : JB_APP_TOKEN_BUCKET;
    for (;;) {
        kvEntry *e = NULL;
        int64_t left = deadline - jb_now_monotonic_ns() / 1000000;
        natsStatus s = kvWatcher_Next(&e, w, left > 0 ? left : 1);
        if (s != NATS_OK) {
            free_indexes(&fresh, wa->kind);
            return jb_nats_err(s, bucket, err);
        }
        if (e == NULL)
            break;
        apply_entry(wa->r, wa->kind, e, &fresh);
        kvEntry_Destroy(e);
        /* A large bucket may take long; what must not happen is a silent stall. */
        deadline = jb_now_monotonic_ns() / 1000000 + LOAD_TIMEOUT_MS;
    }
    jb_app_registry *r = wa->r;
    pthread_rwlock_wrlock(&r->lock);
    if (wa->kind == BUCKET_APPS) {
        app_map t = r->ix.apps;
        r->ix.apps = fresh.apps;
        fresh.apps = t;
        t = r->ix.cids;
        r->ix.cids = fresh.cids;
        fresh.cids = t;
    } else {
        app_map t = r->ix.tokens;
        r->ix.tokens = fresh.tokens;
        fresh.tokens = t;
    }
    pthread_rwlock_unlock(&r->lock);
    free_indexes(&fresh, wa->kind); /* what was replaced */
    return JB_OK;
}

/* Sets up wa->w, a new watcher on wa's bucket, and loads the bucket's contents.
 * Fails when stopping. */
static jb_status watch_open(watch *wa, jb_err *err)
{
    static const char *const buckets[2] = {JB_APP_BUCKET, JB_APP_TOKEN_BUCKET};
    if (wa->kv == NULL) {
        jb_status rc = app_kv_open(wa->r->cfg, wa->r->js, buckets[wa->kind], &wa->kv, err);
        if (rc != JB_OK)
            return rc;
    }
    kvWatcher *w = NULL;
    pthread_mutex_lock(&wa->mu);
    natsStatus s =
        atomic_load(&wa->r->stop) ? NATS_ILLEGAL_STATE : kvStore_WatchAll(&w, wa->kv, NULL);
    wa->w = s == NATS_OK ? w : NULL;
    pthread_mutex_unlock(&wa->mu);
    if (s != NATS_OK)
        return jb_nats_err(s, "watching the application registry", err);
    jb_status rc = load(wa, w, err);
    if (rc == JB_OK) {
        atomic_store(&wa->loaded, true);
        return JB_OK;
    }
    pthread_mutex_lock(&wa->mu);
    wa->w = NULL;
    pthread_mutex_unlock(&wa->mu);
    kvWatcher_Destroy(w);
    return rc;
}

static void watch_close(watch *wa)
{
    pthread_mutex_lock(&wa->mu);
    kvWatcher *w = wa->w;
    wa->w = NULL;
    pthread_mutex_unlock(&wa->mu);
    kvWatcher_Destroy(w);
}

static void pause_ms(jb_app_registry *r, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&r->stop); t += 100)
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
}

static void *watch_thread(void *arg)
{
    watch *wa = arg;
    jb_app_registry *r = wa->r;
    bool failing = false;
    while (!atomic_load(&r->stop)) {
        jb_err err = {{0}};
        if (wa->w == NULL && watch_open(wa, &err) != JB_OK) {
            if (!failing && !atomic_load(&r->stop))
                jb_log(JB_LOG_WARN, "application", "registry watch failed; retrying", "error",
                       err.msg, NULL);
            failing = true;
            pause_ms(r, RETRY_MS);
            continue;
        }
        if (failing)
            jb_log(JB_LOG_INFO, "application", "registry watch resumed", "bucket",
                   wa->kind == BUCKET_APPS ? JB_APP_BUCKET : JB_APP_TOKEN_BUCKET, NULL);
        failing = false;
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, wa->w, POLL_MS);
        if (s == NATS_TIMEOUT || (s == NATS_OK && e == NULL))
            continue;
        if (s != NATS_OK) {
            watch_close(wa); /* set up again and reload: changes may have been missed */
            continue;
        }
        pthread_rwlock_wrlock(&r->lock);
        apply_entry(r, wa->kind, e, &r->ix);
        pthread_rwlock_unlock(&r->lock);
        kvEntry_Destroy(e);
    }
    return NULL;
}

/* -------------------------------------------------------- start and stop */

/* Allocates r and, with sync, loads both buckets in the caller's thread; then starts
 * the watcher threads (which load what was not loaded yet, retrying). */
static jb_status registry_open(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                               size_t max_apps, size_t max_tokens, bool sync, jb_app_registry **out,
                               jb_err *err)
{
    jb_app_registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    r->max_apps = max_apps;
    r->max_tokens = max_tokens;
    r->cfg = cfg;
    r->js = js;
    pthread_rwlock_init(&r->lock, NULL);
    atomic_init(&r->stop, false);
    for (int i = 0; i < 2; i++) {
        watch *wa = &r->watches[i];
        wa->r = r;
        wa->kind = i == 0 ? BUCKET_APPS : BUCKET_TOKENS;
        atomic_init(&wa->loaded, false);
        pthread_mutex_init(&wa->mu, NULL);
    }
    jb_status rc = JB_OK;
    if (js == NULL) {
        natsStatus s = natsConnection_JetStream(&r->own_js, nc, NULL);
        rc = s == NATS_OK ? JB_OK : jb_nats_err(s, "application registry", err);
        r->js = r->own_js;
    }
    for (int i = 0; i < 2 && rc == JB_OK && sync; i++)
        rc = watch_open(&r->watches[i], err);
    for (int i = 0; i < 2 && rc == JB_OK; i++) {
        watch *wa = &r->watches[i];
        if (pthread_create(&wa->thread, NULL, watch_thread, wa) != 0)
            rc = jb_err_set(err, JB_ERR_INTERNAL, "cannot start the registry's watcher thread");
        wa->started = rc == JB_OK;
    }
    if (rc != JB_OK) {
        jb_app_registry_stop(r);
        return rc;
    }
    if (sync) {
        size_t ntok = 0;
        size_t napps = jb_app_registry_count(r, &ntok);
        char a[24], t[24];
        snprintf(a, sizeof(a), "%zu", napps);
        snprintf(t, sizeof(t), "%zu", ntok);
        jb_log(JB_LOG_INFO, "application", "application registry loaded", "applications", a,
               "tokens", t, NULL);
    }
    *out = r;
    return JB_OK;
}

jb_status jb_app_registry_start(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                jb_app_registry **out, jb_err *err)
{
    return registry_open(cfg, nc, js, JB_APP_MAX_APPLICATIONS, JB_APP_MAX_TOKENS, true, out, err);
}

jb_status app_registry_start_capped(const struct jb_cfg *cfg, jsCtx *js, size_t max_apps,
                                    size_t max_tokens, jb_app_registry **out, jb_err *err)
{
    return registry_open(cfg, NULL, js, max_apps, max_tokens, true, out, err);
}

jb_status jb_app_registry_create(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                 jb_app_registry **out, jb_err *err)
{
    return registry_open(cfg, nc, js, JB_APP_MAX_APPLICATIONS, JB_APP_MAX_TOKENS, false, out, err);
}

bool jb_app_registry_loaded(jb_app_registry *r)
{
    return r != NULL && atomic_load(&r->watches[0].loaded) && atomic_load(&r->watches[1].loaded);
}

void jb_app_registry_stop(jb_app_registry *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    for (int i = 0; i < 2; i++) {
        watch *wa = &r->watches[i];
        pthread_mutex_lock(&wa->mu);
        if (wa->w != NULL)
            kvWatcher_Stop(wa->w); /* wakes a thread blocked in kvWatcher_Next */
        pthread_mutex_unlock(&wa->mu);
    }
    for (int i = 0; i < 2; i++) {
        watch *wa = &r->watches[i];
        if (wa->started)
            pthread_join(wa->thread, NULL);
        watch_close(wa);
        kvStore_Destroy(wa->kv);
        pthread_mutex_destroy(&wa->mu);
    }
    if (r->own_js != NULL)
        jsCtx_Destroy(r->own_js);
    free_indexes(&r->ix, BUCKET_APPS);
    free_indexes(&r->ix, BUCKET_TOKENS);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

/* ---------------------------------------------------------------- lookups */

/* The application named name[0..len) with a reference for the caller; the read lock
 * is held. */
static const jb_app *ref_locked(jb_app_registry *r, const char *name, size_t len)
{
    jb_app *a = app_map_get(&r->ix.apps, name, len);
    if (a != NULL)
        atomic_fetch_add(&a->refs, 1);
    return a;
}

const jb_app *jb_app_registry_find(jb_app_registry *r, const char *name, size_t len)
{
    if (r == NULL || name == NULL)
        return NULL;
    pthread_rwlock_rdlock(&r->lock);
    const jb_app *a = ref_locked(r, name, len);
    pthread_rwlock_unlock(&r->lock);
    return a;
}

const jb_app *jb_app_registry_find_by_client_id(jb_app_registry *r, const char *cn, size_t len)
{
    if (r == NULL || cn == NULL)
        return NULL;
    pthread_rwlock_rdlock(&r->lock);
    const jb_app *a = ref_locked(r, cn, len);
    if (a == NULL) {
        const cid_entry *c = app_map_get(&r->ix.cids, cn, len);
        if (c != NULL && c->n == 1)
            a = ref_locked(r, c->app, strlen(c->app));
    }
    pthread_rwlock_unlock(&r->lock);
    return a;
}

const jb_app *jb_app_registry_find_by_token(jb_app_registry *r, const char *token, size_t len)
{
    if (r == NULL || token == NULL || len == 0 || len > TOKEN_MAX_LEN)
        return NULL;
    char hash[65];
    jb_sha256_hex(token, len, hash);
    pthread_rwlock_rdlock(&r->lock);
    const char *owner = app_map_get(&r->ix.tokens, hash, 64);
    const jb_app *a = owner ? ref_locked(r, owner, strlen(owner)) : NULL;
    pthread_rwlock_unlock(&r->lock);
    return a;
}

size_t jb_app_registry_count(jb_app_registry *r, size_t *tokens)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->ix.apps.n;
    if (tokens != NULL)
        *tokens = r->ix.tokens.n;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

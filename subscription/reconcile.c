/* The reconciler: JetStream consumers and statuses follow the subscription store.
 *
 * One thread watches the store (kvStore_WatchAll) and makes one subscription at a
 * time right; a full pass over the whole store runs at start, every resync
 * interval, after a reconnect and on request, so that consumers the server lost
 * come back. Every operation is idempotent, so several reconcilers (one per
 * dispatcher process) converge to the same state. */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/sub_internal.h"

#define DEFAULT_RESYNC_MS   30000
#define WATCH_POLL_MS       250
#define DEFAULT_ACK_WAIT_MS 30000

/* What this reconciler did for one subscription key. */
typedef struct entry {
    char *key;
    char *json;             /* manifest last handled; NULL after a failure (retry) */
    char *status;           /* status JSON last written or read */
    jb_sub_consumer_list l; /* consumers announced with consumer_ready */
} entry;

struct jb_sub_reconciler {
    const jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    jb_sub_reconciler_callbacks cb;
    jb_sub_store *store;
    pthread_mutex_t pass_mu;  /* one pass (and one callback) at a time */
    pthread_mutex_t state_mu; /* entries, for jb_sub_reconciler_consumers */
    entry *entries;
    size_t n, cap;
    pthread_t thread;
    bool running;
    atomic_bool stop, kick, synced;
    int64_t resync_ms;
};

/* ------------------------------------------------------------ entries */

static entry *find_entry(jb_sub_reconciler *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->entries[i].key, key) == 0)
            return &r->entries[i];
    return NULL;
}

static entry *add_entry(jb_sub_reconciler *r, const char *key)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        entry *e = realloc(r->entries, ncap * sizeof(*e));
        if (e == NULL)
            return NULL;
        r->entries = e;
        r->cap = ncap;
    }
    entry *e = &r->entries[r->n];
    memset(e, 0, sizeof(*e));
    if ((e->key = strdup(key)) == NULL)
        return NULL;
    r->n++;
    return e;
}

static void drop_entry(jb_sub_reconciler *r, entry *e)
{
    free(e->key);
    free(e->json);
    free(e->status);
    jb_sub_consumer_list_free(&e->l);
    *e = r->entries[--r->n];
}

/* ------------------------------------------------------------ consumers */

static void consumer_config(const jb_sub_reconciler *r, const jb_sub_consumer *c,
                            jsConsumerConfig *cc, char *desc, size_t dcap)
{
    jsConsumerConfig_Init(cc);
    snprintf(desc, dcap, "jetbridge %s/%s %s", c->ns, c->name, c->type);
    cc->Durable = c->consumer;
    cc->Description = desc;
    cc->FilterSubject = c->subject;
    cc->AckPolicy = js_AckExplicit;
    cc->DeliverPolicy =
        r->cfg->consumer_deliver_policy == JB_DELIVER_ALL ? js_DeliverAll : js_DeliverNew;
    int64_t aw = r->cfg->ack_wait_ms > 0 ? r->cfg->ack_wait_ms : DEFAULT_ACK_WAIT_MS;
    cc->AckWait = aw * 1000000;
    /* Kyma's: maxInFlightMessages. DISPATCH_PREFETCH lets the dispatcher hold that
     * many more per consumer (never more at the sink): JetStream must hand them out. */
    cc->MaxAckPending =
        c->delivery.max_in_flight + (r->cfg->dispatch_prefetch > 0 ? r->cfg->dispatch_prefetch : 0);
    /* Unlimited: the dispatcher dead-letters after maxDeliver attempts itself, so
     * JetStream never stops redelivering a message nobody dead-lettered. */
    cc->MaxDeliver = -1;
}

static bool needs_update(const jsConsumerConfig *have, const jsConsumerConfig *want)
{
    return have->AckWait != want->AckWait || have->MaxAckPending != want->MaxAckPending ||
           have->MaxDeliver != want->MaxDeliver ||
           (have->Description == NULL || strcmp(have->Description, want->Description) != 0);
}

/* Settings that cannot change in place: the consumer is re-created. */
static bool needs_recreate(const jsConsumerConfig *have, const jsConsumerConfig *want)
{
    return have->FilterSubject == NULL || strcmp(have->FilterSubject, want->FilterSubject) != 0 ||
           have->AckPolicy != want->AckPolicy ||
           (have->DeliverSubject != NULL && have->DeliverSubject[0] != '\0');
}

/* known: this reconciler created or checked c with these settings before, so it most
 * likely exists as wanted and a read is the cheapest check; otherwise a create. */
static jb_status ensure_consumer(jb_sub_reconciler *r, const jb_sub_consumer *c, bool known,
                                 jb_err *err)
{
    const char *stream = r->cfg->stream_name;
    jsConsumerConfig cc;
    char desc[512];
    consumer_config(r, c, &cc, desc, sizeof(desc));
    jsConsumerInfo *ci = NULL;
    jsErrCode ec = 0;
    /* One request in the common cases: JetStream answers a create of an existing
     * consumer with the same settings with that consumer. Anything else takes the
     * careful path below. */
    natsStatus s = known ? js_GetConsumerInfo(&ci, r->js, stream, c->consumer, NULL, &ec)
                         : js_AddConsumer(&ci, r->js, stream, &cc, NULL, &ec);
    bool done = s == NATS_OK && !needs_recreate(ci->Config, &cc) && !needs_update(ci->Config, &cc);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    if (done)
        return JB_OK;
    s = js_GetConsumerInfo(&ci, r->js, stream, c->consumer, NULL, &ec);
    if (s == NATS_OK && needs_recreate(ci->Config, &cc)) {
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        s = js_DeleteConsumer(r->js, stream, c->consumer, NULL, &ec);
        s = s == NATS_OK ? NATS_NOT_FOUND : s;
    }
    if (s == NATS_NOT_FOUND && ec == JSStreamNotFoundErr) {
        jb_status st = jb_sub_ensure_stream(r->cfg, r->js, err);
        if (st != JB_OK)
            return st;
    }
    if (s == NATS_NOT_FOUND) {
        s = js_AddConsumer(&ci, r->js, stream, &cc, NULL, &ec);
        /* Another reconciler created it in between: update it instead. */
        if (s != NATS_OK && (ec == JSConsumerNameExistErr || ec == JSConsumerExistingActiveErr ||
                             ec == 10148 /* consumer already exists */))
            s = js_UpdateConsumer(&ci, r->js, stream, &cc, NULL, &ec);
    } else if (s == NATS_OK && needs_update(ci->Config, &cc)) {
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        s = js_UpdateConsumer(&ci, r->js, stream, &cc, NULL, &ec);
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        char what[128];
        snprintf(what, sizeof(what), "consumer %s for %s", c->consumer, c->type);
        return jb_nats_err(s, what, err);
    }
    return JB_OK;
}

static void delete_consumer(jb_sub_reconciler *r, const char *name)
{
    jsErrCode ec = 0;
    natsStatus s = js_DeleteConsumer(r->js, r->cfg->stream_name, name, NULL, &ec);
    if (s != NATS_OK && s != NATS_NOT_FOUND)
        jb_log(JB_LOG_WARN, "subscription", "deleting a consumer failed", "consumer", name, "error",
               natsStatus_GetText(s), NULL);
}

static bool same_consumer(const jb_sub_consumer *a, const jb_sub_consumer *b)
{
    return strcmp(a->consumer, b->consumer) == 0 && strcmp(a->sink, b->sink) == 0 &&
           memcmp(&a->delivery, &b->delivery, sizeof(a->delivery)) == 0 &&
           jb_sub_auth_equal(&a->auth, &b->auth);
}

static const jb_sub_consumer *find_consumer(const jb_sub_consumer_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].consumer, name) == 0)
            return &l->items[i];
    return NULL;
}

/* ------------------------------------------------------ one subscription */

static bool fatal_nats(jb_status st)
{
    return st == JB_ERR_NOT_CONNECTED || st == JB_ERR_TIMEOUT || st == JB_ERR_NOMEM;
}

/* Writes the status of s unless the cached one already says the same. */
static jb_status write_status(jb_sub_reconciler *r, entry *e, const jb_sub *s,
                              const char *active_err, jb_err *err)
{
    if (e->status == NULL) {
        char *prev = NULL;
        jb_status st = jb_sub_store_get_status(r->store, s->ns, s->name, &prev, err);
        if (st != JB_OK && st != JB_ERR_NOT_FOUND)
            return st;
        e->status = prev;
    }
    char *json = NULL;
    if (sub_status_json(s, r->cfg, e->status, active_err, &json) != JB_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    if (e->status != NULL && strcmp(e->status, json) == 0) {
        free(json);
        return JB_OK;
    }
    jb_status st = e->status != NULL
                       ? sub_store_write_status(r->store, s->key, json, err)
                       : jb_sub_store_put_status(r->store, s->ns, s->name, json, NULL, err);
    free(e->status);
    e->status = st == JB_OK ? json : NULL;
    if (st != JB_OK)
        free(json);
    return st;
}

/* Consumers of old that new no longer has: deleted, announced as removed. */
static void remove_gone(jb_sub_reconciler *r, const jb_sub_consumer_list *old,
                        const jb_sub_consumer_list *now)
{
    for (size_t i = 0; i < old->n; i++) {
        if (find_consumer(now, old->items[i].consumer) != NULL)
            continue;
        delete_consumer(r, old->items[i].consumer);
        if (r->cb.consumer_removed)
            r->cb.consumer_removed(&old->items[i], r->cb.ud);
    }
}

static void set_entry_list(jb_sub_reconciler *r, entry *e, jb_sub_consumer_list *l)
{
    pthread_mutex_lock(&r->state_mu);
    jb_sub_consumer_list_free(&e->l);
    e->l = *l;
    memset(l, 0, sizeof(*l));
    pthread_mutex_unlock(&r->state_mu);
}

/* Makes the consumers of one subscription right; s == NULL means deleted. */
static jb_status sync_sub(jb_sub_reconciler *r, const char *key, const jb_sub *s, jb_err *err)
{
    entry *e = find_entry(r, key);
    if (s == NULL) {
        if (e != NULL) {
            jb_sub_consumer_list none = {0};
            remove_gone(r, &e->l, &none);
            pthread_mutex_lock(&r->state_mu);
            drop_entry(r, e);
            pthread_mutex_unlock(&r->state_mu);
        }
        return sub_store_delete_status(r->store, key, err);
    }
    if (e != NULL && e->json != NULL && strcmp(e->json, s->json) == 0)
        return JB_OK; /* handled already, and it went well */
    if (e == NULL) {
        pthread_mutex_lock(&r->state_mu);
        e = add_entry(r, key);
        pthread_mutex_unlock(&r->state_mu);
        if (e == NULL)
            return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    free(e->json);
    e->json = NULL;
    jb_sub_consumer_list want = {0}, ready = {0};
    jb_err verr;
    if (jb_sub_consumers(s, r->cfg, &want, &verr) != JB_OK)
        memset(&want, 0, sizeof(want)); /* invalid: no consumers; the status says why */
    jb_err cerr = {{0}};
    jb_status first = JB_OK;
    size_t cap = want.n + e->l.n + 1;
    ready.items = calloc(cap, sizeof(jb_sub_consumer));
    if (ready.items == NULL) {
        jb_sub_consumer_list_free(&want);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < want.n; i++) {
        const jb_sub_consumer *was = find_consumer(&e->l, want.items[i].consumer);
        bool known = was != NULL && same_consumer(was, &want.items[i]);
        jb_status st = ensure_consumer(r, &want.items[i], known, &cerr);
        if (st != JB_OK) {
            if (first == JB_OK)
                first = jb_err_set(err, st, "%s", cerr.msg);
            if (fatal_nats(st))
                break;
            continue;
        }
        if (!known && r->cb.consumer_ready)
            r->cb.consumer_ready(&want.items[i], r->cb.ud);
        ready.items[ready.n++] = want.items[i];
        memset(&want.items[i], 0, sizeof(want.items[i]));
    }
    if (!fatal_nats(first)) {
        remove_gone(r, &e->l, &ready);
    } else {
        /* After a connection failure, keep announcing what was announced before. */
        for (size_t i = 0; i < e->l.n && ready.n < cap; i++)
            if (find_consumer(&ready, e->l.items[i].consumer) == NULL &&
                jb_sub_consumer_copy(&ready.items[ready.n], &e->l.items[i]))
                ready.n++;
    }
    /* The consumer list is published before the status says ready, so whoever sees
     * the status also finds the consumers in jb_sub_reconciler_consumers. */
    set_entry_list(r, e, &ready);
    if (!fatal_nats(first)) {
        jb_status st = write_status(r, e, s, first == JB_OK ? NULL : cerr.msg, err);
        if (first == JB_OK && st == JB_OK)
            e->json = strdup(s->json);
        if (first == JB_OK)
            first = st;
    }
    jb_sub_consumer_list_free(&want);
    return first;
}

/* ------------------------------------------------------------ full pass */

static bool is_our_name(const char *n)
{
    if (strlen(n) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return false;
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes consumers of the stream that no subscription of subs explains. names
 * was read before subs, so a consumer created for a subscription that appeared in
 * between is explained. Only names of our shape (32 hex) are touched: consumers
 * that operators made by hand stay. */
static void delete_unexplained(jb_sub_reconciler *r, jsConsumerNamesList *names,
                               const jb_sub_vec *subs)
{
    size_t n = 0, cap = 0;
    char **wanted = NULL;
    bool ok = true;
    for (size_t k = 0; ok && k < subs->n; k++) {
        jb_sub_consumer_list l = {0};
        jb_err err;
        if (jb_sub_consumers(subs->items[k], r->cfg, &l, &err) != JB_OK)
            continue;
        for (size_t i = 0; ok && i < l.n; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                char **w = realloc(wanted, cap * sizeof(char *));
                ok = w != NULL;
                wanted = w ? w : wanted;
            }
            if (ok && (wanted[n] = strdup(l.items[i].consumer)) != NULL)
                n++;
            else
                ok = false;
        }
        jb_sub_consumer_list_free(&l);
    }
    if (!ok)
        goto done; /* without the full list, deleting is unsafe */
    if (n > 1)
        qsort(wanted, n, sizeof(char *), cmp_name);
    for (int i = 0; names != NULL && i < names->Count; i++) {
        const char *name = names->List[i];
        if (!is_our_name(name) || (n > 0 && bsearch(&name, wanted, n, sizeof(char *), cmp_name)))
            continue;
        jb_log(JB_LOG_INFO, "subscription", "deleting a consumer no subscription explains",
               "consumer", name, NULL);
        delete_consumer(r, name);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(wanted[i]);
    free(wanted);
}

static jb_status open_store(jb_sub_reconciler *r, jb_err *err)
{
    if (r->store != NULL)
        return JB_OK;
    jb_status st = jb_sub_ensure_stream(r->cfg, r->js, err);
    if (st == JB_OK)
        st = jb_sub_store_open(r->cfg, r->js, &r->store, err);
    return st;
}

static jb_status full_pass(jb_sub_reconciler *r, bool unexplained, jb_err *err)
{
    jb_status st = open_store(r, err);
    if (st != JB_OK)
        return st;
    if ((st = jb_sub_ensure_stream(r->cfg, r->js, err)) != JB_OK)
        return st;
    jsConsumerNamesList *names = NULL;
    jsErrCode ec = 0;
    if (unexplained) {
        natsStatus s = js_ConsumerNames(&names, r->js, r->cfg->stream_name, NULL, &ec);
        if (s != NATS_OK && s != NATS_NOT_FOUND)
            return jb_nats_err(s, "listing consumers", err);
    }
    jb_sub_vec subs = {0};
    if ((st = jb_sub_store_list(r->store, NULL, &subs, err)) != JB_OK)
        goto done;
    jb_status first = JB_OK;
    jb_err e1;
    /* Forget what this reconciler cached: a full pass checks everything again,
     * statuses another reconciler may have written included. */
    for (size_t i = 0; i < r->n; i++) {
        free(r->entries[i].json);
        free(r->entries[i].status);
        r->entries[i].json = r->entries[i].status = NULL;
    }
    for (size_t i = 0; i < subs.n && !atomic_load(&r->stop); i++) {
        jb_status s1 = sync_sub(r, subs.items[i]->key, subs.items[i], &e1);
        if (s1 != JB_OK && !fatal_nats(s1)) {
            /* One subscription's trouble (a status the server refuses, a consumer it
             * will not create) is its own: it is retried at the next pass, and the
             * others, deletions and the clean-up go on. */
            jb_log(JB_LOG_WARN, "subscription", "reconciling failed; retrying at the next pass",
                   "key", subs.items[i]->key, "error", e1.msg, NULL);
            continue;
        }
        if (s1 != JB_OK && first == JB_OK) {
            first = s1;
            *err = e1;
        }
        if (fatal_nats(s1))
            break;
    }
    /* Entries whose subscription is gone from the store. */
    for (size_t i = r->n; first == JB_OK && i-- > 0;) {
        bool present = false;
        for (size_t k = 0; !present && k < subs.n; k++)
            present = strcmp(subs.items[k]->key, r->entries[i].key) == 0;
        if (!present) {
            char *key = strdup(r->entries[i].key);
            if (key != NULL)
                (void)sync_sub(r, key, NULL, &e1);
            free(key);
        }
    }
    if (first == JB_OK && unexplained)
        delete_unexplained(r, names, &subs);
    st = first;
done:
    jb_sub_vec_clear(&subs);
    jsConsumerNamesList_Destroy(names);
    return st;
}

/* ------------------------------------------------------------ public API */

jb_status jb_sub_reconciler_create(const jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                   const jb_sub_reconciler_callbacks *cb, jb_sub_reconciler **out,
                                   jb_err *err)
{
    jb_sub_reconciler *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    r->cfg = cfg;
    r->nc = nc;
    r->js = js;
    if (cb != NULL)
        r->cb = *cb;
    pthread_mutex_init(&r->pass_mu, NULL);
    pthread_mutex_init(&r->state_mu, NULL);
    atomic_init(&r->stop, false);
    atomic_init(&r->kick, false);
    atomic_init(&r->synced, false);
    *out = r;
    return JB_OK;
}

jb_status jb_sub_reconciler_sync(jb_sub_reconciler *r, bool unexplained, jb_err *err)
{
    pthread_mutex_lock(&r->pass_mu);
    jb_status st = full_pass(r, unexplained, err);
    pthread_mutex_unlock(&r->pass_mu);
    if (st == JB_OK)
        atomic_store(&r->synced, true);
    return st;
}

/* Handles one watched change. */
static void on_entry(jb_sub_reconciler *r, kvEntry *e)
{
    const char *key = kvEntry_Key(e);
    jb_err err = {{0}};
    jb_status st;
    pthread_mutex_lock(&r->pass_mu);
    if (kvEntry_Operation(e) == kvOp_Put) {
        jb_sub *s = NULL;
        st = sub_from_entry(key, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &s, &err);
        if (st == JB_OK) {
            st = sync_sub(r, key, s, &err);
        } else {
            /* Whatever was under this key is gone: an invalid entry names nothing. */
            jb_log(JB_LOG_WARN, "subscription", "refusing stored subscription", "key", key, "error",
                   err.msg, NULL);
            st = sync_sub(r, key, NULL, &err);
        }
        jb_sub_destroy(s);
    } else {
        st = sync_sub(r, key, NULL, &err);
    }
    pthread_mutex_unlock(&r->pass_mu);
    if (st != JB_OK) {
        /* The KV key is "<namespace>.<name>" (namespaces hold no dots); logs spell a
         * subscription namespace/name, as the CLI does. */
        char ref[512];
        const char *dot = strchr(key, '.');
        snprintf(ref, sizeof(ref), "%.*s/%s", dot ? (int)(dot - key) : 0, key, dot ? dot + 1 : key);
        jb_log(JB_LOG_WARN, "subscription", "reconciling failed; retrying at the next pass",
               "subscription", ref, "error", err.msg, NULL);
        if (fatal_nats(st))
            atomic_store(&r->kick, true);
    }
}

typedef struct loop_state {
    kvWatcher *w;
    bool was_connected;
    uint64_t reconnects;
    bool unexplained_done;
    int64_t next_full_ms;
} loop_state;

static void loop_full(jb_sub_reconciler *r, loop_state *ls)
{
    jb_err err = {{0}};
    jb_status st = jb_sub_reconciler_sync(r, !ls->unexplained_done, &err);
    int64_t now = jb_now_monotonic_ns() / 1000000;
    if (st != JB_OK) {
        jb_log(JB_LOG_WARN, "subscription", "reconcile pass failed; retrying", "error", err.msg,
               NULL);
        ls->next_full_ms = now + 1000;
        return;
    }
    ls->unexplained_done = true;
    ls->next_full_ms = now + r->resync_ms;
    /* Changes made between the pass and this point arrive as the watcher's initial
     * values; those already handled are skipped (same manifest). */
    if (ls->w == NULL) {
        kvWatchOptions o;
        kvWatchOptions_Init(&o);
        if (kvStore_WatchAll(&ls->w, sub_store_kv(r->store), &o) != NATS_OK) {
            ls->w = NULL;
            ls->next_full_ms = now + 1000;
        }
    }
}

/* nats.c's reconnect count: a reconnect between two looks at the connection state
 * still shows. */
static uint64_t reconnects(natsConnection *nc)
{
    natsStatistics *st = NULL;
    uint64_t n = 0;
    if (natsStatistics_Create(&st) == NATS_OK && natsConnection_GetStats(nc, st) == NATS_OK)
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &n);
    natsStatistics_Destroy(st);
    return n;
}

static void *thread_main(void *arg)
{
    jb_sub_reconciler *r = arg;
    loop_state ls = {NULL, jb_nats_connected(r->nc), reconnects(r->nc), false, 0};
    while (!atomic_load(&r->stop)) {
        bool conn = jb_nats_connected(r->nc);
        uint64_t rc = reconnects(r->nc);
        if (conn && (!ls.was_connected || rc != ls.reconnects)) {
            ls.reconnects = rc;
            /* After a reconnect the server may have lost consumers: a full pass. The
             * watcher stays. Its ordered consumer is re-created by nats.c from the
             * next sequence, on a thread of its own, right after the reconnect; a
             * kvWatcher_Destroy meanwhile deletes that consumer by a name nats.c
             * frees under it (docs/subscriptions.md, "The store watcher across
             * reconnects"). */
            ls.next_full_ms = 0;
        }
        ls.was_connected = conn;
        if (atomic_exchange(&r->kick, false))
            ls.next_full_ms = 0;
        if (conn && jb_now_monotonic_ns() / 1000000 >= ls.next_full_ms)
            loop_full(r, &ls);
        if (ls.w == NULL) {
            nats_Sleep(WATCH_POLL_MS);
            continue;
        }
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, ls.w, WATCH_POLL_MS);
        if (s == NATS_OK && e != NULL)
            on_entry(r, e);
        kvEntry_Destroy(e);
        if (s != NATS_OK && s != NATS_TIMEOUT) {
            kvWatcher_Destroy(ls.w);
            ls.w = NULL;
            ls.next_full_ms = 0;
        }
    }
    if (ls.w != NULL)
        kvWatcher_Destroy(ls.w);
    return NULL;
}

jb_status jb_sub_reconciler_start(jb_sub_reconciler *r, int64_t resync_interval_ms, jb_err *err)
{
    if (r->running)
        return jb_err_set(err, JB_ERR_INTERNAL, "reconciler already started");
    r->resync_ms = resync_interval_ms > 0 ? resync_interval_ms : DEFAULT_RESYNC_MS;
    if (pthread_create(&r->thread, NULL, thread_main, r) != 0)
        return jb_err_set(err, JB_ERR_IO, "cannot start the reconciler thread");
    r->running = true;
    return JB_OK;
}

void jb_sub_reconciler_kick(jb_sub_reconciler *r)
{
    atomic_store(&r->kick, true);
}

bool jb_sub_reconciler_synced(const jb_sub_reconciler *r)
{
    return atomic_load(&((jb_sub_reconciler *)r)->synced);
}

jb_status jb_sub_reconciler_consumers(jb_sub_reconciler *r, jb_sub_consumer_list *out)
{
    pthread_mutex_lock(&r->state_mu);
    size_t total = 0;
    for (size_t i = 0; i < r->n; i++)
        total += r->entries[i].l.n;
    jb_sub_consumer_list l = {calloc(total ? total : 1, sizeof(jb_sub_consumer)), 0};
    jb_status st = l.items ? JB_OK : JB_ERR_NOMEM;
    for (size_t i = 0; st == JB_OK && i < r->n; i++)
        for (size_t k = 0; st == JB_OK && k < r->entries[i].l.n; k++)
            if (jb_sub_consumer_copy(&l.items[l.n], &r->entries[i].l.items[k]))
                l.n++;
            else
                st = JB_ERR_NOMEM;
    pthread_mutex_unlock(&r->state_mu);
    if (st != JB_OK) {
        jb_sub_consumer_list_free(&l);
        return st;
    }
    *out = l;
    return JB_OK;
}

void jb_sub_reconciler_destroy(jb_sub_reconciler *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    if (r->running)
        pthread_join(r->thread, NULL);
    while (r->n > 0)
        drop_entry(r, &r->entries[r->n - 1]);
    free(r->entries);
    jb_sub_store_close(r->store);
    pthread_mutex_destroy(&r->pass_mu);
    pthread_mutex_destroy(&r->state_mu);
    free(r);
}

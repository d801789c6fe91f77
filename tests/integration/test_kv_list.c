/*
 * jb_kv_each (common/kv.c) against a real nats-server: it lists a bucket through an
 * ephemeral pull consumer, not a KV watcher. Deleted and purged keys are skipped, a
 * key written twice comes once with its last value, keys read as nats.c reads them,
 * more keys than one fetch batch all come, an empty bucket answers at once, the
 * consumer is gone afterwards, a callback's error stops the listing, and with NATS
 * away the listing fails within its bound.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "common/jb_kv.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

#define BUCKET "jb-kv-list"
#define MANY   (2 * JB_KV_LIST_BATCH + 7)

typedef struct kv_env {
    jb_tnats *n;
    struct jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
} kv_env;

/* What a listing handed over, in order: "key=value" lines. */
typedef struct seen {
    char **items;
    size_t n, cap;
    size_t stop_after; /* 0: never; else the callback fails on that item */
} seen;

static bool env_start(kv_env *e)
{
    memset(e, 0, sizeof(*e));
    jb_err err = {{0}};
    if ((e->n = jb_tnats_start()) == NULL || !jb_tnats_client(e->n, &e->cfg, &e->nc, &e->js))
        return false;
    if (jb_kv_open(e->js, BUCKET, false, 1, &e->kv, &err) != JB_OK) {
        fprintf(stderr, "env: %s\n", err.msg);
        return false;
    }
    return true;
}

static void env_stop(kv_env *e)
{
    kvStore_Destroy(e->kv);
    jb_tnats_client_close(e->cfg, e->nc, e->js);
    jb_tnats_stop(e->n);
}

static void seen_clear(seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

static jb_status record(const jb_kv_item *it, void *ud, jb_err *err)
{
    seen *s = ud;
    if (s->stop_after > 0 && s->n + 1 == s->stop_after)
        return jb_err_set(err, JB_ERR_CONFLICT, "stop at %s", it->key);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **items = realloc(s->items, cap * sizeof(*items));
        if (items == NULL)
            return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        s->items = items;
        s->cap = cap;
    }
    size_t klen = strlen(it->key);
    char *line = malloc(klen + 1 + it->len + 1);
    if (line == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    memcpy(line, it->key, klen);
    line[klen] = '=';
    memcpy(line + klen + 1, it->value, it->len);
    line[klen + 1 + it->len] = '\0';
    s->items[s->n++] = line;
    return JB_OK;
}

static bool has(const seen *s, const char *line)
{
    size_t hits = 0;
    for (size_t i = 0; i < s->n; i++)
        hits += strcmp(s->items[i], line) == 0;
    return hits == 1;
}

static bool has_key(const seen *s, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < s->n; i++)
        if (strncmp(s->items[i], key, klen) == 0 && s->items[i][klen] == '=')
            return true;
    return false;
}

static void put(kv_env *e, const char *key, const char *val)
{
    CU_ASSERT_EQUAL(kvStore_PutString(NULL, e->kv, key, val), NATS_OK);
}

/* The number of consumers on the bucket's stream (a listing leaves none). */
static int consumers(kv_env *e)
{
    jsConsumerNamesList *names = NULL;
    natsStatus s = js_ConsumerNames(&names, e->js, "KV_" BUCKET, NULL, NULL);
    int n = s == NATS_OK ? names->Count : s == NATS_NOT_FOUND ? 0 : -1;
    jsConsumerNamesList_Destroy(names);
    return n;
}

static void test_empty(void)
{
    kv_env e;
    CU_ASSERT_TRUE_FATAL(env_start(&e));
    seen s = {0};
    jb_err err = {{0}};
    int64_t t0 = jb_now_monotonic_ns();
    CU_ASSERT_EQUAL(jb_kv_each(e.js, e.kv, "listing", record, &s, &err), JB_OK);
    int64_t ms = (jb_now_monotonic_ns() - t0) / 1000000;
    CU_ASSERT_EQUAL(s.n, 0);
    /* Three round trips (create, info, delete), no fetch that waits. */
    CU_ASSERT(ms < 1000);
    CU_ASSERT_EQUAL(consumers(&e), 0);
    /* Only markers left: nothing listed either. */
    put(&e, "gone", "1");
    CU_ASSERT_EQUAL(kvStore_Delete(e.kv, "gone"), NATS_OK);
    CU_ASSERT_EQUAL(jb_kv_each(e.js, e.kv, "listing", record, &s, &err), JB_OK);
    CU_ASSERT_EQUAL(s.n, 0);
    seen_clear(&s);
    env_stop(&e);
}

static void test_markers_and_updates(void)
{
    kv_env e;
    CU_ASSERT_TRUE_FATAL(env_start(&e));
    put(&e, "kept", "v1");
    put(&e, "twice", "first");
    put(&e, "deleted", "x");
    put(&e, "ns.name-1", "dotted");
    put(&e, "purged", "y");
    put(&e, "twice", "second");
    CU_ASSERT_EQUAL(kvStore_Delete(e.kv, "deleted"), NATS_OK);
    CU_ASSERT_EQUAL(kvStore_Purge(e.kv, "purged", NULL), NATS_OK);
    put(&e, "back", "old");
    CU_ASSERT_EQUAL(kvStore_Delete(e.kv, "back"), NATS_OK);
    put(&e, "back", "again");
    put(&e, "empty", "");
    seen s = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_kv_each(e.js, e.kv, "listing", record, &s, &err), JB_OK);
    CU_ASSERT_EQUAL(s.n, 5);
    CU_ASSERT_TRUE(has(&s, "kept=v1"));
    CU_ASSERT_TRUE(has(&s, "twice=second"));
    CU_ASSERT_TRUE(has(&s, "ns.name-1=dotted"));
    CU_ASSERT_TRUE(has(&s, "back=again"));
    CU_ASSERT_TRUE(has(&s, "empty="));
    CU_ASSERT_FALSE(has_key(&s, "deleted"));
    CU_ASSERT_FALSE(has_key(&s, "purged"));
    /* The keys are nats.c's: what kvStore_Keys (a watcher) lists, one for one. */
    kvKeysList keys = {0};
    CU_ASSERT_EQUAL_FATAL(kvStore_Keys(&keys, e.kv, NULL), NATS_OK);
    CU_ASSERT_EQUAL(keys.Count, (int)s.n);
    for (int i = 0; i < keys.Count; i++)
        CU_ASSERT_TRUE(has_key(&s, keys.Keys[i]));
    kvKeysList_Destroy(&keys);
    CU_ASSERT_EQUAL(consumers(&e), 0);
    seen_clear(&s);
    env_stop(&e);
}

static void test_many(void)
{
    kv_env e;
    CU_ASSERT_TRUE_FATAL(env_start(&e));
    char key[32], val[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        snprintf(val, sizeof(val), "v%d", i);
        put(&e, key, val);
    }
    /* Every tenth key twice, every seventh deleted: the batches hold markers too. */
    for (int i = 0; i < MANY; i += 10) {
        snprintf(key, sizeof(key), "k%04d", i);
        snprintf(val, sizeof(val), "w%d", i);
        put(&e, key, val);
    }
    size_t want = 0;
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        if (i % 7 == 3) {
            CU_ASSERT_EQUAL(kvStore_Delete(e.kv, key), NATS_OK);
        } else {
            want++;
        }
    }
    seen s = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_kv_each(e.js, e.kv, "listing", record, &s, &err), JB_OK);
    CU_ASSERT_EQUAL(s.n, want);
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        char line[64];
        snprintf(line, sizeof(line), "%s=%c%d", key, i % 10 == 0 ? 'w' : 'v', i);
        if (i % 7 == 3) {
            CU_ASSERT_FALSE(has_key(&s, key));
        } else {
            CU_ASSERT_TRUE(has(&s, line));
        }
    }
    CU_ASSERT_EQUAL(consumers(&e), 0);
    /* A callback's error stops the listing and is returned as it is. */
    seen_clear(&s);
    s.stop_after = JB_KV_LIST_BATCH + 2;
    CU_ASSERT_EQUAL(jb_kv_each(e.js, e.kv, "listing", record, &s, &err), JB_ERR_CONFLICT);
    CU_ASSERT_EQUAL(s.n, JB_KV_LIST_BATCH + 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "stop at"));
    CU_ASSERT_EQUAL(consumers(&e), 0);
    seen_clear(&s);
    env_stop(&e);
}

static void test_nats_away(void)
{
    kv_env e;
    CU_ASSERT_TRUE_FATAL(env_start(&e));
    put(&e, "a", "1");
    CU_ASSERT_TRUE_FATAL(jb_tnats_kill(e.n));
    seen s = {0};
    jb_err err = {{0}};
    int64_t t0 = jb_now_monotonic_ns();
    jb_status rc = jb_kv_each(e.js, e.kv, "listing", record, &s, &err);
    int64_t ms = (jb_now_monotonic_ns() - t0) / 1000000;
    CU_ASSERT_TRUE(rc == JB_ERR_NOT_CONNECTED || rc == JB_ERR_TIMEOUT);
    CU_ASSERT(ms < JB_KV_LIST_TIMEOUT_MS + 2000);
    CU_ASSERT_EQUAL(s.n, 0);
    /* Back again: the next listing works. */
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(e.n));
    rc = JB_ERR_NOT_CONNECTED;
    for (int i = 0; i < 30 && rc != JB_OK; i++) {
        rc = jb_kv_each(e.js, e.kv, "listing", record, &s, &err);
        if (rc != JB_OK)
            nats_Sleep(100);
    }
    CU_ASSERT_EQUAL(rc, JB_OK);
    CU_ASSERT_TRUE(s.n == 1 && has(&s, "a=1"));
    seen_clear(&s);
    env_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"empty bucket answers at once", test_empty},
        {"deleted and purged skipped, last value once", test_markers_and_updates},
        {"more keys than one fetch batch", test_many},
        {"NATS away: fails within the bound", test_nats_away},
    };
    return jb_cunit_main("kv_list", NULL, NULL, cases, JB_CASES_N(cases));
}

/*
 * The subscription store and the reconciler against a real nats-server: apply,
 * change, delete, invalid manifests, consumer settings as JetStream reports them,
 * statuses, a restarted reconciler converging, NATS restarting mid-way and in a
 * loop, two reconcilers at once, the --subscriptions directory watcher, the stream.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "subscription/jb_sub.h"

#define WAIT_MS 20000

typedef struct env {
    jb_tnats *n;
    jb_cfg *cfg;
    natsConnection *nc;
    jsCtx *js;
    jb_sub_store *st;
} env;

static bool env_start(env *e)
{
    memset(e, 0, sizeof(*e));
    jb_err err = {{0}};
    if ((e->n = jb_tnats_start()) == NULL || !jb_tnats_client(e->n, &e->cfg, &e->nc, &e->js))
        return false;
    if (jb_sub_store_open(e->cfg, e->js, &e->st, &err) != JB_OK) {
        fprintf(stderr, "env: %s\n", err.msg);
        return false;
    }
    return true;
}

static void env_stop(env *e)
{
    jb_sub_store_close(e->st);
    jb_tnats_client_close(e->cfg, e->nc, e->js);
    jb_tnats_stop(e->n);
}

#define HEAD "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"

static jb_status apply(env *e, const char *name, const char *spec, jb_sub_apply_result *res)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), HEAD "metadata: {name: %s, namespace: test}\nspec:\n%s", name, spec);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_status st = jb_sub_parse(buf, strlen(buf), "t", NULL, &v, &err);
    jb_sub_apply_result r;
    if (st == JB_OK)
        st = jb_sub_store_put(e->st, v.items[0], res ? res : &r, &err);
    if (st != JB_OK)
        fprintf(stderr, "apply %s: %s\n", name, err.msg);
    jb_sub_vec_clear(&v);
    return st;
}

static jsConsumerInfo *consumer_info(env *e, const char *name)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode ec = 0;
    if (js_GetConsumerInfo(&ci, e->js, "sap", name, NULL, &ec) != NATS_OK)
        return NULL;
    return ci;
}

static bool consumer_exists(env *e, const char *name)
{
    jsConsumerInfo *ci = consumer_info(e, name);
    jsConsumerInfo_Destroy(ci);
    return ci != NULL;
}

static int consumer_count(env *e)
{
    jsConsumerNamesList *l = NULL;
    jsErrCode ec = 0;
    if (js_ConsumerNames(&l, e->js, "sap", NULL, &ec) != NATS_OK)
        return 0;
    int n = l->Count;
    jsConsumerNamesList_Destroy(l);
    return n;
}

static char *consumer_for(const char *name, const char *subject)
{
    static char out[33];
    jb_sub_consumer_name("test", name, subject, out);
    return out;
}

static cJSON *status(env *e, const char *name)
{
    char *json = NULL;
    jb_err err;
    if (jb_sub_store_get_status(e->st, "test", name, &json, &err) != JB_OK)
        return NULL;
    cJSON *j = cJSON_Parse(json);
    free(json);
    return j;
}

static bool status_ready(env *e, const char *name)
{
    cJSON *s = status(e, name);
    bool r = cJSON_IsTrue(cJSON_GetObjectItem(s, "ready"));
    cJSON_Delete(s);
    return r;
}

/* The condition of type t: its status and message. */
static bool condition(const cJSON *s, const char *t, const char **status, const char **msg)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(s, "conditions"))
    {
        if (strcmp(cJSON_GetObjectItem(c, "type")->valuestring, t) == 0) {
            *status = cJSON_GetObjectItem(c, "status")->valuestring;
            *msg = cJSON_GetObjectItem(c, "message")->valuestring;
            return true;
        }
    }
    return false;
}

/* Callbacks record "+name" / "-name". */
typedef struct rec {
    pthread_mutex_t mu;
    char events[256][40];
    int n;
    int max_in_flight[256];
} rec;

static void on_ready(const jb_sub_consumer *c, void *ud)
{
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->n < 256) {
        r->max_in_flight[r->n] = c->delivery.max_in_flight;
        snprintf(r->events[r->n++], 40, "+%s", c->consumer);
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_removed(const jb_sub_consumer *c, void *ud)
{
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->n < 256)
        snprintf(r->events[r->n++], 40, "-%s", c->consumer);
    pthread_mutex_unlock(&r->mu);
}

static int count_events(rec *r, char sign, const char *name)
{
    int k = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++)
        k += r->events[i][0] == sign && strcmp(r->events[i] + 1, name) == 0;
    pthread_mutex_unlock(&r->mu);
    return k;
}

static uint64_t status_revision(env *e, const char *name)
{
    kvStore *kv = NULL;
    kvEntry *en = NULL;
    char key[128];
    snprintf(key, sizeof(key), "test.%s", name);
    uint64_t rev = 0;
    if (js_KeyValue(&kv, e->js, JB_SUB_STATUS_BUCKET) == NATS_OK &&
        kvStore_Get(&en, kv, key) == NATS_OK)
        rev = kvEntry_Revision(en);
    kvEntry_Destroy(en);
    kvStore_Destroy(kv);
    return rev;
}

#define SPEC2                                                                                      \
    "  sink: http://sink.test.svc.cluster.local\n  source: commerce\n"                             \
    "  types: [order.created.v1, order.updated.v1]\n  config: {maxInFlightMessages: \"7\"}\n"

static void test_apply_change_delete(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    jb_sub_apply_result res;
    CU_ASSERT_EQUAL_FATAL(apply(&e, "test", SPEC2, &res), JB_OK);
    CU_ASSERT_EQUAL(res, JB_SUB_CREATED);
    CU_ASSERT_EQUAL(apply(&e, "test", SPEC2, &res), JB_OK);
    CU_ASSERT_EQUAL(res, JB_SUB_UNCHANGED);
    rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    jb_sub_reconciler_callbacks cb = {on_ready, on_removed, &r};
    jb_sub_reconciler *rc = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, &cb, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_sync(rc, true, &err), JB_OK);
    CU_ASSERT_TRUE(jb_sub_reconciler_synced(rc));

    /* The DESIGN.md example name, with the settings of section 3. */
    const char *created = "5ddf41966d8084724770dca95a2f7452";
    char updated[33];
    snprintf(updated, sizeof(updated), "%s",
             consumer_for("test", "kyma.commerce.order.updated.v1"));
    jsConsumerInfo *ci = consumer_info(&e, created);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ci);
    CU_ASSERT_STRING_EQUAL(ci->Config->FilterSubject, "kyma.commerce.order.created.v1");
    CU_ASSERT_EQUAL(ci->Config->AckPolicy, js_AckExplicit);
    CU_ASSERT_EQUAL(ci->Config->DeliverPolicy, js_DeliverNew);
    CU_ASSERT_EQUAL(ci->Config->AckWait, 30LL * 1000000000);
    CU_ASSERT_EQUAL(ci->Config->MaxAckPending, 7);
    CU_ASSERT_EQUAL(ci->Config->MaxDeliver, -1);
    CU_ASSERT_TRUE(ci->Config->DeliverSubject == NULL || ci->Config->DeliverSubject[0] == '\0');
    jsConsumerInfo_Destroy(ci);
    CU_ASSERT_TRUE(consumer_exists(&e, updated));
    CU_ASSERT_EQUAL(count_events(&r, '+', created), 1);
    CU_ASSERT_EQUAL(count_events(&r, '+', updated), 1);

    /* Status in Kyma's shape. */
    cJSON *s = status(&e, "test");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(s, "ready")));
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "types"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(t0, "originalType")->valuestring,
                           "order.created.v1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(t0, "cleanType")->valuestring, "order.created.v1");
    cJSON *b0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "backend"), "types"), 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(b0, "consumerName")->valuestring, created);
    const char *cs = NULL, *cm = NULL;
    CU_ASSERT_TRUE(condition(s, "Subscription spec valid", &cs, &cm));
    CU_ASSERT_STRING_EQUAL(cs, "True");
    CU_ASSERT_TRUE(condition(s, "Subscription active", &cs, &cm));
    CU_ASSERT_STRING_EQUAL(cs, "True");
    cJSON_Delete(s);

    /* A second pass changes nothing: no status write, no callback. */
    uint64_t rev = status_revision(&e, "test");
    CU_ASSERT_EQUAL(jb_sub_reconciler_sync(rc, false, &err), JB_OK);
    CU_ASSERT_EQUAL(status_revision(&e, "test"), rev);
    CU_ASSERT_EQUAL(count_events(&r, '+', created), 1);

    /* Change: one type fewer, another maxInFlightMessages. */
    CU_ASSERT_EQUAL(apply(&e, "test",
                          "  sink: http://sink.test.svc.cluster.local\n  source: commerce\n"
                          "  types: [order.created.v1]\n  config: {maxInFlightMessages: \"3\"}\n",
                          &res),
                    JB_OK);
    CU_ASSERT_EQUAL(res, JB_SUB_CONFIGURED);
    CU_ASSERT_EQUAL(jb_sub_reconciler_sync(rc, false, &err), JB_OK);
    CU_ASSERT_FALSE(consumer_exists(&e, updated));
    CU_ASSERT_EQUAL(count_events(&r, '-', updated), 1);
    ci = consumer_info(&e, created);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ci);
    CU_ASSERT_EQUAL(ci->Config->MaxAckPending, 3);
    jsConsumerInfo_Destroy(ci);
    CU_ASSERT_EQUAL(count_events(&r, '+', created), 2); /* new settings announced */
    CU_ASSERT_EQUAL(consumer_count(&e), 1);

    /* Delete. */
    CU_ASSERT_EQUAL(jb_sub_store_delete(e.st, "test", "test", &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_store_delete(e.st, "test", "test", &err), JB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(jb_sub_reconciler_sync(rc, false, &err), JB_OK);
    CU_ASSERT_FALSE(consumer_exists(&e, created));
    CU_ASSERT_EQUAL(count_events(&r, '-', created), 1);
    CU_ASSERT_PTR_NULL(status(&e, "test"));
    jb_sub_reconciler_destroy(rc);
    env_stop(&e);
}

static void test_invalid_not_ready(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    CU_ASSERT_EQUAL_FATAL(
        apply(&e, "bad", "  sink: http://x.test/\n  types: [order.created.v1]\n", NULL), JB_OK);
    jb_sub_reconciler *rc = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, NULL, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_sync(rc, true, &err), JB_OK);
    cJSON *s = status(&e, "bad");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(s, "ready")));
    const char *cs = NULL, *cm = NULL;
    CU_ASSERT_TRUE(condition(s, "Subscription spec valid", &cs, &cm));
    CU_ASSERT_STRING_EQUAL(cs, "False");
    CU_ASSERT_STRING_EQUAL(cm, "spec.source: Invalid value: \"\": must not be empty");
    CU_ASSERT_TRUE(condition(s, "Subscription active", &cs, &cm));
    CU_ASSERT_STRING_EQUAL(cs, "False");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(s, "types")), 0);
    cJSON_Delete(s);
    CU_ASSERT_EQUAL(consumer_count(&e), 0);
    /* Fixed: it becomes ready. */
    CU_ASSERT_EQUAL(apply(&e, "bad",
                          "  sink: http://x.test/\n  source: app\n  types: [order.created.v1]\n",
                          NULL),
                    JB_OK);
    CU_ASSERT_EQUAL(jb_sub_reconciler_sync(rc, false, &err), JB_OK);
    CU_ASSERT_TRUE(status_ready(&e, "bad"));
    CU_ASSERT_EQUAL(consumer_count(&e), 1);
    jb_sub_reconciler_destroy(rc);
    env_stop(&e);
}

static bool wait_for(bool (*cond)(env *, const char *), env *e, const char *arg, bool want)
{
    for (int i = 0; i < WAIT_MS / 50; i++) {
        if (cond(e, arg) == want)
            return true;
        jb_sleep_ms(50);
    }
    return false;
}

static void test_watch_thread(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    jb_sub_reconciler_callbacks cb = {on_ready, on_removed, &r};
    jb_sub_reconciler *rc = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, &cb, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_start(rc, 0, &err), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "test", SPEC2, NULL), JB_OK);
    const char *created = "5ddf41966d8084724770dca95a2f7452";
    CU_ASSERT_TRUE(wait_for(consumer_exists, &e, created, true));
    CU_ASSERT_TRUE(wait_for(status_ready, &e, "test", true));
    jb_sub_consumer_list l = {0};
    CU_ASSERT_EQUAL(jb_sub_reconciler_consumers(rc, &l), JB_OK);
    CU_ASSERT_EQUAL(l.n, 2);
    jb_sub_consumer_list_free(&l);
    CU_ASSERT_EQUAL(jb_sub_store_delete(e.st, "test", "test", &err), JB_OK);
    CU_ASSERT_TRUE(wait_for(consumer_exists, &e, created, false));
    jb_sub_reconciler_destroy(rc);
    CU_ASSERT_EQUAL(count_events(&r, '+', created), 1);
    CU_ASSERT_EQUAL(count_events(&r, '-', created), 1);
    env_stop(&e);
}

static void add_raw_consumer(env *e, const char *name, const char *subject)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = name;
    cc.FilterSubject = subject;
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    jsErrCode ec = 0;
    CU_ASSERT_EQUAL(js_AddConsumer(&ci, e->js, "sap", &cc, NULL, &ec), NATS_OK);
    jsConsumerInfo_Destroy(ci);
}

/* A reconciler that starts after changes made while none ran converges, and
 * removes consumers nothing explains (but not hand-made ones). */
static void test_restart_converges(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    CU_ASSERT_EQUAL(apply(&e, "test", SPEC2, NULL), JB_OK);
    jb_sub_reconciler *rc = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, NULL, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_sync(rc, true, &err), JB_OK);
    jb_sub_reconciler_destroy(rc);
    CU_ASSERT_EQUAL(consumer_count(&e), 2);
    /* While no reconciler runs: a type goes, an orphan appears, an operator adds one. */
    CU_ASSERT_EQUAL(apply(&e, "test",
                          "  sink: http://sink.test.svc.cluster.local\n  source: commerce\n"
                          "  types: [order.created.v1]\n",
                          NULL),
                    JB_OK);
    add_raw_consumer(&e, "0123456789abcdef0123456789abcdef", "kyma.orphan.x.v1");
    add_raw_consumer(&e, "operator-made", "kyma.ops.x.v1");
    rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    jb_sub_reconciler_callbacks cb = {on_ready, on_removed, &r};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, &cb, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_start(rc, 0, &err), JB_OK);
    for (int i = 0; i < WAIT_MS / 50 && !jb_sub_reconciler_synced(rc); i++)
        jb_sleep_ms(50);
    CU_ASSERT_TRUE(jb_sub_reconciler_synced(rc));
    CU_ASSERT_TRUE(consumer_exists(&e, "5ddf41966d8084724770dca95a2f7452"));
    CU_ASSERT_FALSE(consumer_exists(&e, consumer_for("test", "kyma.commerce.order.updated.v1")));
    CU_ASSERT_FALSE(consumer_exists(&e, "0123456789abcdef0123456789abcdef"));
    CU_ASSERT_TRUE(consumer_exists(&e, "operator-made"));
    CU_ASSERT_EQUAL(consumer_count(&e), 2);
    CU_ASSERT_EQUAL(count_events(&r, '+', "5ddf41966d8084724770dca95a2f7452"), 1);
    jb_sub_reconciler_destroy(rc);
    env_stop(&e);
}

static void test_nats_restart(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    jb_sub_reconciler *rc = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, NULL, &rc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_start(rc, 1000, &err), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "a", SPEC2, NULL), JB_OK);
    char ca[33];
    snprintf(ca, sizeof(ca), "%s", consumer_for("a", "kyma.commerce.order.created.v1"));
    CU_ASSERT_TRUE(wait_for(consumer_exists, &e, ca, true));
    CU_ASSERT_TRUE(jb_tnats_kill(e.n));
    jb_sleep_ms(500); /* the reconciler runs against a dead server meanwhile */
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(e.n));
    for (int i = 0; i < WAIT_MS / 50 && !jb_nats_connected(e.nc); i++)
        jb_sleep_ms(50);
    CU_ASSERT_TRUE_FATAL(jb_nats_connected(e.nc));
    /* Changes after the restart arrive; a consumer the server lost comes back. */
    CU_ASSERT_EQUAL(apply(&e, "b", SPEC2, NULL), JB_OK);
    char cb_[33];
    snprintf(cb_, sizeof(cb_), "%s", consumer_for("b", "kyma.commerce.order.created.v1"));
    CU_ASSERT_TRUE(wait_for(consumer_exists, &e, cb_, true));
    jsErrCode ec = 0;
    CU_ASSERT_EQUAL(js_DeleteConsumer(e.js, "sap", ca, NULL, &ec), NATS_OK);
    CU_ASSERT_TRUE(wait_for(consumer_exists, &e, ca, true));
    CU_ASSERT_TRUE(wait_for(status_ready, &e, "b", true));
    jb_sub_reconciler_destroy(rc);
    env_stop(&e);
}

/* True once r recorded exactly one "+consumer" (at most WAIT_MS). */
static bool wait_announced(rec *r, const char *consumer)
{
    for (int t = 0; t < WAIT_MS / 50 && count_events(r, '+', consumer) == 0; t++)
        jb_sleep_ms(50);
    return count_events(r, '+', consumer) == 1;
}

/* NATS restarts again and again while several reconcilers run, each with its store
 * watcher: a KV watcher is an ordered consumer that nats.c re-creates on a thread of
 * its own after every reconnect. Changes made right after each restart arrive, and
 * so does one made long after the last: with no resync due, through every
 * reconciler's watcher. Under ThreadSanitizer this is the case that showed watchers
 * torn down while nats.c was re-creating their consumers (docs/subscriptions.md, "The
 * store watcher across reconnects"); 16 watchers and 8 rounds make that window
 * likely (2 of 3 runs reported it). With settle, each round waits until every
 * reconciler followed before the next restart; without, restarts land inside the
 * full passes and their store listings (jb_kv_each), where a short-lived watcher
 * used to meet the same race. */
static void nats_restart_loop(bool settle)
{
    enum { RECONCILERS = 16, ROUNDS = 8 };
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    jb_sub_reconciler *rc[RECONCILERS] = {0};
    rec *seen = calloc(RECONCILERS, sizeof(*seen));
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    jb_err err = {{0}};
    for (int i = 0; i < RECONCILERS; i++) {
        pthread_mutex_init(&seen[i].mu, NULL);
        jb_sub_reconciler_callbacks cb = {on_ready, on_removed, &seen[i]};
        CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, &cb, &rc[i], &err),
                              JB_OK);
        CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_start(rc[i], 600000, &err), JB_OK);
    }
    char name[16], c[33];
    for (int round = 0; round < ROUNDS; round++) {
        CU_ASSERT_TRUE_FATAL(jb_tnats_kill(e.n));
        jb_sleep_ms(200);
        CU_ASSERT_TRUE_FATAL(jb_tnats_restart(e.n));
        for (int i = 0; i < WAIT_MS / 50 && !jb_nats_connected(e.nc); i++)
            jb_sleep_ms(50);
        CU_ASSERT_TRUE_FATAL(jb_nats_connected(e.nc));
        snprintf(name, sizeof(name), "r%02d", round);
        CU_ASSERT_EQUAL(apply(&e, name, SPEC2, NULL), JB_OK);
        snprintf(c, sizeof(c), "%s", consumer_for(name, "kyma.commerce.order.created.v1"));
        CU_ASSERT_TRUE(wait_for(consumer_exists, &e, c, true));
        CU_ASSERT_TRUE(wait_for(status_ready, &e, name, true));
        /* Every reconciler follows, before the next restart. */
        for (int i = 0; settle && i < RECONCILERS; i++)
            CU_ASSERT_TRUE(wait_announced(&seen[i], c));
    }
    jb_sleep_ms(2000); /* the passes after the last reconnect are over */
    CU_ASSERT_EQUAL(apply(&e, "last", SPEC2, NULL), JB_OK);
    snprintf(c, sizeof(c), "%s", consumer_for("last", "kyma.commerce.order.created.v1"));
    for (int i = 0; i < RECONCILERS; i++)
        CU_ASSERT_TRUE(wait_announced(&seen[i], c));
    for (int i = 0; i < RECONCILERS; i++)
        jb_sub_reconciler_destroy(rc[i]);
    free(seen);
    env_stop(&e);
}

static void test_nats_restart_loop(void)
{
    nats_restart_loop(true);
}

static void test_nats_restart_passes(void)
{
    nats_restart_loop(false);
}

static void test_two_reconcilers(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    jb_sub_reconciler *r1 = NULL, *r2 = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, NULL, &r1, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(e.cfg, e.nc, e.js, NULL, &r2, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_reconciler_start(r1, 0, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_reconciler_start(r2, 0, &err), JB_OK);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "s%02d", i);
        CU_ASSERT_EQUAL(apply(&e, name, SPEC2, NULL), JB_OK);
    }
    for (int i = 0; i < WAIT_MS / 50 && consumer_count(&e) < 40; i++)
        jb_sleep_ms(50);
    CU_ASSERT_EQUAL(consumer_count(&e), 40);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "s%02d", i);
        CU_ASSERT_TRUE(wait_for(status_ready, &e, name, true));
    }
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "s%02d", i);
        CU_ASSERT_EQUAL(jb_sub_store_delete(e.st, "test", name, &err), JB_OK);
    }
    for (int i = 0; i < WAIT_MS / 50 && consumer_count(&e) > 20; i++)
        jb_sleep_ms(50);
    CU_ASSERT_EQUAL(consumer_count(&e), 20);
    jb_sub_reconciler_destroy(r1);
    jb_sub_reconciler_destroy(r2);
    env_stop(&e);
}

static bool stored(env *e, const char *name)
{
    jb_sub *s = NULL;
    jb_err err;
    bool ok = jb_sub_store_get(e->st, "test", name, &s, &err) == JB_OK;
    jb_sub_destroy(s);
    return ok;
}

static bool stored_two_types(env *e, const char *name)
{
    jb_sub *s = NULL;
    jb_err err;
    bool ok = jb_sub_store_get(e->st, "test", name, &s, &err) == JB_OK && jb_sub_ntypes(s) == 2;
    jb_sub_destroy(s);
    return ok;
}

static void write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(rename(tmp, path), 0);
}

static void test_dirwatch(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    char dir[] = "/tmp/jb-subdir-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char fa[300], fb[300];
    snprintf(fa, sizeof(fa), "%s/a.yaml", dir);
    snprintf(fb, sizeof(fb), "%s/b.yaml", dir);
    write_file(fa, HEAD "metadata: {name: a, namespace: test}\nspec: {sink: 'http://x/', source: "
                        "s, types: [a.b]}\n");
    jb_sub_dirwatch *w = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_dirwatch_start(e.cfg, e.js, dir, &w, &err), JB_OK);
    CU_ASSERT_TRUE(stored(&e, "a")); /* applied before start returned */
    /* A subscription applied by hand is not the directory's to delete. */
    CU_ASSERT_EQUAL(apply(&e, "manual", SPEC2, NULL), JB_OK);
    write_file(fb, HEAD "metadata: {name: b, namespace: test}\nspec: {sink: 'http://x/', source: "
                        "s, types: [a.b]}\n");
    CU_ASSERT_TRUE(wait_for(stored, &e, "b", true));
    write_file(fa, HEAD "metadata: {name: a, namespace: test}\nspec: {sink: 'http://x/', source: "
                        "s, types: [a.b, c.d]}\n");
    CU_ASSERT_TRUE(wait_for(stored_two_types, &e, "a", true));
    /* A broken file leaves its subscriptions alone. */
    write_file(fb, "apiVersion: [\n");
    CU_ASSERT_EQUAL(unlink(fa), 0);
    CU_ASSERT_TRUE(wait_for(stored, &e, "a", false));
    CU_ASSERT_TRUE(stored(&e, "b"));
    CU_ASSERT_EQUAL(unlink(fb), 0);
    CU_ASSERT_TRUE(wait_for(stored, &e, "b", false));
    CU_ASSERT_TRUE(stored(&e, "manual"));
    jb_sub_dirwatch_stop(w);
    rmdir(dir);
    env_stop(&e);
}

static void test_stream_and_subscribed(void)
{
    env e;
    CU_ASSERT_FATAL(env_start(&e));
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_ensure_stream(e.cfg, e.js, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_ensure_stream(e.cfg, e.js, &err), JB_OK);
    jsStreamInfo *si = NULL;
    jsErrCode ec = 0;
    CU_ASSERT_EQUAL_FATAL(js_GetStreamInfo(&si, e.js, "sap", NULL, &ec), NATS_OK);
    CU_ASSERT_STRING_EQUAL(si->Config->Subjects[0], "kyma.>");
    CU_ASSERT_EQUAL(si->Config->Retention, js_InterestPolicy);
    CU_ASSERT_EQUAL(si->Config->Discard, js_DiscardNew);
    CU_ASSERT_EQUAL(si->Config->Storage, js_FileStorage);
    CU_ASSERT_EQUAL(si->Config->MaxBytes, e.cfg->stream_max_bytes);
    CU_ASSERT_EQUAL(si->Config->Duplicates, 120LL * 1000000000);
    jsStreamInfo_Destroy(si);
    e.cfg->stream_max_bytes = 1024 * 1024;
    CU_ASSERT_EQUAL(jb_sub_ensure_stream(e.cfg, e.js, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(js_GetStreamInfo(&si, e.js, "sap", NULL, &ec), NATS_OK);
    CU_ASSERT_EQUAL(si->Config->MaxBytes, 1024 * 1024);
    jsStreamInfo_Destroy(si);

    CU_ASSERT_EQUAL(apply(&e, "x", SPEC2, NULL), JB_OK);
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(
        jb_sub_store_subscribed_json(e.st, e.cfg, "commerce", 8, &json, &len, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(json, "{\"eventsInfo\":[{\"name\":\"order.created\",\"version\":\"v1\"},"
                                 "{\"name\":\"order.updated\",\"version\":\"v1\"}]}");
    free(json);
    env_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"apply, change, delete", test_apply_change_delete},
        {"invalid manifest is not ready, with Kyma's message", test_invalid_not_ready},
        {"reconciler thread follows the store", test_watch_thread},
        {"restarted reconciler converges", test_restart_converges},
        {"NATS restarts mid-way", test_nats_restart},
        {"NATS restarts in a loop, 16 reconcilers", test_nats_restart_loop},
        {"NATS restarts during full passes, 16 reconcilers", test_nats_restart_passes},
        {"two reconcilers at once", test_two_reconcilers},
        {"--subscriptions directory", test_dirwatch},
        {"stream and subscribed event types", test_stream_and_subscribed},
    };
    int rc = jb_cunit_main("sub_reconcile", NULL, NULL, cases, JB_CASES_N(cases));
    nats_Close();
    return rc;
}

/*
 * The application registry against a real nats-server: it loads what the store
 * holds, follows applies, label changes, revokes and deletes, resolves client ids
 * (ambiguous ones identify nobody) and tokens, keeps its bounds, survives a NATS
 * restart, and hands out references that outlive a delete while readers run.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/app_internal.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"
#include "test_app_util.h"

#define WAIT_MS 30000

#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"

static jb_status apply(app_env *e, const char *meta_and_spec)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), HEAD "%s\n", meta_and_spec);
    jb_app_vec v = {0};
    jb_err err = {{0}};
    jb_status st = jb_app_parse(buf, strlen(buf), "t", &v, &err);
    if (st == JB_OK)
        st = jb_app_store_put(e->st, v.items[0], true, &err);
    if (st != JB_OK)
        fprintf(stderr, "apply: %s\n", err.msg);
    jb_app_vec_clear(&v);
    return st;
}

typedef const jb_app *(*lookup_fn)(jb_app_registry *r, const char *key, size_t len);

/* Polls until lookup(key) gives an application whose clean name (clean) or name is
 * want, or nothing when want is NULL. */
static bool wait_lookup(jb_app_registry *r, lookup_fn lookup, const char *key, bool clean,
                        const char *want)
{
    for (int t = 0; t < WAIT_MS; t += 50) {
        const jb_app *a = lookup(r, key, strlen(key));
        const char *got = a == NULL ? NULL : clean ? jb_app_clean_name(a) : jb_app_name(a);
        bool ok = want == NULL ? a == NULL : got != NULL && strcmp(got, want) == 0;
        jb_app_release(a);
        if (ok)
            return true;
        jb_sleep_ms(50);
    }
    return false;
}

#define wait_app(r, name, want)  wait_lookup(r, jb_app_registry_find, name, true, want)
#define wait_token(r, tok, want) wait_lookup(r, jb_app_registry_find_by_token, tok, false, want)
#define wait_cid(r, cid, want)   wait_lookup(r, jb_app_registry_find_by_client_id, cid, false, want)

static void test_load_follow_forget(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(apply(&e, "metadata: {name: erp, labels: {application-type: sap}}\n"
                                    "spec: {compassMetadata: {authentication: {clientIds: "
                                    "[erp-cert, erp-cert]}}}"),
                          JB_OK);
    char *tok = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "erp", &tok, &err), JB_OK);
    jb_app_registry *r = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_registry_start(e.cfg, e.nc, e.js, &r, &err), JB_OK);
    /* Loaded before start returned: no waiting needed. */
    const jb_app *a = jb_app_registry_find(r, "erp", 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(jb_app_clean_name(a), "sap");
    jb_app_release(a);
    CU_ASSERT_PTR_NULL(jb_app_registry_find(r, "erpx", 4));
    CU_ASSERT_PTR_NULL(jb_app_registry_find(r, "er", 2));
    a = jb_app_registry_find_by_token(r, tok, strlen(tok));
    CU_ASSERT_PTR_NOT_NULL(a);
    jb_app_release(a);
    CU_ASSERT_PTR_NULL(jb_app_registry_find_by_token(r, tok, strlen(tok) - 1));
    CU_ASSERT_PTR_NULL(jb_app_registry_find_by_token(r, "", 0));
    a = jb_app_registry_find_by_client_id(r, "erp-cert", 8);
    CU_ASSERT_PTR_NOT_NULL(a);
    jb_app_release(a);
    a = jb_app_registry_find_by_client_id(r, "erp", 3); /* the name is a CN too */
    CU_ASSERT_PTR_NOT_NULL(a);
    jb_app_release(a);
    size_t ntok = 0;
    CU_ASSERT_EQUAL(jb_app_registry_count(r, &ntok), 1);
    CU_ASSERT_EQUAL(ntok, 1);

    /* Applied after start: the watcher brings it. */
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: crm}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "crm", "crm"));
    /* A label change. */
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: crm, labels: {application-type: c4c}}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "crm", "c4c"));
    /* Revoke: the token stops working; the application stays. */
    CU_ASSERT_EQUAL(jb_app_token_revoke(e.st, "erp", NULL, &err), JB_OK);
    CU_ASSERT_TRUE(wait_token(r, tok, NULL));
    CU_ASSERT_TRUE(wait_app(r, "erp", "sap"));
    /* Delete: a reference taken before stays readable. */
    const jb_app *held = jb_app_registry_find(r, "erp", 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "erp", &err), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "erp", NULL));
    CU_ASSERT_TRUE(wait_cid(r, "erp-cert", NULL));
    CU_ASSERT_STRING_EQUAL(jb_app_name(held), "erp");
    jb_app_release(held);
    jb_app_registry_stop(r);
    free(tok);
    app_env_stop(&e);
}

static void test_ambiguous_client_id(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_registry *r = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_registry_start(e.cfg, e.nc, e.js, &r, &err), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: one}\nspec: {compassMetadata: {authentication: "
                              "{clientIds: [shared, one-only]}}}"),
                    JB_OK);
    CU_ASSERT_TRUE(wait_cid(r, "shared", "one"));
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: two}\nspec: {compassMetadata: {authentication: "
                              "{clientIds: [shared]}}}"),
                    JB_OK);
    CU_ASSERT_TRUE(wait_cid(r, "shared", NULL));
    CU_ASSERT_TRUE(wait_cid(r, "one-only", "one"));
    /* "one" drops the shared id: it belongs to "two" alone now. */
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: one}\nspec: {compassMetadata: {authentication: "
                              "{clientIds: [one-only]}}}"),
                    JB_OK);
    CU_ASSERT_TRUE(wait_cid(r, "shared", "two"));
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "two", &err), JB_OK);
    CU_ASSERT_TRUE(wait_cid(r, "shared", NULL));
    CU_ASSERT_TRUE(wait_cid(r, "one-only", "one"));
    jb_app_registry_stop(r);
    app_env_stop(&e);
}

static void test_bounds(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_registry *r = NULL;
    CU_ASSERT_EQUAL_FATAL(app_registry_start_capped(e.cfg, e.js, 2, 1, &r, &err), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: a1}"), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: a2}"), JB_OK);
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: a3}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "a1", "a1"));
    CU_ASSERT_TRUE(wait_app(r, "a2", "a2"));
    char *t1 = NULL, *t2 = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "a1", &t1, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_app_token_create(e.st, "a2", &t2, &err), JB_OK);
    CU_ASSERT_TRUE(wait_token(r, t1, "a1"));
    /* The watcher has seen everything once the marker app is known: a change to a
     * loaded one after all of the above. */
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: a1, labels: {application-type: marker}}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "a1", "marker"));
    size_t ntok = 0;
    CU_ASSERT_EQUAL(jb_app_registry_count(r, &ntok), 2);
    CU_ASSERT_EQUAL(ntok, 1);
    CU_ASSERT_PTR_NULL(jb_app_registry_find(r, "a3", 2));
    CU_ASSERT_PTR_NULL(jb_app_registry_find_by_token(r, t2, strlen(t2)));
    /* Room again: a2 goes, a3 is still refused until it changes (the registry does
     * not re-read refused entries), and a new one fits. */
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "a2", &err), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "a2", NULL));
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: a3, labels: {application-type: back}}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "a3", "back"));
    jb_app_registry_stop(r);
    free(t1);
    free(t2);
    app_env_stop(&e);
}

typedef struct reader {
    jb_app_registry *r;
    atomic_bool *stop;
    size_t hits;
} reader;

static void *read_loop(void *arg)
{
    reader *rd = arg;
    while (!atomic_load(rd->stop)) {
        const jb_app *a = jb_app_registry_find(rd->r, "hot", 3);
        if (a != NULL && strlen(jb_app_clean_name(a)) > 0)
            rd->hits++;
        jb_app_release(a);
        a = jb_app_registry_find_by_client_id(rd->r, "hot-cn", 6);
        jb_app_release(a);
    }
    return NULL;
}

/* Readers on other threads while the watcher replaces and deletes the entry: ASan
 * would report a use after free if a reference did not keep the object alive. */
static void test_concurrent_readers(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    jb_app_registry *r = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_registry_start(e.cfg, e.nc, e.js, &r, &err), JB_OK);
    atomic_bool stop;
    atomic_init(&stop, false);
    reader rd[2] = {{r, &stop, 0}, {r, &stop, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_loop, &rd[i]);
    for (int i = 0; i < 30; i++) {
        char meta[256];
        snprintf(meta, sizeof(meta),
                 "metadata: {name: hot, labels: {application-type: v%d}}\nspec: "
                 "{compassMetadata: {authentication: {clientIds: [hot-cn]}}}",
                 i);
        CU_ASSERT_EQUAL(apply(&e, meta), JB_OK);
        if (i % 10 == 9)
            CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "hot", &err), JB_OK);
    }
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: hot, labels: {application-type: last}}"), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "hot", "last"));
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_TRUE(rd[0].hits + rd[1].hits > 0);
    jb_app_registry_stop(r);
    app_env_stop(&e);
}

/* NATS goes away and comes back: changes made after it returns reach the registry,
 * and so does a delete made while the registry's watch was being set up again. */
static void test_nats_restart(void)
{
    app_env e;
    CU_ASSERT_TRUE_FATAL(app_env_start(&e));
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(apply(&e, "metadata: {name: before}"), JB_OK);
    jb_app_registry *r = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_app_registry_start(e.cfg, e.nc, e.js, &r, &err), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "before", "before"));
    CU_ASSERT_TRUE_FATAL(jb_tnats_kill(e.n));
    jb_sleep_ms(500);
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(e.n));
    /* The store's own calls need the connection back first. */
    jb_status st = JB_ERR_NOT_CONNECTED;
    for (int t = 0; t < WAIT_MS && st != JB_OK; t += 200) {
        st = apply(&e, "metadata: {name: after}");
        if (st != JB_OK)
            jb_sleep_ms(200);
    }
    CU_ASSERT_EQUAL(st, JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "after", "after"));
    CU_ASSERT_EQUAL(jb_app_store_delete(e.st, "before", &err), JB_OK);
    CU_ASSERT_TRUE(wait_app(r, "before", NULL));
    jb_app_registry_stop(r);
    app_env_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"loads, follows applies, revokes and deletes", test_load_follow_forget},
        {"ambiguous client ids identify nobody", test_ambiguous_client_id},
        {"bounds", test_bounds},
        {"readers on other threads during changes", test_concurrent_readers},
        {"NATS restart", test_nats_restart},
    };
    return jb_cunit_main("app_registry", NULL, NULL, cases, JB_CASES_N(cases));
}

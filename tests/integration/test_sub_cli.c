/*
 * `jetbridge sub apply|get|describe|delete` through the real binary against a real
 * nats-server; and a dispatcher-free reconcile pass to see READY in the table.
 */
#include <nats/nats.h>
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

#define T    30000
#define HEAD "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"

static jb_tnats *nats;
static char url_env[128];
static char dir[] = "/tmp/jb-subcli-XXXXXX";

static int run(const char *const *argv, char **out, char **err)
{
    const char *env[] = {url_env, NULL};
    return jb_trun_capture(argv, env, out, err, T);
}

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static const char *const order_v1 =
    HEAD "metadata: {name: order-processor, namespace: shop}\n"
         "spec:\n  sink: http://order-processor.shop.svc.cluster.local:8080/events\n"
         "  source: myapp\n  types: [order.created.v1, order.updated.v1]\n";
static const char *const order_v2 =
    HEAD "metadata: {name: order-processor, namespace: shop}\n"
         "spec:\n  sink: http://order-processor.shop.svc.cluster.local:8080/events\n"
         "  source: myapp\n  types: [order.created.v1]\n"
         "  config: {maxInFlightMessages: \"3\"}\n";

static void test_apply_idempotent(void)
{
    char f[300];
    write_file("order.yaml", order_v1, f, sizeof(f));
    const char *argv[] = {"sub", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(argv, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, "subscription.eventing.kyma-project.io/order-processor created\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(argv, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out,
                           "subscription.eventing.kyma-project.io/order-processor unchanged\n");
    free(out);
    free(err);
    write_file("order.yaml", order_v2, f, sizeof(f));
    CU_ASSERT_EQUAL(run(argv, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out,
                           "subscription.eventing.kyma-project.io/order-processor configured\n");
    free(out);
    free(err);
}

static void test_get_table_and_json(void)
{
    const char *get[] = {"sub", "get", "-n", "shop", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(get, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(strncmp(out, "NAMESPACE", 9), 0);
    const char *cols[] = {"NAME", "READY", "TYPES", "SINK", "AGE"};
    for (size_t i = 0; i < JB_CASES_N(cols); i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cols[i]));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "shop "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order-processor"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order.created.v1"));
    free(out);
    free(err);
    /* Not in the default namespace. */
    const char *get_def[] = {"sub", "get", NULL};
    CU_ASSERT_EQUAL(run(get_def, &out, &err), 0);
    CU_ASSERT_PTR_NULL(strstr(out ? out : "", "order-processor"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No resources found in default namespace."));
    free(out);
    free(err);
    const char *json[] = {"sub", "get", "order-processor", "-n", "shop", "-o", "json", NULL};
    CU_ASSERT_EQUAL(run(json, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *spec = cJSON_GetObjectItem(j, "spec");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "config"), "maxInFlightMessages")
            ->valuestring,
        "3");
    CU_ASSERT_PTR_NOT_NULL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "creationTimestamp"));
    cJSON_Delete(j);
    free(out);
    free(err);
    const char *all[] = {"sub", "get", "-A", "-o", "yaml", NULL};
    CU_ASSERT_EQUAL(run(all, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kind: List"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  - apiVersion: eventing.kyma-project.io/v1alpha2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "maxInFlightMessages: \"3\""));
    free(out);
    free(err);
}

/* A reconcile pass (what a dispatcher does), then READY and describe show it. */
static void test_ready_and_describe(void)
{
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->nats_url);
    cfg->nats_url = strdup(jb_tnats_url(nats));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err e = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(cfg, NULL, "t", false, &nc, &js, &e), JB_OK);
    jb_sub_reconciler *r = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_sub_reconciler_create(cfg, nc, js, NULL, &r, &e), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_reconciler_sync(r, true, &e), JB_OK);
    jb_sub_reconciler_destroy(r);
    jb_nats_close(nc, js);
    jb_cfg_destroy(cfg);

    const char *get[] = {"sub", "get", "-A", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(get, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order-processor                true "));
    free(out);
    free(err);
    const char *desc[] = {"sub", "describe", "order-processor", "-n", "shop", NULL};
    CU_ASSERT_EQUAL(run(desc, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Name:         order-processor"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Ready:  true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Subscription spec valid"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "NATS Subscription active"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Consumers:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kyma.myapp.order.created.v1"));
    char name[33];
    jb_sub_consumer_name("shop", "order-processor", "kyma.myapp.order.created.v1", name);
    char row[64];
    snprintf(row, sizeof(row), "%s   order.created.v1", name);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, row));
    free(out);
    free(err);
}

static void test_errors(void)
{
    char f[300];
    write_file("bad.yaml",
               HEAD "metadata: {name: ok, namespace: shop}\nspec: {}\n---\n" HEAD
                    "metadata: {namespace: shop}\nspec: {}\n",
               f, sizeof(f));
    const char *argv[] = {"sub", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(argv, &out, &err), 1);
    char want[400];
    snprintf(want, sizeof(want), "error: %s: document 2: metadata.name: missing\n", f);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_TRUE(out == NULL || out[0] == '\0'); /* nothing applied */
    free(out);
    free(err);
    /* Invalid spec: stored (shown not ready, as in Kyma), but the command fails with
     * Kyma's message, so a script notices. */
    write_file("invalid.yaml",
               HEAD "metadata: {name: invalid, namespace: shop}\n"
                    "spec: {sink: 'http://x/', source: app, types: [order]}\n",
               f, sizeof(f));
    CU_ASSERT_EQUAL(run(argv, &out, &err), 1);
    CU_ASSERT_STRING_EQUAL(out, "subscription.eventing.kyma-project.io/invalid created\n");
    CU_ASSERT_STRING_EQUAL(err, "error: subscription.eventing.kyma-project.io/invalid is invalid "
                                "(stored, not ready): spec.types: Invalid value: \"order\": "
                                "must have minimum 2 segments\n");
    free(out);
    free(err);
    const char *getinv[] = {"sub", "get", "invalid", "-n", "shop", NULL};
    CU_ASSERT_EQUAL(run(getinv, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "invalid"));
    free(out);
    free(err);
    const char *missing[] = {"sub", "describe", "nope", "-n", "shop", NULL};
    CU_ASSERT_EQUAL(run(missing, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"nope\" not found"));
    free(out);
    free(err);
    /* A name that cannot exist is simply not found (not a NATS error). */
    const char *odd[] = {"sub", "get", "a b>*", "-n", "shop", NULL};
    CU_ASSERT_EQUAL(run(odd, &out, &err), 1);
    CU_ASSERT_STRING_EQUAL(err, "Error from server (NotFound): "
                                "subscriptions.eventing.kyma-project.io \"a b>*\" not found in "
                                "namespace \"shop\"\n");
    free(out);
    free(err);
    const char *usage[] = {"sub", "frobnicate", NULL};
    CU_ASSERT_EQUAL(run(usage, &out, &err), 2);
    free(out);
    free(err);
}

static void test_delete(void)
{
    const char *del[] = {"sub", "delete", "invalid", "-n", "shop", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(del, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, "subscription.eventing.kyma-project.io \"invalid\" deleted\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(run(del, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Error from server (NotFound)"));
    free(out);
    free(err);
    char f[300];
    write_file("order.yaml", order_v2, f, sizeof(f));
    const char *delf[] = {"sub", "delete", "-f", f, NULL};
    CU_ASSERT_EQUAL(run(delf, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out,
                           "subscription.eventing.kyma-project.io \"order-processor\" deleted\n");
    free(out);
    free(err);
    const char *get[] = {"sub", "get", "-A", NULL};
    CU_ASSERT_EQUAL(run(get, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No resources found"));
    free(out);
    free(err);
}

/* A subscription the directory watcher applied keeps its applied-from annotation
 * through a CLI apply of the same manifest from elsewhere, so removing its file from
 * the watched directory still deletes it. */
static void test_apply_keeps_watcher_annotation(void)
{
    char wdir[] = "/tmp/jb-subcli-watch-XXXXXX", wfile[300], f[300];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(wdir));
    const char *text = HEAD "metadata: {name: watched, namespace: shop}\n"
                            "spec: {sink: 'http://127.0.0.1:1/', source: app, types: [a.b.v1]}\n";
    snprintf(wfile, sizeof(wfile), "%s/watched.yaml", wdir);
    FILE *fp = fopen(wfile, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(text, fp);
    fclose(fp);
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->nats_url);
    cfg->nats_url = strdup(jb_tnats_url(nats));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_sub_store *st = NULL;
    jb_err e = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(cfg, NULL, "t", false, &nc, &js, &e), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_store_open(cfg, js, &st, &e), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_apply_dir(st, wdir, &e), JB_OK);
    /* The same manifest, changed, applied by hand from another file. */
    write_file("watched.yaml",
               HEAD "metadata: {name: watched, namespace: shop}\n"
                    "spec: {sink: 'http://127.0.0.1:2/', source: app, types: [a.b.v1]}\n",
               f, sizeof(f));
    const char *argv[] = {"sub", "apply", "-f", f, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(run(argv, &out, &err), 0);
    CU_ASSERT_STRING_EQUAL(out, "subscription.eventing.kyma-project.io/watched configured\n");
    free(out);
    free(err);
    jb_sub *s = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_sub_store_get(st, "shop", "watched", &s, &e), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_sub_sink(s), "http://127.0.0.1:2/");
    CU_ASSERT_PTR_NOT_NULL(jb_sub_annotation(s, JB_SUB_ANNOTATION_DIR));
    jb_sub_destroy(s);
    /* The file leaves the watched directory: the subscription goes. */
    unlink(wfile);
    CU_ASSERT_EQUAL(jb_sub_apply_dir(st, wdir, &e), JB_OK);
    CU_ASSERT_EQUAL(jb_sub_store_get(st, "shop", "watched", &s, &e), JB_ERR_NOT_FOUND);
    rmdir(wdir);
    unlink(f);
    jb_sub_store_close(st);
    jb_nats_close(nc, js);
    jb_cfg_destroy(cfg);
}

static void test_no_server(void)
{
    const char *env[] = {"NATS_URL=nats://127.0.0.1:1", NULL};
    const char *argv[] = {"sub", "get", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(argv, env, &out, &err, T), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nats://127.0.0.1:1"));
    free(out);
    free(err);
}

static int init(void)
{
    nats = jb_tnats_start();
    if (nats == NULL || mkdtemp(dir) == NULL)
        return 1;
    snprintf(url_env, sizeof(url_env), "NATS_URL=%s", jb_tnats_url(nats));
    return 0;
}

static int cleanup(void)
{
    char p[300];
    const char *files[] = {"order.yaml", "bad.yaml", "invalid.yaml", "watched.yaml"};
    for (size_t i = 0; i < JB_CASES_N(files); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    jb_tnats_stop(nats);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"apply: created, unchanged, configured", test_apply_idempotent},
        {"get: table, json, yaml", test_get_table_and_json},
        {"READY and describe after a reconcile", test_ready_and_describe},
        {"errors name file, document and field", test_errors},
        {"delete by name and by file", test_delete},
        {"apply keeps the watcher's applied-from annotation", test_apply_keeps_watcher_annotation},
        {"no server", test_no_server},
    };
    int rc = jb_cunit_main("sub_cli", init, cleanup, cases, JB_CASES_N(cases));
    nats_Close();
    return rc;
}

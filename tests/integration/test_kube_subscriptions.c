/*
 * Kubernetes mode, Subscriptions: `jetbridge run --kubernetes` against a real
 * kube-apiserver, nats-server and sink, as a user holding only the shipped RBAC
 * (deploy/kubernetes/rbac.yaml). kubectl apply of Kyma's own example manifest
 * -> READY true in `kubectl get subscriptions`, consumer exists, events delivered;
 * types changed -> consumers follow; invalid spec -> READY false with Kyma's
 * message; status not rewritten when nothing changes; `sub apply` refuses to
 * overwrite; delete -> consumers gone, then the object.
 */
#include <signal.h>
#include <unistd.h>

#include "test_kube_env.h"

static kenv env;
static jb_tsink *sink;
static jb_tproc *run;
static int ingress, admin;

/* Kyma's own sample Subscription (tests/kyma-manifests, unchanged there); only its
 * sink is pointed at our loopback sink instead of a cluster service. */
static char kyma_example[2048];

static bool load_example(void)
{
    FILE *f = fopen(JB_SOURCE_DIR "/tests/kyma-manifests/subscription-sample.yaml", "r");
    if (f == NULL)
        return false;
    char raw[2048];
    size_t n = fread(raw, 1, sizeof(raw) - 1, f);
    fclose(f);
    raw[n] = '\0';
    const char *at = strstr(raw, "  sink: http://test.test.svc.cluster.local\n");
    if (at == NULL)
        return false;
    snprintf(kyma_example, sizeof(kyma_example), "%.*s  sink: %%s\n%s", (int)(at - raw), raw,
             at + strlen("  sink: http://test.test.svc.cluster.local\n"));
    return strstr(kyma_example, "  types:\n    - order.created.v1\n") != NULL;
}

/* From DESIGN: ns test, name test, subject kyma.commerce.order.created.v1. */
#define CONSUMER_CREATED "5ddf41966d8084724770dca95a2f7452"

static int suite_init(void)
{
    env.k = jb_tkube_start();
    env.n = jb_tnats_start();
    sink = jb_tsink_start();
    if (env.k == NULL || env.n == NULL || sink == NULL || !jb_tkube_install_crds(env.k) ||
        !load_example() || !jb_tkube_grant_shipped_rbac(env.k))
        return 1;
    if (kctl(&env, "create namespace test", NULL, NULL) != 0)
        return 1;
    ingress = jb_free_port();
    admin = jb_free_port();
    char e_nats[128], e_kc[512], e_in[64], e_adm[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", jb_tkube_kubeconfig(env.k, "controller"));
    snprintf(e_in, sizeof(e_in), "INGRESS_PORT=%d", ingress);
    snprintf(e_adm, sizeof(e_adm), "METRICS_ADDR=127.0.0.1:%d", admin);
    const char *argv[] = {"run", "--kubernetes", NULL};
    const char *envv[] = {e_nats, e_kc, e_in, e_adm, "POD_NAMESPACE=kyma-system", NULL};
    run = jb_tproc_start(argv, envv, admin);
    return run == NULL;
}

static int suite_cleanup(void)
{
    jb_tproc_stop(run);
    jb_tsink_stop(sink);
    jb_tnats_stop(env.n);
    jb_tkube_stop(env.k);
    return 0;
}

static void apply_example(const char *types_yaml)
{
    char doc[2048];
    snprintf(doc, sizeof(doc), kyma_example, jb_tsink_url(sink));
    if (types_yaml != NULL) {
        char *t = strstr(doc, "  types:\n    - order.created.v1\n");
        char rest[1024];
        snprintf(rest, sizeof(rest), "%s", t + strlen("  types:\n    - order.created.v1\n"));
        snprintf(t, sizeof(doc) - (size_t)(t - doc), "  types:\n%s%s", types_yaml, rest);
    }
    char *out = NULL;
    int rc = kctl(&env, "apply -f -", doc, &out);
    if (rc != 0)
        fprintf(stderr, "kubectl apply: %s\n", out ? out : "");
    free(out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void test_ready_and_delivered(void)
{
    /* Ready once the first list went through. */
    char why[256] = "";
    int code = 0;
    for (int t = 0; t < KWAIT_MS && (code = readyz(admin, why, sizeof(why))) != 200; t += 500)
        jb_sleep_ms(500);
    CU_ASSERT_EQUAL_FATAL(code, 200);

    apply_example(NULL);
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "test", 1, KWAIT_MS));
    char col[32];
    CU_ASSERT_TRUE(get_column_ready(&env, "test", "test", col, sizeof(col)));
    CU_ASSERT_STRING_EQUAL(col, "true");

    cJSON *j = kget(&env, "subscription -n test test");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *bt =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "backend"), "types");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(bt, 0), "consumerName");
    CU_ASSERT_TRUE(cJSON_IsString(cn) && strcmp(cn->valuestring, CONSUMER_CREATED) == 0);
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(st, "types");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(types, 0), "cleanType");
    CU_ASSERT_TRUE(cJSON_IsString(ct) && strcmp(ct->valuestring, "order.created.v1") == 0);
    /* Both of Kyma's conditions, True, and jetbridge's finalizer on the object. */
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(conds), 2);
    const cJSON *c0 = cJSON_GetArrayItem(conds, 0), *c1 = cJSON_GetArrayItem(conds, 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(c0, "type")->valuestring,
                           "Subscription spec valid");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(c1, "reason")->valuestring,
                           "NATS Subscription active");
    char *fin = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "metadata"), "finalizers"));
    CU_ASSERT_PTR_NOT_NULL(fin && strstr(fin, "jetbridge.io/finalizer"));
    free(fin);
    cJSON_Delete(j);
    CU_ASSERT_TRUE(consumer_exists(jb_tnats_url(env.n), CONSUMER_CREATED));

    /* An event of that type reaches the sink. */
    const char *hdr = "ce-specversion: 1.0\r\nce-type: order.created.v1\r\nce-source: commerce\r\n"
                      "ce-id: k8s-1\r\nContent-Type: application/json\r\n";
    CU_ASSERT_EQUAL(jb_http(ingress, "POST", "/publish", hdr, "{\"n\":1}", 7, NULL, NULL, NULL),
                    204);
    CU_ASSERT_TRUE(jb_tsink_wait(sink, 1, KWAIT_MS) >= 1);
}

static void test_status_not_rewritten(void)
{
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "test", 1, KWAIT_MS));
    double writes = metric(admin, "jetbridge_kube_status_writes_total");
    cJSON *a = kget(&env, "subscription -n test test");
    char rv[64];
    snprintf(rv, sizeof(rv), "%s",
             cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "metadata"),
                                              "resourceVersion")
                 ->valuestring);
    cJSON_Delete(a);
    /* A quiet period spanning several resyncs and Lease renewals: nothing may write. */
    jb_sleep_ms(8000);
    cJSON *b = kget(&env, "subscription -n test test");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(b, "metadata"), "resourceVersion")
                               ->valuestring,
                           rv);
    cJSON_Delete(b);
    CU_ASSERT_EQUAL(metric(admin, "jetbridge_kube_status_writes_total"), writes);
}

static bool backend_types_are(const char *want)
{
    cJSON *j = kget(&env, "subscription -n test test");
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "status"), "backend"),
        "types");
    char got[512] = "";
    const cJSON *it;
    cJSON_ArrayForEach(it, bt)
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "originalType");
        if (cJSON_IsString(o)) {
            size_t n = strlen(got);
            snprintf(got + n, sizeof(got) - n, "%s%s", n ? "," : "", o->valuestring);
        }
    }
    cJSON_Delete(j);
    return strcmp(got, want) == 0;
}

static void test_types_change(void)
{
    apply_example("    - order.created.v1\n    - order.updated.v1\n");
    bool ok = false;
    for (int t = 0; t < KWAIT_MS && !ok; t += 500) {
        ok = backend_types_are("order.created.v1,order.updated.v1");
        if (!ok)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE_FATAL(ok);
    CU_ASSERT_TRUE(wait_ready(&env, "test", "test", 1, KWAIT_MS));
    /* The consumer of the removed type goes. */
    apply_example("    - order.updated.v1\n");
    CU_ASSERT_TRUE(wait_consumer(jb_tnats_url(env.n), CONSUMER_CREATED, false, KWAIT_MS));
    ok = false;
    for (int t = 0; t < KWAIT_MS && !ok; t += 500) {
        ok = backend_types_are("order.updated.v1");
        if (!ok)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE(ok);
    apply_example(NULL);
    CU_ASSERT_TRUE(wait_consumer(jb_tnats_url(env.n), CONSUMER_CREATED, true, KWAIT_MS));
}

static void test_invalid_spec(void)
{
    const char *doc = "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
                      "metadata: {name: bad, namespace: test}\n"
                      "spec:\n  sink: ftp://example/x\n  source: commerce\n"
                      "  types: [order.created.v1]\n";
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "apply -f -", doc, NULL), 0);
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "bad", 0, KWAIT_MS));
    char col[32];
    CU_ASSERT_TRUE(get_column_ready(&env, "test", "bad", col, sizeof(col)));
    CU_ASSERT_STRING_EQUAL(col, "false");
    cJSON *j = kget(&env, "subscription -n test bad");
    const cJSON *c0 =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(j, "status"), "conditions"),
                           0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    CU_ASSERT_TRUE(cJSON_IsString(msg) &&
                   strcmp(msg->valuestring, "spec.sink: Invalid value: \"ftp://example/x\": must "
                                            "have URL scheme 'http' or 'https'") == 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(c0, "reason")->valuestring,
                           "Subscription spec has validation errors");
    cJSON_Delete(j);
}

static void test_cli_refuses_kubernetes_owned(void)
{
    char path[] = "/tmp/jb-kube-sub-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    char doc[2048];
    int n = snprintf(doc, sizeof(doc), kyma_example, "http://127.0.0.1:1/other");
    CU_ASSERT_EQUAL(write(fd, doc, (size_t)n), n);
    close(fd);
    char e_nats[128];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    const char *argv[] = {"sub", "apply", "-f", path, NULL};
    const char *envv[] = {e_nats, NULL};
    char *out = NULL, *err = NULL;
    int rc = jb_trun_capture(argv, envv, &out, &err, 30000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "test/test is owned by Kubernetes"));
    free(out);
    free(err);
    unlink(path);
    /* The mirrored sink is still Kubernetes' one: delivery keeps going there. */
    const char *gargv[] = {"sub", "get", "test", "-n", "test", "-o", "json", NULL};
    CU_ASSERT_EQUAL(jb_trun(gargv, envv, &out, 30000), 0);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, jb_tsink_url(sink)));
    free(out);
}

static void test_delete(void)
{
    CU_ASSERT_TRUE_FATAL(wait_consumer(jb_tnats_url(env.n), CONSUMER_CREATED, true, KWAIT_MS));
    /* kubectl delete waits until the finalizer is gone, i.e. the consumers are. */
    char *out = NULL;
    int rc = kctl(&env, "delete subscription -n test test --timeout=120s", NULL, &out);
    if (rc != 0)
        fprintf(stderr, "kubectl delete: %s\n", out ? out : "");
    free(out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_FALSE(consumer_exists(jb_tnats_url(env.n), CONSUMER_CREATED));
    CU_ASSERT_EQUAL(sub_ready(&env, "test", "test"), -1);
    CU_ASSERT_NOT_EQUAL(kctl(&env, "get subscription -n test test", NULL, NULL), 0);
    /* And it is gone from the store. */
    char e_nats[128];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    const char *gargv[] = {"sub", "get", "test", "-n", "test", NULL};
    const char *envv[] = {e_nats, NULL};
    bool gone = false;
    for (int t = 0; t < KWAIT_MS && !gone; t += 500) {
        gone = jb_trun_capture(gargv, envv, NULL, NULL, 30000) != 0;
        if (!gone)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE(gone);
}

/* Applications are mirrored into the registry; Kyma's application-type label then
 * replaces the application's name in the legacy (prefixed) copy of its events. */
static void test_application_type_label(void)
{
    const char *app = "apiVersion: applicationconnector.kyma-project.io/v1alpha1\n"
                      "kind: Application\n"
                      "metadata:\n  name: system-prod\n  labels: {application-type: commerce}\n"
                      "spec:\n  description: This is the system-production Application.\n";
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "apply -f -", app, NULL), 0);
    char e_nats[128];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    const char *gargv[] = {"app", "get", "system-prod", "-o", "json", NULL};
    const char *envv[] = {e_nats, NULL};
    bool mirrored = false;
    for (int t = 0; t < KWAIT_MS && !mirrored; t += 500) {
        char *out = NULL;
        mirrored = jb_trun(gargv, envv, &out, 30000) == 0 && out != NULL &&
                   strstr(out, "\"jetbridge.io/managed-by\"") != NULL &&
                   strstr(out, "commerce") != NULL;
        free(out);
        if (!mirrored)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE_FATAL(mirrored);

    /* A subscription to the legacy copy under the label's name. */
    jb_tsink *s2 = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
             "metadata: {name: legacy, namespace: test}\n"
             "spec:\n  sink: %s\n  source: kyma\n  typeMatching: exact\n"
             "  types: [sap.kyma.custom.commerce.order.created.v1]\n",
             jb_tsink_url(s2));
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "apply -f -", doc, NULL), 0);
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "legacy", 1, KWAIT_MS));
    const char *body = "{\"event-type\":\"order.created\",\"event-type-version\":\"v1\","
                       "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{\"id\":7}}";
    /* The publisher's registry follows the store's KV watch: poll until it applies. */
    bool delivered = false;
    for (int t = 0; t < KWAIT_MS && !delivered; t += 1000) {
        CU_ASSERT_EQUAL(jb_http(ingress, "POST", "/system-prod/v1/events",
                                "Content-Type: application/json\r\n", body, strlen(body), NULL,
                                NULL, NULL),
                        200);
        delivered = jb_tsink_wait(s2, 1, 1000) >= 1;
    }
    CU_ASSERT_TRUE(delivered);
    jb_treq r;
    if (delivered && jb_tsink_get(s2, 0, &r)) {
        const char *type = jb_treq_header(&r, "ce-type");
        CU_ASSERT_PTR_NOT_NULL(type && strstr(type, "commerce"));
        jb_treq_free(&r);
    }
    CU_ASSERT_EQUAL(kctl(&env, "delete subscription -n test legacy --timeout=120s", NULL, NULL), 0);
    jb_tsink_stop(s2);
    /* Deleted in Kubernetes: gone from the registry's store. */
    CU_ASSERT_EQUAL(kctl(&env, "delete application system-prod", NULL, NULL), 0);
    bool gone = false;
    for (int t = 0; t < KWAIT_MS && !gone; t += 500) {
        gone = jb_trun_capture(gargv, envv, NULL, NULL, 30000) != 0;
        if (!gone)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE(gone);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"kubectl apply of Kyma's example: READY true, consumer, delivery",
         test_ready_and_delivered},
        {"status is not rewritten when nothing changes", test_status_not_rewritten},
        {"types changed: consumers follow", test_types_change},
        {"invalid spec: READY false with Kyma's message", test_invalid_spec},
        {"sub apply refuses a Kubernetes-owned subscription", test_cli_refuses_kubernetes_owned},
        {"delete: consumers gone, then the object", test_delete},
        {"Application mirrored; application-type label changes the legacy subject",
         test_application_type_label},
    };
    return jb_cunit_main("kube_subscriptions", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

/*
 * Every Kubernetes manifest the repository ships, against a real kube-apiserver (v1.20.2):
 * deploy/kubernetes and examples/kubernetes pass `kubectl apply --dry-run=server`, file by file
 * and as a kustomization; examples/subscriptions and Kyma's own example manifests apply unchanged
 * once the CRDs are installed; the CRDs fill in Kyma's defaults, keep status in its subresource
 * and show READY in `kubectl get subscriptions`; the RBAC grants the service account exactly
 * what docs/kubernetes.md says, no more.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

#define MAX_FILES 128
#define SA        "system:serviceaccount:kyma-system:jetbridge"

static jb_tkube *kube;

typedef struct file_list {
    char *paths[MAX_FILES];
    size_t n;
    bool overflow;
} file_list;

static bool contains(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Collects the .yaml and .yml files under dir (recursively), except kustomization files, which
 * are not Kubernetes objects (they are tested with -k). */
static void collect_yaml(const char *dir, file_list *out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            collect_yaml(path, out);
            continue;
        }
        if (!(ends_with(e->d_name, ".yaml") || ends_with(e->d_name, ".yml")) ||
            strcmp(e->d_name, "kustomization.yaml") == 0)
            continue;
        if (out->n == MAX_FILES) {
            out->overflow = true;
            continue;
        }
        out->paths[out->n++] = strdup(path);
    }
    closedir(d);
}

static void free_list(file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    l->n = 0;
}

static bool list_has(const file_list *l, const char *suffix)
{
    for (size_t i = 0; i < l->n; i++)
        if (ends_with(l->paths[i], suffix))
            return true;
    return false;
}

/* kubectl ARGS FILE; on failure prints the file and kubectl's answer. Returns the exit code. */
static int kubectl_file(const char *args, const char *path)
{
    char cmd[1400], *out = NULL;
    snprintf(cmd, sizeof(cmd), "%s '%s'", args, path);
    int rc = jb_tkube_kubectl(kube, cmd, NULL, &out);
    if (rc != 0)
        fprintf(stderr, "kubectl %s failed (%d):\n%s\n", cmd, rc, out ? out : "");
    free(out);
    return rc;
}

/* The value at a jsonpath of one object, malloc'd ("" on failure). */
static char *jsonpath(const char *object, const char *path)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof(cmd), "get %s -o 'jsonpath=%s'", object, path);
    if (jb_tkube_kubectl(kube, cmd, NULL, &out) != 0) {
        fprintf(stderr, "kubectl %s: %s\n", cmd, out ? out : "");
        free(out);
        return strdup("");
    }
    return out;
}

static int suite_init(void)
{
    kube = jb_tkube_start();
    if (kube == NULL || !jb_tkube_install_crds(kube))
        return 1; /* every case fails, none is skipped */
    /* Dry runs of namespaced objects need their namespace to exist for real. */
    return kubectl_file("apply -f", JB_SOURCE_DIR "/deploy/kubernetes/namespace.yaml") == 0 ? 0 : 1;
}

static int suite_cleanup(void)
{
    jb_tkube_stop(kube);
    kube = NULL;
    return 0;
}

static void test_shipped_manifests_dry_run(void)
{
    file_list files = {0};
    collect_yaml(JB_SOURCE_DIR "/deploy/kubernetes", &files);
    collect_yaml(JB_SOURCE_DIR "/examples/kubernetes", &files);
    CU_ASSERT(!files.overflow);
    /* The walk found what the repository ships (a broken walk must not pass by testing nothing). */
    CU_ASSERT(
        list_has(&files, "/deploy/kubernetes/crds/subscriptions.eventing.kyma-project.io.yaml"));
    CU_ASSERT(list_has(&files, "/deploy/kubernetes/rbac.yaml"));
    CU_ASSERT(list_has(&files, "/deploy/kubernetes/publisher.yaml"));
    CU_ASSERT(list_has(&files, "/deploy/kubernetes/dispatcher.yaml"));
    CU_ASSERT(list_has(&files, "/deploy/kubernetes/nats.yaml"));
    CU_ASSERT(list_has(&files, "/deploy/kubernetes/optional/controller.yaml"));
    CU_ASSERT(list_has(&files, "/examples/kubernetes/order-processor.yaml"));
    for (size_t i = 0; i < files.n; i++) {
        char *out = NULL, cmd[1400];
        snprintf(cmd, sizeof(cmd), "apply --dry-run=server -f '%s'", files.paths[i]);
        int rc = jb_tkube_kubectl(kube, cmd, NULL, &out);
        if (rc != 0 || !contains(out, "(server dry run)"))
            fprintf(stderr, "%s:\n%s\n", files.paths[i], out ? out : "");
        CU_ASSERT(rc == 0);
        CU_ASSERT(contains(out, "(server dry run)"));
        free(out);
    }
    free_list(&files);
    /* The one-command install. */
    CU_ASSERT(kubectl_file("apply --dry-run=server -k", JB_SOURCE_DIR "/deploy/kubernetes") == 0);
}

static void test_example_subscriptions_apply(void)
{
    file_list files = {0};
    collect_yaml(JB_SOURCE_DIR "/examples/subscriptions", &files);
    CU_ASSERT(files.n >= 3);
    CU_ASSERT(list_has(&files, "/order-processor.yaml"));
    /* Example Applications too, whenever the repository ships some. */
    collect_yaml(JB_SOURCE_DIR "/examples/applications", &files);
    CU_ASSERT(!files.overflow);
    for (size_t i = 0; i < files.n; i++)
        CU_ASSERT(kubectl_file("apply --dry-run=server -f", files.paths[i]) == 0);
    free_list(&files);
}

static void test_kyma_examples_unchanged(void)
{
    CU_ASSERT_FATAL(jb_tkube_kubectl(kube, "create namespace test", NULL, NULL) == 0);
    CU_ASSERT(kubectl_file("apply -f", JB_SOURCE_DIR "/tests/kyma-manifests") == 0);

    /* The CRD's defaults, as in Kyma: typeMatching standard, maxInFlightMessages "10". */
    char *v = jsonpath("subscription lastorder-sub", "{.spec.typeMatching}");
    CU_ASSERT_STRING_EQUAL(v, "standard");
    free(v);
    v = jsonpath("subscription lastorder-sub", "{.spec.config.maxInFlightMessages}");
    CU_ASSERT_STRING_EQUAL(v, "10");
    free(v);
    v = jsonpath("subscription test -n test", "{.spec.source}");
    CU_ASSERT_STRING_EQUAL(v, "commerce");
    free(v);
    /* Fields of Kyma's documented Application survive the structural schema (not pruned). */
    v = jsonpath("application system-prod", "{.spec.description}");
    CU_ASSERT_STRING_EQUAL(v, "This is the system-production Application.");
    free(v);
    v = jsonpath("application system-prod", "{.spec.labels.region}");
    CU_ASSERT_STRING_EQUAL(v, "us");
    free(v);
}

static void test_status_subresource_and_ready_column(void)
{
    char *out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get subscriptions", NULL, &out) == 0);
    CU_ASSERT(contains(out, "NAME"));
    CU_ASSERT(contains(out, "READY"));
    CU_ASSERT(contains(out, "AGE"));
    CU_ASSERT(contains(out, "lastorder-sub"));
    free(out);
    out = NULL; /* no status yet: READY is empty */
    CU_ASSERT(jb_tkube_kubectl(kube, "get subscription lastorder-sub --no-headers", NULL, &out) ==
              0);
    CU_ASSERT(contains(out, "lastorder-sub") && !contains(out, "true"));
    free(out);

    /* Status is written through its subresource only, as jetbridge writes it (a merge patch;
     * the API directly, because kubectl 1.20 cannot patch a subresource)... */
    const char *status = "{\"status\":{\"ready\":true,\"types\":[{\"originalType\":"
                         "\"order.received.v1\",\"cleanType\":\"order.received.v1\"}]}}";
    out = NULL;
    int code = jb_tkube_request(kube, "admin", "PATCH",
                                "/apis/eventing.kyma-project.io/v1alpha2/namespaces/default/"
                                "subscriptions/lastorder-sub/status",
                                "application/merge-patch+json", status, &out);
    if (code != 200)
        fprintf(stderr, "status patch: %d %s\n", code, out ? out : "");
    CU_ASSERT(code == 200);
    free(out);
    out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, "get subscription lastorder-sub --no-headers", NULL, &out) ==
              0);
    CU_ASSERT(contains(out, "lastorder-sub") && contains(out, "true"));
    free(out);
    /* ... and a status in a write of the main resource is ignored. */
    CU_ASSERT(jb_tkube_kubectl(kube,
                               "patch subscription lastorder-sub --type=merge "
                               "-p '{\"status\":{\"ready\":false}}'",
                               NULL, NULL) == 0);
    char *v = jsonpath("subscription lastorder-sub", "{.status.ready}");
    CU_ASSERT_STRING_EQUAL(v, "true");
    free(v);
}

/* Applies a Subscription with spec (YAML flow) in a dry run; kubectl's exit code and output. */
static int dry_run_spec(const char *name, const char *spec, char **out)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "apiVersion: eventing.kyma-project.io/v1alpha2\n"
             "kind: Subscription\n"
             "metadata: {name: %s, namespace: default}\n"
             "spec: %s\n",
             name, spec);
    return jb_tkube_kubectl(kube, "apply --dry-run=server -f -", doc, out);
}

static void test_schema_rejects_invalid(void)
{
    /* The valid twin first: the failures below are the schema's doing, nothing else's. */
    char *out = NULL;
    CU_ASSERT(dry_run_spec("valid",
                           "{source: myapp, sink: http://a.default.svc.cluster.local, "
                           "types: [order.created.v1], config: {maxInFlightMessages: \"10\"}}",
                           &out) == 0);
    free(out);
    out = NULL;
    CU_ASSERT(dry_run_spec("no-sink", "{source: myapp, types: [order.created.v1]}", &out) != 0);
    CU_ASSERT(contains(out, "\"sink\"") || contains(out, "spec.sink"));
    free(out);
    out = NULL;
    CU_ASSERT(dry_run_spec("no-types", "{source: myapp, sink: http://a.default.svc.cluster.local}",
                           &out) != 0);
    CU_ASSERT(contains(out, "\"types\"") || contains(out, "spec.types"));
    free(out);
    /* config values are strings, as in Kyma: a number is refused. */
    out = NULL;
    CU_ASSERT(dry_run_spec("bad-config",
                           "{source: myapp, sink: http://a.default.svc.cluster.local, "
                           "types: [order.created.v1], config: {maxInFlightMessages: 10}}",
                           &out) != 0);
    CU_ASSERT(contains(out, "maxInFlightMessages"));
    free(out);
}

/* `kubectl auth can-i` as the jetbridge service account: exit 0 yes, 1 no. */
static int can_i(const char *what)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "auth can-i --as=%s %s", SA, what);
    return jb_tkube_kubectl(kube, cmd, NULL, NULL);
}

static void test_rbac_least_privilege(void)
{
    CU_ASSERT_FATAL(kubectl_file("apply -f", JB_SOURCE_DIR "/deploy/kubernetes/rbac.yaml") == 0);
    static const char *const allowed[] = {
        "list subscriptions.eventing.kyma-project.io -A",
        "watch subscriptions.eventing.kyma-project.io -A",
        "get subscriptions.eventing.kyma-project.io -n test",
        "patch subscriptions.eventing.kyma-project.io -n test",
        "update subscriptions.eventing.kyma-project.io -n default",
        "patch subscriptions.eventing.kyma-project.io --subresource=status -n default",
        "update subscriptions.eventing.kyma-project.io --subresource=status -n default",
        "update subscriptions.eventing.kyma-project.io --subresource=finalizers -n default",
        "list applications.applicationconnector.kyma-project.io",
        "watch applications.applicationconnector.kyma-project.io",
        "get secrets -n default",
        "create leases.coordination.k8s.io -n kyma-system",
        "get leases.coordination.k8s.io/jetbridge-controller -n kyma-system",
        "update leases.coordination.k8s.io/jetbridge-controller -n kyma-system",
    };
    static const char *const denied[] = {
        "create subscriptions.eventing.kyma-project.io -n default",
        "delete subscriptions.eventing.kyma-project.io -n default",
        "update applications.applicationconnector.kyma-project.io",
        "delete applications.applicationconnector.kyma-project.io",
        "list secrets -n default",
        "watch secrets -A",
        "create leases.coordination.k8s.io -n default",
        "update leases.coordination.k8s.io/other -n kyma-system",
        "delete leases.coordination.k8s.io/jetbridge-controller -n kyma-system",
        "get pods -n kyma-system",
        "create events -n kyma-system",
        "get configmaps -n kyma-system",
    };
    for (size_t i = 0; i < JB_CASES_N(allowed); i++) {
        int rc = can_i(allowed[i]);
        if (rc != 0)
            fprintf(stderr, "service account may not: %s (%d)\n", allowed[i], rc);
        CU_ASSERT(rc == 0);
    }
    for (size_t i = 0; i < JB_CASES_N(denied); i++) {
        int rc = can_i(denied[i]);
        if (rc != 1)
            fprintf(stderr, "service account may: %s (%d)\n", denied[i], rc);
        CU_ASSERT(rc == 1);
    }
}

/* A bound token of the ServiceAccount, as a pod gets it (TokenRequest; `kubectl create token`
 * needs kubectl 1.24). Returns it malloc'd, or NULL. */
static char *service_account_token(void)
{
    char *out = NULL, *token = NULL;
    int code = jb_tkube_request(kube, "admin", "POST",
                                "/api/v1/namespaces/kyma-system/serviceaccounts/jetbridge/token",
                                "application/json",
                                "{\"apiVersion\":\"authentication.k8s.io/v1\","
                                "\"kind\":\"TokenRequest\",\"spec\":{}}",
                                &out);
    cJSON *doc = code == 201 && out != NULL ? cJSON_ParseWithLength(out, strlen(out)) : NULL;
    const cJSON *t =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "status"), "token");
    if (cJSON_IsString(t))
        token = strdup(t->valuestring);
    else
        fprintf(stderr, "TokenRequest: %d %s\n", code, out ? out : "");
    cJSON_Delete(doc);
    free(out);
    return token;
}

static void test_service_account_token(void)
{
    char *token = service_account_token();
    CU_ASSERT_FATAL(token != NULL);
    CU_ASSERT(strlen(token) > 100);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof(cmd), "--kubeconfig '%s' --token '%s' get subscriptions -A -o name",
             jb_tkube_kubeconfig(kube, "norbac"), token);
    CU_ASSERT(jb_tkube_kubectl(kube, cmd, NULL, &out) == 0);
    CU_ASSERT(contains(out, "subscription.eventing.kyma-project.io/lastorder-sub"));
    free(out);
    snprintf(cmd, sizeof(cmd),
             "--kubeconfig '%s' --token '%s' delete subscription lastorder-sub -n default",
             jb_tkube_kubeconfig(kube, "norbac"), token);
    out = NULL;
    CU_ASSERT(jb_tkube_kubectl(kube, cmd, NULL, &out) != 0);
    CU_ASSERT(contains(out, "forbidden"));
    free(out);
    free(token);
}

static const jb_test_case cases[] = {
    {"deploy/ and examples/kubernetes pass apply --dry-run=server (each file, and -k deploy)",
     test_shipped_manifests_dry_run},
    {"examples/subscriptions (and examples/applications) apply once the CRDs are installed",
     test_example_subscriptions_apply},
    {"Kyma's own example manifests apply unchanged; CRD defaults filled in",
     test_kyma_examples_unchanged},
    {"status subresource; kubectl get subscriptions shows READY",
     test_status_subresource_and_ready_column},
    {"the CRD schema rejects what Kyma's rejects", test_schema_rejects_invalid},
    {"RBAC grants the service account what jetbridge needs and nothing more",
     test_rbac_least_privilege},
    {"a bound service-account token works with that RBAC", test_service_account_token},
};

int main(void)
{
    return jb_cunit_main("kube_manifests", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

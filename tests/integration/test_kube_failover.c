/*
 * Kubernetes mode, failures: a token without RBAC (not ready, one clear line, no
 * busy loop, no exit; the token file rotated to one with rights: ready, no restart); two
 * controllers (one Lease holder, SIGKILL of the leader -> the standby takes over and serves new
 * objects); kube-apiserver killed and restarted with etcd compacted meanwhile (delivery goes on,
 * /readyz says why, 410 -> relist, new objects served afterwards).
 */
#include <signal.h>
#include <unistd.h>

#include "test_kube_env.h"

static kenv env;
static jb_tsink *sink;

static int suite_init(void)
{
    env.k = jb_tkube_start();
    env.n = jb_tnats_start();
    sink = jb_tsink_start();
    if (env.k == NULL || env.n == NULL || sink == NULL || !jb_tkube_install_crds(env.k))
        return 1;
    return kctl(&env, "create namespace fo", NULL, NULL) != 0;
}

static int suite_cleanup(void)
{
    jb_tsink_stop(sink);
    jb_tnats_stop(env.n);
    jb_tkube_stop(env.k);
    return 0;
}

typedef enum mode { CONTROLLER, RUN, DISPATCHER } mode;

/* Starts `jetbridge controller`, `run --kubernetes` or `dispatcher --kubernetes` with
 * the kubeconfig of user (a harness user name, or a path when it has a '/'). */
static jb_tproc *start(const char *user, const char *pod, int admin, int ingress, mode m)
{
    char e_nats[128], e_kc[512], e_adm[64], e_pod[64], e_in[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s",
             strchr(user, '/') ? user : jb_tkube_kubeconfig(env.k, user));
    snprintf(e_adm, sizeof(e_adm), "METRICS_ADDR=127.0.0.1:%d", admin);
    snprintf(e_pod, sizeof(e_pod), "POD_NAME=%s", pod);
    snprintf(e_in, sizeof(e_in), "INGRESS_PORT=%d", ingress > 0 ? ingress : jb_free_port());
    const char *cargv[] = {"controller", NULL};
    const char *rargv[] = {"run", "--kubernetes", NULL};
    const char *dargv[] = {"dispatcher", "--kubernetes", NULL};
    const char *envv[] = {
        e_nats, e_kc, e_adm, e_pod, e_in, "POD_NAMESPACE=default", "APP_LOG_FORMAT=text", NULL};
    return jb_tproc_start(m == RUN ? rargv : m == DISPATCHER ? dargv : cargv, envv, admin);
}

static void apply_sub(const char *name, const char *type)
{
    CU_ASSERT_EQUAL_FATAL(kapply_sub(&env, "fo", name, jb_tsink_url(sink), type), 0);
}

static void test_rbac_forbidden(void)
{
    int admin = jb_free_port();
    /* A kubeconfig whose tokenFile holds a token without rights; the file is re-read
     * on every request, so replacing the token later needs no restart. */
    char kc[256], tok[256];
    snprintf(kc, sizeof(kc), "%s/rotating.kubeconfig", jb_tkube_dir(env.k));
    snprintf(tok, sizeof(tok), "%s/rotating.token", jb_tkube_dir(env.k));
    FILE *f = fopen(tok, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s\n", jb_tkube_token(env.k, "norbac"));
    fclose(f);
    f = fopen(kc, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            "clusters:\n- name: k\n  cluster: {server: '%s', certificate-authority: '%s'}\n"
            "users:\n- name: u\n  user: {tokenFile: rotating.token}\n"
            "contexts:\n- name: t\n  context: {cluster: k, user: u}\n",
            jb_tkube_url(env.k), jb_tkube_ca_file(env.k));
    fclose(f);
    jb_tproc *p = start(kc, "norbac", admin, 0, CONTROLLER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(wait_log(p, "forbidden by RBAC", KWAIT_MS));
    CU_ASSERT_TRUE(
        wait_log(p, "verb=list resource=subscriptions.eventing.kyma-project.io", KWAIT_MS));
    char why[300] = "";
    int code = 0;
    for (int t = 0; t < KWAIT_MS && !strstr(why, "forbidden"); t += 500) {
        code = readyz(admin, why, sizeof(why));
        if (!strstr(why, "forbidden"))
            jb_sleep_ms(500);
    }
    CU_ASSERT_EQUAL(code, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "forbidden"));
    /* No busy loop and no log flood: over 10 s, a few lines at most (one per verb and
     * resource every 5 s), and far fewer requests than a tight loop would make. */
    size_t lines0 = count_in_log(p, "forbidden by RBAC");
    double req0 = metric_sum(admin, "jetbridge_kube_requests_total", "code=\"403\"");
    jb_sleep_ms(10000);
    size_t lines = count_in_log(p, "forbidden by RBAC") - lines0;
    double reqs = metric_sum(admin, "jetbridge_kube_requests_total", "code=\"403\"") - req0;
    CU_ASSERT_TRUE(lines <= 8);
    CU_ASSERT_TRUE(reqs <= 30);
    /* Still running, still saying why. */
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 0), -1);
    CU_ASSERT_EQUAL(readyz(admin, NULL, 0), 503);
    /* The token rotates to one with rights: ready without a restart. */
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.new", tok);
    f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "%s\n", jb_tkube_token(env.k, "admin"));
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(rename(tmp, tok), 0);
    for (int t = 0; t < KWAIT_MS && readyz(admin, NULL, 0) != 200; t += 500)
        jb_sleep_ms(500);
    CU_ASSERT_EQUAL(readyz(admin, NULL, 0), 200);
    /* No token ever reaches the log. */
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NULL(log ? strstr(log, jb_tkube_token(env.k, "norbac")) : NULL);
    CU_ASSERT_PTR_NULL(log ? strstr(log, jb_tkube_token(env.k, "admin")) : NULL);
    free(log);
    jb_tproc_stop(p);
}

static char *lease_holder(void)
{
    cJSON *j = kget(&env, "lease -n default jetbridge-controller");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "spec"),
                                                      "holderIdentity");
    char *s = cJSON_IsString(h) ? strdup(h->valuestring) : NULL;
    cJSON_Delete(j);
    return s;
}

static void test_leader_election(void)
{
    int a_port = jb_free_port(), b_port = jb_free_port();
    /* A standalone controller and a dispatcher with the controller inside. */
    jb_tproc *a = start("admin", "ctl-a", a_port, 0, CONTROLLER);
    jb_tproc *b = start("admin", "ctl-b", b_port, 0, DISPATCHER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Exactly one leader, and the Lease names it. */
    double la = 0, lb = 0;
    for (int t = 0; t < KWAIT_MS && la + lb != 1; t += 500) {
        la = metric(a_port, "jetbridge_kube_leader");
        lb = metric(b_port, "jetbridge_kube_leader");
        if (la + lb != 1)
            jb_sleep_ms(500);
    }
    CU_ASSERT_EQUAL_FATAL(la + lb, 1);
    char *holder = lease_holder();
    CU_ASSERT_PTR_NOT_NULL_FATAL(holder);
    CU_ASSERT_EQUAL(strncmp(holder, la == 1 ? "ctl-a_" : "ctl-b_", 6), 0);
    free(holder);
    /* The standby is ready too (it reaches the API server). */
    CU_ASSERT_EQUAL(readyz(a_port, NULL, 0), 200);
    CU_ASSERT_EQUAL(readyz(b_port, NULL, 0), 200);
    apply_sub("one", "order.created.v1");
    CU_ASSERT_TRUE(wait_ready(&env, "fo", "one", 1, KWAIT_MS));

    /* SIGKILL of the leader: no release, the standby waits out the lease. */
    jb_tproc *leader = la == 1 ? a : b, *standby = la == 1 ? b : a;
    int standby_port = la == 1 ? b_port : a_port;
    jb_tproc_signal(leader, SIGKILL);
    (void)jb_tproc_wait(leader, 10000);
    double l = 0;
    for (int t = 0; t < KWAIT_MS && l != 1; t += 500) {
        l = metric(standby_port, "jetbridge_kube_leader");
        if (l != 1)
            jb_sleep_ms(500);
    }
    CU_ASSERT_EQUAL_FATAL(l, 1);
    holder = lease_holder();
    CU_ASSERT_PTR_NOT_NULL(holder && strncmp(holder, standby == a ? "ctl-a_" : "ctl-b_", 6) == 0);
    free(holder);
    apply_sub("two", "order.updated.v1");
    CU_ASSERT_TRUE(wait_ready(&env, "fo", "two", 1, KWAIT_MS));
    jb_tproc_stop(a);
    jb_tproc_stop(b);
}

static void test_apiserver_restart_and_relist(void)
{
    int admin = jb_free_port(), ingress = jb_free_port();
    jb_tproc *p = start("admin", "runner", admin, ingress, RUN);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    apply_sub("three", "item.shipped.v1");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "fo", "three", 1, KWAIT_MS));
    for (int t = 0; t < KWAIT_MS && readyz(admin, NULL, 0) != 200; t += 500)
        jb_sleep_ms(500);
    CU_ASSERT_EQUAL(readyz(admin, NULL, 0), 200);

    CU_ASSERT_TRUE_FATAL(jb_tkube_apiserver_kill(env.k));
    char why[300] = "";
    int code = 0;
    for (int t = 0; t < KWAIT_MS && code != 503; t += 500) {
        code = readyz(admin, why, sizeof(why));
        if (code != 503)
            jb_sleep_ms(500);
    }
    CU_ASSERT_EQUAL(code, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not ready: "));
    /* Delivery goes on from the last known state. */
    size_t before = jb_tsink_count(sink);
    const char *hdr = "ce-specversion: 1.0\r\nce-type: item.shipped.v1\r\nce-source: shop\r\n"
                      "ce-id: down-1\r\nContent-Type: application/json\r\n";
    CU_ASSERT_EQUAL(jb_http(ingress, "POST", "/publish", hdr, "{}", 2, NULL, NULL, NULL), 204);
    CU_ASSERT_TRUE(jb_tsink_wait(sink, before + 1, KWAIT_MS) >= before + 1);
    /* The process stays up while the API server is away. */
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 0), -1);

    /* etcd compacted meanwhile: the watch cannot resume from its resourceVersion. */
    CU_ASSERT_TRUE(jb_tkube_compact(env.k));
    CU_ASSERT_TRUE_FATAL(jb_tkube_apiserver_restart(env.k));
    for (int t = 0; t < KWAIT_MS && readyz(admin, NULL, 0) != 200; t += 500)
        jb_sleep_ms(500);
    CU_ASSERT_EQUAL(readyz(admin, NULL, 0), 200);
    CU_ASSERT_TRUE(wait_log(p, "410 Gone", KWAIT_MS));
    /* Served again: a new object becomes ready, a deleted one goes. */
    apply_sub("four", "item.returned.v1");
    CU_ASSERT_TRUE(wait_ready(&env, "fo", "four", 1, KWAIT_MS));
    CU_ASSERT_EQUAL(kctl(&env, "delete subscription -n fo three --timeout=120s", NULL, NULL), 0);
    jb_tproc_stop(p);
}

static void test_watch_namespaces(void)
{
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "create namespace only", NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "create namespace other", NULL, NULL), 0);
    int admin = jb_free_port();
    char e_nats[128], e_kc[512], e_adm[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", jb_tkube_kubeconfig(env.k, "admin"));
    snprintf(e_adm, sizeof(e_adm), "METRICS_ADDR=127.0.0.1:%d", admin);
    const char *argv[] = {"controller", "--watch-namespaces", "only", NULL};
    const char *envv[] = {e_nats, e_kc, e_adm, "POD_NAMESPACE=default", NULL};
    jb_tproc *p = jb_tproc_start(argv, envv, admin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const char *tmpl = "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
                       "metadata: {name: s, namespace: %s}\n"
                       "spec:\n  sink: %s\n  source: shop\n  types: [order.created.v1]\n";
    char doc[1024];
    snprintf(doc, sizeof(doc), tmpl, "other", jb_tsink_url(sink));
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "apply -f -", doc, NULL), 0);
    snprintf(doc, sizeof(doc), tmpl, "only", jb_tsink_url(sink));
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "apply -f -", doc, NULL), 0);
    CU_ASSERT_TRUE(wait_ready(&env, "only", "s", 1, KWAIT_MS));
    /* The other namespace is not this controller's: no status, no finalizer. */
    CU_ASSERT_EQUAL(sub_ready(&env, "other", "s"), -1);
    char *out = NULL;
    CU_ASSERT_EQUAL(
        kctl(&env, "get subscription -n other s -o jsonpath={.metadata.finalizers}", NULL, &out),
        0);
    CU_ASSERT_PTR_NULL(out ? strstr(out, "jetbridge.io/finalizer") : NULL);
    free(out);
    jb_tproc_stop(p);
    CU_ASSERT_EQUAL(kctl(&env, "delete subscription -n other s", NULL, NULL), 0);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"token without RBAC: not ready, one clear line, no busy loop", test_rbac_forbidden},
        {"two controllers: one Lease holder, SIGKILL -> takeover", test_leader_election},
        {"kube-apiserver killed and restarted, etcd compacted: resumes, relists",
         test_apiserver_restart_and_relist},
        {"WATCH_NAMESPACES: only those namespaces are mirrored", test_watch_namespaces},
    };
    return jb_cunit_main("kube_failover", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

/*
 * Kubernetes mode, API access: one real etcd + kube-apiserver with its watch cache on, a client
 * CA (certificates made by openssl in the test: tests/integration/id_certs.sh) and an audit log.
 * In-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, a service-account token and CA file)
 * with a bound token that rotates (the file rewritten, the old token invalidated: the requests
 * that follow carry the new one; the file gone: /readyz names it); watch bookmarks (the next watch
 * starts from the bookmark's resourceVersion, as the API server's audit log shows);
 * client-certificate authentication (files and -data); invalid credentials (a bad token, an expired
 * certificate): a clear error, /readyz 503, the process stays up; the Application CRD absent:
 * logged once, ready, served.
 */
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_kube_env.h"

static kenv env;
static char certdir[] = "/tmp/jb-kubecerts-XXXXXX";
static char ca_path[600];

static bool make_certs(void)
{
    if (mkdtemp(certdir) == NULL)
        return false;
    char cmd[1024];
    /* ca.pem/.key, jb-cert-user.pem/.key (CN jb-cert-user), expired.pem/.key (CN app1,
     * valid only in 2020) */
    snprintf(cmd, sizeof(cmd), "sh %s/tests/integration/id_certs.sh %s jb-cert-user", JB_SOURCE_DIR,
             certdir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", certdir);
    return system(cmd) == 0;
}

static int api_port(void)
{
    const char *colon = strrchr(jb_tkube_url(env.k), ':');
    return colon ? (int)strtol(colon + 1, NULL, 10) : 0;
}

static int suite_init(void)
{
    if (!make_certs())
        return 1;
    jb_tkube_opts o = {.watch_cache = true, .client_ca_file = ca_path, .audit = true};
    env.k = jb_tkube_start_opts(&o);
    env.n = jb_tnats_start();
    if (env.k == NULL || env.n == NULL || !jb_tkube_install_crds(env.k))
        return 1;
    char args[1024];
    snprintf(args, sizeof(args),
             "apply -f %s/deploy/kubernetes/namespace.yaml -f %s/deploy/kubernetes/rbac.yaml",
             JB_SOURCE_DIR, JB_SOURCE_DIR);
    /* The certificate users may do anything: a refusal can then only be authentication's. */
    return kctl(&env, args, NULL, NULL) != 0 ||
           kctl(&env,
                "create clusterrolebinding jb-certs --clusterrole=cluster-admin "
                "--user=jb-cert-user --user=app1",
                NULL, NULL) != 0 ||
           kctl(&env, "create namespace acc", NULL, NULL) != 0;
}

static int suite_cleanup(void)
{
    jb_tnats_stop(env.n);
    jb_tkube_stop(env.k);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
    (void)system(cmd);
    return 0;
}

/* A whole file, NUL-terminated, malloc'd (at most max bytes); NULL when unreadable. */
static char *read_all(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = f ? malloc(max + 1) : NULL;
    size_t n = b ? fread(b, 1, max, f) : 0;
    if (f != NULL)
        fclose(f);
    if (b != NULL)
        b[n] = '\0';
    if (len != NULL)
        *len = n;
    return b;
}

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Replaces path's content at once, as the kubelet swaps a projected token. */
static bool replace_file(const char *path, const char *text)
{
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    return write_file(tmp, text) && rename(tmp, path) == 0;
}

/* Starts `jetbridge controller` with extra environment lines (NULL-terminated, at most 6). */
static jb_tproc *start(int admin, const char *const *extra)
{
    char e_nats[128], e_adm[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=%s", jb_tnats_url(env.n));
    snprintf(e_adm, sizeof(e_adm), "METRICS_ADDR=127.0.0.1:%d", admin);
    const char *envv[12] = {e_nats, e_adm, "APP_LOG_FORMAT=text", "POD_NAME=acc"};
    size_t n = 4;
    for (size_t i = 0; extra[i] != NULL && n < 11; i++)
        envv[n++] = extra[i];
    envv[n] = NULL;
    const char *argv[] = {"controller", NULL};
    return jb_tproc_start(argv, envv, admin);
}

static bool wait_readyz(int admin, int want, char *why, size_t cap, int ms)
{
    char buf[512] = "";
    int code = 0;
    for (int t = 0; t < ms; t += 500) {
        code = readyz(admin, buf, sizeof(buf));
        if (code == want)
            break;
        jb_sleep_ms(500);
    }
    if (why != NULL)
        snprintf(why, cap, "%s", buf);
    return code == want;
}

static void apply_sub(const char *ns, const char *name)
{
    char type[128];
    snprintf(type, sizeof(type), "%s.created.v1", name);
    CU_ASSERT_EQUAL_FATAL(kapply_sub(&env, ns, name, "http://127.0.0.1:9/events", type), 0);
}

/* `kubectl get ... -o jsonpath=PATH` into out; true when it printed something. */
static bool kjsonpath(const char *what, const char *path, char *out, size_t cap)
{
    char args[512], *o = NULL;
    snprintf(args, sizeof(args), "get %s -o jsonpath=%s", what, path);
    bool ok = kctl(&env, args, NULL, &o) == 0 && o != NULL && o[0] != '\0';
    snprintf(out, cap, "%s", ok ? o : "");
    free(o);
    return ok;
}

/* ------------------------------------------------------------ in-cluster */

/* A token of ServiceAccount kyma-system/jetbridge bound to Secret name (created here): it
 * stops being valid when that Secret is deleted, as a pod's token does with its pod. */
static char *bound_token(const char *secret)
{
    char args[256], uid[128], path[256], body[512];
    snprintf(args, sizeof(args), "create secret generic %s -n kyma-system", secret);
    snprintf(path, sizeof(path), "secret -n kyma-system %s", secret);
    if (kctl(&env, args, NULL, NULL) != 0 || !kjsonpath(path, "{.metadata.uid}", uid, sizeof(uid)))
        return NULL;
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\",\"spec\":{"
             "\"expirationSeconds\":3600,\"boundObjectRef\":{\"apiVersion\":\"v1\","
             "\"kind\":\"Secret\",\"name\":\"%s\",\"uid\":\"%s\"}}}",
             secret, uid);
    char *out = NULL;
    int code = jb_tkube_request(env.k, "admin", "POST",
                                "/api/v1/namespaces/kyma-system/serviceaccounts/jetbridge/token",
                                "application/json", body, &out);
    cJSON *j = code == 201 && out ? cJSON_Parse(out) : NULL;
    const cJSON *t =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "status"), "token");
    char *tok = cJSON_IsString(t) ? strdup(t->valuestring) : NULL;
    cJSON_Delete(j);
    free(out);
    return tok;
}

/* True when the API server refuses token (401): kubectl as that token. */
static bool token_refused(const char *token)
{
    char args[2048], *out = NULL;
    snprintf(args, sizeof(args), "--token '%s' get --raw /apis/eventing.kyma-project.io", token);
    bool refused = kctl(&env, args, NULL, &out) != 0 && out && strstr(out, "Unauthorized");
    free(out);
    return refused;
}

#define LEASE_GET_OK "verb=\"get\",resource=\"leases.coordination.k8s.io\",code=\"200\""

static void test_in_cluster_token_rotation(void)
{
    char sa[600], tokf[700], caf[700];
    snprintf(sa, sizeof(sa), "%s/serviceaccount", jb_tkube_dir(env.k));
    snprintf(tokf, sizeof(tokf), "%s/token", sa);
    snprintf(caf, sizeof(caf), "%s/ca.crt", sa);
    CU_ASSERT_EQUAL_FATAL(mkdir(sa, 0700), 0);
    char *ca = read_all(jb_tkube_ca_file(env.k), 1 << 20, NULL);
    char *tok_a = bound_token("tok-a"), *tok_b = bound_token("tok-b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok_a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok_b);
    CU_ASSERT_TRUE_FATAL(write_file(caf, ca));
    CU_ASSERT_TRUE_FATAL(write_file(tokf, tok_a));
    free(ca);

    /* No kubeconfig: the pod's environment and files, nothing else. */
    int admin = jb_free_port();
    char e_port[64], e_dir[700], server[64];
    snprintf(e_port, sizeof(e_port), "KUBERNETES_SERVICE_PORT=%d", api_port());
    snprintf(e_dir, sizeof(e_dir), "KUBE_SERVICE_ACCOUNT_DIR=%s", sa);
    snprintf(server, sizeof(server), "server=https://127.0.0.1:%d", api_port());
    const char *extra[] = {"KUBECONFIG=", "KUBERNETES_SERVICE_HOST=127.0.0.1", e_port,
                           e_dir,         "POD_NAMESPACE=kyma-system",         NULL};
    jb_tproc *p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(wait_log(p, server, KWAIT_MS));
    CU_ASSERT_TRUE(wait_readyz(admin, 200, NULL, 0, KWAIT_MS));
    apply_sub("acc", "incluster");
    CU_ASSERT_TRUE(wait_ready(&env, "acc", "incluster", 1, KWAIT_MS));

    /* Rotation: the file gets token B, then token A stops being valid. */
    CU_ASSERT_TRUE_FATAL(replace_file(tokf, tok_b));
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "delete secret -n kyma-system tok-a", NULL, NULL), 0);
    bool refused = false;
    for (int t = 0; t < KWAIT_MS && !(refused = token_refused(tok_a)); t += 1000)
        jb_sleep_ms(1000);
    CU_ASSERT_TRUE_FATAL(refused);
    /* From now on only token B works: three more Lease reads succeed (one every 2 s), no
     * request was refused, and a new Subscription gets its finalizer and status. */
    double ok0 = metric_sum(admin, "jetbridge_kube_requests_total", LEASE_GET_OK);
    double ok = ok0;
    for (int t = 0; t < KWAIT_MS && ok < ok0 + 3; t += 500) {
        jb_sleep_ms(500);
        ok = metric_sum(admin, "jetbridge_kube_requests_total", LEASE_GET_OK);
    }
    CU_ASSERT_TRUE(ok >= ok0 + 3);
    CU_ASSERT_EQUAL(metric_sum(admin, "jetbridge_kube_requests_total", "code=\"401\""), 0);
    CU_ASSERT_EQUAL(readyz(admin, NULL, 0), 200);
    apply_sub("acc", "rotated");
    CU_ASSERT_TRUE(wait_ready(&env, "acc", "rotated", 1, KWAIT_MS));

    /* The check can fail: with token B invalid too, the controller is refused. */
    CU_ASSERT_EQUAL(kctl(&env, "delete secret -n kyma-system tok-b", NULL, NULL), 0);
    char why[512];
    CU_ASSERT_TRUE(wait_readyz(admin, 503, why, sizeof(why), KWAIT_MS));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "unauthorized"));
    CU_ASSERT_TRUE(wait_log(p, "unauthorized: the API server refused the credentials", KWAIT_MS));
    /* No token mounted at all: the reason names the file (not an anonymous user's refusal). */
    CU_ASSERT_EQUAL(unlink(tokf), 0);
    bool named = false;
    for (int t = 0; t < KWAIT_MS && !named; t += 500) {
        named = readyz(admin, why, sizeof(why)) == 503 && strstr(why, "token file") != NULL &&
                strstr(why, tokf) != NULL;
        if (!named)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE(named);
    CU_ASSERT_TRUE(wait_log(p, "cannot read the token file", KWAIT_MS));
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NULL(log ? strstr(log, tok_a) : NULL);
    CU_ASSERT_PTR_NULL(log ? strstr(log, tok_b) : NULL);
    free(log);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 0), -1);
    jb_tproc_stop(p);
    free(tok_a);
    free(tok_b);
}

/* ------------------------------------------------------------- bookmarks */

/* The highest resourceVersion of a watch of namespace ns's Subscriptions in the audit log; 0
 * when none. *lowest gets the lowest (the first watches start from the list's version). */
static unsigned long long watched_rv(const char *ns, unsigned long long *lowest)
{
    char *log = read_all(jb_tkube_audit_log(env.k), 16u << 20, NULL);
    char want[256];
    snprintf(want, sizeof(want), "/namespaces/%s/subscriptions?", ns);
    unsigned long long hi = 0;
    *lowest = 0;
    for (char *line = log; line != NULL && *line;) {
        char *eol = strchr(line, '\n');
        if (eol != NULL)
            *eol = '\0';
        cJSON *j = cJSON_Parse(line);
        const cJSON *verb = cJSON_GetObjectItemCaseSensitive(j, "verb");
        const cJSON *uri = cJSON_GetObjectItemCaseSensitive(j, "requestURI");
        const char *rv = cJSON_IsString(uri) ? strstr(uri->valuestring, "resourceVersion=") : NULL;
        if (cJSON_IsString(verb) && strcmp(verb->valuestring, "watch") == 0 && rv != NULL &&
            strstr(uri->valuestring, want) != NULL) {
            unsigned long long v = strtoull(rv + strlen("resourceVersion="), NULL, 10);
            hi = v > hi ? v : hi;
            *lowest = *lowest == 0 || v < *lowest ? v : *lowest;
        }
        cJSON_Delete(j);
        line = eol ? eol + 1 : NULL;
    }
    free(log);
    return hi;
}

static void test_bookmarks(void)
{
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "create namespace bm-watched", NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(kctl(&env, "create namespace bm-other", NULL, NULL), 0);
    int admin = jb_free_port();
    char e_kc[600];
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", jb_tkube_kubeconfig(env.k, "admin"));
    /* Watches of 10 s: the watch cache sends a BOOKMARK 2 s before each ends. */
    const char *extra[] = {e_kc, "WATCH_NAMESPACES=bm-watched", "KUBE_WATCH_TIMEOUT=10s",
                           "POD_NAMESPACE=default", NULL};
    jb_tproc *p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    apply_sub("bm-watched", "quiet");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "bm-watched", "quiet", 1, KWAIT_MS));
    /* A change this controller does not watch: the watched namespace's own events stay
     * older than it; only a bookmark carries the newer version. */
    apply_sub("bm-other", "elsewhere");
    char rvs[64];
    CU_ASSERT_TRUE_FATAL(kjsonpath("subscription -n bm-other elsewhere",
                                   "{.metadata.resourceVersion}", rvs, sizeof(rvs)));
    unsigned long long other = strtoull(rvs, NULL, 10), lowest = 0, hi = 0;
    CU_ASSERT_TRUE_FATAL(other > 0);
    for (int t = 0; t < KWAIT_MS && (hi = watched_rv("bm-watched", &lowest)) < other; t += 1000)
        jb_sleep_ms(1000);
    CU_ASSERT_TRUE(hi >= other);
    /* And the audit log can tell: earlier watches started from older versions. */
    CU_ASSERT_TRUE(lowest > 0 && lowest < other);
    /* Nothing in the watched namespace changed meanwhile: the object was not rewritten. */
    CU_ASSERT_EQUAL(sub_ready(&env, "bm-watched", "quiet"), 1);
    jb_tproc_stop(p);
}

/* ------------------------------------------------------ client certificate */

/* base64 of a file's content, malloc'd. */
static char *file_b64(const char *path)
{
    size_t len = 0;
    char *raw = read_all(path, 1 << 20, &len);
    char *b = raw ? malloc(4 * (len / 3 + 1) + 1) : NULL;
    if (b != NULL)
        EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)raw, (int)len);
    free(raw);
    return b;
}

/* A kubeconfig whose user is user_yaml (a flow mapping); its path into out. */
static bool kubeconfig(const char *name, const char *user_yaml, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.kubeconfig", jb_tkube_dir(env.k), name);
    size_t n = strlen(user_yaml) + 2048;
    char *text = malloc(n);
    if (text == NULL)
        return false;
    snprintf(text, n,
             "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
             "clusters:\n- name: k\n  cluster: {server: '%s', certificate-authority: '%s'}\n"
             "users:\n- name: u\n  user: %s\n"
             "contexts:\n- name: t\n  context: {cluster: k, user: u}\n",
             jb_tkube_url(env.k), jb_tkube_ca_file(env.k), user_yaml);
    bool ok = write_file(out, text);
    free(text);
    return ok;
}

static void test_client_certificate(void)
{
    char user[1400], kc[700], e_kc[720];
    /* Files, named relative to the kubeconfig's directory or absolute. */
    snprintf(user, sizeof(user), "{client-certificate: '%s/jb-cert-user.pem', client-key: '%s/%s'}",
             certdir, certdir, "jb-cert-user.key");
    CU_ASSERT_TRUE_FATAL(kubeconfig("cert-files", user, kc, sizeof(kc)));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", kc);
    int admin = jb_free_port();
    const char *extra[] = {e_kc, "POD_NAMESPACE=default", NULL};
    jb_tproc *p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* Ready means listed and holding the Lease: an anonymous client would be refused. */
    CU_ASSERT_TRUE(wait_readyz(admin, 200, NULL, 0, KWAIT_MS));
    apply_sub("acc", "bycert");
    CU_ASSERT_TRUE(wait_ready(&env, "acc", "bycert", 1, KWAIT_MS));
    jb_tproc_stop(p);

    /* The same, inline: client-certificate-data / client-key-data. */
    char crt[700], key[700];
    snprintf(crt, sizeof(crt), "%s/jb-cert-user.pem", certdir);
    snprintf(key, sizeof(key), "%s/jb-cert-user.key", certdir);
    char *crt64 = file_b64(crt), *key64 = file_b64(key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(crt64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key64);
    size_t n = strlen(crt64) + strlen(key64) + 128;
    char *inline_user = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inline_user);
    snprintf(inline_user, n, "{client-certificate-data: '%s', client-key-data: '%s'}", crt64,
             key64);
    CU_ASSERT_TRUE_FATAL(kubeconfig("cert-data", inline_user, kc, sizeof(kc)));
    free(inline_user);
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", kc);
    admin = jb_free_port();
    p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(wait_readyz(admin, 200, NULL, 0, KWAIT_MS));
    /* The private key never reaches the log. */
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NULL(log ? strstr(log, key64) : NULL);
    free(log);
    jb_tproc_stop(p);
    free(crt64);
    free(key64);
}

/* ------------------------------------------------------ invalid credentials */

static void expect_refused(const char *name, const char *user_yaml)
{
    char kc[700], e_kc[720], why[512];
    CU_ASSERT_TRUE_FATAL(kubeconfig(name, user_yaml, kc, sizeof(kc)));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", kc);
    int admin = jb_free_port();
    const char *extra[] = {e_kc, "POD_NAMESPACE=default", NULL};
    jb_tproc *p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(wait_log(p, "unauthorized: the API server refused the credentials", KWAIT_MS));
    CU_ASSERT_TRUE(wait_readyz(admin, 503, why, sizeof(why), KWAIT_MS));
    /* The reason names the refusal, whichever request /readyz reports first. */
    bool named = false;
    for (int t = 0; t < KWAIT_MS && !(named = strstr(why, "unauthorized") != NULL); t += 500) {
        jb_sleep_ms(500);
        readyz(admin, why, sizeof(why));
    }
    CU_ASSERT_TRUE(named);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 0), -1); /* still running, retrying with backoff */
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NULL(log ? strstr(log, "not-a-valid-token") : NULL);
    free(log);
    jb_tproc_stop(p);
}

static void test_invalid_credentials(void)
{
    expect_refused("bad-token", "{token: not-a-valid-token}");
    char user[1400];
    /* CN app1 may do anything (suite_init): the refusal is the expiry's. */
    snprintf(user, sizeof(user), "{client-certificate: '%s/expired.pem', client-key: '%s/%s'}",
             certdir, certdir, "expired.key");
    expect_refused("expired-cert", user);
}

/* ------------------------------------------------- Application CRD absent */

static void test_application_crd_absent(void)
{
    CU_ASSERT_EQUAL_FATAL(
        kctl(&env, "delete crd applications.applicationconnector.kyma-project.io --timeout=120s",
             NULL, NULL),
        0);
    char e_kc[600];
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", jb_tkube_kubeconfig(env.k, "admin"));
    int admin = jb_free_port();
    const char *extra[] = {e_kc, "POD_NAMESPACE=default", NULL};
    jb_tproc *p = start(admin, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* Logged once, ready all the same, Subscriptions served. */
    CU_ASSERT_TRUE(wait_log(p, "resource not served (CRD absent)", KWAIT_MS));
    CU_ASSERT_TRUE(wait_readyz(admin, 200, NULL, 0, KWAIT_MS));
    apply_sub("acc", "noapps");
    CU_ASSERT_TRUE(wait_ready(&env, "acc", "noapps", 1, KWAIT_MS));
    CU_ASSERT_EQUAL(count_in_log(p, "resource not served (CRD absent)"), 1);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 0), -1);
    jb_tproc_stop(p);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"in-cluster: service-account token and CA, token rotated and re-read",
         test_in_cluster_token_rotation},
        {"watch cache on: the next watch starts from the bookmark's resourceVersion",
         test_bookmarks},
        {"client certificate authentication (files and -data)", test_client_certificate},
        {"invalid token, expired certificate: clear error, not ready", test_invalid_credentials},
        /* last: it deletes the Application CRD */
        {"Application CRD absent: logged once, Subscriptions served", test_application_crd_absent},
    };
    return jb_cunit_main("kube_access", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

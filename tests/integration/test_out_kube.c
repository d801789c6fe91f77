/*
 * Sink credentials from Kubernetes Secrets, end to end: a real kube-apiserver
 * (jb_tkube) and nats-server, `jetbridge run --kubernetes` as a user holding only
 * the shipped RBAC (deploy/kubernetes/rbac.yaml), Secrets made and changed with
 * kubectl, and a loopback sink (helpers/out_peer.py) that answers 401 unless the
 * Authorization header is one it was told to accept, and checks the Standard
 * Webhooks signature with its own HMAC. Covered: bearer token, basic password and
 * signing secret from Secrets; a rotated Secret is used without a restart; a
 * missing Secret is not delivered (dead letter naming the Secret, retried until it
 * exists); a malformed reference is a validation error in the status; no secret
 * value in logs, status, dead letters, metrics or CLI output.
 */
#include <unistd.h>

#include "common/jb_common.h"
#include "proto/jb_ce.h"
#include "test_kube_env.h"
#include "test_out_env.h"

#define TOKEN1   "S3cret-T0ken-one"
#define TOKEN2   "S3cret-T0ken-two"
#define PASSWORD "Pa55-w0rd-kube"
#define SIGNING  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define BASIC    "Basic YWxpY2U6UGE1NS13MHJkLWt1YmU=" /* alice:Pa55-w0rd-kube */
#define CSECRET  "Cl1ent-S3cret-kube"

static kenv env;
static jb_tproc *run;
static peer sink;
static int ingress, admin;
static char dir[64], require[128], signfile[128], nats_env[160];

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/jb-out-kube-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(require, sizeof(require), "%s/require", dir);
    snprintf(signfile, sizeof(signfile), "%s/signing", dir);
    if (!out_write_file(require, "Bearer " TOKEN1 "\n" BASIC "\n") ||
        !out_write_file(signfile, SIGNING "\n"))
        return 1;
    const char *sargs[] = {"--require-auth-file", require, "--secret", signfile, NULL};
    env.k = jb_tkube_start();
    env.n = jb_tnats_start();
    if (env.k == NULL || env.n == NULL || !peer_start(&sink, dir, "sink", sargs) ||
        !jb_tkube_install_crds(env.k) || !jb_tkube_grant_shipped_rbac(env.k) ||
        kctl(&env, "create namespace test", NULL, NULL) != 0)
        return 1;
    ingress = jb_free_port();
    admin = jb_free_port();
    char e_kc[512], e_in[64], e_adm[64];
    snprintf(nats_env, sizeof(nats_env), "NATS_URL=%s", jb_tnats_url(env.n));
    snprintf(e_kc, sizeof(e_kc), "KUBECONFIG=%s", jb_tkube_kubeconfig(env.k, "controller"));
    snprintf(e_in, sizeof(e_in), "INGRESS_PORT=%d", ingress);
    snprintf(e_adm, sizeof(e_adm), "METRICS_ADDR=127.0.0.1:%d", admin);
    const char *argv[] = {"run", "--kubernetes", NULL};
    const char *envv[] = {nats_env,
                          e_kc,
                          e_in,
                          e_adm,
                          "POD_NAMESPACE=kyma-system",
                          "KUBE_SECRET_REFRESH=1s",
                          "APP_LOG_LEVEL=debug",
                          NULL};
    run = jb_tproc_start(argv, envv, admin);
    return run == NULL;
}

static int suite_cleanup(void)
{
    jb_tproc_stop(run);
    jb_tproc_stop(sink.p);
    jb_tnats_stop(env.n);
    jb_tkube_stop(env.k);
    jb_rm_tree(dir);
    return 0;
}

/* kubectl apply of a Subscription in namespace test whose sink is our peer at
 * /<name>; config is more `    key: value` lines. */
static void apply_sub(const char *name, const char *type, const char *config)
{
    char doc[2048];
    snprintf(doc, sizeof(doc),
             "apiVersion: eventing.kyma-project.io/v1alpha2\n"
             "kind: Subscription\n"
             "metadata: {name: %s, namespace: test}\n"
             "spec:\n"
             "  source: commerce\n"
             "  types: [%s]\n"
             "  sink: http://127.0.0.1:%d/%s\n"
             "  config:\n"
             "    maxDeliver: \"3\"\n"
             "    backoffDelay: PT0.2S\n"
             "    backoffMax: PT0.5S\n"
             "%s",
             name, type, sink.port, name, config);
    char *out = NULL;
    int rc = kctl(&env, "apply -f -", doc, &out);
    if (rc != 0)
        fprintf(stderr, "kubectl apply: %s\n", out ? out : "");
    free(out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void publish(const char *type, const char *id)
{
    char hdr[512];
    snprintf(hdr, sizeof(hdr),
             "ce-specversion: 1.0\r\nce-type: %s\r\nce-source: commerce\r\nce-id: %s\r\n"
             "Content-Type: application/json\r\n",
             type, id);
    CU_ASSERT_EQUAL(jb_http(ingress, "POST", "/publish", hdr, "{}", 2, NULL, NULL, NULL), 204);
}

/* The last request the sink got on /<path>, a copy (NULL: none). */
static cJSON *last_on(const char *path)
{
    cJSON *all = peer_requests(&sink), *r, *found = NULL;
    cJSON_ArrayForEach(r, all)
    {
        const cJSON *p = cJSON_GetObjectItem(r, "path");
        if (cJSON_IsString(p) && strcmp(p->valuestring, path) == 0) {
            cJSON_Delete(found);
            found = cJSON_Duplicate(r, true);
        }
    }
    cJSON_Delete(all);
    return found;
}

/* Waits up to ms until the last request on path has header = value (value NULL:
 * any request); that request, or NULL. */
static cJSON *wait_header(const char *path, const char *header, const char *value, int ms)
{
    for (int t = 0; t < ms; t += 250) {
        cJSON *r = last_on(path);
        if (r != NULL && (value == NULL || strcmp(hdr_of(r, header), value) == 0))
            return r;
        cJSON_Delete(r);
        jb_sleep_ms(250);
    }
    return NULL;
}

/* Publishes events of type (ids prefix-0, prefix-1, ...) one a second until the sink
 * gets one on path with header = value (something the dispatcher does on its own
 * time, such as re-reading a Secret); that request, or NULL after KWAIT_MS. */
static cJSON *publish_until(const char *type, const char *prefix, const char *path,
                            const char *header, const char *value)
{
    cJSON *r = NULL;
    for (int i = 0; r == NULL && i < KWAIT_MS / 1000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        publish(type, id);
        r = wait_header(path, header, value, 1000);
    }
    return r;
}

static cJSON *dlq_list(void)
{
    const char *envv[] = {nats_env, NULL};
    const char *argv[] = {"dlq", "list", "-o", "json", NULL};
    char *out = NULL;
    int rc = jb_trun(argv, envv, &out, 20000);
    cJSON *j = rc == 0 && out != NULL ? cJSON_Parse(out) : NULL;
    free(out);
    return j;
}

/* Waits for the dead letter of event id (after maxDeliver 3 transport failures) and
 * copies its decoded errordata into reason. */
static bool dead_letter_reason(const char *id, char *reason, size_t cap)
{
    cJSON *dlq = NULL, *d0 = NULL;
    for (int t = 0; t < KWAIT_MS && d0 == NULL; t += 250) {
        cJSON_Delete(dlq);
        dlq = dlq_list();
        cJSON *x;
        cJSON_ArrayForEach(x, dlq)
        {
            const cJSON *i = cJSON_GetObjectItem(x, "id");
            if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0)
                d0 = x;
        }
        if (d0 == NULL)
            jb_sleep_ms(250);
    }
    bool ok = d0 != NULL;
    CU_ASSERT_TRUE(ok);
    if (ok) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "0");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorattempts")->valuestring, "3");
        uint8_t *why = NULL;
        size_t wlen = 0;
        const char *ed = cJSON_GetObjectItem(d0, "errordata")->valuestring;
        ok = jb_base64_decode(ed, strlen(ed), &why, &wlen) == JB_OK;
        snprintf(reason, cap, "%.*s", ok ? (int)wlen : 0, ok ? (const char *)why : "");
        free(why);
    }
    cJSON_Delete(dlq);
    return ok;
}

static void wait_api_ready(void)
{
    int code = 0;
    for (int t = 0; t < KWAIT_MS && (code = readyz(admin, NULL, 0)) != 200; t += 500)
        jb_sleep_ms(500);
    CU_ASSERT_EQUAL_FATAL(code, 200);
}

static void test_bearer_basic_signing_from_secret(void)
{
    wait_api_ready();
    CU_ASSERT_EQUAL_FATAL(kctl(&env,
                               "create secret generic sink-creds -n test "
                               "--from-literal=token=" TOKEN1 " --from-literal=password=" PASSWORD
                               " --from-literal=signing=" SIGNING,
                               NULL, NULL),
                          0);
    apply_sub("bearer", "order.bearer.v1",
              "    jetbridge.auth.bearerTokenFromSecret: sink-creds/token\n"
              "    jetbridge.auth.signingSecretFromSecret: sink-creds/signing\n");
    apply_sub("basic", "order.basic.v1",
              "    jetbridge.auth.basicUsername: alice\n"
              "    jetbridge.auth.basicPasswordFromSecret: sink-creds/password\n");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "bearer", 1, KWAIT_MS) &&
                         wait_ready(&env, "test", "basic", 1, KWAIT_MS));
    publish("order.bearer.v1", "k-1");
    publish("order.basic.v1", "k-2");
    cJSON *b = wait_header("/bearer", "authorization", "Bearer " TOKEN1, KWAIT_MS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(b, "authorized")));
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(b, "sig_ok")));
    CU_ASSERT_STRING_EQUAL(hdr_of(b, "webhook-id"), "k-1");
    cJSON_Delete(b);
    cJSON *c = wait_header("/basic", "authorization", BASIC, KWAIT_MS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(c, "authorized")));
    cJSON_Delete(c);
}

/* The Secret is patched; the sink accepts both values meanwhile. Once the new one
 * arrives the old is no longer accepted, and deliveries keep working. */
static void test_rotated_secret_used(void)
{
    CU_ASSERT_EQUAL_FATAL(kctl(&env,
                               "patch secret sink-creds -n test --type merge "
                               "-p '{\"stringData\":{\"token\":\"" TOKEN2 "\"}}'",
                               NULL, NULL),
                          0);
    CU_ASSERT_TRUE_FATAL(
        out_write_file(require, "Bearer " TOKEN1 "\nBearer " TOKEN2 "\n" BASIC "\n"));
    cJSON *r =
        publish_until("order.bearer.v1", "rot", "/bearer", "authorization", "Bearer " TOKEN2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON_Delete(r);
    CU_ASSERT_TRUE_FATAL(out_write_file(require, "Bearer " TOKEN2 "\n" BASIC "\n"));
    publish("order.bearer.v1", "rot-last");
    r = wait_header("/bearer", "webhook-id", "rot-last", KWAIT_MS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(hdr_of(r, "authorization"), "Bearer " TOKEN2);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(r, "authorized")));
    cJSON_Delete(r);
}

/* A Secret that does not exist: nothing reaches the sink, the dead letter names the
 * Secret (after maxDeliver attempts: it may appear any moment). Created later, it is
 * used. */
static void test_missing_secret(void)
{
    apply_sub("absent", "order.absent.v1",
              "    jetbridge.auth.bearerTokenFromSecret: absent-creds/token\n");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "absent", 1, KWAIT_MS));
    publish("order.absent.v1", "a-1");
    char reason[512];
    CU_ASSERT_TRUE_FATAL(dead_letter_reason("a-1", reason, sizeof(reason)));
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "Secret test/absent-creds not found"));
    cJSON *none = last_on("/absent");
    CU_ASSERT_PTR_NULL(none);
    cJSON_Delete(none);
    CU_ASSERT_TRUE(wait_log(run, "cannot read Secret", 5000));

    CU_ASSERT_EQUAL_FATAL(kctl(&env,
                               "create secret generic absent-creds -n test "
                               "--from-literal=token=" TOKEN2,
                               NULL, NULL),
                          0);
    cJSON *r = publish_until("order.absent.v1", "later", "/absent", "authorization", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(hdr_of(r, "authorization"), "Bearer " TOKEN2);
    cJSON_Delete(r);
}

/* OAuth2 with the client secret from a Secret: the token endpoint (out_peer.py in
 * token mode) checks it, the sink requires the token it issued. */
static void test_oauth2_client_secret_from_secret(void)
{
    peer idp;
    const char *targs[] = {"--mode", "token", "--client", "jb-client:" CSECRET, NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&idp, dir, "token", targs));
    CU_ASSERT_TRUE_FATAL(out_write_file(require, "Bearer " TOKEN2 "\n" BASIC "\nBearer tok-1\n"));
    CU_ASSERT_EQUAL_FATAL(
        kctl(&env, "create secret generic idp-creds -n test --from-literal=secret=" CSECRET, NULL,
             NULL),
        0);
    char cfg[512];
    snprintf(cfg, sizeof(cfg),
             "    type: oauth2\n"
             "    grantType: client_credentials\n"
             "    clientId: jb-client\n"
             "    jetbridge.auth.clientSecretFromSecret: idp-creds/secret\n"
             "    tokenUrl: http://127.0.0.1:%d/token\n",
             idp.port);
    apply_sub("oauth", "order.oauth.v1", cfg);
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "oauth", 1, KWAIT_MS));
    publish("order.oauth.v1", "o-1");
    cJSON *r = wait_header("/oauth", "authorization", "Bearer tok-1", KWAIT_MS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(r, "authorized")));
    cJSON_Delete(r);
    cJSON *toks = peer_requests(&idp);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(toks), 1);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(toks, 0), "client_ok")));
    cJSON_Delete(toks);
    jb_tproc_stop(idp.p);
}

/* RBAC without get on secrets: the delivery fails with a reason saying which grant
 * is missing (dead letter, log); nothing reaches the sink. The shipped rule is put
 * back afterwards. */
static void test_forbidden_secret(void)
{
    cJSON *role = kget(&env, "clusterrole jetbridge");
    int idx = -1, i = 0;
    cJSON *rule;
    cJSON_ArrayForEach(rule, cJSON_GetObjectItem(role, "rules"))
    {
        cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rule, "resources"), 0);
        if (cJSON_IsString(res) && strcmp(res->valuestring, "secrets") == 0)
            idx = i;
        i++;
    }
    cJSON_Delete(role);
    CU_ASSERT_TRUE_FATAL(idx >= 0);
    char args[256];
    snprintf(args, sizeof(args),
             "patch clusterrole jetbridge --type json -p '[{\"op\":\"remove\",\"path\":"
             "\"/rules/%d\"}]'",
             idx);
    CU_ASSERT_EQUAL_FATAL(kctl(&env, args, NULL, NULL), 0);
    bool denied = false;
    for (int t = 0; t < KWAIT_MS && !denied; t += 500) {
        denied =
            kctl(&env, "auth can-i get secrets -n test --as jetbridge-controller", NULL, NULL) != 0;
        if (!denied)
            jb_sleep_ms(500);
    }
    CU_ASSERT_TRUE_FATAL(denied);
    CU_ASSERT_EQUAL_FATAL(
        kctl(&env, "create secret generic locked-creds -n test --from-literal=token=" TOKEN2, NULL,
             NULL),
        0);
    apply_sub("locked", "order.locked.v1",
              "    jetbridge.auth.bearerTokenFromSecret: locked-creds/token\n");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "locked", 1, KWAIT_MS));
    publish("order.locked.v1", "l-1");
    char reason[512];
    CU_ASSERT_TRUE(dead_letter_reason("l-1", reason, sizeof(reason)));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        reason,
        "Secret test/locked-creds: forbidden by RBAC (grant get on secrets in namespace test)"));
    cJSON *none = last_on("/locked");
    CU_ASSERT_PTR_NULL(none);
    cJSON_Delete(none);
    CU_ASSERT_TRUE(wait_log(run, "forbidden by RBAC: grant this verb on this resource", 5000));
    snprintf(args, sizeof(args), "apply -f %s/deploy/kubernetes/rbac.yaml", JB_SOURCE_DIR);
    CU_ASSERT_EQUAL(kctl(&env, args, NULL, NULL), 0);
}

/* A reference that is not <name>/<key>: READY false with the key named. */
static void test_bad_reference_is_validation_error(void)
{
    apply_sub("badref", "order.badref.v1",
              "    jetbridge.auth.bearerTokenFromSecret: no-key-here\n");
    CU_ASSERT_TRUE_FATAL(wait_ready(&env, "test", "badref", 0, KWAIT_MS));
    cJSON *j = kget(&env, "subscription -n test badref");
    char *text = cJSON_PrintUnformatted(j);
    CU_ASSERT_TRUE(
        text != NULL &&
        strstr(text, "jetbridge.auth.bearerTokenFromSecret: must be <secret name>/<key>") != NULL);
    free(text);
    cJSON_Delete(j);
}

static void assert_no_secret(const char *where, const char *text)
{
    static const char *const values[] = {TOKEN1,
                                         TOKEN2,
                                         PASSWORD,
                                         "MfKQ9r8GKYqrTwjUPD8",
                                         "UzNjcmV0LVQwa2Vu" /* base64 of S3cret-T0ken */,
                                         "UGE1NS13MHJk" /* base64 of Pa55-w0rd */};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        bool leaked = text != NULL && strstr(text, values[i]) != NULL;
        CU_ASSERT_FALSE(leaked);
        if (leaked)
            fprintf(stderr, "%s shows a secret value (%s)\n", where, values[i]);
    }
}

/* No value of any of these Secrets anywhere jetbridge writes or prints. */
static void test_no_value_leaked(void)
{
    char *log = jb_tproc_log(run);
    CU_ASSERT_PTR_NOT_NULL(log);
    assert_no_secret("the log", log);
    free(log);
    char *out = NULL;
    CU_ASSERT_EQUAL(kctl(&env, "get subscriptions -n test -o yaml", NULL, &out), 0);
    assert_no_secret("kubectl get subscriptions", out);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "sink-creds/token") != NULL);
    free(out);
    const char *envv[] = {nats_env, NULL};
    const char *get[] = {"sub", "get", "-n", "test", "-o", "yaml", NULL};
    out = NULL;
    CU_ASSERT_EQUAL(jb_trun(get, envv, &out, 20000), 0);
    assert_no_secret("sub get", out);
    free(out);
    const char *dl[] = {"dlq", "list", "-o", "json", NULL};
    out = NULL;
    CU_ASSERT_EQUAL(jb_trun(dl, envv, &out, 20000), 0);
    assert_no_secret("dlq list", out);
    free(out);
    char *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL), 200);
    assert_no_secret("/metrics", body);
    free(body);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"bearer_basic_signing_from_secret", test_bearer_basic_signing_from_secret},
        {"rotated_secret_used", test_rotated_secret_used},
        {"missing_secret", test_missing_secret},
        {"oauth2_client_secret_from_secret", test_oauth2_client_secret_from_secret},
        {"forbidden_secret", test_forbidden_secret},
        {"bad_reference_is_validation_error", test_bad_reference_is_validation_error},
        {"no_value_leaked", test_no_value_leaked},
    };
    return jb_cunit_main("out_kube", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

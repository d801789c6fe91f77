/*
 * INGRESS_AUTH=required through the real binary over HTTPS (libcurl clients,
 * certificates made by openssl in the test): client certificates, tokens from
 * `jetbridge app token create`, the path, source and type rules, batches all or
 * nothing, rate limits per application; and what the stream holds afterwards
 * (nothing for a refused request).
 */
#include <openssl/core_names.h>
#include <time.h>

#include "../unit/auth/jwt_mint.h"
#include "test_id_tls.h"

#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"

static pubenv E;
static EVP_PKEY *jwt_key; /* P-256, published in the JWKS file as kid "k1" */
static char url_env[160];

static const char *const apps_yaml =
    HEAD "metadata:\n  name: app1\n  annotations:\n    jetbridge.io/allowed-sources: erp\n"
         "    jetbridge.io/allowed-types: order.\n"
         "spec:\n  compassMetadata: {authentication: {clientIds: [app1-client]}}\n"
         "---\n" HEAD "metadata:\n  name: app2\n  annotations:\n"
         "    jetbridge.io/rate-limit: 2/s,burst=2\n"
         "spec: {}\n";

static int cli(const char *const *argv, char **out)
{
    const char *env[] = {url_env, NULL};
    return jb_trun_capture(argv, env, out, NULL, 30000);
}

static int setup(void)
{
    if (!id_make_certs("app1 app2 ghost"))
        return 1;
    memset(&E, 0, sizeof(E));
    E.nats = jb_tnats_start();
    if (E.nats == NULL)
        return 1;
    snprintf(url_env, sizeof(url_env), "NATS_URL=%s", jb_tnats_url(E.nats));
    char path[600];
    snprintf(path, sizeof(path), "%s/apps.yaml", id_certdir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fputs(apps_yaml, f);
    fclose(f);
    const char *apply[] = {"app", "apply", "-f", path, NULL};
    if (cli(apply, NULL) != 0)
        return 1;
    /* The JWT signing key and its JWKS file. */
    jwt_key = EVP_EC_gen("P-256");
    unsigned char pt[65];
    size_t pl = 0;
    char x[64], y[64];
    if (jwt_key == NULL ||
        EVP_PKEY_get_octet_string_param(jwt_key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &pl) != 1)
        return 1;
    b64url(pt + 1, 32, x);
    b64url(pt + 33, 32, y);
    static char jwks_env[700];
    snprintf(path, sizeof(path), "%s/jwks.json", id_certdir);
    f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fprintf(
        f,
        "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
        x, y);
    fclose(f);
    snprintf(jwks_env, sizeof(jwks_env), "INGRESS_JWKS=%s", path);
    static char cert[600], key[600], ca[600];
    char c[512], k[512], a[512];
    id_cert_path(c, sizeof(c), "server.pem");
    id_cert_path(k, sizeof(k), "server.key");
    id_cert_path(a, sizeof(a), "ca.pem");
    snprintf(cert, sizeof(cert), "INGRESS_TLS_CERT=%s", c);
    snprintf(key, sizeof(key), "INGRESS_TLS_KEY=%s", k);
    snprintf(ca, sizeof(ca), "INGRESS_TLS_CLIENT_CA=%s", a);
    const char *env[] = {
        "INGRESS_AUTH=required",  "JS_STREAM_RETENTION_POLICY=limits", cert, key, ca, jwks_env,
        "INGRESS_JWT_ISSUER=idp", "INGRESS_JWT_AUDIENCE=jetbridge",    NULL};
    /* Readiness over HTTPS is checked below; the port is enough here. */
    static char envbuf[3][128];
    E.port = jb_free_port();
    E.admin = jb_free_port();
    snprintf(envbuf[0], sizeof(envbuf[0]), "NATS_URL=%s", jb_tnats_url(E.nats));
    snprintf(envbuf[1], sizeof(envbuf[1]), "INGRESS_PORT=%d", E.port);
    snprintf(envbuf[2], sizeof(envbuf[2]), "METRICS_ADDR=127.0.0.1:%d", E.admin);
    const char *all[16] = {envbuf[0], envbuf[1], envbuf[2]};
    size_t n = 3;
    for (size_t i = 0; env[i] != NULL; i++)
        all[n++] = env[i];
    all[n] = NULL;
    const char *argv[] = {"publisher", NULL};
    E.proc = jb_tproc_start(argv, all, E.port);
    if (E.proc == NULL || !pe_wait_status(E.admin, "/readyz", 200, 15000) || !pe_connect_client(&E))
        return 1;
    return 0;
}

/* Suite cleanup cannot assert: a non-zero return fails the suite instead (the
 * publisher must exit 0, which under the sanitizers also means no finding). */
static int teardown(void)
{
    int rc = pe_terminate(&E);
    jb_tproc_stop(E.proc);
    E.proc = NULL;
    pe_stop(&E);
    jb_rm_tree(id_certdir);
    EVP_PKEY_free(jwt_key);
    return rc == 0 ? 0 : 1;
}

/* A binary-mode publish of one event. */
static void publish(CURL *h, const char *cert, const char *auth, const char *id, const char *source,
                    const char *type, id_resp *r)
{
    char hid[128], hsrc[256], htype[256];
    snprintf(hid, sizeof(hid), "ce-id: %s", id);
    snprintf(hsrc, sizeof(hsrc), "ce-source: %s", source);
    snprintf(htype, sizeof(htype), "ce-type: %s", type);
    const char *hdrs[] = {
        "ce-specversion: 1.0", hid, hsrc, htype, "Content-Type: application/json", auth, NULL};
    id_https(h, E.port, "/publish", cert, hdrs, "{}", r);
}

/* Waits until the registry is loaded: a certificate publish stops answering 503. */
static void wait_registry(CURL *h)
{
    id_resp r;
    for (int i = 0; i < 150; i++) {
        publish(h, "app1", NULL, "warmup", "app1", "order.warmup.v1", &r);
        if (r.code != 503)
            break;
        jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(r.code, 204);
}

static void test_certificates_and_rules(void)
{
    CURL *h = curl_easy_init();
    wait_registry(h);
    int64_t base = pe_stream_msgs(&E);
    id_resp r;
    /* No credentials: 401 with a Bearer challenge. */
    publish(h, NULL, NULL, "n1", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.headers, "WWW-Authenticate: Bearer"));
    /* The certificate names app1: its own name and its allowed source pass. */
    publish(h, "app1", NULL, "c1", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 204);
    publish(h, "app1", NULL, "c2", "erp", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 204);
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 2);
    /* Another source, a type outside the allowed prefixes: 403 naming the attribute. */
    publish(h, "app1", NULL, "c3", "app2", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 403);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "source"));
    publish(h, "app1", NULL, "c4", "app1", "invoice.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 403);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "type"));
    /* A batch with one bad event stores nothing. */
    const char *batch = "[{\"specversion\":\"1.0\",\"id\":\"b1\",\"source\":\"app1\","
                        "\"type\":\"order.created.v1\"},{\"specversion\":\"1.0\",\"id\":\"b2\","
                        "\"source\":\"crm\",\"type\":\"order.created.v1\"}]";
    const char *bh[] = {"Content-Type: application/cloudevents-batch+json", NULL};
    id_https(h, E.port, "/publish", "app1", bh, batch, &r);
    CU_ASSERT_EQUAL(r.code, 403);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "event 1: source"));
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 2);
    /* Paths: another application's is 403 (Kyma's body), an unknown one 404. */
    const char *legacy = "{\"event-type\":\"order.created\",\"event-type-version\":\"v1\","
                         "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{\"a\":1}}";
    const char *lh[] = {"Content-Type: application/json", NULL};
    id_https(h, E.port, "/app2/v1/events", "app1", lh, legacy, &r);
    CU_ASSERT_EQUAL(r.code, 403);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"code\":403,\"error\":\"no valid subject found\"}");
    id_https(h, E.port, "/nosuch/v1/events", "app1", lh, legacy, &r);
    CU_ASSERT_EQUAL(r.code, 404);
    id_https(h, E.port, "/app1/v1/events", "app1", lh, legacy, &r);
    CU_ASSERT_EQUAL(r.code, 200);
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 4); /* the legacy event is stored twice */
    /* A verified certificate naming no application: 404. */
    publish(h, "ghost", NULL, "g1", "ghost", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 404);
    /* A verified certificate with two CNs is ambiguous: no identity, 401. */
    publish(h, "twocn", NULL, "t1", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    curl_easy_cleanup(h);
    /* Certificates that do not verify fail the handshake. */
    const char *bad[] = {"rogue", "expired"};
    for (size_t i = 0; i < 2; i++) {
        h = curl_easy_init();
        publish(h, bad[i], NULL, "x1", "app1", "order.created.v1", &r);
        CU_ASSERT_EQUAL(r.code, -1);
        curl_easy_cleanup(h);
    }
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 4);
    char *m = pe_metrics(&E);
    CU_ASSERT_PTR_NOT_NULL(
        m ? strstr(m, "jetbridge_publisher_auth_total{application=\"app1\",result=\"forbidden\"} 4")
          : NULL);
    free(m);
}

static void test_tokens_and_rate_limit(void)
{
    CURL *h = curl_easy_init();
    wait_registry(h);
    const char *create[] = {"app", "token", "create", "app2", NULL};
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(cli(create, &out), 0);
    /* The token is alone on the last line. */
    char *nl = strrchr(out, '\n');
    while (nl != NULL && nl > out && nl[1] == '\0') {
        *nl = '\0';
        nl = strrchr(out, '\n');
    }
    const char *token = nl != NULL ? nl + 1 : out;
    char auth[512], wrong[] = "Authorization: Bearer jbt_not-a-real-token";
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    int64_t base = pe_stream_msgs(&E);
    id_resp r;
    publish(h, NULL, wrong, "t0", "app2", "x.y.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    /* app2's limit is 2/s with a burst of 2: the third in a row waits. app1 is
     * not slowed meanwhile. */
    int ok = 0, limited = 0;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", i + 1);
        publish(h, NULL, auth, id, "app2", "x.y.v1", &r);
        ok += r.code == 204;
        if (r.code == 429) {
            limited++;
            CU_ASSERT_PTR_NOT_NULL(strstr(r.headers, "Retry-After: "));
        }
    }
    CU_ASSERT(ok >= 2 && limited >= 1);
    publish(h, "app1", NULL, "t-app1", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 204);
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + ok + 1);
    /* Revoked: 401 (the registry follows the bucket; wait for it). */
    const char *revoke[] = {"app", "token", "revoke", "app2", NULL};
    CU_ASSERT_EQUAL(cli(revoke, NULL), 0);
    for (int i = 0; i < 100; i++) {
        jb_sleep_ms(100);
        publish(h, NULL, auth, "t-rev", "app2", "x.y.v1", &r);
        if (r.code == 401)
            break;
    }
    CU_ASSERT_EQUAL(r.code, 401);
    char *log = jb_tproc_log(E.proc);
    CU_ASSERT_PTR_NULL(log != NULL ? strstr(log, token) : NULL);
    free(log);
    char *m = pe_metrics(&E);
    CU_ASSERT_PTR_NULL(m != NULL ? strstr(m, token) : NULL);
    free(m);
    free(out);
    curl_easy_cleanup(h);
}

/* "Authorization: Bearer <JWT>" for sub, with exp now+exp_in and audience aud. */
static void jwt_header(const char *alg, const char *sub, long exp_in, const char *aud, char *out,
                       size_t cap)
{
    char hdr[128], claims[256], tok[2048];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"k1\"}", alg);
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"iss\":\"idp\",\"aud\":\"%s\",\"exp\":%ld}",
             sub, aud, (long)time(NULL) + exp_in);
    mint_with(jwt_key, "", hdr, claims, strcmp(alg, "ES256") == 0 ? SIGN_ES : SIGN_NONE, tok,
              sizeof(tok));
    snprintf(out, cap, "Authorization: Bearer %s", tok);
}

static void test_jwt(void)
{
    CURL *h = curl_easy_init();
    wait_registry(h);
    int64_t base = pe_stream_msgs(&E);
    char auth[2200];
    id_resp r;
    jwt_header("ES256", "app1", 600, "jetbridge", auth, sizeof(auth));
    publish(h, NULL, auth, "j1", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 204);
    const char *lh[] = {"Content-Type: application/json", auth, NULL};
    id_https(h, E.port, "/app2/v1/events", NULL, lh,
             "{\"event-type\":\"order.created\",\"event-type-version\":\"v1\","
             "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{}}",
             &r);
    CU_ASSERT_EQUAL(r.code, 403);
    jwt_header("ES256", "app1", -600, "jetbridge", auth, sizeof(auth)); /* expired */
    publish(h, NULL, auth, "j2", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.headers, "WWW-Authenticate: Bearer"));
    jwt_header("ES256", "app1", 600, "someone-else", auth, sizeof(auth));
    publish(h, NULL, auth, "j3", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    jwt_header("none", "app1", 600, "jetbridge", auth, sizeof(auth));
    publish(h, NULL, auth, "j4", "app1", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 401);
    jwt_header("ES256", "nosuch", 600, "jetbridge", auth, sizeof(auth));
    publish(h, NULL, auth, "j5", "nosuch", "order.created.v1", &r);
    CU_ASSERT_EQUAL(r.code, 404);
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 1);
    char *log = jb_tproc_log(E.proc);
    CU_ASSERT_PTR_NULL(log != NULL ? strstr(log, "eyJ") : NULL); /* no JWT in the log */
    free(log);
    curl_easy_cleanup(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const jb_test_case cases[] = {
        {"certificates: identity, source/type/path rules, batches, handshake failures",
         test_certificates_and_rules},
        {"tokens, revocation and per-application rate limits", test_tokens_and_rate_limit},
        {"JWT bearer tokens: ES256 from INGRESS_JWKS, exp, aud, alg none, unknown app", test_jwt},
    };
    int rc = jb_cunit_main("integration_id_auth", setup, teardown, cases, JB_CASES_N(cases));
    curl_global_cleanup();
    return rc;
}

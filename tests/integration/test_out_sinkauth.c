/* Sink authentication, end to end with the real dispatcher: bearer and basic
 * credentials from files (a rotated file takes effect), Standard Webhooks
 * signatures checked by an independent implementation (Python's hmac), OAuth2
 * client credentials against a token endpoint (cached token, one refresh on a 401,
 * a failing endpoint retried), and mutual TLS to an HTTPS sink trusted through
 * SINK_CA_BUNDLE. The peers are tests/integration/helpers/out_peer.py on loopback. */
#include <sys/stat.h>
#include <unistd.h>

/* The shared set-up has helpers this suite does not need. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_disp_env.h"
#include "test_out_env.h"

#define CSECRET "Cl1ent-Secr3t"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/jb-out-auth-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Bearer and basic from files, each signed; the sink checks the signature itself. */
static void test_bearer_basic_signature(void)
{
    make_dir();
    char tok[128], pw[128], sec[128];
    path_in(tok, sizeof(tok), "token");
    path_in(pw, sizeof(pw), "password");
    path_in(sec, sizeof(sec), "signing");
    CU_ASSERT_TRUE_FATAL(out_write_file(tok, "t0ken-one\n") && out_write_file(pw, "pa55word\n") &&
                         out_write_file(sec, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"));
    peer sink;
    const char *sargs[] = {"--secret", sec, NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&sink, dir, "sink", sargs));
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char url[96], c1[512], c2[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", sink.port);
    snprintf(c1, sizeof(c1),
             "\"jetbridge.auth.bearerTokenFile\":\"%s\",\"jetbridge.auth.signingSecretFile\":"
             "\"%s\"",
             tok, sec);
    snprintf(c2, sizeof(c2),
             "\"jetbridge.auth.basicUsername\":\"alice\",\"jetbridge.auth.basicPasswordFile\":"
             "\"%s\",\"jetbridge.auth.signingSecretFile\":\"%s\"",
             pw, sec);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "bearer", "order.bearer.v1", c1, url));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "basic", "order.basic.v1", c2, url));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "bearer", "order.bearer.v1", 15000) &&
                         denv_wait_consumer(&e, "basic", "order.basic.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, "order.bearer.v1", "b-1", "{\"x\":1}", NULL));
    cJSON *reqs = peer_wait(&sink, 1);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 1);
    cJSON *r0 = cJSON_GetArrayItem(reqs, 0);
    CU_ASSERT_STRING_EQUAL(hdr_of(r0, "authorization"), "Bearer t0ken-one");
    CU_ASSERT_STRING_EQUAL(hdr_of(r0, "webhook-id"), "b-1");
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(r0, "sig_ok")));
    cJSON_Delete(reqs);

    CU_ASSERT_TRUE(denv_publish(&e, "order.basic.v1", "c-1", "{\"y\":2}", NULL));
    reqs = peer_wait(&sink, 2);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 2);
    cJSON *r1 = cJSON_GetArrayItem(reqs, 1);
    CU_ASSERT_STRING_EQUAL(hdr_of(r1, "authorization"),
                           "Basic YWxpY2U6cGE1NXdvcmQ="); /* alice:pa55word */
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(r1, "sig_ok")));
    cJSON_Delete(reqs);

    /* A rotated token file is used from then on (checked at most once a second). */
    jb_sleep_ms(1100);
    CU_ASSERT_TRUE(out_write_file(tok, "t0ken-two\n"));
    jb_sleep_ms(1100);
    CU_ASSERT_TRUE(denv_publish(&e, "order.bearer.v1", "b-2", "{}", NULL));
    reqs = peer_wait(&sink, 3);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 3);
    CU_ASSERT_STRING_EQUAL(hdr_of(cJSON_GetArrayItem(reqs, 2), "authorization"),
                           "Bearer t0ken-two");
    cJSON_Delete(reqs);
    char *log = jb_tproc_log(p);
    CU_ASSERT_TRUE(log != NULL && strstr(log, "t0ken") == NULL && strstr(log, "pa55") == NULL);
    free(log);
    jb_tproc_stop(p);
    jb_tproc_stop(sink.p);
    denv_stop(&e);
    jb_rm_tree(dir);
}

/* OAuth2 client credentials: the first token request fails (retried with backoff),
 * the sink refuses the first token with 401 (one refresh), the second token is
 * cached for the next event. The client secret is in no log. */
static void test_oauth2_client_credentials(void)
{
    make_dir();
    peer tokep, sink;
    const char *targs[] = {"--mode",       "token", "--client", "jb-client:" CSECRET,
                           "--fail-first", "1",     NULL};
    const char *sargs[] = {"--reject-token", "tok-1", NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&tokep, dir, "token", targs));
    CU_ASSERT_TRUE_FATAL(peer_start(&sink, dir, "sink", sargs));
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char url[96], cfg[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", sink.port);
    snprintf(cfg, sizeof(cfg),
             "\"type\":\"oauth2\",\"grantType\":\"client_credentials\",\"clientId\":\"jb-client\","
             "\"clientSecret\":\"" CSECRET "\",\"tokenUrl\":\"http://127.0.0.1:%d/token\","
             "\"scope\":\"events\",\"backoffDelay\":\"PT0.2S\",\"backoffMax\":\"PT0.5S\"",
             tokep.port);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "oauth", "order.oauth.v1", cfg, url));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "oauth", "order.oauth.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, "order.oauth.v1", "o-1", "{}", NULL));
    cJSON *reqs = peer_wait(&sink, 2);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 2);
    CU_ASSERT_STRING_EQUAL(hdr_of(cJSON_GetArrayItem(reqs, 0), "authorization"), "Bearer tok-1");
    CU_ASSERT_STRING_EQUAL(hdr_of(cJSON_GetArrayItem(reqs, 1), "authorization"), "Bearer tok-2");
    cJSON_Delete(reqs);
    cJSON *toks = peer_requests(&tokep);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(toks), 3); /* 500, tok-1, tok-2 */
    cJSON *t;
    cJSON_ArrayForEach(t, toks)
    {
        CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(t, "client_ok")));
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(t, "grant_type")->valuestring,
                               "client_credentials");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(t, "scope")->valuestring, "events");
    }
    cJSON_Delete(toks);
    /* Cached: the next event needs no token request. */
    CU_ASSERT_TRUE(denv_publish(&e, "order.oauth.v1", "o-2", "{}", NULL));
    reqs = peer_wait(&sink, 3);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(reqs), 3);
    CU_ASSERT_STRING_EQUAL(hdr_of(cJSON_GetArrayItem(reqs, 2), "authorization"), "Bearer tok-2");
    cJSON_Delete(reqs);
    toks = peer_requests(&tokep);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(toks), 3);
    cJSON_Delete(toks);
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    char *log = jb_tproc_log(p);
    CU_ASSERT_TRUE(log != NULL && strstr(log, CSECRET) == NULL && strstr(log, "tok-") == NULL);
    CU_ASSERT_TRUE(log != NULL && strstr(log, "token request failed") != NULL);
    free(log);
    const char *env[] = {e.url_env, NULL};
    const char *get[] = {"sub", "get", "oauth", "-o", "yaml", NULL};
    char *out = NULL;
    jb_trun(get, env, &out, 20000);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "clientId") != NULL);
    free(out);
    jb_tproc_stop(p);
    jb_tproc_stop(sink.p);
    jb_tproc_stop(tokep.p);
    denv_stop(&e);
    jb_rm_tree(dir);
}

/* The same against oidc-provider (installed by scripts/test-node into build/node):
 * its token works, a 401 for the first token gets a new one, nothing is
 * dead-lettered. */
static void test_oauth2_oidc_provider(void)
{
    make_dir();
    peer sink;
    const char *sargs[] = {"--reject-first-bearer", NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&sink, dir, "sink", sargs));
    int tport = jb_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", tport);
    const char *nargs[] = {JB_SOURCE_DIR "/tests/integration/helpers/oidc_token.mjs",
                           JB_SOURCE_DIR "/build/node/node_modules",
                           port,
                           "jb-client",
                           CSECRET,
                           NULL};
    jb_tproc *idp = jb_tproc_start_exe("/usr/bin/node", nargs, NULL, tport);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idp);
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char url[96], cfg[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", sink.port);
    snprintf(cfg, sizeof(cfg),
             "\"type\":\"oauth2\",\"grantType\":\"client_credentials\",\"clientId\":\"jb-client\","
             "\"clientSecret\":\"" CSECRET "\",\"tokenUrl\":\"http://127.0.0.1:%d/token\","
             "\"scope\":\"events\",\"backoffDelay\":\"PT0.2S\",\"backoffMax\":\"PT0.5S\"",
             tport);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "oidc", "order.oidc.v1", cfg, url));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "oidc", "order.oidc.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, "order.oidc.v1", "i-1", "{}", NULL));
    CU_ASSERT_TRUE(denv_publish(&e, "order.oidc.v1", "i-2", "{}", NULL));
    cJSON *reqs = peer_wait(&sink, 3);
    CU_ASSERT_TRUE_FATAL(cJSON_GetArraySize(reqs) >= 3);
    char first[512];
    snprintf(first, sizeof(first), "%s", hdr_of(cJSON_GetArrayItem(reqs, 0), "authorization"));
    CU_ASSERT_EQUAL(strncmp(first, "Bearer ", 7), 0);
    CU_ASSERT_TRUE(strlen(first) > 20);
    /* Both events arrive with the second token. */
    int with_second = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        const char *a = hdr_of(r, "authorization");
        with_second += strncmp(a, "Bearer ", 7) == 0 && strcmp(a, first) != 0;
    }
    CU_ASSERT_TRUE(with_second >= 2);
    cJSON_Delete(reqs);
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    char *log = jb_tproc_log(p);
    CU_ASSERT_TRUE(log != NULL && strstr(log, CSECRET) == NULL && strstr(log, first + 7) == NULL);
    free(log);
    jb_tproc_stop(p);
    jb_tproc_stop(idp);
    jb_tproc_stop(sink.p);
    denv_stop(&e);
    jb_rm_tree(dir);
}

/* HTTPS sink requiring a client certificate: delivered with the subscription's
 * certificate, its server certificate trusted through SINK_CA_BUNDLE; a
 * subscription without a client certificate does not get through. */
static void test_mtls_and_ca_bundle(void)
{
    make_dir();
    CU_ASSERT_TRUE_FATAL(out_make_certs(dir));
    char ca[128], sc[128], sk[128], cc[128], ck[128];
    path_in(ca, sizeof(ca), "ca.pem");
    path_in(sc, sizeof(sc), "server.pem");
    path_in(sk, sizeof(sk), "server.key");
    path_in(cc, sizeof(cc), "client.pem");
    path_in(ck, sizeof(ck), "client.key");
    peer sink;
    const char *sargs[] = {"--tls-cert", sc, "--tls-key", sk, "--client-ca", ca, NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&sink, dir, "sink", sargs));
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char url[96], c1[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/hook", sink.port);
    snprintf(c1, sizeof(c1),
             "\"jetbridge.auth.clientCertFile\":\"%s\",\"jetbridge.auth.clientKeyFile\":\"%s\"", cc,
             ck);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "mtls", "order.mtls.v1", c1, url));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "nocert", "order.nocert.v1", NULL, url));
    char bundle[160];
    snprintf(bundle, sizeof(bundle), "SINK_CA_BUNDLE=%s", ca);
    const char *extra[] = {bundle, NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "mtls", "order.mtls.v1", 15000) &&
                         denv_wait_consumer(&e, "nocert", "order.nocert.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, "order.nocert.v1", "n-1", "{}", NULL));
    CU_ASSERT_TRUE(denv_publish(&e, "order.mtls.v1", "m-1", "{}", NULL));
    cJSON *reqs = peer_wait(&sink, 1);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 1);
    cJSON *r0 = cJSON_GetArrayItem(reqs, 0);
    CU_ASSERT_STRING_EQUAL(hdr_of(r0, "ce-id"), "m-1");
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(r0, "client_cert")));
    cJSON_Delete(reqs);
    jb_sleep_ms(2000);
    reqs = peer_requests(&sink);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(reqs), 1); /* never the one without a certificate */
    cJSON_Delete(reqs);
    jb_tproc_stop(p);
    jb_tproc_stop(sink.p);
    denv_stop(&e);
    jb_rm_tree(dir);
}

/* A token endpoint that holds its answer holds up nobody else: while the token
 * request of "slow" is open, the event of "plain" (no credentials) is delivered;
 * when the endpoint answers, the event of "slow" arrives with that first token (its
 * request was neither given up nor retried). The endpoint holds its answer until
 * the test creates a file, so nothing here depends on timing. */
static void test_slow_token_endpoint_blocks_no_one(void)
{
    make_dir();
    char hold[128];
    path_in(hold, sizeof(hold), "release");
    peer tokep, sink;
    const char *targs[] = {"--mode",      "token", "--client", "jb-client:" CSECRET,
                           "--hold-file", hold,    NULL};
    CU_ASSERT_TRUE_FATAL(peer_start(&tokep, dir, "token", targs));
    CU_ASSERT_TRUE_FATAL(peer_start(&sink, dir, "sink", NULL));
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char slow[96], plain[96], cfg[512];
    snprintf(slow, sizeof(slow), "http://127.0.0.1:%d/slow", sink.port);
    snprintf(plain, sizeof(plain), "http://127.0.0.1:%d/plain", sink.port);
    snprintf(cfg, sizeof(cfg),
             "\"type\":\"oauth2\",\"grantType\":\"client_credentials\",\"clientId\":\"jb-client\","
             "\"clientSecret\":\"" CSECRET "\",\"tokenUrl\":\"http://127.0.0.1:%d/token\"",
             tokep.port);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "slow", "order.slow.v1", cfg, slow));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "plain", "order.plain.v1", NULL, plain));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "slow", "order.slow.v1", 15000) &&
                         denv_wait_consumer(&e, "plain", "order.plain.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, "order.slow.v1", "s-1", "{}", NULL));
    cJSON *toks = peer_wait(&tokep, 1); /* the token request is open now */
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(toks), 1);
    cJSON_Delete(toks);
    CU_ASSERT_TRUE(denv_publish(&e, "order.plain.v1", "p-1", "{}", NULL));
    cJSON *reqs = peer_wait(&sink, 1);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "path")->valuestring,
                           "/plain");
    cJSON_Delete(reqs);
    /* Still held: the plain event did not wait for it. */
    CU_ASSERT_NOT_EQUAL(access(hold, F_OK), 0);
    CU_ASSERT_TRUE_FATAL(out_write_file(hold, "go\n"));
    reqs = peer_wait(&sink, 2);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(reqs), 2);
    cJSON *r1 = cJSON_GetArrayItem(reqs, 1);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r1, "path")->valuestring, "/slow");
    CU_ASSERT_STRING_EQUAL(hdr_of(r1, "authorization"), "Bearer tok-1");
    cJSON_Delete(reqs);
    toks = peer_requests(&tokep);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(toks), 1);
    cJSON_Delete(toks);
    jb_tproc_stop(p);
    jb_tproc_stop(sink.p);
    jb_tproc_stop(tokep.p);
    denv_stop(&e);
    jb_rm_tree(dir);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"bearer_basic_signature", test_bearer_basic_signature},
        {"oauth2_client_credentials", test_oauth2_client_credentials},
        {"oauth2_oidc_provider", test_oauth2_oidc_provider},
        {"mtls_and_ca_bundle", test_mtls_and_ca_bundle},
        {"slow_token_endpoint_blocks_no_one", test_slow_token_endpoint_blocks_no_one},
    };
    return denv_main("out_sinkauth", cases, JB_CASES_N(cases));
}

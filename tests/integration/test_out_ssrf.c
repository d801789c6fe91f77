/* The SSRF guard (SINK_DENY_NETWORKS) with loopback addresses only: 127.0.0.2/32 is
 * denied and a sink points there. The refusal happens on the address curl is about
 * to connect to; it is not retried, the dead letter says why, and neither a
 * dead-letter sink nor `dlq replay` gets around it. */
#include <unistd.h>

/* The shared set-up has helpers this suite does not need. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_disp_env.h"

#define TYPE   "order.created.v1"
#define PEER   JB_SOURCE_DIR "/tests/integration/helpers/out_peer.py"
#define PYTHON "/usr/bin/python3"
#define DENY   "SINK_DENY_NETWORKS=127.0.0.2/32"

static char *b64_decode(const char *s)
{
    uint8_t *out = NULL;
    size_t len = 0;
    if (jb_base64_decode(s, strlen(s), &out, &len) != JB_OK)
        return NULL;
    char *z = malloc(len + 1);
    if (z != NULL) {
        memcpy(z, out, len);
        z[len] = '\0';
    }
    free(out);
    return z;
}

static void test_denied_sink_dead_lettered_with_reason(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char sink[128], dlsink[128], cfg[256];
    snprintf(sink, sizeof(sink), "http://127.0.0.2:%d/", jb_tsink_port(e.sink));
    snprintf(dlsink, sizeof(dlsink), "http://127.0.0.2:%d/dl", jb_tsink_port(e.sink));
    /* maxDeliver 50: without the guard's verdict it would retry for a long time. */
    snprintf(cfg, sizeof(cfg), "\"maxDeliver\":\"50\",\"deadLetterSink\":\"%s\"", dlsink);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, cfg, sink));
    const char *extra[] = {DENY, NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-ssrf", "{}", NULL));
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    cJSON *d0 = cJSON_GetArrayItem(dlq, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "0");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorattempts")->valuestring, "1");
    char *why = b64_decode(cJSON_GetObjectItem(d0, "errordata")->valuestring);
    CU_ASSERT_TRUE(why != NULL &&
                   strstr(why, "destination 127.0.0.2 is in SINK_DENY_NETWORKS") != NULL);
    free(why);
    cJSON_Delete(dlq);
    /* Nothing reached the sink, not even the dead-letter notification. */
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    char *log = NULL;
    for (int i = 0; i < 50; i++) {
        free(log);
        log = jb_tproc_log(p);
        if (log != NULL && strstr(log, "dead-letter sink answered") != NULL)
            break;
        jb_sleep_ms(200);
    }
    CU_ASSERT_TRUE(log != NULL && strstr(log, "dead-letter sink answered") != NULL &&
                   strstr(log, "127.0.0.2 is in SINK_DENY_NETWORKS") != NULL);
    free(log);

    /* A replay to the same sink is refused the same way and stays in the DLQ. */
    const char *env[] = {e.url_env, DENY, NULL};
    const char *rep[] = {"dlq", "replay", "--subscription", "default/orders", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(rep, env, &out, &err, 20000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, "127.0.0.2 is in SINK_DENY_NETWORKS") != NULL);
    free(out);
    free(err);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 1);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* Proxy settings in the dispatcher's environment are ignored for sinks: through a
 * proxy curl would connect to the proxy's (allowed) address and the guard would
 * never see the sink's. The "proxy" here is a loopback sink that would answer 204. */
static void test_proxy_environment_ignored(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    jb_tsink *proxy = jb_tsink_start();
    CU_ASSERT_TRUE_FATAL(proxy != NULL);
    char sink[128], px[4][128];
    snprintf(sink, sizeof(sink), "http://127.0.0.2:%d/", jb_tsink_port(e.sink));
    const char *names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"};
    for (int i = 0; i < 4; i++)
        snprintf(px[i], sizeof(px[i]), "%s=http://127.0.0.1:%d", names[i], jb_tsink_port(proxy));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, "\"maxDeliver\":\"50\"", sink));
    const char *extra[] = {DENY, px[0], px[1], px[2], px[3], NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-proxy", "{}", NULL));
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    char *why =
        b64_decode(cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "errordata")->valuestring);
    CU_ASSERT_TRUE(why != NULL &&
                   strstr(why, "destination 127.0.0.2 is in SINK_DENY_NETWORKS") != NULL);
    free(why);
    cJSON_Delete(dlq);
    CU_ASSERT_EQUAL(jb_tsink_count(proxy), 0);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    jb_tproc_stop(p);
    jb_tsink_stop(proxy);
    denv_stop(&e);
}

/* An allowed loopback sink still gets its events with the deny list set. */
static void test_allowed_sink_delivers(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e) && denv_apply(&e, "orders", TYPE, NULL, NULL));
    const char *extra[] = {DENY, NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-ok", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_bad_deny_list_stops_start(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    const char *env[] = {e.url_env, "SINK_DENY_NETWORKS=10.0.0.0/33", "METRICS_ADDR=127.0.0.1:0",
                         NULL};
    const char *argv[] = {"dispatcher", NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(argv, env, &out, &err, 20000), 0);
    CU_ASSERT_TRUE(err != NULL && strstr(err, "SINK_DENY_NETWORKS") != NULL &&
                   strstr(err, "10.0.0.0/33") != NULL);
    free(out);
    free(err);
    denv_stop(&e);
}

/* The sink is named "localhost" (a name, not an address) and deny (SINK_DENY_NETWORKS)
 * covers what it resolves to: the address curl connects to is refused at the first
 * attempt, dead-lettered with a reason containing want, counted as a refusal. */
static void name_refused(const char *deny, const char *want)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char sink[128];
    snprintf(sink, sizeof(sink), "http://localhost:%d/", jb_tsink_port(e.sink));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, "\"maxDeliver\":\"50\"", sink));
    const char *extra[] = {deny, NULL};
    int admin = 0;
    jb_tproc *p = denv_dispatcher(&e, &admin, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-name", "{}", NULL));
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    cJSON *d0 = cJSON_GetArrayItem(dlq, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "0");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorattempts")->valuestring, "1");
    CU_ASSERT_TRUE(strstr(cJSON_GetObjectItem(d0, "errordest")->valuestring, "localhost") != NULL);
    char *why = b64_decode(cJSON_GetObjectItem(d0, "errordata")->valuestring);
    CU_ASSERT_TRUE(why != NULL && strstr(why, "is in SINK_DENY_NETWORKS") != NULL &&
                   strstr(why, want) != NULL);
    if (why != NULL && strstr(why, want) == NULL)
        fprintf(stderr, "dead letter reason: %s\n", why);
    free(why);
    cJSON_Delete(dlq);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    /* Counted as a refusal, not as a transport error. */
    char *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL), 200);
    CU_ASSERT_TRUE(body != NULL && strstr(body, "reason=\"refused\"} 1") != NULL);
    free(body);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* The check is on the address curl connects to, not on the URL's text: a host name
 * whose loopback addresses (IPv4 and IPv6) are denied is refused. */
static void test_name_resolving_to_denied_address(void)
{
    name_refused("SINK_DENY_NETWORKS=127.0.0.0/8,::1/128", "destination ");
}

/* DNS rebinding cannot get around the guard, because the guard never looks at the
 * name: only exactly 127.0.0.1/32 is denied and the sink is named "localhost", which
 * resolves to it; the dead letter names the address connected to. Loopback only. */
static void test_rebinding_checks_connected_address(void)
{
    name_refused("SINK_DENY_NETWORKS=127.0.0.1/32", "destination 127.0.0.1 is in");
}

/* A redirect is not followed, even to an allowed address: the 307 is the answer
 * (dead-lettered), the Location is never requested. An OAuth2 token URL on a denied
 * address is refused the same way (a retryable failure, logged with the reason). */
static void test_redirect_and_token_url(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    int port = jb_free_port();
    char portstr[16], logpath[96], target[96];
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(logpath, sizeof(logpath), "/tmp/jb-out-redirect-%d.log", port);
    snprintf(target, sizeof(target), "http://127.0.0.1:%d/elsewhere", port);
    const char *pargs[] = {PEER, "--port", portstr, "--log", logpath, "--redirect", target, NULL};
    jb_tproc *peer = jb_tproc_start_exe(PYTHON, pargs, NULL, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(peer);
    char sink[96], cfg[512];
    snprintf(sink, sizeof(sink), "http://127.0.0.1:%d/", port);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "redir", TYPE, NULL, sink));
    snprintf(cfg, sizeof(cfg),
             "\"type\":\"oauth2\",\"clientId\":\"c\",\"clientSecret\":\"s\","
             "\"tokenUrl\":\"http://127.0.0.2:%d/token\"",
             port);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "tok", "order.tok.v1", cfg, NULL));
    const char *extra[] = {DENY, NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, extra);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "redir", TYPE, 15000) &&
                         denv_wait_consumer(&e, "tok", "order.tok.v1", 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-redir", "{}", NULL));
    CU_ASSERT_TRUE(denv_publish(&e, "order.tok.v1", "ev-tok", "{}", NULL));
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "errorcode")->valuestring, "307");
    cJSON_Delete(dlq);
    /* One request, to "/": the Location was not followed. */
    FILE *f = fopen(logpath, "r");
    int lines = 0, elsewhere = 0;
    char line[8192];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        lines++;
        elsewhere += strstr(line, "/elsewhere") != NULL;
    }
    if (f != NULL)
        fclose(f);
    CU_ASSERT_EQUAL(lines, 1);
    CU_ASSERT_EQUAL(elsewhere, 0);
    char *log = NULL;
    for (int i = 0; i < 50; i++) {
        free(log);
        log = jb_tproc_log(p);
        if (log != NULL && strstr(log, "token request failed") != NULL)
            break;
        jb_sleep_ms(200);
    }
    CU_ASSERT_TRUE(log != NULL && strstr(log, "127.0.0.2 is in SINK_DENY_NETWORKS") != NULL);
    free(log);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    jb_tproc_stop(p);
    jb_tproc_stop(peer);
    unlink(logpath);
    denv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"denied_sink_dead_lettered_with_reason", test_denied_sink_dead_lettered_with_reason},
        {"allowed_sink_delivers", test_allowed_sink_delivers},
        {"proxy_environment_ignored", test_proxy_environment_ignored},
        {"bad_deny_list_stops_start", test_bad_deny_list_stops_start},
        {"name_resolving_to_denied_address", test_name_resolving_to_denied_address},
        {"redirect_and_token_url", test_redirect_and_token_url},
        {"rebinding_checks_connected_address", test_rebinding_checks_connected_address},
    };
    return denv_main("out_ssrf", cases, JB_CASES_N(cases));
}

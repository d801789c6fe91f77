/*
 * Ingress TLS through the real binary: HTTPS only, TLS 1.2 at least, and
 * certificates re-read when their files change: new connections get the new
 * certificate without a restart while a connection opened before keeps working.
 */
#include <stdio.h>

#include "test_id_tls.h"

/* The subject of the server certificate the last transfer on h saw. */
static bool server_subject(CURL *h, char *out, size_t cap)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
        ci->num_of_certs < 1)
        return false;
    for (struct curl_slist *s = ci->certinfo[0]; s != NULL; s = s->next)
        if (strncmp(s->data, "Subject:", 8) == 0) {
            snprintf(out, cap, "%s", s->data + 8);
            return true;
        }
    return false;
}

static bool copy_file(const char *from, const char *to)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    bool ok = in != NULL && out != NULL;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    return ok && rename(tmp, to) == 0; /* atomic for readers */
}

static void test_https_and_reload(void)
{
    CU_ASSERT_TRUE_FATAL(id_make_certs("app1"));
    char srv[512], key[512], live_crt[600], live_key[600];
    id_cert_path(srv, sizeof(srv), "server.pem");
    id_cert_path(key, sizeof(key), "server.key");
    snprintf(live_crt, sizeof(live_crt), "%s/live.pem", id_certdir);
    snprintf(live_key, sizeof(live_key), "%s/live.key", id_certdir);
    CU_ASSERT_TRUE_FATAL(copy_file(srv, live_crt) && copy_file(key, live_key));
    static char ec[700], ek[700];
    snprintf(ec, sizeof(ec), "INGRESS_TLS_CERT=%s", live_crt);
    snprintf(ek, sizeof(ek), "INGRESS_TLS_KEY=%s", live_key);
    const char *env[] = {ec, ek, NULL};
    pubenv e;
    memset(&e, 0, sizeof(e));
    e.nats = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(e.nats);
    /* pe_start_publisher waits on /readyz in plain HTTP: use the admin port. */
    static char envbuf[3][128];
    e.port = jb_free_port();
    e.admin = jb_free_port();
    snprintf(envbuf[0], sizeof(envbuf[0]), "NATS_URL=%s", jb_tnats_url(e.nats));
    snprintf(envbuf[1], sizeof(envbuf[1]), "INGRESS_PORT=%d", e.port);
    snprintf(envbuf[2], sizeof(envbuf[2]), "METRICS_ADDR=127.0.0.1:%d", e.admin);
    const char *all[] = {envbuf[0], envbuf[1], envbuf[2], env[0], env[1], NULL};
    const char *argv[] = {"publisher", NULL};
    e.proc = jb_tproc_start(argv, all, e.port);
    CU_ASSERT_FATAL(e.proc != NULL && pe_wait_status(e.admin, "/readyz", 200, 15000));

    /* Plain HTTP on the TLS port gets no HTTP answer; TLS 1.1 is refused. */
    CU_ASSERT_EQUAL(jb_http(e.port, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), -1);
    id_resp r;
    CURL *old = curl_easy_init();
    curl_easy_setopt(old, CURLOPT_SSLVERSION,
                     CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1);
    id_https(old, e.port, "/healthz", NULL, NULL, NULL, &r);
    CU_ASSERT_EQUAL(r.code, -1);
    curl_easy_cleanup(old);

    /* A keep-alive connection opened with the first certificate. */
    CURL *live = curl_easy_init();
    curl_easy_setopt(live, CURLOPT_CERTINFO, 1L);
    id_https(live, e.port, "/healthz", NULL, NULL, NULL, &r);
    CU_ASSERT_EQUAL(r.code, 200);
    char subj[256] = "";
    CU_ASSERT_TRUE(server_subject(live, subj, sizeof(subj)));
    CU_ASSERT_PTR_NOT_NULL(strstr(subj, "CN = server") ? subj : strstr(subj, "CN=server"));

    /* Swap in the second certificate; new connections see it within seconds. */
    char srv2[512], key2[512];
    id_cert_path(srv2, sizeof(srv2), "server2.pem");
    id_cert_path(key2, sizeof(key2), "server2.key");
    CU_ASSERT_TRUE(copy_file(key2, live_key) && copy_file(srv2, live_crt));
    bool swapped = false;
    for (int i = 0; i < 150 && !swapped; i++) {
        CURL *fresh = curl_easy_init();
        curl_easy_setopt(fresh, CURLOPT_CERTINFO, 1L);
        id_https(fresh, e.port, "/healthz", NULL, NULL, NULL, &r);
        swapped = r.code == 200 && server_subject(fresh, subj, sizeof(subj)) &&
                  strstr(subj, "server2") != NULL;
        curl_easy_cleanup(fresh);
        if (!swapped)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE(swapped);
    /* The connection from before still works, on the same connection. */
    id_https(live, e.port, "/healthz", NULL, NULL, NULL, &r);
    CU_ASSERT_EQUAL(r.code, 200);
    long connects = -1;
    curl_easy_getinfo(live, CURLINFO_NUM_CONNECTS, &connects);
    CU_ASSERT_EQUAL(connects, 0);
    curl_easy_cleanup(live);
    char *log = jb_tproc_log(e.proc);
    CU_ASSERT_PTR_NOT_NULL(log ? strstr(log, "TLS certificates reloaded") : NULL);
    CU_ASSERT_PTR_NULL(log ? strstr(log, "PRIVATE KEY") : NULL);
    free(log);
    pe_stop(&e);
    jb_rm_tree(id_certdir);
}

static void test_bad_tls_config_stops_at_start(void)
{
    const char *argv[] = {"publisher", NULL};
    const char *env[] = {"INGRESS_TLS_CERT=/nonexistent/cert.pem", "NATS_URL=nats://127.0.0.1:1",
                         NULL};
    char *err = NULL;
    CU_ASSERT_NOT_EQUAL(jb_trun_capture(argv, env, NULL, &err, 30000), 0);
    CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "INGRESS_TLS_KEY") : NULL);
    free(err);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const jb_test_case cases[] = {
        {"HTTPS only, TLS 1.2+, certificates reloaded without dropping connections",
         test_https_and_reload},
        {"cert without key: the publisher stops at start naming the key",
         test_bad_tls_config_stops_at_start},
    };
    int rc = jb_cunit_main("integration_id_tls", NULL, NULL, cases, JB_CASES_N(cases));
    curl_global_cleanup();
    return rc;
}

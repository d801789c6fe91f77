/*
 * The admin listener through the real binary: ADMIN_TOKEN guards /metrics (401
 * with WWW-Authenticate: Bearer, the token never logged) while the health probes
 * stay open; connections are capped, and many scrapers that never read share the
 * rendered page instead of each holding a copy.
 */
#include "test_id_util.h"

#define ADMIN_TOKEN_VALUE "s3cret-admin-token-value"

static void test_admin_token(void)
{
    pubenv e;
    static const char *const env[] = {"ADMIN_TOKEN=" ADMIN_TOKEN_VALUE, NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    char *hdrs = NULL;
    CU_ASSERT_EQUAL(jb_http(e.admin, "GET", "/metrics", NULL, NULL, 0, NULL, NULL, &hdrs), 401);
    CU_ASSERT_PTR_NOT_NULL(hdrs ? strstr(hdrs, "WWW-Authenticate: Bearer") : NULL);
    free(hdrs);
    CU_ASSERT_EQUAL(jb_http(e.admin, "GET", "/metrics", "Authorization: Bearer wrong\r\n", NULL, 0,
                            NULL, NULL, NULL),
                    401);
    char *body = NULL;
    CU_ASSERT_EQUAL(jb_http(e.admin, "GET", "/metrics",
                            "Authorization: Bearer " ADMIN_TOKEN_VALUE "\r\n", NULL, 0, &body, NULL,
                            NULL),
                    200);
    CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "eventing_epp_health 1") : NULL);
    free(body);
    CU_ASSERT_EQUAL(jb_http(e.admin, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(jb_http(e.admin, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    char *log = jb_tproc_log(e.proc);
    CU_ASSERT_PTR_NULL(log ? strstr(log, ADMIN_TOKEN_VALUE) : NULL);
    free(log);
    pe_stop(&e);
}

static void test_admin_connection_cap_and_slow_scrapers(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, NULL));
    /* 30 scrapers ask for /metrics and never read the answer. */
    int fds[30];
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 30; i++) {
        fds[i] = id_connect(e.admin, 700);
        CU_ASSERT_FATAL(fds[i] >= 0);
        CU_ASSERT_TRUE(id_send(fds[i], req, strlen(req)));
    }
    /* Only 16 are served while they stay open: the rest wait in the backlog. Wait
     * (generously: the machine may be loaded) until 16 answered, then check that no
     * more are. */
    int answered = 0;
    for (int round = 0; round < 200 && answered < 16; round++) {
        answered = 0;
        for (int i = 0; i < 30; i++) {
            char buf[64];
            if (recv(fds[i], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT) > 0)
                answered++;
        }
        if (answered < 16)
            jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(answered, 16);
    jb_sleep_ms(500);
    answered = 0;
    for (int i = 0; i < 30; i++) {
        char buf[64];
        if (recv(fds[i], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT) > 0)
            answered++;
    }
    CU_ASSERT_EQUAL(answered, 16);
    /* Health probes wait as well; once the scrapers go, the admin port serves again. */
    for (int i = 0; i < 30; i++)
        close(fds[i]);
    CU_ASSERT_TRUE(pe_wait_status(e.admin, "/healthz", 200, 15000));
    char *m = pe_metrics(&e);
    CU_ASSERT_PTR_NOT_NULL(m);
    free(m);
    pe_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"ADMIN_TOKEN guards /metrics; probes stay open", test_admin_token},
        {"admin connections capped; slow scrapers", test_admin_connection_cap_and_slow_scrapers},
    };
    return jb_cunit_main("integration_id_admin", NULL, NULL, cases, JB_CASES_N(cases));
}

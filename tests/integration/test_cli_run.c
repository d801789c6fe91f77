/*
 * `jetbridge run` without NATS_URL: it starts its own nats-server with a store under
 * DATA_DIR, serves the publisher and the dispatcher, and stops the server on exit.
 * `jetbridge stats -o json` reports what was delivered.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

static char data_dir[128], subs_dir[128];

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* The NATS port from the banner line "  NATS:     nats://127.0.0.1:<port>". */
static int banner_nats_port(jb_tproc *p)
{
    for (int i = 0; i < 200; i++) {
        char *log = jb_tproc_log(p);
        const char *m = log ? strstr(log, "NATS:     nats://127.0.0.1:") : NULL;
        int port = m ? (int)strtol(m + strlen("NATS:     nats://127.0.0.1:"), NULL, 10) : 0;
        free(log);
        if (port > 0)
            return port;
        jb_sleep_ms(100);
    }
    return 0;
}

static void write_sub(int sink_port)
{
    snprintf(subs_dir, sizeof(subs_dir), "/tmp/jb-run-subs-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(subs_dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/sub.yaml", subs_dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
            "metadata: {name: orders, namespace: shop}\n"
            "spec:\n  sink: http://127.0.0.1:%d/\n  source: web\n"
            "  types: [order.created.v1]\n",
            sink_port);
    fclose(f);
}

static void test_run_with_local_nats(void)
{
    jb_tsink *sink = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    write_sub(jb_tsink_port(sink));
    snprintf(data_dir, sizeof(data_dir), "/tmp/jb-run-data-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(data_dir));
    int ingress = jb_free_port(), admin = jb_free_port();
    char e_ingress[64], e_admin[64], e_data[192];
    snprintf(e_ingress, sizeof(e_ingress), "INGRESS_PORT=%d", ingress);
    snprintf(e_admin, sizeof(e_admin), "METRICS_ADDR=127.0.0.1:%d", admin);
    snprintf(e_data, sizeof(e_data), "DATA_DIR=%s", data_dir);
    const char *argv[] = {"run", "--subscriptions", subs_dir, NULL};
    const char *env[] = {"NATS_URL", e_ingress, e_admin, e_data, NULL};
    jb_tproc *run = jb_tproc_start(argv, env, ingress);
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    int nats_port = banner_nats_port(run);
    CU_ASSERT_TRUE_FATAL(nats_port > 0);

    /* The store lives under DATA_DIR. */
    char store[256];
    struct stat st;
    snprintf(store, sizeof(store), "%s/nats/jetstream", data_dir);
    CU_ASSERT_EQUAL(stat(store, &st), 0);

    const char *hdr = "ce-specversion: 1.0\r\nce-type: order.created.v1\r\nce-source: web\r\n"
                      "ce-id: run-1\r\nContent-Type: application/json\r\n";
    int code = jb_http(ingress, "POST", "/publish", hdr, "{\"n\":1}", 7, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(code, 204);
    CU_ASSERT_EQUAL(jb_tsink_wait(sink, 1, 15000), 1);

    /* stats sees the delivery through the admin endpoint and JetStream. */
    char e_nats[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=nats://127.0.0.1:%d", nats_port);
    const char *sargv[] = {"stats", "-o", "json", NULL};
    const char *senv[] = {e_nats, e_admin, NULL};
    char *out = NULL;
    bool delivered = false;
    for (int i = 0; i < 50 && !delivered; i++) {
        free(out);
        out = NULL;
        CU_ASSERT_EQUAL(jb_trun(sargv, senv, &out, 20000), 0);
        delivered = out && strstr(out, "\"subscription\":\"shop/orders\"") &&
                    strstr(out, "\"delivered\":1") && strstr(out, "\"pending\":0");
        if (!delivered)
            jb_sleep_ms(200);
    }
    if (!delivered)
        fprintf(stderr, "stats said: %s\n", out ? out : "(nothing)");
    CU_ASSERT_TRUE(delivered);
    free(out);

    /* SIGTERM: exit 0, and the local nats-server is gone with it. */
    jb_tproc_signal(run, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(run, 30000), 0);
    bool closed = false;
    for (int i = 0; i < 100 && !closed; i++) {
        closed = !port_open(nats_port);
        if (!closed)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE(closed);
    jb_tproc_stop(run);
    jb_tsink_stop(sink);
    jb_rm_tree(data_dir);
    jb_rm_tree(subs_dir);
}

static void test_run_rejects_unknown_argument(void)
{
    const char *argv[] = {"run", "--no-such-flag", NULL};
    CU_ASSERT_EQUAL(jb_trun(argv, NULL, NULL, 10000), 2);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"run starts, uses and stops its own nats-server", test_run_with_local_nats},
        {"run: unknown argument is a usage error", test_run_rejects_unknown_argument},
    };
    return jb_cunit_main("cli_run", NULL, NULL, cases, JB_CASES_N(cases));
}

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

static char *read_small(const char *dir, const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 512);
    if (fread(buf, 1, 511, f) == 0) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* True when /proc/net/tcp{,6} shows a listening socket on port bound to hexaddr
 * ("0100007F" for 127.0.0.1, "00000000" for 0.0.0.0). No traffic is sent. */
static bool listens_on(const char *hexaddr, int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (f == NULL)
        return false;
    char line[512], want[32];
    snprintf(want, sizeof(want), "%s:%04X", hexaddr, port);
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, want) != NULL && strstr(line, " 0A ") != NULL; /* 0A = LISTEN */
    fclose(f);
    return found;
}

/* One `run` per data directory; one jetbridge per ingress port; the CLI finds the
 * nats-server a run started from DATA_DIR/nats.url; the admin listener binds
 * loopback when run starts its own NATS; INGRESS_ADDR picks the ingress address. */
static void test_run_claims_and_cli_default(void)
{
    char dir[] = "/tmp/jb-run-claim-XXXXXX", dir2[] = "/tmp/jb-run-claim2-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir2));
    int ingress = jb_free_port(), admin = jb_free_port();
    char e_ingress[64], e_admin[64], e_data[192], e_data2[192];
    snprintf(e_ingress, sizeof(e_ingress), "INGRESS_PORT=%d", ingress);
    snprintf(e_admin, sizeof(e_admin), "METRICS_ADDR=:%d", admin);
    snprintf(e_data, sizeof(e_data), "DATA_DIR=%s", dir);
    snprintf(e_data2, sizeof(e_data2), "DATA_DIR=%s", dir2);
    const char *argv[] = {"run", NULL};
    const char *env[] = {"NATS_URL", e_ingress, e_admin, e_data, "INGRESS_ADDR=127.0.0.1", NULL};
    jb_tproc *run = jb_tproc_start(argv, env, ingress);
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    int nats_port = banner_nats_port(run);
    CU_ASSERT_TRUE_FATAL(nats_port > 0);
    CU_ASSERT_TRUE(listens_on("0100007F", admin)); /* loopback, though METRICS_ADDR=:port */
    CU_ASSERT_FALSE(listens_on("00000000", admin));
    CU_ASSERT_TRUE(listens_on("0100007F", ingress)); /* INGRESS_ADDR */
    CU_ASSERT_FALSE(listens_on("00000000", ingress));

    /* The files the CLI reads. */
    char *url = read_small(dir, "nats.url"), *maddr = read_small(dir, "metrics.addr");
    char want[64];
    snprintf(want, sizeof(want), "nats://127.0.0.1:%d\n", nats_port);
    CU_ASSERT_TRUE(url != NULL && strcmp(url, want) == 0);
    snprintf(want, sizeof(want), "127.0.0.1:%d\n", admin);
    CU_ASSERT_TRUE(maddr != NULL && strcmp(maddr, want) == 0);
    free(url);
    free(maddr);

    /* dlq, sub and stats with NATS_URL unset find that server; no log lines. */
    static const char *const cmds[][4] = {
        {"dlq", "list", NULL}, {"sub", "get", "-A", NULL}, {"stats", NULL}};
    for (size_t i = 0; i < JB_CASES_N(cmds); i++) {
        const char *cenv[] = {"NATS_URL", "METRICS_ADDR", e_data, NULL};
        char *out = NULL, *err = NULL;
        int rc = jb_trun_capture(cmds[i], cenv, &out, &err, 30000);
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", cmds[i][0], err ? err : "");
        CU_ASSERT_EQUAL(rc, 0);
        if (strcmp(cmds[i][0], "sub") != 0) /* "No resources found" is kubectl's stderr */
            CU_ASSERT_TRUE(err == NULL || err[0] == '\0');
        free(out);
        free(err);
    }

    /* A second run of the same DATA_DIR stops before starting a nats-server. */
    int ingress2 = jb_free_port(), admin2 = jb_free_port();
    char e_ingress2[64], e_admin2[64];
    snprintf(e_ingress2, sizeof(e_ingress2), "INGRESS_PORT=%d", ingress2);
    snprintf(e_admin2, sizeof(e_admin2), "METRICS_ADDR=127.0.0.1:%d", admin2);
    const char *env2[] = {"NATS_URL", e_ingress2, e_admin2, e_data, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(argv, env2, &out, &err, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "DATA_DIR: ") : NULL);
    CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "in use by another `jetbridge run`") : NULL);
    CU_ASSERT_PTR_NULL(err != NULL ? strstr(err, "nats-server started") : "");
    free(out);
    free(err);

    /* The same ingress port, another data dir: refused, naming the key, although
     * the publisher's SO_REUSEPORT sockets would let a second one bind it. */
    const char *env3[] = {"NATS_URL", e_ingress, e_admin2, e_data2, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(argv, env3, &out, &err, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "INGRESS_PORT: ") : NULL);
    CU_ASSERT_PTR_NULL(err != NULL ? strstr(err, "nats-server started") : "");
    free(out);
    free(err);
    /* And a publisher on it, too. */
    char e_nats[64];
    snprintf(e_nats, sizeof(e_nats), "NATS_URL=nats://127.0.0.1:%d", nats_port);
    const char *pargv[] = {"publisher", NULL};
    const char *env4[] = {e_nats, e_ingress, e_admin2, NULL};
    CU_ASSERT_EQUAL(jb_trun_capture(pargv, env4, &out, &err, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "INGRESS_PORT: ") : NULL);
    free(out);
    free(err);
    /* The first run still serves. */
    const char *hdr = "ce-specversion: 1.0\r\nce-type: order.created.v1\r\nce-source: web\r\n"
                      "ce-id: claim-1\r\n";
    CU_ASSERT_EQUAL(jb_http(ingress, "POST", "/publish", hdr, "x", 1, NULL, NULL, NULL), 204);

    jb_tproc_signal(run, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(run, 30000), 0);
    url = read_small(dir, "nats.url");
    CU_ASSERT_PTR_NULL(url); /* removed on exit: the CLI falls back to the default */
    free(url);
    jb_tproc_stop(run);
    jb_rm_tree(dir);
    jb_rm_tree(dir2);
}

/* Configuration errors: exit 2 with one line naming the key. */
static void test_config_errors_exit_2(void)
{
    static const struct {
        const char *cmd, *env, *want;
    } cases[] = {
        {"run", "INGRESS_ADDR=localhost", "INGRESS_ADDR: invalid value \"localhost\""},
        {"publisher", "NATS_URL", "NATS_URL: not set"},
        {"dispatcher", "NATS_URL", "NATS_URL: not set"},
        {"run", "INGRESS_PORT=0", "INGRESS_PORT: invalid value \"0\""},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *argv[] = {cases[i].cmd, NULL};
        const char *env[] = {cases[i].env, NULL};
        char *out = NULL, *err = NULL;
        CU_ASSERT_EQUAL(jb_trun_capture(argv, env, &out, &err, 30000), 2);
        CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, cases[i].want) : NULL);
        free(out);
        free(err);
    }
}

/* `make run`'s script: Ctrl-C (SIGINT to the whole foreground process group, as a
 * terminal sends it) stops jetbridge gracefully and its last log line still shows. */
static void test_run_local_ctrl_c_keeps_shutdown_lines(void)
{
    char dir[] = "/tmp/jb-runlocal-XXXXXX", subs[] = "/tmp/jb-runlocal-subs-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(subs));
    char build[512];
    snprintf(build, sizeof(build), "%s", JB_BINARY);
    *strrchr(build, '/') = '\0';
    int ingress = jb_free_port(), admin = jb_free_port(), sinkp = jb_free_port();
    char e_ingress[64], e_admin[64], e_data[192], e_sink[64], e_subs[192];
    snprintf(e_ingress, sizeof(e_ingress), "INGRESS_PORT=%d", ingress);
    snprintf(e_admin, sizeof(e_admin), "METRICS_ADDR=127.0.0.1:%d", admin);
    snprintf(e_data, sizeof(e_data), "DATA_DIR=%s", dir);
    snprintf(e_sink, sizeof(e_sink), "SINK_PORT=%d", sinkp);
    snprintf(e_subs, sizeof(e_subs), "SUBS_DIR=%s", subs);
    const char *argv[] = {JB_SOURCE_DIR "/scripts/run-local", build, NULL};
    const char *env[] = {"NATS_URL", e_ingress, e_admin, e_data, e_sink, e_subs, NULL};
    /* setsid: its own process group, like a terminal's foreground job. */
    jb_tproc *p = jb_tproc_start_exe("/usr/bin/setsid", argv, env, ingress);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    bool up = false;
    for (int i = 0; i < 200 && !up; i++) {
        char *log = jb_tproc_log(p);
        up = log != NULL && strstr(log, "jetbridge is running") != NULL;
        free(log);
        if (!up)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE_FATAL(up);
    kill(-jb_tproc_pid(p), SIGINT);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 60000), 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NOT_NULL(log != NULL ? strstr(log, "\"msg\":\"signal received\"") : NULL);
    CU_ASSERT_PTR_NOT_NULL(log != NULL ? strstr(log, "\"component\":\"run\",\"msg\":\"stopped\"")
                                       : NULL);
    free(log);
    jb_tproc_stop(p);
    jb_rm_tree(dir);
    jb_rm_tree(subs);
}

/* On a terminal (script(1) gives run a pty), logs are key=value text; with
 * APP_LOG_FORMAT=json they stay JSON there too. */
static void test_logs_text_on_a_terminal(void)
{
    static const struct {
        const char *fmt, *want, *unwanted;
    } cases[] = {
        {"APP_LOG_FORMAT=auto", " info admin listening addr=127.0.0.1:", "{\"ts\":"},
        {"APP_LOG_FORMAT=json", "\"component\":\"admin\",\"msg\":\"listening\"", " info admin "},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char dir[] = "/tmp/jb-run-tty-XXXXXX";
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        int ingress = jb_free_port(), admin = jb_free_port();
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "exec env -u NATS_URL INGRESS_PORT=%d METRICS_ADDR=127.0.0.1:%d DATA_DIR=%s %s "
                 "'%s' run",
                 ingress, admin, dir, cases[i].fmt, JB_BINARY);
        const char *argv[] = {"-qefc", cmd, "/dev/null", NULL};
        jb_tproc *p = jb_tproc_start_exe("/usr/bin/script", argv, NULL, ingress);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        bool found = false;
        char *log = NULL;
        for (int t = 0; t < 150 && !found; t++) {
            free(log);
            log = jb_tproc_log(p);
            found = log != NULL && strstr(log, cases[i].want) != NULL;
            if (!found)
                jb_sleep_ms(100);
        }
        if (!found)
            fprintf(stderr, "%s: %s\n", cases[i].fmt, log ? log : "");
        CU_ASSERT_TRUE(found);
        CU_ASSERT_PTR_NULL(log != NULL ? strstr(log, cases[i].unwanted) : "");
        free(log);
        jb_tproc_stop(p);
        /* The run behind the pty ends with it (SIGHUP); its lock is gone then. */
        for (int t = 0; t < 100 && port_open(ingress); t++)
            jb_sleep_ms(100);
        jb_rm_tree(dir);
    }
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
        {"run claims DATA_DIR and the ingress port; the CLI finds its NATS",
         test_run_claims_and_cli_default},
        {"configuration errors exit 2 naming the key", test_config_errors_exit_2},
        {"run-local: Ctrl-C keeps the shutdown lines", test_run_local_ctrl_c_keeps_shutdown_lines},
        {"logs are text on a terminal, JSON when asked", test_logs_text_on_a_terminal},
    };
    return jb_cunit_main("cli_run", NULL, NULL, cases, JB_CASES_N(cases));
}

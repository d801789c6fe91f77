/*
 * The harness itself, tested against the real things it drives: nats-server,
 * the HTTP sink, the jetbridge binary. Every other integration suite relies on it.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

/* ------------------------------------------------------------ nats-server */

static natsConnection *connect_to(const char *url)
{
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
        return NULL;
    return nc;
}

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_nats_starts_with_jetstream(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    CU_ASSERT(jb_tnats_port(n) > 0);
    char want[64];
    snprintf(want, sizeof(want), "nats://127.0.0.1:%d", jb_tnats_port(n));
    CU_ASSERT_STRING_EQUAL(jb_tnats_url(n), want);

    natsConnection *nc = connect_to(jb_tnats_url(n));
    CU_ASSERT_FATAL(nc != NULL);
    jsCtx *js = NULL;
    CU_ASSERT_FATAL(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "harness";
    const char *subjects[] = {"harness.>"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT(js_AddStream(&si, js, &cfg, NULL, &jerr) == NATS_OK);
    CU_ASSERT(si != NULL && strcmp(si->Config->Name, "harness") == 0);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_tnats_stop(n);
}

/* Publishes `count` messages to harness.x and returns the stream's message count
 * as seen by a fresh connection, or -1. */
static int64_t stream_msgs(const char *url, bool create, int count)
{
    int64_t msgs = -1;
    natsConnection *nc = connect_to(url);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    if (nc == NULL || natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        goto out;
    if (create) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = "keep";
        const char *subjects[] = {"harness.>"};
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        if (js_AddStream(&si, js, &cfg, NULL, NULL) != NATS_OK)
            goto out;
        jsStreamInfo_Destroy(si);
        si = NULL;
    }
    for (int i = 0; i < count; i++) {
        char data[32];
        int len = snprintf(data, sizeof(data), "m%d", i);
        if (js_Publish(NULL, js, "harness.x", data, len, NULL, NULL) != NATS_OK)
            goto out;
    }
    if (js_GetStreamInfo(&si, js, "keep", NULL, NULL) == NATS_OK)
        msgs = (int64_t)si->State.Msgs;
out:
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return msgs;
}

static void test_nats_restart_keeps_messages(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    int port = jb_tnats_port(n);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), true, 3) == 3);

    CU_ASSERT(jb_tnats_kill(n));
    CU_ASSERT(jb_tnats_pid(n) == -1);
    CU_ASSERT(connect_to(jb_tnats_url(n)) == NULL); /* really down */
    CU_ASSERT_FATAL(jb_tnats_restart(n));
    CU_ASSERT(jb_tnats_port(n) == port);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), false, 1) == 4);

    /* A crash (SIGKILL) keeps acknowledged messages too: the server wrote them to its
     * files before acking, and a killed process's writes survive it. */
    CU_ASSERT(jb_tnats_crash(n));
    CU_ASSERT_FATAL(jb_tnats_restart(n));
    CU_ASSERT(stream_msgs(jb_tnats_url(n), false, 0) == 4);
    jb_tnats_stop(n);
}

static void test_nats_stop_removes_store(void)
{
    jb_tnats *n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    pid_t pid = jb_tnats_pid(n);
    CU_ASSERT(pid > 0);
    char cmdline[64];
    snprintf(cmdline, sizeof(cmdline), "/proc/%d/cmdline", (int)pid);
    char *cl = NULL;
    size_t cl_len = 0;
    FILE *f = fopen(cmdline, "rb");
    CU_ASSERT_FATAL(f != NULL);
    cl = malloc(4096);
    cl_len = fread(cl, 1, 4095, f);
    fclose(f);
    /* argv: nats-server -js -a 127.0.0.1 -p PORT -sd STORE */
    const char *store = NULL;
    for (size_t i = 0; i < cl_len; i += strlen(cl + i) + 1)
        if (strcmp(cl + i, "-sd") == 0 && i + 4 < cl_len)
            store = cl + i + 4;
    CU_ASSERT_FATAL(store != NULL);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", store);
    free(cl);
    CU_ASSERT(stream_msgs(jb_tnats_url(n), true, 1) == 1);
    CU_ASSERT(dir_exists(dir));
    int port = jb_tnats_port(n);
    jb_tnats_stop(n);
    CU_ASSERT(!dir_exists(dir));
    CU_ASSERT(kill(pid, 0) != 0); /* reaped, gone */
    CU_ASSERT(jb_http(port, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
    jb_tnats_stop(NULL);
}

/* A stream asking for more than the server may store is refused: proof that the
 * configuration text reached the server. */
static bool stream_with_max_bytes_ok(const char *url, int64_t max_bytes)
{
    natsConnection *nc = connect_to(url);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    bool ok = false;
    if (nc != NULL && natsConnection_JetStream(&js, nc, NULL) == NATS_OK) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = "big";
        const char *subjects[] = {"big.>"};
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.MaxBytes = max_bytes;
        ok = js_AddStream(&si, js, &cfg, NULL, NULL) == NATS_OK;
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return ok;
}

static void test_nats_start_with_config(void)
{
    jb_tnats *n = jb_tnats_start_with("jetstream {\n  max_file_store: 1MB\n}\n");
    CU_ASSERT_FATAL(n != NULL);
    CU_ASSERT(!stream_with_max_bytes_ok(jb_tnats_url(n), 8 * 1024 * 1024));
    CU_ASSERT(stream_with_max_bytes_ok(jb_tnats_url(n), 512 * 1024));
    CU_ASSERT(jb_tnats_kill(n) && jb_tnats_restart(n)); /* the file is used again */
    CU_ASSERT(!stream_with_max_bytes_ok(jb_tnats_url(n), 8 * 1024 * 1024));
    jb_tnats_stop(n);
    n = jb_tnats_start();
    CU_ASSERT_FATAL(n != NULL);
    CU_ASSERT(stream_with_max_bytes_ok(jb_tnats_url(n), 8 * 1024 * 1024));
    jb_tnats_stop(n);
}

static void test_free_port_is_bindable(void)
{
    int p = jb_free_port();
    CU_ASSERT(p > 1024 && p < 65536);
    /* Nothing listens there: the client reports -1, not a hang. */
    CU_ASSERT(jb_http(p, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
}

/* ------------------------------------------------------------------- sink */

static void test_sink_records_post(void)
{
    jb_tsink *s = jb_tsink_start();
    CU_ASSERT_FATAL(s != NULL);
    char want[64];
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/", jb_tsink_port(s));
    CU_ASSERT_STRING_EQUAL(jb_tsink_url(s), want);
    const char body[] = "{\"order\":42}";
    char *resp = NULL, *rh = NULL;
    size_t resp_len = 0;
    int code = jb_http(jb_tsink_port(s), "POST", "/events?x=1",
                       "Ce-Type: order.created.v1\r\nContent-Type: application/json\r\n", body,
                       strlen(body), &resp, &resp_len, &rh);
    CU_ASSERT(code == 200);
    CU_ASSERT(resp != NULL && strcmp(resp, "sink answered 200\n") == 0);
    CU_ASSERT(resp_len == strlen("sink answered 200\n"));
    CU_ASSERT(rh != NULL && strstr(rh, "HTTP/1.1 200") == rh);
    CU_ASSERT(rh != NULL && strstr(rh, "Content-Type: text/plain") != NULL);
    free(resp);
    free(rh);
    CU_ASSERT(jb_tsink_wait(s, 1, 5000) == 1);
    jb_treq r;
    CU_ASSERT_FATAL(jb_tsink_get(s, 0, &r));
    CU_ASSERT_STRING_EQUAL(r.method, "POST");
    CU_ASSERT_STRING_EQUAL(r.path, "/events?x=1");
    CU_ASSERT(jb_treq_header(&r, "ce-type") != NULL &&
              strcmp(jb_treq_header(&r, "ce-type"), "order.created.v1") == 0);
    CU_ASSERT(jb_treq_header(&r, "content-type") != NULL &&
              strcmp(jb_treq_header(&r, "content-type"), "application/json") == 0);
    CU_ASSERT(jb_treq_header(&r, "ce-id") == NULL);
    for (size_t i = 0; i < r.nheaders; i++) /* names are stored lower-case */
        for (const char *c = r.header_names[i]; *c != '\0'; c++)
            CU_ASSERT(!(*c >= 'A' && *c <= 'Z'));
    CU_ASSERT(r.body_len == strlen(body) && memcmp(r.body, body, r.body_len) == 0);
    CU_ASSERT(r.status == 200);
    CU_ASSERT(r.received_ns > 0);
    jb_treq_free(&r);
    CU_ASSERT(!jb_tsink_get(s, 1, &r));
    /* A GET without body and a binary body with NUL bytes. */
    CU_ASSERT(jb_http(jb_tsink_port(s), "GET", "/x", NULL, NULL, 0, NULL, NULL, NULL) == 200);
    const unsigned char bin[] = {0, 1, 2, 0, 255};
    CU_ASSERT(jb_http(jb_tsink_port(s), "PUT", "/b", NULL, bin, sizeof(bin), NULL, NULL, NULL) ==
              200);
    CU_ASSERT(jb_tsink_count(s) == 3);
    CU_ASSERT_FATAL(jb_tsink_get(s, 2, &r));
    CU_ASSERT_STRING_EQUAL(r.method, "PUT");
    CU_ASSERT(r.body_len == sizeof(bin) && memcmp(r.body, bin, sizeof(bin)) == 0);
    jb_treq_free(&r);
    jb_tsink_stop(s);
}

static void test_sink_script_and_retry_after(void)
{
    jb_tsink *s = jb_tsink_start();
    CU_ASSERT_FATAL(s != NULL);
    const int codes[] = {500, 429, 404, 503};
    jb_tsink_script(s, codes, 4, 201, 7, 0);
    const int want[] = {500, 429, 404, 503, 201, 201};
    for (size_t i = 0; i < 6; i++) {
        char *rh = NULL;
        int code = jb_http(jb_tsink_port(s), "POST", "/", NULL, "x", 1, NULL, NULL, &rh);
        CU_ASSERT(code == want[i]);
        CU_ASSERT_FATAL(rh != NULL);
        bool has_ra = strstr(rh, "Retry-After: 7\r\n") != NULL;
        CU_ASSERT(has_ra == (want[i] == 429 || want[i] == 503));
        free(rh);
        jb_treq r;
        CU_ASSERT_FATAL(jb_tsink_get(s, i, &r));
        CU_ASSERT(r.status == want[i]);
        jb_treq_free(&r);
    }
    /* A new script starts from its first code; retry_after 0 sends no header. */
    const int again[] = {503};
    jb_tsink_script(s, again, 1, 200, 0, 0);
    char *rh = NULL;
    CU_ASSERT(jb_http(jb_tsink_port(s), "POST", "/", NULL, NULL, 0, NULL, NULL, &rh) == 503);
    CU_ASSERT(rh != NULL && strstr(rh, "Retry-After") == NULL);
    free(rh);
    CU_ASSERT(jb_http(jb_tsink_port(s), "POST", "/", NULL, NULL, 0, NULL, NULL, NULL) == 200);
    CU_ASSERT(jb_tsink_total(s) == 8);
    jb_tsink_stop(s);
}

struct client {
    int port;
    int code;
    pthread_t t;
};

static void *client_run(void *arg)
{
    struct client *c = arg;
    c->code = jb_http(c->port, "POST", "/c", NULL, "hi", 2, NULL, NULL, NULL);
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_sink_delay(void)
{
    jb_tsink *s = jb_tsink_start();
    CU_ASSERT_FATAL(s != NULL);
    jb_tsink_script(s, NULL, 0, 202, 0, 300);
    int64_t t0 = now_ms();
    CU_ASSERT(jb_http(jb_tsink_port(s), "POST", "/", NULL, NULL, 0, NULL, NULL, NULL) == 202);
    CU_ASSERT(now_ms() - t0 >= 300); /* a lower bound the sink guarantees */
    CU_ASSERT(jb_tsink_in_progress(s) == 0);
    jb_tsink_stop(s);
}

/* Requests held back (delay -1) show the concurrency without any timing. */
static void test_sink_max_concurrency(void)
{
    enum { N = 4 };
    jb_tsink *s = jb_tsink_start();
    CU_ASSERT_FATAL(s != NULL);
    jb_tsink_script(s, NULL, 0, 200, 0, -1);
    struct client c[N];
    for (int i = 0; i < N; i++) {
        c[i].port = jb_tsink_port(s);
        c[i].code = 0;
        CU_ASSERT_FATAL(pthread_create(&c[i].t, NULL, client_run, &c[i]) == 0);
    }
    CU_ASSERT(jb_tsink_wait(s, N, 10000) == N);
    CU_ASSERT(jb_tsink_in_progress(s) == N);
    CU_ASSERT(jb_tsink_max_concurrent(s) == N);
    jb_tsink_release(s);
    for (int i = 0; i < N; i++) {
        pthread_join(c[i].t, NULL);
        CU_ASSERT(c[i].code == 200);
    }
    CU_ASSERT(jb_tsink_in_progress(s) == 0);
    CU_ASSERT(jb_tsink_max_concurrent(s) == N);
    /* Stopping with a request still held back answers it (503) and does not hang. */
    struct client last = {.port = jb_tsink_port(s)};
    CU_ASSERT_FATAL(pthread_create(&last.t, NULL, client_run, &last) == 0);
    CU_ASSERT(jb_tsink_wait(s, N + 1, 10000) == N + 1);
    jb_tsink_stop(s);
    pthread_join(last.t, NULL);
    CU_ASSERT(last.code == 503);
}

/* ---------------------------------------------------------------- process */

static void test_trun_help_and_unknown_command(void)
{
    char *out = NULL;
    const char *help[] = {"help", NULL};
    CU_ASSERT(jb_trun(help, NULL, &out, 10000) == 0);
    CU_ASSERT(out != NULL && strstr(out, "Usage: jetbridge") != NULL);
    free(out);
    out = NULL;
    char *err = NULL;
    const char *bad[] = {"no-such-command", NULL};
    CU_ASSERT(jb_trun_capture(bad, NULL, &out, &err, 10000) == 2);
    CU_ASSERT(out != NULL && out[0] == '\0');
    CU_ASSERT(err != NULL && strstr(err, "no-such-command") != NULL);
    free(out);
    free(err);
}

static void test_tproc_log_and_exit(void)
{
    const char *help[] = {"help", NULL};
    jb_tproc *p = jb_tproc_start(help, NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_pid(p) > 0);
    CU_ASSERT(jb_tproc_wait(p, 10000) == 0);
    CU_ASSERT(jb_tproc_wait(p, 0) == 0); /* already reaped: same answer */
    char *log = jb_tproc_log(p);
    CU_ASSERT(log != NULL && strstr(log, "Usage: jetbridge") != NULL);
    free(log);
    jb_tproc_stop(p);
}

static void test_tproc_env_and_signal(void)
{
    setenv("JB_HARNESS_DROP", "yes", 1);
    const char *env[] = {"JB_HARNESS_ADD=1", "JB_HARNESS_DROP", NULL};
    const char *none[] = {NULL};
    jb_tproc *p = jb_tproc_start_exe("/usr/bin/env", none, env, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_wait(p, 10000) == 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT(log != NULL && strstr(log, "JB_HARNESS_ADD=1\n") != NULL);
    CU_ASSERT(log != NULL && strstr(log, "JB_HARNESS_DROP") == NULL);
    CU_ASSERT(log != NULL && strstr(log, "PATH=") != NULL); /* the rest is inherited */
    free(log);
    jb_tproc_stop(p);
    unsetenv("JB_HARNESS_DROP");

    const char *sleep_args[] = {"30", NULL};
    p = jb_tproc_start_exe("/bin/sleep", sleep_args, NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_wait(p, 100) == -1); /* still running */
    jb_tproc_signal(p, SIGTERM);
    CU_ASSERT(jb_tproc_wait(p, 10000) == 128 + SIGTERM);
    jb_tproc_stop(p);
}

static void test_tproc_waits_for_port(void)
{
    char sink[4096];
    CU_ASSERT_FATAL(jb_built_program("sink", sink, sizeof(sink)));
    int port = jb_free_port();
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    const char *args[] = {"--port", port_s, NULL};
    jb_tproc *p = jb_tproc_start_exe(sink, args, NULL, port);
    CU_ASSERT_FATAL(p != NULL);
    const char *hdr = "Ce-Specversion: 1.0\r\nCe-Type: order.created.v1\r\nCe-Source: myapp\r\n"
                      "Ce-Id: A234-1234-1234\r\nContent-Type: application/json\r\n";
    CU_ASSERT(jb_http(port, "POST", "/", hdr, "{\"n\":1}", 7, NULL, NULL, NULL) == 200);
    jb_tproc_signal(p, SIGTERM);
    CU_ASSERT(jb_tproc_wait(p, 10000) >= 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT(log != NULL && strstr(log, "order.created.v1") != NULL);
    CU_ASSERT(log != NULL && strstr(log, "A234-1234-1234") != NULL);
    free(log);
    jb_tproc_stop(p);
    /* Nothing will listen on a fresh free port: start gives up, no hang. */
    const char *help[] = {"help", NULL};
    CU_ASSERT(jb_tproc_start(help, NULL, jb_free_port()) == NULL);
}

static const jb_test_case cases[] = {
    {"nats starts with JetStream on a free port", test_nats_starts_with_jetstream},
    {"nats kill/crash and restart keep stored messages", test_nats_restart_keeps_messages},
    {"nats stop kills the server and removes the store", test_nats_stop_removes_store},
    {"nats starts with a configuration file", test_nats_start_with_config},
    {"free port is free", test_free_port_is_bindable},
    {"sink records a POST with headers and body", test_sink_records_post},
    {"sink answers scripted codes with Retry-After", test_sink_script_and_retry_after},
    {"sink delays answers", test_sink_delay},
    {"sink tracks max concurrency; release and stop answer held requests",
     test_sink_max_concurrency},
    {"jb_trun: help exits 0, unknown command exits 2", test_trun_help_and_unknown_command},
    {"jb_tproc captures the log and the exit code", test_tproc_log_and_exit},
    {"jb_tproc adds/removes env and delivers signals", test_tproc_env_and_signal},
    {"jb_tproc waits for a port (example sink)", test_tproc_waits_for_port},
};

int main(void)
{
    int rc = jb_cunit_main("harness", NULL, NULL, cases, JB_CASES_N(cases));
    nats_Close();
    return rc;
}

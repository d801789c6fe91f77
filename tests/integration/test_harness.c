/*
 * The harness itself, tested against the real things it drives: nats-server,
 * the HTTP sink, the jetbridge binary. Every other integration suite relies on it.
 */
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    cl[cl_len] = '\0';
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
    char want[4096];
    snprintf(want, sizeof(want), "%s/store", jb_tnats_dir(n));
    CU_ASSERT_STRING_EQUAL(dir, want);
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

/* A dead process can linger as a zombie until its new parent reaps it: count that
 * as gone. */
static bool process_gone(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *rp = strrchr(stat, ')');
    return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The test program re-runs itself in this mode: start a server, print its pid, die
 * by SIGKILL (no cleanup at all). */
static int crash_with_nats(void)
{
    jb_tnats *n = jb_tnats_start();
    if (n == NULL)
        return 1;
    printf("%d %s\n", (int)jb_tnats_pid(n), jb_tnats_dir(n));
    fflush(stdout);
    kill(getpid(), SIGKILL);
    return 1;
}

static void test_nats_dies_with_crashed_test(void)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CU_ASSERT_FATAL(len > 0);
    self[len] = '\0';
    const char *args[] = {"--crash-with-nats", NULL};
    jb_tproc *p = jb_tproc_start_exe(self, args, NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_wait(p, 20000) == 128 + SIGKILL);
    char *log = jb_tproc_log(p);
    CU_ASSERT_FATAL(log != NULL);
    char *end = NULL;
    long pid = strtol(log, &end, 10);
    CU_ASSERT_FATAL(pid > 1 && end != NULL && *end == ' ');
    char dir[256];
    snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(end + 1, "\n"), end + 1);
    free(log);
    CU_ASSERT(dir_exists(dir)); /* a crashed test leaves its store; the server is gone */
    bool gone = false;
    for (int i = 0; i < 500 && !gone; i++) { /* generous: 10 s */
        gone = process_gone((pid_t)pid);
        if (!gone)
            jb_sleep_ms(20);
    }
    CU_ASSERT(gone);
    if (!gone)
        kill((pid_t)pid, SIGKILL);
    jb_rm_tree(dir);
    CU_ASSERT(!dir_exists(dir));
    jb_tproc_stop(p);
}

static void test_free_port_is_bindable(void)
{
    int p = jb_free_port();
    CU_ASSERT(p > 1024 && p < 65536);
    /* Nothing listens there: the client reports -1, not a hang. */
    CU_ASSERT(jb_http(p, "GET", "/", NULL, NULL, 0, NULL, NULL, NULL) == -1);
}

/* ------------------------------------------------------------ HTTP client */

/* A one-shot server: accepts one connection, reads the request head, writes a
 * canned answer, closes. Tests jb_http's parsing against exact bytes. */
struct canned {
    int lfd;
    const char *answer;
    char request[4096];
    pthread_t t;
};

static void *canned_run(void *arg)
{
    struct canned *c = arg;
    int fd = accept(c->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof(c->request) - 1) {
        ssize_t r = recv(fd, c->request + n, sizeof(c->request) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        c->request[n] = '\0';
        char *eoh = strstr(c->request, "\r\n\r\n");
        if (eoh != NULL && strstr(c->request, "Content-Length: 3\r\n") == NULL)
            break;
        if (eoh != NULL && n >= (size_t)(eoh + 4 - c->request) + 3)
            break;
    }
    send(fd, c->answer, strlen(c->answer), MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

static int canned_start(struct canned *c, const char *answer)
{
    memset(c, 0, sizeof(*c));
    c->answer = answer;
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (c->lfd < 0 || bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(c->lfd, 4) != 0 || getsockname(c->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        pthread_create(&c->t, NULL, canned_run, c) != 0)
        return -1;
    return ntohs(sa.sin_port);
}

static void canned_end(struct canned *c)
{
    pthread_join(c->t, NULL);
    close(c->lfd);
}

static void test_http_client_parsing(void)
{
    static const struct {
        const char *answer;
        int code;
        const char *body; /* NULL: no body expected (failure) */
    } rows[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello"},
        {"HTTP/1.1 201 Created\r\nTransfer-Encoding: "
         "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         201, "abcde"},
        {"HTTP/1.0 503 Busy\r\nRetry-After: 3\r\n\r\nuntil close", 503, "until close"},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204, ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", -1, NULL}, /* closed early */
        {"garbage\r\n\r\n", -1, NULL},
        {"", -1, NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(rows); i++) {
        struct canned c;
        int port = canned_start(&c, rows[i].answer);
        CU_ASSERT_FATAL(port > 0);
        char *body = NULL, *rh = NULL;
        size_t blen = 0;
        int code = jb_http(port, "POST", "/p?q=1", "X-Test: yes\r\n", "abc", 3, &body, &blen, &rh);
        canned_end(&c);
        CU_ASSERT_EQUAL(code, rows[i].code);
        if (rows[i].body != NULL) {
            CU_ASSERT(body != NULL && blen == strlen(rows[i].body) &&
                      memcmp(body, rows[i].body, blen) == 0);
            CU_ASSERT(rh != NULL && strncmp(rh, rows[i].answer, 12) == 0);
        } else {
            CU_ASSERT(body == NULL && rh == NULL); /* out-params untouched on failure */
        }
        free(body);
        free(rh);
        /* What the server saw: our request line, headers and body. */
        CU_ASSERT(strncmp(c.request, "POST /p?q=1 HTTP/1.1\r\n", 22) == 0);
        CU_ASSERT(strstr(c.request, "\r\nX-Test: yes\r\n") != NULL);
        CU_ASSERT(strstr(c.request, "\r\nContent-Length: 3\r\n") != NULL);
        CU_ASSERT(strstr(c.request, "\r\nConnection: close\r\n") != NULL);
        char *eoh = strstr(c.request, "\r\n\r\n");
        CU_ASSERT(eoh != NULL && strcmp(eoh + 4, "abc") == 0);
    }
}

static void test_http_raw(void)
{
    jb_tsink *s = jb_tsink_start();
    CU_ASSERT_FATAL(s != NULL);
    const char ok[] = "GET /raw HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(jb_http_raw(jb_tsink_port(s), ok, strlen(ok), NULL, NULL, NULL) == 200);
    const char bad[] = "NOT HTTP AT ALL\r\n\r\n";
    char *body = NULL;
    CU_ASSERT(jb_http_raw(jb_tsink_port(s), bad, strlen(bad), &body, NULL, NULL) == 400);
    CU_ASSERT(body != NULL && strstr(body, "Bad Request") != NULL);
    free(body);
    CU_ASSERT(jb_tsink_count(s) == 1);
    jb_tsink_stop(s);
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

/* The README's example sink: one readable line per event, in every content mode,
 * and --fail-every answers 500 on every Nth request. */
static void test_example_sink_output(void)
{
    char sink[4096];
    CU_ASSERT_FATAL(jb_built_program("sink", sink, sizeof(sink)));
    int port = jb_free_port();
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    const char *args[] = {"--port", port_s, "--status", "202", "--fail-every", "3", NULL};
    jb_tproc *p = jb_tproc_start_exe(sink, args, NULL, port);
    CU_ASSERT_FATAL(p != NULL);
    const char *bin = "ce-specversion: 1.0\r\nce-type: order.created.v1\r\nce-source: my%20app\r\n"
                      "ce-id: id-1\r\nce-time: 2020-04-02T21:37:00Z\r\n";
    CU_ASSERT(jb_http(port, "POST", "/", bin, "\x01\x1b[2J", 5, NULL, NULL, NULL) == 202);
    const char *st = "{\"specversion\":\"1.0\",\"type\":\"t.v1\",\"source\":\"s\",\"id\":\"id-2\","
                     "\"data\":{\"k\":[1,2]}}";
    CU_ASSERT(jb_http(port, "POST", "/", "Content-Type: application/cloudevents+json\r\n", st,
                      strlen(st), NULL, NULL, NULL) == 202);
    const char *batch = "[{\"type\":\"a.v1\",\"source\":\"s\",\"id\":\"id-3\"},"
                        "{\"type\":\"b.v1\",\"source\":\"s\",\"id\":\"id-4\"}]";
    CU_ASSERT(jb_http(port, "POST", "/",
                      "Content-Type: application/cloudevents-batch+json; charset=utf-8\r\n", batch,
                      strlen(batch), NULL, NULL, NULL) == 500); /* the 3rd request */
    char big[1000];
    memset(big, 'x', sizeof(big));
    CU_ASSERT(jb_http(port, "POST", "/", "ce-type: big.v1\r\n", big, sizeof(big), NULL, NULL,
                      NULL) == 202);
    jb_tproc_signal(p, SIGTERM);
    CU_ASSERT(jb_tproc_wait(p, 10000) == 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT_FATAL(log != NULL);
    CU_ASSERT(strstr(log, "#1 -> 202 binary type=order.created.v1 source=my app id=id-1 "
                          "time=2020-04-02T21:37:00Z data=\\x01\\x1b[2J") != NULL);
    CU_ASSERT(strstr(log, "#2 -> 202 structured type=t.v1 source=s id=id-2 data={\"k\":[1,2]}") !=
              NULL);
    CU_ASSERT(strstr(log, "#3 -> 500 structured type=a.v1 source=s id=id-3") != NULL);
    CU_ASSERT(strstr(log, "#3 -> 500 structured type=b.v1 source=s id=id-4") != NULL);
    /* data is cut at 200 bytes */
    const char *l4 = strstr(log, "#4 -> 202 binary type=big.v1 data=");
    CU_ASSERT(l4 != NULL && strstr(l4, "...(1000 bytes)\n") != NULL);
    CU_ASSERT(strchr(log, '\x1b') == NULL); /* no terminal escapes pass through */
    CU_ASSERT(strstr(log, "sink: stopped after 4 requests") != NULL);
    free(log);
    jb_tproc_stop(p);
    /* Bad arguments: usage error, exit 2. */
    const char *bad[] = {"--port", "99999", NULL};
    p = jb_tproc_start_exe(sink, bad, NULL, 0);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT(jb_tproc_wait(p, 10000) == 2);
    jb_tproc_stop(p);
}

static const jb_test_case cases[] = {
    {"nats starts with JetStream on a free port", test_nats_starts_with_jetstream},
    {"nats kill/crash and restart keep stored messages", test_nats_restart_keeps_messages},
    {"nats stop kills the server and removes the store", test_nats_stop_removes_store},
    {"nats starts with a configuration file", test_nats_start_with_config},
    {"nats-server dies with a crashed test", test_nats_dies_with_crashed_test},
    {"free port is free", test_free_port_is_bindable},
    {"jb_http parses Content-Length, chunked and until-close answers", test_http_client_parsing},
    {"jb_http_raw sends raw bytes", test_http_raw},
    {"sink records a POST with headers and body", test_sink_records_post},
    {"sink answers scripted codes with Retry-After", test_sink_script_and_retry_after},
    {"sink delays answers", test_sink_delay},
    {"sink tracks max concurrency; release and stop answer held requests",
     test_sink_max_concurrency},
    {"jb_trun: help exits 0, unknown command exits 2", test_trun_help_and_unknown_command},
    {"jb_tproc captures the log and the exit code", test_tproc_log_and_exit},
    {"jb_tproc adds/removes env and delivers signals", test_tproc_env_and_signal},
    {"jb_tproc waits for a port (example sink)", test_tproc_waits_for_port},
    {"example sink prints binary, structured and batch events; --fail-every",
     test_example_sink_output},
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--crash-with-nats") == 0)
        return crash_with_nats();
    int rc = jb_cunit_main("harness", NULL, NULL, cases, JB_CASES_N(cases));
    nats_Close();
    return rc;
}

/*
 * The publisher when things go wrong: NATS stopped and restarted (502, not ready,
 * recovery), a full stream (507), no stream (504), no ack in time (504), a full
 * in-flight window (503 + Retry-After), connection limits and timeouts, and a
 * clean SIGTERM. Each case has its own nats-server and publisher.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_pub_util.h"

static const char *const limits_env[] = {"JS_STREAM_RETENTION_POLICY=limits", NULL};

static int post_event(const pubenv *e, const char *id, size_t data_len)
{
    char hdrs[512];
    pe_binary_headers(hdrs, sizeof(hdrs), id, "faultsrc", "fault.event.v1");
    char *data = malloc(data_len + 1);
    memset(data, 'd', data_len);
    int code = pe_post(e, "/publish", hdrs, data, data_len, NULL, NULL);
    free(data);
    return code;
}

/* Posts fresh events until one answers want (at most timeout_ms). */
static bool wait_post_status(const pubenv *e, int want, int timeout_ms)
{
    static int seq;
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        char id[32];
        snprintf(id, sizeof(id), "wait-%d", ++seq);
        if (post_event(e, id, 10) == want)
            return true;
        jb_sleep_ms(200);
    }
    return false;
}

static void test_nats_down_and_back(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, limits_env));
    CU_ASSERT_EQUAL(post_event(&e, "up-1", 10), 204);
    CU_ASSERT_TRUE(jb_tnats_kill(e.nats));
    /* Upper bounds only: "quickly" here means well before any ack timeout. */
    CU_ASSERT_TRUE(wait_post_status(&e, 502, 15000));
    CU_ASSERT_TRUE(pe_wait_status(e.port, "/readyz", 503, 15000));
    CU_ASSERT_TRUE(pe_wait_status(e.admin, "/readyz", 503, 15000));
    CU_ASSERT_EQUAL(jb_http(e.port, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    /* The subscription store is unreachable: 500 in Kyma's shape. */
    char *resp = NULL;
    CU_ASSERT_EQUAL(
        jb_http(e.port, "GET", "/app/v1/events/subscribed", NULL, NULL, 0, &resp, NULL, NULL), 500);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "{\"code\":500,\"error\":\"") : NULL);
    free(resp);
    CU_ASSERT_TRUE(jb_tnats_restart(e.nats));
    CU_ASSERT_TRUE(pe_wait_status(e.port, "/readyz", 200, 30000));
    CU_ASSERT_TRUE(wait_post_status(&e, 204, 30000));
    CU_ASSERT_TRUE(pe_wait_status(e.port, "/app/v1/events/subscribed", 200, 30000));
    char *m = pe_metrics(&e);
    CU_ASSERT_PTR_NOT_NULL(
        m ? strstr(m, "jetbridge_publisher_rejected_total{reason=\"not_connected\"}") : NULL);
    CU_ASSERT_PTR_NOT_NULL(m ? strstr(m, "eventing_epp_requests_total{code=\"502\"") : NULL);
    free(m);
    pe_stop(&e);
}

static void test_stream_full_507(void)
{
    pubenv e;
    static const char *const env[] = {"JS_STREAM_RETENTION_POLICY=limits",
                                      "JS_STREAM_MAX_BYTES=8Ki", NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    int ok = 0, full = 0, other = 0;
    for (int i = 0; i < 40 && full == 0; i++) {
        char id[32];
        snprintf(id, sizeof(id), "full-%d", i);
        int code = post_event(&e, id, 1024);
        ok += code == 204;
        full += code == 507;
        other += code != 204 && code != 507;
    }
    CU_ASSERT(ok >= 1);
    CU_ASSERT_EQUAL(full, 1);
    CU_ASSERT_EQUAL(other, 0);
    /* The legacy endpoint reports it in its JSON shape. */
    const char *body = "{\"event-type\":\"order.created\",\"event-type-version\":\"v1\","
                       "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{\"x\":1}}";
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&e, "/fullapp/v1/events", NULL, body, strlen(body), &resp, NULL), 507);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "{\"status\":507,\"message\":\"") : NULL);
    free(resp);
    pe_stop(&e);
}

static void test_no_stream_504_then_recreated(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, limits_env));
    jsErrCode jerr = 0;
    CU_ASSERT_EQUAL_FATAL(js_DeleteStream(e.js, "sap", NULL, &jerr), NATS_OK);
    char *resp = NULL;
    CU_ASSERT_EQUAL(
        pe_post(&e, "/publish",
                "ce-specversion: 1.0\r\nce-id: ns-1\r\nce-source: s\r\nce-type: a.b\r\n", "x", 1,
                &resp, NULL),
        504);
    free(resp);
    /* The publisher notices (no responders) and creates the stream again. */
    CU_ASSERT_TRUE(wait_post_status(&e, 204, 15000));
    CU_ASSERT(pe_stream_msgs(&e) >= 1);
    pe_stop(&e);
}

typedef struct bg_post {
    const pubenv *e;
    int code;
} bg_post;

static void *bg_post_main(void *arg)
{
    bg_post *b = arg;
    b->code = post_event(b->e, "bg-1", 10);
    return NULL;
}

/* Waits until jetbridge_publisher_in_flight reads want (the gauge is refreshed a
 * few times per second). */
static bool wait_in_flight(const pubenv *e, int want, int timeout_ms)
{
    char line[64];
    snprintf(line, sizeof(line), "\njetbridge_publisher_in_flight %d\n", want);
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        char *m = pe_metrics(e);
        bool ok = m != NULL && strstr(m, line) != NULL;
        free(m);
        if (ok)
            return true;
        jb_sleep_ms(100);
    }
    return false;
}

static void test_window_full_503_and_ack_timeout_504(void)
{
    pubenv e;
    static const char *const env[] = {"JS_STREAM_RETENTION_POLICY=limits",
                                      "PUBLISH_MAX_IN_FLIGHT=1", "REQUEST_TIMEOUT=2s",
                                      "RETRY_AFTER_SECONDS=3", NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    /* A frozen server keeps the TCP connection but never acks. */
    pid_t np = jb_tnats_pid(e.nats);
    CU_ASSERT_FATAL(np > 0);
    kill(np, SIGSTOP);
    bg_post b = {&e, 0};
    pthread_t th;
    pthread_create(&th, NULL, bg_post_main, &b);
    CU_ASSERT_TRUE(wait_in_flight(&e, 1, 10000));
    char *hdrs = NULL;
    char h[256];
    pe_binary_headers(h, sizeof(h), "second", "faultsrc", "fault.event.v1");
    CU_ASSERT_EQUAL(pe_post(&e, "/publish", h, "{}", 2, NULL, &hdrs), 503);
    CU_ASSERT_PTR_NOT_NULL(hdrs ? strstr(hdrs, "Retry-After: 3") : NULL);
    free(hdrs);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(b.code, 504);
    kill(np, SIGCONT);
    CU_ASSERT_TRUE(wait_post_status(&e, 204, 30000));
    /* A batch that can never fit the window is 413, not a 503 to retry forever. */
    const char *batch =
        "[{\"specversion\":\"1.0\",\"id\":\"w1\",\"source\":\"s\",\"type\":\"a.b\"},"
        "{\"specversion\":\"1.0\",\"id\":\"w2\",\"source\":\"s\",\"type\":\"a.b\"}]";
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&e, "/publish", "Content-Type: application/cloudevents-batch+json\r\n",
                            batch, strlen(batch), &resp, NULL),
                    413);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "PUBLISH_MAX_IN_FLIGHT") : NULL);
    free(resp);
    char *m = pe_metrics(&e);
    CU_ASSERT_PTR_NOT_NULL(
        m ? strstr(m, "jetbridge_publisher_rejected_total{reason=\"in_flight_full\"} 1") : NULL);
    free(m);
    pe_stop(&e);
}

static int connect_raw(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the peer closes or timeout_ms passes; returns bytes read, -1 on
 * timeout. */
static int read_until_close(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r == 0)
            break;
        if (r < 0)
            return -1;
        got += (size_t)r;
        if (got + 1 >= cap)
            break;
    }
    buf[got] = '\0';
    return (int)got;
}

static void test_connection_limits(void)
{
    pubenv e;
    static const char *const env[] = {"PUBLISHER_THREADS=1", "MAX_CONNECTIONS=2",
                                      "HTTP_READ_TIMEOUT=4s", "MAX_HEADER_SIZE=2048", NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    /* Two idle connections fill the limit: a third is not served... */
    int a = connect_raw(e.port), b = connect_raw(e.port);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    jb_sleep_ms(100);
    int c = connect_raw(e.port);
    CU_ASSERT_FATAL(c >= 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CU_ASSERT(send(c, req, strlen(req), 0) > 0);
    char buf[4096];
    struct timeval tv = {0, 700 * 1000};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CU_ASSERT(recv(c, buf, sizeof(buf), 0) < 0);
    /* ...until the read timeout closes the idle ones; then it is. */
    CU_ASSERT(read_until_close(a, buf, sizeof(buf), 10000) >= 0);
    CU_ASSERT(read_until_close(c, buf, sizeof(buf), 10000) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "200 OK"));
    close(a);
    close(b);
    close(c);
    /* Headers over MAX_HEADER_SIZE are refused. */
    char *big = malloc(4096);
    memset(big, 'h', 4095);
    big[4095] = '\0';
    char *hdr = NULL;
    CU_ASSERT(asprintf(&hdr, "X-Big: %s\r\n", big) > 0);
    int code = jb_http(e.port, "GET", "/healthz", hdr, NULL, 0, NULL, NULL, NULL);
    CU_ASSERT(code == 413 || code == 431 || code == 400 || code == -1);
    free(hdr);
    free(big);
    CU_ASSERT_EQUAL(jb_http(e.port, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    pe_stop(&e);
}

static void test_client_gone_before_ack(void)
{
    pubenv e;
    static const char *const env[] = {"JS_STREAM_RETENTION_POLICY=limits", "REQUEST_TIMEOUT=2s",
                                      NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    pid_t np = jb_tnats_pid(e.nats);
    kill(np, SIGSTOP);
    /* Requests whose clients hang up while their publish waits for an ack: the
     * late answer must find a detached request, not freed memory. */
    for (int i = 0; i < 5; i++) {
        int fd = connect_raw(e.port);
        CU_ASSERT_FATAL(fd >= 0);
        char req[512];
        int n = snprintf(req, sizeof(req),
                         "POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                         "ce-id: gone-%d\r\nce-source: s\r\nce-type: a.b\r\n"
                         "Content-Length: 2\r\n\r\n{}",
                         i);
        CU_ASSERT(send(fd, req, (size_t)n, 0) == n);
        jb_sleep_ms(50);
        close(fd);
    }
    CU_ASSERT_TRUE(wait_in_flight(&e, 0, 15000)); /* all timed out (504) meanwhile */
    kill(np, SIGCONT);
    CU_ASSERT_EQUAL(jb_http(e.port, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_TRUE(wait_post_status(&e, 204, 30000));
    pe_stop(&e); /* exit 0: no sanitizer finding */
}

static void test_sigterm_exits_cleanly(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, limits_env));
    CU_ASSERT_EQUAL(post_event(&e, "term-1", 10), 204);
    jb_tproc_signal(e.proc, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(e.proc, 15000), 0);
    pe_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"NATS down: 502 and not ready; back: ready and 204", test_nats_down_and_back},
        {"stream full: 507 (and the legacy JSON shape)", test_stream_full_507},
        {"no stream: 504, then the stream is created again", test_no_stream_504_then_recreated},
        {"window full: 503 + Retry-After; no ack: 504", test_window_full_503_and_ack_timeout_504},
        {"connection limit, read timeout, header limit", test_connection_limits},
        {"client gone before the ack", test_client_gone_before_ack},
        {"SIGTERM exits 0", test_sigterm_exits_cleanly},
    };
    return jb_cunit_main("integration_pub_faults", NULL, NULL, cases, JB_CASES_N(cases));
}

/*
 * HTTP hardening of the ingress, through the real binary with raw sockets:
 * request smuggling shapes (duplicate or spaced Content-Length, odd
 * Transfer-Encoding), an over-limit Content-Length answered at once, a deadline
 * for the whole request, HTTP/1.1 without Host, nosniff on error bodies, and
 * that the well-formed shapes (chunked, keep-alive, pipelining) still work.
 * Every refused request must leave the stream empty.
 */
#include "test_id_util.h"

static const char *const env_small[] = {"JS_STREAM_RETENTION_POLICY=limits",
                                        "MAX_REQUEST_SIZE=4096", "HTTP_READ_TIMEOUT=3s",
                                        "HTTP_IDLE_TIMEOUT=60s", NULL};

/* A complete, valid binary-mode publish whose id is id (the smuggled payload). */
static char *valid_publish(const char *id)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: %s\r\n"
                     "ce-source: smuggler\r\nce-type: smuggled.event.v1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                     id);
    return n > 0 ? s : NULL;
}

/* head + a body that is itself a whole request: refused with want, one answer
 * only, connection closed, nothing stored. */
static void expect_smuggle_refused(const pubenv *e, const char *head_fmt, int want)
{
    char *inner = valid_publish("inner-1");
    char *req = NULL;
    int n = asprintf(&req, head_fmt, strlen(inner), inner);
    CU_ASSERT_FATAL(n > 0);
    char *all = NULL;
    bool closed = false;
    CU_ASSERT_EQUAL(id_exchange(e->port, req, (size_t)n, &all, &closed), want);
    CU_ASSERT_TRUE(closed);
    CU_ASSERT_EQUAL(id_count_responses(all), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(all, "X-Content-Type-Options: nosniff"));
    free(all);
    free(req);
    free(inner);
}

static void test_smuggling_shapes(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    /* Duplicate Content-Length: the first says 0, so libevent alone would read the
     * body as a second request. */
    expect_smuggle_refused(&e,
                           "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           400);
    /* A space before the colon: libevent alone ignores this header. */
    expect_smuggle_refused(
        &e, "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length : %zu\r\n\r\n%s", 400);
    /* Transfer-Encoding other than exactly chunked. */
    expect_smuggle_refused(&e,
                           "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                           "X-Len: %zu\r\n\r\n%s",
                           501);
    expect_smuggle_refused(&e,
                           "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
                           "identity\r\nX-Len: %zu\r\n\r\n%s",
                           501);
    expect_smuggle_refused(&e,
                           "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           400);
    /* HEAD takes no body in libevent: a Content-Length there is refused. */
    expect_smuggle_refused(&e, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                           400);
    /* Obsolete line folding. */
    expect_smuggle_refused(&e,
                           "POST /publish HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           400);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 0);
    char *m = pe_metrics(&e);
    CU_ASSERT_PTR_NOT_NULL(
        m ? strstr(m, "jetbridge_publisher_rejected_total{reason=\"bad_request\"} 5") : NULL);
    free(m);
    pe_stop(&e);
}

static void test_over_limit_content_length_at_once(void)
{
    pubenv e;
    static const char *const env[] = {"JS_STREAM_RETENTION_POLICY=limits", "MAX_REQUEST_SIZE=4096",
                                      "HTTP_READ_TIMEOUT=60s", NULL};
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env));
    /* Only the head is sent and the connection stays open: the 413 must come
     * without the body (before the 60 s read timeout; the socket waits 20 s). */
    const char *paths[] = {"/publish", "/myapp/v1/events"};
    for (size_t i = 0; i < 2; i++) {
        int fd = id_connect(e.port, 20000);
        CU_ASSERT_FATAL(fd >= 0);
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: 1000000\r\n\r\n{\"a\":",
                         paths[i]);
        CU_ASSERT_TRUE(id_send(fd, head, (size_t)n));
        char *all = NULL;
        CU_ASSERT_TRUE(id_read_all(fd, &all));
        CU_ASSERT_PTR_NOT_NULL(strstr(all, "HTTP/1.1 413 "));
        if (i == 1) /* the legacy route keeps Kyma's JSON body */
            CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"type\":\"request_body_too_large\""));
        free(all);
        close(fd);
    }
    /* Chunked bodies are counted too. */
    const char *chunked = "POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "10000\r\n";
    CU_ASSERT_EQUAL(id_exchange(e.port, chunked, strlen(chunked), NULL, NULL), 413);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 0);
    pe_stop(&e);
}

/* Reads from fd until want answers have arrived (or the connection ends). */
static size_t read_answers(int fd, char *buf, size_t cap, int want)
{
    size_t got = 0;
    buf[0] = '\0';
    for (int i = 0; i < 100 && id_count_responses(buf) < want; i++) {
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
    }
    return got;
}

/* Sends a slow request's head, then a byte of its body every 200 ms until the
 * publisher answers or closes; returns what it answered (NULL: nothing). */
static char *slow_request(int fd, const char *id)
{
    char *head = NULL;
    int n = asprintf(&head,
                     "POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                     "ce-id: %s\r\nce-source: s\r\nce-type: slow.event.v1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n",
                     id);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_TRUE(id_send(fd, head, (size_t)n));
    free(head);
    bool ended = false;
    for (int i = 0; i < 150 && !ended; i++) {
        jb_sleep_ms(200);
        if (!id_send(fd, " ", 1))
            ended = true;
        char peek[64];
        ssize_t r = recv(fd, peek, sizeof(peek) - 1, MSG_DONTWAIT | MSG_PEEK);
        if (r >= 0)
            ended = true; /* an answer, or the connection closed */
    }
    CU_ASSERT_TRUE(ended);
    char *all = NULL;
    id_read_all(fd, &all);
    return all;
}

static void test_whole_request_deadline(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    int fd = id_connect(e.port, 20000);
    CU_ASSERT_FATAL(fd >= 0);
    /* One byte every 200 ms keeps any per-read timeout from firing; the whole
     * request must still be refused once HTTP_READ_TIMEOUT (3 s) has passed. */
    char *all = slow_request(fd, "slow-1");
    CU_ASSERT_PTR_NOT_NULL(all ? strstr(all, "HTTP/1.1 408 ") : NULL);
    free(all);
    close(fd);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 0);
    pe_stop(&e);
}

static void test_deadline_on_kept_alive_connection(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    int fd = id_connect(e.port, 20000);
    CU_ASSERT_FATAL(fd >= 0);
    /* One request answered, the connection kept alive... */
    char *first = valid_publish("ka-1");
    CU_ASSERT_TRUE(id_send(fd, first, strlen(first)));
    char buf[4096];
    read_answers(fd, buf, sizeof(buf), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 204 "));
    /* ...then, 1.5 s later, a slow one: it gets the 408 of its own deadline. It
     * used to be closed without an answer 3 s after the previous answer (evhttp's
     * timeout ran from there, not restarted by the bytes the guard passed on). */
    jb_sleep_ms(1500);
    char *all = slow_request(fd, "ka-slow");
    CU_ASSERT_PTR_NOT_NULL(all ? strstr(all, "HTTP/1.1 408 ") : NULL);
    free(all);
    free(first);
    close(fd);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 1);
    pe_stop(&e);
}

static void test_idle_timeout_still_closes(void)
{
    static const char *const env_idle[] = {"JS_STREAM_RETENTION_POLICY=limits",
                                           "HTTP_READ_TIMEOUT=30s", "HTTP_IDLE_TIMEOUT=1s", NULL};
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_idle));
    int fd = id_connect(e.port, 20000);
    CU_ASSERT_FATAL(fd >= 0);
    /* A request that arrives in two reads (the guard held it incomplete in
     * between), answered; then the connection sits idle: HTTP_IDLE_TIMEOUT closes
     * it (the guard gave evhttp its timeout back). */
    char *req = valid_publish("idle-1");
    size_t n = strlen(req);
    CU_ASSERT_TRUE(id_send(fd, req, n - 1));
    jb_sleep_ms(300);
    CU_ASSERT_TRUE(id_send(fd, req + n - 1, 1));
    char buf[4096];
    read_answers(fd, buf, sizeof(buf), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 204 "));
    /* Closed by the server: recv returns 0 (generous bound: 20 s). */
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    CU_ASSERT_EQUAL(recv(fd, &c, 1, 0), 0);
    close(fd);
    free(req);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 1);
    pe_stop(&e);
}

static void test_host_and_nosniff(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    const char *no_host = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    CU_ASSERT_EQUAL(id_exchange(e.port, no_host, strlen(no_host), NULL, NULL), 400);
    const char *two_hosts = "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    CU_ASSERT_EQUAL(id_exchange(e.port, two_hosts, strlen(two_hosts), NULL, NULL), 400);
    const char *http10 = "GET /healthz HTTP/1.0\r\n\r\n";
    char *all = NULL;
    CU_ASSERT_EQUAL(id_exchange(e.port, http10, strlen(http10), &all, NULL), -1); /* 1.0 status */
    CU_ASSERT_PTR_NOT_NULL(all ? strstr(all, " 200 ") : NULL);
    free(all);
    /* The server's own error answers carry nosniff too. */
    char *hdrs = NULL;
    CU_ASSERT_EQUAL(jb_http(e.port, "GET", "/nope", NULL, NULL, 0, NULL, NULL, &hdrs), 404);
    CU_ASSERT_PTR_NOT_NULL(hdrs ? strstr(hdrs, "X-Content-Type-Options: nosniff") : NULL);
    free(hdrs);
    pe_stop(&e);
}

/* A raw NUL inside a header line: libevent would cut the value at it and the
 * attribute would be stored shortened; the guard refuses the request instead. */
static void test_raw_nul_in_header(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    static const char req[] = "POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                              "ce-type: order.created.v1\r\nce-source: myapp\r\n"
                              "ce-id: nul-1\r\nce-myext: ab\0cd\r\nContent-Length: 2\r\n\r\n{}";
    char *all = NULL;
    CU_ASSERT_EQUAL(id_exchange(e.port, req, sizeof(req) - 1, &all, NULL), 400);
    CU_ASSERT_PTR_NOT_NULL(all ? strstr(all, "NUL") : NULL);
    free(all);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 0);
    pe_stop(&e);
}

static void test_wellformed_shapes_still_work(void)
{
    pubenv e;
    CU_ASSERT_TRUE_FATAL(pe_start(&e, env_small));
    /* Chunked, with an empty trailer, then a second request pipelined behind it
     * on the same connection: both answered, both stored. */
    char *second = valid_publish("pipe-2");
    char *req = NULL;
    int n = asprintf(&req,
                     "POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: pipe-1\r\n"
                     "ce-source: smuggler\r\nce-type: smuggled.event.v1\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1\r\n{\r\n1\r\n}\r\n0\r\n\r\n%s",
                     second);
    int fd = id_connect(e.port, 20000);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_TRUE(id_send(fd, req, (size_t)n));
    /* Read both answers (the connection stays open: keep-alive). */
    char buf[4096] = {0};
    size_t got = 0;
    for (int i = 0; i < 100 && id_count_responses(buf) < 2; i++) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - got - 1, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
    }
    buf[got] = '\0';
    CU_ASSERT_EQUAL(id_count_responses(buf), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "HTTP/1.1 204 "));
    close(fd);
    CU_ASSERT_EQUAL(pe_stream_msgs(&e), 2);
    free(req);
    free(second);
    pe_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"smuggling shapes: 400/501, one answer, closed, nothing stored", test_smuggling_shapes},
        {"raw NUL in a header line: 400, nothing stored", test_raw_nul_in_header},
        {"over-limit Content-Length: 413 at once", test_over_limit_content_length_at_once},
        {"whole-request deadline: slow body gets 408", test_whole_request_deadline},
        {"kept-alive connection: a slow request still gets its 408",
         test_deadline_on_kept_alive_connection},
        {"idle timeout closes a kept-alive connection", test_idle_timeout_still_closes},
        {"HTTP/1.1 needs one Host; nosniff on errors", test_host_and_nosniff},
        {"chunked, keep-alive and pipelining still work", test_wellformed_shapes_still_work},
    };
    return jb_cunit_main("integration_id_http", NULL, NULL, cases, JB_CASES_N(cases));
}

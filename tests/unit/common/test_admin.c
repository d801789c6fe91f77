/* common/: the admin listener on a real libevent loop, spoken to over a socket. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

typedef struct answer {
    int status;
    char head[4096];
    char body[8192];
} answer;

/* Sends raw request bytes to 127.0.0.1:port and reads until the server closes. */
static bool http_raw(int port, const char *req, size_t reqlen, answer *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0}; /* "does not hang" bound */
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, reqlen) != (ssize_t)reqlen) {
        close(fd);
        return false;
    }
    static char buf[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    memset(a, 0, sizeof(*a));
    /* "HTTP/1.x NNN ..." */
    char *end = NULL;
    if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return false;
    a->status = (int)strtol(buf + 9, &end, 10);
    if (end != buf + 12)
        return false;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL)
        return false;
    snprintf(a->head, sizeof(a->head), "%.*s", (int)(sep - buf), buf);
    snprintf(a->body, sizeof(a->body), "%s", sep + 4);
    return true;
}

static bool http(int port, const char *method, const char *path, answer *a)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     method, path);
    return http_raw(port, req, (size_t)n, a);
}

typedef struct fixture {
    struct event_base *base;
    pthread_t th;
    jb_metrics *m;
    jb_admin *admin;
    int ready;
} fixture;

static void *loop_main(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static bool is_ready(void *ud)
{
    return __atomic_load_n((int *)ud, __ATOMIC_SEQ_CST) != 0;
}

static void start(fixture *f)
{
    jb_event_threads_init(); /* the loop runs on another thread than the test */
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    f->m = jb_metrics_create(10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
    jb_err err = {{0}};
    f->admin = jb_admin_start(f->base, "127.0.0.1:0", f->m, is_ready, &f->ready, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->admin);
    CU_ASSERT_TRUE(jb_admin_port(f->admin) > 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&f->th, NULL, loop_main, f->base), 0);
}

static void stop(fixture *f)
{
    event_base_loopbreak(f->base);
    pthread_join(f->th, NULL);
    jb_admin_stop(f->admin);
    event_base_free(f->base);
    jb_metrics_destroy(f->m);
}

static void test_routes(void)
{
    fixture f;
    start(&f);
    int port = jb_admin_port(f.admin);
    static const char *const labels[] = {"code"};
    jb_metric *c = jb_metrics_counter(f.m, "x_total", "X.", 1, labels);
    const char *const v[] = {"200"};
    jb_metric_add(c, v, 3);

    static const struct {
        const char *method, *path;
        int ready;
        int status;
        const char *ctype; /* NULL: not checked */
        const char *body;  /* substring, NULL: not checked */
    } cases[] = {
        {"GET", "/metrics", 0, 200, "Content-Type: text/plain; version=0.0.4; charset=utf-8",
         "# TYPE x_total counter\nx_total{code=\"200\"} 3\n"},
        {"GET", "/metrics?x=1", 0, 200, NULL, "x_total{code=\"200\"} 3\n"},
        {"GET", "/healthz", 0, 200, "Content-Type: text/plain; charset=utf-8", "ok\n"},
        {"GET", "/readyz", 0, 503, NULL, "not ready\n"},
        {"GET", "/readyz", 1, 200, NULL, "ready\n"},
        {"HEAD", "/healthz", 0, 200, NULL, NULL},
        {"GET", "/", 0, 404, NULL, "not found\n"},
        {"GET", "/metricsx", 0, 404, NULL, NULL},
        {"GET", "/publish", 0, 404, NULL, NULL},
        {"POST", "/metrics", 0, 405, "Allow: GET, HEAD", NULL},
        {"DELETE", "/healthz", 0, 405, NULL, NULL},
        {"PUT", "/readyz", 0, 405, NULL, NULL},
        {"POST", "/nothing", 0, 404, NULL, NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        __atomic_store_n(&f.ready, cases[i].ready, __ATOMIC_SEQ_CST);
        answer a;
        CU_ASSERT_TRUE_FATAL(http(port, cases[i].method, cases[i].path, &a));
        CU_ASSERT_EQUAL(a.status, cases[i].status);
        if (a.status != cases[i].status)
            fprintf(stderr, "%s %s -> %d\n", cases[i].method, cases[i].path, a.status);
        if (cases[i].ctype != NULL)
            CU_ASSERT_PTR_NOT_NULL(strstr(a.head, cases[i].ctype));
        if (cases[i].body != NULL)
            CU_ASSERT_PTR_NOT_NULL(strstr(a.body, cases[i].body));
    }
    stop(&f);
}

/* The limits are set: oversized headers and bodies are refused, not buffered. */
static void test_limits(void)
{
    fixture f;
    start(&f);
    int port = jb_admin_port(f.admin);
    size_t big = 64 * 1024;
    char *req = malloc(big + 256);
    int n = snprintf(req, big + 256, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    n += (int)big;
    n += snprintf(req + n, 256, "\r\nConnection: close\r\n\r\n");
    answer a;
    bool got = http_raw(port, req, (size_t)n, &a);
    /* libevent answers 400/431 or closes the connection: either way no 200. */
    fprintf(stderr, "big header: got=%d status=%d\n", got, got ? a.status : 0);
    CU_ASSERT_TRUE(!got || a.status >= 400);

    n = snprintf(req, big + 256,
                 "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 big);
    memset(req + n, 'b', big);
    got = http_raw(port, req, (size_t)n + big, &a);
    CU_ASSERT_TRUE(got);
    CU_ASSERT_EQUAL(a.status, 413);
    free(req);

    /* Still serving after the abuse. */
    CU_ASSERT_TRUE_FATAL(http(port, "GET", "/healthz", &a));
    CU_ASSERT_EQUAL(a.status, 200);
    stop(&f);
}

static void test_bind_errors(void)
{
    struct event_base *base = event_base_new();
    jb_err err = {{0}};
    CU_ASSERT_PTR_NULL(jb_admin_start(base, "nonsense", NULL, NULL, NULL, &err));
    CU_ASSERT_STRING_EQUAL(err.msg, "METRICS_ADDR: invalid address \"nonsense\"");
    CU_ASSERT_PTR_NULL(jb_admin_start(base, ":99999", NULL, NULL, NULL, &err));

    /* A port in use is an error naming the address. */
    jb_admin *a = jb_admin_start(base, "127.0.0.1:0", NULL, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", jb_admin_port(a));
    CU_ASSERT_PTR_NULL(jb_admin_start(base, addr, NULL, NULL, NULL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, addr));
    jb_admin_stop(a);
    event_base_free(base);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"routes, status codes, content types", test_routes},
        {"header and body limits", test_limits},
        {"bad address and port in use", test_bind_errors},
    };
    return jb_cunit_main("admin", NULL, NULL, cases, JB_CASES_N(cases));
}

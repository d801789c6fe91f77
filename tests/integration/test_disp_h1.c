/* The plain-HTTP lane of the dispatcher's HTTP client (dispatcher/h1conn.c): what
 * a sink sees on the wire and what a delivery sees in its callback, with
 * jb_dhttp_post driven on a libevent loop here against a scripted TCP server on
 * 127.0.0.1. The server is a thread that accepts, reads whole requests (head and
 * Content-Length body), records every byte and every connection, and answers
 * each request as the case's script says: bytes and keep the connection, bytes
 * and close, close without a byte, or never answer. */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "jb_cunit.h"

/* Generous bounds: a case that waits this long has failed, whatever the load. */
#define WAIT_MS  20000
#define MAX_CONN 32
#define MAX_REQ  64

/* ------------------------------------------------------------ the server */

typedef enum {
    A_KEEP,   /* send the bytes, keep reading */
    A_CLOSE,  /* send the bytes, then close */
    A_DROP,   /* close without a byte */
    A_SILENT, /* send nothing, keep the connection open */
} act;

typedef struct answer {
    const char *bytes; /* NUL-terminated unless len is set */
    size_t len;
    act then;
} answer;

typedef struct srv srv;
/* The answer to request req (0-based over the server), the req_in_conn-th on
 * connection conn (both 0-based). */
typedef answer (*script_fn)(srv *s, int conn, int req_in_conn, int req);

typedef struct sreq {
    char *data; /* head and body, NUL-terminated (the body may hold NULs) */
    size_t len, head_len;
    int conn;
} sreq;

typedef struct sconn {
    int fd;
    int no;
    int nreq;
    char *buf;
    size_t len, cap;
    bool paused; /* not read any more */
} sconn;

/* How a server answers; fixed before it starts. */
typedef struct srv_opts {
    script_fn script; /* NULL: every request gets fixed */
    answer fixed;
    bool tls_close;    /* close a connection whose first byte is a TLS handshake record */
    bool rst_accept;   /* reset every connection as it is accepted */
    const char *early; /* answered on connection 0 as soon as a head is read; then
                        * that connection is no longer read */
    const char *big;   /* answers for the script (borrowed) */
    const char *big2;
} srv_opts;

struct srv {
    int lfd, port;
    int stop[2];
    pthread_t th;
    srv_opts o;
    pthread_mutex_t mu;
    int accepted, eofs, closed_by_server, open, tls_hellos;
    int fds[MAX_CONN]; /* of the connections accepted, by number */
    int nreq;
    sreq reqs[MAX_REQ];
    sconn conns[MAX_CONN];
    int nconns;
};

static void lock(srv *s)
{
    pthread_mutex_lock(&s->mu);
}

static void unlock(srv *s)
{
    pthread_mutex_unlock(&s->mu);
}

static int get(srv *s, const int *field)
{
    lock(s);
    int v = *field;
    unlock(s);
    return v;
}

static void send_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static void conn_drop(srv *s, sconn *c, bool by_server)
{
    close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    lock(s);
    s->open--;
    if (by_server)
        s->closed_by_server++;
    else
        s->eofs++;
    unlock(s);
}

/* The Content-Length of head[0..n) (0 when absent). */
static size_t content_length(const char *head, size_t n)
{
    static const char name[] = "\r\ncontent-length:";
    for (size_t i = 0; i + sizeof(name) - 1 < n; i++)
        if (strncasecmp(head + i, name, sizeof(name) - 1) == 0)
            return (size_t)strtoull(head + i + sizeof(name) - 1, NULL, 10);
    return 0;
}

/* Takes every whole request off c's buffer and answers it; false when c is gone. */
static bool conn_requests(srv *s, sconn *c)
{
    for (;;) {
        char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end == NULL)
            return true;
        size_t head = (size_t)(end - c->buf) + 4;
        if (s->o.early != NULL && c->no == 0) {
            send_all(c->fd, s->o.early, strlen(s->o.early));
            c->paused = true;
            return true;
        }
        size_t total = head + content_length(c->buf, head);
        if (c->len < total)
            return true;
        lock(s);
        int req = s->nreq;
        if (req < MAX_REQ) {
            sreq *q = &s->reqs[req];
            q->data = malloc(total + 1);
            memcpy(q->data, c->buf, total);
            q->data[total] = '\0';
            q->len = total;
            q->head_len = head;
            q->conn = c->no;
            s->nreq++;
        }
        unlock(s);
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        answer a = s->o.script != NULL ? s->o.script(s, c->no, c->nreq++, req) : s->o.fixed;
        if (a.then == A_DROP) {
            conn_drop(s, c, true);
            return false;
        }
        if (a.then == A_SILENT)
            continue;
        send_all(c->fd, a.bytes, a.len > 0 ? a.len : strlen(a.bytes));
        if (a.then == A_CLOSE) {
            conn_drop(s, c, true);
            return false;
        }
    }
}

static void conn_read(srv *s, sconn *c)
{
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        conn_drop(s, c, false);
        return;
    }
    if (c->len == 0 && s->o.tls_close && (unsigned char)buf[0] == 0x16) {
        lock(s);
        s->tls_hellos++;
        unlock(s);
        conn_drop(s, c, true);
        return;
    }
    if (c->len + (size_t)n > c->cap) {
        size_t cap = c->cap > 0 ? c->cap : 65536;
        while (cap < c->len + (size_t)n)
            cap *= 2;
        c->buf = realloc(c->buf, cap);
        c->cap = cap;
    }
    memcpy(c->buf + c->len, buf, (size_t)n);
    c->len += (size_t)n;
    conn_requests(s, c);
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    for (;;) {
        struct pollfd p[MAX_CONN + 2];
        int idx[MAX_CONN + 2];
        nfds_t n = 0;
        p[n++] = (struct pollfd){.fd = s->stop[0], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        for (int i = 0; i < s->nconns; i++)
            if (s->conns[i].fd >= 0 && !s->conns[i].paused) {
                idx[n] = i;
                p[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
            }
        if (poll(p, n, -1) < 0)
            continue;
        if (p[0].revents != 0)
            return NULL;
        if ((p[1].revents & POLLIN) != 0) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0 && s->o.rst_accept) {
                /* After 0 to 255 us: some resets land between the client's
                 * check that it is connected and its first send. */
                usleep((useconds_t)(s->accepted * 37 % 256));
                struct linger l = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                close(fd);
                lock(s);
                s->accepted++;
                s->closed_by_server++;
                unlock(s);
            } else if (fd >= 0 && s->nconns < MAX_CONN) {
                sconn *c = &s->conns[s->nconns];
                *c = (sconn){.fd = fd, .no = s->nconns};
                lock(s);
                s->fds[s->nconns] = fd;
                s->accepted++;
                s->open++;
                unlock(s);
                s->nconns++;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (nfds_t i = 2; i < n; i++)
            if (p[i].revents != 0)
                conn_read(s, &s->conns[idx[i]]);
    }
}

static srv *srv_start(srv_opts o)
{
    srv *s = calloc(1, sizeof(*s));
    s->o = o;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* A small receive buffer: a large request is written in many parts. */
    int rcv = 65536;
    setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0 || pipe(s->stop) != 0) {
        close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, srv_main, s);
    return s;
}

static void srv_stop(srv *s)
{
    if (s == NULL)
        return;
    (void)!write(s->stop[1], "x", 1);
    pthread_join(s->th, NULL);
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i].fd >= 0) {
            close(s->conns[i].fd);
            free(s->conns[i].buf);
        }
    for (int i = 0; i < s->nreq; i++)
        free(s->reqs[i].data);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Sends bytes on connection conn (open), from the test's thread: bytes nobody
 * asked for. */
static void srv_push(srv *s, int conn, const char *bytes)
{
    lock(s);
    int fd = s->fds[conn];
    unlock(s);
    send_all(fd, bytes, strlen(bytes));
}

/* Request i as received (NULL when there is none yet). The record is not changed
 * once made. */
static const sreq *srv_req(srv *s, int i)
{
    lock(s);
    const sreq *q = i < s->nreq ? &s->reqs[i] : NULL;
    unlock(s);
    return q;
}

/* ------------------------------------------------------------ the client */

typedef struct call {
    int n; /* callbacks so far */
    int status;
    bool timed_out, refused;
    int64_t retry_after_ms;
    char error[256];
    char body[JB_DHTTP_BODY_KEEP];
    size_t body_len;
} call;

static void on_done(void *ud, const jb_dhttp_result *r)
{
    call *c = ud;
    c->n++;
    c->status = r->status;
    c->timed_out = r->timed_out;
    c->refused = r->refused;
    c->retry_after_ms = r->retry_after_ms;
    snprintf(c->error, sizeof(c->error), "%s", r->error != NULL ? r->error : "(null)");
    c->body_len = r->body_len;
    if (r->body_len > 0)
        memcpy(c->body, r->body, r->body_len);
}

typedef struct client {
    struct event_base *base;
    jb_dhttp *http;
    struct event *tick; /* wakes the loop, so that a wait sees its deadline */
} client;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static bool client_start(client *cl, long max_idle, const jb_dguard *guard)
{
    memset(cl, 0, sizeof(*cl));
    cl->base = event_base_new();
    if (cl->base == NULL)
        return false;
    cl->tick = event_new(cl->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    if (cl->tick == NULL || event_add(cl->tick, &tv) != 0)
        return false;
    cl->http = jb_dhttp_create(cl->base, max_idle, guard);
    return cl->http != NULL;
}

static void client_stop(client *cl)
{
    jb_dhttp_destroy(cl->http);
    if (cl->tick != NULL)
        event_free(cl->tick);
    if (cl->base != NULL)
        event_base_free(cl->base);
}

/* A server started with o and a client for it; NULL (nothing left running) when
 * either could not start. */
static srv *start_both(srv_opts o, client *cl, long max_idle, const jb_dguard *guard)
{
    srv *s = srv_start(o);
    bool ok = client_start(cl, max_idle, guard);
    if (s == NULL || !ok) {
        client_stop(cl);
        srv_stop(s);
        return NULL;
    }
    return s;
}

static void stop_both(client *cl, srv *s)
{
    client_stop(cl);
    srv_stop(s);
}

/* Runs the loop for about ms. */
static void run_for(client *cl, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(cl->base, &tv);
    event_base_dispatch(cl->base);
}

typedef bool (*pred_fn)(void *arg);

/* Runs the loop until pred holds (true) or WAIT_MS passed (false). */
static bool run_until(client *cl, pred_fn pred, void *arg)
{
    int64_t end = jb_now_monotonic_ns() + (int64_t)WAIT_MS * 1000000;
    while (!pred(arg)) {
        if (jb_now_monotonic_ns() > end)
            return false;
        event_base_loop(cl->base, EVLOOP_ONCE);
    }
    return true;
}

static bool call_done(void *arg)
{
    return ((call *)arg)->n > 0;
}

typedef struct at_least {
    srv *s;
    const int *field;
    int n;
} at_least;

static bool field_reached(void *arg)
{
    at_least *a = arg;
    return get(a->s, a->field) >= a->n;
}

/* Runs the loop until the server's counter reaches n. */
static bool wait_count(client *cl, srv *s, const int *field, int n)
{
    at_least a = {s, field, n};
    return run_until(cl, field_reached, &a);
}

/* One POST of body to url with headers, to its end. */
static bool post_wait(client *cl, const char *url, struct curl_slist *headers, const char *body,
                      size_t len, int64_t timeout_ms, call *c)
{
    memset(c, 0, sizeof(*c));
    if (jb_dhttp_post(cl->http, url, headers, body, len, timeout_ms, on_done, c, NULL) != JB_OK)
        return false;
    return run_until(cl, call_done, c) && c->n == 1;
}

static void url_of(char *buf, size_t n, const srv *s, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, path);
}

/* More than the socket buffers of a loopback connection hold (tcp_wmem's
 * maximum is 4 MiB): written in parts, and still being written when nobody reads. */
#define HUGE_LEN ((size_t)16 << 20)

/* ------------------------------------------------------------ scripts */

#define OK_204 "HTTP/1.1 204 No Content\r\n\r\n"
#define OK_200 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static const answer KEEP_204 = {OK_204, 0, A_KEEP};
static const answer CLOSE_200 = {
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, A_CLOSE};
/* HTTP/1.0 without keep-alive, the server leaving the connection open. */
static const answer HTTP10_OPEN = {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, A_KEEP};
static const answer HTTP10_KEEPALIVE = {
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0, A_KEEP};
static const answer SILENT = {"", 0, A_SILENT};
static const answer DROP = {"", 0, A_DROP};
/* The answer, then the connection closed. */
static const answer OK_200_CLOSE = {OK_200, 0, A_CLOSE};
/* Bytes after an answer. */
static const answer TRAILING = {OK_200 "HTTP/1.1 200 OK\r\n", 0, A_KEEP};

/* A sink that reads a request's head, then nothing more and never answers, with a
 * client for it; url (of n bytes) is set to it. */
static srv *start_deaf(client *cl, char *url, size_t n)
{
    srv *s = start_both((srv_opts){.fixed = SILENT, .early = ""}, cl, 8, NULL);
    if (s != NULL)
        url_of(url, n, s, "/deaf");
    return s;
}

/* ------------------------------------------------------------ 1: the request */

/* The head of q holds the line "line\r\n" (after the request line). */
static bool has_line(const sreq *q, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return memmem(q->data, q->head_len, want, strlen(want)) != NULL;
}

/* How many header lines of q are named name (any case). */
static int count_named(const sreq *q, const char *name)
{
    int n = 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i + 2 + nl < q->head_len; i++)
        if (q->data[i] == '\r' && q->data[i + 1] == '\n' &&
            strncasecmp(q->data + i + 2, name, nl) == 0 && q->data[i + 2 + nl] == ':')
            n++;
    return n;
}

static void test_request_on_the_wire(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = KEEP_204}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/hooks/orders?tenant=a1&x=%2F");
    struct curl_slist *h = NULL;
    const char *lines[] = {"Content-Type:",
                           "Expect:",
                           "X-Empty;",
                           "Host: evil",
                           "Content-Length: 9",
                           "Connection: close",
                           "Transfer-Encoding: chunked",
                           "X-Blank:   ",
                           "ce-id: e-1",
                           "X-Spaced:   v  w",
                           NULL};
    for (int i = 0; lines[i] != NULL; i++)
        h = curl_slist_append(h, lines[i]);
    static const char body[] = "{\"order\":42,\"note\":\"hello\"}";
    call c;
    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, h, body, strlen(body), WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    CU_ASSERT_STRING_EQUAL(c.error, "");
    const sreq *q = srv_req(s, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    char want[256];
    snprintf(want, sizeof(want),
             "POST /hooks/orders?tenant=a1&x=%%2F HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", s->port);
    CU_ASSERT_EQUAL(strncmp(q->data, want, strlen(want)), 0);
    CU_ASSERT_EQUAL(count_named(q, "Host"), 1);
    snprintf(want, sizeof(want), "Content-Length: %zu", strlen(body));
    CU_ASSERT_TRUE(has_line(q, want));
    CU_ASSERT_EQUAL(count_named(q, "Content-Length"), 1);
    CU_ASSERT_EQUAL(q->len - q->head_len, strlen(body));
    CU_ASSERT_EQUAL(memcmp(q->data + q->head_len, body, strlen(body)), 0);
    /* Dropped the way curl drops them, or written by the lane itself. */
    CU_ASSERT_EQUAL(count_named(q, "Content-Type"), 0);
    CU_ASSERT_EQUAL(count_named(q, "Expect"), 0);
    CU_ASSERT_EQUAL(count_named(q, "Connection"), 0);
    CU_ASSERT_EQUAL(count_named(q, "Transfer-Encoding"), 0);
    CU_ASSERT_EQUAL(count_named(q, "X-Blank"), 0);
    CU_ASSERT_PTR_NULL(memmem(q->data, q->head_len, "evil", 4));
    /* Sent: the empty header, the caller's own headers as given. */
    CU_ASSERT_TRUE(has_line(q, "X-Empty:"));
    CU_ASSERT_TRUE(has_line(q, "ce-id: e-1"));
    CU_ASSERT_TRUE(has_line(q, "X-Spaced:   v  w"));
    CU_ASSERT_TRUE(has_line(q, "Accept: */*"));

    /* No path at all: "/", and an empty body. */
    url_of(url, sizeof(url), s, "");
    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "", 0, WAIT_MS, &c));
    q = srv_req(s, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    snprintf(want, sizeof(want), "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", s->port);
    CU_ASSERT_EQUAL(strncmp(q->data, want, strlen(want)), 0);
    CU_ASSERT_TRUE(has_line(q, "Content-Length: 0"));
    CU_ASSERT_EQUAL(q->len, q->head_len);

    /* A query without a path: the request target still starts with "/", as
     * curl writes it. */
    url_of(url, sizeof(url), s, "?x=1");
    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    q = srv_req(s, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(strncmp(q->data, "POST /?x=1 HTTP/1.1\r\n", 21), 0);

    /* A head far larger than a usual one (many long extensions): every header
     * arrives, in order, and the body after them. */
    curl_slist_free_all(h);
    h = NULL;
    char line[300];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof(line), "ce-ext%02d: %0200d", i, i);
        h = curl_slist_append(h, line);
    }
    url_of(url, sizeof(url), s, "/big-head");
    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, h, body, strlen(body), WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    q = srv_req(s, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    const char *prev = q->data;
    for (const struct curl_slist *l = h; l != NULL; l = l->next) {
        snprintf(want, sizeof(want), "\r\n%s\r\n", l->data);
        const char *at = memmem(q->data, q->head_len, want, strlen(want));
        CU_ASSERT_TRUE(at != NULL && at > prev);
        prev = at != NULL ? at : prev;
    }
    CU_ASSERT_EQUAL(q->len - q->head_len, strlen(body));
    CU_ASSERT_EQUAL(memcmp(q->data + q->head_len, body, strlen(body)), 0);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 1);
    curl_slist_free_all(h);
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 2: keep-alive */

/* n posts one after the other; true when every one got status. */
static bool posts(client *cl, srv *s, int n, int status)
{
    char url[128];
    url_of(url, sizeof(url), s, "/ka");
    for (int i = 0; i < n; i++) {
        call c;
        if (!post_wait(cl, url, NULL, "{}", 2, WAIT_MS, &c) || c.status != status)
            return false;
    }
    return true;
}

static void test_keep_alive(void)
{
    const struct {
        answer a;
        int status;
        int accepted; /* for 5 posts */
        bool client_closes;
    } cases[] = {
        {KEEP_204, 204, 1, false},
        {CLOSE_200, 200, 5, false},
        {HTTP10_OPEN, 200, 5, true},
        {HTTP10_KEEPALIVE, 200, 1, false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        client cl;
        srv *s = start_both((srv_opts){.fixed = cases[i].a}, &cl, 8, NULL);
        CU_ASSERT_TRUE_FATAL(s != NULL);
        int status = cases[i].status;
        CU_ASSERT_TRUE(posts(&cl, s, 5, status));
        run_for(&cl, 50);
        CU_ASSERT_EQUAL(get(s, &s->nreq), 5);
        CU_ASSERT_EQUAL(get(s, &s->accepted), cases[i].accepted);
        if (cases[i].client_closes) {
            /* The client closed each connection it did not keep. */
            CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 5));
        }
        stop_both(&cl, s);
    }
}

/* ------------------------------------------------------------ 3: answers */

/* A chunked 503 with Retry-After, a Content-Length 429 with Retry-After, then an
 * answer framed by the close of the connection, all on one connection. */
static answer framings(srv *s, int conn, int rin, int req)
{
    (void)conn, (void)rin;
    if (req == 0)
        return (answer){"HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
                        "Retry-After: 7\r\n\r\n"
                        "5\r\nbusy \r\n"
                        "b;ext=1\r\ntry again\r\n\r\n"
                        "0\r\nX-Trailer: t\r\n\r\n",
                        0, A_KEEP};
    if (req == 1)
        return (answer){"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\n"
                        "retry-after: 120\r\n\r\nslow",
                        0, A_KEEP};
    if (req == 2)
        return (answer){s->o.big2, 0, A_KEEP};
    return (answer){s->o.big, 0, A_CLOSE};
}

static void test_answer_framing(void)
{
    /* The close-framed answer: a body of 1000 bytes, of which 768 are kept. */
    static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    char *big = malloc(sizeof(head) + 1000);
    memcpy(big, head, sizeof(head) - 1);
    for (size_t i = 0; i < 1000; i++)
        big[sizeof(head) - 1 + i] = (char)('a' + i % 26);
    big[sizeof(head) - 1 + 1000] = '\0';
    /* A long answer framed by Content-Length: 100,000 bytes, read past the kept
     * part to its end. */
    static const char head2[] = "HTTP/1.1 201 Created\r\nContent-Length: 100000\r\n\r\n";
    char *big2 = malloc(sizeof(head2) + 100000);
    memcpy(big2, head2, sizeof(head2) - 1);
    for (size_t i = 0; i < 100000; i++)
        big2[sizeof(head2) - 1 + i] = (char)('A' + i % 26);
    big2[sizeof(head2) - 1 + 100000] = '\0';
    client cl;
    srv *s = start_both((srv_opts){.script = framings, .big = big, .big2 = big2}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/");
    call c;
    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 503);
    CU_ASSERT_EQUAL(c.retry_after_ms, 7000);
    CU_ASSERT_EQUAL(c.body_len, 16);
    CU_ASSERT_EQUAL(memcmp(c.body, "busy try again\r\n", 16), 0);
    CU_ASSERT_FALSE(c.timed_out);

    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 429);
    CU_ASSERT_EQUAL(c.retry_after_ms, 120000);
    CU_ASSERT_EQUAL(c.body_len, 4);
    CU_ASSERT_EQUAL(memcmp(c.body, "slow", 4), 0);

    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 201);
    CU_ASSERT_EQUAL(c.body_len, JB_DHTTP_BODY_KEEP);
    CU_ASSERT_EQUAL(memcmp(c.body, big2 + sizeof(head2) - 1, JB_DHTTP_BODY_KEEP), 0);

    CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 200);
    CU_ASSERT_EQUAL(c.retry_after_ms, -1);
    CU_ASSERT_EQUAL(c.body_len, JB_DHTTP_BODY_KEEP);
    CU_ASSERT_EQUAL(memcmp(c.body, big + sizeof(head) - 1, JB_DHTTP_BODY_KEEP), 0);
    CU_ASSERT_STRING_EQUAL(c.error, "");
    /* Each answer ended exactly where its framing said: the connection carried
     * all four. */
    CU_ASSERT_EQUAL(get(s, &s->accepted), 1);
    CU_ASSERT_EQUAL(get(s, &s->nreq), 4);
    stop_both(&cl, s);
    free(big);
    free(big2);

    /* Bytes after an answer: the answer counts, the connection is not reused. */
    s = start_both((srv_opts){.fixed = TRAILING}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/");
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE_FATAL(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
        CU_ASSERT_EQUAL(c.status, 200);
        CU_ASSERT_EQUAL(c.body_len, 2);
    }
    CU_ASSERT_EQUAL(get(s, &s->accepted), 2);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 2));
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 4: stale */

/* The first request answered, keep-alive; the second on that connection read and
 * dropped without an answer (a sink closing an idle connection as it is reused);
 * every other answered. */
static answer second_dropped(srv *s, int conn, int rin, int req)
{
    (void)s, (void)req;
    if (conn == 0 && rin == 1)
        return (answer){"", 0, A_DROP};
    return (answer){OK_200, 0, A_KEEP};
}

/* The first request answered, keep-alive; the second's answer cut short by the
 * close of the connection. */
static answer truncated(srv *s, int conn, int rin, int req)
{
    (void)s, (void)conn, (void)rin;
    if (req == 0)
        return (answer){OK_200, 0, A_KEEP};
    return (answer){"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, A_CLOSE};
}

/* The first request answered, keep-alive; every later one dropped. */
static answer first_only(srv *s, int conn, int rin, int req)
{
    (void)s, (void)conn, (void)rin;
    if (req == 0)
        return (answer){OK_200, 0, A_KEEP};
    return (answer){"", 0, A_DROP};
}

static void chain_post(void *ud, const jb_dhttp_result *r);

typedef struct chain {
    client *cl;
    const char *url;
    call first, second;
} chain;

/* The second post from the first one's callback: it takes the connection the
 * first answer left idle before the loop can see the sink's close. */
static void chain_post(void *ud, const jb_dhttp_result *r)
{
    chain *ch = ud;
    on_done(&ch->first, r);
    if (jb_dhttp_post(ch->cl->http, ch->url, NULL, "{}", 2, WAIT_MS, on_done, &ch->second, NULL) !=
        JB_OK)
        ch->second.n = -1;
}

static bool second_done(void *arg)
{
    return ((chain *)arg)->second.n != 0;
}

/* Two posts to a sink answering with script: the first gets its 200, the second
 * fails (status 0, an error, not a timeout); the sink then received nreq
 * requests on accepted connections. */
static void second_post_fails(script_fn script, int nreq, int accepted)
{
    client cl;
    srv *s = start_both((srv_opts){.script = script}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/stale");
    call c;
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c) && c.status == 200);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT_FALSE(c.timed_out);
    CU_ASSERT_NOT_EQUAL(c.error[0], '\0');
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(get(s, &s->nreq), nreq);
    CU_ASSERT_EQUAL(get(s, &s->accepted), accepted);
    stop_both(&cl, s);
}

static void test_stale_connection(void)
{
    char url[128];
    call c;
    /* The server closes after its answer; the next post is made once the close is
     * seen by the server, and from the callback. */
    for (int from_callback = 0; from_callback < 2; from_callback++) {
        client cl;
        srv *s = start_both((srv_opts){.fixed = OK_200_CLOSE}, &cl, 8, NULL);
        CU_ASSERT_TRUE_FATAL(s != NULL);
        url_of(url, sizeof(url), s, "/stale");
        if (from_callback) {
            chain ch = {.cl = &cl, .url = url};
            CU_ASSERT_EQUAL_FATAL(
                jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, chain_post, &ch, NULL), JB_OK);
            CU_ASSERT_TRUE(run_until(&cl, second_done, &ch));
            CU_ASSERT_EQUAL(ch.first.status, 200);
            CU_ASSERT_EQUAL(ch.second.n, 1);
            CU_ASSERT_EQUAL(ch.second.status, 200);
        } else {
            CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c) && c.status == 200);
            CU_ASSERT_TRUE(wait_count(&cl, s, &s->closed_by_server, 1));
            CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c) && c.status == 200);
        }
        CU_ASSERT_EQUAL(get(s, &s->accepted), 2);
        CU_ASSERT_EQUAL(get(s, &s->nreq), 2);
        stop_both(&cl, s);
    }

    /* The request was read and the connection closed without an answer: it is sent
     * once more, on a new connection, and answered there. */
    client cl;
    srv *s = start_both((srv_opts){.script = second_dropped}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/stale");
    struct curl_slist *h = NULL; /* a head larger than the lane's first buffer */
    char line[300];
    for (int i = 0; i < 10; i++) {
        snprintf(line, sizeof(line), "ce-ext%02d: %0200d", i, i);
        h = curl_slist_append(h, line);
    }
    CU_ASSERT_TRUE(post_wait(&cl, url, h, "{\"n\":1}", 7, WAIT_MS, &c) && c.status == 200);
    CU_ASSERT_TRUE(post_wait(&cl, url, h, "{\"n\":2}", 7, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 200);
    CU_ASSERT_STRING_EQUAL(c.error, "");
    CU_ASSERT_EQUAL(get(s, &s->accepted), 2);
    CU_ASSERT_EQUAL_FATAL(get(s, &s->nreq), 3);
    const sreq *q1 = srv_req(s, 1), *q2 = srv_req(s, 2);
    CU_ASSERT_EQUAL(q1->conn, 0);
    CU_ASSERT_EQUAL(q2->conn, 1);
    CU_ASSERT_TRUE(q1->len == q2->len && memcmp(q1->data, q2->data, q1->len) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(q2->data + q2->head_len, "\"n\":2"));
    snprintf(line, sizeof(line), "ce-ext09: %0200d", 9);
    CU_ASSERT_TRUE(has_line(q2, line));
    curl_slist_free_all(h);
    stop_both(&cl, s);

    /* A sink that closes every connection without answering (after a first answer
     * that made the connection reusable): the post fails, after the request was
     * sent at most twice. */
    second_post_fails(first_only, 1 + 2, 2);

    /* An answer cut short on a reused connection: the post fails and is not sent
     * again (the sink has begun to answer it). */
    second_post_fails(truncated, 1 + 1, 1);

    /* Bytes on an idle connection that nobody asked for: the client closes it,
     * and the next post goes on a new connection. */
    s = start_both((srv_opts){.fixed = KEEP_204}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/stale");
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c) && c.status == 204);
    srv_push(s, 0, "HTTP/1.1 200 OK\r\n\r\n");
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 1));
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c) && c.status == 204);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 2);
    stop_both(&cl, s);

    /* On a new connection it is not sent again. */
    s = start_both((srv_opts){.fixed = DROP}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/stale");
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT_NOT_EQUAL(c.error[0], '\0');
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(get(s, &s->nreq), 1);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 1);
    stop_both(&cl, s);

    /* A sink that resets each connection as it accepts it: the request fails as
     * it is written on the connection just opened (or as its answer is read),
     * with one callback. */
    s = start_both((srv_opts){.fixed = DROP, .rst_accept = true}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/rst");
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
        CU_ASSERT_EQUAL(c.status, 0);
        CU_ASSERT_NOT_EQUAL(c.error[0], '\0');
    }
    run_for(&cl, 50);
    CU_ASSERT_EQUAL(get(s, &s->nreq), 0);
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 5: timeout */

static void test_timeout(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = SILENT}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/slow");
    call c;
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, 300, &c));
    CU_ASSERT_TRUE(c.timed_out);
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT_NOT_EQUAL(c.error[0], '\0');
    CU_ASSERT_EQUAL(get(s, &s->nreq), 1);
    /* The connection that timed out is not kept: the server sees it closed. */
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 1));
    stop_both(&cl, s);

    /* A sink that reads nothing while 16 MiB are being written: the timeout ends
     * the write too. */
    s = start_deaf(&cl, url, sizeof(url));
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char *more = calloc(1, HUGE_LEN);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, more, HUGE_LEN, 300, &c));
    free(more);
    CU_ASSERT_TRUE(c.timed_out);
    CU_ASSERT_EQUAL(c.status, 0);
    stop_both(&cl, s);

    /* A listener that never accepts, its queue already full (Linux drops the
     * handshakes beyond it): timed out as well, whether the connection is left
     * half-made or made and never read. */
    CU_ASSERT_TRUE_FATAL(client_start(&cl, 8, NULL));
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CU_ASSERT_TRUE_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 0) == 0 &&
                         getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        (void)!connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/never", ntohs(a.sin_port));
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, 300, &c));
    CU_ASSERT_TRUE(c.timed_out);
    CU_ASSERT_EQUAL(c.status, 0);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
    client_stop(&cl);
}

/* ------------------------------------------------------------ 6: a large body */

static void test_large_body(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = KEEP_204}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    size_t len = (size_t)4 << 20;
    char *body = malloc(len);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        body[i] = (char)x;
    }
    char url[128];
    url_of(url, sizeof(url), s, "/big");
    call c;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE(post_wait(&cl, url, NULL, body, len, WAIT_MS, &c));
        CU_ASSERT_EQUAL(c.status, 204);
        const sreq *q = srv_req(s, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        CU_ASSERT_EQUAL_FATAL(q->len - q->head_len, len);
        CU_ASSERT_EQUAL(memcmp(q->data + q->head_len, body, len), 0);
    }
    CU_ASSERT_EQUAL(get(s, &s->accepted), 1);
    stop_both(&cl, s);

    /* A sink that answers 413 after the head and reads no more: the answer
     * reaches the callback while the body is still being written (16 MiB: more
     * than the socket buffers hold), and that connection is not used again. */
    s = start_both(
        (srv_opts){.fixed = KEEP_204,
                   .early = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig"},
        &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/big");
    char *more = calloc(1, HUGE_LEN);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, more, HUGE_LEN, WAIT_MS, &c));
    free(more);
    CU_ASSERT_EQUAL(c.status, 413);
    CU_ASSERT_TRUE(c.body_len == 3 && memcmp(c.body, "big", 3) == 0);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 2);
    free(body);
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 7: the guard */

static void test_guard_applies(void)
{
    const char *env[] = {"SINK_DENY_NETWORKS=127.0.0.0/8,::1/128", NULL};
    const char *argv[] = {"dispatcher", NULL};
    jb_cfg *cfg = NULL;
    jb_err err = {0};
    int rest[2], nrest = 0;
    CU_ASSERT_EQUAL_FATAL(jb_cfg_load(1, (char **)argv, (char **)env, &cfg, rest, &nrest, &err),
                          JB_OK);
    jb_dguard *g = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_dguard_create(cfg, &g, &err), JB_OK);
    client cl;
    srv *s = start_both((srv_opts){.fixed = KEEP_204}, &cl, 8, g);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    const char *hosts[] = {"127.0.0.1", "localhost"};
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), "http://%s:%d/", hosts[i], s->port);
        call c;
        CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
        CU_ASSERT_TRUE(c.refused);
        CU_ASSERT_EQUAL(c.status, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(c.error, "SINK_DENY_NETWORKS"));
    }
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 0);
    stop_both(&cl, s);
    jb_dguard_destroy(g);
    jb_cfg_destroy(cfg);
}

/* ------------------------------------------------------------ 8: cancel */

static bool none_open(void *arg)
{
    srv *s = arg;
    return get(s, &s->open) == 0;
}

static void test_cancel_and_destroy(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = SILENT}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/c");
    call c = {0};
    jb_dhttp_req *r = NULL;
    /* Cancelled while its request waits for the answer. */
    CU_ASSERT_EQUAL_FATAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &c, &r),
                          JB_OK);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->nreq, 1));
    jb_dhttp_cancel(cl.http, r);
    CU_ASSERT_EQUAL(jb_dhttp_active(cl.http), 0);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 1));
    /* Cancelled while its connection is being opened. */
    CU_ASSERT_EQUAL_FATAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &c, &r),
                          JB_OK);
    jb_dhttp_cancel(cl.http, r);
    CU_ASSERT_TRUE(run_until(&cl, none_open, s));
    CU_ASSERT_EQUAL(c.n, 0);
    stop_both(&cl, s);

    /* Cancelled while its body is being written to a sink that reads nothing. */
    s = start_deaf(&cl, url, sizeof(url));
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char *more = calloc(1, HUGE_LEN);
    CU_ASSERT_EQUAL_FATAL(
        jb_dhttp_post(cl.http, url, NULL, more, HUGE_LEN, WAIT_MS, on_done, &c, &r), JB_OK);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->accepted, 1));
    run_for(&cl, 100);
    jb_dhttp_cancel(cl.http, r);
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(c.n, 0);
    CU_ASSERT_EQUAL(jb_dhttp_active(cl.http), 0);
    free(more);
    stop_both(&cl, s);
    s = start_both((srv_opts){.fixed = SILENT}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    url_of(url, sizeof(url), s, "/c");

    /* Destroyed with requests in flight: on the lane (waiting for answers, and one
     * being connected) and through curl (userinfo). */
    call d[4] = {{0}};
    char curl_url[128];
    snprintf(curl_url, sizeof(curl_url), "http://u:p@127.0.0.1:%d/c", s->port);
    int before = get(s, &s->nreq);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &d[i], NULL),
                        JB_OK);
    CU_ASSERT_EQUAL(jb_dhttp_post(cl.http, curl_url, NULL, "{}", 2, WAIT_MS, on_done, &d[2], NULL),
                    JB_OK);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->nreq, before + 3));
    CU_ASSERT_EQUAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &d[3], NULL),
                    JB_OK);
    CU_ASSERT_EQUAL(jb_dhttp_active(cl.http), 4);
    jb_dhttp_destroy(cl.http);
    cl.http = NULL;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(d[i].n, 0);
    /* Every connection the server accepted is closed by the client. */
    int64_t end = jb_now_monotonic_ns() + (int64_t)WAIT_MS * 1000000;
    while (get(s, &s->open) > 0 && jb_now_monotonic_ns() < end)
        usleep(10000);
    CU_ASSERT_EQUAL(get(s, &s->open), 0);
    CU_ASSERT_EQUAL(c.n, 0);
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 9: curl's URLs */

static void test_curl_urls(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = KEEP_204, .tls_close = true}, &cl, 8, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    call c;
    /* Userinfo: curl carries it, as an Authorization header. */
    snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/u", s->port);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    const sreq *q = srv_req(s, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_TRUE(has_line(q, "Authorization: Basic dXNlcjpwdw=="));
    CU_ASSERT_EQUAL(strncmp(q->data, "POST /u HTTP/1.1\r\n", 18), 0);
    /* A fragment: curl carries it (it drops the fragment, and writes the form
     * content type the lane never writes). */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/f#frag", s->port);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 204);
    q = srv_req(s, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(strncmp(q->data, "POST /f HTTP/1.1\r\n", 18), 0);
    CU_ASSERT_TRUE(has_line(q, "Content-Type: application/x-www-form-urlencoded"));
    /* https: curl starts a TLS handshake (the lane never would); the server
     * closes on it and the post fails. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/t", s->port);
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c));
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT_NOT_EQUAL(c.error[0], '\0');
    CU_ASSERT_EQUAL(get(s, &s->tls_hellos), 1);
    CU_ASSERT_EQUAL(get(s, &s->nreq), 2);
    stop_both(&cl, s);
}

/* ------------------------------------------------------------ 10: max_idle */

static bool calls_done(void *arg)
{
    call *c = arg;
    for (int i = 0; i < 4; i++)
        if (c[i].n == 0)
            return false;
    return true;
}

static void test_max_idle(void)
{
    client cl;
    srv *s = start_both((srv_opts){.fixed = KEEP_204}, &cl, 2, NULL);
    CU_ASSERT_TRUE_FATAL(s != NULL);
    char url[128];
    url_of(url, sizeof(url), s, "/i");
    call c[4] = {{0}};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &c[i], NULL),
                        JB_OK);
    CU_ASSERT_TRUE_FATAL(run_until(&cl, calls_done, c));
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(c[i].status, 204);
    CU_ASSERT_EQUAL(get(s, &s->accepted), 4);
    CU_ASSERT_TRUE(wait_count(&cl, s, &s->eofs, 2));
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(get(s, &s->open), 2);
    /* The two kept are reused. */
    for (int i = 0; i < 2; i++)
        c[i].n = 0;
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(jb_dhttp_post(cl.http, url, NULL, "{}", 2, WAIT_MS, on_done, &c[i], NULL),
                        JB_OK);
    CU_ASSERT_TRUE(run_until(&cl, calls_done, c));
    CU_ASSERT_EQUAL(get(s, &s->accepted), 4);
    stop_both(&cl, s);

    /* Four sinks, one after the other: the two least recently used connections
     * are closed, and a post to one of those sinks closes the next oldest. */
    srv *v[4];
    CU_ASSERT_TRUE_FATAL(client_start(&cl, 2, NULL));
    for (int i = 0; i < 4; i++) {
        v[i] = srv_start((srv_opts){.fixed = KEEP_204});
        CU_ASSERT_PTR_NOT_NULL_FATAL(v[i]);
        url_of(url, sizeof(url), v[i], "/i");
        CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c[0]) && c[0].status == 204);
    }
    CU_ASSERT_TRUE(wait_count(&cl, v[0], &v[0]->eofs, 1));
    CU_ASSERT_TRUE(wait_count(&cl, v[1], &v[1]->eofs, 1));
    url_of(url, sizeof(url), v[0], "/i");
    CU_ASSERT_TRUE(post_wait(&cl, url, NULL, "{}", 2, WAIT_MS, &c[0]) && c[0].status == 204);
    CU_ASSERT_EQUAL(get(v[0], &v[0]->accepted), 2);
    CU_ASSERT_TRUE(wait_count(&cl, v[2], &v[2]->eofs, 1));
    run_for(&cl, 100);
    CU_ASSERT_EQUAL(get(v[0], &v[0]->open), 1);
    CU_ASSERT_EQUAL(get(v[1], &v[1]->open), 0);
    CU_ASSERT_EQUAL(get(v[2], &v[2]->open), 0);
    CU_ASSERT_EQUAL(get(v[3], &v[3]->open), 1);
    client_stop(&cl);
    for (int i = 0; i < 4; i++)
        srv_stop(v[i]);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"request_on_the_wire", test_request_on_the_wire},
        {"keep_alive", test_keep_alive},
        {"answer_framing", test_answer_framing},
        {"stale_connection", test_stale_connection},
        {"timeout", test_timeout},
        {"large_body", test_large_body},
        {"guard_applies", test_guard_applies},
        {"cancel_and_destroy", test_cancel_and_destroy},
        {"curl_urls", test_curl_urls},
        {"max_idle", test_max_idle},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = jb_cunit_main("integration_disp_h1", NULL, NULL, cases, JB_CASES_N(cases));
    curl_global_cleanup();
    return rc;
}

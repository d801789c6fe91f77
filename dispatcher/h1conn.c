/* The plain-HTTP lane of http.c (see disp_http.h). Why: for a small event, curl's
 * work per request (its transfer set-up, and the request head it formats one
 * character at a time) was about half of the dispatcher's CPU per delivery
 * (docs/dispatcher.md, "The plain-HTTP lane"). Here a request is one sendmsg of
 * a head built with a few memcpy and the event's body, and the answer is parsed
 * as it arrives. What curl is good at stays curl's: name resolution, the SSRF
 * guard's check of every address, connect timeouts and their errors, TLS,
 * client certificates, and any URL not of the plain form below.
 *
 * A connection serves one request at a time and is kept open after an answer that
 * allows it, up to max_idle idle connections for the handle (the least recently
 * used is closed first). An idle connection that becomes readable (the sink
 * closed it, or sent bytes nobody asked for) is closed. A request sent on a
 * reused connection that dies before any byte of an answer is sent once more on a
 * new connection, as curl does: the sink may have closed an idle connection just
 * as it was reused. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "dispatcher/disp_h1.h"
#include "dispatcher/disp_http.h"

/* A host name (253) or a bracketed IPv6 literal with a zone, and ":65535". */
#define AUTH_MAX 272
/* The request head of a delivery is well below this; a longer one (many large
 * CloudEvents extensions) grows the buffer, which the connection keeps. */
#define HEAD_START 1024
/* Bytes read from the socket per call. */
#define READ_CHUNK 16384

typedef struct jb_h1conn {
    jb_dhttp *h;
    jb_dlink link; /* on h->h1_idle while idle */
    evutil_socket_t fd;
    struct event *rev, *wev; /* read: always added once connected; write: while blocked */
    CURL *connecting;        /* curl opening the connection, else NULL */
    jb_dhttp_req *req;       /* the request it carries; NULL: idle */
    bool reused;             /* it carried a request before this one */
    bool idle;               /* on h->h1_idle */
    bool in_start;           /* being started inside jb_dhttp_post: no callback may run */
    char key[AUTH_MAX];      /* "host:port", lower case */
    uint32_t key_hash;       /* of key: the idle list is searched by it first */
    /* The request being written: head[off..len), then body[boff..blen). */
    char *head;
    size_t head_len, head_cap, head_off;
    const char *body;
    size_t body_len, body_off;
    jb_h1 parser;
} jb_h1conn;

/* The parts of a plain URL: http://host[:port][/path][?query]. */
typedef struct target {
    char key[AUTH_MAX];  /* host:port, lower case (the pool's key) */
    char host[AUTH_MAX]; /* the Host header: host, and :port unless 80 */
    const char *path;    /* from the first '/' or '?' (NULL: "/") */
} target;

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Plain printable ASCII, no space: the characters a request line may carry as they are. */
static bool path_char(char c)
{
    return c > ' ' && c < 0x7f && c != '#';
}

/* false for anything curl should carry: userinfo, a fragment, an odd host or
 * port, a character a request line cannot carry as it is. */
static bool parse_target(const char *url, target *t)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7, *p = a;
    if (*p == '[') {
        p++;
        while ((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f') ||
               *p == ':' || *p == '.')
            p++;
        if (*p != ']' || p == a + 1)
            return false;
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == a)
            return false;
    }
    size_t hlen = (size_t)(p - a);
    unsigned port = 80;
    bool port_given = false;
    if (*p == ':') {
        p++;
        const char *d = p;
        port = 0;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (unsigned)(*p++ - '0');
        if (p == d || port == 0 || port > 65535)
            return false;
        port_given = true;
    }
    if (*p != '\0' && *p != '/' && *p != '?')
        return false;
    for (const char *q = p; *q != '\0'; q++)
        if (!path_char(*q))
            return false;
    if (hlen + 7 > AUTH_MAX)
        return false;
    for (size_t i = 0; i < hlen; i++)
        t->key[i] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] | 0x20 : a[i]);
    t->key[hlen] = ':';
    size_t klen = hlen + 1 + jb_dec_u64(t->key + hlen + 1, port);
    if (port_given && port != 80) {
        memcpy(t->host, t->key, klen + 1);
    } else {
        memcpy(t->host, t->key, hlen);
        t->host[hlen] = '\0';
    }
    t->path = *p != '\0' ? p : NULL;
    return true;
}

bool jb_h1_takes(const jb_dhttp *h, const char *url)
{
    return !h->h1_off && h->cert == NULL && h->capture == NULL &&
           strncasecmp(url, "http://", 7) == 0;
}

/* ------------------------------------------------------------- connections */

static void conn_close(jb_h1conn *c)
{
    jb_dhttp *h = c->h;
    if (c->idle) {
        jb_dlist_unlink(&h->h1_idle, &c->link);
        h->h1_nidle--;
    }
    if (c->connecting != NULL) {
        curl_multi_remove_handle(h->multi, c->connecting);
        curl_easy_cleanup(c->connecting);
    }
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->fd >= 0)
        close(c->fd);
    free(c->head);
    free(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

/* After an answer: idle (the most recently used last) or closed. */
static void conn_release(jb_h1conn *c, bool keep)
{
    jb_dhttp *h = c->h;
    c->req = NULL;
    if (c->wev != NULL)
        event_del(c->wev);
    if (!keep || h->max_idle == 0) {
        conn_close(c);
        return;
    }
    if (h->h1_nidle >= h->max_idle)
        conn_close(JB_DLIST_ENTRY(h->h1_idle.head, jb_h1conn, link));
    jb_dlist_append(&h->h1_idle, &c->link);
    h->h1_nidle++;
    c->idle = true;
    c->reused = true;
}

/* FNV-1a: the idle list (up to max_idle long, connections to every sink of the
 * loop) is compared by a number, and by the string only when that matches. */
static uint32_t key_hash(const char *key)
{
    uint32_t x = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        x = (x ^ *p) * 16777619u;
    return x;
}

/* The most recently used idle connection to key, taken off the idle list. */
static jb_h1conn *conn_take_idle(jb_dhttp *h, const char *key)
{
    uint32_t hash = key_hash(key);
    for (jb_dlink *l = h->h1_idle.tail; l != NULL; l = l->prev) {
        jb_h1conn *c = JB_DLIST_ENTRY(l, jb_h1conn, link);
        if (c->key_hash == hash && strcmp(c->key, key) == 0) {
            jb_dlist_unlink(&h->h1_idle, l);
            h->h1_nidle--;
            c->idle = false;
            return c;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ answers */

/* Ends r with res; its connection is kept (keep) or closed. */
static void end_request(jb_dhttp_req *r, jb_dhttp_result *res, bool keep)
{
    jb_h1conn *c = r->conn;
    r->conn = NULL;
    if (r->timer != NULL)
        evtimer_del(r->timer);
    res->seconds = (double)(jb_now_monotonic_ns() - r->start_ns) / 1e9;
    if (res->error == NULL)
        res->error = "";
    if (c != NULL)
        conn_release(c, keep);
    r->h->complete(r, res);
}

static void fail(jb_dhttp_req *r, const char *error, bool timed_out)
{
    jb_dhttp_result res = {0};
    res.error = error;
    res.timed_out = timed_out;
    res.retry_after_ms = -1;
    end_request(r, &res, false);
}

static void answered(jb_dhttp_req *r, const jb_h1 *p, bool keep)
{
    jb_dhttp_result res = {0};
    res.status = p->status;
    res.retry_after_ms = p->retry_after_ms;
    /* Copied: the callback may start a request on this same connection. */
    memcpy(r->body, p->body, p->body_len);
    r->body_len = p->body_len;
    res.body = r->body;
    res.body_len = r->body_len;
    end_request(r, &res, keep);
}

static jb_status connect_new(jb_dhttp_req *r, const char *key, int64_t timeout_ms);

static int64_t left_ms(const jb_dhttp_req *r)
{
    int64_t left = r->h1_timeout_ms - (jb_now_monotonic_ns() - r->start_ns) / 1000000;
    return left > 0 ? left : 1;
}

/* c died before any byte of an answer to r: r again on a new connection, once,
 * when c had been reused (a stale keep-alive connection), else a failure. */
static void died(jb_h1conn *c, const char *error)
{
    jb_dhttp_req *r = c->req;
    if (!c->reused || r->h1_retried || connect_new(r, c->key, left_ms(r)) != JB_OK) {
        fail(r, error, false);
        return;
    }
    /* The new connection takes the request as written for c. */
    r->h1_retried = true;
    jb_h1conn *n = r->conn; /* new: no head of its own yet */
    n->head = c->head;
    n->head_cap = c->head_cap;
    n->head_len = c->head_len;
    n->body = c->body;
    n->body_len = c->body_len;
    c->head = NULL;
    c->req = NULL;
    conn_close(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    jb_h1conn *c = arg;
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        jb_dhttp_req *r = c->req;
        if (r == NULL) {
            conn_close(c); /* idle: closed by the sink, or bytes nobody asked for */
            return;
        }
        if (n <= 0) {
            if (c->parser.seen == 0) {
                died(c, n == 0 ? "the sink closed the connection without an answer"
                               : "the connection to the sink failed while waiting for its answer");
                return;
            }
            if (n < 0) {
                fail(r, "the connection to the sink failed while reading its answer", false);
                return;
            }
            if (jb_h1_eof(&c->parser) == JB_H1_DONE)
                answered(r, &c->parser, false);
            else
                fail(r, c->parser.error, false);
            return;
        }
        size_t used = 0;
        jb_h1_state st = jb_h1_feed(&c->parser, buf, (size_t)n, &used);
        if (st == JB_H1_BAD) {
            fail(r, c->parser.error, false);
            return;
        }
        if (st == JB_H1_DONE) {
            /* An answer before the whole request was written, or bytes after
             * it: the connection is not in a state to carry another request. */
            bool clean =
                used == (size_t)n && c->head_off == c->head_len && c->body_off == c->body_len;
            answered(r, &c->parser, c->parser.keep_alive && clean);
            return;
        }
    }
}

/* Writes what is left of the request; false when the connection failed (r ended). */
static bool write_some(jb_h1conn *c)
{
    while (c->head_off < c->head_len || c->body_off < c->body_len) {
        struct iovec iov[2];
        int n = 0;
        if (c->head_off < c->head_len)
            iov[n++] = (struct iovec){c->head + c->head_off, c->head_len - c->head_off};
        if (c->body_off < c->body_len)
            iov[n++] = (struct iovec){(void *)(c->body + c->body_off), c->body_len - c->body_off};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return true;
        }
        if (w < 0 && c->in_start) {
            /* Seen again from the loop, where the request may end. */
            event_active(c->wev, EV_WRITE, 0);
            return true;
        }
        if (w < 0) {
            died(c, "the connection to the sink failed while sending the request");
            return false;
        }
        size_t left = (size_t)w;
        size_t hw = c->head_len - c->head_off < left ? c->head_len - c->head_off : left;
        c->head_off += hw;
        c->body_off += left - hw;
    }
    event_del(c->wev);
    return true;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_h1conn *c = arg;
    if (c->req != NULL)
        write_some(c);
    else
        event_del(c->wev);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dhttp_req *r = arg;
    char msg[96];
    snprintf(msg, sizeof(msg), "the sink did not answer within %lld ms",
             (long long)r->h1_timeout_ms);
    /* The result is read during the callback only: a stack buffer will do. */
    fail(r, msg, true);
}

/* ------------------------------------------------------------------ requests */

static bool head_reserve(jb_h1conn *c, size_t more)
{
    if (c->head_len + more <= c->head_cap)
        return true;
    size_t cap = c->head_cap > 0 ? c->head_cap : HEAD_START;
    while (cap < c->head_len + more)
        cap *= 2;
    char *b = realloc(c->head, cap);
    if (b == NULL)
        return false;
    c->head = b;
    c->head_cap = cap;
    return true;
}

static bool head_add(jb_h1conn *c, const char *s, size_t n)
{
    if (!head_reserve(c, n))
        return false;
    memcpy(c->head + c->head_len, s, n);
    c->head_len += n;
    return true;
}

static bool head_str(jb_h1conn *c, const char *s)
{
    return head_add(c, s, strlen(s));
}

/* Names the lane writes itself: a caller's header of that name is not sent. */
static bool own_header(const char *line, size_t nlen)
{
    static const char *const own[] = {"host", "content-length", "transfer-encoding", "connection",
                                      "expect"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strlen(own[i]) == nlen && strncasecmp(line, own[i], nlen) == 0)
            return true;
    return false;
}

/* One caller header in curl's spelling: "Name: value" is sent; "Name:" with
 * nothing after it is not (curl's way to drop a header); "Name;" sends the header
 * empty. */
static bool head_header(jb_h1conn *c, const char *line)
{
    size_t nlen = strcspn(line, ":;");
    if (line[nlen] == '\0' || nlen == 0 || own_header(line, nlen))
        return true;
    if (line[nlen] == ';') {
        if (line[nlen + 1] != '\0')
            return true; /* "Name;something": curl sends nothing either */
        return head_add(c, line, nlen) && head_add(c, ":\r\n", 3);
    }
    const char *v = line + nlen + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return true;
    return head_str(c, line) && head_add(c, "\r\n", 2);
}

static bool build_head(jb_h1conn *c, const target *t, const struct curl_slist *headers, size_t len)
{
    char num[JB_DEC_MAX + 4];
    c->head_len = c->head_off = 0;
    /* An origin-form target starts with "/", also for a URL with a query and no
     * path (curl writes http://h?q as "/?q"). */
    const char *slash = t->path == NULL || t->path[0] == '?' ? "/" : "";
    if (!head_add(c, "POST ", 5) || !head_str(c, slash) ||
        !head_str(c, t->path != NULL ? t->path : "") || !head_str(c, " HTTP/1.1\r\nHost: ") ||
        !head_str(c, t->host) || !head_str(c, "\r\nAccept: */*\r\n"))
        return false;
    for (const struct curl_slist *l = headers; l != NULL; l = l->next)
        if (!head_header(c, l->data))
            return false;
    size_t n = jb_dec_u64(num, len);
    memcpy(num + n, "\r\n\r\n", 4);
    return head_str(c, "Content-Length: ") && head_add(c, num, n + 4);
}

/* Sends r on c (connected, not idle, its head built): at once, or when the socket
 * takes it. in_start: inside jb_dhttp_post, where r may not end. */
static void send_on(jb_h1conn *c, jb_dhttp_req *r, bool in_start)
{
    c->req = r;
    r->conn = c;
    jb_h1_init(&c->parser, jb_now_wall_ms());
    c->head_off = 0;
    c->body_off = 0;
    c->in_start = in_start;
    /* false: the request ended and c is gone (never when in_start). */
    if (write_some(c))
        c->in_start = false;
}

/* curl opens a connection for r to key (CONNECT_ONLY); r->conn is it. */
static jb_status connect_new(jb_dhttp_req *r, const char *key, int64_t timeout_ms)
{
    jb_dhttp *h = r->h;
    jb_h1conn *c = calloc(1, sizeof(*c));
    CURL *e = c != NULL ? curl_easy_init() : NULL;
    if (e == NULL) {
        free(c);
        return JB_ERR_NOMEM;
    }
    c->h = h;
    c->fd = -1;
    snprintf(c->key, sizeof(c->key), "%s", key);
    c->key_hash = key_hash(c->key);
    char url[AUTH_MAX + 16];
    snprintf(url, sizeof(url), "http://%s/", key);
    r->guard.guard = h->guard;
    jb_dguard_apply(&r->guard, e);
    h->conn_options(h, e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        free(c);
        return JB_ERR_INTERNAL;
    }
    c->connecting = e;
    c->req = r;
    r->conn = c;
    return JB_OK;
}

void jb_h1_connected(jb_dhttp_req *r, CURLcode code)
{
    jb_h1conn *c = r->conn;
    jb_dhttp *h = c->h;
    curl_socket_t s = CURL_SOCKET_BAD;
    if (code == CURLE_OK)
        curl_easy_getinfo(c->connecting, CURLINFO_ACTIVESOCKET, &s);
    /* The descriptor is the lane's from here: curl closes its own when the handle
     * goes (through http.c's close callback, which takes it off the loop first). */
    if (s != CURL_SOCKET_BAD)
        c->fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
    curl_multi_remove_handle(h->multi, c->connecting);
    curl_easy_cleanup(c->connecting);
    c->connecting = NULL;
    if (code != CURLE_OK || c->fd < 0) {
        jb_dhttp_result res = {0};
        res.retry_after_ms = -1;
        res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
        res.refused = code != CURLE_OK && r->guard.refused;
        res.error = res.refused         ? r->guard.why
                    : code == CURLE_OK  ? "the connection to the sink was lost"
                    : r->errbuf[0] != 0 ? r->errbuf
                                        : curl_easy_strerror(code);
        end_request(r, &res, false);
        return;
    }
    c->rev = event_new(h->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(h->base, c->fd, EV_WRITE | EV_PERSIST, on_write, c);
    if (c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) != 0) {
        fail(r, "out of memory", false);
        return;
    }
    send_on(c, r, false);
}

jb_status jb_h1_start(jb_dhttp_req *r, const char *url, const void *body, size_t len,
                      int64_t timeout_ms)
{
    jb_dhttp *h = r->h;
    target t;
    if (!parse_target(url, &t))
        return JB_ERR_UNSUPPORTED;
    r->h1_timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    if (r->timer == NULL)
        r->timer = evtimer_new(h->base, on_timeout, r);
    if (r->timer == NULL)
        return JB_ERR_NOMEM;
    jb_h1conn *c = conn_take_idle(h, t.key);
    if (c == NULL) {
        jb_status st = connect_new(r, t.key, r->h1_timeout_ms);
        if (st != JB_OK)
            return st;
        c = r->conn;
    }
    c->body = body;
    c->body_len = len;
    if (!build_head(c, &t, r->headers, len)) {
        r->conn = NULL;
        c->req = NULL;
        conn_close(c);
        return JB_ERR_NOMEM;
    }
    struct timeval tv = {(time_t)(r->h1_timeout_ms / 1000),
                         (suseconds_t)(r->h1_timeout_ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
    if (c->connecting == NULL)
        send_on(c, r, true);
    return JB_OK;
}

void jb_h1_abort(jb_dhttp_req *r)
{
    jb_h1conn *c = r->conn;
    if (r->timer != NULL)
        evtimer_del(r->timer);
    if (c == NULL)
        return;
    r->conn = NULL;
    c->req = NULL;
    conn_close(c);
}

void jb_h1_close_idle(jb_dhttp *h)
{
    while (h->h1_idle.head != NULL)
        conn_close(JB_DLIST_ENTRY(h->h1_idle.head, jb_h1conn, link));
}

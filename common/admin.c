/*
 * The admin listener: /metrics, /healthz and /readyz on METRICS_ADDR. It runs on
 * the caller's libevent loop. libevent's evhttp defaults are unbounded (body and
 * header sizes, no timeout), so every limit is set here explicitly; the admin
 * port takes no request bodies at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/jb_common.h"

#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY    1024
#define ADMIN_TIMEOUT_SEC 10
/* Open admin connections at once; further ones wait in the kernel's backlog. */
#define ADMIN_MAX_CONNECTIONS 16
/* Rendered /metrics pages alive at once (held by slow scrapers). A page still being
 * sent is reused by scrapes within ADMIN_PAGE_REUSE_MS of its rendering, and by all
 * scrapes while this many are alive, so memory is at most this many pages whatever
 * the scrapers do. */
#define ADMIN_MAX_PAGES     4
#define ADMIN_PAGE_REUSE_MS 1000

/* One rendered /metrics page, shared (by reference) by the answers that send it. */
typedef struct admin_page {
    struct jb_admin *a;
    char *text;
    size_t len;
    int refs; /* the admin's own (while current) plus one per answer */
    int64_t rendered_ns;
} admin_page;

struct jb_admin {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    jb_metrics *metrics;
    jb_ready_fn ready;
    void *ud;
    jb_ready_reason_fn extra;
    void *extra_ud;
    int port;
    char *token; /* ADMIN_TOKEN or NULL */
    /* connection counting, as the publisher does (libevent 2.1 has no cap) */
    struct event *conn_ev;
    struct bufferevent *new_bevs[ADMIN_MAX_CONNECTIONS + 8];
    size_t n_new_bevs;
    int nconns;
    bool paused;
    admin_page *page; /* the current page, or NULL */
    int pages;        /* pages alive */
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                       const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (b != NULL && len > 0)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

static void page_release(admin_page *pg)
{
    if (--pg->refs > 0)
        return;
    pg->a->pages--;
    free(pg->text);
    free(pg);
}

static void page_unref_cb(const void *data, size_t len, void *arg)
{
    (void)data, (void)len;
    page_release(arg);
}

/* The page to send: the current one when fresh enough (or when the cap on live
 * pages is reached), else a new rendering. NULL when rendering failed. */
static admin_page *page_get(jb_admin *a)
{
    int64_t now = jb_now_monotonic_ns();
    /* Only a scrape that overlaps another (the page is still being sent) shares it,
     * so a scrape after the others finished always sees current values. */
    if (a->page != NULL && ((a->page->refs > 1 &&
                             now - a->page->rendered_ns < (int64_t)ADMIN_PAGE_REUSE_MS * 1000000) ||
                            a->pages >= ADMIN_MAX_PAGES))
        return a->page;
    admin_page *pg = calloc(1, sizeof(*pg));
    if (pg == NULL || a->metrics == NULL ||
        jb_metrics_render(a->metrics, &pg->text, &pg->len) != JB_OK) {
        free(pg);
        return NULL;
    }
    pg->a = a;
    pg->refs = 1;
    pg->rendered_ns = now;
    a->pages++;
    if (a->page != NULL)
        page_release(a->page);
    a->page = pg;
    return pg;
}

/* Constant-time check of "Authorization: Bearer <ADMIN_TOKEN>". */
static bool authorized(const jb_admin *a, struct evhttp_request *req)
{
    if (a->token == NULL)
        return true;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    size_t tl = strlen(a->token);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != tl)
        return false;
    return CRYPTO_memcmp(h + 7, a->token, tl) == 0;
}

static void serve_metrics(jb_admin *a, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!authorized(a, req)) {
        evhttp_add_header(h, "WWW-Authenticate", "Bearer");
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
        reply_text(req, 401, "Unauthorized", "text/plain; charset=utf-8",
                   "missing or wrong bearer token\n", 30);
        return;
    }
    admin_page *pg = page_get(a);
    struct evbuffer *b = pg != NULL ? evbuffer_new() : NULL;
    if (b == NULL) {
        reply_text(req, 500, "Internal Server Error", "text/plain; charset=utf-8",
                   "cannot render metrics\n", 22);
        return;
    }
    /* The answer references the page instead of copying it. */
    pg->refs++;
    if (evbuffer_add_reference(b, pg->text, pg->len, page_unref_cb, pg) != 0)
        page_release(pg);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* ---------------------------------------------------------- connections */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    jb_admin *a = arg;
    a->nconns--;
    if (a->paused && a->nconns < ADMIN_MAX_CONNECTIONS && a->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(a->bound));
        a->paused = false;
    }
}

/* Right after the accept callback: evhttp has wrapped each new bufferevent in its
 * connection, whose close callback is how connections are counted. */
static void on_new_conns(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_admin *a = arg;
    for (size_t i = 0; i < a->n_new_bevs; i++) {
        void *cbarg = NULL;
        bufferevent_getcb(a->new_bevs[i], NULL, NULL, NULL, &cbarg);
        if (cbarg != NULL)
            evhttp_connection_set_closecb(cbarg, on_conn_close, a);
        else
            a->nconns--;
    }
    a->n_new_bevs = 0;
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    jb_admin *a = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    size_t cap = sizeof(a->new_bevs) / sizeof(a->new_bevs[0]);
    if (bev == NULL || a->n_new_bevs == cap)
        return bev;
    a->new_bevs[a->n_new_bevs++] = bev;
    a->nconns++;
    event_active(a->conn_ev, EV_TIMEOUT, 1);
    if (a->nconns >= ADMIN_MAX_CONNECTIONS && !a->paused && a->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(a->bound));
        a->paused = true;
    }
    return bev;
}

/* The second readiness check (Kubernetes mode) answers with its reason. */
static void serve_extra_ready(jb_admin *a, struct evhttp_request *req)
{
    const char *plain = "text/plain; charset=utf-8";
    char why[300] = "";
    if (a->extra == NULL || a->extra(a->extra_ud, why, sizeof(why))) {
        reply_text(req, 200, "OK", plain, "ready\n", 6);
        return;
    }
    char body[320];
    int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
    reply_text(req, 503, "Service Unavailable", plain, body,
               n > 0 && (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

void jb_admin_set_ready_reason(jb_admin *a, jb_ready_reason_fn fn, void *ud)
{
    a->extra = fn;
    a->extra_ud = ud;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    jb_admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const char *plain = "text/plain; charset=utf-8";
    bool known = path != NULL && (strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
                                  strcmp(path, "/readyz") == 0);
    if (!known) {
        reply_text(req, 404, "Not Found", plain, "not found\n", 10);
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", plain, "method not allowed\n", 19);
        return;
    }
    if (strcmp(path, "/metrics") == 0)
        serve_metrics(a, req);
    else if (strcmp(path, "/healthz") == 0)
        reply_text(req, 200, "OK", plain, "ok\n", 3);
    else if (a->ready != NULL && !a->ready(a->ud))
        reply_text(req, 503, "Service Unavailable", plain, "not ready\n", 10);
    else
        serve_extra_ready(a, req);
}

/* Splits "host:port", ":port" or "[v6]:port" into host (all interfaces when
 * empty) and port. */
static bool split_addr(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0')
        return false;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535 || colon[1] < '0' || colon[1] > '9')
        return false;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0) {
        h = "0.0.0.0";
        n = strlen(h);
    }
    if (n >= hostlen)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (uint16_t)p;
    return true;
}

static int bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

jb_admin *jb_admin_start(struct event_base *base, const char *addr, jb_metrics *metrics,
                         jb_ready_fn ready, void *ud, jb_err *err)
{
    char host[256];
    uint16_t port;
    jb_admin *a = NULL;
    if (!split_addr(addr, host, sizeof(host), &port)) {
        jb_err_set(err, JB_ERR_CONFIG, "METRICS_ADDR: invalid address \"%s\"", addr);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->http = evhttp_new(base)) == NULL) {
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    a->metrics = metrics;
    a->ready = ready;
    a->ud = ud;
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_SEC);
    /* Methods outside this set get libevent's 501; for these we answer 405
     * ourselves on known paths. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_default_content_type(a->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(a->http, on_request, a);
    evhttp_set_bevcb(a->http, on_new_bev, a);
    a->conn_ev = event_new(base, -1, 0, on_new_conns, a);
    if (a->conn_ev == NULL) {
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(a->http, host, port);
    a->bound = bs;
    if (bs == NULL) {
        jb_err_set(err, JB_ERR_IO, "METRICS_ADDR: cannot listen on %s: %s", addr, strerror(errno));
        goto fail;
    }
    a->port = bound_port(bs);
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", a->port);
    jb_log(JB_LOG_INFO, "admin", "listening", "addr", addr, "port", portstr, (char *)NULL);
    return a;
fail:
    jb_admin_stop(a);
    return NULL;
}

int jb_admin_port(const jb_admin *a)
{
    return a->port;
}

void jb_admin_set_token(jb_admin *a, const char *token)
{
    free(a->token);
    a->token = token != NULL && token[0] != '\0' ? strdup(token) : NULL;
}

void jb_admin_stop(jb_admin *a)
{
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http); /* answers still holding pages release them here */
    if (a->conn_ev != NULL)
        event_free(a->conn_ev);
    if (a->page != NULL)
        page_release(a->page);
    if (a->token != NULL)
        OPENSSL_cleanse(a->token, strlen(a->token));
    free(a->token);
    free(a);
}

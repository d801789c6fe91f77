/*
 * The admin listener: /metrics, /healthz and /readyz on METRICS_ADDR. It runs on
 * the caller's libevent loop. libevent's evhttp defaults are unbounded (body and
 * header sizes, no timeout), so every limit is set here explicitly; the admin
 * port takes no request bodies at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/jb_common.h"

#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY    1024
#define ADMIN_TIMEOUT_SEC 10

struct jb_admin {
    struct evhttp *http;
    jb_metrics *metrics;
    jb_ready_fn ready;
    void *ud;
    jb_ready_reason_fn extra;
    void *extra_ud;
    int port;
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

static void serve_metrics(jb_admin *a, struct evhttp_request *req)
{
    char *out = NULL;
    size_t len = 0;
    if (a->metrics == NULL || jb_metrics_render(a->metrics, &out, &len) != JB_OK) {
        reply_text(req, 500, "Internal Server Error", "text/plain; charset=utf-8",
                   "cannot render metrics\n", 22);
        return;
    }
    reply_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", out, len);
    free(out);
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
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(a->http, host, port);
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

void jb_admin_stop(jb_admin *a)
{
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http);
    free(a);
}

/*
 * The request guard (see pub_guard.h): a bufferevent filter that frames each
 * request as evhttp will and passes it on unchanged, or refuses it before evhttp
 * reads any of it. Framing follows libevent 2.1's own reader: lines end in LF
 * with an optional CR before it; a body is Content-Length bytes, or chunked (a
 * size line in hex, empty lines skipped, the data, a zero size, trailer lines up
 * to an empty line); HEAD and TRACE never have a body. Where libevent would read
 * a request differently from the guard, the guard refuses it, so the two can
 * never disagree on where the next request starts.
 *
 * A refusal is written straight to the connection (evhttp never sees the
 * request), then the connection is half-closed and drained for a short linger so
 * that the client reads the answer instead of a reset, then handed back to evhttp
 * as an error, which frees it.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/jb_common.h"
#include "publisher/pub_guard.h"
#include "publisher/pub_internal.h"

/* A chunk-size line longer than this is not a chunk size. */
#define CHUNK_LINE_MAX 1024
/* After a refusal: how long the connection is drained before it is closed. */
#define LINGER_MS 2000

typedef enum gstate { G_HEAD, G_BODY, G_CHUNK_SIZE, G_CHUNK_DATA, G_TRAILER, G_REJECTED } gstate;

typedef struct guard {
    const pub_guard_cfg *cfg;
    struct bufferevent *bev;   /* the filter: evhttp's */
    struct bufferevent *under; /* socket or TLS */
    struct event *timer;       /* the request deadline, then the linger */
    struct event *kick;
    struct evbuffer_cb_entry *drain_cb;
    gstate st;
    size_t scan;        /* G_HEAD: resume point of the head search */
    int64_t remaining;  /* G_BODY, G_CHUNK_DATA */
    int64_t body_total; /* chunked: data bytes so far */
    int64_t trailer;    /* G_TRAILER: bytes so far */
    int64_t started_ns; /* when the current request's first bytes were seen */
    bool in_request, half_closed;
    bool deadline_armed; /* the timer is pending for a request's deadline */
    bool timeout_off;    /* evhttp's timeout is suspended (evhttp_timeout) */
} guard;

/* ------------------------------------------------------------ head checks */

/* RFC 9110 token characters, as a table: the check runs on every byte of every
 * header name of every request. */
static const bool tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* a[0..alen) equals the lower-case literal lit[0..n) ignoring ASCII case. */
static bool ieq_n(const char *a, size_t alen, const char *lit, size_t n)
{
    if (alen != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}
#define IEQ(a, alen, lit) ieq_n(a, alen, lit, sizeof(lit) - 1)

size_t pub_guard_head_end(const char *p, size_t n, size_t *scan)
{
    size_t s = *scan;
    while (s < n) {
        const char *nl = memchr(p + s, '\n', n - s);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (p + s));
        /* The request line is never empty; the first empty line after it ends the head. */
        if (s > 0 && (len == 0 || (len == 1 && p[s] == '\r')))
            return (size_t)(nl - p) + 1;
        s = (size_t)(nl - p) + 1;
    }
    *scan = s;
    return 0;
}

static void refuse(pub_guard_head *h, int code, const char *why)
{
    if (h->code == 0) {
        h->code = code;
        h->why = why;
    }
}

typedef struct head_counts {
    int cl, te, host;
    bool te_chunked;
} head_counts;

/* One header line (without its line end). */
static void check_field(const char *l, size_t len, head_counts *c, pub_guard_head *h)
{
    if (len > 0 && (l[0] == ' ' || l[0] == '\t')) {
        refuse(h, 400, "obsolete header line folding is not accepted");
        return;
    }
    const char *colon = memchr(l, ':', len);
    if (colon == NULL || colon == l) {
        refuse(h, 400, "malformed header line");
        return;
    }
    size_t nlen = (size_t)(colon - l);
    for (size_t i = 0; i < nlen; i++)
        if (!tchar[(unsigned char)l[i]]) {
            refuse(h, 400, "invalid character in a header name (no space before the colon)");
            return;
        }
    const char *v = colon + 1, *end = l + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    /* Other control characters in values do not change framing (NUL and stray CR
     * are refused for the whole head): the handlers refuse them naming the header. */
    size_t vlen = (size_t)(end - v);
    if (IEQ(l, nlen, "content-length")) {
        c->cl++;
        int64_t n = 0;
        bool ok = vlen > 0 && vlen <= 18;
        for (size_t i = 0; ok && i < vlen; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            n = n * 10 + (v[i] - '0');
        }
        if (!ok)
            refuse(h, 400, "invalid Content-Length");
        else
            h->content_length = n;
    } else if (IEQ(l, nlen, "transfer-encoding")) {
        c->te++;
        c->te_chunked = IEQ(v, vlen, "chunked");
    } else if (IEQ(l, nlen, "host")) {
        c->host++;
    }
}

/* The request line: METHOD SP target SP HTTP/1.x. *v11 says HTTP/1.1; *bodyless
 * says HEAD or TRACE (libevent reads no body for them). */
static void check_request_line(const char *l, size_t len, bool *v11, bool *bodyless,
                               const char **target, size_t *tlen, pub_guard_head *h)
{
    static const char *const methods[] = {"GET",   "POST", "PUT",   "DELETE", "OPTIONS",
                                          "PATCH", "HEAD", "TRACE", "CONNECT"};
    const char *sp1 = memchr(l, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(l + len - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 ||
        memchr(sp2 + 1, ' ', (size_t)(l + len - sp2 - 1)) != NULL) {
        refuse(h, 400, "malformed request line");
        return;
    }
    size_t mlen = (size_t)(sp1 - l);
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]) && !known; i++)
        known = strlen(methods[i]) == mlen && memcmp(methods[i], l, mlen) == 0;
    if (!known) {
        refuse(h, 501, "method not implemented");
        return;
    }
    *bodyless =
        (mlen == 4 && memcmp(l, "HEAD", 4) == 0) || (mlen == 5 && memcmp(l, "TRACE", 5) == 0);
    *target = sp1 + 1;
    *tlen = (size_t)(sp2 - sp1 - 1);
    for (size_t i = 0; i < *tlen; i++) {
        unsigned char ch = (unsigned char)(*target)[i];
        if (ch <= 0x20 || ch == 0x7f) {
            refuse(h, 400, "malformed request target");
            return;
        }
    }
    const char *ver = sp2 + 1;
    size_t vlen = (size_t)(l + len - ver);
    if (vlen == 8 && memcmp(ver, "HTTP/1.1", 8) == 0)
        *v11 = true;
    else if (!(vlen == 8 && memcmp(ver, "HTTP/1.0", 8) == 0))
        refuse(h, vlen == 8 && memcmp(ver, "HTTP/", 5) == 0 ? 505 : 400,
               "unsupported HTTP version");
}

void pub_guard_check_head(const char *p, size_t n, const pub_guard_cfg *cfg, pub_guard_head *h)
{
    *h = (pub_guard_head){0};
    head_counts c = {0};
    bool v11 = false, bodyless = false, first = true;
    const char *target = NULL;
    size_t tlen = 0;
    size_t s = 0;
    while (s < n && h->code == 0) {
        const char *nl = memchr(p + s, '\n', n - s);
        size_t end = nl ? (size_t)(nl - p) : n;
        size_t len = end - s;
        if (len > 0 && p[s + len - 1] == '\r')
            len--;
        if (memchr(p + s, '\r', len) != NULL || memchr(p + s, '\0', len) != NULL)
            refuse(h, 400, "stray CR or NUL in the request head");
        else if (first)
            check_request_line(p + s, len, &v11, &bodyless, &target, &tlen, h);
        else if (len == 0)
            break;
        else
            check_field(p + s, len, &c, h);
        first = false;
        s = end + 1;
    }
    if (c.cl > 1)
        refuse(h, 400, "duplicate Content-Length");
    if (c.te > 1)
        refuse(h, 400, "duplicate Transfer-Encoding");
    if (c.cl > 0 && c.te > 0)
        refuse(h, 400, "both Content-Length and Transfer-Encoding");
    if (c.te == 1 && !c.te_chunked)
        refuse(h, 501, "unsupported Transfer-Encoding: only chunked is accepted");
    if (v11 && c.host == 0)
        refuse(h, 400, "missing Host header");
    if (c.host > 1)
        refuse(h, 400, "duplicate Host header");
    if (bodyless && (c.te > 0 || h->content_length > 0))
        refuse(h, 400, "HEAD and TRACE requests take no body");
    if (cfg->max_body > 0 && h->content_length > cfg->max_body)
        refuse(h, 413, "request body too large");
    h->chunked = c.te == 1 && c.te_chunked;
    /* Only a refusal needs the route (the legacy endpoint's 413 is JSON): an
     * accepted head is routed once, by the server. */
    if (h->code != 0 && target != NULL) {
        const char *app = NULL;
        size_t app_len = 0, plen = 0;
        while (plen < tlen && target[plen] != '?' && target[plen] != '#')
            plen++;
        h->legacy = jb_pub_match_route(target, plen, &app, &app_len) == R_LEGACY;
    }
}

/* -------------------------------------------------------------- refusals */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Bad Request";
    }
}

static const char *metric_reason(int code)
{
    switch (code) {
    case 408:
        return "request_timeout";
    case 413:
        return "body_too_large";
    case 431:
        return "headers_too_large";
    case 501:
    case 505:
        return "not_implemented";
    default:
        return "bad_request";
    }
}

static void half_close(guard *g)
{
    if (g->half_closed)
        return;
    g->half_closed = true;
    SSL *ssl = bufferevent_openssl_get_ssl(g->under);
    if (ssl != NULL)
        SSL_shutdown(ssl);
    evutil_socket_t fd = bufferevent_getfd(g->under);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
}

/* The answer left our buffers: stop writing, drain for the linger. */
static void on_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    guard *g = arg;
    if (info->n_deleted == 0 || evbuffer_get_length(buf) > 0 || g->half_closed)
        return;
    half_close(g);
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    evtimer_add(g->timer, &tv);
}

static void guard_reject(guard *g, int code, const char *why, bool legacy)
{
    if (g->st == G_REJECTED)
        return;
    g->st = G_REJECTED;
    evtimer_del(g->timer);
    g->deadline_armed = false;
    const char *labels[] = {metric_reason(code)};
    jb_metric_add(g->cfg->reject, labels, 1);
    bool json = legacy && code == 413;
    const char *body = json ? jb_pub_legacy_too_large_body() : why;
    struct evbuffer *out = bufferevent_get_output(g->under);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                        code, reason_phrase(code),
                        json ? "application/json" : "text/plain; charset=utf-8", strlen(body));
    evbuffer_add(out, body, strlen(body));
    g->drain_cb = evbuffer_add_cb(out, on_drained, g);
    /* A client that never reads the answer is dropped after the linger too. */
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    evtimer_add(g->timer, &tv);
    /* Keep reading (and discarding) so that the client's close is noticed. */
    bufferevent_enable(g->bev, EV_READ);
}

static void arm_deadline(guard *g, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(g->timer, &tv);
    g->deadline_armed = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    guard *g = arg;
    if (g->st != G_REJECTED) {
        /* The deadline timer is not deleted when a request completes (see
         * step_head): it may have been set for an earlier request. */
        g->deadline_armed = false;
        if (!g->in_request)
            return;
        int64_t left = g->cfg->deadline_ms - (jb_now_monotonic_ns() - g->started_ns) / 1000000;
        if (left > 0) {
            arm_deadline(g, left);
            return;
        }
        guard_reject(g, 408, "request not received in time", false);
        return;
    }
    /* The linger is over: evhttp frees the connection (and this guard). */
    bufferevent_trigger_event(g->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
}

/* Two things a bufferevent filter does not do by itself, run from the loop:
 * output that evhttp added before it enabled writing is passed on only when
 * something else happens on the connection, and bytes a client sent while
 * evhttp was answering wait below the filter until more arrive. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    guard *g = arg;
    if (g->st == G_REJECTED)
        return;
    struct bufferevent *bev = g->bev;
    bufferevent_incref(bev); /* evhttp may free the connection inside the flush */
    short en = bufferevent_get_enabled(bev);
    if ((en & EV_WRITE) && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
    else if ((en & EV_READ) && evbuffer_get_length(bufferevent_get_input(g->under)) > 0)
        bufferevent_trigger(g->under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
    bufferevent_decref(bev);
}

static void on_output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    guard *g = arg;
    if (info->n_added > 0 && evbuffer_get_length(buf) > 0)
        event_active(g->kick, EV_TIMEOUT, 1);
}

/* ---------------------------------------------------------------- framing */

/* evhttp's connection timeout (one for reading a request and for waiting on the
 * next) is not restarted by the bytes a filter passes on: on a kept-alive
 * connection it ran from the previous answer and closed a slowly sent request
 * without an answer, before its own deadline. While a request is in the guard,
 * the guard's deadline alone governs (408); once the request is passed on,
 * evhttp's timeout is back (restarted) for the answer and the idle wait. */
static void evhttp_timeout(guard *g, bool on)
{
    if (on == !g->timeout_off)
        return;
    g->timeout_off = !on;
    int64_t ms = g->cfg->conn_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (on && ms > 0)
        bufferevent_set_timeouts(g->bev, &tv, &tv);
    else
        bufferevent_set_timeouts(g->bev, NULL, NULL);
}

static void request_done(guard *g)
{
    g->st = G_HEAD;
    g->scan = 0;
    g->in_request = false;
    evhttp_timeout(g, true);
}

/* G_HEAD: true when a head was passed on (or refused). */
static bool step_head(guard *g, struct evbuffer *src, struct evbuffer *dst)
{
    size_t avail = evbuffer_get_length(src);
    if (avail == 0)
        return false;
    if (!g->in_request) {
        /* The whole-request deadline counts from here. Adding and deleting the
         * timer for every request cost ~500 instructions (a heap insert and
         * removal under the base's lock); instead a timer still pending from an
         * earlier request is left alone, and when it fires for a request younger
         * than the deadline it is set again for what that request has left. */
        g->in_request = true;
        g->started_ns = jb_now_monotonic_ns();
        if (!g->deadline_armed)
            arm_deadline(g, g->cfg->deadline_ms);
    }
    size_t cap = (size_t)g->cfg->max_head + 2;
    size_t look = avail < cap ? avail : cap;
    const char *p = (const char *)evbuffer_pullup(src, (ev_ssize_t)look);
    if (p == NULL)
        return false;
    size_t end = pub_guard_head_end(p, look, &g->scan);
    if (end == 0) {
        if (avail >= cap)
            guard_reject(g, 431, "request headers too large", false);
        return avail >= cap;
    }
    pub_guard_head h;
    pub_guard_check_head(p, end, g->cfg, &h);
    if (h.code != 0) {
        guard_reject(g, h.code, h.why, h.legacy);
        return true;
    }
    evbuffer_remove_buffer(src, dst, end);
    g->scan = 0;
    g->body_total = 0;
    if (h.chunked) {
        g->st = G_CHUNK_SIZE;
    } else if (h.content_length > 0) {
        g->st = G_BODY;
        g->remaining = h.content_length;
    } else {
        request_done(g);
    }
    return true;
}

/* Moves up to g->remaining bytes; true when any moved. */
static bool step_data(guard *g, struct evbuffer *src, struct evbuffer *dst)
{
    size_t avail = evbuffer_get_length(src);
    size_t n = (int64_t)avail < g->remaining ? avail : (size_t)g->remaining;
    if (n == 0)
        return false;
    int moved = evbuffer_remove_buffer(src, dst, n);
    if (moved <= 0)
        return false;
    g->remaining -= moved;
    if (g->remaining == 0) {
        if (g->st == G_BODY)
            request_done(g);
        else
            g->st = G_CHUNK_SIZE;
    }
    return true;
}

/* Parses a chunk-size line as libevent does (hex digits, then the end, a space or
 * an extension); -1 when it is not one. */
static int64_t chunk_size(const char *l, size_t len)
{
    int64_t n = 0;
    size_t i = 0;
    for (; i < len && i < 15; i++) {
        char c = l[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        n = n * 16 + d;
    }
    if (i == 0 || (i < len && l[i] != ' ' && l[i] != ';' && l[i] != '\t'))
        return -1;
    return n;
}

/* G_CHUNK_SIZE and G_TRAILER: one line. */
static bool step_line(guard *g, struct evbuffer *src, struct evbuffer *dst)
{
    size_t eol_len = 0;
    struct evbuffer_ptr e = evbuffer_search_eol(src, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (e.pos < 0) {
        if (evbuffer_get_length(src) > CHUNK_LINE_MAX) {
            guard_reject(g, 400, "malformed chunked body", false);
            return true;
        }
        return false;
    }
    size_t len = (size_t)e.pos;
    bool trailer = g->st == G_TRAILER;
    if (!trailer && len > CHUNK_LINE_MAX) {
        guard_reject(g, 400, "malformed chunked body", false);
        return true;
    }
    if (!trailer && len > 0) {
        char line[CHUNK_LINE_MAX];
        evbuffer_copyout(src, line, len);
        int64_t n = chunk_size(line, len);
        if (n < 0) {
            guard_reject(g, 400, "malformed chunk size", false);
            return true;
        }
        if (g->body_total + n > g->cfg->max_body) {
            guard_reject(g, 413, "request body too large", false);
            return true;
        }
        g->body_total += n;
        g->remaining = n;
        g->st = n > 0 ? G_CHUNK_DATA : G_TRAILER;
        g->trailer = 0;
    } else if (trailer) {
        g->trailer += (int64_t)(len + eol_len);
        if (g->trailer > g->cfg->max_head) {
            guard_reject(g, 431, "request trailers too large", false);
            return true;
        }
    }
    /* Empty lines before a chunk size are skipped, as libevent does. */
    evbuffer_remove_buffer(src, dst, len + eol_len);
    if (trailer && len == 0)
        request_done(g);
    return true;
}

static enum bufferevent_filter_result guard_in(struct evbuffer *src, struct evbuffer *dst,
                                               ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                               void *ctx)
{
    (void)limit, (void)mode;
    guard *g = ctx;
    bool any = false;
    for (;;) {
        bool moved = false;
        switch (g->st) {
        case G_REJECTED:
            evbuffer_drain(src, evbuffer_get_length(src));
            return any ? BEV_OK : BEV_NEED_MORE;
        case G_HEAD:
            moved = step_head(g, src, dst);
            break;
        case G_BODY:
        case G_CHUNK_DATA:
            moved = step_data(g, src, dst);
            break;
        case G_CHUNK_SIZE:
        case G_TRAILER:
            moved = step_line(g, src, dst);
            break;
        }
        if (!moved)
            break;
        any = g->st != G_REJECTED || any;
    }
    /* Only a request still incomplete after this read suspends evhttp's timeout:
     * one that arrives whole (the common case) costs no timer change. */
    if (g->in_request && g->st != G_REJECTED)
        evhttp_timeout(g, false);
    return any ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result guard_out(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *ctx)
{
    (void)limit, (void)mode;
    guard *g = ctx;
    if (g->st == G_REJECTED) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    evbuffer_add_buffer(dst, src);
    if (evbuffer_get_length(bufferevent_get_input(g->under)) > 0)
        event_active(g->kick, EV_TIMEOUT, 1);
    return BEV_OK;
}

void pub_guard_flush(struct bufferevent *bev)
{
    struct bufferevent *under = bufferevent_get_underlying(bev);
    evutil_socket_t fd = under != NULL ? bufferevent_getfd(under) : -1;
    if (fd < 0)
        return;
    struct evbuffer *out = bufferevent_get_output(under);
    SSL *ssl = bufferevent_openssl_get_ssl(under);
    if (ssl == NULL) {
        while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
            ;
        return;
    }
    /* The TLS connection is going away: nothing else uses the SSL object. */
    while (evbuffer_get_length(out) > 0) {
        size_t n = evbuffer_get_contiguous_space(out);
        int w =
            SSL_write(ssl, evbuffer_pullup(out, (ev_ssize_t)n), n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            break;
        evbuffer_drain(out, (size_t)w);
    }
    SSL_shutdown(ssl);
}

static void guard_free(void *ctx)
{
    guard *g = ctx;
    if (g->drain_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_output(g->under), g->drain_cb);
    event_free(g->timer);
    event_free(g->kick);
    free(g);
}

struct bufferevent *pub_guard_wrap(struct bufferevent *under, const pub_guard_cfg *cfg)
{
    if (under == NULL)
        return NULL;
    struct event_base *base = bufferevent_get_base(under);
    guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        goto fail;
    g->cfg = cfg;
    g->under = under;
    g->timer = evtimer_new(base, on_timer, g);
    g->kick = event_new(base, -1, 0, on_kick, g);
    if (g->timer == NULL || g->kick == NULL)
        goto fail;
    g->bev =
        bufferevent_filter_new(under, guard_in, guard_out, BEV_OPT_CLOSE_ON_FREE, guard_free, g);
    if (g->bev == NULL)
        goto fail;
    evbuffer_add_cb(bufferevent_get_output(g->bev), on_output_added, g);
    return g->bev;
fail:
    if (g != NULL) {
        if (g->timer != NULL)
            event_free(g->timer);
        if (g->kick != NULL)
            event_free(g->kick);
        free(g);
    }
    bufferevent_free(under);
    return NULL;
}

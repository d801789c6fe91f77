/*
 * A recording HTTP sink for tests: libevent evhttp on 127.0.0.1, on its own thread
 * and event base. Only the sink thread touches libevent objects; the test thread
 * talks to it through the mutex-protected record and script, and stops it through a
 * pipe, so libevent needs no thread support.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_testenv.h"

/* Recorded requests are capped so a runaway test cannot exhaust memory; past the
 * cap requests are still answered and counted by jb_tsink_total, not recorded. */
#define TSINK_MAX_RECORDS 1000000u
#define TSINK_MAX_BODY    (16u * 1024u * 1024u)
#define TSINK_MAX_HEADERS (64u * 1024u)
#define TSINK_TIMEOUT_S   60

/* A request whose answer is delayed; lives on the sink thread only. */
struct pending {
    struct pending *next;
    struct pending *prev;
    struct evhttp_request *req;
    struct event *timer; /* NULL: answered only at stop */
    int code;
    int retry_after;
    struct jb_tsink *sink;
};

struct jb_tsink {
    int port;
    char url[64];
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct event *wake_ev;
    int wake_fd[2];
    struct pending *pending; /* sink thread only */

    pthread_mutex_t mu; /* protects everything below */
    pthread_cond_t cv;  /* signalled on every recorded request */
    jb_treq *reqs;
    size_t nreqs, reqs_cap, total;
    int *codes;
    size_t ncodes, next_code;
    int then, retry_after, delay_ms;
    size_t in_progress, max_concurrent;
    bool empty_body; /* answer without a body */
};

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "?";
}

void jb_treq_free(jb_treq *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    free(r->header_names);
    free(r->header_values);
    free(r->path);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p != NULL && *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* Copies src into dst (deep). False on allocation failure (dst then freed). */
static bool treq_copy(jb_treq *dst, const jb_treq *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst->method, src->method, sizeof(dst->method));
    dst->received_ns = src->received_ns;
    dst->status = src->status;
    dst->path = strdup(src->path != NULL ? src->path : "");
    dst->body = malloc(src->body_len + 1);
    dst->header_names = calloc(src->nheaders + 1, sizeof(char *));
    dst->header_values = calloc(src->nheaders + 1, sizeof(char *));
    bool ok = dst->path && dst->body && dst->header_names && dst->header_values;
    for (size_t i = 0; ok && i < src->nheaders; i++) {
        dst->header_names[i] = strdup(src->header_names[i]);
        dst->header_values[i] = strdup(src->header_values[i]);
        dst->nheaders = i + 1;
        ok = dst->header_names[i] && dst->header_values[i];
    }
    if (ok) {
        if (src->body_len > 0)
            memcpy(dst->body, src->body, src->body_len);
        dst->body[src->body_len] = '\0'; /* convenient for text bodies; body_len is the truth */
        dst->body_len = src->body_len;
        return true;
    }
    jb_treq_free(dst);
    return false;
}

/* Builds the record of req (on the sink thread, before taking the lock). */
static bool record_of(struct evhttp_request *req, jb_treq *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->method, sizeof(r->method), "%s", method_name(evhttp_request_get_command(req)));
    r->received_ns = jb_now_monotonic_ns();
    r->path = strdup(evhttp_request_get_uri(req));
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    size_t n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next)
        n++;
    r->header_names = calloc(n + 1, sizeof(char *));
    r->header_values = calloc(n + 1, sizeof(char *));
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    r->body = malloc(blen + 1);
    bool ok = r->path && r->header_names && r->header_values && r->body;
    for (struct evkeyval *kv = h->tqh_first; ok && kv != NULL; kv = kv->next.tqe_next) {
        r->header_names[r->nheaders] = lower_dup(kv->key);
        r->header_values[r->nheaders] = strdup(kv->value);
        ok = r->header_names[r->nheaders] && r->header_values[r->nheaders];
        r->nheaders++;
    }
    if (ok) {
        evbuffer_copyout(in, r->body, blen);
        r->body[blen] = '\0';
        r->body_len = blen;
        return true;
    }
    jb_treq_free(r);
    return false;
}

static void reply(struct jb_tsink *s, struct evhttp_request *req, int code, int retry_after)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "text/plain");
    if (retry_after > 0 && (code == 429 || code == 503)) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry_after);
        evhttp_add_header(oh, "Retry-After", ra);
    }
    pthread_mutex_lock(&s->mu);
    bool empty = s->empty_body;
    pthread_mutex_unlock(&s->mu);
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && !empty)
        evbuffer_add_printf(b, "sink answered %d\n", code);
    evhttp_send_reply(req, code, NULL, b);
    if (b != NULL)
        evbuffer_free(b);
    pthread_mutex_lock(&s->mu);
    s->in_progress--;
    pthread_mutex_unlock(&s->mu);
}

static void pending_remove(struct jb_tsink *s, struct pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    if (p->timer != NULL)
        event_free(p->timer);
    free(p);
}

static void on_delay_done(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct jb_tsink *s = p->sink;
    reply(s, p->req, p->code, p->retry_after);
    pending_remove(s, p);
}

/* Holds the answer back: for delay_ms > 0 until a timer fires, for -1 until stop. */
static void defer_reply(struct jb_tsink *s, struct evhttp_request *req, int code, int retry_after,
                        int delay_ms)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        reply(s, req, 500, 0);
        return;
    }
    p->req = req;
    p->code = code;
    p->retry_after = retry_after;
    p->sink = s;
    if (delay_ms > 0) {
        struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
        p->timer = evtimer_new(s->base, on_delay_done, p);
        if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
            if (p->timer != NULL)
                event_free(p->timer);
            free(p);
            reply(s, req, 500, 0);
            return;
        }
    }
    p->next = s->pending;
    if (s->pending != NULL)
        s->pending->prev = p;
    s->pending = p;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct jb_tsink *s = arg;
    jb_treq rec;
    bool have = record_of(req, &rec);
    pthread_mutex_lock(&s->mu);
    int code = s->next_code < s->ncodes ? s->codes[s->next_code++] : s->then;
    int retry_after = s->retry_after, delay_ms = s->delay_ms;
    s->total++;
    if (have && s->nreqs < TSINK_MAX_RECORDS) {
        if (s->nreqs == s->reqs_cap) {
            size_t nc = s->reqs_cap ? s->reqs_cap * 2 : 64;
            jb_treq *nr = realloc(s->reqs, nc * sizeof(*nr));
            if (nr != NULL) {
                s->reqs = nr;
                s->reqs_cap = nc;
            }
        }
        if (s->nreqs < s->reqs_cap) {
            rec.status = code;
            s->reqs[s->nreqs++] = rec;
            have = false; /* owned by the record now */
        }
    }
    s->in_progress++;
    if (s->in_progress > s->max_concurrent)
        s->max_concurrent = s->in_progress;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (have)
        jb_treq_free(&rec);
    if (delay_ms == 0)
        reply(s, req, code, retry_after);
    else
        defer_reply(s, req, code, retry_after, delay_ms);
}

/* Commands from the test thread arrive as bytes on the wake pipe: 'r' answers every
 * held-back request now with its scripted code; 'x' (stop) answers them 503 and
 * leaves the loop after a short grace so the answers reach the clients. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct jb_tsink *s = arg;
    char cmds[64];
    ssize_t n;
    while ((n = read(fd, cmds, sizeof(cmds))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            bool stop = cmds[i] == 'x';
            while (s->pending != NULL) {
                struct pending *p = s->pending;
                reply(s, p->req, stop ? 503 : p->code, stop ? 0 : p->retry_after);
                pending_remove(s, p);
            }
            if (stop) {
                struct timeval grace = {.tv_sec = 0, .tv_usec = 100 * 1000};
                event_base_loopexit(s->base, &grace);
            }
        }
    }
}

static void *sink_thread(void *arg)
{
    struct jb_tsink *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static int bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    return ntohs(sa.sin_port);
}

static void sink_free(struct jb_tsink *s)
{
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->wake_ev != NULL)
        event_free(s->wake_ev);
    if (s->base != NULL)
        event_base_free(s->base);
    for (int i = 0; i < 2; i++)
        if (s->wake_fd[i] >= 0)
            close(s->wake_fd[i]);
    for (size_t i = 0; i < s->nreqs; i++)
        jb_treq_free(&s->reqs[i]);
    free(s->reqs);
    free(s->codes);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Creates the base, the evhttp with explicit limits, and binds 127.0.0.1:0 so the
 * kernel picks the port (no race with other tests). */
static bool sink_setup(struct jb_tsink *s)
{
    s->base = event_base_new();
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (s->http == NULL || pipe2(s->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0)
        return false;
    s->wake_ev = event_new(s->base, s->wake_fd[0], EV_READ | EV_PERSIST, on_wake, s);
    if (s->wake_ev == NULL || event_add(s->wake_ev, NULL) != 0)
        return false;
    evhttp_set_max_body_size(s->http, TSINK_MAX_BODY);
    evhttp_set_max_headers_size(s->http, TSINK_MAX_HEADERS);
    evhttp_set_timeout(s->http, TSINK_TIMEOUT_S);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    if (bs == NULL || (s->port = bound_port(bs)) <= 0)
        return false;
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d/", s->port);
    return true;
}

jb_tsink *jb_tsink_start(void)
{
    struct jb_tsink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->wake_fd[0] = s->wake_fd[1] = -1;
    s->then = 200;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!sink_setup(s) || pthread_create(&s->thread, NULL, sink_thread, s) != 0) {
        fprintf(stderr, "harness: sink did not start\n");
        sink_free(s);
        return NULL;
    }
    return s;
}

const char *jb_tsink_url(const jb_tsink *s)
{
    return s->url;
}

int jb_tsink_port(const jb_tsink *s)
{
    return s->port;
}

void jb_tsink_empty_body(jb_tsink *s, bool empty)
{
    pthread_mutex_lock(&s->mu);
    s->empty_body = empty;
    pthread_mutex_unlock(&s->mu);
}

void jb_tsink_script(jb_tsink *s, const int *codes, size_t n, int then, int retry_after,
                     int delay_ms)
{
    int *copy = n > 0 ? malloc(n * sizeof(int)) : NULL;
    if (copy != NULL)
        memcpy(copy, codes, n * sizeof(int));
    pthread_mutex_lock(&s->mu);
    free(s->codes);
    s->codes = copy;
    s->ncodes = copy != NULL ? n : 0;
    s->next_code = 0;
    s->then = then;
    s->retry_after = retry_after;
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

size_t jb_tsink_count(jb_tsink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t jb_tsink_total(jb_tsink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->total;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t jb_tsink_wait(jb_tsink *s, size_t n, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->nreqs < n && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0) {
    }
    size_t got = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return got;
}

bool jb_tsink_get(jb_tsink *s, size_t i, jb_treq *out)
{
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    if (i < s->nreqs)
        ok = treq_copy(out, &s->reqs[i]);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

const char *jb_treq_header(const jb_treq *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->header_names[i], name) == 0)
            return r->header_values[i];
    return NULL;
}

size_t jb_tsink_max_concurrent(jb_tsink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->max_concurrent;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t jb_tsink_in_progress(jb_tsink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->in_progress;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void send_cmd(jb_tsink *s, char c)
{
    while (write(s->wake_fd[1], &c, 1) < 0 && errno == EINTR) {
    }
}

void jb_tsink_release(jb_tsink *s)
{
    send_cmd(s, 'r');
}

void jb_tsink_stop(jb_tsink *s)
{
    if (s == NULL)
        return;
    send_cmd(s, 'x');
    pthread_join(s->thread, NULL);
    sink_free(s);
}

/* End-to-end latency: posts CloudEvents to the publisher at a fixed rate and
 * receives them on its own sink (the subscription's), recording for each the time
 * from just before the POST to its arrival at the sink (both on this machine's
 * monotonic clock; the send time travels in ce-id). Prints
 * "e2e RATE SENT RECEIVED p50_ms p90_ms p99_ms max_ms publish_errors warm_p99_ms warm_n
 * cpu_s send_s store_p50_ms store_p99_ms": warm_p99_ms and warm_n are the p99 of the
 * events sent after the first second (E2E_WARM_MS, 1000) and how many those were, i.e.
 * without the start from idle (new sink connections, an idle consumer's first
 * requests); cpu_s is this program's own CPU time (sender and sink), a share of the
 * machine the measured processes did not have; send_s is how long sending took (SECONDS
 * when the generator kept the rate); store_p50_ms and store_p99_ms are over each stored
 * event's time from just before its publish (or POST) to its answer: JetStream's ack
 * (or the publisher's 2xx, sent after that ack). An event is delivered only once it is
 * stored, so in a run whose store p99 is S the delivery p99 is about S or more, whatever
 * the dispatcher does.
 *
 * With a nats:// URL instead of the publisher's, the dispatcher alone: events are
 * stored straight into the stream, each a JetStream publish asking for its ack as the
 * publisher's are, on a NATS connection owned by this program's loop as the
 * publisher's is, timed from just before the publish; no publisher process is
 * involved. Then the line starts with "lat".
 *
 * The generator is not what is measured, and on a 2-core machine every microsecond it
 * spends is taken from the processes that are: its sender and sink are plain HTTP/1.1
 * over epoll (no curl, no evhttp), about a third of the CPU per event they cost before
 * (docs/dispatcher.md, "The generator's own cost").
 *
 * With E2E_WINDOW_MS=W (> 0) it also prints, to stderr, one line per W ms of the run
 * (by send time): events sent in it, their p50/p99/max latency, and by arrival time
 * the deliveries and the new connections the sink saw in it (their first request:
 * the dispatcher's connections to its sink), to show how the run ramps up.
 *
 * Usage: disp_e2e PUBLISH_URL|NATS_URL SINK_PORT RATE SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "common/jb_text.h"
#include "config/jb_cfg.h"
#include "lat_stats.h"
#include "proc_cpu.h"
#include "proto/jb_ce.h"

/* The subject disp_load apply subscribes the bench consumer to. */
#define SUBJECT "kyma.myapp.order.created.v1"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* When the last event left (its publish or POST): how long sending took shows whether
 * the generator kept the rate (an event sent late is timed from when it left). */
static int64_t last_send_ns;

/* Each stored event's time from its publish (or POST) to its answer, in the order
 * the answers came (store_n of them; store_cap: one per event). */
static int64_t *store_lat;
static size_t store_n, store_cap;

static void stored(int64_t since)
{
    if (store_n < store_cap)
        store_lat[store_n++] = now_ns() - since;
}

#define CONN_MAX 65536

typedef struct sconn sconn;

typedef struct sink {
    pthread_mutex_t mu;
    int64_t *lat;
    size_t n, cap;
    int ep, lfd, stopfd; /* epoll, listener, eventfd that stops the thread */
    sconn *conns;        /* open connections, freed at the end */
    long errors;         /* requests it could not serve (closed) */
    /* Each event's send time (lat[i] is arrival minus it); E2E_WINDOW_MS only: its
     * arrival time, and each new connection's first arrival. */
    int64_t *sent, *arr;
    int64_t *conn_at;
    size_t nconn;
} sink;

/* The sink: a plain HTTP/1.1 server on one epoll thread, cheaper than evhttp (which
 * cost this program half its CPU at 10,000 events/s: an allocation-heavy request
 * object, a writev and two epoll_ctl per answer). It reads a request into its
 * connection's buffer, takes ce-id from the headers, skips the body
 * (Content-Length; a chunked body is refused) and answers 204 with one send. What it
 * accepts is what the dispatcher sends; anything else closes the connection and
 * counts as a sink error (printed to stderr), never as a delivery. */
#define SINK_BUF 16384 /* one request's headers and body */

struct sconn {
    sconn *prev, *next; /* sink.conns */
    int fd;
    bool counted; /* its first request seen (E2E_WINDOW_MS: a new connection) */
    size_t len;
    char buf[SINK_BUF];
};

static const char NO_CONTENT[] = "HTTP/1.1 204 No Content\r\n\r\n";

/* Headers one pass over a header block picks out: name (without the colon, any
 * case) in, its trimmed value out (v NULL when absent). */
typedef struct hdr_want {
    const char *name;
    const char *v;
    size_t vlen, nlen;
} hdr_want;

/* One pass over the header block h[0..n) (its first line, the request or status
 * line, has no colon before its end and is passed over like any line without one). */
static void scan_head(const char *h, size_t n, hdr_want *w, size_t nw)
{
    for (size_t k = 0; k < nw; k++) {
        w[k].v = NULL;
        w[k].nlen = strlen(w[k].name);
    }
    const char *end = h + n;
    for (const char *p = h, *eol; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL)
            continue;
        for (size_t k = 0; k < nw; k++) {
            if (w[k].nlen != (size_t)(colon - p) ||
                strncasecmp(p, w[k].name, (size_t)(colon - p)) != 0)
                continue;
            const char *v = colon + 1, *ve = eol;
            for (; v < ve && (*v == ' ' || *v == '\t'); v++) {
            }
            for (; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
            }
            w[k].v = v;
            w[k].vlen = (size_t)(ve - v);
        }
    }
}

/* Frames the HTTP/1.1 message (a request to the sink, an answer to the client) at the
 * start of buf[0..len), headers and body at most cap bytes: scans its header lines for
 * w[0..nw), of which w[0] must be Content-Length (the body's length; none when absent).
 * Returns the message's size with its header block's into *hend, 0 while it is still
 * incomplete, -1 when it cannot be framed (headers that fill cap, a bad Content-Length
 * or a body that would not fit). */
static ssize_t frame(const char *buf, size_t len, size_t cap, hdr_want *w, size_t nw, size_t *hend)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len == cap ? -1 : 0;
    *hend = (size_t)(end - buf) + 4;
    scan_head(buf, *hend, w, nw);
    uint64_t blen = 0;
    if (w[0].v != NULL && !jb_parse_uint(w[0].v, w[0].vlen, cap - *hend, &blen))
        return -1;
    return len < *hend + blen ? 0 : (ssize_t)(*hend + blen);
}

/* One complete request on c, its ce-id id[0..idlen) (NULL: none): recorded and
 * answered. False: the answer could not be written whole (the connection is then
 * closed). */
static bool serve(sink *s, sconn *c, const char *id, size_t idlen, int64_t t)
{
    int64_t sent = 0;
    if (id != NULL && idlen > 1 && id[0] == 't' &&
        jb_parse_int(id + 1, idlen - 1, 0, INT64_MAX, &sent)) {
        pthread_mutex_lock(&s->mu);
        if (s->n < s->cap) {
            if (s->sent != NULL)
                s->sent[s->n] = sent;
            if (s->arr != NULL)
                s->arr[s->n] = t;
            s->lat[s->n++] = t - sent;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (s->conn_at != NULL && !c->counted) {
        c->counted = true;
        if (s->nconn < CONN_MAX)
            s->conn_at[s->nconn++] = t;
    }
    return send(c->fd, NO_CONTENT, sizeof(NO_CONTENT) - 1, MSG_NOSIGNAL) ==
           (ssize_t)(sizeof(NO_CONTENT) - 1);
}

/* Reads what c's peer sent and serves every complete request in it. False: the
 * connection is to be closed (the peer closed it, or an error). */
static bool on_readable(sink *s, sconn *c)
{
    for (;;) {
        size_t room = SINK_BUF - c->len;
        ssize_t r = recv(c->fd, c->buf + c->len, room, 0);
        if (r == 0)
            return false;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->len += (size_t)r;
        int64_t t = now_ns();
        for (;;) {
            hdr_want w[] = {
                {.name = "content-length"}, {.name = "ce-id"}, {.name = "transfer-encoding"}};
            size_t hend = 0;
            ssize_t m = frame(c->buf, c->len, SINK_BUF, w, 3, &hend);
            if (m == 0)
                break;                   /* the rest is still on its way */
            if (m < 0 || w[2].v != NULL) /* a chunked body is refused too */
                goto bad;
            if (!serve(s, c, w[1].v, w[1].vlen, t))
                goto bad;
            c->len -= (size_t)m;
            memmove(c->buf, c->buf + m, c->len);
        }
        if ((size_t)r < room)
            return true; /* drained: no recv just to hear EAGAIN (epoll says when there is more) */
    }
bad:
    s->errors++;
    return false;
}

static void conn_close(sink *s, sconn *c)
{
    close(c->fd); /* leaves the epoll set with it */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

static void accept_all(sink *s)
{
    int fd;
    while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        sconn *c = malloc(sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        *c = (sconn){.fd = fd, .next = s->conns};
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
    }
}

/* The sink's thread: serves until the stop eventfd is written, then closes every
 * connection. Epoll data: NULL is the listener, the sink itself the stop fd. */
static void *sink_main(void *arg)
{
    sink *s = arg;
    struct epoll_event evs[64];
    for (bool stop = false; !stop;) {
        int n = epoll_wait(s->ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == NULL)
                accept_all(s);
            else if (p == s)
                stop = true;
            else if (!on_readable(s, p))
                conn_close(s, p);
        }
    }
    while (s->conns != NULL)
        conn_close(s, s->conns);
    return NULL;
}

/* The sink's listener on 127.0.0.1:port, its epoll set and stop fd. */
static int sink_open(sink *s, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->stopfd = eventfd(0, EFD_CLOEXEC);
    if (s->lfd < 0 || s->ep < 0 || s->stopfd < 0)
        return -1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL},
                       sev = {.events = EPOLLIN, .data.ptr = s};
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 512) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &lev) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stopfd, &sev) != 0)
        return -1;
    return 0;
}
/* One event as the publisher stores it (binary mode, ce- headers), with reply: where
 * JetStream sends its ack; its id carries t (now). */
static natsStatus publish(natsConnection *nc, const char *reply, int64_t t)
{
    char id[64];
    snprintf(id, sizeof(id), "t%lld", (long long)t);
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return NATS_NO_MEMORY;
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", id);
    jb_ce_set_str(ce, "source", "myapp");
    jb_ce_set_str(ce, "type", SUBJECT);
    jb_ce_set_str(ce, "originaltype", "order.created.v1");
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    const char *data = "{\"order\":42,\"customer\":\"c-1\"}";
    jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
    natsMsg *m = NULL;
    natsStatus s = NATS_ERR;
    if (jb_ce_to_nats_reply(ce, SUBJECT, reply, id, &m) == JB_OK)
        s = natsConnection_PublishMsg(nc, m);
    jb_nats_msg_free(m);
    jb_ce_destroy(ce);
    return s;
}

/* A sleep of the sender is never shorter than this: above 2,000 events/s the events
 * due meanwhile leave together (at 10,000/s, 5 every 0.5 ms, each timed from its own
 * publish). A wake-up per event cost this 2-core VM about 33 us of CPU each (10,000
 * wake-ups/s: a third of a core, taken from the processes being measured). */
#define PACE_NS 500000LL

/* The dispatcher-alone sender: one libevent loop (this thread) owns the NATS
 * connection (jb_nats_connect_loop): what a tick publishes leaves in one write at the
 * end of the loop turn, and the acks are taken on the loop as they are read, with no
 * nats.c reader or flusher thread and no hand-off between threads (which cost this
 * program a sixth of its CPU at 10,000 events/s). */
typedef struct sender {
    struct event_base *base;
    struct event *tick;
    natsConnection *nc;
    natsSubscription *sub;
    char inbox[96];
    long rate, total, sent, acked, errors, failed;
    int64_t start, gap;
    int64_t *pub_ns; /* each event's publish time, by its number (its reply's last token) */
} sender;

/* Takes the acks that arrived (no wait): counts them, and the negative ones; stops
 * the loop once every event sent has its ack. */
static void take_acks(void *ud)
{
    sender *g = ud;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, g->sub, 0) == NATS_OK) {
        const char *d = natsMsg_GetData(m);
        const char *subj = natsMsg_GetSubject(m), *dot = strrchr(subj, '.');
        uint64_t i = 0;
        if (d == NULL || strstr(d, "\"seq\"") == NULL || strstr(d, "\"error\"") != NULL)
            g->errors++;
        else if (dot != NULL && g->sent > 0 &&
                 jb_parse_uint(dot + 1, strlen(dot + 1), (uint64_t)g->sent - 1, &i))
            stored(g->pub_ns[i]);
        g->acked++;
        jb_nats_msg_free(m);
    }
    if (g->sent == g->total && g->acked >= g->sent - g->failed)
        event_base_loopbreak(g->base);
}

/* Publishes the events due by now, then sleeps (absolute, never spinning, at least
 * PACE_NS) until the next one is due; after the last, waits at most 10 s for the
 * acks. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    sender *g = arg;
    int64_t now = now_ns();
    while (g->sent < g->total && g->start + g->sent * g->gap <= now) {
        char reply[128];
        snprintf(reply, sizeof(reply), "%s.%ld", g->inbox, g->sent);
        g->pub_ns[g->sent] = now_ns();
        if (publish(g->nc, reply, g->pub_ns[g->sent]) != NATS_OK)
            g->failed++;
        g->sent++;
    }
    if (g->sent == g->total) {
        last_send_ns = now_ns();
        struct timeval tv = {10, 0};
        event_base_loopexit(g->base, &tv);
        take_acks(g);
        return;
    }
    int64_t due = g->start + g->sent * g->gap;
    if (due < now + PACE_NS)
        due = now + PACE_NS;
    int64_t wait = due - now_ns();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000000000LL), (suseconds_t)(wait % 1000000000LL / 1000)};
    event_add(g->tick, &tv);
}

/* The dispatcher alone: publishes at rate for total events, each asking for
 * JetStream's ack (as the publisher does) on an inbox read on the loop. Returns the
 * store errors (negative or missing acks). */
static long run_nats(const char *url, long rate, long total, long *sent)
{
    jb_event_threads_init(); /* before the base: nats.c touches it from its threads */
    sender g = {.rate = rate, .total = total, .pub_ns = calloc((size_t)total, sizeof(int64_t))};
    struct event_config *ecfg = event_config_new();
    if (ecfg != NULL) {
        /* timerfd: the 0.5 ms pace, not epoll's whole milliseconds. */
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        g.base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    jb_nats_loop loop = {.after_read = take_acks, .ud = &g};
    /* The options the publisher's connection gets, from the defaults with this URL. */
    jb_cfg *cfg = jb_cfg_defaults();
    jb_nats_opts no = {0};
    if (cfg != NULL) {
        free(cfg->nats_url);
        cfg->nats_url = strdup(url);
        jb_cfg_nats_opts(cfg, &no);
    }
    jb_err err = {0};
    natsInbox *inbox = NULL;
    natsStatus st = NATS_ERR;
    loop.base = g.base;
    if (g.base != NULL && (g.tick = evtimer_new(g.base, on_tick, &g)) != NULL && cfg != NULL &&
        cfg->nats_url != NULL &&
        jb_nats_connect_loop(&no, &loop, "disp_e2e", false, &g.nc, &err) == JB_OK &&
        natsInbox_Create(&inbox) == NATS_OK) {
        snprintf(g.inbox, sizeof(g.inbox), "%s", (const char *)inbox);
        char wild[128];
        snprintf(wild, sizeof(wild), "%s.*", g.inbox);
        st = natsConnection_SubscribeSync(&g.sub, g.nc, wild);
        if (st == NATS_OK)
            st = natsSubscription_SetPendingLimits(g.sub, -1, -1);
    }
    natsInbox_Destroy(inbox);
    if (st == NATS_OK && g.pub_ns != NULL) {
        g.start = now_ns();
        g.gap = 1000000000LL / rate;
        event_active(g.tick, EV_TIMEOUT, 0);
        event_base_dispatch(g.base);
        take_acks(&g);
    } else {
        fprintf(stderr, "disp_e2e: cannot connect to %s\n", url);
    }
    /* An event without an ack counts as not stored. */
    long errors = st == NATS_OK ? g.errors + g.failed + (g.sent - g.failed - g.acked) : total;
    if (g.nc != NULL)
        natsConnection_Close(g.nc); /* before the inbox: see pub_js_close */
    natsSubscription_Destroy(g.sub);
    jb_nats_close(g.nc, NULL);
    if (g.tick != NULL)
        event_free(g.tick);
    if (g.base != NULL)
        event_base_free(g.base);
    jb_cfg_destroy(cfg);
    free(g.pub_ns);
    *sent = g.sent;
    return errors;
}

/* Through the publisher: a plain HTTP/1.1 client on one epoll set (this thread),
 * keep-alive connections, one POST on a connection at a time (as curl and most
 * clients send), at most POST_MAX open, so at most that many connections. It costs a
 * fraction of curl's multi interface per request (curl's perform and poll walk every
 * open transfer on each call: 90 us of this program's CPU per event at 10,000/s,
 * a core's share taken from the processes being measured). */
#define POST_MAX 256
#define RESP_BUF 4096 /* one response: the publisher's are a status line and a few headers */

typedef struct pconn {
    int fd; /* -1: a free slot */
    bool busy, in_idle;
    int64_t sent_ns; /* when its POST left */
    size_t len;
    char buf[RESP_BUF];
} pconn;

typedef struct client {
    struct sockaddr_in addr;
    char host[80], path[256];
    int ep;
    pconn conn[POST_MAX];
    int nconn, idle[POST_MAX], nidle, freed[POST_MAX], nfreed;
    long done, errors;
} client;

/* url: http://IPV4:PORT/PATH (what the bench passes). */
static bool client_init(client *c, const char *url)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7, *colon = strchr(h, ':'), *slash = colon ? strchr(colon, '/') : NULL;
    char ip[64];
    uint64_t port = 0;
    if (slash == NULL || (size_t)(colon - h) >= sizeof(ip) ||
        !jb_parse_uint(colon + 1, (size_t)(slash - colon - 1), 65535, &port) || port == 0 ||
        strlen(slash) >= sizeof(c->path))
        return false;
    memcpy(ip, h, (size_t)(colon - h));
    ip[colon - h] = '\0';
    c->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &c->addr.sin_addr) != 1)
        return false;
    snprintf(c->host, sizeof(c->host), "%s:%u", ip, (unsigned)port);
    snprintf(c->path, sizeof(c->path), "%s", slash);
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    return c->ep >= 0;
}

static void conn_drop(client *c, int i)
{
    close(c->conn[i].fd); /* leaves the epoll set with it */
    c->conn[i].fd = -1;
    c->conn[i].len = 0;
    if (c->conn[i].busy) { /* its POST has no answer: not stored as far as we know */
        c->conn[i].busy = false;
        c->done++;
        c->errors++;
    }
    c->freed[c->nfreed++] = i;
}

/* An idle connection, else a new one; -1 when none can be had. */
static int conn_take(client *c)
{
    while (c->nidle > 0) {
        int i = c->idle[--c->nidle];
        c->conn[i].in_idle = false;
        if (c->conn[i].fd >= 0 && !c->conn[i].busy)
            return i;
    }
    int i = c->nfreed > 0 ? c->freed[--c->nfreed] : c->nconn < POST_MAX ? c->nconn++ : -1;
    if (i < 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (fd < 0 || connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (fd >= 0)
            close(fd);
        c->freed[c->nfreed++] = i;
        return -1;
    }
    c->conn[i].fd = fd;
    c->conn[i].len = 0;
    return i;
}

/* Sends one event, its ce-id the time now. False: not sent (counted as an error). */
static bool post(client *c)
{
    int i = conn_take(c);
    if (i < 0)
        return false;
    static const char body[] = "{\"order\":42}";
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nce-specversion: 1.0\r\nce-id: t%lld\r\n"
                     "ce-source: myapp\r\nce-type: order.created.v1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     c->path, c->host, (long long)(c->conn[i].sent_ns = now_ns()), sizeof(body) - 1,
                     body);
    c->conn[i].busy = true;
    if (n <= 0 || (size_t)n >= sizeof(req) ||
        send(c->conn[i].fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        c->conn[i].busy = false;
        conn_drop(c, i);
        return false;
    }
    return true;
}

/* Reads connection i's answer; when it is whole, counts it and makes the connection
 * idle again (or closes it: the server's "Connection: close", EOF, an error). */
static void on_answer(client *c, int i)
{
    pconn *p = &c->conn[i];
    for (;;) {
        ssize_t r = recv(p->fd, p->buf + p->len, RESP_BUF - p->len, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_drop(c, i);
            return;
        }
        if (r < 0)
            return;
        p->len += (size_t)r;
        hdr_want w[] = {{.name = "content-length"}, {.name = "connection"}};
        size_t hend = 0;
        uint64_t status = 0;
        ssize_t m = frame(p->buf, p->len, RESP_BUF, w, 2, &hend);
        if (m == 0 && p->busy)
            continue;
        /* Too long, bytes nobody asked for, or not "HTTP/1.x NNN ..." */
        if (m <= 0 || !p->busy || hend < 12 || strncmp(p->buf, "HTTP/1.", 7) != 0 ||
            p->buf[8] != ' ' || !jb_parse_uint(p->buf + 9, 3, 999, &status)) {
            conn_drop(c, i);
            return;
        }
        bool close_it = w[1].v != NULL && w[1].vlen == 5 && strncasecmp(w[1].v, "close", 5) == 0;
        p->busy = false;
        c->done++;
        if (status / 100 != 2)
            c->errors++;
        else
            stored(p->sent_ns);
        p->len -= (size_t)m;
        if (close_it || p->len != 0) { /* nothing may follow an answer */
            conn_drop(c, i);
            return;
        }
        if (!p->in_idle) {
            p->in_idle = true;
            c->idle[c->nidle++] = i;
        }
        return;
    }
}

/* Posts at rate for total events, sleeping (never spinning, at least PACE_NS) until
 * the next is due or an answer arrives; then waits at most 10 s for the last answers.
 * Returns the publish errors (non-2xx answers, failed or unanswered POSTs). */
static long run_http(const char *url, long rate, long total, long *sent_out)
{
    client *c = calloc(1, sizeof(*c));
    if (c == NULL || !client_init(c, url)) {
        fprintf(stderr, "disp_e2e: cannot post to %s (want http://IPV4:PORT/PATH)\n", url);
        exit(2);
    }
    long sent = 0;
    int64_t start = now_ns(), gap = 1000000000LL / rate, give_up = 0;
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = now_ns();
        while (sent < total && start + sent * gap <= now && sent - c->done < POST_MAX) {
            if (!post(c)) {
                c->errors++;
                c->done++;
            }
            if (++sent == total)
                last_send_ns = now_ns();
        }
        if (sent == total && c->done >= sent)
            break;
        int64_t wait;
        if (sent == total) {
            if (give_up == 0)
                give_up = now + 10000000000LL;
            if (now >= give_up)
                break;
            wait = give_up - now;
        } else if (sent - c->done >= POST_MAX) {
            wait = 100000000LL; /* the window is full: an answer wakes us */
        } else {
            int64_t due = start + sent * gap;
            wait = due - now < PACE_NS ? PACE_NS : due - now;
        }
        struct timespec ts = {(time_t)(wait / 1000000000LL), (long)(wait % 1000000000LL)};
        int n = epoll_pwait2(c->ep, evs, 64, &ts, NULL);
        for (int k = 0; k < n; k++)
            on_answer(c, (int)evs[k].data.u32);
    }
    long errors = c->errors + (sent - c->done); /* unanswered at the end */
    for (int i = 0; i < c->nconn; i++)
        if (c->conn[i].fd >= 0)
            close(c->conn[i].fd);
    close(c->ep);
    free(c);
    *sent_out = sent;
    return errors;
}

/* E2E_WINDOW_MS: one line per window of w_ns from t0 (by send time: the events sent
 * in it and their latency; by arrival time: deliveries and new connections). */
static void print_windows(const sink *s, int64_t t0, int64_t w_ns)
{
    int64_t end = t0;
    for (size_t i = 0; i < s->n; i++)
        if (s->arr[i] > end)
            end = s->arr[i];
    size_t nw = (size_t)((end - t0) / w_ns) + 1;
    int64_t *buf = malloc(s->n * sizeof(*buf) + 1);
    if (buf == NULL)
        return;
    fprintf(stderr, "window_ms sent p50_ms p99_ms max_ms | arrived new_conns\n");
    for (size_t w = 0; w < nw; w++) {
        int64_t lo = t0 + (int64_t)w * w_ns, hi = lo + w_ns;
        size_t k = 0, arrived = 0, conns = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (s->sent[i] >= lo && s->sent[i] < hi)
                buf[k++] = s->lat[i];
            if (s->arr[i] >= lo && s->arr[i] < hi)
                arrived++;
        }
        for (size_t i = 0; i < s->nconn; i++)
            if (s->conn_at[i] >= lo && s->conn_at[i] < hi)
                conns++;
        qsort(buf, k, sizeof(*buf), lat_cmp);
        double p50 = lat_pct_ms(buf, k, 50), p99 = lat_pct_ms(buf, k, 99),
               mx = lat_pct_ms(buf, k, 100);
        fprintf(stderr, "%6lld %5zu %7.2f %7.2f %7.2f | %5zu %4zu\n",
                (long long)((int64_t)w * w_ns / 1000000), k, p50, p99, mx, arrived, conns);
    }
    fprintf(stderr, "connections seen by the sink: %zu\n", s->nconn);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: disp_e2e PUBLISH_URL|NATS_URL SINK_PORT RATE SECONDS\n");
        return 2;
    }
    const char *url = argv[1];
    int port = (int)strtol(argv[2], NULL, 10);
    long rate = strtol(argv[3], NULL, 10), secs = strtol(argv[4], NULL, 10);
    long total = rate * secs;
    if (rate <= 0 || secs <= 0) {
        fprintf(stderr, "disp_e2e: RATE and SECONDS must be positive\n");
        return 2;
    }
    jb_log_setup(JB_LOG_WARN, false); /* no "connected" line among the figures */
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER,
              .lat = calloc((size_t)total, sizeof(int64_t)),
              .cap = (size_t)total};
    if (s.lat == NULL || sink_open(&s, port) != 0) {
        fprintf(stderr, "disp_e2e: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    const char *wenv = getenv("E2E_WINDOW_MS");
    long window_ms = wenv != NULL ? strtol(wenv, NULL, 10) : 0;
    s.sent = calloc((size_t)total, sizeof(int64_t));
    if (window_ms > 0) {
        s.arr = calloc((size_t)total, sizeof(int64_t));
        s.conn_at = calloc(CONN_MAX, sizeof(int64_t));
        if (s.sent == NULL || s.arr == NULL || s.conn_at == NULL) {
            free(s.arr);
            free(s.conn_at);
            s.arr = s.conn_at = NULL;
            window_ms = 0;
        }
    }
    store_cap = (size_t)total;
    store_lat = calloc(store_cap, sizeof(int64_t));
    if (store_lat == NULL) {
        fprintf(stderr, "disp_e2e: out of memory\n");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    int64_t t0 = now_ns();

    bool direct = strncmp(url, "nats://", 7) == 0;
    long sent = 0;
    long errors = direct ? run_nats(url, rate, total, &sent) : run_http(url, rate, total, &sent);
    /* Wait (at most 10 s) for the last deliveries. */
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&s.mu);
        size_t n = s.n;
        pthread_mutex_unlock(&s.mu);
        if ((long)n >= sent - errors)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    uint64_t one = 1;
    if (write(s.stopfd, &one, sizeof(one)) != sizeof(one))
        perror("disp_e2e: stop the sink");
    pthread_join(t, NULL);
    if (s.errors > 0)
        fprintf(stderr,
                "disp_e2e: the sink closed %ld connections on requests it could not serve\n",
                s.errors);
    if (window_ms > 0)
        print_windows(&s, t0, window_ms * 1000000LL);
    size_t warm_n = 0;
    /* The warm p99 first: it needs lat in arrival order, beside sent. */
    double warm_p99 = lat_p99_from(s.lat, s.sent, s.n, lat_warm_from(t0), &warm_n);
    qsort(s.lat, s.n, sizeof(int64_t), lat_cmp);
    double p50 = lat_pct_ms(s.lat, s.n, 50), p90 = lat_pct_ms(s.lat, s.n, 90),
           p99 = lat_pct_ms(s.lat, s.n, 99), max = lat_pct_ms(s.lat, s.n, 100);
    double send_s = last_send_ns > t0 ? (double)(last_send_ns - t0) / 1e9 : 0;
    qsort(store_lat, store_n, sizeof(int64_t), lat_cmp);
    printf("%s %ld %ld %zu %.2f %.2f %.2f %.2f %ld %.2f %zu %.3f %.3f %.2f %.2f\n",
           direct ? "lat" : "e2e", rate, sent, s.n, p50, p90, p99, max, errors, warm_p99, warm_n,
           self_cpu_s(), send_s, lat_pct_ms(store_lat, store_n, 50),
           lat_pct_ms(store_lat, store_n, 99));
    close(s.lfd);
    close(s.ep);
    close(s.stopfd);
    free(s.lat);
    free(s.sent);
    free(s.arr);
    free(s.conn_at);
    free(store_lat);
    return s.n == (size_t)sent && errors == 0 && s.errors == 0 ? 0 : 1;
}

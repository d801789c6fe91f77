/*
 * One HTTP thread of the publisher: its own event_base and evhttp on the shared
 * port, its own JetStream context for asynchronous publishing, and a bounded
 * completion queue through which nats.c's threads (ack callbacks) and the control
 * thread hand results back. Only this thread touches its libevent objects; the
 * others write to an eventfd (h2o's multithread receiver pattern).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "application/jb_app.h"
#include "publisher/pub_guard.h"
#include "publisher/pub_server.h"

/* Metric path labels: route templates, never raw paths. */
static const char *const route_label[] = {
    "unknown",  "/publish", "/{application}/v1/events", "/{application}/v1/events/subscribed",
    "/healthz", "/readyz",  "/{application}/events",    "/{application}/v2/events",
};

/* One request waiting for acks (or for the control thread). */
typedef struct pub_req {
    pub_thread *t;
    struct evhttp_request *req;
    jb_pub_route r;
    enum evhttp_cmd_type method;
    int64_t start_ns;
    size_t n, remaining;
    int *codes;   /* per message: 0 while pending, else the HTTP status */
    char **texts; /* per message: error text (malloc'd) or NULL */
    /* Per message: the type as its producer sent it and the source (malloc'd), the
     * labels of eventing_epp_event_type_published_total; NULL for a message not
     * counted (the legacy endpoint's second copy: one count per event). */
    char **mtype, **msource;
    char id[37]; /* legacy: the event id */
} pub_req;

typedef enum cq_kind { CQ_ACK, CQ_CTL, CQ_STOP } cq_kind;
typedef struct cq_entry {
    cq_kind kind;
    natsMsg *msg; /* CQ_ACK: the published message, ours again */
    void *token;  /* CQ_CTL: the pub_req */
    int status;
    char *text; /* malloc'd or NULL; CQ_CTL: the body */
    size_t len;
} cq_entry;

/* An in-flight message: key is the natsMsg pointer nats.c hands back in the ack. */
typedef struct ack_slot {
    natsMsg *key;
    pub_req *pr;
    size_t idx;
    int64_t t0;
} ack_slot;

struct pub_thread {
    jb_pub *p;
    int idx;
    pthread_t tid;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    jsCtx *js;
    jsPubOptions popts;

    pthread_mutex_t qmu; /* guards q*, closed, wake_pending */
    cq_entry *q;
    size_t qcap, qhead, qlen;
    bool closed, wake_pending;
    int efd;
    struct event *wake_ev, *tick_ev, *conn_ev;

    ack_slot *map; /* open addressing, capacity a power of two */
    size_t map_mask, local_in_flight, pending_ctl;

    /* Connection counting (libevent 2.1 has no evhttp_set_max_connections). */
    struct bufferevent **new_bevs;
    size_t n_new_bevs, new_bevs_cap;
    int nconns;
    bool paused;
    bool stopping;
    int64_t stop_deadline_ns;
};

/* ------------------------------------------------------------ ack map */

static size_t map_hash(const pub_thread *t, const natsMsg *m)
{
    uint64_t h = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & t->map_mask;
}

static void map_put(pub_thread *t, natsMsg *key, pub_req *pr, size_t idx, int64_t t0)
{
    size_t i = map_hash(t, key);
    while (t->map[i].key != NULL)
        i = (i + 1) & t->map_mask;
    t->map[i] = (ack_slot){key, pr, idx, t0};
    t->local_in_flight++;
}

/* Removes key; false when absent. Backward-shift deletion keeps probes short
 * without tombstones. */
static bool map_take(pub_thread *t, const natsMsg *key, ack_slot *out)
{
    size_t i = map_hash(t, key);
    while (t->map[i].key != key) {
        if (t->map[i].key == NULL)
            return false;
        i = (i + 1) & t->map_mask;
    }
    *out = t->map[i];
    size_t hole = i;
    for (size_t j = (i + 1) & t->map_mask; t->map[j].key != NULL; j = (j + 1) & t->map_mask) {
        size_t home = map_hash(t, t->map[j].key);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            t->map[hole] = t->map[j];
            hole = j;
        }
    }
    t->map[hole].key = NULL;
    t->local_in_flight--;
    return true;
}

/* ------------------------------------------------------ completion queue */

/* Any thread. Takes text (and msg for CQ_ACK): on a closed or full queue they are
 * freed here. The queue holds at least PUBLISH_MAX_IN_FLIGHT + control jobs, so it
 * is full only if that bound is broken. */
static void cq_post(pub_thread *t, cq_entry e)
{
    bool wake = false, ok = false;
    pthread_mutex_lock(&t->qmu);
    if (!t->closed && t->qlen < t->qcap) {
        t->q[(t->qhead + t->qlen) % t->qcap] = e;
        t->qlen++;
        ok = true;
        wake = !t->wake_pending;
        t->wake_pending = true;
    }
    pthread_mutex_unlock(&t->qmu);
    if (!ok) {
        natsMsg_Destroy(e.msg);
        free(e.text);
        return;
    }
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(t->efd, &one, sizeof(one));
        (void)w; /* EAGAIN means the counter is already non-zero: a wake-up is due */
    }
}

/* nats.c's thread: one call per message published by this thread. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    pub_thread *t = closure;
    cq_entry e = {.kind = CQ_ACK, .msg = msg, .status = 204};
    if (pa == NULL && pae != NULL) {
        e.status = jb_pub_ack_status(pae->Err, pae->ErrCode, pae->ErrText);
        const char *txt = pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err);
        e.text = strdup(txt);
        if (pae->Err == NATS_NO_RESPONDERS)
            atomic_store(&t->p->stream_recheck, true);
    }
    cq_post(t, e);
}

void pub_thread_post_ctl(pub_thread *t, void *token, int status, char *body, size_t len)
{
    cq_post(t,
            (cq_entry){.kind = CQ_CTL, .token = token, .status = status, .text = body, .len = len});
}

/* ---------------------------------------------------------------- replies */

static const char *reason_of(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 507:
        return "Insufficient Storage";
    default:
        return code < 500 ? "Client Error" : "Server Error";
    }
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
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
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

typedef struct reply {
    int code;
    const char *ctype; /* NULL: text/plain */
    const char *body;
    size_t len;
    bool retry_after;
    const char *allow;
    int retry_after_s;    /* > 0: this Retry-After instead of RETRY_AFTER_SECONDS */
    const char *www_auth; /* WWW-Authenticate */
} reply;

static void send_reply(pub_thread *t, struct evhttp_request *req, jb_pub_route r,
                       enum evhttp_cmd_type method, int64_t start_ns, reply rp)
{
    const jb_pub *p = t->p;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (rp.code != 204)
        evhttp_add_header(out, "Content-Type",
                          rp.ctype != NULL ? rp.ctype : "text/plain; charset=utf-8");
    if (rp.retry_after || rp.retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d",
                 rp.retry_after_s > 0 ? rp.retry_after_s : p->cfg->retry_after_seconds);
        evhttp_add_header(out, "Retry-After", ra);
    }
    if (rp.www_auth != NULL)
        evhttp_add_header(out, "WWW-Authenticate", rp.www_auth);
    if (rp.allow != NULL)
        evhttp_add_header(out, "Allow", rp.allow);
    if (rp.code >= 400)
        evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    struct evbuffer *buf = NULL;
    if (rp.len > 0 && rp.code != 204) {
        buf = evbuffer_new();
        if (buf != NULL)
            evbuffer_add(buf, rp.body, rp.len);
    }
    evhttp_send_reply(req, rp.code, reason_of(rp.code), buf);
    if (buf != NULL)
        evbuffer_free(buf);
    char code[8];
    snprintf(code, sizeof(code), "%d", rp.code);
    const char *labels[] = {code, method_name(method), route_label[r]};
    jb_metric_add(p->m.req_total, labels, 1);
    jb_metric_observe(p->m.req_dur, labels, (double)(jb_now_monotonic_ns() - start_ns) / 1e9);
}

static void send_text(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                      int code, const char *text)
{
    send_reply(t, req, r, evhttp_request_get_command(req), start,
               (reply){.code = code, .body = text, .len = strlen(text)});
}

static void reject(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                   const char *reason, int code, const char *text)
{
    const char *labels[] = {reason};
    jb_metric_add(t->p->m.rejected, labels, 1);
    bool legacy = r == R_LEGACY;
    char body[256];
    if (legacy)
        snprintf(body, sizeof(body), "{\"status\":%d,\"message\":\"%s\"}", code, text);
    send_reply(t, req, r, evhttp_request_get_command(req), start,
               (reply){.code = code,
                       .ctype = legacy ? "application/json" : NULL,
                       .body = legacy ? body : text,
                       .len = strlen(legacy ? body : text),
                       .retry_after = code == 503});
}

/* ------------------------------------------------------------- requests */

static pub_req *pub_req_new(pub_thread *t, struct evhttp_request *req, jb_pub_route r, size_t n,
                            int64_t start)
{
    pub_req *pr = calloc(1, sizeof(*pr) + n * (sizeof(int) + 3 * sizeof(char *)));
    if (pr == NULL)
        return NULL;
    pr->t = t;
    pr->req = req;
    pr->r = r;
    pr->method = evhttp_request_get_command(req);
    pr->start_ns = start;
    pr->n = n;
    pr->texts = (char **)(pr + 1);
    pr->mtype = pr->texts + n;
    pr->msource = pr->mtype + n;
    pr->codes = (int *)(pr->msource + n);
    return pr;
}

static void pub_req_free(pub_req *pr)
{
    for (size_t i = 0; i < pr->n; i++) {
        free(pr->texts[i]);
        free(pr->mtype[i]);
        free(pr->msource[i]);
    }
    free(pr);
}

/* Builds the batch failure body: {"status":..,"message":..,"failed":[{index,status,message}]}. */
static char *batch_failure_body(const pub_req *pr, size_t first, size_t *len)
{
    size_t cap = 128, o = 0;
    for (size_t i = 0; i < pr->n; i++)
        cap += 64 + (pr->texts[i] != NULL ? strlen(pr->texts[i]) * 6 : 0);
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    char *esc = jb_pub_json_escape(pr->texts[first] ? pr->texts[first] : "",
                                   pr->texts[first] ? strlen(pr->texts[first]) : 0);
    o += (size_t)snprintf(b + o, cap - o, "{\"status\":%d,\"message\":\"%s\",\"failed\":[",
                          pr->codes[first], esc ? esc : "");
    free(esc);
    bool comma = false;
    for (size_t i = 0; i < pr->n; i++) {
        if (pr->codes[i] == 204)
            continue;
        const char *tx = pr->texts[i] ? pr->texts[i] : "";
        esc = jb_pub_json_escape(tx, strlen(tx));
        o += (size_t)snprintf(b + o, cap - o, "%s{\"index\":%zu,\"status\":%d,\"message\":\"%s\"}",
                              comma ? "," : "", i, pr->codes[i], esc ? esc : "");
        free(esc);
        comma = true;
    }
    o += (size_t)snprintf(b + o, cap - o, "]}");
    *len = o;
    return b;
}

/* Every message of pr has its outcome: answer and free pr. */
static void pub_req_finish(pub_req *pr)
{
    pub_thread *t = pr->t;
    size_t first = pr->n;
    for (size_t i = 0; i < pr->n && first == pr->n; i++)
        if (pr->codes[i] != 204)
            first = i;
    char *body = NULL;
    size_t len = 0;
    reply rp = {.code = 204};
    if (pr->r == R_LEGACY) {
        rp.ctype = "application/json";
        char *esc = NULL;
        if (first == pr->n) {
            rp.code = 200;
            len = (size_t)asprintf(&body, "{\"event-id\":\"%s\",\"status\":\"\",\"reason\":\"\"}",
                                   pr->id);
        } else {
            rp.code = pr->codes[first];
            const char *tx = pr->texts[first] ? pr->texts[first] : "";
            esc = jb_pub_json_escape(tx, strlen(tx));
            len = (size_t)asprintf(&body, "{\"status\":%d,\"message\":\"%s\"}", rp.code,
                                   esc ? esc : "");
        }
        free(esc);
    } else if (first != pr->n && pr->n == 1) {
        rp.code = pr->codes[0];
        body = strdup(pr->texts[0] ? pr->texts[0] : reason_of(rp.code));
        len = body ? strlen(body) : 0;
    } else if (first != pr->n) {
        rp.code = pr->codes[first];
        rp.ctype = "application/json";
        body = batch_failure_body(pr, first, &len);
    }
    if (body == NULL)
        len = 0;
    rp.body = body;
    rp.len = len;
    rp.retry_after = rp.code == 503;
    send_reply(t, pr->req, pr->r, pr->method, pr->start_ns, rp);
    free(body);
    pub_req_free(pr);
}

static void record_outcome(pub_req *pr, size_t idx, int code, char *text)
{
    pr->codes[idx] = code;
    free(pr->texts[idx]);
    pr->texts[idx] = text;
}

/* The window is shared by every thread: take n slots or none. */
static bool window_acquire(jb_pub *p, int n)
{
    int max = p->cfg->publish_max_in_flight;
    int prev = atomic_fetch_add(&p->in_flight, n);
    if (prev + n > max) {
        atomic_fetch_sub(&p->in_flight, n);
        return false;
    }
    return true;
}

static void window_release(jb_pub *p, int n)
{
    atomic_fetch_sub(&p->in_flight, n);
}

/* Keeps the metric labels of message i: its producer's type (taken; NULL: not
 * counted) and its source. */
static void keep_labels(pub_req *pr, size_t i, const jb_ce *ce, char **sent_type)
{
    const char *src = jb_ce_get(ce, "source", NULL);
    if (*sent_type == NULL)
        return;
    pr->mtype[i] = *sent_type;
    *sent_type = NULL;
    pr->msource[i] = strdup(src != NULL ? src : "");
}

/* Publishes ces[0..n) (subjects, msg ids and the types as sent alongside) for pr,
 * which is taken: it is answered now or when its last ack arrives. The types as
 * sent are taken too (each set to NULL). */
static void submit(pub_thread *t, pub_req *pr, jb_ce *const *ces, char *const *subjects,
                   char (*ids)[JB_PUB_MSG_ID_LEN + 1], char **sent_types)
{
    jb_pub *p = t->p;
    for (size_t i = 0; i < pr->n; i++)
        keep_labels(pr, i, ces[i], &sent_types[i]);
    if (!jb_nats_connected(p->nc)) {
        reject(t, pr->req, pr->r, pr->start_ns, "not_connected", 502, "not connected to NATS");
        pub_req_free(pr);
        return;
    }
    if (pr->n > (size_t)p->cfg->publish_max_in_flight) {
        /* Waiting cannot help: say so instead of a 503 the client would retry forever. */
        char msg[160];
        snprintf(msg, sizeof(msg), "batch of %zu events exceeds PUBLISH_MAX_IN_FLIGHT (%d)", pr->n,
                 p->cfg->publish_max_in_flight);
        reject(t, pr->req, pr->r, pr->start_ns, "batch_too_large", 413, msg);
        pub_req_free(pr);
        return;
    }
    if (!window_acquire(p, (int)pr->n)) {
        reject(t, pr->req, pr->r, pr->start_ns, "in_flight_full", 503,
               "publisher busy: in-flight window full, retry later");
        pub_req_free(pr);
        return;
    }
    /* Encode every event before publishing any, so that an event NATS headers
     * cannot carry is a 400 with nothing stored, as for any other invalid event. */
    natsMsg **msgs = calloc(pr->n, sizeof(*msgs));
    if (msgs == NULL) {
        window_release(p, (int)pr->n);
        reject(t, pr->req, pr->r, pr->start_ns, "internal", 500, "out of memory");
        pub_req_free(pr);
        return;
    }
    for (size_t i = 0; i < pr->n; i++) {
        jb_status rc = jb_ce_to_nats(ces[i], subjects[i], ids[i][0] ? ids[i] : NULL, &msgs[i]);
        if (rc != JB_OK) {
            for (size_t k = 0; k < i; k++)
                natsMsg_Destroy(msgs[k]);
            free(msgs);
            window_release(p, (int)pr->n);
            bool bad = rc == JB_ERR_UNSUPPORTED || rc == JB_ERR_INVALID;
            reject(t, pr->req, pr->r, pr->start_ns, bad ? "unencodable" : "internal",
                   bad ? 400 : 500,
                   bad ? "event cannot be stored: two attribute names collide in NATS headers"
                       : jb_status_str(rc));
            pub_req_free(pr);
            return;
        }
    }
    for (size_t i = 0; i < pr->n; i++) {
        natsMsg *msg = msgs[i];
        natsMsg *key = msg;
        natsStatus s = js_PublishMsgAsync(t->js, &msg, &t->popts);
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            record_outcome(pr, i, jb_pub_ack_status(s, 0, NULL), strdup(natsStatus_GetText(s)));
            window_release(p, 1);
            continue;
        }
        /* The ack may already sit in our queue: it is only read by this thread,
         * after this function returns, so inserting now is in time. */
        map_put(t, key, pr, i, jb_now_monotonic_ns());
        pr->remaining++;
    }
    free(msgs);
    if (pr->remaining == 0)
        pub_req_finish(pr);
}

/* ------------------------------------------------------ completions */

static void complete_ack(pub_thread *t, cq_entry *e)
{
    jb_pub *p = t->p;
    ack_slot s;
    if (!map_take(t, e->msg, &s)) {
        /* Already failed by the disconnect sweep: nothing waits for it. */
        natsMsg_Destroy(e->msg);
        free(e->text);
        return;
    }
    window_release(p, 1);
    char code[8];
    snprintf(code, sizeof(code), "%d", e->status);
    const char *bl[] = {code, p->dest_service};
    jb_metric_observe(p->m.backend_dur, bl, (double)(jb_now_monotonic_ns() - s.t0) / 1e6);
    /* Kyma's labels: the type as its producer sent it, once per event. */
    if (s.pr->mtype[s.idx] != NULL && s.pr->msource[s.idx] != NULL) {
        const char *tl[] = {s.pr->mtype[s.idx], s.pr->msource[s.idx], code};
        jb_metric_add(p->m.type_pub, tl, 1);
    }
    natsMsg_Destroy(e->msg);
    record_outcome(s.pr, s.idx, e->status, e->text);
    if (--s.pr->remaining == 0)
        pub_req_finish(s.pr);
}

static void complete_ctl(pub_thread *t, cq_entry *e)
{
    pub_req *pr = e->token;
    t->pending_ctl--;
    send_reply(
        t, pr->req, pr->r, pr->method, pr->start_ns,
        (reply){.code = e->status, .ctype = "application/json", .body = e->text, .len = e->len});
    free(e->text);
    pub_req_free(pr);
}

static void begin_stop(pub_thread *t);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    pub_thread *t = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    enum { BATCH = 256 };
    cq_entry batch[BATCH];
    for (;;) {
        size_t k = 0;
        pthread_mutex_lock(&t->qmu);
        while (k < BATCH && t->qlen > 0) {
            batch[k++] = t->q[t->qhead];
            t->qhead = (t->qhead + 1) % t->qcap;
            t->qlen--;
        }
        if (t->qlen == 0)
            t->wake_pending = false;
        pthread_mutex_unlock(&t->qmu);
        for (size_t i = 0; i < k; i++) {
            if (batch[i].kind == CQ_ACK)
                complete_ack(t, &batch[i]);
            else if (batch[i].kind == CQ_CTL)
                complete_ctl(t, &batch[i]);
            else
                begin_stop(t);
        }
        if (k < BATCH)
            break;
    }
}

/* Periodic: fails what waits on a dead connection, and finishes a stop. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pub_thread *t = arg;
    if (t->local_in_flight > 0 && !jb_nats_connected(t->p->nc)) {
        /* Take the messages back from nats.c: their acks, if any come, are dropped
         * by the library, and the client hears 502 now rather than 504 later.
         * Publishing is idempotent (Nats-Msg-Id), so a retry is safe either way. */
        natsMsgList list = {0};
        if (js_PublishAsyncGetPendingList(&list, t->js) == NATS_OK) {
            for (int i = 0; i < list.Count; i++) {
                ack_slot s;
                if (list.Msgs[i] == NULL || !map_take(t, list.Msgs[i], &s))
                    continue;
                window_release(t->p, 1);
                record_outcome(s.pr, s.idx, 502, strdup("not connected to NATS"));
                if (--s.pr->remaining == 0)
                    pub_req_finish(s.pr);
            }
            natsMsgList_Destroy(&list);
        }
    }
    jb_metric_set(t->p->m.in_flight, NULL, (double)atomic_load(&t->p->in_flight));
    if (t->stopping && ((t->local_in_flight == 0 && t->pending_ctl == 0) ||
                        jb_now_monotonic_ns() > t->stop_deadline_ns))
        event_base_loopbreak(t->base);
}

static void begin_stop(pub_thread *t)
{
    if (t->stopping)
        return;
    t->stopping = true;
    t->stop_deadline_ns = jb_now_monotonic_ns() + (t->p->cfg->request_timeout_ms + 1000) * 1000000;
    if (t->bound != NULL) {
        evhttp_del_accept_socket(t->http, t->bound);
        t->bound = NULL;
    }
    on_tick(-1, 0, t);
}

/* ---------------------------------------------------------- connections */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    pub_thread *t = arg;
    pub_guard_flush(evhttp_connection_get_bufferevent(evcon));
    t->nconns--;
    if (t->paused && t->nconns < t->p->conns_per_thread && t->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(t->bound));
        t->paused = false;
    }
}

/* Runs at top priority right after the accept callback(s) that created the
 * bufferevents, before any of their I/O: evhttp has wrapped each in its
 * connection by then, and the connection's close callback is how we count. */
static void on_new_conns(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pub_thread *t = arg;
    for (size_t i = 0; i < t->n_new_bevs; i++) {
        void *cbarg = NULL;
        bufferevent_getcb(t->new_bevs[i], NULL, NULL, NULL, &cbarg);
        if (cbarg != NULL)
            evhttp_connection_set_closecb(cbarg, on_conn_close, t);
        else
            t->nconns--;
    }
    t->n_new_bevs = 0;
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    pub_thread *t = arg;
    struct bufferevent *under = t->p->tls != NULL
                                    ? pub_tls_bev(t->p->tls, base)
                                    : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *bev = pub_guard_wrap(under, &t->p->guard);
    if (bev == NULL || t->n_new_bevs == t->new_bevs_cap)
        return bev; /* not counted: only possible past the cap, while paused */
    t->new_bevs[t->n_new_bevs++] = bev;
    t->nconns++;
    event_active(t->conn_ev, EV_TIMEOUT, 1);
    if (t->nconns >= t->p->conns_per_thread && !t->paused && t->bound != NULL) {
        /* The kernel backlog holds further connections until one closes. */
        evconnlistener_disable(evhttp_bound_socket_get_listener(t->bound));
        t->paused = true;
    }
    return bev;
}

/* ------------------------------------------------------------- handlers */

/* The request's headers as jb_ce_header views (libevent keeps them NUL-terminated).
 * *out is malloc'd; NULL with *n 0 when there are none. */
static jb_status collect_headers(struct evhttp_request *req, jb_ce_header **out, size_t *n)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    size_t cnt = 0;
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next)
        cnt++;
    jb_ce_header *h = calloc(cnt > 0 ? cnt : 1, sizeof(*h));
    if (h == NULL)
        return JB_ERR_NOMEM;
    size_t i = 0;
    for (struct evkeyval *kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next, i++)
        h[i] = (jb_ce_header){kv->key, strlen(kv->key), kv->value, strlen(kv->value)};
    *out = h;
    *n = cnt;
    return JB_OK;
}

/* A common mistake: a structured event (a JSON object with "specversion") sent
 * with content-type application/json, which CloudEvents reads as binary mode. True
 * when no ce-specversion header came and the body is such an object. */
static bool looks_structured(const jb_ce_header *h, size_t nh, const uint8_t *body, size_t len)
{
    for (size_t i = 0; i < nh; i++)
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "ce-specversion", 14) == 0)
            return false;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return i < len && body[i] == '{' && memmem(body, len, "\"specversion\"", 13) != NULL;
}

/* Decodes the body by content mode into a malloc'd array of events. */
static jb_status decode_events(jb_ce_http_mode mode, const jb_ce_header *h, size_t nh,
                               const uint8_t *body, size_t len, jb_ce ***ces, size_t *n,
                               jb_err *err)
{
    jb_ce *one = NULL;
    jb_status rc;
    switch (mode) {
    case JB_CE_HTTP_BATCH_JSON:
        return jb_ce_batch_from_json((const char *)body, len, ces, n, err);
    case JB_CE_HTTP_BATCH_PROTOBUF:
        return jb_ce_batch_from_protobuf(body, len, ces, n, err);
    case JB_CE_HTTP_STRUCTURED_JSON:
        rc = jb_ce_from_json((const char *)body, len, &one, err);
        break;
    case JB_CE_HTTP_STRUCTURED_PROTOBUF:
        rc = jb_ce_from_protobuf(body, len, &one, err);
        break;
    case JB_CE_HTTP_BINARY:
        rc = jb_ce_from_http_binary(h, nh, body, len, &one, err);
        break;
    case JB_CE_HTTP_UNSUPPORTED:
    default:
        return jb_err_set(err, JB_ERR_UNSUPPORTED, "unsupported content type");
    }
    if (rc != JB_OK)
        return rc;
    jb_ce **arr = malloc(sizeof(*arr));
    if (arr == NULL) {
        jb_ce_destroy(one);
        return JB_ERR_NOMEM;
    }
    arr[0] = one;
    *ces = arr;
    *n = 1;
    return JB_OK;
}

/* Validates and enriches every event; fills subjects and ids. On failure err says
 * which event (batch index) and why. */
static jb_status prepare_events(const jb_pub_names *names, struct jb_app_registry *apps,
                                jb_ce **ces, size_t n, const jb_ce_header *h, size_t nh,
                                char **subjects, char (*ids)[JB_PUB_MSG_ID_LEN + 1],
                                char **sent_types, bool batch, jb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        jb_err e = {{0}};
        jb_status rc = jb_ce_validate(ces[i], &e);
        if (rc == JB_OK)
            rc = jb_pub_apply_tracing(ces[i], h, nh, &e);
        /* The id derives from the source as received, before enrichment. */
        size_t sl = 0, il = 0;
        const char *src = jb_ce_get(ces[i], "source", &sl);
        const char *id = jb_ce_get(ces[i], "id", &il);
        if (rc == JB_OK && src != NULL && id != NULL)
            jb_pub_msg_id(src, sl, id, il, NULL, ids[i]);
        if (rc == JB_OK && (sent_types[i] = strdup(jb_ce_get(ces[i], "type", NULL))) == NULL)
            rc = JB_ERR_NOMEM;
        if (rc == JB_OK)
            rc = pub_app_relabel(names, apps, ces[i]);
        if (rc == JB_OK)
            rc = jb_pub_enrich(names, ces[i], &subjects[i], &e);
        if (rc != JB_OK) {
            if (batch)
                return jb_err_set(err, rc, "event %zu: %s", i,
                                  e.msg[0] ? e.msg : jb_status_str(rc));
            return jb_err_set(err, rc, "%s", e.msg[0] ? e.msg : jb_status_str(rc));
        }
    }
    return JB_OK;
}

/* INGRESS_AUTH=required, after decoding: every event's source and type must be
 * the caller's, and the caller's rate limit must allow n more events. False when
 * the request was answered (403, 413 or 429). */
static bool check_events(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                         const jb_app *app, jb_ce *const *ces, size_t n)
{
    pub_authz *z = t->p->authz;
    const char *attr = NULL;
    size_t idx = 0;
    int retry = 0, code = pub_authz_events(app, ces, n, &attr, &idx);
    char msg[512];
    if (code != 0) {
        size_t vl = 0;
        const char *v = jb_ce_get(ces[idx], attr, &vl);
        char *esc = jb_pub_json_escape(v != NULL ? v : "", v != NULL ? vl : 0);
        char where[32] = "";
        if (n > 1)
            snprintf(where, sizeof(where), "event %zu: ", idx);
        snprintf(msg, sizeof(msg), "%s%s: \"%.200s\" is not allowed for application %s", where,
                 attr, esc != NULL ? esc : "", jb_app_name(app));
        free(esc);
        pub_authz_count(z, app, "forbidden");
    } else if ((code = pub_authz_rate(z, app, n, &retry)) != 0) {
        snprintf(msg, sizeof(msg),
                 code == 429 ? "rate limit of application %s reached"
                             : "batch larger than the rate-limit burst of "
                               "application %s",
                 jb_app_name(app));
        pub_authz_count(z, app, code == 429 ? "rate_limited" : "batch_too_large");
    } else {
        pub_authz_count(z, app, "accepted");
        return true;
    }
    char *esc = jb_pub_json_escape(msg, strlen(msg));
    char *body = NULL;
    int bl = r == R_LEGACY ? asprintf(&body, "{\"status\":%d,\"message\":\"%s\"}", code,
                                      esc != NULL ? esc : "")
                           : -1;
    send_reply(t, req, r, evhttp_request_get_command(req), start,
               (reply){.code = code,
                       .ctype = bl > 0 ? "application/json" : NULL,
                       .body = bl > 0 ? body : msg,
                       .len = bl > 0 ? (size_t)bl : strlen(msg),
                       .retry_after_s = code == 429 ? retry : 0});
    free(body);
    free(esc);
    return false;
}

static void handle_publish(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                           const uint8_t *body, size_t len, const jb_app *app)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    jb_ce_http_mode mode = jb_ce_http_detect(ct, ct != NULL ? strlen(ct) : 0);
    if (mode == JB_CE_HTTP_UNSUPPORTED) {
        send_text(t, req, r, start, 415,
                  "unsupported structured format: use application/cloudevents+json, "
                  "application/cloudevents-batch+json, application/cloudevents+protobuf or "
                  "application/cloudevents-batch+protobuf");
        return;
    }
    jb_ce_header *h = NULL;
    size_t nh = 0, n = 0;
    jb_ce **ces = NULL;
    char **subjects = NULL, **types = NULL;
    char(*ids)[JB_PUB_MSG_ID_LEN + 1] = NULL;
    jb_err err = {{0}};
    jb_status rc = collect_headers(req, &h, &nh);
    if (rc == JB_OK)
        rc = decode_events(mode, h, nh, body, len, &ces, &n, &err);
    bool batch = mode == JB_CE_HTTP_BATCH_JSON || mode == JB_CE_HTTP_BATCH_PROTOBUF;
    if (rc == JB_OK && n == 0) {
        send_text(t, req, r, start, 204, "");
        goto done;
    }
    if (rc == JB_OK && app != NULL && !check_events(t, req, r, start, app, ces, n))
        goto done;
    if (rc == JB_OK) {
        subjects = calloc(n, sizeof(*subjects));
        ids = calloc(n, sizeof(*ids));
        types = calloc(n, sizeof(*types));
        rc = subjects && ids && types ? prepare_events(&t->p->names, t->p->apps, ces, n, h, nh,
                                                       subjects, ids, types, batch, &err)
                                      : JB_ERR_NOMEM;
    }
    if (rc == JB_ERR_NOMEM) {
        send_text(t, req, r, start, 500, "out of memory");
    } else if (rc != JB_OK && mode == JB_CE_HTTP_BINARY && looks_structured(h, nh, body, len)) {
        send_text(t, req, r, start, 400,
                  "the body looks like a structured CloudEvent (JSON with specversion), but "
                  "without content-type application/cloudevents+json the request is binary "
                  "mode: attributes in ce-* headers, the body is the data. Send it with "
                  "content-type: application/cloudevents+json");
    } else if (rc != JB_OK) {
        send_text(t, req, r, start, 400, err.msg[0] ? err.msg : jb_status_str(rc));
    } else {
        pub_req *pr = pub_req_new(t, req, r, n, start);
        if (pr == NULL)
            send_text(t, req, r, start, 500, "out of memory");
        else
            submit(t, pr, ces, subjects, ids, types);
    }
done:
    for (size_t i = 0; i < n; i++) {
        free(subjects != NULL ? subjects[i] : NULL);
        free(types != NULL ? types[i] : NULL);
    }
    free(subjects);
    free(types);
    free(ids);
    if (ces != NULL)
        jb_ce_batch_free(ces, n);
    free(h);
}

static void legacy_error(pub_thread *t, struct evhttp_request *req, int64_t start, int code,
                         const char *msg)
{
    char *esc = jb_pub_json_escape(msg, strlen(msg));
    char *body = NULL;
    int n = asprintf(&body, "{\"status\":%d,\"message\":\"%s\"}", code, esc ? esc : "");
    send_reply(t, req, R_LEGACY, evhttp_request_get_command(req), start,
               (reply){.code = code,
                       .ctype = "application/json",
                       .body = body ? body : "",
                       .len = n > 0 ? (size_t)n : 0});
    free(body);
    free(esc);
}

static void handle_legacy(pub_thread *t, struct evhttp_request *req, int64_t start, const char *app,
                          size_t app_len, const uint8_t *body, size_t len, const jb_app *caller)
{
    jb_pub_legacy lg;
    jb_ce *ces[2] = {NULL, NULL};
    char *subjects[2] = {NULL, NULL};
    char *types[2] = {NULL, NULL}; /* as sent, for the metric */
    char ids[2][JB_PUB_MSG_ID_LEN + 1];
    jb_err err = {{0}};
    jb_ce_header *h = NULL;
    size_t nh = 0, n = 1;
    const jb_app *known = NULL;
    if (jb_pub_legacy_parse(app, app_len, (const char *)body, len, &lg) != JB_OK) {
        legacy_error(t, req, start, 500, "out of memory");
        return;
    }
    if (lg.status != 0) {
        send_reply(t, req, R_LEGACY, evhttp_request_get_command(req), start,
                   (reply){.code = lg.status,
                           .ctype = "application/json",
                           .body = lg.err_body,
                           .len = lg.err_len});
        jb_pub_legacy_free(&lg);
        return;
    }
    ces[0] = lg.ce;
    lg.ce = NULL;
    if (caller != NULL && !check_events(t, req, R_LEGACY, start, caller, ces, 1))
        goto done;
    /* The application segment becomes the source: it must be a URI reference. */
    jb_status rc = jb_ce_validate(ces[0], &err);
    if (rc == JB_OK)
        rc = collect_headers(req, &h, &nh);
    if (rc == JB_OK)
        rc = jb_pub_apply_tracing(ces[0], h, nh, &err);
    /* A known application's application-type label replaces its name in both copies
     * (ce-source stays as sent). */
    known = jb_app_registry_find(t->p->apps, app, app_len);
    const char *cname = known ? jb_app_clean_name(known) : app;
    size_t clen = known ? strlen(cname) : app_len;
    /* The prefixed copy is built from the type as received, before enrichment. */
    if (rc == JB_OK) {
        rc = jb_pub_legacy_prefixed_copy(&t->p->names, ces[0], cname, clen, &ces[1], &subjects[1],
                                         &err);
        if (rc == JB_OK)
            n = 2;
        else if (rc == JB_ERR_NOT_FOUND)
            rc = JB_OK;
    }
    /* The metric counts the event once, with "<event-type>.<version>" as sent. */
    if (rc == JB_OK && (types[0] = strdup(jb_ce_get(ces[0], "type", NULL))) == NULL)
        rc = JB_ERR_NOMEM;
    if (rc == JB_OK)
        rc = known ? pub_enrich_as_source(&t->p->names, ces[0], cname, clen, &subjects[0], &err)
                   : jb_pub_enrich(&t->p->names, ces[0], &subjects[0], &err);
    if (rc != JB_OK) {
        legacy_error(t, req, start, rc == JB_ERR_NOMEM ? 500 : 400,
                     err.msg[0] ? err.msg : jb_status_str(rc));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t sl = 0, il = 0;
        const char *src = jb_ce_get(ces[i], "source", &sl);
        const char *id = jb_ce_get(ces[i], "id", &il);
        jb_pub_msg_id(src, sl, id, il, subjects[i], ids[i]);
    }
    pub_req *pr = pub_req_new(t, req, R_LEGACY, n, start);
    if (pr == NULL) {
        legacy_error(t, req, start, 500, "out of memory");
        goto done;
    }
    snprintf(pr->id, sizeof(pr->id), "%s", lg.id);
    submit(t, pr, ces, subjects, ids, types);
done:
    for (size_t i = 0; i < 2; i++) {
        jb_ce_destroy(ces[i]);
        free(subjects[i]);
        free(types[i]);
    }
    free(h);
    jb_app_release(known);
    jb_pub_legacy_free(&lg);
}

static void handle_subscribed(pub_thread *t, struct evhttp_request *req, int64_t start,
                              const char *app, size_t app_len)
{
    if (app_len >= PUB_APP_MAX) {
        send_reply(t, req, R_SUBSCRIBED, evhttp_request_get_command(req), start,
                   (reply){.code = 200,
                           .ctype = "application/json",
                           .body = "{\"eventsInfo\":[]}",
                           .len = 17});
        return;
    }
    pub_req *pr = pub_req_new(t, req, R_SUBSCRIBED, 0, start);
    if (pr == NULL) {
        send_text(t, req, R_SUBSCRIBED, start, 500, "out of memory");
        return;
    }
    if (!pub_ctl_submit(t->p, t, pr, app, app_len)) {
        pub_req_free(pr);
        reject(t, req, R_SUBSCRIBED, start, "control_queue_full", 503,
               "publisher busy, retry later");
        return;
    }
    t->pending_ctl++;
}

static bool authorize(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                      const char *app, size_t app_len, const jb_app **caller);
static void handle_body(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                        const char *app, size_t app_len, const jb_app *caller);

static void on_request(struct evhttp_request *req, void *arg)
{
    pub_thread *t = arg;
    int64_t start = jb_now_monotonic_ns();
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?#");
    const char *app = NULL;
    size_t app_len = 0;
    jb_pub_route r = jb_pub_match_route(uri, plen, &app, &app_len);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool is_get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    bool post_route = jb_pub_route_is_ce(r) || r == R_LEGACY;
    if (r == R_NONE) {
        send_text(t, req, R_NONE, start, 404, "not found");
        return;
    }
    if (post_route ? m != EVHTTP_REQ_POST : !is_get) {
        send_reply(t, req, r, m, start,
                   (reply){.code = 405,
                           .body = "method not allowed",
                           .len = 18,
                           .allow = post_route ? "POST" : "GET, HEAD"});
        return;
    }
    if (r == R_HEALTHZ) {
        send_text(t, req, r, start, 200, "ok");
        return;
    }
    if (r == R_READYZ) {
        bool ok = jb_pub_ready(t->p);
        send_text(t, req, r, start, ok ? 200 : 503, ok ? "ready" : "not ready");
        return;
    }
    const jb_app *caller = NULL;
    if (t->p->authz != NULL && !authorize(t, req, r, start, app, app_len, &caller))
        return;
    if (r == R_SUBSCRIBED) {
        handle_subscribed(t, req, start, app, app_len);
        jb_app_release(caller);
        return;
    }
    handle_body(t, req, r, start, app, app_len, caller);
    jb_app_release(caller);
}

/* INGRESS_AUTH=required: identifies the caller and checks the path's application.
 * False when the request was answered (401, 403, 404 or 503). */
static bool authorize(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                      const char *app, size_t app_len, const jb_app **caller)
{
    pub_authz *z = t->p->authz;
    const jb_app *a = NULL;
    int code = pub_authz_identify(z, req, &a);
    if (code == 0 && r != R_PUBLISH) {
        code = pub_authz_path(z, a, app, app_len);
        if (code == 403) {
            pub_authz_count(z, a, "forbidden");
            send_reply(t, req, r, evhttp_request_get_command(req), start,
                       (reply){.code = 403,
                               .ctype = "application/json",
                               .body = PUB_AUTHZ_PATH_BODY,
                               .len = strlen(PUB_AUTHZ_PATH_BODY)});
            jb_app_release(a);
            return false;
        }
        if (code != 0)
            jb_app_release(a);
    }
    if (code == 0) {
        *caller = a;
        return true;
    }
    pub_authz_count(z, NULL, code == 401 ? "unauthenticated" : "unknown_application");
    const char *text = code == 401   ? "missing or invalid credentials"
                       : code == 404 ? "unknown application"
                                     : "application registry not loaded yet, retry later";
    send_reply(t, req, r, evhttp_request_get_command(req), start,
               (reply){.code = code,
                       .body = text,
                       .len = strlen(text),
                       .retry_after = code == 503,
                       .www_auth = code == 401 ? "Bearer" : NULL});
    return false;
}

/* POST /publish and /{application}/v1/events: the body, then its handler. */
static void handle_body(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                        const char *app, size_t app_len, const jb_app *caller)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if ((int64_t)len > t->p->cfg->max_request_size) {
        const char *lb = jb_pub_legacy_too_large_body();
        send_reply(t, req, r, m, start,
                   (reply){.code = 413,
                           .ctype = r == R_LEGACY ? "application/json" : NULL,
                           .body = r == R_LEGACY ? lb : "request body too large",
                           .len = r == R_LEGACY ? strlen(lb) : 22});
        return;
    }
    const uint8_t *body = len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (body == NULL) {
        send_text(t, req, r, start, 500, "out of memory");
        return;
    }
    if (jb_pub_route_is_ce(r))
        handle_publish(t, req, r, start, body, len, caller);
    else
        handle_legacy(t, req, start, app, app_len, body, len, caller);
}

/* ------------------------------------------------------------- lifecycle */

static void *thread_main(void *arg)
{
    pub_thread *t = arg;
    event_base_dispatch(t->base);
    /* Nothing more is read from the queue: later acks are freed by cq_post. */
    pthread_mutex_lock(&t->qmu);
    t->closed = true;
    for (; t->qlen > 0; t->qlen--, t->qhead = (t->qhead + 1) % t->qcap) {
        natsMsg_Destroy(t->q[t->qhead].msg);
        free(t->q[t->qhead].text);
    }
    pthread_mutex_unlock(&t->qmu);
    return NULL;
}

static jb_status setup_http(pub_thread *t, int listen_fd, jb_err *err)
{
    const jb_cfg *cfg = t->p->cfg;
    t->http = evhttp_new(t->base);
    if (t->http == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "evhttp_new failed");
    /* libevent's 413 has an HTML body; leaving room above MAX_REQUEST_SIZE lets the
     * common "slightly too large" case reach us for Kyma's JSON 413, while memory
     * per connection stays bounded. */
    evhttp_set_max_body_size(t->http, (ev_ssize_t)(cfg->max_request_size * 2 + 1024));
    evhttp_set_max_headers_size(t->http, (ev_ssize_t)cfg->max_header_size);
    /* libevent 2.1 has one timeout per connection for reading a request and for
     * waiting on the next one: the stricter of the two keys applies to both. */
    int64_t to = cfg->http_read_timeout_ms;
    if (cfg->http_idle_timeout_ms > 0 && cfg->http_idle_timeout_ms < to)
        to = cfg->http_idle_timeout_ms;
    struct timeval tv = {(time_t)(to / 1000), (suseconds_t)(to % 1000) * 1000};
    evhttp_set_timeout_tv(t->http, &tv);
    evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(t->http, "text/plain; charset=utf-8");
    evhttp_set_flags(t->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(t->http, on_request, t);
    evhttp_set_bevcb(t->http, on_new_bev, t);
    t->bound = evhttp_accept_socket_with_handle(t->http, listen_fd);
    if (t->bound == NULL) {
        close(listen_fd);
        return jb_err_set(err, JB_ERR_IO, "cannot accept on the ingress socket");
    }
    return JB_OK;
}

static jb_status setup_js(pub_thread *t, jb_err *err)
{
    const jb_cfg *cfg = t->p->cfg;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = cfg->request_timeout_ms;
    /* Our window is the limit; nats.c's own stall must never trigger first. */
    jo.PublishAsync.MaxPending = (int64_t)cfg->publish_max_in_flight * 2 + 16;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = t;
    natsStatus s = natsConnection_JetStream(&t->js, t->p->nc, &jo);
    if (s != NATS_OK)
        return jb_err_set(err, JB_ERR_NATS, "JetStream context: %s", natsStatus_GetText(s));
    jsPubOptions_Init(&t->popts);
    t->popts.MaxWait = cfg->request_timeout_ms;
    return JB_OK;
}

static jb_status setup_loop(pub_thread *t, jb_err *err)
{
    t->base = event_base_new();
    if (t->base == NULL || event_base_priority_init(t->base, 2) != 0)
        return jb_err_set(err, JB_ERR_NOMEM, "event_base_new failed");
    t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->efd < 0)
        return jb_err_set(err, JB_ERR_IO, "eventfd: %s", strerror(errno));
    t->wake_ev = event_new(t->base, t->efd, EV_READ | EV_PERSIST, on_wake, t);
    t->tick_ev = event_new(t->base, -1, EV_PERSIST, on_tick, t);
    t->conn_ev = event_new(t->base, -1, 0, on_new_conns, t);
    if (t->wake_ev == NULL || t->tick_ev == NULL || t->conn_ev == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "event_new failed");
    event_priority_set(t->conn_ev, 0);
    struct timeval tick = {0, 200 * 1000};
    event_add(t->wake_ev, NULL);
    event_add(t->tick_ev, &tick);
    return JB_OK;
}

jb_status pub_thread_create(jb_pub *p, int idx, int listen_fd, pub_thread **out, jb_err *err)
{
    pub_thread *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        close(listen_fd);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    t->p = p;
    t->idx = idx;
    t->efd = -1;
    pthread_mutex_init(&t->qmu, NULL);
    size_t max = (size_t)p->cfg->publish_max_in_flight;
    t->qcap = max + PUB_CTL_JOBS_MAX + 16;
    t->q = calloc(t->qcap, sizeof(*t->q));
    size_t cap = 16;
    while (cap < 2 * max + 2)
        cap *= 2;
    t->map = calloc(cap, sizeof(*t->map));
    t->map_mask = cap - 1;
    t->new_bevs_cap = (size_t)p->conns_per_thread + 64;
    t->new_bevs = calloc(t->new_bevs_cap, sizeof(*t->new_bevs));
    jb_status rc = JB_ERR_NOMEM;
    if (t->q == NULL || t->map == NULL || t->new_bevs == NULL) {
        close(listen_fd);
        jb_err_set(err, rc, "out of memory");
        goto fail;
    }
    if ((rc = setup_loop(t, err)) != JB_OK) {
        close(listen_fd);
        goto fail;
    }
    if ((rc = setup_http(t, listen_fd, err)) != JB_OK || (rc = setup_js(t, err)) != JB_OK)
        goto fail;
    *out = t;
    return JB_OK;
fail:
    pub_thread_destroy(t);
    return rc;
}

jb_status pub_thread_start(pub_thread *t)
{
    if (pthread_create(&t->tid, NULL, thread_main, t) != 0)
        return JB_ERR_IO;
    t->started = true;
    return JB_OK;
}

void pub_thread_request_stop(pub_thread *t)
{
    cq_post(t, (cq_entry){.kind = CQ_STOP});
}

void pub_thread_join(pub_thread *t)
{
    if (t->started)
        pthread_join(t->tid, NULL);
    t->started = false;
}

void pub_thread_destroy(pub_thread *t)
{
    if (t == NULL)
        return;
    /* Requests still waiting (stop deadline passed) are dropped with their
     * connections by evhttp_free; their acks find no slot. */
    for (size_t i = 0; t->map != NULL && i <= t->map_mask; i++) {
        ack_slot s;
        if (t->map[i].key != NULL && map_take(t, t->map[i].key, &s)) {
            window_release(t->p, 1);
            if (--s.pr->remaining == 0)
                pub_req_free(s.pr);
            i--; /* backward shift may have moved an entry into i */
        }
    }
    if (t->http != NULL)
        evhttp_free(t->http);
    if (t->wake_ev != NULL)
        event_free(t->wake_ev);
    if (t->tick_ev != NULL)
        event_free(t->tick_ev);
    if (t->conn_ev != NULL)
        event_free(t->conn_ev);
    if (t->base != NULL)
        event_base_free(t->base);
    if (t->js != NULL)
        jsCtx_Destroy(t->js);
    if (t->efd >= 0)
        close(t->efd);
    free(t->q);
    free(t->map);
    free(t->new_bevs);
    pthread_mutex_destroy(&t->qmu);
    free(t);
}

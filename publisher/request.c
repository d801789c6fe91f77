/*
 * Publishing and the requests waiting for it (see pub_thread.h): a request's
 * messages go to JetStream asynchronously, each tracked in the thread's ack map;
 * the request is answered when its last message is settled (acknowledged,
 * refused, timed out or failed by a disconnect), with the status mapping of
 * docs/publisher.md and the request metrics.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "publisher/pub_thread.h"

/* Metric path labels: route templates, never raw paths. */
static const char *const route_label[] = {
    "unknown",  "/publish", "/{application}/v1/events", "/{application}/v1/events/subscribed",
    "/healthz", "/readyz",  "/{application}/events",    "/{application}/v2/events",
};

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

/* The status as a metric label: three digits (100..999, which is all evhttp
 * sends), without snprintf, which cost ~650 instructions per call here. */
static void code_label(int code, char out[8])
{
    if (code < 100 || code > 999) {
        snprintf(out, 8, "%d", code);
        return;
    }
    out[0] = (char)('0' + code / 100);
    out[1] = (char)('0' + code / 10 % 10);
    out[2] = (char)('0' + code % 10);
    out[3] = '\0';
}

/* evhttp formats a Date header for every HTTP/1.1 answer (gmtime + snprintf,
 * ~3k instructions) unless one is there: the thread formats it once a second. */
static const char *date_header(pub_thread *t)
{
    time_t now = time(NULL);
    if (now != t->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        evutil_date_rfc1123(t->date, sizeof(t->date), &tm);
        t->date_sec = now;
    }
    return t->date;
}

void pub_send_reply(pub_thread *t, struct evhttp_request *req, jb_pub_route r,
                    enum evhttp_cmd_type method, int64_t start_ns, reply rp)
{
    const jb_pub *p = t->p;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Date", date_header(t));
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
    code_label(rp.code, code);
    const char *labels[] = {code, method_name(method), route_label[r]};
    jb_metric_add(p->m.req_total, labels, 1);
    jb_metric_observe(p->m.req_dur, labels, (double)(jb_now_monotonic_ns() - start_ns) / 1e9);
}

void pub_send_text(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                   int code, const char *text)
{
    pub_send_reply(t, req, r, evhttp_request_get_command(req), start,
                   (reply){.code = code, .body = text, .len = strlen(text)});
}

void pub_reject(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                const char *reason, int code, const char *text)
{
    const char *labels[] = {reason};
    jb_metric_add(t->p->m.rejected, labels, 1);
    bool legacy = r == R_LEGACY;
    char body[256];
    if (legacy)
        snprintf(body, sizeof(body), "{\"status\":%d,\"message\":\"%s\"}", code, text);
    pub_send_reply(t, req, r, evhttp_request_get_command(req), start,
                   (reply){.code = code,
                           .ctype = legacy ? "application/json" : NULL,
                           .body = legacy ? body : text,
                           .len = strlen(legacy ? body : text),
                           .retry_after = code == 503});
}

/* ------------------------------------------------------------- requests */

pub_req *pub_req_new(pub_thread *t, struct evhttp_request *req, jb_pub_route r, size_t n,
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

void pub_req_free(pub_req *pr)
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
    pub_send_reply(t, pr->req, pr->r, pr->method, pr->start_ns, rp);
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

void pub_submit(pub_thread *t, pub_req *pr, jb_ce *const *ces, char *const *subjects,
                char (*ids)[JB_PUB_MSG_ID_LEN + 1], char **sent_types)
{
    jb_pub *p = t->p;
    for (size_t i = 0; i < pr->n; i++)
        keep_labels(pr, i, ces[i], &sent_types[i]);
    if (!pub_js_connected(t)) {
        pub_reject(t, pr->req, pr->r, pr->start_ns, "not_connected", 502, "not connected to NATS");
        pub_req_free(pr);
        return;
    }
    if (pr->n > (size_t)p->cfg->publish_max_in_flight) {
        /* Waiting cannot help: say so instead of a 503 the client would retry forever. */
        char msg[160];
        snprintf(msg, sizeof(msg), "batch of %zu events exceeds PUBLISH_MAX_IN_FLIGHT (%d)", pr->n,
                 p->cfg->publish_max_in_flight);
        pub_reject(t, pr->req, pr->r, pr->start_ns, "batch_too_large", 413, msg);
        pub_req_free(pr);
        return;
    }
    if (!window_acquire(p, (int)pr->n)) {
        pub_reject(t, pr->req, pr->r, pr->start_ns, "in_flight_full", 503,
                   "publisher busy: in-flight window full, retry later");
        pub_req_free(pr);
        return;
    }
    /* Encode every event before publishing any, so that an event NATS headers
     * cannot carry is a 400 with nothing stored, as for any other invalid event.
     * Message i is sequence seq0 + i: its ack comes back to <inbox><seq>. */
    natsMsg *msg1[1] = {NULL};
    natsMsg **msgs = pr->n == 1 ? msg1 : calloc(pr->n, sizeof(*msgs));
    if (msgs == NULL) {
        window_release(p, (int)pr->n);
        pub_reject(t, pr->req, pr->r, pr->start_ns, "internal", 500, "out of memory");
        pub_req_free(pr);
        return;
    }
    uint64_t seq0 = t->next_seq + 1;
    t->next_seq += pr->n;
    char rsubj[PUB_INBOX_MAX + 24];
    for (size_t i = 0; i < pr->n; i++) {
        pub_js_reply(t, seq0 + i, rsubj);
        jb_status rc =
            jb_ce_to_nats_reply(ces[i], subjects[i], rsubj, ids[i][0] ? ids[i] : NULL, &msgs[i]);
        if (rc != JB_OK) {
            for (size_t k = 0; k < i; k++)
                jb_nats_msg_free(msgs[k]);
            if (msgs != msg1)
                free(msgs);
            window_release(p, (int)pr->n);
            bool bad = rc == JB_ERR_UNSUPPORTED || rc == JB_ERR_INVALID;
            pub_reject(t, pr->req, pr->r, pr->start_ns, bad ? "unencodable" : "internal",
                       bad ? 400 : 500,
                       bad ? "event cannot be stored: two attribute names collide in NATS headers"
                           : jb_status_str(rc));
            pub_req_free(pr);
            return;
        }
    }
    int64_t now = jb_now_monotonic_ns();
    for (size_t i = 0; i < pr->n; i++) {
        const void *key = (const void *)(uintptr_t)(seq0 + i);
        /* In the map before it is published; the ack is read on this loop, so it
         * cannot arrive before this function returns. The map holds the whole
         * window, so "full" only guards a broken bound. */
        if (!pub_ackmap_put(t->acks, key, pr, i, now)) {
            jb_nats_msg_free(msgs[i]);
            record_outcome(pr, i, 503, strdup("publisher busy: in-flight window full"));
            window_release(p, 1);
            continue;
        }
        /* nats.c copies the message into its write buffer: it is ours again, and
         * freed here rather than by nats.c's collector thread (jb_nats_msg_free). */
        natsStatus s = natsConnection_PublishMsg(t->nc, msgs[i]);
        jb_nats_msg_free(msgs[i]);
        if (s != NATS_OK) {
            pub_ack_slot gone;
            pub_ackmap_take(t->acks, key, &gone);
            record_outcome(pr, i, jb_pub_ack_status(s, 0, NULL), strdup(natsStatus_GetText(s)));
            window_release(p, 1);
            continue;
        }
        pr->remaining++;
    }
    if (msgs != msg1)
        free(msgs);
    if (pr->remaining == 0)
        pub_req_finish(pr);
}

/* ------------------------------------------------------ completions */

void pub_complete_ack(pub_thread *t, uint64_t seq, int status, char *text)
{
    jb_pub *p = t->p;
    pub_ack_slot s;
    if (!pub_ackmap_take(t->acks, (const void *)(uintptr_t)seq, &s)) {
        /* Already failed by the disconnect sweep or timed out: nothing waits. */
        free(text);
        return;
    }
    pub_req *pr = s.req;
    window_release(p, 1);
    char code[8];
    code_label(status, code);
    const char *bl[] = {code, p->dest_service};
    jb_metric_observe(p->m.backend_dur, bl, (double)(jb_now_monotonic_ns() - s.t0) / 1e6);
    /* Kyma's labels: the type as its producer sent it, once per event. */
    if (pr->mtype[s.idx] != NULL && pr->msource[s.idx] != NULL) {
        const char *tl[] = {pr->mtype[s.idx], pr->msource[s.idx], code};
        jb_metric_add(p->m.type_pub, tl, 1);
    }
    record_outcome(pr, s.idx, status, text);
    if (--pr->remaining == 0)
        pub_req_finish(pr);
}

void pub_complete_ctl(pub_thread *t, pub_req *pr, int status, char *body, size_t len)
{
    t->pending_ctl--;
    pub_send_reply(t, pr->req, pr->r, pr->method, pr->start_ns,
                   (reply){.code = status, .ctype = "application/json", .body = body, .len = len});
    free(body);
    pub_req_free(pr);
}

/* Settles the waiting message s with code and text (taken). */
static void settle(pub_thread *t, const pub_ack_slot *s, int code, char *text)
{
    pub_req *pr = s->req;
    window_release(t->p, 1);
    record_outcome(pr, s->idx, code, text);
    if (--pr->remaining == 0)
        pub_req_finish(pr);
}

void pub_fail_in_flight(pub_thread *t, int code, const char *text)
{
    /* An ack that still comes finds no entry and is dropped. A message nats.c
     * kept in its reconnect buffer may still be stored: publishing is idempotent
     * (Nats-Msg-Id), so the client's retry is safe either way. */
    pub_ack_slot s;
    while (pub_ackmap_take_any(t->acks, &s))
        settle(t, &s, code, strdup(text));
}

void pub_expire_in_flight(pub_thread *t, int64_t before_ns)
{
    /* Sequences are handed out in publishing order, so the oldest waiting message
     * has the lowest sequence still in the map: walk up from the last one known,
     * each sequence at most once over the thread's life, and stop at the first
     * message young enough (scanning the whole map every tick cost ~900
     * instructions per request at the default window). */
    if (pub_ackmap_count(t->acks) == 0) {
        t->oldest_seq = t->next_seq + 1;
        return;
    }
    for (; t->oldest_seq <= t->next_seq; t->oldest_seq++) {
        const void *key = (const void *)(uintptr_t)t->oldest_seq;
        pub_ack_slot s;
        if (!pub_ackmap_get(t->acks, key, &s))
            continue;
        if (s.t0 >= before_ns)
            break;
        pub_ackmap_take(t->acks, key, &s);
        settle(t, &s, jb_pub_ack_status(NATS_TIMEOUT, 0, NULL),
               strdup(natsStatus_GetText(NATS_TIMEOUT)));
    }
}

void pub_drop_in_flight(pub_thread *t)
{
    pub_ack_slot s;
    while (t->acks != NULL && pub_ackmap_take_any(t->acks, &s)) {
        pub_req *pr = s.req;
        window_release(t->p, 1);
        if (--pr->remaining == 0)
            pub_req_free(pr);
    }
}

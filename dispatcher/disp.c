/* One loop of the dispatcher: takes the messages its pull requests brought,
 * delivers each by HTTP, and settles it with an ack, a delayed NAK or a dead
 * letter. A process runs DISPATCH_LOOPS of these (process.c), each on its own
 * thread with its own share of the consumers. */
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatcher/disp_core.h"
#include "dispatcher/disp_list.h"
#include "proto/jb_ce.h"

typedef enum stage { ST_SINK, ST_DLSINK, ST_DLQ } stage;

/* In-flight records are reused: a finished one waits for the next delivery (at
 * most INFLIGHT_POOL per loop), and keeps its sink URL (when shorter than
 * INFLIGHT_SINK) and its request's header block (when it fits in INFLIGHT_HBUF)
 * inside itself, so a delivery of a typical event allocates none of the three. */
#define INFLIGHT_POOL 64
#define INFLIGHT_SINK 256
#define INFLIGHT_HBUF 1024

/* Loop only, except what jb_mailbox guards. */
struct jb_dloop {
    const jb_dshared *sh;
    int idx;
    int max; /* this loop's share of DISPATCHER_MAX_CONCURRENT */
    const jb_cfg *cfg;
    struct event_base *base;
    disp_metrics m;      /* a copy of sh->m */
    natsConnection *nc;  /* the host's: flushed after dead letters */
    natsConnection *lnc; /* the loop's own: inbox, pull requests, acks, NAKs */
    jb_nats_loop lnc_loop;
    struct event *finish_ev; /* stopping: waits for the inbox drain and the last write */
    int64_t finish_deadline_ns;
    jb_dhttp *http;
    jb_dauth *auth; /* sink credentials: secret files and OAuth2 tokens */
    jb_mailbox *mb; /* to the loop: consumers, worker replies */
    jb_dtable table;
    jb_dpull *pull;
    jb_dinfo *info;
    jb_dacks acks;   /* acks sent at the end of the loop turn */
    jb_dgrave grave; /* finished messages, destroyed in batches */
    struct event *info_ev;
    struct event *info_soon_ev; /* a pass shortly after new consumers came */
    jb_dlist inflight;          /* of inflight.link */
    size_t ninflight;
    inflight *pool; /* finished records for reuse (pool_next), at most INFLIGHT_POOL */
    size_t npool;
    /* The in-flight gauge's change not applied yet: once per loop turn (gauge_ev). */
    int64_t gauge_delta;
    struct event *gauge_ev;
    /* The deliveries that may outlive AckWait (+WPI every AckWait/2), in the order
     * they were armed: with one period for all, that is deadline order. One timer,
     * for the first. */
    jb_dlist wpi; /* of inflight.wpi_link */
    struct event *wpi_ev;
    bool stopping;
    bool finished;
    struct event *grace_ev;
    struct event *status_ev;
    void (*done)(void *ud);
    void *done_ud;
    uint64_t rng;
};

struct inflight {
    jb_dloop *d;
    dconsumer *c;
    jb_dlink link; /* on d's in-flight list */
    natsMsg *msg;
    jb_ce *ce; /* NULL for a poison message */
    jb_dreq req;
    jb_dhttp_req *http;
    jb_dlink wpi_link; /* on d's +WPI list when wpi_due_ns > 0 */
    int64_t wpi_due_ns;
    stage stage;
    uint64_t attempt;
    jb_sub_delivery delivery; /* a snapshot: settings may change meanwhile */
    char *sink;
    char *shown;         /* the sink without userinfo: for metrics, logs and dead letters */
    bool refused;        /* the SSRF guard refused the sink */
    uint64_t token_gen;  /* the OAuth2 token sent, 0: none */
    jb_dauth_wait *wait; /* waiting for its credentials (sinkauth.c) */
    /* the dead letter being made */
    int code;
    char *errbody;
    size_t errbody_len;
    inflight *pool_next; /* on d's pool */
    /* Not cleared when the record is reused: written before they are read. */
    char sink_buf[INFLIGHT_SINK];              /* the sink, when it fits */
    _Alignas(void *) char hbuf[INFLIGHT_HBUF]; /* the request's header block, when it fits */
};

typedef enum settle { SETTLE_ACK, SETTLE_NAK, SETTLE_NONE } settle;

static void deliver(jb_dloop *d, dconsumer *c, natsMsg *msg, uint64_t attempt);
static void info_soon(jb_dloop *d);
static void dead_letter(inflight *f, int code, const char *body, size_t len);
static void check_stopped(jb_dloop *d);

static uint64_t rnd64(jb_dloop *d)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------ metrics */

static void count_delivery(inflight *f, int status, double seconds)
{
    jb_dloop *d = f->d;
    if (d->m.delivery == NULL)
        return;
    char code[16];
    jb_disp_status_text(status, code);
    const jb_sub_consumer *i = &f->c->info;
    const char *labels[] = {i->name, i->ns, i->clean_type, f->shown, code, i->consumer};
    jb_metric_add_observe(d->m.delivery, d->m.duration, labels, 1, seconds);
    if (status >= 200 && status < 300)
        return;
    /* The last error and when, per consumer: what `jetbridge stats` shows. */
    const char *cl[] = {i->ns, i->name, i->consumer};
    jb_metric_set(d->m.last_err_ts, cl, (double)jb_now_wall_ms() / 1000.0);
    jb_metric_set(d->m.last_err_code, cl, (double)status);
}

/* The counters a dashboard rates exist at 0 as soon as the consumer does, so its
 * panels show 0 instead of "no data" before the first event (the delivery counter
 * with response_code 200, the code of a successful delivery). */
static void zero_counters(jb_dloop *d, const jb_sub_consumer *i)
{
    char *shown = jb_redact_url(i->sink); /* the label never holds a password */
    const char *dl[] = {i->name, i->ns, i->clean_type, shown ? shown : "", "200", i->consumer};
    const char *cl[] = {i->ns, i->name, i->consumer};
    const char *rl[] = {i->ns, i->name, i->consumer, "http"};
    jb_metric_add(d->m.delivery, dl, 0);
    free(shown);
    jb_metric_add(d->m.retries, cl, 0);
    jb_metric_add(d->m.dead, rl, 0);
}

static void count_simple(jb_metric *m, inflight *f, const char *reason)
{
    if (m == NULL)
        return;
    const char *labels[] = {f->c->info.ns, f->c->info.name, f->c->info.consumer, reason};
    jb_metric_add(m, labels, 1);
}

/* jetbridge_dispatcher_in_flight is process-wide (every loop adds its own) and
 * takes a lock per change: a loop adds its net change once per loop turn, at the
 * end of the turn, instead of +1 and -1 for every event. */
static void on_gauge(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    if (d->gauge_delta != 0 && d->m.in_flight != NULL)
        jb_metric_add(d->m.in_flight, NULL, (double)d->gauge_delta);
    d->gauge_delta = 0;
}

static void gauge_add(jb_dloop *d, int64_t delta)
{
    if (d->m.in_flight == NULL)
        return;
    if (d->gauge_ev == NULL) {
        jb_metric_add(d->m.in_flight, NULL, (double)delta);
        return;
    }
    if (d->gauge_delta == 0)
        event_active(d->gauge_ev, 0, 0);
    d->gauge_delta += delta;
}

/* ---------------------------------------------------------- settling */

static void reap(jb_dloop *d, dconsumer *c);

/* ------------------------------------------------- in progress (+WPI) */

static int64_t wpi_every_ns(const jb_dloop *d)
{
    int64_t every = d->cfg->ack_wait_ms / 2;
    return (every > 0 ? every : 1) * 1000000;
}

static void wpi_unlink(jb_dloop *d, inflight *f)
{
    jb_dlist_unlink(&d->wpi, &f->wpi_link);
    f->wpi_due_ns = 0;
}

static void wpi_append(jb_dloop *d, inflight *f, int64_t due)
{
    f->wpi_due_ns = due > 0 ? due : 1;
    jb_dlist_append(&d->wpi, &f->wpi_link);
}

/* The delivery whose +WPI is due first, or NULL. */
static inflight *wpi_first(const jb_dloop *d)
{
    return d->wpi.head != NULL ? JB_DLIST_ENTRY(d->wpi.head, inflight, wpi_link) : NULL;
}

/* The timer for the first deadline (a finished first one is not taken off it: the
 * timer then comes early and sets itself again). */
static void wpi_schedule(jb_dloop *d, int64_t now)
{
    inflight *first = wpi_first(d);
    if (first == NULL)
        return;
    int64_t wait = first->wpi_due_ns - now;
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000000000), (suseconds_t)(wait % 1000000000 / 1000)};
    evtimer_add(d->wpi_ev, &tv);
}

static void on_wpi_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    int64_t now = jb_now_monotonic_ns();
    inflight *f;
    while ((f = wpi_first(d)) != NULL && f->wpi_due_ns <= now) {
        /* The sink is slower than AckWait: keep the message ours. */
        jb_disp_settle(d->lnc, f->msg, "+WPI");
        wpi_unlink(d, f);
        wpi_append(d, f, now + wpi_every_ns(d));
    }
    wpi_schedule(d, now);
}

/* c's message was settled: its slot goes back, and a message parked for want of
 * a process-wide slot may take it. */
static void release_slot(jb_dloop *d, dconsumer *c)
{
    dconsumer *owner = NULL;
    uint64_t attempt = 1;
    natsMsg *next = jb_dpull_release(d->pull, c, &owner, &attempt);
    while (next != NULL) {
        deliver(d, owner, next, attempt);
        next = jb_dpull_release(d->pull, NULL, &owner, &attempt);
    }
}

/* Open requests that ended gave slots back with nothing settled: a message parked
 * for want of a process-wide slot may take one. */
static void unpark(jb_dloop *d)
{
    if (jb_dpull_room_for_parked(d->pull))
        release_slot(d, NULL);
}

/* f is done with: what it allocated is freed, and the record itself goes back to
 * the pool (or is freed when the pool is full). */
static void inflight_put(jb_dloop *d, inflight *f)
{
    if (f->shown != f->sink)
        free(f->shown);
    if (f->sink != f->sink_buf)
        free(f->sink);
    free(f->errbody);
    if (d->npool >= INFLIGHT_POOL) {
        free(f);
        return;
    }
    f->pool_next = d->pool;
    d->pool = f;
    d->npool++;
}

static void finish(inflight *f, settle how, int64_t delay_ms)
{
    jb_dloop *d = f->d;
    dconsumer *c = f->c;
    natsStatus s = NATS_OK;
    if (how == SETTLE_ACK && jb_dacks_add(&d->acks, f->msg))
        f->msg = NULL; /* acked and destroyed at the end of this loop turn */
    else if (how == SETTLE_ACK)
        s = jb_disp_settle(d->lnc, f->msg, "+ACK");
    else if (how == SETTLE_NAK)
        s = jb_disp_nak(d->lnc, f->msg, delay_ms > 0 ? delay_ms : 1);
    if (s != NATS_OK)
        /* Not connected: JetStream redelivers after AckWait, nothing is lost. */
        jb_log(JB_LOG_WARN, "dispatcher", "cannot settle message", "consumer", c->info.consumer,
               "error", natsStatus_GetText(s), NULL);
    if (f->http != NULL)
        jb_dhttp_cancel(d->http, f->http);
    if (f->wait != NULL)
        jb_dauth_cancel(d->auth, f->wait);
    if (f->wpi_due_ns > 0)
        wpi_unlink(d, f);
    jb_dlist_unlink(&d->inflight, &f->link);
    d->ninflight--;
    gauge_add(d, -1);
    jb_dreq_free(&f->req);
    jb_ce_destroy(f->ce);
    jb_dgrave_bury(&d->grave, f->msg);
    inflight_put(d, f);

    release_slot(d, c);
    reap(d, c);
    check_stopped(d);
}

static void retry_or_dead(inflight *f, int status, int64_t retry_after_ms, const char *body,
                          size_t len)
{
    jb_dloop *d = f->d;
    if (f->attempt >= (uint64_t)f->delivery.max_deliver) {
        dead_letter(f, status, body, len);
        return;
    }
    int64_t delay =
        jb_disp_retry_delay_ms(&f->delivery, f->attempt, status, retry_after_ms, rnd64(d));
    count_simple(d->m.retries, f, NULL);
    char a[24], ms[24], st[16];
    snprintf(a, sizeof(a), "%llu", (unsigned long long)f->attempt);
    snprintf(ms, sizeof(ms), "%lld", (long long)delay);
    snprintf(st, sizeof(st), "%d", status);
    jb_log(JB_LOG_DEBUG, "dispatcher", "retry later", "consumer", f->c->info.consumer, "status", st,
           "attempt", a, "delay_ms", ms, NULL);
    finish(f, SETTLE_NAK, delay);
}

static void on_sink_done(void *ud, const jb_dhttp_result *r)
{
    inflight *f = ud;
    f->http = NULL;
    count_delivery(f, r->status, r->seconds);
    if (r->status == 0)
        jb_log(JB_LOG_DEBUG, "dispatcher", "delivery failed", "consumer", f->c->info.consumer,
               "sink", f->shown, "error", r->error, NULL);
    if (r->refused) {
        /* The destination will not become allowed by waiting: no retry. */
        jb_log(JB_LOG_WARN, "dispatcher", "sink refused", "consumer", f->c->info.consumer, "sink",
               f->shown, "error", r->error, NULL);
        f->refused = true;
        dead_letter(f, 0, r->error, strlen(r->error));
        return;
    }
    const jb_sub_auth *au = &f->c->info.auth;
    if (r->status == 401 && f->token_gen != 0 &&
        jb_dauth_unauthorized(f->d->auth, au, f->token_gen)) {
        /* The token may have been revoked before it expired: one new token, soon. */
        count_simple(f->d->m.retries, f, NULL);
        finish(f, SETTLE_NAK, 100);
        return;
    }
    switch (jb_disp_verdict_of(r->status)) {
    case JB_DISP_ACK:
        if (f->token_gen != 0)
            jb_dauth_accepted(f->d->auth, au, f->token_gen);
        finish(f, SETTLE_ACK, 0);
        return;
    case JB_DISP_RETRY:
        retry_or_dead(f, r->status, r->retry_after_ms, r->body, r->body_len);
        return;
    case JB_DISP_DEAD:
        dead_letter(f, r->status, r->body, r->body_len);
        return;
    }
}

/* f->ce as the request its sink (or dead-letter sink) receives, in f->req, with
 * the header block in f->hbuf while it fits. */
static jb_status build_request(inflight *f)
{
    return jb_dreq_build_in(f->ce, f->delivery.content_mode == JB_SUB_CONTENT_STRUCTURED, f->hbuf,
                            sizeof(f->hbuf), &f->req);
}

/* ------------------------------------------------------- dead letters */

static void on_dlq_done(jb_mail *m, void *ud);

static void publish_dead_letter(inflight *f)
{
    jb_dloop *d = f->d;
    f->stage = ST_DLQ;
    const jb_sub_consumer *i = &f->c->info;
    natsMsg *m = jb_disp_dlq_msg(f->msg, i->consumer, i->ns, i->name, f->shown, f->code, f->errbody,
                                 f->errbody_len, f->attempt);
    if (m == NULL || jb_ddlq_submit(d->sh->dlq, &m, d->mb, on_dlq_done, f) != JB_OK) {
        /* Out of memory, or the worker's queue is full: the original comes back later. */
        natsMsg_Destroy(m);
        finish(f, SETTLE_NAK, f->delivery.backoff_max_ms);
    }
}

static void on_dlsink_done(void *ud, const jb_dhttp_result *r)
{
    inflight *f = ud;
    f->http = NULL;
    char st[16];
    snprintf(st, sizeof(st), "%d", r->status);
    /* One attempt: the dead-letter stream is the record, this is a notification. */
    jb_log(r->status >= 200 && r->status < 300 ? JB_LOG_DEBUG : JB_LOG_WARN, "dispatcher",
           "dead-letter sink answered", "consumer", f->c->info.consumer, "status", st, "error",
           r->error, NULL);
    publish_dead_letter(f);
}

static bool send_to_dlsink(inflight *f)
{
    jb_dloop *d = f->d;
    if (f->delivery.dead_letter_sink[0] == '\0' || f->ce == NULL)
        return false;
    char code[16], att[24];
    char *b64 = NULL;
    size_t b64len = 0;
    snprintf(code, sizeof(code), "%d", f->code);
    snprintf(att, sizeof(att), "%llu", (unsigned long long)f->attempt);
    if (jb_base64_encode((const uint8_t *)f->errbody, f->errbody_len, &b64, &b64len) != JB_OK)
        return false;
    jb_ce_set_str(f->ce, "errordest", f->shown);
    jb_ce_set_str(f->ce, "errorcode", code);
    jb_ce_set(f->ce, "errordata", b64, b64len);
    jb_ce_set_str(f->ce, "errorattempts", att);
    free(b64);
    jb_dreq_free(&f->req);
    if (build_request(f) != JB_OK)
        return false;
    f->stage = ST_DLSINK;
    return jb_dhttp_post(d->http, f->delivery.dead_letter_sink, f->req.headers, f->req.data,
                         f->req.len, f->delivery.timeout_ms, on_dlsink_done, f, &f->http) == JB_OK;
}

static void dead_letter(inflight *f, int code, const char *body, size_t len)
{
    f->code = code;
    free(f->errbody);
    f->errbody = NULL;
    f->errbody_len = 0;
    if (len > 0) {
        f->errbody = malloc(len);
        if (f->errbody != NULL) {
            memcpy(f->errbody, body, len);
            f->errbody_len = len;
        }
    }
    count_simple(f->d->m.dead, f,
                 f->refused ? "refused"
                            : (code == 0 ? "transport" : (f->ce == NULL ? "poison" : "http")));
    char st[16];
    snprintf(st, sizeof(st), "%d", code);
    /* An operator looks for the subscription and the event, not the consumer hash. */
    char sub[512], id[256] = "";
    snprintf(sub, sizeof(sub), "%s/%s", f->c->info.ns, f->c->info.name);
    size_t idlen = 0;
    const char *idv = f->ce != NULL ? jb_ce_get(f->ce, "id", &idlen) : NULL;
    if (idv != NULL)
        snprintf(id, sizeof(id), "%.*s", (int)(idlen < sizeof(id) ? idlen : sizeof(id) - 1), idv);
    jb_log(JB_LOG_WARN, "dispatcher", "dead letter", "subscription", sub, "id", id, "sink",
           f->shown, "code", st, "consumer", f->c->info.consumer, NULL);
    if (!send_to_dlsink(f))
        publish_dead_letter(f);
}

/* The DLQ worker's answer, on the loop: val 1 when the dead letter is stored. */
static void on_dlq_done(jb_mail *m, void *ud)
{
    inflight *f = ud;
    bool ok = m->val != 0;
    /* Stored in the dead-letter stream: now the original may go. When the publish
     * failed, the original stays and comes back after a backoff. */
    if (ok)
        finish(f, SETTLE_ACK, 0);
    else
        finish(f, SETTLE_NAK, f->delivery.backoff_max_ms);
}

/* ------------------------------------------------------------ delivery */

/* attempt: the delivery count pull.c parsed from the reply subject. */
static inflight *inflight_new(jb_dloop *d, dconsumer *c, natsMsg *msg, uint64_t attempt)
{
    inflight *f = d->pool;
    if (f != NULL) {
        d->pool = f->pool_next;
        d->npool--;
    } else if ((f = malloc(sizeof(*f))) == NULL) {
        return NULL;
    }
    memset(f, 0, offsetof(inflight, sink_buf));
    size_t sl = strlen(c->info.sink);
    f->sink =
        sl < sizeof(f->sink_buf) ? memcpy(f->sink_buf, c->info.sink, sl + 1) : strdup(c->info.sink);
    /* Without an '@' there is no userinfo to hide: the redacted form is the sink
     * itself, not copied again (inflight_put frees it once). */
    f->shown =
        f->sink != NULL && strchr(f->sink, '@') == NULL ? f->sink : jb_redact_url(c->info.sink);
    if (f->sink == NULL || f->shown == NULL) {
        inflight_put(d, f);
        return NULL;
    }
    f->d = d;
    f->c = c;
    f->msg = msg;
    f->delivery = c->info.delivery;
    f->attempt = attempt;
    jb_dlist_append(&d->inflight, &f->link);
    d->ninflight++;
    gauge_add(d, 1);
    return f;
}

static void arm_progress(inflight *f)
{
    jb_dloop *d = f->d;
    int64_t ack_wait = d->cfg->ack_wait_ms;
    /* Only a request that may outlive AckWait needs it. */
    if (f->delivery.timeout_ms < ack_wait / 2)
        return;
    int64_t now = jb_now_monotonic_ns();
    bool first = d->wpi.head == NULL;
    wpi_append(d, f, now + wpi_every_ns(d));
    if (first && !evtimer_pending(d->wpi_ev, NULL))
        wpi_schedule(d, now);
}

static void send_to_sink(inflight *f);

/* The credentials arrived (or their fetch failed): carry on with the delivery. */
static void on_credentials(void *ud)
{
    inflight *f = ud;
    f->wait = NULL;
    send_to_sink(f);
}

/* The sink's credentials and signature. When they cannot be had (a file or Secret
 * missing, the token endpoint failing), the delivery is a retryable failure; while
 * they are being fetched, the delivery waits (on_credentials resumes it) and every
 * other delivery goes on. 1: added; 0: waiting; -1: settled. */
static int add_credentials(inflight *f)
{
    size_t idlen = 0;
    const char *id = jb_ce_get(f->ce, "id", &idlen);
    char msg_id[256];
    snprintf(msg_id, sizeof(msg_id), "%.*s", (int)(idlen < 255 ? idlen : 255), id ? id : "");
    jb_err err = {{0}};
    if (jb_dauth_prepare(f->d->auth, f->c->info.ns, &f->c->info.auth, msg_id, f->req.data,
                         f->req.len, &f->req.headers, &f->token_gen, on_credentials, f, &f->wait,
                         &err) == JB_OK)
        return f->wait != NULL ? 0 : 1;
    jb_log(JB_LOG_WARN, "dispatcher", "sink credentials unavailable", "consumer",
           f->c->info.consumer, "error", err.msg, NULL);
    retry_or_dead(f, 0, -1, err.msg, strlen(err.msg));
    return -1;
}

/* Adds the credentials and posts f's request to its sink. */
static void send_to_sink(inflight *f)
{
    jb_dloop *d = f->d;
    dconsumer *c = f->c;
    if (jb_sub_auth_any(&c->info.auth)) {
        int got = add_credentials(f);
        if (got <= 0)
            return; /* waiting, or settled by add_credentials */
    }
    jb_dhttp_client_cert(d->http, c->info.auth.client_cert_file, c->info.auth.client_key_file);
    jb_status st = jb_dhttp_post(d->http, f->sink, f->req.headers, f->req.data, f->req.len,
                                 f->delivery.timeout_ms, on_sink_done, f, &f->http);
    if (st != JB_OK) {
        finish(f, SETTLE_NAK, 1000);
        return;
    }
    f->stage = ST_SINK;
    if (f->wpi_due_ns == 0)
        arm_progress(f);
}

static void deliver(jb_dloop *d, dconsumer *c, natsMsg *msg, uint64_t attempt)
{
    inflight *f = inflight_new(d, c, msg, attempt);
    if (f == NULL) {
        jb_disp_nak(d->lnc, msg, 1000);
        jb_dgrave_bury(&d->grave, msg);
        release_slot(d, c);
        return;
    }
    if (d->stopping) {
        /* Fetched after stop: give it back for another dispatcher. */
        finish(f, SETTLE_NAK, 1);
        return;
    }
    jb_err err = {{0}};
    /* The event borrows the message's payload: msg stays until finish, which
     * destroys the event first. */
    if (jb_ce_from_nats_borrow(msg, &f->ce, &err) != JB_OK ||
        jb_ce_validate(f->ce, &err) != JB_OK) {
        jb_ce_destroy(f->ce);
        f->ce = NULL;
        /* Poison: it will never parse, so no retry. errordata carries why. */
        jb_log(JB_LOG_WARN, "dispatcher", "unparseable message", "consumer", c->info.consumer,
               "error", err.msg, NULL);
        dead_letter(f, 0, err.msg, strlen(err.msg));
        return;
    }
    /* f->ce becomes the delivered form (the body points into it in binary mode);
     * a dead letter is made from the stored message, not from f->ce. */
    if (build_request(f) != JB_OK) {
        finish(f, SETTLE_NAK, 1000);
        return;
    }
    send_to_sink(f);
}

/* ------------------------------------------------------------ consumers */

static dconsumer *find_consumer(jb_dloop *d, const char *name)
{
    return jb_dtable_find(&d->table, name, strlen(name));
}

static void set_sub_metrics(jb_dloop *d, const jb_sub_consumer *i, double v)
{
    if (d->m.subscribed == NULL)
        return;
    const char *sl[] = {i->ns, i->name, i->clean_type, i->consumer};
    jb_metric_set(d->m.subscribed, sl, v);
    const char *stl[] = {i->name, i->ns, i->consumer, "nats", d->cfg->stream_name};
    jb_metric_set(d->m.sub_status, stl, v);
}

static void on_ready(jb_dloop *d, jb_sub_consumer *info)
{
    set_sub_metrics(d, info, 1);
    dconsumer *c = find_consumer(d, info->consumer);
    if (c != NULL) {
        /* New settings: in-flight messages keep their snapshot. */
        jb_sub_consumer_free(&c->info);
        c->info = *info;
        memset(info, 0, sizeof(*info));
        c->slot.max_in_flight =
            c->info.delivery.max_in_flight > 0 ? c->info.delivery.max_in_flight : 1;
        /* A consumer re-created with new settings may come back at once. */
        jb_dpull_renew(d->pull, c);
        return;
    }
    if (d->stopping)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->info = *info;
    memset(info, 0, sizeof(*info));
    jb_dslot_init(&c->slot, c->info.delivery.max_in_flight);
    jb_dtable_add(&d->table, c);
    jb_dpull_want(d->pull, c);
    info_soon(d);
    zero_counters(d, &c->info);
    char ref[512];
    snprintf(ref, sizeof(ref), "%s/%s", c->info.ns, c->info.name);
    char *shown = jb_redact_url(c->info.sink);
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", d->idx);
    jb_log(JB_LOG_INFO, "dispatcher", "consumer ready", "subscription", ref, "type", c->info.type,
           "consumer", c->info.consumer, "sink", shown ? shown : "", "loop", idx, NULL);
    free(shown);
}

static void stop_consumer(jb_dloop *d, dconsumer *c)
{
    /* No new request; what the open one still brings is NAKed (on_arrival), and
     * so is what waits for a place at the sink. */
    jb_dpull_stop_consumer(d->pull, c);
    natsMsg *msg;
    while ((msg = jb_dpull_unqueue(d->pull, c)) != NULL) {
        jb_disp_nak(d->lnc, msg, 1);
        jb_dgrave_bury(&d->grave, msg);
    }
}

static void on_removed(jb_dloop *d, jb_sub_consumer *info)
{
    set_sub_metrics(d, info, 0);
    dconsumer *c = find_consumer(d, info->consumer);
    if (c != NULL) {
        stop_consumer(d, c);
        reap(d, c);
    }
}

static void free_consumer(jb_dloop *d, dconsumer *c)
{
    jb_dpull_forget(d->pull, c);
    jb_dtable_remove(&d->table, c);
    jb_sub_consumer_free(&c->info);
    free(c);
}

/* Frees a stopped consumer once nothing of it is in flight. */
static void reap(jb_dloop *d, dconsumer *c)
{
    if (!c->slot.stop || c->slot.outstanding > 0)
        return;
    free_consumer(d, c);
}

/* ------------------------------------------------------------ the loop */

static void on_arrival(jb_dloop *d, natsMsg *msg)
{
    dconsumer *c = NULL;
    uint64_t attempt = 1;
    switch (jb_dpull_arrived(d->pull, msg, &c, &attempt)) {
    case JB_DSLOT_DELIVER:
        deliver(d, c, msg, attempt);
        return;
    case JB_DSLOT_PARKED:
    case JB_DSLOT_QUEUED:
        return;
    case JB_DSLOT_REFUSE:
        /* Its consumer is gone: give it back at once for whoever may take it. Over
         * its consumer's bounds: a little later. */
        jb_disp_nak(d->lnc, msg, c != NULL && !c->slot.stop ? JB_DISP_REFUSE_DELAY_MS : 1);
        jb_dgrave_bury(&d->grave, msg);
        return;
    }
}

/* After each read of the loop-owned connection, on the loop: what arrived for the
 * inbox is taken here, with no thread in between. */
static void on_nats_read(void *ud)
{
    jb_dloop *d = ud;
    if (d->pull == NULL)
        return;
    bool kick = false;
    natsMsg *msg;
    while ((msg = jb_dpull_next(d->pull, &kick)) != NULL)
        on_arrival(d, msg);
    /* A status among them may have given slots back. */
    unpark(d);
    if (kick)
        d->sh->kick(d->sh->kick_ud);
}

/* The loop's mailbox: what other threads handed over. */
static void handle(jb_mail *m, void *ud)
{
    jb_dloop *d = ud;
    jb_sub_consumer *info = m->ptr;
    switch ((qkind)m->kind) {
    case Q_READY:
        on_ready(d, info);
        break;
    case Q_REMOVED:
        on_removed(d, info);
        break;
    }
    jb_sub_consumer_free(info);
    free(info);
}

static void on_info_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    jb_dinfo_pass(d->info, &d->table);
}

/* A new consumer: an info pass soon (coalesced), so its metrics appear. */
static void info_soon(jb_dloop *d)
{
    if (d->info_soon_ev == NULL || evtimer_pending(d->info_soon_ev, NULL))
        return;
    struct timeval tv = {0, 200000};
    evtimer_add(d->info_soon_ev, &tv);
}

static void on_status_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    jb_dpull_tick(d->pull);
    /* Requests closed at their deadline or at a reconnect gave their slots back. */
    unpark(d);
}

/* ------------------------------------------------------------ the loop's API */

static void on_finish_tick(evutil_socket_t fd, short what, void *arg);

jb_status jb_dloop_create(const jb_dshared *sh, int idx, struct event_base *base, int max,
                          jb_dloop **out, jb_err *err)
{
    jb_status st = JB_ERR_NOMEM;
    jb_dloop *d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto out;
    d->sh = sh;
    d->idx = idx;
    d->max = max;
    d->cfg = sh->cfg;
    d->base = base;
    d->m = sh->m;
    d->nc = sh->nc;
    const jb_cfg *cfg = sh->cfg;
    if (RAND_bytes((unsigned char *)&d->rng, sizeof(d->rng)) != 1 || d->rng == 0)
        d->rng = (uint64_t)jb_now_monotonic_ns() | 1;
    st = jb_mailbox_create(2 * (size_t)max + JB_DISP_MAILBOX_SPARE, &d->mb, err);
    if (st != JB_OK)
        goto out;
    st = jb_mailbox_attach(d->mb, base, handle, d);
    if (st != JB_OK) {
        st = jb_err_set(err, st, "cannot watch the mailbox");
        goto out;
    }
    /* The pull path's own connection, read and written on this loop. */
    jb_nats_opts no;
    jb_cfg_nats_opts(cfg, &no);
    d->lnc_loop = (jb_nats_loop){base, on_nats_read, d};
    st = jb_nats_connect_loop(&no, &d->lnc_loop, "jetbridge-dispatcher-pull", true, &d->lnc, err);
    if (st != JB_OK)
        goto out;
    st = JB_ERR_NOMEM;
    d->http = jb_dhttp_create(base, max, sh->guard);
    if (d->http != NULL)
        jb_dhttp_builtin(d->http, cfg->sink_http_client == JB_SINK_CLIENT_BUILTIN);
    d->auth = jb_dauth_create(base, d->http, sh->secrets, cfg);
    d->status_ev = event_new(base, -1, EV_PERSIST, on_status_tick, d);
    d->info_ev = event_new(base, -1, EV_PERSIST, on_info_tick, d);
    d->info_soon_ev = evtimer_new(base, on_info_tick, d);
    d->finish_ev = evtimer_new(base, on_finish_tick, d);
    d->wpi_ev = evtimer_new(base, on_wpi_tick, d);
    d->gauge_ev = event_new(base, -1, 0, on_gauge, d);
    if (jb_dgrave_init(&d->grave, base, JB_DGRAVE_MAX, JB_DGRAVE_MAX_BYTES, JB_DGRAVE_MS) !=
            JB_OK ||
        jb_dacks_init(&d->acks, base, d->lnc, (size_t)max, &d->grave) != JB_OK ||
        d->info_ev == NULL || d->info_soon_ev == NULL || d->finish_ev == NULL ||
        d->wpi_ev == NULL || d->gauge_ev == NULL || d->http == NULL || d->status_ev == NULL ||
        d->auth == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    st = jb_dpull_create(cfg, base, d->lnc, &d->table, max, cfg->dispatch_prefetch, &d->pull, err);
    if (st != JB_OK)
        goto out;
    *out = d;
    d = NULL;
out:
    jb_dloop_halt(d);
    jb_dloop_destroy(d);
    return st;
}

jb_status jb_dloop_start(jb_dloop *d, jb_err *err)
{
    d->info = jb_dinfo_create(d->sh->info, d->mb, d->sh->kick, d->sh->kick_ud);
    if (d->info == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    jb_status st = jb_dpull_start(d->pull, err);
    if (st != JB_OK)
        return st;
    struct timeval one = {1, 0};
    event_add(d->status_ev, &one);
    struct timeval every = {JB_DISP_INFO_EVERY_MS / 1000, 0};
    event_add(d->info_ev, &every);
    return JB_OK;
}

jb_mailbox *jb_dloop_mailbox(jb_dloop *d)
{
    return d->mb;
}

bool jb_dloop_connected(jb_dloop *d)
{
    return jb_nats_connected(d->lnc);
}

int jb_dloop_of(const char *name, int n)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return n > 1 ? (int)(h % (uint32_t)n) : 0;
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    /* Past the grace period: give back what is still at a sink. Dead letters being
     * published finish on their own (bounded by their timeout). */
    jb_dlink *l = d->inflight.head;
    while (l != NULL) {
        jb_dlink *next = l->next;
        inflight *f = JB_DLIST_ENTRY(l, inflight, link);
        if (f->stage != ST_DLQ)
            finish(f, SETTLE_NAK, 1);
        l = next;
    }
}

/* Takes the parked messages back (stop): NAKed for another dispatcher. */
static void unpark_all(jb_dloop *d)
{
    natsMsg *msg;
    while ((msg = jb_dpull_unpark(d->pull)) != NULL) {
        jb_disp_nak(d->lnc, msg, 1);
        jb_dgrave_bury(&d->grave, msg);
    }
}

/* Stopping, nothing in flight any more: waits (on the loop, at most 3 s) until the
 * inbox is drained (what arrives meanwhile is NAKed by on_arrival) and the
 * loop-owned connection wrote everything (acks and NAKs), then says done. */
static void on_finish_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dloop *d = arg;
    bool waiting = !jb_dpull_inbox_drained(d->pull) || natsConnection_Buffered(d->lnc) > 0;
    if (waiting && jb_nats_connected(d->lnc) && jb_now_monotonic_ns() < d->finish_deadline_ns) {
        struct timeval tv = {0, 2000};
        evtimer_add(d->finish_ev, &tv);
        return;
    }
    /* What was NAKed meanwhile goes to nats.c now, not at the timer. */
    jb_dgrave_flush(&d->grave);
    /* Dead-letter publishes went out on the host's connection. */
    natsConnection_FlushTimeout(d->nc, 2000);
    if (d->grace_ev != NULL)
        event_del(d->grace_ev);
    if (d->done != NULL)
        d->done(d->done_ud);
}

static void check_stopped(jb_dloop *d)
{
    if (!d->stopping || d->finished || d->ninflight > 0)
        return;
    d->finished = true;
    jb_dacks_flush(&d->acks);
    jb_dgrave_flush(&d->grave);
    jb_dpull_drain_inbox(d->pull);
    d->finish_deadline_ns = jb_now_monotonic_ns() + 3000000000LL;
    struct timeval now = {0, 0};
    evtimer_add(d->finish_ev, &now);
}

void jb_dloop_stop(jb_dloop *d, void (*done)(void *ud), void *ud)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->done = done;
    d->done_ud = ud;
    /* Closed (the process closed it already, before stopping the reconciler):
     * a reconciler waiting for room gives up; the workers' replies still come. */
    jb_mailbox_close(d->mb);
    jb_dpull_stop_requests(d->pull);
    for (dconsumer *c = d->table.list; c != NULL; c = c->next)
        stop_consumer(d, c);
    unpark_all(d);
    int64_t g = d->cfg->shutdown_grace_ms; /* 0: NAK what is in flight at once */
    d->grace_ev = evtimer_new(d->base, on_grace, d);
    if (d->grace_ev != NULL) {
        struct timeval tv = {g / 1000, (g % 1000) * 1000};
        evtimer_add(d->grace_ev, &tv);
    }
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", d->idx);
    jb_log(JB_LOG_INFO, "dispatcher", "stopping", "loop", idx, NULL);
    check_stopped(d);
}

/* What was handed over and never handled (destroy). Replies run their own
 * functions. */
static void drop_mail(jb_mail *m, void *ud)
{
    jb_sub_consumer *info = m->ptr;
    (void)ud;
    switch ((qkind)m->kind) {
    case Q_READY:
    case Q_REMOVED:
        jb_sub_consumer_free(info);
        free(info);
        return;
    }
}

void jb_dloop_halt(jb_dloop *d)
{
    if (d == NULL)
        return;
    d->finished = true; /* no done callback from here on */
    d->stopping = true;
    if (d->mb != NULL)
        jb_mailbox_close(d->mb);
    if (d->pull != NULL) {
        jb_dpull_stop_requests(d->pull);
        for (dconsumer *c = d->table.list; c != NULL; c = c->next)
            stop_consumer(d, c);
    }
}

void jb_dloop_destroy(jb_dloop *d)
{
    if (d == NULL)
        return;
    /* The workers stopped (what they never did answered into the mailbox); the
     * inbox closes (what the server sent meanwhile is NAKed). */
    natsMsg *left;
    while (d->pull != NULL && (left = jb_dpull_close_inbox(d->pull)) != NULL) {
        jb_disp_nak(d->lnc, left, 1);
        jb_dgrave_bury(&d->grave, left);
    }
    /* Nothing posts any more: settle what was handed over but not delivered, and
     * take the workers' last replies. */
    if (d->mb != NULL)
        jb_mailbox_drain(d->mb, drop_mail, d);
    if (d->pull != NULL)
        unpark_all(d);
    while (d->inflight.head != NULL)
        finish(JB_DLIST_ENTRY(d->inflight.head, inflight, link), SETTLE_NAK, 1);
    while (d->pool != NULL) {
        inflight *f = d->pool;
        d->pool = f->pool_next;
        free(f);
    }
    jb_dacks_free(&d->acks);
    while (d->table.list != NULL)
        free_consumer(d, d->table.list);
    jb_dinfo_destroy(d->info);
    jb_dpull_destroy(d->pull);
    d->pull = NULL;
    /* Every message of this loop is settled: the last batch goes to nats.c, whose
     * collector frees it before nats_Close returns. */
    jb_dgrave_free(&d->grave);
    /* Its events leave the base with it; what it still buffered is written by the
     * close when the server is reachable. */
    jb_nats_close(d->lnc, NULL);
    jb_dhttp_destroy(d->http);
    jb_dauth_destroy(d->auth);
    jb_mailbox_destroy(d->mb, drop_mail, d);
    if (d->status_ev != NULL)
        event_free(d->status_ev);
    if (d->info_ev != NULL)
        event_free(d->info_ev);
    if (d->info_soon_ev != NULL)
        event_free(d->info_soon_ev);
    if (d->grace_ev != NULL)
        event_free(d->grace_ev);
    if (d->finish_ev != NULL)
        event_free(d->finish_ev);
    if (d->wpi_ev != NULL)
        event_free(d->wpi_ev);
    if (d->gauge_ev != NULL) {
        on_gauge(-1, 0, d); /* what the last turn changed */
        event_free(d->gauge_ev);
    }
    free(d);
}

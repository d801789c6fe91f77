/*
 * One HTTP thread of the publisher (see pub_thread.h): its own event_base and
 * evhttp on the shared port, its own JetStream context for asynchronous
 * publishing, and a bounded completion queue through which nats.c's threads (ack
 * callbacks) and the control thread hand results back. Only this thread touches
 * its libevent objects; the others write to an eventfd (h2o's multithread
 * receiver pattern).
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "publisher/pub_thread.h"

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
            cq_entry *e = &batch[i];
            if (e->kind == CQ_ACK)
                pub_complete_ack(t, e->msg, e->status, e->text);
            else if (e->kind == CQ_CTL)
                pub_complete_ctl(t, e->token, e->status, e->text, e->len);
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
    if (pub_ackmap_count(t->acks) > 0 && !jb_nats_connected(t->p->nc))
        pub_fail_in_flight(t);
    jb_metric_set(t->p->m.in_flight, NULL, (double)atomic_load(&t->p->in_flight));
    if (t->stopping && ((pub_ackmap_count(t->acks) == 0 && t->pending_ctl == 0) ||
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
    evhttp_set_gencb(t->http, pub_on_request, t);
    evhttp_set_bevcb(t->http, pub_conns_new_bev, t);
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
    t->conn_ev = event_new(t->base, -1, 0, pub_conns_attach, t);
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
    t->acks = pub_ackmap_create(max);
    t->new_bevs_cap = (size_t)p->conns_per_thread + 64;
    t->new_bevs = calloc(t->new_bevs_cap, sizeof(*t->new_bevs));
    jb_status rc = JB_ERR_NOMEM;
    if (t->q == NULL || t->acks == NULL || t->new_bevs == NULL) {
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
    pub_drop_in_flight(t);
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
    pub_ackmap_destroy(t->acks);
    free(t->new_bevs);
    pthread_mutex_destroy(&t->qmu);
    free(t);
}

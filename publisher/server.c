/*
 * One HTTP thread of the publisher (see pub_thread.h): its own event_base and
 * evhttp on the shared port, its own NATS connection on that loop (jsio.c), and a
 * mailbox (common/jb_mailbox.h) through which the control thread hands its
 * answers back and the host asks the thread to stop. Only this thread touches
 * its libevent objects.
 */
#include <openssl/evp.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "application/jb_app.h"
#include "publisher/pub_thread.h"

/* ----------------------------------------------------------------- mailbox */

void pub_thread_post_ctl(pub_thread *t, void *token, int status, char *body, size_t len)
{
    pub_req *pr = token;
    pr->ctl_status = status;
    pr->ctl_body = body;
    pr->ctl_len = len;
    jb_mail m = {.kind = PUB_MAIL_CTL, .ptr = pr};
    /* The mailbox holds every control job there can be plus the stop: a refusal
     * means the thread has ended, and nothing will answer the request. */
    if (jb_mailbox_post(t->mb, &m) != JB_OK) {
        free(body);
        pr->ctl_body = NULL;
    }
}

static void begin_stop(pub_thread *t);

static void on_mail(jb_mail *m, void *ud)
{
    pub_thread *t = ud;
    if (m->kind == PUB_MAIL_CTL) {
        pub_req *pr = m->ptr;
        char *body = pr->ctl_body;
        pr->ctl_body = NULL;
        pub_complete_ctl(t, pr, pr->ctl_status, body, pr->ctl_len);
    } else {
        begin_stop(t);
    }
}

/* Mail left when the thread has ended: a control answer nobody will send. */
static void dispose_mail(jb_mail *m, void *ud)
{
    (void)ud;
    if (m->kind == PUB_MAIL_CTL) {
        pub_req *pr = m->ptr;
        free(pr->ctl_body);
        pr->ctl_body = NULL;
    }
}

/* Periodic: fails what waits on a dead connection, and finishes a stop. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pub_thread *t = arg;
    if (pub_ackmap_count(t->acks) > 0 && !pub_js_connected(t))
        pub_fail_in_flight(t, 502, "not connected to NATS"); /* now rather than 504 later */
    if (pub_ackmap_count(t->acks) > 0)
        pub_expire_in_flight(t, jb_now_monotonic_ns() - t->p->cfg->request_timeout_ms * 1000000);
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
    /* Nothing more is read from the mailbox: later posts are refused. */
    jb_mailbox_close(t->mb);
    jb_mailbox_drain(t->mb, dispose_mail, t);
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
    /* The guard suspends this timeout while it holds a request (pub_guard.h). */
    int64_t to = t->p->guard.conn_timeout_ms;
    struct timeval tv = {(time_t)(to / 1000), (suseconds_t)(to % 1000) * 1000};
    evhttp_set_timeout_tv(t->http, &tv);
    evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(t->http, "text/plain; charset=utf-8");
    evhttp_set_flags(t->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(t->http, t->on_request, t);
    evhttp_set_bevcb(t->http, pub_conns_new_bev, t);
    t->bound = evhttp_accept_socket_with_handle(t->http, listen_fd);
    if (t->bound == NULL) {
        close(listen_fd);
        return jb_err_set(err, JB_ERR_IO, "cannot accept on the ingress socket");
    }
    return JB_OK;
}

static jb_status setup_loop(pub_thread *t, jb_err *err)
{
    /* Locks in the base: nats.c's reconnect and ping threads add write interest to
     * the connection's events from their own threads. */
    jb_event_threads_init();
    t->base = event_base_new();
    if (t->base == NULL || event_base_priority_init(t->base, 2) != 0)
        return jb_err_set(err, JB_ERR_NOMEM, "event_base_new failed");
    /* Every control job there can be, plus the stop and some slack. */
    jb_status st = jb_mailbox_create(PUB_CTL_JOBS_MAX + 16, &t->mb, err);
    if (st != JB_OK)
        return st;
    if (jb_mailbox_attach(t->mb, t->base, on_mail, t) != JB_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "event_new failed");
    t->tick_ev = event_new(t->base, -1, EV_PERSIST, on_tick, t);
    t->conn_ev = event_new(t->base, -1, 0, pub_conns_attach, t);
    if (t->tick_ev == NULL || t->conn_ev == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "event_new failed");
    event_priority_set(t->conn_ev, 0);
    struct timeval tick = {0, 200 * 1000};
    event_add(t->tick_ev, &tick);
    return JB_OK;
}

jb_status pub_thread_create(jb_pub *p, int idx, int listen_fd,
                            void (*on_request)(struct evhttp_request *req, void *arg),
                            pub_thread **out, jb_err *err)
{
    pub_thread *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        close(listen_fd);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    t->p = p;
    t->idx = idx;
    t->oldest_seq = 1;
    t->on_request = on_request;
    /* What jsio.c reports goes to request.c's answers, through these (jsio.c is the
     * lower layer and does not call up). */
    t->on_ack = pub_complete_ack;
    t->on_fail = pub_fail_in_flight;
    size_t max = (size_t)p->cfg->publish_max_in_flight;
    t->acks = pub_ackmap_create(max);
    t->md = EVP_MD_CTX_new();
    t->new_bevs_cap = (size_t)p->conns_per_thread + 64;
    t->new_bevs = calloc(t->new_bevs_cap, sizeof(*t->new_bevs));
    jb_status rc = JB_ERR_NOMEM;
    if (t->acks == NULL || t->new_bevs == NULL || t->md == NULL) {
        close(listen_fd);
        jb_err_set(err, rc, "out of memory");
        goto fail;
    }
    if ((rc = setup_loop(t, err)) != JB_OK) {
        close(listen_fd);
        goto fail;
    }
    if ((rc = setup_http(t, listen_fd, err)) != JB_OK || (rc = pub_js_open(t, err)) != JB_OK)
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
    /* Never full: control answers are bounded by PUB_CTL_JOBS_MAX. Refused only
     * once the thread has ended. */
    jb_mail m = {.kind = PUB_MAIL_STOP};
    (void)jb_mailbox_post(t->mb, &m);
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
    /* Before the base goes: the connection's events live in it. */
    pub_js_close(t);
    if (t->tick_ev != NULL)
        event_free(t->tick_ev);
    if (t->conn_ev != NULL)
        event_free(t->conn_ev);
    /* Removes its event from the base; what is left was disposed of by the thread
     * or was never sent (the thread did not start). */
    jb_mailbox_destroy(t->mb, dispose_mail, t);
    if (t->base != NULL)
        event_base_free(t->base);
    pub_ackmap_destroy(t->acks);
    EVP_MD_CTX_free(t->md);
    free(t->new_bevs);
    free(t);
}

bool pub_thread_connected(pub_thread *t)
{
    return pub_js_connected(t);
}

bool jb_pub_ready(void *ud)
{
    jb_pub *p = ud;
    if (!jb_nats_connected(p->nc) || !atomic_load(&p->stream_ok) ||
        !jb_app_registry_loaded(p->apps) || p->threads == NULL)
        return false;
    /* Each HTTP thread publishes on a connection of its own. */
    for (int i = 0; i < p->nthreads; i++)
        if (p->threads[i] == NULL || !pub_thread_connected(p->threads[i]))
            return false;
    return true;
}

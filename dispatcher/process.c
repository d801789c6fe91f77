/* The dispatcher process: DISPATCH_LOOPS loops (disp.c), loop 0 on the caller's
 * event_base and the others on threads of their own, with what they share: the
 * reconciler (whose consumer changes go to the loop that owns the consumer), the
 * dead-letter and consumer-info workers, the outbound policy and the metrics. */
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/disp_core.h"

/* One loop and, for loops 1..N-1, its thread and event_base. */
typedef struct dthread {
    jb_disp *d;
    jb_dloop *loop;
    struct event_base *base; /* own (NULL for loop 0: the caller's) */
    struct event *stop_ev;   /* activated from the caller's thread: stop on the loop */
    pthread_t tid;
    int loop_idx;
    bool running;
} dthread;

struct jb_disp {
    jb_dshared sh;
    struct event_base *base; /* the caller's: loop 0, the health timer, done */
    int n;
    dthread *loops;
    pthread_mutex_t rec_mu; /* guards rec against the stop */
    jb_sub_reconciler *rec; /* set before start; cleared under rec_mu when stopping */
    jb_dguard *guard;
    struct event *health_ev;
    struct event *done_ev; /* activated by the last loop that finished its stop */
    atomic_int running_loops;
    bool started; /* every loop runs */
    bool stopping;
    void (*done)(void *ud);
    void *done_ud;
};

static void register_metrics(jb_metrics *m, disp_metrics *dm)
{
    if (m == NULL)
        return;
    static const char *const dl[] = {"subscription_name", "subscription_namespace",
                                     "event_type",        "sink",
                                     "response_code",     "consumer_name"};
    static const double buckets[] = {0.002, 0.004, 0.008, 0.016, 0.032,
                                     0.064, 0.128, 0.256, 0.512, 1.024};
    static const char *const sl[] = {"subscription_namespace", "subscription_name", "event_type",
                                     "consumer_name"};
    static const char *const stl[] = {"subscription_name", "subscription_namespace",
                                      "consumer_name", "eventing_backend", "stream_name"};
    static const char *const cl[] = {"subscription_namespace", "subscription_name",
                                     "consumer_name"};
    static const char *const rl[] = {"subscription_namespace", "subscription_name", "consumer_name",
                                     "reason"};
    dm->delivery = jb_metrics_counter(
        m, "eventing_ec_nats_delivery_per_subscription_total",
        "Number of dispatched events per subscription, by status code and sink", 6, dl);
    dm->duration =
        jb_metrics_histogram(m, "eventing_ec_nats_subscriber_dispatch_duration_seconds",
                             "Duration of sending an event to its sink", 6, dl, buckets, 10);
    dm->subscribed = jb_metrics_gauge(m, "eventing_ec_event_type_subscribed_total",
                                      "Event types subscribed by the subscriptions", 4, sl);
    dm->health = jb_metrics_gauge(m, "eventing_ec_health",
                                  "1 when the dispatcher is connected to NATS", 0, NULL);
    dm->sub_status = jb_metrics_gauge(m, "eventing_ec_subscription_status",
                                      "1 when the subscription's consumer is active", 5, stl);
    dm->retries = jb_metrics_counter(m, "jetbridge_dispatcher_retries_total",
                                     "Deliveries NAKed for a later retry", 3, cl);
    dm->dead = jb_metrics_counter(m, "jetbridge_dispatcher_dead_letters_total",
                                  "Events moved to the dead-letter stream", 4, rl);
    dm->pending = jb_metrics_gauge(m, "jetbridge_consumer_pending",
                                   "Messages not yet delivered to the consumer", 3, cl);
    dm->ack_pending = jb_metrics_gauge(m, "jetbridge_consumer_ack_pending",
                                       "Messages delivered and awaiting an ack", 3, cl);
    dm->in_flight = jb_metrics_gauge(m, "jetbridge_dispatcher_in_flight",
                                     "HTTP deliveries in progress", 0, NULL);
    dm->last_err_ts =
        jb_metrics_gauge(m, "jetbridge_dispatcher_last_error_timestamp_seconds",
                         "When a delivery of the consumer last failed (Unix time)", 3, cl);
    dm->last_err_code = jb_metrics_gauge(
        m, "jetbridge_dispatcher_last_error_code",
        "The sink's status of the last failed delivery (0: transport error or timeout)", 3, cl);
}

/* Reconciler callbacks: its thread, never a loop. Copy and post to the loop that
 * owns the consumer; when that mailbox is full the reconciler waits for room (it
 * is a worker thread), and once the dispatcher stops (closed) the change no
 * longer matters. */
static void post_consumer(jb_disp *d, qkind kind, const jb_sub_consumer *c)
{
    jb_sub_consumer *copy = calloc(1, sizeof(*copy));
    if (copy == NULL)
        return;
    if (!jb_sub_consumer_copy(copy, c)) {
        free(copy);
        return;
    }
    jb_mail m = {.kind = kind, .ptr = copy};
    jb_dloop *l = d->loops[jb_dloop_of(c->consumer, d->n)].loop;
    if (jb_mailbox_post_wait(jb_dloop_mailbox(l), &m) != JB_OK) {
        jb_sub_consumer_free(copy);
        free(copy);
    }
}

static void cb_ready(const jb_sub_consumer *c, void *ud)
{
    post_consumer(ud, Q_READY, c);
}

static void cb_removed(const jb_sub_consumer *c, void *ud)
{
    post_consumer(ud, Q_REMOVED, c);
}

/* Asks the reconciler for a pass (a consumer looks lost); nothing once stopping.
 * Any loop's thread. */
static void kick_reconciler(void *ud)
{
    jb_disp *d = ud;
    pthread_mutex_lock(&d->rec_mu);
    if (d->rec != NULL)
        jb_sub_reconciler_kick(d->rec);
    pthread_mutex_unlock(&d->rec_mu);
}

static bool all_connected(jb_disp *d)
{
    if (!jb_nats_connected(d->sh.nc))
        return false;
    for (int i = 0; i < d->n; i++)
        if (d->loops[i].loop == NULL || !jb_dloop_connected(d->loops[i].loop))
            return false;
    return true;
}

static void on_health_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_disp *d = arg;
    jb_metric_set(d->sh.m.health, NULL, all_connected(d) ? 1 : 0);
}

/* ------------------------------------------------------------ loop threads */

static void *loop_main(void *arg)
{
    dthread *t = arg;
    char name[16];
    snprintf(name, sizeof(name), "jb-disp-loop%d", t->loop_idx);
    pthread_setname_np(pthread_self(), name);
    /* Runs until jb_disp_destroy breaks it (after the graceful stop, or at once). */
    event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The caller's thread asked loop t to stop: runs on t's loop. */
static void on_loop_done(void *ud);
static void on_stop_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    dthread *t = arg;
    jb_dloop_stop(t->loop, on_loop_done, t);
}

/* A loop finished its stop (its thread): the last one tells the caller's loop. */
static void on_loop_done(void *ud)
{
    dthread *t = ud;
    if (atomic_fetch_sub(&t->d->running_loops, 1) == 1)
        event_active(t->d->done_ev, EV_TIMEOUT, 0);
}

static void on_all_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_disp *d = arg;
    if (d->health_ev != NULL)
        event_del(d->health_ev);
    if (d->done != NULL)
        d->done(d->done_ud);
}

static jb_status loop_create(jb_disp *d, int i, jb_err *err)
{
    dthread *t = &d->loops[i];
    t->d = d;
    t->loop_idx = i;
    /* A fixed share of DISPATCHER_MAX_CONCURRENT: the remainder to the first loops. */
    int m = d->sh.cfg->dispatcher_max_concurrent;
    int share = m / d->n + (i < m % d->n ? 1 : 0);
    struct event_base *base = d->base;
    if (i > 0) {
        /* After jb_event_threads_init: nats.c touches the base from its threads. */
        t->base = event_base_new();
        if (t->base == NULL)
            return jb_err_set(err, JB_ERR_NOMEM, "event_base_new failed");
        base = t->base;
    }
    t->stop_ev = event_new(base, -1, 0, on_stop_ev, t);
    if (t->stop_ev == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    return jb_dloop_create(&d->sh, i, base, share, &t->loop, err);
}

jb_status jb_disp_create(const jb_cfg *cfg, struct event_base *base, jb_metrics *metrics,
                         natsConnection *nc, jsCtx *js, jb_disp **out, jb_err *err)
{
    if (cfg->dispatch_loops > cfg->dispatcher_max_concurrent)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "DISPATCH_LOOPS (%d) is larger than DISPATCHER_MAX_CONCURRENT (%d): "
                          "each loop needs at least one delivery in flight",
                          cfg->dispatch_loops, cfg->dispatcher_max_concurrent);
    jb_status st = JB_ERR_NOMEM;
    jb_disp *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return jb_err_set(err, st, "out of memory");
    jb_event_threads_init();
    pthread_mutex_init(&d->rec_mu, NULL);
    d->base = base;
    d->n = cfg->dispatch_loops > 0 ? cfg->dispatch_loops : 1;
    d->sh.cfg = cfg;
    d->sh.nc = nc;
    d->sh.js = js;
    d->sh.kick = kick_reconciler;
    d->sh.kick_ud = d;
    register_metrics(metrics, &d->sh.m);
    st = jb_dguard_create(cfg, &d->guard, err);
    if (st != JB_OK)
        goto out;
    d->sh.guard = d->guard;
    d->sh.secrets = jb_dsecrets_create(cfg, (size_t)d->n);
    if (d->sh.secrets == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    d->loops = calloc((size_t)d->n, sizeof(*d->loops));
    d->health_ev = event_new(base, -1, EV_PERSIST, on_health_tick, d);
    d->done_ev = event_new(base, -1, 0, on_all_done, d);
    if (d->loops == NULL || d->health_ev == NULL || d->done_ev == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < d->n; i++)
        if ((st = loop_create(d, i, err)) != JB_OK)
            goto out;
    jb_sub_reconciler_callbacks cb = {cb_ready, cb_removed, d};
    st = jb_sub_reconciler_create(cfg, nc, js, &cb, &d->rec, err);
    if (st != JB_OK)
        goto out;
    *out = d;
    d = NULL;
out:
    jb_disp_destroy(d);
    return st;
}

jb_status jb_disp_start(jb_disp *d, jb_err *err)
{
    const jb_cfg *cfg = d->sh.cfg;
    jb_status st = jb_disp_ensure_dlq(cfg, d->sh.js, err);
    if (st != JB_OK) {
        /* NATS may be down at start: the publish path retries; keep going. */
        jb_log(JB_LOG_WARN, "dispatcher", "dead-letter stream not ensured yet", "error",
               err != NULL ? err->msg : "", NULL);
    }
    if (d->sh.m.health != NULL) {
        struct timeval one = {1, 0};
        event_add(d->health_ev, &one);
    }
    /* At most one dead letter per delivery in flight, whichever loop it is on. */
    st = jb_ddlq_create(cfg, d->sh.js, (size_t)cfg->dispatcher_max_concurrent, &d->sh.dlq, err);
    if (st != JB_OK)
        return st;
    st = jb_dinfow_create(cfg, d->sh.js, d->sh.m.pending, d->sh.m.ack_pending, (size_t)d->n,
                          &d->sh.info, err);
    if (st != JB_OK)
        return st;
    for (int i = 0; i < d->n; i++)
        if ((st = jb_dloop_start(d->loops[i].loop, err)) != JB_OK)
            return st;
    atomic_store(&d->running_loops, d->n);
    for (int i = 1; i < d->n; i++) {
        dthread *t = &d->loops[i];
        if (pthread_create(&t->tid, NULL, loop_main, t) != 0)
            return jb_err_set(err, JB_ERR_IO, "cannot start dispatcher loop thread %d", i);
        t->running = true;
    }
    st = jb_sub_reconciler_start(d->rec, 0, err);
    if (st != JB_OK)
        return st;
    d->started = true;
    if (d->n > 1) {
        char n[16];
        snprintf(n, sizeof(n), "%d", d->n);
        jb_log(JB_LOG_INFO, "dispatcher", "loops started", "loops", n, NULL);
    }
    return JB_OK;
}

bool jb_disp_ready(void *ud)
{
    jb_disp *d = ud;
    pthread_mutex_lock(&d->rec_mu);
    bool synced = d->rec != NULL && jb_sub_reconciler_synced(d->rec);
    pthread_mutex_unlock(&d->rec_mu);
    return synced && all_connected(d);
}

/* Takes the reconciler away from the other threads, then stops it. The loops'
 * mailboxes are closed first: a reconciler waiting for room there gives up. */
static void stop_reconciler(jb_disp *d)
{
    for (int i = 0; d->loops != NULL && i < d->n; i++)
        if (d->loops[i].loop != NULL)
            jb_mailbox_close(jb_dloop_mailbox(d->loops[i].loop));
    pthread_mutex_lock(&d->rec_mu);
    jb_sub_reconciler *r = d->rec;
    d->rec = NULL;
    pthread_mutex_unlock(&d->rec_mu);
    jb_sub_reconciler_destroy(r);
}

void jb_disp_stop_gracefully(jb_disp *d, void (*done)(void *ud), void *ud)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->done = done;
    d->done_ud = ud;
    /* No consumer change arrives while the loops stop. */
    stop_reconciler(d);
    if (!d->started) {
        /* Nothing ever ran: nothing to drain. */
        event_active(d->done_ev, EV_TIMEOUT, 0);
        return;
    }
    /* Each loop stops on its own thread; the last one to finish says done here. */
    for (int i = 0; i < d->n; i++)
        event_active(d->loops[i].stop_ev, EV_TIMEOUT, 0);
}

void jb_disp_destroy(jb_disp *d)
{
    if (d == NULL)
        return;
    /* The loop threads end first: from here on only this thread and the workers
     * touch the loops, and the workers only through the loops' mailboxes. */
    for (int i = 1; d->loops != NULL && i < d->n; i++) {
        dthread *t = &d->loops[i];
        if (t->running) {
            event_base_loopbreak(t->base);
            pthread_join(t->tid, NULL);
            t->running = false;
        }
    }
    stop_reconciler(d);
    for (int i = 0; d->loops != NULL && i < d->n; i++)
        jb_dloop_halt(d->loops[i].loop);
    /* The workers stop; what they never did answers into the loops' mailboxes. */
    jb_ddlq_stop(d->sh.dlq);
    jb_dinfow_stop(d->sh.info);
    jb_dsecrets_stop(d->sh.secrets);
    for (int i = 0; d->loops != NULL && i < d->n; i++) {
        dthread *t = &d->loops[i];
        jb_dloop_destroy(t->loop);
        if (t->stop_ev != NULL)
            event_free(t->stop_ev);
        if (t->base != NULL)
            event_base_free(t->base);
    }
    free(d->loops);
    if (d->sh.nc != NULL)
        natsConnection_FlushTimeout(d->sh.nc, 1000);
    jb_ddlq_destroy(d->sh.dlq);
    jb_dinfow_destroy(d->sh.info);
    jb_dsecrets_destroy(d->sh.secrets);
    jb_dguard_destroy(d->guard);
    if (d->health_ev != NULL)
        event_free(d->health_ev);
    if (d->done_ev != NULL)
        event_free(d->done_ev);
    pthread_mutex_destroy(&d->rec_mu);
    free(d);
}

/* The fetch threads: one per consumer. nats.c's Fetch blocks, so it runs here and
 * never on the loop. A thread reserves free in-flight slots first (per consumer and
 * process-wide), fetches at most that many, and hands what arrived to the loop;
 * the number of messages outside JetStream is thus bounded by the slots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatcher/disp_core.h"

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Sleeps up to ms or until stop. Returns false when stopping. */
static bool nap(dconsumer *c, int64_t ms)
{
    jb_disp *d = c->d;
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&d->mu);
    while (!c->stop)
        if (pthread_cond_timedwait(&c->cv, &d->mu, &ts) == ETIMEDOUT)
            break;
    bool go = !c->stop;
    pthread_mutex_unlock(&d->mu);
    return go;
}

/* How many slots c may fetch for now; 0 when it should wait. Every fetch is a
 * round trip to the server, so wait for a quarter of the window to be free rather
 * than fetching one message per completion; with nothing in flight, or when the
 * process-wide cap is what limits, any free slot is enough. Caller holds d->mu. */
static int usable(const dconsumer *c, bool *global_limited)
{
    const jb_disp *d = c->d;
    int mine = c->max_in_flight - c->outstanding;
    int all = d->global_max - d->global_outstanding;
    int n = mine < all ? mine : all;
    *global_limited = all <= 0;
    if (n > 0 && (n >= c->max_in_flight / 4 || c->outstanding == 0 || n == all))
        return n;
    return 0;
}

/* Waits for free slots and reserves them; returns the number reserved (0 when
 * stopping). */
static int reserve(dconsumer *c)
{
    jb_disp *d = c->d;
    int n = 0;
    pthread_mutex_lock(&d->mu);
    while (!c->stop) {
        bool global_limited = false;
        n = usable(c, &global_limited);
        if (n > 0)
            break;
        struct timespec ts;
        deadline_in(&ts, 1000);
        /* The timeout heals a missed wake-up between the two kinds of wait. */
        if (global_limited) {
            d->global_waiters++;
            pthread_cond_timedwait(&d->slots_cv, &d->mu, &ts);
            d->global_waiters--;
        } else {
            c->waiting = true;
            pthread_cond_timedwait(&c->cv, &d->mu, &ts);
            c->waiting = false;
        }
    }
    if (c->stop)
        n = 0;
    if (n > JB_DISP_FETCH_BATCH_MAX)
        n = JB_DISP_FETCH_BATCH_MAX;
    c->outstanding += n;
    d->global_outstanding += n;
    pthread_mutex_unlock(&d->mu);
    return n;
}

void jb_disp_wake_fetcher(dconsumer *c)
{
    pthread_cond_signal(&c->cv);
    pthread_cond_broadcast(&c->d->slots_cv);
}

void jb_disp_release_slots(dconsumer *c, int n)
{
    if (n <= 0)
        return;
    jb_disp *d = c->d;
    pthread_mutex_lock(&d->mu);
    c->outstanding -= n;
    d->global_outstanding -= n;
    bool g;
    if (c->waiting && usable(c, &g) > 0)
        pthread_cond_signal(&c->cv);
    if (d->global_waiters > 0)
        pthread_cond_broadcast(&d->slots_cv);
    pthread_mutex_unlock(&d->mu);
}

static void unreserve(dconsumer *c, int n)
{
    jb_disp_release_slots(c, n);
}

static natsSubscription *bind(dconsumer *c)
{
    jb_disp *d = c->d;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = d->cfg->stream_name;
    so.Consumer = c->tinfo.consumer;
    jsErrCode jerr = 0;
    natsStatus s =
        js_PullSubscribe(&sub, d->js, c->tinfo.subject, c->tinfo.consumer, NULL, &so, &jerr);
    if (s != NATS_OK) {
        jb_log(JB_LOG_WARN, "dispatcher", "cannot bind to consumer", "consumer", c->tinfo.consumer,
               "error", natsStatus_GetText(s), NULL);
        return NULL;
    }
    return sub;
}

static void report_pending(dconsumer *c)
{
    jb_disp *d = c->d;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    /* By name: natsSubscription_GetConsumerInfo rejects bound pull subscriptions in
     * nats.c 3.4 ("Invalid Subscription"). */
    natsStatus s =
        js_GetConsumerInfo(&ci, d->js, d->cfg->stream_name, c->tinfo.consumer, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
        /* The server lost the consumer: the reconciler re-creates it. */
        jb_log(JB_LOG_WARN, "dispatcher", "consumer lost, asking the reconciler", "consumer",
               c->tinfo.consumer, NULL);
        jb_disp_kick_reconciler(d);
        return;
    }
    if (s != NATS_OK) {
        char code[16];
        snprintf(code, sizeof(code), "%d", (int)jerr);
        jb_log(JB_LOG_DEBUG, "dispatcher", "consumer info failed", "consumer", c->tinfo.consumer,
               "error", natsStatus_GetText(s), "jserr", code, NULL);
    }
    if (s != NATS_OK)
        return;
    const char *labels[] = {c->tinfo.ns, c->tinfo.name, c->tinfo.consumer};
    if (d->m.pending != NULL) {
        jb_metric_set(d->m.pending, labels, (double)ci->NumPending);
        jb_metric_set(d->m.ack_pending, labels, (double)ci->NumAckPending);
    }
    jsConsumerInfo_Destroy(ci);
}

static void hand_over(dconsumer *c, natsMsgList *list)
{
    qitem *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        /* Without memory the messages go back to JetStream (redelivered after
         * AckWait); their slots are freed here. */
        int n = list->Count;
        natsMsgList_Destroy(list);
        unreserve(c, n);
        return;
    }
    it->kind = Q_MSGS;
    it->c = c;
    it->msgs = list->Msgs;
    it->nmsgs = list->Count;
    list->Msgs = NULL;
    list->Count = 0;
    jb_disp_post(c->d, it);
}

/* Fetches what is there now, up to n, without waiting; when nothing is, waits (up
 * to the long-poll expiry) for the first message only. A waiting fetch of n would
 * return only when all n arrived or it expired: at a low rate every event would
 * wait for the expiry. */
static natsStatus fetch_some(natsSubscription *sub, int n, natsMsgList *list, jsErrCode *jerr)
{
    if (n > 1) {
        jsFetchRequest req;
        jsFetchRequest_Init(&req);
        req.Batch = n;
        req.NoWait = true;
        req.Expires = (int64_t)JB_DISP_FETCH_EXPIRY_MS * 1000000;
        natsStatus s = natsSubscription_FetchRequest(list, sub, &req);
        if (s == NATS_OK && list->Count > 0)
            return s;
        natsMsgList_Destroy(list);
        memset(list, 0, sizeof(*list));
        /* NOT_FOUND is the server's "no messages" for a no-wait request. */
        if (s != NATS_OK && s != NATS_NOT_FOUND && s != NATS_TIMEOUT)
            return s;
    }
    return natsSubscription_Fetch(list, sub, 1, JB_DISP_FETCH_EXPIRY_MS, jerr);
}

static void on_fetch_error(dconsumer *c, natsStatus s, jsErrCode jerr, int64_t *last_kick)
{
    jb_disp *d = c->d;
    bool lost = s == NATS_NOT_FOUND || s == NATS_NO_RESPONDERS || jerr == JSConsumerNotFoundErr ||
                jerr == JSStreamNotFoundErr;
    int64_t now = jb_now_monotonic_ns();
    /* The server lost the consumer (restart without its store, or deleted by
     * hand): ask the reconciler for a pass, at most every 2 s. */
    if (lost && now - *last_kick > 2000000000LL) {
        jb_disp_kick_reconciler(d);
        *last_kick = now;
    }
    nap(c, 500);
}

void *jb_disp_fetch_main(void *arg)
{
    dconsumer *c = arg;
    jb_disp *d = c->d;
    natsSubscription *sub = NULL;
    int64_t last_info = 0, last_kick = 0;
    while (true) {
        if (sub == NULL) {
            sub = bind(c);
            if (sub == NULL && !nap(c, 1000))
                break;
            continue;
        }
        int n = reserve(c);
        if (n == 0)
            break;
        /* nats.c 3.4.1 overruns its result array when a fetch finds some (but
         * fewer than batch) messages left in the subscription from an earlier,
         * cut-off fetch (seen after a reconnect). One at a time while leftovers
         * remain is safe. */
        int pend_msgs = 0, pend_bytes = 0;
        if (natsSubscription_GetPending(sub, &pend_msgs, &pend_bytes) == NATS_OK && pend_msgs > 0 &&
            n > 1) {
            unreserve(c, n - 1);
            n = 1;
        }
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = fetch_some(sub, n, &list, &jerr);
        int got = list.Count;
        unreserve(c, n - got);
        if (got > 0)
            hand_over(c, &list);
        natsMsgList_Destroy(&list);
        if (s != NATS_OK && s != NATS_TIMEOUT)
            on_fetch_error(c, s, jerr, &last_kick);
        int64_t now = jb_now_monotonic_ns();
        if (now - last_info > 5000000000LL) {
            report_pending(c);
            last_info = now;
        }
    }
    pthread_mutex_lock(&d->mu);
    c->sub = sub;
    pthread_mutex_unlock(&d->mu);
    memset(&c->goodbye, 0, sizeof(c->goodbye));
    c->goodbye.kind = Q_FETCHER_EXIT;
    c->goodbye.c = c;
    jb_disp_post(d, &c->goodbye);
    return NULL;
}

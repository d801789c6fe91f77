/* Pulling messages with a fixed number of threads, whatever the number of consumers.
 *
 * One inbox subscription serves every consumer: nats.c calls on_inbox on one thread
 * of its own, which only hands each message to the loop. The loop asks for messages
 * by publishing pull requests ($JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>) with
 * the reply subject <inbox>.<consumer>.<request id> and a batch of at most the
 * consumer's free in-flight slots: requested-but-not-arrived plus arrived-but-not-
 * settled never exceeds maxInFlightMessages (per consumer) nor
 * DISPATCHER_MAX_CONCURRENT (per process). A consumer has at most one open request;
 * it ends when its batch is filled or with a status message (408 expired, 409, 503
 * no responders) sent to its reply subject. Messages are settled by publishing to
 * their reply subject ($JS.ACK...). One info thread reads consumer info for the
 * pending metrics and notices lost consumers. */
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatcher/disp_core.h"

/* ------------------------------------------------------ ack subjects */

/* Parses a decimal token; false when empty, not digits or too large. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool jb_disp_parse_ack_subject(const char *reply, size_t len, jb_disp_meta *out)
{
    static const char pre[] = "$JS.ACK.";
    const size_t plen = sizeof(pre) - 1;
    if (reply == NULL || len <= plen || memcmp(reply, pre, plen) != 0)
        return false;
    /* Token boundaries after the prefix. */
    const char *tok[13];
    size_t tlen[13];
    size_t n = 0;
    const char *p = reply + plen, *end = reply + len;
    while (p <= end && n < 13) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *e = dot != NULL ? dot : end;
        tok[n] = p;
        tlen[n] = (size_t)(e - p);
        if (tlen[n] == 0)
            return false;
        n++;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (p < end && n == 13)
        return false; /* too many tokens */
    /* 7 tokens: the old form; 9 (or 10 with a trailing random token): with domain
     * and account hash in front. */
    size_t at;
    if (n == 7)
        at = 0;
    else if (n == 9 || n == 10)
        at = 2;
    else
        return false;
    jb_disp_meta m = {tok[at + 1], tlen[at + 1], 0, 0};
    uint64_t cseq = 0, ts = 0, pending = 0;
    if (!parse_u64(tok[at + 2], tlen[at + 2], &m.delivered) ||
        !parse_u64(tok[at + 3], tlen[at + 3], &m.stream_seq) ||
        !parse_u64(tok[at + 4], tlen[at + 4], &cseq) ||
        !parse_u64(tok[at + 5], tlen[at + 5], &ts) ||
        !parse_u64(tok[at + 6], tlen[at + 6], &pending) || m.delivered == 0)
        return false;
    *out = m;
    return true;
}

/* ------------------------------------------------------------ settling */

natsStatus jb_disp_settle(jb_disp *d, natsMsg *msg, const char *what)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL || reply[0] == '\0')
        return NATS_INVALID_ARG;
    return natsConnection_Publish(d->nc, reply, what, (int)strlen(what));
}

natsStatus jb_disp_nak(jb_disp *d, natsMsg *msg, int64_t delay_ms)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL || reply[0] == '\0')
        return NATS_INVALID_ARG;
    if (delay_ms < 1)
        delay_ms = 1;
    char body[64];
    int n = snprintf(body, sizeof(body), "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000LL);
    return natsConnection_Publish(d->nc, reply, body, n);
}

/* ------------------------------------------------------------ consumers */

static size_t bucket(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h % JB_DISP_BUCKETS;
}

dconsumer *jb_disp_lookup(jb_disp *d, const char *name, size_t len)
{
    for (dconsumer *c = d->buckets[bucket(name, len)]; c != NULL; c = c->hnext)
        if (!c->stop && strlen(c->info.consumer) == len && memcmp(c->info.consumer, name, len) == 0)
            return c;
    return NULL;
}

void jb_disp_hash_add(jb_disp *d, dconsumer *c)
{
    size_t b = bucket(c->info.consumer, strlen(c->info.consumer));
    c->hnext = d->buckets[b];
    d->buckets[b] = c;
}

static void unlink_from(dconsumer **head, dconsumer *c, size_t off)
{
    for (dconsumer **p = head; *p != NULL; p = (dconsumer **)((char *)*p + off))
        if (*p == c) {
            *p = *(dconsumer **)((char *)c + off);
            return;
        }
}

void jb_disp_forget(jb_disp *d, dconsumer *c)
{
    size_t b = bucket(c->info.consumer, strlen(c->info.consumer));
    unlink_from(&d->buckets[b], c, offsetof(dconsumer, hnext));
    if (c->in_pump)
        unlink_from(&d->pump, c, offsetof(dconsumer, pnext));
    if (c->in_starved)
        unlink_from(&d->starved, c, offsetof(dconsumer, pnext));
    c->in_pump = c->in_starved = false;
    jb_disp_close_request(c);
}

void jb_disp_pump_later(jb_disp *d, dconsumer *c)
{
    if (c->in_pump || c->in_starved || c->stop)
        return;
    /* First in, first served: a consumer freeing slots does not jump the queue of
     * those waiting for the process-wide cap. */
    c->in_pump = true;
    c->pnext = NULL;
    if (d->pump_tail != NULL)
        d->pump_tail->pnext = c;
    else
        d->pump = c;
    d->pump_tail = c;
    if (d->pump_ev != NULL)
        event_active(d->pump_ev, 0, 0);
}

/* Consumers held back by the process-wide cap get another look. */
static void wake_starved(jb_disp *d)
{
    while (d->starved != NULL) {
        dconsumer *s = d->starved;
        d->starved = s->pnext;
        s->in_starved = false;
        jb_disp_pump_later(d, s);
    }
}

void jb_disp_close_request(dconsumer *c)
{
    jb_disp *d = c->d;
    bool freed = !c->req_long && c->requested > 0;
    if (!c->req_long)
        d->global_requested -= c->requested;
    c->requested = 0;
    c->req_open = false;
    /* Slots asked for and not used go back to everyone. */
    if (freed)
        wake_starved(d);
}

/* Publishes one pull request for c. A consumer that had messages last time asks
 * for up to its free slots without waiting (no_wait: the server answers at once);
 * one that found nothing waits on the server for a single message (expires 30 s),
 * so that an idle consumer costs one request per 30 s and holds one slot of its
 * own and none of the process-wide cap (see jb_disp_arrived). */
static void request(jb_disp *d, dconsumer *c, int64_t now)
{
    if (c->stop || d->stopping || c->req_open || now < c->retry_at_ns || !jb_nats_connected(d->nc))
        return;
    int mine = c->max_in_flight - c->outstanding;
    bool wait = c->last_empty;
    int n = 1;
    if (!wait) {
        int all = d->global_max - d->global_outstanding - d->global_requested - d->nparked;
        if (all <= 0) {
            /* The process-wide cap: wait for any slot to come back. */
            c->in_starved = true;
            c->pnext = d->starved;
            d->starved = c;
            return;
        }
        n = mine < all ? mine : all;
        /* Every request is a round trip: wait for an eighth of the window to be
         * free rather than asking for one message per completion, unless nothing
         * is in flight or the process-wide cap is what limits. */
        if (n <= 0 || !(n >= c->max_in_flight / 8 || c->outstanding == 0 || n == all))
            return;
        if (n > JB_DISP_FETCH_BATCH_MAX)
            n = JB_DISP_FETCH_BATCH_MAX;
    } else if (mine <= 0) {
        return;
    }
    int64_t expires_ms = wait ? JB_DISP_PULL_EXPIRES_MS : 1000;
    char subj[300], reply[200], body[128];
    c->req_id++;
    snprintf(subj, sizeof(subj), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", d->cfg->stream_name,
             c->info.consumer);
    snprintf(reply, sizeof(reply), "%s.%s.%u", d->inbox, c->info.consumer, (unsigned)c->req_id);
    int blen = snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld%s}", n,
                        (long long)expires_ms * 1000000LL, wait ? "" : ",\"no_wait\":true");
    natsStatus s = natsConnection_PublishRequest(d->nc, subj, reply, body, blen);
    if (s != NATS_OK) {
        c->retry_at_ns = now + 500000000LL;
        return;
    }
    c->req_open = true;
    c->req_long = wait;
    c->req_got = 0;
    c->requested = n;
    if (!wait)
        d->global_requested += n;
    c->req_deadline_ns = now + (expires_ms + JB_DISP_PULL_GRACE_MS) * 1000000LL;
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_disp *d = arg;
    int64_t now = jb_now_monotonic_ns();
    while (d->pump != NULL) {
        dconsumer *c = d->pump;
        d->pump = c->pnext;
        if (d->pump == NULL)
            d->pump_tail = NULL;
        c->in_pump = false;
        request(d, c, now);
    }
}

void jb_disp_release_slot(dconsumer *c)
{
    jb_disp *d = c->d;
    c->outstanding--;
    d->global_outstanding--;
    /* A message parked for want of a process-wide slot takes this one. */
    if (d->parked != NULL) {
        parked *it = d->parked;
        d->parked = it->next;
        if (d->parked == NULL)
            d->parked_tail = NULL;
        d->nparked--;
        d->global_outstanding++;
        dconsumer *pc = it->c;
        natsMsg *msg = it->msg;
        free(it);
        jb_disp_deliver(d, pc, msg);
    }
    wake_starved(d);
    jb_disp_pump_later(d, c);
}

/* Takes the parked messages back (stop): NAKed for another dispatcher. */
void jb_disp_unpark_all(jb_disp *d)
{
    while (d->parked != NULL) {
        parked *it = d->parked;
        d->parked = it->next;
        d->nparked--;
        jb_disp_nak(d, it->msg, 1);
        natsMsg_Destroy(it->msg);
        it->c->outstanding--;
        free(it);
    }
    d->parked_tail = NULL;
}

/* A message arrived for c: counts it. Returns 1 to deliver now, 0 when parked
 * (taken), -1 when it must go back (the caller NAKs it). */
int jb_disp_arrived(jb_disp *d, natsMsg *msg, dconsumer **out)
{
    const char *reply = natsMsg_GetReply(msg);
    jb_disp_meta m;
    if (reply == NULL || !jb_disp_parse_ack_subject(reply, strlen(reply), &m))
        return -1;
    dconsumer *c = jb_disp_lookup(d, m.consumer, m.consumer_len);
    if (c == NULL)
        return -1;
    bool counted = c->requested > 0;
    bool long_poll = counted && c->req_long;
    if (counted) {
        c->requested--;
        c->req_got++;
        c->last_empty = false;
        if (!c->req_long)
            d->global_requested--;
        if (c->requested == 0 && c->req_open) {
            /* The batch is filled: the server ends the request without a status. */
            c->req_open = false;
            jb_disp_pump_later(d, c);
        }
    } else if (c->outstanding >= c->max_in_flight || d->global_outstanding >= d->global_max) {
        /* From a request taken as lost (a reconnect): never over the bounds. */
        return -1;
    }
    c->outstanding++;
    if (long_poll && d->global_outstanding >= d->global_max) {
        /* A long poll holds no process-wide slot: the message waits for one. At most
         * one per consumer, and its consumer's own slot is taken. */
        parked *it = calloc(1, sizeof(*it));
        if (it == NULL) {
            c->outstanding--;
            return -1;
        }
        it->c = c;
        it->msg = msg;
        if (d->parked_tail != NULL)
            d->parked_tail->next = it;
        else
            d->parked = it;
        d->parked_tail = it;
        d->nparked++;
        return 0;
    }
    d->global_outstanding++;
    *out = c;
    return 1;
}

/* ------------------------------------------------------------ statuses */

static bool status_of(natsMsg *msg, const char **code, const char **desc)
{
    if (natsMsg_GetDataLength(msg) > 0 || natsMsgHeader_Get(msg, "Status", code) != NATS_OK)
        return false;
    if (natsMsgHeader_Get(msg, "Description", desc) != NATS_OK)
        *desc = "";
    return true;
}

static void kick(jb_disp *d, int64_t now)
{
    /* At most every 2 s: a lost consumer shows on every request. */
    if (now - d->last_kick_ns > 2000000000LL) {
        d->last_kick_ns = now;
        jb_disp_kick_reconciler(d);
    }
}

void jb_disp_on_status(jb_disp *d, natsMsg *msg)
{
    const char *code = NULL, *desc = NULL;
    const char *subj = natsMsg_GetSubject(msg);
    size_t il = strlen(d->inbox);
    if (!status_of(msg, &code, &desc) || strncmp(subj, d->inbox, il) != 0 || subj[il] != '.')
        goto out;
    const char *name = subj + il + 1;
    const char *dot = strchr(name, '.');
    uint64_t id = 0;
    if (dot == NULL || !parse_u64(dot + 1, strlen(dot + 1), &id))
        goto out;
    dconsumer *c = jb_disp_lookup(d, name, (size_t)(dot - name));
    /* Only the open request's end counts: an earlier one's is stale. */
    if (c == NULL || !c->req_open || id != c->req_id || strcmp(code, "100") == 0)
        goto out;
    int64_t now = jb_now_monotonic_ns();
    /* Nothing came: wait on the server next time instead of asking again at once. */
    if (c->req_got == 0)
        c->last_empty = true;
    jb_disp_close_request(c);
    if (strcmp(code, "408") != 0 && strcmp(code, "404") != 0) {
        /* 503: nobody serves the consumer (it is gone); 409: deleted, or a limit of
         * the server (max waiting, max bytes). Back off; a lost consumer is
         * re-created by the reconciler. */
        c->retry_at_ns = now + 1000000000LL;
        bool lost = strcmp(code, "503") == 0 || strstr(desc, "Deleted") != NULL ||
                    strstr(desc, "deleted") != NULL;
        jb_log(lost ? JB_LOG_WARN : JB_LOG_DEBUG, "dispatcher", "pull request ended", "consumer",
               c->info.consumer, "status", code, "description", desc, NULL);
        if (lost)
            kick(d, now);
    } else {
        jb_disp_pump_later(d, c);
    }
out:
    natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------ the inbox */

/* nats.c's thread: hand over, nothing else. When the loop's mailbox is full the
 * message goes back at once with a 1 s NAK (the dispatcher's "full" answer; its
 * request slot is freed when the request ends); after the stop (closed) with a
 * 1 ms NAK, for another dispatcher. A status that does not fit is dropped: its
 * request is taken as lost at its deadline. */
static void on_inbox(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub;
    jb_disp *d = closure;
    const char *reply = natsMsg_GetReply(msg);
    bool is_msg = reply != NULL && strncmp(reply, "$JS.ACK.", 8) == 0;
    jb_mail m = {.kind = is_msg ? Q_MSG : Q_STATUS, .ptr = msg};
    jb_status st = jb_mailbox_post(d->mb, &m);
    if (st == JB_OK)
        return;
    if (is_msg) {
        jb_disp_nak(d, msg, st == JB_ERR_FULL ? 1000 : 1);
        if (st == JB_ERR_FULL)
            atomic_fetch_add(&d->mb_full, 1);
    }
    natsMsg_Destroy(msg);
}

static void on_inbox_complete(void *closure)
{
    jb_disp *d = closure;
    pthread_mutex_lock(&d->mu);
    d->inbox_done = true;
    pthread_cond_broadcast(&d->inbox_cv);
    pthread_mutex_unlock(&d->mu);
}

static void on_info_tick(evutil_socket_t fd, short what, void *arg);

jb_status jb_disp_pull_init(jb_disp *d, jb_err *err)
{
    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    snprintf(d->inbox, sizeof(d->inbox), "%s", inbox);
    natsInbox_Destroy(inbox);
    d->pump_ev = event_new(d->base, -1, 0, on_pump, d);
    d->info_ev = event_new(d->base, -1, EV_PERSIST, on_info_tick, d);
    d->info_soon_ev = evtimer_new(d->base, on_info_tick, d);
    if (d->pump_ev == NULL || d->info_ev == NULL || d->info_soon_ev == NULL ||
        natsStatistics_Create(&d->stats) != NATS_OK)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    return JB_OK;
}

jb_status jb_disp_pull_start(jb_disp *d, jb_err *err)
{
    char subj[96];
    snprintf(subj, sizeof(subj), "%s.*.*", d->inbox);
    natsStatus s = natsConnection_Subscribe(&d->inbox_sub, d->nc, subj, on_inbox, d);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(d->inbox_sub, on_inbox_complete, d);
    /* In flight is bounded by the slots; nats.c's own limit must not be lower. */
    if (s == NATS_OK && d->global_max * 2 > 65536)
        s = natsSubscription_SetPendingLimits(d->inbox_sub, d->global_max * 2, -1);
    if (s != NATS_OK)
        return jb_err_set(err, JB_ERR_NATS, "inbox subscription: %s", natsStatus_GetText(s));
    if (natsConnection_GetStats(d->nc, d->stats) == NATS_OK)
        natsStatistics_GetCounts(d->stats, NULL, NULL, NULL, NULL, &d->reconnects);
    /* One pass at a time (info_busy): a mailbox of one is enough. */
    jb_status st = jb_worker_start("jb-disp-info", 1, jb_disp_info_pass, NULL, 0, d, &d->info, err);
    if (st != JB_OK)
        return st;
    struct timeval tv = {JB_DISP_INFO_EVERY_MS / 1000, 0};
    event_add(d->info_ev, &tv);
    return JB_OK;
}

static void free_jobs(infojob *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].ns);
        free(jobs[i].name);
        free(jobs[i].consumer);
    }
    free(jobs);
}

/* A pass that never ran still answers, so the loop frees it. */
static void info_dispose(jb_mail *m, void *ud)
{
    (void)ud;
    m->val = 0;
    jb_mail_reply(m);
}

void jb_disp_pull_stop(jb_disp *d)
{
    jb_worker_stop(d->info, info_dispose, NULL);
    d->info = NULL;
    if (d->inbox_sub == NULL)
        return;
    /* Drain: what the server sent before it saw the unsubscribe still reaches the
     * queue (and is NAKed there), instead of waiting for AckWait. */
    natsStatus s = jb_nats_connected(d->nc) ? natsSubscription_Drain(d->inbox_sub)
                                            : natsSubscription_Unsubscribe(d->inbox_sub);
    if (s == NATS_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 3;
        pthread_mutex_lock(&d->mu);
        while (!d->inbox_done)
            if (pthread_cond_timedwait(&d->inbox_cv, &d->mu, &ts) != 0)
                break;
        bool done = d->inbox_done;
        pthread_mutex_unlock(&d->mu);
        if (!done)
            jb_log(JB_LOG_WARN, "dispatcher", "inbox subscription did not close in time", NULL);
    }
}

void jb_disp_pull_free(jb_disp *d)
{
    natsSubscription_Destroy(d->inbox_sub);
    d->inbox_sub = NULL;
    if (d->pump_ev != NULL)
        event_free(d->pump_ev);
    if (d->info_ev != NULL)
        event_free(d->info_ev);
    if (d->info_soon_ev != NULL)
        event_free(d->info_soon_ev);
    natsStatistics_Destroy(d->stats);
    pthread_cond_destroy(&d->inbox_cv);
}

void jb_disp_pull_tick(jb_disp *d)
{
    int64_t now = jb_now_monotonic_ns();
    uint64_t rc = d->reconnects;
    if (d->stats != NULL && natsConnection_GetStats(d->nc, d->stats) == NATS_OK)
        natsStatistics_GetCounts(d->stats, NULL, NULL, NULL, NULL, &rc);
    /* A reconnect loses the requests waiting on the server: ask again. */
    bool reset = rc != d->reconnects;
    d->reconnects = rc;
    wake_starved(d); /* heals any missed wake-up */
    for (dconsumer *c = d->consumers; c != NULL; c = c->next) {
        if (c->stop)
            continue;
        if (c->req_open && (reset || now > c->req_deadline_ns))
            jb_disp_close_request(c);
        if (!c->req_open)
            jb_disp_pump_later(d, c);
    }
}

/* ------------------------------------------------------------ consumer info */

/* The pass came back (loop): val 1 when a consumer was lost. */
static void on_info_done(jb_mail *m, void *ud)
{
    jb_disp *d = ud;
    infojob *jobs = m->ptr;
    free_jobs(jobs, jobs != NULL ? (size_t)jobs[0].n : 0);
    d->info_busy = false;
    if (m->val != 0)
        jb_disp_kick_reconciler(d);
}

static void on_info_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_disp *d = arg;
    /* One pass at a time: the next starts from the consumers of its own moment. */
    if (d->info == NULL || d->info_busy)
        return;
    size_t n = 0;
    for (dconsumer *c = d->consumers; c != NULL; c = c->next)
        n += c->stop ? 0 : 1;
    if (n == 0)
        return;
    infojob *jobs = calloc(n, sizeof(*jobs));
    if (jobs == NULL)
        return;
    size_t i = 0;
    for (dconsumer *c = d->consumers; c != NULL && i < n; c = c->next) {
        if (c->stop)
            continue;
        jobs[i].ns = strdup(c->info.ns);
        jobs[i].name = strdup(c->info.name);
        jobs[i].consumer = strdup(c->info.consumer);
        i++;
        if (jobs[i - 1].ns == NULL || jobs[i - 1].name == NULL || jobs[i - 1].consumer == NULL) {
            free_jobs(jobs, i);
            return;
        }
    }
    jobs[0].n = i;
    jb_mail m = {.ptr = jobs, .reply_to = d->mb, .reply = on_info_done, .reply_ud = d};
    if (jb_mailbox_post(jb_worker_mailbox(d->info), &m) != JB_OK) {
        free_jobs(jobs, i);
        return;
    }
    d->info_busy = true;
}

void jb_disp_info_soon(jb_disp *d)
{
    if (d->info_soon_ev == NULL || evtimer_pending(d->info_soon_ev, NULL))
        return;
    struct timeval tv = {0, 200000};
    evtimer_add(d->info_soon_ev, &tv);
}

/* Returns false when the consumer is lost. */
static bool report_one(jb_disp *d, const infojob *j)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, d->js, d->cfg->stream_name, j->consumer, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
        jb_log(JB_LOG_WARN, "dispatcher", "consumer lost, asking the reconciler", "consumer",
               j->consumer, NULL);
        return false;
    }
    if (s != NATS_OK)
        return true;
    const char *labels[] = {j->ns, j->name, j->consumer};
    if (d->m.pending != NULL) {
        jb_metric_set(d->m.pending, labels, (double)ci->NumPending);
        jb_metric_set(d->m.ack_pending, labels, (double)ci->NumAckPending);
    }
    jsConsumerInfo_Destroy(ci);
    return true;
}

/* The info worker: one pass over the consumers it was given, paced. */
void jb_disp_info_pass(jb_mail *m, void *ud)
{
    jb_disp *d = ud;
    infojob *jobs = m->ptr;
    size_t n = (size_t)jobs[0].n;
    bool lost = false;
    for (size_t i = 0; i < n && !jb_worker_stopping(d->info); i++) {
        if (!report_one(d, &jobs[i]))
            lost = true;
        /* At most JB_DISP_INFO_MAX_PER_S requests a second: with thousands of
         * consumers a pass takes longer than JB_DISP_INFO_EVERY_MS (the gauges are
         * older) instead of keeping nats-server busy with info requests. */
        struct timespec gap = {0, 1000000000L / JB_DISP_INFO_MAX_PER_S};
        nanosleep(&gap, NULL);
    }
    m->val = lost ? 1 : 0;
    jb_mail_reply(m);
}

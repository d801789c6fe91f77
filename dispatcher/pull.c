/* Pulling messages with a fixed number of threads, whatever the number of consumers.
 *
 * One inbox subscription serves every consumer. It is a synchronous subscription
 * on the dispatcher's loop-owned connection (jb_nats_connect_loop): the loop thread
 * reads the socket, and right after each read the loop takes what arrived
 * (jb_dpull_next), so a message crosses no thread at all. The loop asks for
 * messages by publishing pull requests ($JS.API.CONSUMER.MSG.NEXT.<stream>.
 * <consumer>) with the reply subject <inbox>.<consumer>.<request id> and a batch of
 * at most the consumer's free slots (slots.c decides how many; a busy consumer's
 * stream asks for JB_DISP_STREAM_BATCH, paced by the consumer's MaxAckPending). A
 * consumer has one open request (a stream is relayed by a fresh one shortly before
 * it expires, the old one then ends on its own); it ends when its batch is filled
 * or with a status message (408 expired, 409, 503 no responders) sent to its reply
 * subject. Nothing here
 * calls up into the loop's delivery: every function returns what the loop must do
 * (deliver this message, kick the reconciler). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jb_text.h"
#include "dispatcher/disp_core.h"
#include "dispatcher/disp_settle.h"

struct jb_dpull {
    const jb_cfg *cfg;
    natsConnection *nc; /* the loop-owned connection */
    jb_dtable *table;
    jb_dslots slots;
    struct event *pump_ev;
    struct event *deadline_ev; /* the earliest open request's deadline */
    int64_t deadline_at;       /* when deadline_ev fires; 0: not armed */
    bool stopping;             /* no new request */
    char inbox[64];            /* _INBOX.<nuid>; replies go to <inbox>.<consumer>.<req id> */
    natsSubscription *sub;     /* synchronous: taken on the loop after each read */
    bool draining;
    natsStatistics *stats;
    uint64_t reconnects;
    int64_t last_kick_ns;
};

static void on_deadline(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------ requests */

static void pump_soon(jb_dpull *p)
{
    if (jb_dslots_pump_waiting(&p->slots))
        event_active(p->pump_ev, 0, 0);
}

/* deadline_ev fires at `at` (or earlier, if it is armed for earlier already). */
static void arm_deadline(jb_dpull *p, int64_t at, int64_t now)
{
    if (at == 0 || (p->deadline_at != 0 && p->deadline_at <= at))
        return;
    p->deadline_at = at;
    int64_t us = at > now ? (at - now) / 1000 : 0;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    evtimer_add(p->deadline_ev, &tv);
}

/* Publishes a pull request for c with a new id (held: no no_wait); false when
 * it could not be (c then waits 0.5 s). */
static bool publish(jb_dpull *p, dconsumer *c, int batch, int64_t expires_ms, bool held,
                    int64_t now)
{
    char subj[300], reply[200], body[128];
    uint32_t id = c->slot.req_id + 1;
    snprintf(subj, sizeof(subj), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", p->cfg->stream_name,
             c->info.consumer);
    snprintf(reply, sizeof(reply), "%s.%s.%u", p->inbox, c->info.consumer, (unsigned)id);
    int blen = snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld%s}", batch,
                        (long long)expires_ms * 1000000LL, held ? "" : ",\"no_wait\":true");
    natsStatus s = natsConnection_PublishRequest(p->nc, subj, reply, body, blen);
    c->slot.req_id = id;
    if (s != NATS_OK) {
        c->slot.retry_at_ns = now + 500000000LL;
        return false;
    }
    return true;
}

static int64_t ms_from(int64_t now, int64_t ms)
{
    return now + ms * 1000000LL;
}

/* A request published at now that expires in expires_ms is taken as lost at its
 * deadline; a stream (expires_ms JB_DISP_PULL_BUSY_EXPIRES_MS) is relayed before. */
static int64_t deadline_of(int64_t now, int64_t expires_ms)
{
    return ms_from(now, expires_ms + JB_DISP_PULL_GRACE_MS);
}

static int64_t relay_of(int64_t now)
{
    return ms_from(now, JB_DISP_PULL_BUSY_EXPIRES_MS - JB_DISP_STREAM_RELAY_MS);
}

/* Publishes one pull request for c, of the size slots.c plans. A consumer that had
 * messages last time asks with a short expiry: while the process-wide cap is not
 * contended, for a stream (a batch of JB_DISP_STREAM_BATCH, held open across
 * events: it ends when filled or with a 408 at the expiry; JetStream sends at most
 * MaxAckPending = the window unacknowledged, and the next as each ack arrives),
 * else for its free slots with no_wait (ended right after what it brought). One
 * that found nothing waits on the server for a single message (expires 30 s), so
 * that an idle consumer costs one request per 30 s. */
static void request(jb_dpull *p, dconsumer *c, int64_t now)
{
    if (p->stopping || !jb_nats_connected(p->nc))
        return;
    bool wait = false;
    int n = jb_dslots_plan(&p->slots, &c->slot, now, &wait);
    if (n <= 0)
        return;
    bool stream = !wait && jb_dslots_hold_open(&p->slots, &c->slot);
    int64_t expires_ms = wait ? JB_DISP_PULL_EXPIRES_MS : JB_DISP_PULL_BUSY_EXPIRES_MS;
    int batch = stream ? JB_DISP_STREAM_BATCH : n;
    if (!publish(p, c, batch, expires_ms, wait || stream, now))
        return;
    int64_t deadline = deadline_of(now, expires_ms);
    if (stream) {
        int64_t relay = relay_of(now);
        jb_dslots_opened_stream(&p->slots, &c->slot, batch, relay, deadline);
        arm_deadline(p, relay, now);
    } else {
        jb_dslots_opened(&p->slots, &c->slot, n, wait, deadline);
        arm_deadline(p, deadline, now);
    }
}

/* c's stream is about to expire: a fresh one takes over its slots (or, idle or
 * the cap wanted, it is left to end). */
static void relay(jb_dpull *p, dconsumer *c, int64_t now)
{
    if (!jb_dslots_relay(&p->slots, &c->slot, now))
        return;
    int64_t ms = JB_DISP_PULL_BUSY_EXPIRES_MS;
    if (p->stopping || !jb_nats_connected(p->nc) ||
        !publish(p, c, JB_DISP_STREAM_BATCH, ms, true, now)) {
        c->slot.relay_ns = 0; /* the open one ends by itself */
        return;
    }
    jb_dslots_relayed(&c->slot, JB_DISP_STREAM_BATCH, relay_of(now), deadline_of(now, ms));
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dpull *p = arg;
    int64_t now = jb_now_monotonic_ns();
    jb_dslot *s;
    while ((s = jb_dslots_next(&p->slots)) != NULL)
        request(p, DCONSUMER(s), now);
}

void jb_dpull_want(jb_dpull *p, dconsumer *c)
{
    jb_dslots_want(&p->slots, &c->slot);
    pump_soon(p);
}

void jb_dpull_renew(jb_dpull *p, dconsumer *c)
{
    /* New settings (a new window, a consumer made again): ask again now with them
     * instead of when the open request ends. What the old request still brings
     * counts only if there is room (jb_dslots_arrived), else it is given back. */
    c->slot.retry_at_ns = 0;
    if (c->slot.req_open)
        jb_dslots_close(&p->slots, &c->slot);
    jb_dpull_want(p, c);
}

void jb_dpull_stop_consumer(jb_dpull *p, dconsumer *c)
{
    /* No new request; what the open one still brings is given back. */
    c->slot.stop = true;
    jb_dslots_close(&p->slots, &c->slot);
    pump_soon(p);
}

void jb_dpull_forget(jb_dpull *p, dconsumer *c)
{
    jb_dslots_forget(&p->slots, &c->slot);
    pump_soon(p);
}

void jb_dpull_stop_requests(jb_dpull *p)
{
    p->stopping = true;
}

/* ------------------------------------------------------------ arrivals */

jb_dslot_arrival jb_dpull_arrived(jb_dpull *p, natsMsg *msg, dconsumer **out, uint64_t *delivered)
{
    const char *reply = natsMsg_GetReply(msg);
    jb_disp_meta m;
    if (reply == NULL || !jb_disp_parse_ack_subject(reply, strlen(reply), &m))
        return JB_DSLOT_REFUSE;
    dconsumer *c = jb_dtable_find(p->table, m.consumer, m.consumer_len);
    if (c == NULL)
        return JB_DSLOT_REFUSE;
    jb_dslot_arrival a = jb_dslots_arrived(&p->slots, &c->slot, msg, m.delivered);
    pump_soon(p);
    if (a == JB_DSLOT_DELIVER || a == JB_DSLOT_REFUSE) {
        *out = c;
        *delivered = m.delivered;
    }
    return a;
}

natsMsg *jb_dpull_release(jb_dpull *p, dconsumer *c, dconsumer **owner, uint64_t *delivered)
{
    jb_dslot *o = NULL;
    natsMsg *msg = jb_dslots_release(&p->slots, c != NULL ? &c->slot : NULL, &o, delivered);
    pump_soon(p);
    if (msg != NULL)
        *owner = DCONSUMER(o);
    return msg;
}

natsMsg *jb_dpull_unqueue(jb_dpull *p, dconsumer *c)
{
    return jb_dslots_unqueue(&p->slots, &c->slot);
}

bool jb_dpull_room_for_parked(const jb_dpull *p)
{
    return jb_dslots_has_room_for_parked(&p->slots);
}

natsMsg *jb_dpull_unpark(jb_dpull *p)
{
    return jb_dslots_unpark(&p->slots);
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

/* A lost consumer kicks the reconciler at most every 2 s. */
static bool kick_due(jb_dpull *p, int64_t now)
{
    if (now - p->last_kick_ns <= 2000000000LL)
        return false;
    p->last_kick_ns = now;
    return true;
}

/* The request of c ended with code: true when the consumer looks lost. */
static bool ended(jb_dpull *p, dconsumer *c, const char *code, const char *desc, int64_t now)
{
    jb_dslots_ended(&p->slots, &c->slot);
    if (strcmp(code, "408") == 0 || strcmp(code, "404") == 0) {
        jb_dpull_want(p, c);
        return false;
    }
    /* 503: nobody serves the consumer (it is gone); 409: deleted, or a limit of the
     * server (max waiting, max bytes). Back off; a lost consumer is re-created by
     * the reconciler. */
    c->slot.retry_at_ns = now + 1000000000LL;
    bool lost = strcmp(code, "503") == 0 || strstr(desc, "Deleted") != NULL ||
                strstr(desc, "deleted") != NULL;
    jb_log(lost ? JB_LOG_WARN : JB_LOG_DEBUG, "dispatcher", "pull request ended", "consumer",
           c->info.consumer, "status", code, "description", desc, NULL);
    pump_soon(p);
    /* At most every 2 s: a lost consumer shows on every request. */
    return lost && kick_due(p, now);
}

bool jb_dpull_status(jb_dpull *p, natsMsg *msg)
{
    bool kick = false;
    const char *code = NULL, *desc = NULL;
    const char *subj = natsMsg_GetSubject(msg);
    size_t il = strlen(p->inbox);
    if (!status_of(msg, &code, &desc) || strncmp(subj, p->inbox, il) != 0 || subj[il] != '.')
        goto out;
    const char *name = subj + il + 1;
    const char *dot = strchr(name, '.');
    uint64_t id = 0;
    if (dot == NULL || !jb_parse_uint(dot + 1, strlen(dot + 1), UINT64_MAX, &id))
        goto out;
    dconsumer *c = jb_dtable_find(p->table, name, (size_t)(dot - name));
    /* Only the open request's end counts: an earlier one's is stale. */
    if (c == NULL || !c->slot.req_open || id != c->slot.req_id || strcmp(code, "100") == 0)
        goto out;
    kick = ended(p, c, code, desc, jb_now_monotonic_ns());
out:
    jb_nats_msg_free(msg);
    return kick;
}

/* ------------------------------------------------------------ the inbox */

natsMsg *jb_dpull_next(jb_dpull *p, bool *kick)
{
    if (p->sub == NULL)
        return NULL;
    int queued = 0;
    if (natsSubscription_GetPending(p->sub, &queued, NULL) != NATS_OK)
        return NULL;
    while (queued > 0) {
        natsMsg *msg = NULL;
        natsStatus s = natsSubscription_NextMsg(&msg, p->sub, 0);
        if (s == NATS_SLOW_CONSUMER) {
            /* Said once, nothing taken: messages were dropped (they come back after
             * AckWait); what is queued is still there. */
            jb_log(JB_LOG_WARN, "dispatcher", "inbox queue overflowed, messages dropped", NULL);
            continue;
        }
        queued--;
        if (s == NATS_NO_RESPONDERS) {
            /* nats.c takes a 503 status itself and keeps its subject from us: some
             * consumer does not exist. Its request is taken as lost at its deadline;
             * the reconciler re-creates the consumer. */
            if (kick_due(p, jb_now_monotonic_ns()))
                *kick = true;
            continue;
        }
        if (s != NATS_OK)
            continue;
        const char *reply = natsMsg_GetReply(msg);
        if (reply != NULL && strncmp(reply, "$JS.ACK.", 8) == 0)
            return msg;
        if (jb_dpull_status(p, msg))
            *kick = true;
    }
    return NULL;
}

jb_status jb_dpull_create(const jb_cfg *cfg, struct event_base *base, natsConnection *nc,
                          jb_dtable *table, int global_max, int prefetch, jb_dpull **out,
                          jb_err *err)
{
    jb_dpull *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    p->cfg = cfg;
    p->nc = nc;
    p->table = table;
    jb_dslots_init(&p->slots, global_max);
    p->slots.prefetch = prefetch;
    natsInbox *inbox = NULL;
    p->pump_ev = event_new(base, -1, 0, on_pump, p);
    p->deadline_ev = evtimer_new(base, on_deadline, p);
    if (p->pump_ev == NULL || p->deadline_ev == NULL || natsInbox_Create(&inbox) != NATS_OK ||
        natsStatistics_Create(&p->stats) != NATS_OK) {
        natsInbox_Destroy(inbox);
        jb_dpull_destroy(p);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    snprintf(p->inbox, sizeof(p->inbox), "%s", inbox);
    natsInbox_Destroy(inbox);
    *out = p;
    return JB_OK;
}

jb_status jb_dpull_start(jb_dpull *p, jb_err *err)
{
    char subj[96];
    snprintf(subj, sizeof(subj), "%s.*.*", p->inbox);
    natsStatus s = natsConnection_SubscribeSync(&p->sub, p->nc, subj);
    /* In flight is bounded by the slots; nats.c's own limit must not be lower. */
    int window = p->slots.global_max * 2 + JB_DISP_MAILBOX_SPARE;
    if (s == NATS_OK && window > 65536)
        s = natsSubscription_SetPendingLimits(p->sub, window, -1);
    if (s != NATS_OK)
        return jb_err_set(err, JB_ERR_NATS, "inbox subscription: %s", natsStatus_GetText(s));
    if (natsConnection_GetStats(p->nc, p->stats) == NATS_OK)
        natsStatistics_GetCounts(p->stats, NULL, NULL, NULL, NULL, &p->reconnects);
    return JB_OK;
}

void jb_dpull_drain_inbox(jb_dpull *p)
{
    if (p == NULL || p->sub == NULL || p->draining)
        return;
    /* The server stops sending once it sees the unsubscribe; what it sent before
     * still arrives (and is given back by the loop) until nats.c's PING/PONG says
     * nothing more is on the way. */
    p->draining = jb_nats_connected(p->nc) && natsSubscription_Drain(p->sub) == NATS_OK;
}

bool jb_dpull_inbox_drained(jb_dpull *p)
{
    return p == NULL || p->sub == NULL || !p->draining || !natsSubscription_IsValid(p->sub);
}

natsMsg *jb_dpull_close_inbox(jb_dpull *p)
{
    if (p == NULL || p->sub == NULL)
        return NULL;
    if (natsSubscription_IsValid(p->sub))
        natsSubscription_Unsubscribe(p->sub);
    /* What was queued before: the caller gives it back. */
    natsMsg *msg = NULL;
    if (natsSubscription_NextMsg(&msg, p->sub, 0) == NATS_OK)
        return msg;
    return NULL;
}

void jb_dpull_destroy(jb_dpull *p)
{
    if (p == NULL)
        return;
    natsSubscription_Destroy(p->sub);
    if (p->pump_ev != NULL)
        event_free(p->pump_ev);
    if (p->deadline_ev != NULL)
        event_free(p->deadline_ev);
    natsStatistics_Destroy(p->stats);
    free(p);
}

/* Relays the streams due, closes the open requests past their deadline (all of
 * them: reset) and lets their consumers ask again (every consumer without one:
 * want_all). Returns the earliest relay or deadline still ahead, 0 when none. */
static int64_t close_lost(jb_dpull *p, int64_t now, bool reset, bool want_all)
{
    int64_t next = 0;
    for (dconsumer *c = p->table->list; c != NULL; c = c->next) {
        if (c->slot.stop)
            continue;
        bool was_open = c->slot.req_open;
        if (was_open && !reset)
            relay(p, c, now);
        if (was_open && (reset || now > c->slot.deadline_ns))
            jb_dslots_close(&p->slots, &c->slot);
        if (!c->slot.req_open && (want_all || was_open))
            jb_dslots_want(&p->slots, &c->slot);
        int64_t due = c->slot.relay_ns != 0 ? c->slot.relay_ns : c->slot.deadline_ns;
        if (c->slot.req_open && (next == 0 || due < next))
            next = due;
    }
    return next;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    jb_dpull *p = arg;
    int64_t now = jb_now_monotonic_ns();
    p->deadline_at = 0;
    int64_t next = close_lost(p, now, false, false);
    /* Many consumers: one look at all of them per JB_DISP_PULL_SCAN_MS at most. */
    int64_t soonest = now + JB_DISP_PULL_SCAN_MS * 1000000LL;
    arm_deadline(p, next != 0 && next < soonest ? soonest : next, now);
    pump_soon(p);
}

void jb_dpull_tick(jb_dpull *p)
{
    int64_t now = jb_now_monotonic_ns();
    uint64_t rc = p->reconnects;
    if (p->stats != NULL && natsConnection_GetStats(p->nc, p->stats) == NATS_OK)
        natsStatistics_GetCounts(p->stats, NULL, NULL, NULL, NULL, &rc);
    /* A reconnect loses the requests waiting on the server: ask again. */
    bool reset = rc != p->reconnects;
    p->reconnects = rc;
    jb_dslots_wake_starved(&p->slots); /* heals any missed wake-up */
    arm_deadline(p, close_lost(p, now, reset, true), now);
    pump_soon(p);
}

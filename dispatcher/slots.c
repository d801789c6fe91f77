/* Pull accounting (disp_slots.h): slots per consumer and per process, the pump
 * and starved lists, parked long-poll arrivals. */
#include <stddef.h>
#include <stdlib.h>

#include "dispatcher/disp_slots.h"

void jb_dslots_init(jb_dslots *s, int global_max)
{
    *s = (jb_dslots){.global_max = global_max > 0 ? global_max : 1};
}

void jb_dslot_init(jb_dslot *c, int max_in_flight)
{
    *c = (jb_dslot){.max_in_flight = max_in_flight > 0 ? max_in_flight : 1};
}

void jb_dslots_want(jb_dslots *s, jb_dslot *c)
{
    if (c->in_pump || c->in_starved || c->stop)
        return;
    /* First in, first served: a consumer freeing slots does not jump the queue of
     * those waiting for the process-wide cap. */
    c->in_pump = true;
    c->pnext = NULL;
    if (s->pump_tail != NULL)
        s->pump_tail->pnext = c;
    else
        s->pump = c;
    s->pump_tail = c;
}

bool jb_dslots_pump_waiting(const jb_dslots *s)
{
    return s->pump != NULL;
}

jb_dslot *jb_dslots_next(jb_dslots *s)
{
    jb_dslot *c = s->pump;
    if (c == NULL)
        return NULL;
    s->pump = c->pnext;
    if (s->pump == NULL)
        s->pump_tail = NULL;
    c->in_pump = false;
    return c;
}

void jb_dslots_wake_starved(jb_dslots *s)
{
    while (s->starved != NULL) {
        jb_dslot *c = s->starved;
        s->starved = c->pnext;
        c->in_starved = false;
        jb_dslots_want(s, c);
    }
}

int jb_dslots_window(const jb_dslots *s, const jb_dslot *c)
{
    return c->max_in_flight + (s->prefetch > 0 ? s->prefetch : 0);
}

/* Process-wide slots neither in flight, nor held by open requests, nor promised to
 * parked messages. */
static int free_global(const jb_dslots *s)
{
    return s->global_max - s->global_outstanding - s->global_requested - s->nparked;
}

int jb_dslots_plan(jb_dslots *s, jb_dslot *c, int64_t now_ns, bool *long_poll)
{
    *long_poll = false;
    /* A parked long-poll message goes first: nothing newer is asked for meanwhile. */
    if (c->stop || c->req_open || c->has_parked || now_ns < c->retry_at_ns)
        return 0;
    int window = jb_dslots_window(s, c);
    int mine = window - c->outstanding;
    if (c->last_empty) {
        /* An idle consumer waits on the server for one message, with a slot of its
         * own and none of the process-wide cap. */
        *long_poll = mine > 0;
        return mine > 0 ? 1 : 0;
    }
    int all = free_global(s);
    if (all <= 0) {
        /* The process-wide cap: wait for any slot to come back. */
        if (!c->in_starved && !c->in_pump) {
            c->in_starved = true;
            c->pnext = s->starved;
            s->starved = c;
        }
        return 0;
    }
    int n = mine < all ? mine : all;
    /* Every request is a round trip: wait for an eighth of the window to be free
     * rather than asking for one message per completion, unless nothing is in
     * flight, the process-wide cap is what limits, or a stream just filled its
     * batch (a backlog: the next stream keeps the server sending). */
    if (n <= 0 || !(n >= window / 8 || c->outstanding == 0 || n == all || c->restream))
        return 0;
    return n > JB_DISP_FETCH_BATCH_MAX ? JB_DISP_FETCH_BATCH_MAX : n;
}

bool jb_dslots_hold_open(const jb_dslots *s, const jb_dslot *c)
{
    if (c->last_empty || s->starved != NULL || s->parked != NULL)
        return false;
    int mine = jb_dslots_window(s, c) - c->outstanding;
    return mine > 0 && mine < free_global(s);
}

void jb_dslots_opened(jb_dslots *s, jb_dslot *c, int n, bool long_poll, int64_t deadline_ns)
{
    c->req_open = true;
    c->req_long = long_poll;
    c->req_stream = false;
    c->restream = false;
    c->relay_ns = 0;
    c->req_got = 0;
    c->requested = n;
    c->req_left = n;
    c->deadline_ns = deadline_ns;
    if (!long_poll)
        s->global_requested += n;
}

void jb_dslots_opened_stream(jb_dslots *s, jb_dslot *c, int batch, int64_t relay_ns,
                             int64_t deadline_ns)
{
    /* The server may send the whole free window before anything settles. */
    jb_dslots_opened(s, c, jb_dslots_window(s, c) - c->outstanding, false, deadline_ns);
    c->req_stream = true;
    c->req_left = batch;
    c->relay_ns = relay_ns;
}

bool jb_dslots_relay(jb_dslots *s, jb_dslot *c, int64_t now_ns)
{
    if (!c->req_open || !c->req_stream || c->relay_ns == 0 || now_ns < c->relay_ns)
        return false;
    /* Busy: it brought something, or it could not (the whole window is out, at a
     * slow sink): the next ack should find a request waiting. */
    bool busy = c->req_got > 0 || c->requested == 0;
    if (busy && s->starved == NULL && s->parked == NULL && !c->stop)
        return true;
    c->relay_ns = 0;
    return false;
}

void jb_dslots_relayed(jb_dslot *c, int batch, int64_t relay_ns, int64_t deadline_ns)
{
    /* The same slots: the server paces both requests by one MaxAckPending. */
    c->req_left = batch;
    c->req_got = 0;
    c->relay_ns = relay_ns;
    c->deadline_ns = deadline_ns;
}

void jb_dslots_close(jb_dslots *s, jb_dslot *c)
{
    bool freed = !c->req_long && c->requested > 0;
    if (!c->req_long)
        s->global_requested -= c->requested;
    c->requested = 0;
    c->req_open = false;
    c->req_stream = false;
    /* Slots asked for and not used go back to everyone. */
    if (freed)
        jb_dslots_wake_starved(s);
}

void jb_dslots_ended(jb_dslots *s, jb_dslot *c)
{
    /* Brought nothing: idle, unless it was a stream that could not bring anything
     * (the whole window out). */
    if (c->req_got == 0 && !(c->req_stream && c->requested == 0))
        c->last_empty = true;
    jb_dslots_close(s, c);
}

static jb_dparked *node(jb_dslot *c, void *msg, uint64_t tag)
{
    jb_dparked *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        p->slot = c;
        p->msg = msg;
        p->tag = tag;
    }
    return p;
}

static void append(jb_dparked **head, jb_dparked **tail, jb_dparked *p)
{
    p->next = NULL;
    if (*tail != NULL)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static jb_dparked *pop(jb_dparked **head, jb_dparked **tail)
{
    jb_dparked *p = *head;
    if (p == NULL)
        return NULL;
    *head = p->next;
    if (*head == NULL)
        *tail = NULL;
    return p;
}

/* msg (its slots counted) goes to the sink if c has room there, else to the end
 * of c's queue. False: no memory for the queue. */
static bool to_sink_or_queue(jb_dslot *c, void *msg, uint64_t tag, jb_dparked *reuse, bool *queued)
{
    *queued = false;
    if (c->at_sink < c->max_in_flight) {
        c->at_sink++;
        free(reuse);
        return true;
    }
    jb_dparked *p = reuse != NULL ? reuse : node(c, msg, tag);
    if (p == NULL)
        return false;
    p->slot = c;
    p->msg = msg;
    p->tag = tag;
    append(&c->queue, &c->queue_tail, p);
    *queued = true;
    return true;
}

/* One more message of c's open request arrived: when its batch is filled, the
 * server ended it without a status. */
static void took_one(jb_dslots *s, jb_dslot *c)
{
    if (!c->req_open || --c->req_left > 0)
        return;
    if (c->req_stream) {
        /* Slots still reserved go back; a backlog may remain: ask again at once. */
        s->global_requested -= c->requested;
        c->requested = 0;
        c->req_stream = false;
        c->restream = true;
    }
    c->req_open = false;
    jb_dslots_want(s, c);
}

jb_dslot_arrival jb_dslots_arrived(jb_dslots *s, jb_dslot *c, void *msg, uint64_t tag)
{
    bool counted = c->requested > 0;
    bool long_poll = counted && c->req_long;
    if (counted) {
        c->requested--;
        c->req_got++;
        c->last_empty = false;
        if (!c->req_long)
            s->global_requested--;
        took_one(s, c);
    } else if (c->req_stream) {
        /* Past the window (a redelivered copy of a message still held): the
         * stream's batch counts it all the same. */
        took_one(s, c);
    }
    if (!counted && (c->outstanding >= jb_dslots_window(s, c) ||
                     s->global_outstanding + s->global_requested >= s->global_max)) {
        /* From a request taken as lost (a reconnect, new settings) or past a stream's
         * window: never over the bounds. The slots other consumers' open requests
         * hold are taken: their batches may still arrive in full. */
        return JB_DSLOT_REFUSE;
    }
    c->outstanding++;
    if (long_poll && s->global_outstanding + s->global_requested >= s->global_max) {
        /* A long poll holds no process-wide slot: the message waits for one, counting
         * the slots other consumers' open requests hold (their batches may still
         * arrive in full). At most one per consumer, and its consumer's own slot is
         * taken. */
        jb_dparked *p = node(c, msg, tag);
        if (p == NULL) {
            c->outstanding--;
            return JB_DSLOT_REFUSE;
        }
        append(&s->parked, &s->parked_tail, p);
        s->nparked++;
        c->has_parked = true;
        return JB_DSLOT_PARKED;
    }
    s->global_outstanding++;
    bool queued = false;
    if (!to_sink_or_queue(c, msg, tag, NULL, &queued)) {
        c->outstanding--;
        s->global_outstanding--;
        return JB_DSLOT_REFUSE;
    }
    return queued ? JB_DSLOT_QUEUED : JB_DSLOT_DELIVER;
}

void *jb_dslots_release(jb_dslots *s, jb_dslot *c, jb_dslot **owner, uint64_t *tag)
{
    if (c != NULL) {
        c->outstanding--;
        c->at_sink--;
        s->global_outstanding--;
        if (c->req_stream && c->req_open) {
            /* The server sends the next message as soon as it sees the ack: the slot
             * stays c's, and nothing is asked for. */
            c->requested++;
            s->global_requested++;
        } else {
            jb_dslots_wake_starved(s);
            jb_dslots_want(s, c);
        }
        /* The oldest of c's waiting messages takes its place at the sink (its
         * process-wide slot was counted when it arrived). */
        jb_dparked *q = pop(&c->queue, &c->queue_tail);
        if (q != NULL) {
            void *msg = q->msg;
            if (tag != NULL)
                *tag = q->tag;
            free(q);
            c->at_sink++;
            *owner = c;
            return msg;
        }
    }
    /* A message parked for want of a process-wide slot takes a free one: one neither
     * in flight nor held by an open request. Called with c NULL when an open request
     * gave slots back (jb_dslots_has_room_for_parked). */
    while (jb_dslots_has_room_for_parked(s)) {
        jb_dparked *p = pop(&s->parked, &s->parked_tail);
        s->nparked--;
        s->global_outstanding++;
        jb_dslot *o = p->slot;
        void *msg = p->msg;
        uint64_t t = p->tag;
        o->has_parked = false;
        jb_dslots_want(s, o);
        bool queued = false;
        /* Reusing the node cannot fail. */
        (void)to_sink_or_queue(o, msg, t, p, &queued);
        if (!queued) {
            *owner = o;
            if (tag != NULL)
                *tag = t;
            return msg;
        }
    }
    return NULL;
}

bool jb_dslots_has_room_for_parked(const jb_dslots *s)
{
    return s->parked != NULL && s->global_outstanding + s->global_requested < s->global_max;
}

void *jb_dslots_unqueue(jb_dslots *s, jb_dslot *c)
{
    jb_dparked *q = pop(&c->queue, &c->queue_tail);
    if (q == NULL)
        return NULL;
    void *msg = q->msg;
    free(q);
    c->outstanding--;
    s->global_outstanding--;
    jb_dslots_wake_starved(s);
    return msg;
}

void *jb_dslots_unpark(jb_dslots *s)
{
    jb_dparked *p = pop(&s->parked, &s->parked_tail);
    if (p == NULL)
        return NULL;
    s->nparked--;
    p->slot->outstanding--;
    p->slot->has_parked = false;
    void *msg = p->msg;
    free(p);
    return msg;
}

static void unlink_slot(jb_dslot **head, jb_dslot **tail, jb_dslot *c)
{
    jb_dslot *prev = NULL;
    for (jb_dslot **p = head; *p != NULL; prev = *p, p = &(*p)->pnext)
        if (*p == c) {
            *p = c->pnext;
            if (tail != NULL && *tail == c)
                *tail = prev;
            return;
        }
}

void jb_dslots_forget(jb_dslots *s, jb_dslot *c)
{
    if (c->in_pump)
        unlink_slot(&s->pump, &s->pump_tail, c);
    if (c->in_starved)
        unlink_slot(&s->starved, NULL, c);
    c->in_pump = c->in_starved = false;
    jb_dslots_close(s, c);
}

/* dispatcher/ pull accounting (slots.c): how many messages each consumer and the
 * whole process may ask for, and what waits for a slot. Pure bookkeeping on the
 * loop thread: no NATS, no libevent, no clock of its own. Every function returns
 * what its caller must do next (deliver a message, ask for n) instead of doing it,
 * so the accounting is tested alone (tests/unit/dispatcher/test_disp_slots.c).
 *
 * The bounds: per consumer, requested (asked for and not arrived) + outstanding
 * (arrived and not settled) never exceeds its window, max_in_flight
 * (maxInFlightMessages) + prefetch (DISPATCH_PREFETCH, default 0), and at most
 * max_in_flight of them are at the sink (at_sink); the others wait in the
 * consumer's queue, in stream order, for a place at the sink. Process-wide,
 * requested + outstanding never exceeds global_max (DISPATCHER_MAX_CONCURRENT),
 * and parked messages count against it when planning. An idle consumer's long
 * poll asks for one message with its own slot only; if that message arrives while
 * the process-wide slots are all taken it is parked (at most one per consumer,
 * its consumer's slot taken, and the consumer asks for nothing more meanwhile, so
 * the order holds) until one frees. A busy consumer's stream (jb_dslots_hold_open)
 * reserves its whole free window and keeps each settled slot reserved until the
 * stream ends: JetStream paces it by MaxAckPending, the bounds do not rely on it. */
#ifndef JB_DISP_SLOTS_H
#define JB_DISP_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

/* Most messages one pull request asks for. */
#define JB_DISP_FETCH_BATCH_MAX 256
/* The batch of a stream (jb_dslots_hold_open): what the server may send on one
 * request, paced by the consumer's MaxAckPending (its window), before the
 * consumer asks again. Not a memory bound: the window is. */
#define JB_DISP_STREAM_BATCH 4096

/* One consumer's accounting; embedded in the consumer that owns it. */
typedef struct jb_dslot {
    struct jb_dslot *pnext; /* the pump or the starved list */
    bool in_pump, in_starved;
    bool stop;         /* stopped: never asks again */
    int max_in_flight; /* >= 1: at the sink at most */
    int outstanding;   /* arrived and not settled (at the sink, queued or parked) */
    int at_sink;       /* handed to the sink and not settled */
    bool has_parked;   /* a long-poll arrival waits for a process-wide slot */
    struct jb_dparked *queue, *queue_tail; /* arrived, waiting for a place at the sink */
    int requested;                         /* asked for by the open request and not arrived */
    bool req_open;                         /* a request is waiting on the server */
    bool req_long;       /* ... a long poll for one message (the consumer was idle) */
    bool req_stream;     /* ... a stream: its slots are the whole window (hold_open) */
    int req_left;        /* what the open stream may still bring (of its batch) */
    int64_t relay_ns;    /* a stream: when a fresh request takes over (0: let it end) */
    bool restream;       /* the last stream filled its batch: ask again at once */
    bool last_empty;     /* the last request brought nothing: next time, a long poll */
    int req_got;         /* messages the open request brought */
    uint32_t req_id;     /* in the request's reply subject: tells stale ends apart */
    int64_t deadline_ns; /* past this the open request is taken as lost */
    int64_t retry_at_ns; /* no request before this (after an error) */
} jb_dslot;

/* A message waiting for a process-wide slot. */
typedef struct jb_dparked {
    struct jb_dparked *next;
    jb_dslot *slot;
    void *msg;
    uint64_t tag; /* the caller's, handed back with msg (pull.c: its delivery count) */
} jb_dparked;

/* The process-wide accounting. */
typedef struct jb_dslots {
    int global_max;
    int prefetch; /* per consumer, beyond max_in_flight (DISPATCH_PREFETCH) */
    int global_outstanding;
    int global_requested;
    int nparked;
    jb_dslot *pump, *pump_tail; /* to look at, first in first served */
    jb_dslot *starved;          /* waiting for process-wide slots */
    jb_dparked *parked, *parked_tail;
} jb_dslots;

void jb_dslots_init(jb_dslots *s, int global_max);
void jb_dslot_init(jb_dslot *c, int max_in_flight);

/* c may be able to ask for messages: queue it to be looked at (once). */
void jb_dslots_want(jb_dslots *s, jb_dslot *c);
/* True while consumers wait to be looked at (the caller schedules a pass). */
bool jb_dslots_pump_waiting(const jb_dslots *s);
/* The next consumer to look at (taken off the list), or NULL. */
jb_dslot *jb_dslots_next(jb_dslots *s);

/* How many messages c should ask for now, at now_ns; 0: none (stopped, a request
 * open, backing off, the window not free enough, or the process-wide cap: then c
 * waits on the starved list until a slot frees). *long_poll: ask with a long wait
 * for one message (the consumer was idle). */
int jb_dslots_plan(jb_dslots *s, jb_dslot *c, int64_t now_ns, bool *long_poll);
/* Whether c's planned request (not a long poll) may be a stream: held open on
 * the server across events (no no_wait) with a batch of JB_DISP_STREAM_BATCH,
 * which JetStream paces by the consumer's MaxAckPending (= the window): each ack
 * lets the server send the next message at once, with no request round trip. The
 * stream takes c's whole free window from the process-wide cap, and every slot a
 * settled message frees stays reserved for the next arrival until the stream ends
 * (filled, or its expiry). So only while no consumer waits for the cap, no
 * message is parked, and the window leaves some of the cap free. */
bool jb_dslots_hold_open(const jb_dslots *s, const jb_dslot *c);
/* The request planned was published (deadline_ns: past it, it is taken as lost). */
void jb_dslots_opened(jb_dslots *s, jb_dslot *c, int n, bool long_poll, int64_t deadline_ns);
/* A stream of batch messages was published instead (jb_dslots_hold_open); at
 * relay_ns (before its expiry) a fresh request should take over. */
void jb_dslots_opened_stream(jb_dslots *s, jb_dslot *c, int batch, int64_t relay_ns,
                             int64_t deadline_ns);
/* c's stream is due for relay at now: true when a fresh stream request should be
 * published now, taking over the same slots before the open one expires (on
 * nats-server 2.9 a request that expires while a message is ready ends without a
 * status, and the consumer would wait for its deadline). False when c's stream
 * brought nothing since it was opened or relayed though it had free slots (idle),
 * or a consumer waits for the cap or a message is parked: then the stream is left
 * to end and give its slots back. */
bool jb_dslots_relay(jb_dslots *s, jb_dslot *c, int64_t now_ns);
/* The fresh request of jb_dslots_relay was published. */
void jb_dslots_relayed(jb_dslot *c, int batch, int64_t relay_ns, int64_t deadline_ns);
/* Ends c's open request (lost, dropped, or c stops): unused slots go back. */
void jb_dslots_close(jb_dslots *s, jb_dslot *c);
/* The open request ended with a status: when it brought nothing (and was not a
 * stream with the whole window out), the next one is a long poll. Then as
 * jb_dslots_close. */
void jb_dslots_ended(jb_dslots *s, jb_dslot *c);

typedef enum jb_dslot_arrival {
    JB_DSLOT_DELIVER, /* counted: deliver it now */
    JB_DSLOT_PARKED,  /* taken: it waits for a process-wide slot (jb_dslots_release) */
    JB_DSLOT_QUEUED,  /* taken: it waits for a place at the sink (jb_dslots_release) */
    JB_DSLOT_REFUSE,  /* over the bounds (its request was dropped): give it back */
} jb_dslot_arrival;
/* A message for c arrived; tag is the caller's and comes back with it from
 * jb_dslots_release (the dispatcher carries the delivery count it parsed once). */
jb_dslot_arrival jb_dslots_arrived(jb_dslots *s, jb_dslot *c, void *msg, uint64_t tag);
/* A message of c was settled: its slots go back. Returns a message that may now
 * go to its sink (the caller delivers it; *owner is its consumer): first one of
 * c's queue, else one parked for want of a process-wide slot; NULL when none.
 * Call again with c NULL (nothing settled) until it returns NULL. *tag (may be
 * NULL) is the message's tag from jb_dslots_arrived. */
void *jb_dslots_release(jb_dslots *s, jb_dslot *c, jb_dslot **owner, uint64_t *tag);
/* A parked message could take a process-wide slot now (one neither in flight nor
 * held by an open request): call jb_dslots_release with c NULL. Open requests
 * giving slots back (a 408, a deadline, a stop) make this true without any
 * delivery settling. */
bool jb_dslots_has_room_for_parked(const jb_dslots *s);
/* Takes one message of c's queue back (c stops): its slots are returned; the
 * caller gives it back. NULL when none is left. */
void *jb_dslots_unqueue(jb_dslots *s, jb_dslot *c);
/* c's window: max_in_flight + the process's prefetch. */
int jb_dslots_window(const jb_dslots *s, const jb_dslot *c);
/* Takes one parked message back (stopping): its consumer's slot is returned; the
 * caller gives the message back. NULL when none is left. */
void *jb_dslots_unpark(jb_dslots *s);
/* Takes c off every list and closes its request (before it is freed). */
void jb_dslots_forget(jb_dslots *s, jb_dslot *c);
/* Consumers held back by the process-wide cap get another look. */
void jb_dslots_wake_starved(jb_dslots *s);

#endif

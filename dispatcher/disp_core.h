/* The dispatcher's private objects. Calls flow one way: disp.c (the loop: intake,
 * consumers, delivery, verdict and settling) uses pull.c (pull requests, on the
 * accounting of slots.c), consumers.c (the table), info.c and dlq.c (workers with
 * their own thread and mailbox), settle.c, http.c, deliver.c, sinkauth.c; none of
 * them calls back into disp.c: they return what the loop must do, or answer
 * through the loop's mailbox. */
#ifndef JB_DISP_CORE_H
#define JB_DISP_CORE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stddef.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/disp_settle.h"
#include "dispatcher/disp_slots.h"
#include "dispatcher/jb_disp.h"
#include "subscription/jb_sub.h"

struct event;

/* How long an idle consumer's long poll (one message) waits on the server. An
 * idle consumer costs one request per this period. */
#define JB_DISP_PULL_EXPIRES_MS 30000
/* How long a busy consumer's request waits on the server: one held open across
 * events ends when filled or at this expiry (with a 408); a no_wait one, when the
 * process-wide cap is contended, ends right after what it brought (nats-server
 * 2.9 holds it up to this expiry when nothing is pending). Also the longest a
 * consumer starved for the process-wide cap waits for slots an open request holds. */
#define JB_DISP_PULL_BUSY_EXPIRES_MS 500
/* A busy consumer's stream is relayed (a fresh request takes over) this long
 * before its expiry: more than a round trip and the deadline scan's period. */
#define JB_DISP_STREAM_RELAY_MS 150
/* A request with no end seen (no status, not filled) this long after its expiry
 * is taken as lost and asked again. nats-server 2.9.10 drops a request silently
 * when a message is ready between its expiry and its expiry timer (consumer.go
 * nextWaiting), so this bounds how long a consumer waits after such an end. */
#define JB_DISP_PULL_GRACE_MS 250
/* Deadlines are checked on a timer, at most this often (and every second by
 * jb_dpull_tick). */
#define JB_DISP_PULL_SCAN_MS 50
/* Buckets of the consumer-name hash (chained: any number of consumers fits). */
#define JB_DISP_BUCKETS 1024
/* Consumer info for the pending metrics and lost-consumer detection: this often. */
#define JB_DISP_INFO_EVERY_MS 5000
/* Consumer info requests per second, at most (pending gauges, lost consumers). */
#define JB_DISP_INFO_MAX_PER_S 200
/* Dead-letter publish timeout. */
#define JB_DISP_DLQ_TIMEOUT_MS 5000
/* The subject prefix of the dead-letter stream. */
#define JB_DISP_DLQ_PREFIX "kyma-dlq"
/* The loop's mailbox holds 2 x DISPATCHER_MAX_CONCURRENT + this many entries:
 * consumer changes from the reconciler (which waits for room) and the replies of
 * the DLQ and info workers (at most one per delivery in flight, reserved). The
 * inbox subscription's own queue (nats.c's pending limit) is at least as large:
 * messages of pull requests (bounded by the slots, plus one per idle consumer's
 * long poll) and the requests' end statuses wait there until the loop takes them
 * after the read that brought them. */
#define JB_DISP_MAILBOX_SPARE 1024
/* A message over its consumer's bounds goes back with this delay: a stream open on
 * the server would otherwise bring it straight back (only a copy redelivered while
 * the first is still at the sink gets there). */
#define JB_DISP_REFUSE_DELAY_MS 100

typedef struct jb_disp jb_disp;
typedef struct dconsumer dconsumer;
typedef struct inflight inflight;

/* What the loop's mailbox carries (jb_mail.kind; ptr as said). */
typedef enum qkind {
    Q_READY,   /* a consumer to pull from, or its new settings (jb_sub_consumer *) */
    Q_REMOVED, /* a consumer no longer wanted (jb_sub_consumer *) */
} qkind;

/* One consumer pulled from. Loop only: no thread but the loop touches it. */
struct dconsumer {
    jb_dslot slot;        /* pull accounting (slots.c) */
    dconsumer *next;      /* the table's list */
    dconsumer *hnext;     /* the table's hash chain */
    jb_sub_consumer info; /* replaced when the settings change */
};
#define DCONSUMER(s) ((dconsumer *)((char *)(s)-offsetof(dconsumer, slot)))

/* ------------------------------------------------- the table (consumers.c) */

/* The consumers by name and in a list. Loop only. */
typedef struct jb_dtable {
    dconsumer *buckets[JB_DISP_BUCKETS];
    dconsumer *list;
} jb_dtable;
void jb_dtable_add(jb_dtable *t, dconsumer *c);
/* The consumer named name[0..len) that is not stopped, or NULL. */
dconsumer *jb_dtable_find(jb_dtable *t, const char *name, size_t len);
void jb_dtable_remove(jb_dtable *t, dconsumer *c);

/* --------------------------------------------------------- pulling (pull.c) */

/* The inbox subscription, pull requests and their ends, with the accounting of
 * slots.c. Loop thread only. Returns what the loop must do; never calls back
 * into it. */
typedef struct jb_dpull jb_dpull;
/* nc: the loop-owned connection (jb_nats_connect_loop; borrowed); table: the
 * consumers (borrowed). global_max: DISPATCHER_MAX_CONCURRENT; prefetch:
 * DISPATCH_PREFETCH. */
jb_status jb_dpull_create(const jb_cfg *cfg, struct event_base *base, natsConnection *nc,
                          jb_dtable *table, int global_max, int prefetch, jb_dpull **out,
                          jb_err *err);
/* Subscribes the inbox; JB_ERR_NATS when it cannot. */
jb_status jb_dpull_start(jb_dpull *p, jb_err *err);
/* The next message of a pull request that arrived (after a read of the loop-owned
 * connection), or NULL when none is left. Statuses that ended requests are handled
 * on the way; *kick becomes true when a consumer looks lost (the caller asks the
 * reconciler for a pass). */
natsMsg *jb_dpull_next(jb_dpull *p, bool *kick);
/* No new pull request from now on. */
void jb_dpull_stop_requests(jb_dpull *p);
/* Stopping: unsubscribes with a drain (what the server sent before it saw the
 * unsubscribe still arrives through jb_dpull_next); jb_dpull_inbox_drained says
 * when nothing more can come. */
void jb_dpull_drain_inbox(jb_dpull *p);
bool jb_dpull_inbox_drained(jb_dpull *p);
/* Unsubscribes (if still subscribed); returns one message still queued, or NULL:
 * call until NULL and give each back. */
natsMsg *jb_dpull_close_inbox(jb_dpull *p);
void jb_dpull_destroy(jb_dpull *p);
/* c may ask for messages: a request at the end of this loop turn if slots allow. */
void jb_dpull_want(jb_dpull *p, dconsumer *c);
/* c was (re)created or changed: its open request, if any, is closed and it asks
 * again at once. */
void jb_dpull_renew(jb_dpull *p, dconsumer *c);
/* c stops: no new request, its open one is closed. */
void jb_dpull_stop_consumer(jb_dpull *p, dconsumer *c);
/* One message of c that waits for a place at the sink, taken back (c stops), or
 * NULL: the caller gives it back. */
natsMsg *jb_dpull_unqueue(jb_dpull *p, dconsumer *c);
/* Takes c out of every list (before it is freed). */
void jb_dpull_forget(jb_dpull *p, dconsumer *c);
/* A message arrived. DELIVER: deliver it now (*out is its consumer, *delivered
 * its delivery count); PARKED or QUEUED: taken, it comes back from
 * jb_dpull_release; REFUSE: its reply subject is not an ack subject, no consumer
 * (*out NULL), or over its consumer's bounds (*out that consumer): the caller
 * gives it back. The reply subject is parsed here only: the count travels with
 * the message. */
jb_dslot_arrival jb_dpull_arrived(jb_dpull *p, natsMsg *msg, dconsumer **out, uint64_t *delivered);
/* A message of c was settled. Returns a message that now may go to its sink (one
 * of c's that waited, or one parked for want of a process-wide slot; the caller
 * delivers it; *owner is its consumer, *delivered its delivery count), or NULL.
 * Call again with c NULL until it returns NULL. */
natsMsg *jb_dpull_release(jb_dpull *p, dconsumer *c, dconsumer **owner, uint64_t *delivered);
/* One parked message taken back (stop), or NULL: the caller NAKs it. */
natsMsg *jb_dpull_unpark(jb_dpull *p);
/* A parked message may take a slot that open requests gave back (a status, a
 * deadline): the loop then calls jb_dpull_release with c NULL. */
bool jb_dpull_room_for_parked(const jb_dpull *p);
/* A pull request ended with a status message (takes msg). True: the consumer
 * looks lost, the caller asks the reconciler for a pass (at most every 2 s). */
bool jb_dpull_status(jb_dpull *p, natsMsg *msg);
/* Every second: reconnects, lost requests, retries. */
void jb_dpull_tick(jb_dpull *p);

/* ------------------------------------------------ consumer info (info.c) */

/* The consumer-info worker: its own thread and mailbox, one per process. */
typedef struct jb_dinfow jb_dinfow;
/* pending, ack_pending: the gauges it sets (may be NULL). loops: how many loops
 * hand it passes (each at most one at a time). */
jb_status jb_dinfow_create(const jb_cfg *cfg, jsCtx *js, jb_metric *pending, jb_metric *ack_pending,
                           size_t loops, jb_dinfow **out, jb_err *err);
/* Stops the thread; a pass not run still replies (drain the loops' mailboxes
 * afterwards). */
void jb_dinfow_stop(jb_dinfow *w);
void jb_dinfow_destroy(jb_dinfow *w);

/* One loop's client of the worker. Replies come through reply_to (the loop's
 * mailbox); lost(ud) runs on the loop when a pass found a consumer gone. w is
 * borrowed. NULL when out of memory. */
typedef struct jb_dinfo jb_dinfo;
jb_dinfo *jb_dinfo_create(jb_dinfow *w, jb_mailbox *reply_to, void (*lost)(void *ud), void *ud);
/* Starts a pass over t's consumers unless one of this loop's is still running
 * (loop). */
void jb_dinfo_pass(jb_dinfo *i, const jb_dtable *t);
/* Frees (after the worker stopped and reply_to was drained). */
void jb_dinfo_destroy(jb_dinfo *i);

/* --------------------------------------------------- dead letters (dlq.c) */

/* The DLQ worker: its own thread and mailbox (cap: one per delivery in flight). */
typedef struct jb_ddlq jb_ddlq;
jb_status jb_ddlq_create(const jb_cfg *cfg, jsCtx *js, size_t cap, jb_ddlq **out, jb_err *err);
/* Publishes *msg (taken on success: *msg becomes NULL) and then runs done on
 * reply_to's loop with m->val 1 when it is stored, 0 when not. JB_ERR_FULL /
 * JB_ERR_CLOSED: nothing taken. */
jb_status jb_ddlq_submit(jb_ddlq *q, natsMsg **msg, jb_mailbox *reply_to, jb_mail_fn done,
                         void *ud);
/* Stops the thread; what it never published answers "not stored". */
void jb_ddlq_stop(jb_ddlq *q);
void jb_ddlq_destroy(jb_ddlq *q);
/* Ensures the dead-letter stream (blocking). */
jb_status jb_disp_ensure_dlq(const jb_cfg *cfg, jsCtx *js, jb_err *err);
/* The dead-letter message built from the original. */
natsMsg *jb_disp_dlq_msg(natsMsg *orig, const char *consumer, const char *ns, const char *name,
                         const char *sink, int code, const char *body, size_t body_len,
                         uint64_t attempts);

typedef struct disp_metrics {
    jb_metric *delivery;      /* eventing_ec_nats_delivery_per_subscription_total */
    jb_metric *duration;      /* eventing_ec_nats_subscriber_dispatch_duration_seconds */
    jb_metric *subscribed;    /* eventing_ec_event_type_subscribed_total */
    jb_metric *health;        /* eventing_ec_health */
    jb_metric *sub_status;    /* eventing_ec_subscription_status */
    jb_metric *retries;       /* jetbridge_dispatcher_retries_total */
    jb_metric *dead;          /* jetbridge_dispatcher_dead_letters_total */
    jb_metric *pending;       /* jetbridge_consumer_pending */
    jb_metric *ack_pending;   /* jetbridge_consumer_ack_pending */
    jb_metric *in_flight;     /* jetbridge_dispatcher_in_flight */
    jb_metric *last_err_ts;   /* jetbridge_dispatcher_last_error_timestamp_seconds */
    jb_metric *last_err_code; /* jetbridge_dispatcher_last_error_code */
} disp_metrics;

/* What every loop shares, owned by the process (process.c) and read-only for the
 * loops: borrowed, it outlives them. */
typedef struct jb_dshared {
    const jb_cfg *cfg;
    disp_metrics m;     /* registered once; jb_metric_* is thread-safe */
    natsConnection *nc; /* the host's (nats.c's threads): workers, dead letters */
    jsCtx *js;
    const jb_dguard *guard; /* SINK_DENY_NETWORKS and friends, immutable */
    jb_ddlq *dlq;           /* set by jb_disp_start before any loop delivers */
    jb_dinfow *info;        /* idem */
    jb_dsecrets *secrets;   /* the Secret reader thread (started when first needed) */
    void (*kick)(void *ud); /* asks the reconciler for a pass (any thread) */
    void *kick_ud;
} jb_dshared;

/* ------------------------------------------------------- one loop (disp.c) */

/* One dispatcher loop: its own event_base (the caller's for loop 0), its own
 * loop-owned NATS connection, curl multi, mailbox, consumer table, pull requests
 * and in-flight deliveries, with a share `max` of DISPATCHER_MAX_CONCURRENT. Every
 * function below runs on the loop's thread, or while its loop does not run,
 * unless it says otherwise. */
typedef struct jb_dloop jb_dloop;
/* sh is borrowed. idx names the loop in logs. */
jb_status jb_dloop_create(const jb_dshared *sh, int idx, struct event_base *base, int max,
                          jb_dloop **out, jb_err *err);
/* Subscribes the inbox, starts the timers; sh->dlq and sh->info are set. */
jb_status jb_dloop_start(jb_dloop *l, jb_err *err);
/* Where the reconciler's consumer changes for this loop go (Q_READY/Q_REMOVED,
 * ptr a jb_sub_consumer * the loop frees; post_wait). Any thread. */
jb_mailbox *jb_dloop_mailbox(jb_dloop *l);
/* Its loop-owned connection is connected. Any thread. */
bool jb_dloop_connected(jb_dloop *l);
/* Graceful stop on the loop's thread; done(ud) runs there once when nothing is in
 * flight and acks/NAKs were written. */
void jb_dloop_stop(jb_dloop *l, void (*done)(void *ud), void *ud);
/* Teardown in two steps around the shared workers' stop (their replies land in
 * the loops' mailboxes): halt closes the mailbox and the consumers; destroy
 * settles what is left and frees. Loop not running. NULL is fine. */
void jb_dloop_halt(jb_dloop *l);
void jb_dloop_destroy(jb_dloop *l);

/* Which of n loops owns consumer name: FNV-1a of the name, stable for the life of
 * the process (and across processes). */
int jb_dloop_of(const char *name, int n);

#endif

/* The dispatcher's private state, shared by disp.c (the loop side), pull.c (pull
 * requests, consumer info) and dlq.c (dead letters). */
#ifndef JB_DISP_CORE_H
#define JB_DISP_CORE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/jb_disp.h"
#include "subscription/jb_sub.h"

struct event;

/* How long one pull request waits on the server for messages. An idle consumer
 * costs one request per this period. */
#define JB_DISP_PULL_EXPIRES_MS 30000
/* A request with no end seen (no status, not filled) this long after its expiry
 * is taken as lost (the 408 went missing). */
#define JB_DISP_PULL_GRACE_MS 5000
/* Most messages one pull request asks for. */
#define JB_DISP_FETCH_BATCH_MAX 256
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
/* The loop's mailbox holds 2 x DISPATCHER_MAX_CONCURRENT + this many messages.
 * What arrives there: messages of pull requests (at most the process-wide slots
 * asked for, plus one per idle consumer's long poll), the requests' end statuses,
 * consumer changes from the reconciler (which waits for room) and the replies of
 * the DLQ and info workers (at most one per delivery in flight, reserved). Full
 * (only when thousands of idle consumers receive at once): a message is given back
 * with a 1 s NAK, a status is dropped (its request ends at its deadline). */
#define JB_DISP_MAILBOX_SPARE 1024

typedef struct jb_disp jb_disp;
typedef struct dconsumer dconsumer;
typedef struct inflight inflight;

/* What the loop's mailbox carries (jb_mail.kind; ptr as said). */
typedef enum qkind {
    Q_MSG,     /* a message of a pull request (natsMsg *) */
    Q_STATUS,  /* a pull request's end (natsMsg *) */
    Q_READY,   /* a consumer to pull from, or its new settings (jb_sub_consumer *) */
    Q_REMOVED, /* a consumer no longer wanted (jb_sub_consumer *) */
} qkind;

/* A message that waits for a process-wide slot (see jb_disp_arrived). */
typedef struct parked {
    struct parked *next;
    dconsumer *c;
    natsMsg *msg;
} parked;

/* One consumer pulled from. Loop only: no thread but the loop touches it. */
struct dconsumer {
    jb_disp *d;
    dconsumer *next;  /* d->consumers */
    dconsumer *hnext; /* d->buckets */
    dconsumer *pnext; /* d->pump or d->starved */
    bool in_pump, in_starved;
    jb_sub_consumer info; /* replaced when the settings change */
    int outstanding;      /* arrived and not settled: counts against max_in_flight */
    int requested;        /* asked for by the open pull request and not arrived */
    int max_in_flight;
    bool stop;
    bool req_open;           /* a pull request is waiting on the server */
    bool req_long;           /* ... waiting for one message (the consumer was idle) */
    bool last_empty;         /* the last request brought nothing */
    int req_got;             /* messages the open request brought */
    uint32_t req_id;         /* in the request's reply subject: tells stale ends apart */
    int64_t req_deadline_ns; /* past this the open request is taken as lost */
    int64_t retry_at_ns;     /* no request before this (after an error) */
};

/* A consumer whose info the info thread reads. */
typedef struct infojob {
    char *ns, *name, *consumer;
    size_t n; /* in the first job of a pass: how many jobs */
} infojob;

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

struct jb_disp {
    const jb_cfg *cfg;
    struct event_base *base;
    jb_metrics *metrics;
    disp_metrics m;
    natsConnection *nc;
    jsCtx *js;
    jb_sub_reconciler *rec; /* set before start; cleared under mu when stopping */
    jb_dhttp *http;
    jb_dguard *guard; /* SINK_DENY_NETWORKS and friends, for every request */
    jb_dauth *auth;   /* sink credentials: secret files and OAuth2 tokens, loop */

    pthread_mutex_t mu; /* guards what the comments below say */
    jb_mailbox *mb;     /* to the loop: messages, statuses, consumers, worker replies */

    /* Pulling: one inbox subscription for every consumer (nats.c calls its callback
     * on one thread of its own), requests published from the loop. */
    natsSubscription *inbox_sub;
    char inbox[64];  /* _INBOX.<nuid>; replies go to <inbox>.<consumer>.<req id> */
    bool inbox_done; /* mu: nats.c finished with the subscription's callback */
    pthread_cond_t inbox_cv;
    natsStatistics *stats;
    uint64_t reconnects;
    int global_outstanding; /* loop */
    int global_requested;   /* loop */
    int global_max;
    dconsumer *buckets[JB_DISP_BUCKETS]; /* loop: by consumer name */
    dconsumer *pump, *pump_tail;         /* loop: to look at, in order */
    dconsumer *starved;                  /* loop: waiting for process-wide slots */
    parked *parked, *parked_tail;        /* loop: long-poll arrivals waiting for a slot */
    int nparked;
    struct event *pump_ev;
    int64_t last_kick_ns;

    /* The info worker: one thread, whatever the number of consumers. */
    jb_worker *info;
    bool info_busy; /* loop: a pass was posted and has not replied */
    struct event *info_ev;
    struct event *info_soon_ev; /* a pass shortly after new consumers came */

    jb_worker *dlq;      /* publishes dead letters */
    atomic_long mb_full; /* messages given back because the mailbox was full */

    /* loop only */
    dconsumer *consumers;
    inflight *inflight_head;
    size_t ninflight;
    bool started;
    bool stopping;
    bool finished;
    struct event *grace_ev;
    struct event *status_ev;
    struct event *ack_ev; /* runs flush_acks at the end of a loop turn */
    natsMsg **acks;       /* messages whose ack is deferred to ack_ev */
    size_t nacks, acks_cap;
    void (*done)(void *ud);
    void *done_ud;
    uint64_t rng;
};

/* disp.c: asks the reconciler for a pass (any thread; nothing once stopping). */
void jb_disp_kick_reconciler(jb_disp *d);

/* pull.c (loop thread unless said otherwise). */
/* Creates the pulling state's events (jb_disp_create). */
jb_status jb_disp_pull_init(jb_disp *d, jb_err *err);
/* Frees it (after jb_disp_pull_stop). */
void jb_disp_pull_free(jb_disp *d);
/* Subscribes the inbox and starts the info thread; JB_ERR_NATS when it cannot. */
jb_status jb_disp_pull_start(jb_disp *d, jb_err *err);
/* Unsubscribes the inbox and waits (bounded) until nats.c stopped calling back. */
void jb_disp_pull_stop(jb_disp *d);
/* The consumer named name (not stopped), or NULL. */
dconsumer *jb_disp_lookup(jb_disp *d, const char *name, size_t len);
void jb_disp_hash_add(jb_disp *d, dconsumer *c);
/* Takes c out of the hash and the pump lists (before it is freed). */
void jb_disp_forget(jb_disp *d, dconsumer *c);
/* c may be able to ask for messages: look at it at the end of this loop turn. */
void jb_disp_pump_later(jb_disp *d, dconsumer *c);
/* A message arrived: counts it against its consumer. 1: deliver it now (*out is
 * its consumer); 0: parked until a process-wide slot frees (taken); -1: it must go
 * back (no consumer, or over the bounds): the caller NAKs it. */
int jb_disp_arrived(jb_disp *d, natsMsg *msg, dconsumer **out);
/* NAKs the parked messages (stop, destroy). */
void jb_disp_unpark_all(jb_disp *d);
/* disp.c: delivers msg of c (a slot of c and a process-wide one are counted). */
void jb_disp_deliver(jb_disp *d, dconsumer *c, natsMsg *msg);
/* Returns one slot of c (its message was settled). */
void jb_disp_release_slot(dconsumer *c);
/* A pull request ended with a status message (takes msg). */
void jb_disp_on_status(jb_disp *d, natsMsg *msg);
/* Ends c's open request (it stops, or the request was lost). */
void jb_disp_close_request(dconsumer *c);
/* Every second: reconnects, lost requests, retries. */
void jb_disp_pull_tick(jb_disp *d);
/* A new consumer: an info pass soon (coalesced), so its metrics appear. */
void jb_disp_info_soon(jb_disp *d);
/* The info worker's handler (a pass: ptr infojob[val]). */
void jb_disp_info_pass(jb_mail *m, void *ud);
/* Settling by publishing to the message's reply subject: nats.c 3.4.1's natsMsg_Ack
 * and friends need a JetStream subscription (they dereference it). what: "+ACK",
 * "+WPI", "+TERM". */
natsStatus jb_disp_settle(jb_disp *d, natsMsg *msg, const char *what);
natsStatus jb_disp_nak(jb_disp *d, natsMsg *msg, int64_t delay_ms);

/* dlq.c: ensure the dead-letter stream; the DLQ worker's handler (ptr: the
 * natsMsg to publish, taken; replies with val 1 when stored); the dead-letter
 * message built from the original. */
jb_status jb_disp_ensure_dlq(const jb_cfg *cfg, jsCtx *js, jb_err *err);
void jb_disp_dlq_publish(jb_mail *m, void *ud);
natsMsg *jb_disp_dlq_msg(natsMsg *orig, const char *consumer, const char *ns, const char *name,
                         const char *sink, int code, const char *body, size_t body_len,
                         uint64_t attempts);

#endif

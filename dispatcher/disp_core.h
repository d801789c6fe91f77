/* The dispatcher's private state, shared by disp.c (the loop side), fetch.c (the
 * fetch threads) and dlq.c (dead letters). */
#ifndef JB_DISP_CORE_H
#define JB_DISP_CORE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/jb_disp.h"
#include "subscription/jb_sub.h"

struct event;

/* Fetch long-poll: how long one fetch waits on an idle consumer. Bounds how fast a
 * fetch thread notices stop. */
#define JB_DISP_FETCH_EXPIRY_MS 1000
/* Most messages one fetch asks for. */
#define JB_DISP_FETCH_BATCH_MAX 256
/* Dead-letter publish timeout. */
#define JB_DISP_DLQ_TIMEOUT_MS 5000
/* The subject prefix of the dead-letter stream. */
#define JB_DISP_DLQ_PREFIX "kyma-dlq"

typedef struct jb_disp jb_disp;
typedef struct dconsumer dconsumer;
typedef struct inflight inflight;

typedef enum qkind { Q_MSGS, Q_READY, Q_REMOVED, Q_FETCHER_EXIT, Q_DLQ_DONE } qkind;

/* One item handed to the loop by another thread. */
typedef struct qitem {
    struct qitem *next;
    qkind kind;
    struct dconsumer *c;
    natsMsg **msgs; /* Q_MSGS, malloc'd array */
    int nmsgs;
    jb_sub_consumer info; /* Q_READY, Q_REMOVED */
    inflight *f;          /* Q_DLQ_DONE */
    bool ok;
} qitem;

/* One consumer being fetched from. The loop owns the list and info; outstanding,
 * max_in_flight and stop are shared with the fetch thread under d->mu. */
struct dconsumer {
    jb_disp *d;
    dconsumer *next;
    jb_sub_consumer info;  /* loop only: replaced when the settings change */
    jb_sub_consumer tinfo; /* the fetch thread's copy, never changed while it runs */
    int outstanding;       /* fetched and not finished: counts against max_in_flight */
    int max_in_flight;
    bool stop;
    pthread_cond_t cv; /* d->mu: the fetch thread waits here for its own slots */
    bool waiting;      /* d->mu: ... and says so, so that only useful wake-ups happen */
    pthread_t thread;
    bool thread_started;
    bool joined;
    bool exited;           /* the fetch thread said goodbye (loop) */
    natsSubscription *sub; /* created by the fetch thread, destroyed by the loop */
    qitem goodbye;         /* the fetch thread's last post: needs no allocation */
};

/* A dead-letter publish for the DLQ thread. */
typedef struct dlqjob {
    struct dlqjob *next;
    inflight *f;
    natsMsg *msg;
} dlqjob;

typedef struct disp_metrics {
    jb_metric *delivery;    /* eventing_ec_nats_delivery_per_subscription_total */
    jb_metric *duration;    /* eventing_ec_nats_subscriber_dispatch_duration_seconds */
    jb_metric *subscribed;  /* eventing_ec_event_type_subscribed_total */
    jb_metric *health;      /* eventing_ec_health */
    jb_metric *sub_status;  /* eventing_ec_subscription_status */
    jb_metric *retries;     /* jetbridge_dispatcher_retries_total */
    jb_metric *dead;        /* jetbridge_dispatcher_dead_letters_total */
    jb_metric *pending;     /* jetbridge_consumer_pending */
    jb_metric *ack_pending; /* jetbridge_consumer_ack_pending */
    jb_metric *in_flight;   /* jetbridge_dispatcher_in_flight */
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

    pthread_mutex_t mu;      /* guards what the comments below say */
    pthread_cond_t slots_cv; /* fetch threads blocked by the process-wide cap wait here */
    int global_waiters;      /* mu */
    int global_outstanding;  /* mu */
    int global_max;
    qitem *qhead, *qtail; /* mu */
    atomic_bool wake_pending;
    int wakefd;
    struct event *wake_ev;

    pthread_t dlq_thread;
    bool dlq_started;
    pthread_cond_t dlq_cv;
    dlqjob *dlq_head, *dlq_tail; /* mu */
    bool dlq_stop;               /* mu */

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

/* disp.c: queue an item for the loop (any thread; takes ownership of it). */
void jb_disp_post(jb_disp *d, qitem *it);
/* disp.c: asks the reconciler for a pass (any thread; nothing once stopping). */
void jb_disp_kick_reconciler(jb_disp *d);
/* fetch.c */
void *jb_disp_fetch_main(void *arg);
/* Returns n slots of c (any thread; takes d->mu) and wakes its fetch thread when
 * that lets it fetch a useful batch. */
void jb_disp_release_slots(dconsumer *c, int n);
/* Wakes c's fetch thread (caller holds d->mu). */
void jb_disp_wake_fetcher(dconsumer *c);
/* dlq.c: ensure the dead-letter stream; the DLQ worker thread; the dead-letter
 * message built from the original. */
jb_status jb_disp_ensure_dlq(const jb_cfg *cfg, jsCtx *js, jb_err *err);
void *jb_disp_dlq_main(void *arg);
natsMsg *jb_disp_dlq_msg(natsMsg *orig, const char *consumer, const char *ns, const char *name,
                         const char *sink, int code, const char *body, size_t body_len,
                         uint64_t attempts);

#endif

/*
 * Private to publisher/: what pub.c (lifecycle, control thread) and the HTTP
 * threads (server.c and the files pub_thread.h lists) share.
 */
#ifndef JB_PUB_SERVER_H
#define JB_PUB_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "config/jb_cfg.h"
#include "publisher/jb_pub.h"
#include "publisher/pub_authz.h"
#include "publisher/pub_guard.h"
#include "publisher/pub_tls.h"
#include "publisher/pub_internal.h"

typedef struct pub_thread pub_thread;
typedef struct jb_sub_store jb_sub_store;

typedef struct pub_metric_set {
    jb_metric *req_total; /* eventing_epp_requests_total{code,method,path} */
    jb_metric *req_dur;   /* eventing_epp_requests_duration_seconds{code,method,path} */
    jb_metric
        *backend_dur;    /* eventing_epp_backend_duration_milliseconds{code,destination_service} */
    jb_metric *type_pub; /* eventing_epp_event_type_published_total{event_type,event_source,code} */
    jb_metric *health;   /* eventing_epp_health */
    jb_metric *rejected; /* jetbridge_publisher_rejected_total{reason} */
    jb_metric *in_flight; /* jetbridge_publisher_in_flight */
} pub_metric_set;

/* A request for the control thread: GET /{application}/v1/events/subscribed. */
#define PUB_CTL_JOBS_MAX 64
#define PUB_APP_MAX      256
typedef struct pub_ctl_job {
    pub_thread *t;
    void *token; /* the waiting request, handed back untouched */
    char app[PUB_APP_MAX];
    size_t app_len;
} pub_ctl_job;

struct jb_pub {
    const jb_cfg *cfg;
    jb_metrics *metrics;
    pub_metric_set m;
    pub_guard_cfg guard; /* framing limits of every ingress connection */
    pub_tls *tls;        /* NULL: plain HTTP */
    pub_authz *authz;    /* NULL: INGRESS_AUTH=none */
    natsConnection *nc;
    jb_pub_names names;
    struct jb_app_registry *apps; /* known applications (application-type labels) */
    char dest_service[256];       /* destination_service label: NATS URL without userinfo */
    int nthreads;
    pub_thread **threads;
    int port;
    int conns_per_thread;
    atomic_int in_flight;       /* JetStream publishes awaiting their ack, all threads */
    atomic_bool stream_ok;      /* the stream was created/verified since the last connect */
    atomic_bool stream_recheck; /* a publish saw "no responders": verify the stream */
    atomic_bool stopping;
    bool started, stopped;

    /* control thread */
    jb_worker *ctl;           /* common/jb_mailbox.h worker; its mailbox holds the jobs */
    struct ctl_state *ctl_st; /* the stream's state between rounds (ctl thread) */
    jsCtx *ctl_js;
    jb_sub_store *store;
};

/* ---- server.c */

/* Creates thread idx's loop, evhttp (limits from cfg) on listen_fd (taken), and
 * its JetStream context. */
/* on_request is evhttp's callback for every request of the thread (its arg: the
 * thread); handlers.c's pub_on_request. */
jb_status pub_thread_create(jb_pub *p, int idx, int listen_fd,
                            void (*on_request)(struct evhttp_request *req, void *arg),
                            pub_thread **out, jb_err *err);
jb_status pub_thread_start(pub_thread *t);
/* Asks the thread to stop accepting and exit once its requests are answered. */
void pub_thread_request_stop(pub_thread *t);
void pub_thread_join(pub_thread *t);
void pub_thread_destroy(pub_thread *t);
/* True while thread t's own NATS connection (the one it publishes on) is up. */
bool pub_thread_connected(pub_thread *t);
/* From the control thread: the answer to a subscribed query. body is malloc'd and
 * taken. */
void pub_thread_post_ctl(pub_thread *t, void *token, int status, char *body, size_t len);

/* ---- ctl.c */

/* The control worker (jb-pub-ctl), started once the HTTP threads exist; stopped
 * after they are gone (a job still waiting has nobody to answer to). */
jb_status pub_ctl_start(jb_pub *p, jb_err *err);
void pub_ctl_stop(jb_pub *p);
/* From an HTTP thread: queues a subscribed query. False when the queue is full. */
bool pub_ctl_submit(jb_pub *p, pub_thread *t, void *token, const char *app, size_t app_len);

#endif

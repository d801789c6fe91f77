/*
 * Private to publisher/: one HTTP thread of the publisher and the pieces its files
 * share. The thread's files call one way:
 *   server.c   lifecycle, the loop, the completion queue (nats.c and control
 *              threads hand results back through it) and the periodic tick;
 *   conns.c    connection accounting (MAX_CONNECTIONS per thread);
 *   handlers.c the HTTP routes, from a request to events ready to publish;
 *   request.c  publishing, the waiting requests, their answers and metrics;
 *   ackmap.c   the map from a published message to its waiting request.
 * server.c registers conns.c and handlers.c with evhttp and hands completions to
 * request.c; handlers.c calls request.c; request.c calls only ackmap.c.
 */
#ifndef JB_PUB_THREAD_H
#define JB_PUB_THREAD_H

#include <event2/event.h>
#include <event2/http.h>
#include <nats/nats.h>
#include <pthread.h>

#include "publisher/pub_ackmap.h"
#include "publisher/pub_server.h"

/* One request waiting for acks (or for the control thread). */
typedef struct pub_req {
    pub_thread *t;
    struct evhttp_request *req;
    jb_pub_route r;
    enum evhttp_cmd_type method;
    int64_t start_ns;
    size_t n, remaining;
    int *codes;   /* per message: 0 while pending, else the HTTP status */
    char **texts; /* per message: error text (malloc'd) or NULL */
    /* Per message: the type as its producer sent it and the source (malloc'd), the
     * labels of eventing_epp_event_type_published_total; NULL for a message not
     * counted (the legacy endpoint's second copy: one count per event). */
    char **mtype, **msource;
    char id[37]; /* legacy: the event id */
} pub_req;

/* One entry of the completion queue. */
typedef enum cq_kind { CQ_ACK, CQ_CTL, CQ_STOP } cq_kind;
typedef struct cq_entry {
    cq_kind kind;
    natsMsg *msg; /* CQ_ACK: the published message, ours again */
    void *token;  /* CQ_CTL: the pub_req */
    int status;
    char *text; /* malloc'd or NULL; CQ_CTL: the body */
    size_t len;
} cq_entry;

struct pub_thread {
    jb_pub *p;
    int idx;
    pthread_t tid;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    jsCtx *js;
    jsPubOptions popts;

    pthread_mutex_t qmu; /* guards q*, closed, wake_pending */
    cq_entry *q;
    size_t qcap, qhead, qlen;
    bool closed, wake_pending;
    int efd;
    struct event *wake_ev, *tick_ev, *conn_ev;

    pub_ackmap *acks; /* messages published and not settled */
    size_t pending_ctl;

    /* Connection counting (conns.c; libevent 2.1 has no evhttp_set_max_connections). */
    struct bufferevent **new_bevs;
    size_t n_new_bevs, new_bevs_cap;
    int nconns;
    bool paused;
    bool stopping;
    int64_t stop_deadline_ns;
};

/* What an answer holds. */
typedef struct reply {
    int code;
    const char *ctype; /* NULL: text/plain */
    const char *body;
    size_t len;
    bool retry_after;
    const char *allow;
    int retry_after_s;    /* > 0: this Retry-After instead of RETRY_AFTER_SECONDS */
    const char *www_auth; /* WWW-Authenticate */
} reply;

/* ---- request.c */

/* Answers req with rp and counts it in the request metrics. */
void pub_send_reply(pub_thread *t, struct evhttp_request *req, jb_pub_route r,
                    enum evhttp_cmd_type method, int64_t start_ns, reply rp);
/* A text/plain answer. */
void pub_send_text(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                   int code, const char *text);
/* An overload or backend refusal, counted in jetbridge_publisher_rejected_total{reason};
 * the legacy endpoint gets its JSON shape, 503 a Retry-After. */
void pub_reject(pub_thread *t, struct evhttp_request *req, jb_pub_route r, int64_t start,
                const char *reason, int code, const char *text);
/* A request for n messages (n may be 0: a control job); NULL when out of memory. */
pub_req *pub_req_new(pub_thread *t, struct evhttp_request *req, jb_pub_route r, size_t n,
                     int64_t start);
void pub_req_free(pub_req *pr);
/* Publishes ces[0..n) (subjects, msg ids and the types as sent alongside) for pr,
 * which is taken: it is answered now or when its last ack arrives. The types as
 * sent are taken too (each set to NULL). */
void pub_submit(pub_thread *t, pub_req *pr, jb_ce *const *ces, char *const *subjects,
                char (*ids)[JB_PUB_MSG_ID_LEN + 1], char **sent_types);
/* An ack (msg and text taken) or a control answer (body taken) came back. */
void pub_complete_ack(pub_thread *t, natsMsg *msg, int status, char *text);
void pub_complete_ctl(pub_thread *t, pub_req *pr, int status, char *body, size_t len);
/* Not connected: every message still waiting is answered 502 now. */
void pub_fail_in_flight(pub_thread *t);
/* Teardown: every waiting request is dropped unanswered (its connection goes too). */
void pub_drop_in_flight(pub_thread *t);

/* ---- handlers.c */

/* evhttp's callback for every request of thread arg. */
void pub_on_request(struct evhttp_request *req, void *arg);

/* ---- conns.c */

/* evhttp's bufferevent callback (arg: the thread): a TLS or plain bufferevent in
 * the request guard, counted against the thread's connection cap. */
struct bufferevent *pub_conns_new_bev(struct event_base *base, void *arg);
/* The thread's conn_ev callback: attaches the close callbacks of the connections
 * created since it last ran. */
void pub_conns_attach(evutil_socket_t fd, short what, void *arg);

#endif

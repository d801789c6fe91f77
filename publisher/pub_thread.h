/*
 * Private to publisher/: one HTTP thread of the publisher and the pieces its files
 * share. The thread's files call one way:
 *   server.c   lifecycle, the loop, the mailbox (the control thread hands its
 *              answers back through it) and the periodic tick;
 *   jsio.c     the thread's own NATS connection on its loop: the ack inbox,
 *              read on the loop, and the ack timeouts;
 *   conns.c    connection accounting (MAX_CONNECTIONS per thread);
 *   handlers.c the HTTP routes, from a request to events ready to publish;
 *   request.c  publishing, the waiting requests, their answers and metrics;
 *   ackmap.c   the map from a published message to its waiting request.
 * server.c registers conns.c and handlers.c with evhttp and hands control answers
 * to request.c; jsio.c hands acks to request.c; handlers.c calls request.c;
 * request.c calls ackmap.c and jsio.c's publishing helpers.
 */
#ifndef JB_PUB_THREAD_H
#define JB_PUB_THREAD_H

#include <event2/event.h>
#include <event2/http.h>
#include <nats/nats.h>
#include <pthread.h>

#include "common/jb_mailbox.h"
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
    /* A control job's answer, written by the control thread before it posts pr
     * back (the post orders the writes before the HTTP thread reads them). */
    int ctl_status;
    char *ctl_body;
    size_t ctl_len;
} pub_req;

/* What the thread's mailbox carries (jb_mail.kind). */
enum { PUB_MAIL_CTL = 1, PUB_MAIL_STOP = 2 };

/* The longest ack inbox prefix, "_INBOX.<nuid>." (29 characters with nats.c 3.4). */
#define PUB_INBOX_MAX 64

struct pub_thread {
    jb_pub *p;
    int idx;
    void (*on_request)(struct evhttp_request *req, void *arg); /* evhttp's, for every request */
    /* jsio.c's reports: an ack of message seq (text taken), or every waiting
     * message failed with code (request.c's pub_complete_ack, pub_fail_in_flight). */
    void (*on_ack)(pub_thread *t, uint64_t seq, int status, char *text);
    void (*on_fail)(pub_thread *t, int code, const char *text);
    pthread_t tid;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    jb_mailbox *mb; /* control answers and the stop request */
    struct event *tick_ev, *conn_ev;

    /* jsio.c: the thread's own NATS connection, owned by its loop. Messages are
     * published with the reply subject <inbox><seq>; JetStream's ack comes back
     * there and is read on the loop (see docs/publisher.md). */
    jb_nats_loop nloop;
    natsConnection *nc;
    natsSubscription *inbox;
    char inbox_pfx[PUB_INBOX_MAX];
    size_t inbox_len;
    uint64_t next_seq;   /* the last sequence used; keys of the ack map */
    uint64_t oldest_seq; /* no message below it waits (the timeout sweep's start) */
    time_t date_sec;     /* date holds the Date header of this second */
    char date[48];

    pub_ackmap *acks;         /* messages published and not settled */
    struct evp_md_ctx_st *md; /* reused for every event's Nats-Msg-Id */
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
/* The ack of message seq (text taken) or a control answer (body taken) came back. */
void pub_complete_ack(pub_thread *t, uint64_t seq, int status, char *text);
void pub_complete_ctl(pub_thread *t, pub_req *pr, int status, char *body, size_t len);
/* Every message still waiting is answered code with text (copied) now: 502 when
 * the connection is down, 504 when the stream is gone. */
void pub_fail_in_flight(pub_thread *t, int code, const char *text);
/* Every message published before before_ns and still waiting is answered 504
 * (REQUEST_TIMEOUT passed without its ack). */
void pub_expire_in_flight(pub_thread *t, int64_t before_ns);
/* Teardown: every waiting request is dropped unanswered (its connection goes too). */
void pub_drop_in_flight(pub_thread *t);

/* ---- jsio.c */

/* Connects the thread's NATS connection on its loop and subscribes its ack inbox
 * (the loop must not run yet). With NATS down the connection keeps retrying in
 * the background (publishes answer 502 meanwhile). */
jb_status pub_js_open(pub_thread *t, jb_err *err);
/* Unsubscribes and closes; the loop must have stopped. Safe on a partly opened
 * thread. */
void pub_js_close(pub_thread *t);
/* True while the thread's connection is connected. */
bool pub_js_connected(pub_thread *t);
/* Writes the reply subject of message seq into buf (NUL-terminated). */
void pub_js_reply(const pub_thread *t, uint64_t seq, char buf[PUB_INBOX_MAX + 24]);

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

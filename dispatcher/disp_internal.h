/* dispatcher/ private interfaces shared between its .c files. */
#ifndef JB_DISP_INTERNAL_H
#define JB_DISP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct event_base;
struct curl_slist;
typedef struct jb_ce jb_ce;
typedef struct __natsMsg natsMsg;

/* ------------------------------------------------- outbound policy (guard.c) */

struct jb_cfg;
typedef void CURL;

/* SINK_DENY_NETWORKS, SINK_CA_BUNDLE, no redirects, http(s) only: applied to every
 * request the dispatcher makes. Immutable after creation; shared read-only. */
typedef struct jb_dguard jb_dguard;
/* JB_ERR_CONFIG (err names the key) for an invalid network or unreadable bundle. */
jb_status jb_dguard_create(const struct jb_cfg *cfg, jb_dguard **out, jb_err *err);
void jb_dguard_destroy(jb_dguard *g);

/* Per request: which guard, and whether it refused the address curl tried. */
typedef struct jb_dguard_ctx {
    const jb_dguard *guard; /* NULL: no deny list, system CAs */
    bool refused;
    char why[96]; /* "destination 169.254.169.254 is in SINK_DENY_NETWORKS" */
} jb_dguard_ctx;
/* Sets the policy on e, with c (which must outlive the transfer) as the open-socket
 * callback's record; clears c's verdict. */
void jb_dguard_apply(jb_dguard_ctx *c, CURL *e);

/* ---------------------------------------------- sink credentials (sinkauth.c) */

struct jb_sub_auth;
typedef struct jb_dhttp jb_dhttp;
/* Caches of secret files (re-read when they change), Secret values (Kubernetes
 * mode, read by one reader thread and read again every KUBE_SECRET_REFRESH) and
 * OAuth2 tokens (fetched on http, whose SSRF guard applies). Loop thread only.
 * base, http and cfg are borrowed and must outlive it. NULL when out of memory. */
typedef struct jb_dauth jb_dauth;
/* The Secret reader thread, one per process whatever the number of loops,
 * started with the first Secret a loop needs; its answers go to the asking
 * loop's jb_dauth. loops: how many jb_dauth use it. NULL when out of memory. */
typedef struct jb_dsecrets jb_dsecrets;
jb_dsecrets *jb_dsecrets_create(const struct jb_cfg *cfg, size_t loops);
/* Stops the thread (a read in progress sees it); requests it never handled are
 * dropped. Before jb_dauth_destroy of any loop. Any thread. */
void jb_dsecrets_stop(jb_dsecrets *r);
void jb_dsecrets_destroy(jb_dsecrets *r);
/* reader is borrowed and must outlive the jb_dauth. */
jb_dauth *jb_dauth_create(struct event_base *base, jb_dhttp *http, jb_dsecrets *reader,
                          const struct jb_cfg *cfg);
/* Frees; pending waits end without a call. Call it after jb_dsecrets_stop of its
 * reader and jb_dhttp_destroy of http (which cancels token requests without
 * calling back) or while the loop does not run. */
void jb_dauth_destroy(jb_dauth *a);

/* A delivery waiting for its credentials (a token or a Secret being fetched). */
typedef struct jb_dauth_wait jb_dauth_wait;
typedef void (*jb_dauth_resume_fn)(void *ud);
/* Appends the Authorization header (bearer, basic or an OAuth2 token) and, with a
 * signing secret, the Standard Webhooks headers for msg_id and body[0..len) to
 * *headers. ns is the subscription's namespace (where its Secrets are). On JB_OK
 * either the headers were added and *wait is NULL (*token_gen identifies the OAuth2
 * token used, 0: none), or nothing was added and *wait is set: the credentials are
 * being fetched without blocking, and resume(ud) runs once on the loop when they
 * arrive (or their fetch failed); then call this again. A file or Secret that
 * cannot be read, or a failing token endpoint: JB_ERR_CONFIG / JB_ERR_NOT_CONNECTED
 * / JB_ERR_FULL with err saying why, never with a secret; retry the delivery later. */
jb_status jb_dauth_prepare(jb_dauth *a, const char *ns, const struct jb_sub_auth *au,
                           const char *msg_id, const void *body, size_t len,
                           struct curl_slist **headers, uint64_t *token_gen,
                           jb_dauth_resume_fn resume, void *ud, jb_dauth_wait **wait, jb_err *err);
/* Ends a wait without its call (the delivery was settled otherwise). */
void jb_dauth_cancel(jb_dauth *a, jb_dauth_wait *w);
/* A 401 from a sink that got OAuth2 token token_gen: true when a new token should
 * be tried (the cached one is dropped); false when a fresh token was refused too. */
bool jb_dauth_unauthorized(jb_dauth *a, const struct jb_sub_auth *au, uint64_t token_gen);
/* A 2xx with token token_gen: the credentials work. */
void jb_dauth_accepted(jb_dauth *a, const struct jb_sub_auth *au, uint64_t token_gen);

/* ------------------------------------------------------- HTTP (http.c) */

/* At most this many bytes of a sink's answer body are kept: base64 of 768 bytes is
 * the 1024 characters `errordata` may hold. */
#define JB_DHTTP_BODY_KEEP 768

/* A libcurl multi handle driven by a libevent loop: every request is non-blocking,
 * connections to the same sink are reused (curl's connection cache). Loop thread
 * only. */
typedef struct jb_dhttp_req jb_dhttp_req;

typedef struct jb_dhttp_result {
    int status;             /* HTTP status, 0 for a transport error or timeout */
    bool timed_out;         /* the per-request timeout fired */
    const char *error;      /* curl's message for a transport error, else "" */
    int64_t retry_after_ms; /* parsed Retry-After, -1 when absent or invalid */
    const char *body;       /* the first JB_DHTTP_BODY_KEEP bytes of the answer */
    size_t body_len;
    double seconds; /* from request start to the end of the answer */
    bool refused;   /* the SSRF guard refused the destination (error says why) */
} jb_dhttp_result;

/* Called on the loop once per request, unless it was cancelled. r is valid during
 * the call only. The callback may start new requests. */
typedef void (*jb_dhttp_done_fn)(void *ud, const jb_dhttp_result *r);

/* max_idle: connections kept open for reuse. guard (may be NULL; must outlive the
 * handle) is applied to every request. NULL when out of memory. */
jb_dhttp *jb_dhttp_create(struct event_base *base, long max_idle, const jb_dguard *guard);
/* Cancels what is still running (without callbacks) and frees. NULL is fine. */
void jb_dhttp_destroy(jb_dhttp *h);
/* SINK_HTTP_CLIENT: false sends every request through curl (by default, plain
 * http:// requests use the dispatcher's own HTTP/1.1 client, h1conn.c). */
void jb_dhttp_builtin(jb_dhttp *h, bool on);

/* POSTs body[0..len) to url with headers (may be NULL). Both are borrowed: they
 * must stay valid until done runs or the request is cancelled (the caller frees
 * them after that). timeout_ms bounds the whole request. *out (may be NULL)
 * identifies the request for jb_dhttp_cancel. */
jb_status jb_dhttp_post(jb_dhttp *h, const char *url, struct curl_slist *headers, const void *body,
                        size_t len, int64_t timeout_ms, jb_dhttp_done_fn done, void *ud,
                        jb_dhttp_req **out);
/* A client certificate and key (PEM files) for the next jb_dhttp_post on h (mutual
 * TLS); NULL, NULL for none. Loop thread; the strings are copied by curl. */
void jb_dhttp_client_cert(jb_dhttp *h, const char *cert_file, const char *key_file);
struct jb_capbuf;
/* The whole answer body of the next jb_dhttp_post on h goes into *into (bounded by
 * its max; past it the request fails) instead of the first JB_DHTTP_BODY_KEEP bytes
 * of the result: for token endpoints. into must outlive the request. */
void jb_dhttp_capture(jb_dhttp *h, struct jb_capbuf *into);
/* Aborts a request; its callback never runs. */
void jb_dhttp_cancel(jb_dhttp *h, jb_dhttp_req *r);
/* Requests in progress. */
size_t jb_dhttp_active(const jb_dhttp *h);

/* ----------------------------------------- CloudEvent -> HTTP (deliver.c) */

typedef struct jb_dreq {
    /* The list starts with the built headers, all in one block (hblock, its last
     * node hlast): the caller's buffer when they fit (jb_dreq_build_in), else one
     * allocation (hblock_own); nodes appended after hlast (curl_slist_append, the
     * sink's credentials) are separate allocations. jb_dreq_free frees what was
     * allocated. */
    struct curl_slist *headers;
    void *hblock;
    bool hblock_own;
    struct curl_slist *hlast;
    char *body;          /* malloc'd copy only for structured mode, else NULL */
    const uint8_t *data; /* what to send: body, or the event's data */
    size_t len;
} jb_dreq;

/* Builds the request for ce (modified in place: type set back to originaltype,
 * tracing extensions moved to headers). structured selects
 * application/cloudevents+json. On success *out is filled; free with
 * jb_dreq_free (ce must outlive it in binary mode: the body points into it). */
jb_status jb_dreq_build(jb_ce *ce, bool structured, jb_dreq *out);
/* The same, with the header block in buf[0..cap) when it fits there (no
 * allocation; buf must outlive the request and be aligned for pointers), else
 * allocated as by jb_dreq_build. */
jb_status jb_dreq_build_in(jb_ce *ce, bool structured, void *buf, size_t cap, jb_dreq *out);
void jb_dreq_free(jb_dreq *r);

/* -------------------------------------- JetStream ack subjects (settle.c) */

/* What the reply subject of a JetStream message says about it. */
typedef struct jb_disp_meta {
    const char *consumer; /* points into the subject, not NUL-terminated */
    size_t consumer_len;
    uint64_t delivered;  /* delivery count, >= 1 */
    uint64_t stream_seq; /* sequence in the stream */
} jb_disp_meta;

/* Parses reply[0..len): `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
 * <pending>` or the newer form with `<domain>.<account hash>` after `$JS.ACK.` and
 * an optional trailing token. False (and *out untouched) for anything else. */
bool jb_disp_parse_ack_subject(const char *reply, size_t len, jb_disp_meta *out);

#endif

/* dispatcher/ private: the records of http.c, shared with its plain-HTTP lane
 * (h1conn.c). Loop thread only. */
#ifndef JB_DISP_HTTP_H
#define JB_DISP_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_common.h"
#include "dispatcher/disp_internal.h"
#include "dispatcher/disp_list.h"

struct event;
struct event_base;

/* Finished request records, each with its easy handle, kept for the next request:
 * saves their set-up, and a record is over 1 KiB, the size at which glibc
 * consolidates its free lists on every allocation. */
#define FREE_REQ_MAX 256
/* Connection sockets below this descriptor number stay registered with the loop
 * while their connection waits in curl's cache (above it: as any other socket). */
#define SOCK_TABLE_MAX 65536

/* A request record and its easy handle stay paired for their whole life: the
 * options that point into the record (callback data, error buffer, the guard's
 * record) and every option that is the same for all requests are set once, when
 * the handle is new or was reset (ready false), not per request. */
struct jb_dhttp_req {
    struct jb_dhttp *h;
    jb_dlink link;              /* on the list of requests in progress, for destroy */
    struct curl_slist *headers; /* borrowed from the caller */
    jb_dhttp_done_fn done;
    void *ud;
    int64_t retry_after_ms;
    int64_t start_ns;
    size_t body_len;
    jb_dguard_ctx guard;
    jb_capbuf *capture; /* the whole body goes here instead (token requests) */
    bool cert_set;      /* a client certificate was set: reset the handle after it */
    /* The plain lane (h1conn.c): the connection carrying this request, NULL for a
     * request curl carries. */
    struct jb_h1conn *conn;
    bool h1_retried;       /* resent once on a new connection already */
    int64_t h1_timeout_ms; /* the whole request's */
    char body[JB_DHTTP_BODY_KEEP];
    char errbuf[CURL_ERROR_SIZE];
    /* Kept across requests (not cleared per request). */
    CURL *easy;
    bool ready;          /* the options set once are set on easy */
    char *url;           /* the URL set on easy (NULL: none), so an unchanged one is */
    size_t url_cap;      /* neither copied nor parsed again by curl */
    CURLU *uh;           /* url, parsed: curl copies it per transfer instead of parsing */
    struct event *timer; /* the plain lane's timeout (NULL until its first request) */
};

struct jb_dhttp {
    struct event_base *base;
    const jb_dguard *guard;
    const char *cert, *key; /* for the next post only */
    jb_capbuf *capture;     /* for the next post only */
    CURLM *multi;
    struct event *timer;
    size_t active;
    jb_dlist reqs; /* in progress (jb_dhttp_req.link) */
    jb_dhttp_req *free_req[FREE_REQ_MAX];
    size_t nfree_req;
    /* Connection sockets by descriptor: kept registered across reuse. */
    struct sock_ctx **socks;
    size_t nsocks;
    /* The plain lane: idle keep-alive connections, most recently used first. */
    jb_dlist h1_idle;
    size_t h1_nidle;
    size_t max_idle;
    bool h1_off; /* SINK_HTTP_CLIENT=curl: every request goes through curl */
    /* What the lane needs of http.c, as hooks set by jb_dhttp_create: calls go one
     * way between the files (http.c calls h1conn.c by name, never the reverse). */
    /* The socket callbacks every connection curl opens for h gets (so that
     * curl's sockets leave the loop before they are closed). */
    void (*conn_options)(jb_dhttp *h, CURL *e);
    /* Calls r's callback with res, then frees r (its connection detached first). */
    void (*complete)(jb_dhttp_req *r, const jb_dhttp_result *res);
};

/* ------------------------------------------------------------- h1conn.c */

/* A plain-HTTP lane: for a request curl need not carry (http://, no client
 * certificate, no captured body, a URL of plain characters), curl only opens the
 * connection (CURLOPT_CONNECT_ONLY: its DNS, the SSRF guard, its connect
 * timeout and errors) and the lane writes the request and reads the answer
 * itself (h1.c), keeping the connection open for the next request to the same
 * host and port. Whether a request to url may take the lane (the URL's form
 * aside: jb_h1_start says). */
bool jb_h1_takes(const jb_dhttp *h, const char *url);
/* Starts r (its callback, start time and guard set) on an idle connection or a
 * new one. JB_ERR_UNSUPPORTED: a URL for curl (userinfo, a fragment, an odd host,
 * port or character); JB_ERR_NOMEM or JB_ERR_INTERNAL: nothing started, r is the
 * caller's. */
jb_status jb_h1_start(jb_dhttp_req *r, const char *url, const void *body, size_t len,
                      int64_t timeout_ms);
/* curl finished opening r's connection (code: how). */
void jb_h1_connected(jb_dhttp_req *r, CURLcode code);
/* r is being freed without an answer: its connection is closed. */
void jb_h1_abort(jb_dhttp_req *r);
/* Closes every idle connection (jb_dhttp_destroy). */
void jb_h1_close_idle(jb_dhttp *h);

#endif

/*
 * Private to publisher/: the request guard, a bufferevent filter between the
 * socket (or TLS) bufferevent and evhttp. libevent 2.1 parses requests leniently
 * (a second Content-Length or "Content-Length :" is ignored, the rest of the body
 * becomes a second request; Transfer-Encoding values are not checked; an
 * over-limit body is read before it is refused; the read timeout restarts with
 * every byte). The guard frames every request itself, exactly as evhttp will
 * (request line, header lines, Content-Length or chunked body), and refuses what is
 * ambiguous or over a limit before evhttp sees a byte of it: it answers itself
 * and closes the connection. It also owns the whole-request deadline: while it
 * holds an incomplete request, evhttp's connection timeout is suspended (behind a
 * filter it is not restarted by the bytes passed on, and on a kept-alive
 * connection it closed a slow request without an answer); evhttp gets it back,
 * restarted, once the request is passed on.
 */
#ifndef JB_PUB_GUARD_H
#define JB_PUB_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct jb_metric;

/* Limits of one listener; borrowed by every guard, so it must outlive them. */
typedef struct pub_guard_cfg {
    int64_t max_body;         /* MAX_REQUEST_SIZE: larger bodies get 413 at once */
    int64_t max_head;         /* MAX_HEADER_SIZE: request line and headers together */
    int64_t deadline_ms;      /* HTTP_READ_TIMEOUT: from a request's first byte to its last */
    int64_t conn_timeout_ms;  /* evhttp's one connection timeout: the smaller of
                                 HTTP_READ_TIMEOUT and HTTP_IDLE_TIMEOUT */
    struct jb_metric *reject; /* jetbridge_publisher_rejected_total{reason} */
} pub_guard_cfg;

/* Wraps under (taken: freed with the returned bufferevent, or here on failure) in
 * the guard. Returns the bufferevent evhttp must use, or NULL when out of memory. */
struct bufferevent *pub_guard_wrap(struct bufferevent *under, const pub_guard_cfg *cfg);

/* evhttp closes a connection (shutdown and close of the socket) as soon as the
 * guard has taken its last answer, before the layer below wrote it: call this
 * from evhttp's close callback to hand what is pending to the kernel now
 * (without blocking: a client that does not read loses the rest). */
void pub_guard_flush(struct bufferevent *bev);

/* What the guard learnt from one request head. */
typedef struct pub_guard_head {
    int code;        /* 0: acceptable; else the HTTP status to refuse it with */
    const char *why; /* static text when code != 0 */
    int64_t content_length;
    bool chunked;
    bool legacy; /* refused heads only: the target is /{application}/v1/events (its
                    413 body is JSON) */
} pub_guard_head;

/* Checks p[0..n), a complete request head (request line, header lines, the empty
 * line), against cfg's limits. Pure: exposed for the unit tests and the fuzz target. */
void pub_guard_check_head(const char *p, size_t n, const pub_guard_cfg *cfg, pub_guard_head *out);

/* Returns the length of the head at the start of p[0..n) (through its empty line),
 * 0 when it is not complete yet. *scan is where the search resumes (start with 0):
 * the caller keeps it between calls so that a slowly sent head is scanned once. */
size_t pub_guard_head_end(const char *p, size_t n, size_t *scan);

#endif

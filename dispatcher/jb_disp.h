/* dispatcher/: delivery to sinks with retry, backoff and dead letters (docs/contract.md
 * section 4).
 *
 * Threading: a jb_disp runs DISPATCH_LOOPS libevent loops: loop 0 is the caller's,
 * loops 1..N-1 are threads of its own with an event_base each. Each loop owns a
 * share of the consumers (by a hash of the consumer name), its own loop-owned NATS
 * connection (pull requests, the inbox, acks) and its own libcurl multi (OAuth2
 * token requests too). Besides, one reconciler, one dead-letter worker, one
 * consumer-info worker and, once a subscription names a Kubernetes Secret, one
 * Secret reader thread serve every loop: the thread count does not depend on the
 * number of consumers. Every jb_disp_* function below is called from the caller's
 * loop thread unless it says otherwise. */
#ifndef JB_DISP_H
#define JB_DISP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"
#include "subscription/jb_sub.h"

struct jb_cfg;
struct event_base;
typedef struct jb_metrics jb_metrics;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

typedef struct jb_ce jb_ce;

/* One delivery of ce to sink outside any loop, for `jetbridge dlq replay`: the
 * request the dispatcher would build (structured: application/cloudevents+json;
 * ce is modified as jb_dreq_build does), under the same outbound policy
 * (SINK_DENY_NETWORKS, SINK_CA_BUNDLE, no redirects), waiting at most timeout_ms.
 * Returns the sink's HTTP status, 0 when there was no answer, -1 when no request
 * could be built (out of memory). err says why when the policy could not be loaded
 * or refused the sink's address. Any thread; blocks. */
int jb_disp_replay(const struct jb_cfg *cfg, jb_ce *ce, const char *sink, bool structured,
                   int64_t timeout_ms, jb_err *err);

/* ------------------------------------------------------- embeddable API */

typedef struct jb_disp jb_disp;

/* Creates a dispatcher on base (its loop 0) and, with DISPATCH_LOOPS > 1, the other
 * loops' event_bases. cfg, base, metrics, nc and js are borrowed and must outlive
 * the dispatcher; metrics may be NULL (no metrics). nc must use nats.c's own
 * threads (jb_nats_connect with base NULL): the dead-letter and info threads make
 * blocking requests. JB_ERR_CONFIG when DISPATCH_LOOPS exceeds
 * DISPATCHER_MAX_CONCURRENT. Nothing runs until jb_disp_start (which starts the
 * loop threads). On success *out is the caller's, freed with jb_disp_destroy. */
jb_status jb_disp_create(const struct jb_cfg *cfg, struct event_base *base, jb_metrics *metrics,
                         natsConnection *nc, jsCtx *js, jb_disp **out, jb_err *err);

/* Ensures the dead-letter stream, starts the reconciler (which reports the
 * consumers) and begins fetching and delivering. Blocking for the set-up calls to
 * NATS (at most a few seconds); the first reconciler pass runs in the background. */
jb_status jb_disp_start(jb_disp *d, jb_err *err);

/* Readiness for /readyz (a jb_ready_fn: pass the jb_disp as ud): connected to NATS
 * and the reconciler completed a pass. Thread-safe. */
bool jb_disp_ready(void *d);

/* Graceful stop of every loop: stops fetching, lets in-flight deliveries finish, and
 * NAKs (with a short delay) whatever is still in flight after
 * cfg->shutdown_grace_ms. done(ud) is called once on the caller's loop when no loop
 * has anything in flight any more and each wrote its acks/NAKs to NATS; the caller
 * then usually breaks the loop. */
void jb_disp_stop_gracefully(jb_disp *d, void (*done)(void *ud), void *ud);

/* Frees. Call after done ran (or without start), with base's loop not running.
 * Blocks until the loop and worker threads exited and the inbox subscriptions
 * closed (at most a few seconds); messages that arrived and were not delivered are
 * NAKed. NULL is fine. */
void jb_disp_destroy(jb_disp *d);

/* ----------------------------------------- pure rules (exposed for tests) */

typedef enum jb_disp_verdict {
    JB_DISP_ACK,   /* delivered: ack */
    JB_DISP_RETRY, /* try again later with a delayed NAK */
    JB_DISP_DEAD,  /* never retry: dead-letter at once */
} jb_disp_verdict;

/* The verdict for an HTTP status; 0 means a transport error or a timeout. 2xx ack;
 * 0, 5xx, 404, 408, 409, 429 retry; every other status dead-letters. */
jb_disp_verdict jb_disp_verdict_of(int status);
/* status as "%d" writes it (the delivery metric's response_code label), without
 * snprintf: it runs once per delivered event. out holds at least 12 bytes. */
void jb_disp_status_text(int status, char *out);

/* The backoff before attempt `attempt + 1` after `attempt` (>= 1) failed, in ms.
 * exponential: a uniformly random delay in [backoffDelay, min(backoffMax,
 * backoffDelay * 2^(attempt-1))] ("full jitter" above a floor of backoffDelay, so
 * that a retry never turns into an immediate redelivery); linear: min(backoffMax,
 * backoffDelay * attempt); constant: backoffDelay. rnd is a random 64-bit value. */
int64_t jb_disp_backoff_ms(const jb_sub_delivery *d, uint64_t attempt, uint64_t rnd);

/* Parses a Retry-After value: delta-seconds or an HTTP date (IMF-fixdate, RFC 850,
 * asctime), relative to now_wall_ms. A date in the past is 0. False when the
 * value is neither. */
bool jb_disp_parse_retry_after(const char *v, size_t len, int64_t now_wall_ms, int64_t *out_ms);

/* The NAK delay after a retryable failure: the backoff, raised to Retry-After
 * (retry_after_ms >= 0, only for 429 and 503) capped by retryAfterMax; when
 * retryAfterMax is 0 Retry-After is ignored. */
int64_t jb_disp_retry_delay_ms(const jb_sub_delivery *d, uint64_t attempt, int status,
                               int64_t retry_after_ms, uint64_t rnd);

#endif

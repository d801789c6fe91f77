/* publisher/: the Kyma-compatible HTTP ingress (docs/contract.md section 2).
 *
 * Embeddable: `jetbridge publisher` and `jetbridge run` (cli/) host the same
 * object. The host owns the NATS connection, the metrics registry and the admin
 * listener; the publisher owns its HTTP threads (each with its own event_base and
 * evhttp on a shared port), one JetStream context per thread for asynchronous
 * publishing, and a small control thread (stream creation, subscription store
 * reads). Lifecycle: jb_pub_create -> jb_pub_start -> ... -> jb_pub_stop ->
 * (close the NATS connection) -> jb_pub_destroy.
 */
#ifndef JB_PUB_H
#define JB_PUB_H

#include <stdbool.h>

#include "common/jb_status.h"

struct jb_cfg;
struct jb_metrics;
typedef struct __natsConnection natsConnection;

typedef struct jb_pub jb_pub;

/* Creates a publisher. cfg, metrics and nc are borrowed and must outlive it (nc
 * until jb_pub_destroy). The publisher registers its metric families (docs/contract.md 5)
 * in metrics. Nothing listens yet. On success *out is the new publisher (free
 * with jb_pub_destroy); on failure *out is untouched and err says why. */
jb_status jb_pub_create(const struct jb_cfg *cfg, struct jb_metrics *metrics, natsConnection *nc,
                        jb_pub **out, jb_err *err);

/* Binds INGRESS_PORT (all threads share it, SO_REUSEPORT), starts the HTTP
 * threads and the control thread, which creates or updates the stream (docs/contract.md
 * 2.4) as soon as NATS is reachable. Returns JB_ERR_IO (err names the address)
 * when the port cannot be bound. */
jb_status jb_pub_start(jb_pub *p, jb_err *err);

/* The port the HTTP threads listen on (after jb_pub_start). */
int jb_pub_port(const jb_pub *p);

/* True when connected to NATS and the stream exists. Thread-safe; the signature
 * fits jb_ready_fn (ud is the jb_pub). */
bool jb_pub_ready(void *p);

/* Stops accepting, lets requests in flight finish (at most REQUEST_TIMEOUT plus a
 * second), joins every thread. Idempotent. */
void jb_pub_stop(jb_pub *p);

/* Frees. Call after jb_pub_stop and after the NATS connection was closed (nats.c
 * may still be inside a publish-ack callback until then). NULL is fine. */
void jb_pub_destroy(jb_pub *p);

#endif

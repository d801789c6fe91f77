/*
 * Private to publisher/: per-application token buckets (jetbridge.io/rate-limit).
 *
 * One bucket per application name per process, refilled at the application's rate
 * up to its burst. At most `cap` buckets exist; a new name when all are taken
 * evicts the bucket used least recently (a bucket idle for burst/rate seconds is
 * full again, so evicting it changes nothing; evicting a busier one can only let
 * its application through a little early, never slow another down). Lookups are
 * a hash of the name, creation and eviction constant time: the cost of a request
 * does not grow with the number of applications. Thread-safe (one mutex).
 */
#ifndef JB_PUB_RATE_H
#define JB_PUB_RATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

/* The default cap of the publisher's table. */
#define PUB_RATE_BUCKETS_MAX 4096
/* Names longer than this share a bucket with their first PUB_RATE_NAME_MAX bytes
 * (application names are at most 253 characters, so this never happens). */
#define PUB_RATE_NAME_MAX 253

typedef struct pub_rate pub_rate;

/* A table of at most cap (>= 1) buckets; NULL when out of memory. */
pub_rate *pub_rate_create(size_t cap);
void pub_rate_destroy(pub_rate *r);

/* Takes n tokens from name[0..len)'s bucket (created full when new) at time
 * now_ns (monotonic): 0 when they were there; 429 with *retry_after (seconds,
 * 1..3600) when not; 413 when n is more than burst (it would never pass). rate
 * must be > 0. */
int pub_rate_take(pub_rate *r, const char *name, size_t len, double rate, uint32_t burst, size_t n,
                  int64_t now_ns, int *retry_after);

/* Buckets in use (at most cap). */
size_t pub_rate_count(pub_rate *r);

#endif

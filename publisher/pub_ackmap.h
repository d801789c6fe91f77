/*
 * Private to publisher/: the ack map of one HTTP thread. Every message published
 * and not yet settled has an entry, keyed by the message's sequence number in
 * its thread (cast to a pointer; the reply subject <inbox><seq> carries it, so
 * the ack names its message exactly), holding the waiting request, the
 * message's index in it and when it was published. Open addressing with linear probing and
 * backward-shift deletion (no tombstones), at most half full: `max` entries fit in a table of at
 * least 2 * max + 2 slots, fixed at creation. One thread only.
 */
#ifndef JB_PUB_ACKMAP_H
#define JB_PUB_ACKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pub_ack_slot {
    const void *key; /* the natsMsg; NULL marks a free slot */
    void *req;       /* the waiting request (borrowed) */
    size_t idx;      /* the message's index in the request */
    int64_t t0;      /* when it was published (monotonic ns) */
} pub_ack_slot;

typedef struct pub_ackmap pub_ackmap;

/* A map for at most max (>= 1) entries; NULL when out of memory. */
pub_ackmap *pub_ackmap_create(size_t max);
void pub_ackmap_destroy(pub_ackmap *m);

/* Adds key (not NULL, not present). False when max entries are in already. */
bool pub_ackmap_put(pub_ackmap *m, const void *key, void *req, size_t idx, int64_t t0);

/* Removes key and copies its entry into *out; false when key is absent. */
bool pub_ackmap_take(pub_ackmap *m, const void *key, pub_ack_slot *out);

/* Removes some entry into *out; false when the map is empty. For teardown. */
bool pub_ackmap_take_any(pub_ackmap *m, pub_ack_slot *out);

/* Copies key's entry into *out, leaving it in; false when key is absent. */
bool pub_ackmap_get(const pub_ackmap *m, const void *key, pub_ack_slot *out);

size_t pub_ackmap_count(const pub_ackmap *m);

#endif

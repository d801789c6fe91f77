/* The ack map (see pub_ackmap.h). */
#include <stdlib.h>

#include "publisher/pub_ackmap.h"

struct pub_ackmap {
    pub_ack_slot *slot;
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t n, max;
};

pub_ackmap *pub_ackmap_create(size_t max)
{
    if (max == 0 || max > SIZE_MAX / 4)
        return NULL;
    size_t cap = 16;
    while (cap < 2 * max + 2)
        cap *= 2;
    pub_ackmap *m = calloc(1, sizeof(*m));
    if (m != NULL)
        m->slot = calloc(cap, sizeof(*m->slot));
    if (m == NULL || m->slot == NULL) {
        free(m);
        return NULL;
    }
    m->mask = cap - 1;
    m->max = max;
    return m;
}

void pub_ackmap_destroy(pub_ackmap *m)
{
    if (m == NULL)
        return;
    free(m->slot);
    free(m);
}

/* Keys are consecutive sequence numbers (or, in the unit tests, pointers that
 * are aligned and allocated close together): a multiplicative hash spreads them
 * over the table. */
static size_t home_of(const pub_ackmap *m, const void *key)
{
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & m->mask;
}

bool pub_ackmap_put(pub_ackmap *m, const void *key, void *req, size_t idx, int64_t t0)
{
    if (m->n >= m->max)
        return false;
    size_t i = home_of(m, key);
    while (m->slot[i].key != NULL)
        i = (i + 1) & m->mask;
    m->slot[i] = (pub_ack_slot){key, req, idx, t0};
    m->n++;
    return true;
}

/* Empties slot i and shifts later entries of its probe run back into the hole,
 * so that every entry stays reachable from its home without tombstones. */
static void remove_at(pub_ackmap *m, size_t i)
{
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->slot[j].key != NULL; j = (j + 1) & m->mask) {
        size_t home = home_of(m, m->slot[j].key);
        /* j stays unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->slot[hole] = m->slot[j];
            hole = j;
        }
    }
    m->slot[hole].key = NULL;
    m->n--;
}

bool pub_ackmap_take(pub_ackmap *m, const void *key, pub_ack_slot *out)
{
    if (key == NULL)
        return false;
    size_t i = home_of(m, key);
    while (m->slot[i].key != key) {
        if (m->slot[i].key == NULL)
            return false;
        i = (i + 1) & m->mask;
    }
    *out = m->slot[i];
    remove_at(m, i);
    return true;
}

bool pub_ackmap_take_any(pub_ackmap *m, pub_ack_slot *out)
{
    if (m->n == 0)
        return false;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slot[i].key != NULL) {
            *out = m->slot[i];
            remove_at(m, i);
            return true;
        }
    return false;
}

size_t pub_ackmap_count(const pub_ackmap *m)
{
    return m->n;
}

bool pub_ackmap_get(const pub_ackmap *m, const void *key, pub_ack_slot *out)
{
    if (key == NULL)
        return false;
    for (size_t i = home_of(m, key); m->slot[i].key != NULL; i = (i + 1) & m->mask)
        if (m->slot[i].key == key) {
            *out = m->slot[i];
            return true;
        }
    return false;
}

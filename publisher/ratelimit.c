/*
 * Per-application token buckets (see pub_rate.h). The buckets are one array;
 * a chained hash (heads indexed by the name's hash, at least twice as many heads
 * as buckets) finds a name, and a doubly linked list in order of use finds the
 * least recently used bucket to evict. Every operation is O(1) on average; the
 * memory is fixed at creation.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_rate.h"

#define NIL UINT32_MAX

typedef struct bucket {
    char name[PUB_RATE_NAME_MAX];
    uint8_t len;
    uint32_t chain;        /* next bucket with the same head, or NIL */
    uint32_t newer, older; /* the use-order list */
    double tokens;
    int64_t last_ns;
} bucket;

struct pub_rate {
    pthread_mutex_t mu; /* guards everything below */
    bucket *b;
    size_t cap, n;
    uint32_t *heads; /* mask + 1 entries */
    size_t mask;
    uint32_t newest, oldest;
};

pub_rate *pub_rate_create(size_t cap)
{
    if (cap == 0 || cap >= NIL)
        return NULL;
    pub_rate *r = calloc(1, sizeof(*r));
    size_t heads = 16;
    while (heads < 2 * cap)
        heads *= 2;
    if (r != NULL) {
        r->b = calloc(cap, sizeof(*r->b));
        r->heads = malloc(heads * sizeof(*r->heads));
    }
    if (r == NULL || r->b == NULL || r->heads == NULL) {
        pub_rate_destroy(r);
        return NULL;
    }
    memset(r->heads, 0xff, heads * sizeof(*r->heads)); /* NIL everywhere */
    r->cap = cap;
    r->mask = heads - 1;
    r->newest = r->oldest = NIL;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void pub_rate_destroy(pub_rate *r)
{
    if (r == NULL)
        return;
    if (r->heads != NULL && r->b != NULL)
        pthread_mutex_destroy(&r->mu);
    free(r->b);
    free(r->heads);
    free(r);
}

/* FNV-1a: names are short, and the table only needs spread, not secrecy (an
 * attacker choosing names can only lengthen chains of the applications an
 * operator created). */
static size_t hash_name(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return (size_t)(h ^ (h >> 32));
}

static void list_unlink(pub_rate *r, uint32_t i)
{
    bucket *b = &r->b[i];
    if (b->newer != NIL)
        r->b[b->newer].older = b->older;
    else
        r->newest = b->older;
    if (b->older != NIL)
        r->b[b->older].newer = b->newer;
    else
        r->oldest = b->newer;
}

static void list_push_newest(pub_rate *r, uint32_t i)
{
    bucket *b = &r->b[i];
    b->newer = NIL;
    b->older = r->newest;
    if (r->newest != NIL)
        r->b[r->newest].newer = i;
    r->newest = i;
    if (r->oldest == NIL)
        r->oldest = i;
}

/* Removes bucket i from its hash chain. */
static void chain_unlink(pub_rate *r, uint32_t i)
{
    uint32_t *p = &r->heads[hash_name(r->b[i].name, r->b[i].len) & r->mask];
    while (*p != i)
        p = &r->b[*p].chain;
    *p = r->b[i].chain;
}

/* The bucket of name: found, new, or the least recently used one reused. Caller
 * holds r->mu. */
static uint32_t lookup(pub_rate *r, const char *name, size_t len, double burst, int64_t now)
{
    size_t h = hash_name(name, len) & r->mask;
    for (uint32_t i = r->heads[h]; i != NIL; i = r->b[i].chain)
        if (r->b[i].len == len && memcmp(r->b[i].name, name, len) == 0) {
            list_unlink(r, i);
            list_push_newest(r, i);
            return i;
        }
    uint32_t i;
    if (r->n < r->cap) {
        i = (uint32_t)r->n++;
    } else {
        i = r->oldest;
        list_unlink(r, i);
        chain_unlink(r, i);
    }
    bucket *b = &r->b[i];
    memcpy(b->name, name, len);
    b->len = (uint8_t)len;
    b->tokens = burst;
    b->last_ns = now;
    b->chain = r->heads[h];
    r->heads[h] = i;
    list_push_newest(r, i);
    return i;
}

int pub_rate_take(pub_rate *r, const char *name, size_t len, double rate, uint32_t burst, size_t n,
                  int64_t now_ns, int *retry_after)
{
    if (n > burst)
        return 413;
    if (len > PUB_RATE_NAME_MAX)
        len = PUB_RATE_NAME_MAX;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    bucket *b = &r->b[lookup(r, name, len, (double)burst, now_ns)];
    double elapsed = now_ns > b->last_ns ? (double)(now_ns - b->last_ns) / 1e9 : 0;
    b->tokens = fmin((double)burst, b->tokens + rate * elapsed);
    b->last_ns = now_ns > b->last_ns ? now_ns : b->last_ns;
    if (b->tokens >= (double)n) {
        b->tokens -= (double)n;
    } else {
        double wait = ((double)n - b->tokens) / rate;
        *retry_after = wait > 3600 ? 3600 : (int)ceil(wait > 1 ? wait : 1);
        rc = 429;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

size_t pub_rate_count(pub_rate *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

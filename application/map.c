/* A small string-keyed hash map for the registry's indexes (names, client ids, token
 * hashes). Not thread-safe: the registry guards it with its lock. */
#include <stdlib.h>
#include <string.h>

#include "application/app_internal.h"

struct app_map_node {
    app_map_node *next;
    uint64_t hash;
    void *val;
    size_t klen;
    char key[]; /* klen bytes and a NUL */
};

/* FNV-1a: keys are names and hex digests, not attacker-chosen at volume (the map
 * mirrors what operators stored), so a keyed hash is not needed. */
static uint64_t hash_of(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static app_map_node **slot(const app_map *m, const char *key, size_t klen, uint64_t h)
{
    app_map_node **p = &m->buckets[h % m->nbuckets];
    while (*p != NULL && ((*p)->hash != h || (*p)->klen != klen || memcmp((*p)->key, key, klen)))
        p = &(*p)->next;
    return p;
}

void *app_map_get(const app_map *m, const char *key, size_t klen)
{
    if (m->nbuckets == 0)
        return NULL;
    app_map_node *n = *slot(m, key, klen, hash_of(key, klen));
    return n ? n->val : NULL;
}

static bool grow(app_map *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
    app_map_node **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return false;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (app_map_node *n = m->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash % nb];
            b[n->hash % nb] = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return true;
}

jb_status app_map_put(app_map *m, const char *key, size_t klen, void *val, void **old)
{
    *old = NULL;
    if (m->n >= m->nbuckets && !grow(m) && m->nbuckets == 0)
        return JB_ERR_NOMEM;
    uint64_t h = hash_of(key, klen);
    app_map_node **p = slot(m, key, klen, h);
    if (*p != NULL) {
        *old = (*p)->val;
        (*p)->val = val;
        return JB_OK;
    }
    app_map_node *n = malloc(sizeof(*n) + klen + 1);
    if (n == NULL)
        return JB_ERR_NOMEM;
    n->next = NULL;
    n->hash = h;
    n->val = val;
    n->klen = klen;
    memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    *p = n;
    m->n++;
    return JB_OK;
}

void *app_map_del(app_map *m, const char *key, size_t klen)
{
    if (m->nbuckets == 0)
        return NULL;
    app_map_node **p = slot(m, key, klen, hash_of(key, klen));
    app_map_node *n = *p;
    if (n == NULL)
        return NULL;
    *p = n->next;
    void *val = n->val;
    free(n);
    m->n--;
    return val;
}

void app_map_each(const app_map *m, void (*fn)(const char *key, void *val, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (app_map_node *n = m->buckets[i]; n != NULL; n = n->next)
            fn(n->key, n->val, ud);
}

void app_map_clear(app_map *m, void (*free_val)(void *val))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (app_map_node *n = m->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            if (free_val != NULL)
                free_val(n->val);
            free(n);
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->n = 0;
}

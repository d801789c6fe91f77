/* The consumers the loop pulls from, by name (the hash) and in a list. */
#include <string.h>

#include "dispatcher/disp_core.h"

static size_t bucket(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h % JB_DISP_BUCKETS;
}

void jb_dtable_add(jb_dtable *t, dconsumer *c)
{
    size_t b = bucket(c->info.consumer, strlen(c->info.consumer));
    c->hnext = t->buckets[b];
    t->buckets[b] = c;
    c->next = t->list;
    t->list = c;
}

dconsumer *jb_dtable_find(jb_dtable *t, const char *name, size_t len)
{
    for (dconsumer *c = t->buckets[bucket(name, len)]; c != NULL; c = c->hnext)
        if (!c->slot.stop && strlen(c->info.consumer) == len &&
            memcmp(c->info.consumer, name, len) == 0)
            return c;
    return NULL;
}

void jb_dtable_remove(jb_dtable *t, dconsumer *c)
{
    size_t b = bucket(c->info.consumer, strlen(c->info.consumer));
    for (dconsumer **p = &t->buckets[b]; *p != NULL; p = &(*p)->hnext)
        if (*p == c) {
            *p = c->hnext;
            break;
        }
    for (dconsumer **p = &t->list; *p != NULL; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
}

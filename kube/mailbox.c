/* The one hand-off into the controller's worker thread, bounded by items and bytes. */
#include <stdlib.h>
#include <time.h>

#include "kube/kube_internal.h"

struct kube_mailbox {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    kube_item *head;
    kube_item *tail;
    size_t items;
    size_t bytes;
    size_t max_items;
    size_t max_bytes;
    const atomic_bool *stop;
};

void kube_item_free(kube_item *it)
{
    if (it == NULL)
        return;
    free(it->scope);
    free(it->key);
    cJSON_Delete(it->obj);
    free(it->json);
    free(it->path);
    free(it->memo);
    free(it->rv);
    free(it);
}

kube_mailbox *kube_mailbox_create(size_t max_items, size_t max_bytes, const atomic_bool *stop)
{
    kube_mailbox *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->not_empty, &ca);
    pthread_cond_init(&m->not_full, &ca);
    pthread_condattr_destroy(&ca);
    m->max_items = max_items;
    m->max_bytes = max_bytes;
    m->stop = stop;
    return m;
}

void kube_mailbox_destroy(kube_mailbox *m)
{
    if (m == NULL)
        return;
    kube_item *it = m->head;
    while (it != NULL) {
        kube_item *next = it->next;
        kube_item_free(it);
        it = next;
    }
    pthread_cond_destroy(&m->not_empty);
    pthread_cond_destroy(&m->not_full);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

bool kube_mailbox_push(kube_mailbox *m, kube_item **itp)
{
    kube_item *it = *itp;
    *itp = NULL;
    it->next = NULL;
    pthread_mutex_lock(&m->mu);
    /* An item larger than the byte cap still goes in alone: the cap bounds the queue,
     * and the parser already bounds one item. */
    while ((m->items >= m->max_items || (m->items > 0 && m->bytes + it->bytes > m->max_bytes)) &&
           !atomic_load(m->stop)) {
        struct timespec ts;
        deadline_in(&ts, 200);
        pthread_cond_timedwait(&m->not_full, &m->mu, &ts);
    }
    bool ok = !atomic_load(m->stop);
    if (ok) {
        if (m->tail != NULL)
            m->tail->next = it;
        else
            m->head = it;
        m->tail = it;
        m->items++;
        m->bytes += it->bytes;
        pthread_cond_signal(&m->not_empty);
    }
    pthread_mutex_unlock(&m->mu);
    if (!ok)
        kube_item_free(it);
    return ok;
}

kube_item *kube_mailbox_take(kube_mailbox *m, int timeout_ms)
{
    pthread_mutex_lock(&m->mu);
    if (m->head == NULL && !atomic_load(m->stop)) {
        struct timespec ts;
        deadline_in(&ts, timeout_ms);
        pthread_cond_timedwait(&m->not_empty, &m->mu, &ts);
    }
    kube_item *all = m->head;
    m->head = m->tail = NULL;
    m->items = m->bytes = 0;
    pthread_cond_broadcast(&m->not_full);
    pthread_mutex_unlock(&m->mu);
    return all;
}

void kube_mailbox_wake(kube_mailbox *m)
{
    pthread_mutex_lock(&m->mu);
    pthread_cond_broadcast(&m->not_empty);
    pthread_cond_broadcast(&m->not_full);
    pthread_mutex_unlock(&m->mu);
}

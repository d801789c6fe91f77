/* The cross-thread mailbox (jb_mailbox.h): a ring of fixed-size slots under one
 * mutex, an eventfd that wakes the receiver once per burst, and a condition
 * variable only for senders that chose to wait for room. */
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"

/* Messages handed to the receiver per lock: the lock is not held while they run. */
#define BATCH 64

typedef struct slot {
    jb_mail m;
    bool is_reply; /* run m.reply instead of the receiver's handler */
    size_t bytes;  /* counted against max_bytes until taken (sized posts) */
} slot;

struct jb_mailbox {
    pthread_mutex_t mu; /* guards everything below but efd, ev, handler, ud */
    pthread_cond_t room;
    slot *ring;
    size_t cap, head, len;
    size_t reserved;         /* slots kept for replies to requests posted elsewhere */
    size_t bytes, max_bytes; /* the byte budget (max_bytes 0: none) */
    unsigned waiters;
    bool closed;
    bool wake_pending; /* an eventfd write is due or done and not yet seen */
    int efd;
    struct event *ev;
    jb_mail_fn handler;
    void *ud;
};

jb_status jb_mailbox_create(size_t cap, jb_mailbox **out, jb_err *err)
{
    if (cap == 0 || cap > JB_MAILBOX_CAP_MAX)
        return jb_err_set(err, JB_ERR_INVALID, "mailbox capacity %zu is not in 1..%u", cap,
                          JB_MAILBOX_CAP_MAX);
    jb_mailbox *mb = calloc(1, sizeof(*mb));
    slot *ring = calloc(cap, sizeof(*ring));
    if (mb == NULL || ring == NULL) {
        free(mb);
        free(ring);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0) {
        free(mb);
        free(ring);
        return jb_err_set(err, JB_ERR_IO, "eventfd: %s", strerror(errno));
    }
    mb->ring = ring;
    mb->cap = cap;
    pthread_mutex_init(&mb->mu, NULL);
    pthread_cond_init(&mb->room, NULL);
    *out = mb;
    return JB_OK;
}

static void wake(jb_mailbox *mb)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake-up is due anyway. */
    while (write(mb->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* mu held. Appends; true when the receiver must be woken (by the caller, after
 * unlocking). */
static bool push_locked(jb_mailbox *mb, const jb_mail *m, bool is_reply, size_t bytes)
{
    slot *s = &mb->ring[(mb->head + mb->len) % mb->cap];
    s->m = *m;
    s->is_reply = is_reply;
    s->bytes = bytes;
    mb->bytes += bytes;
    mb->len++;
    bool w = !mb->wake_pending;
    mb->wake_pending = true;
    return w;
}

static jb_status reserve(jb_mailbox *mb)
{
    jb_status st = JB_ERR_FULL;
    pthread_mutex_lock(&mb->mu);
    if (mb->len + mb->reserved < mb->cap) {
        mb->reserved++;
        st = JB_OK;
    }
    pthread_mutex_unlock(&mb->mu);
    return st;
}

static void unreserve(jb_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->reserved--;
    if (mb->waiters > 0)
        pthread_cond_broadcast(&mb->room);
    pthread_mutex_unlock(&mb->mu);
}

/* mu held. No room for a message of bytes: the slots (replies reserved included)
 * are taken, or the byte budget would be passed. A message larger than the whole
 * budget still goes into an empty mailbox: the budget bounds the queue, the
 * producer bounds one message. */
static bool no_room(const jb_mailbox *mb, size_t bytes)
{
    return mb->len + mb->reserved >= mb->cap ||
           (mb->max_bytes > 0 && mb->len > 0 && mb->bytes + bytes > mb->max_bytes);
}

static jb_status post(jb_mailbox *mb, const jb_mail *m, size_t bytes, bool wait)
{
    /* The reply's slot first, with no lock of mb held: two mailboxes' locks are
     * never held together, so requests may cross in both directions. */
    if (m->reply_to != NULL && m->reply != NULL && reserve(m->reply_to) != JB_OK)
        return JB_ERR_FULL;
    jb_status st = JB_OK;
    bool w = false;
    pthread_mutex_lock(&mb->mu);
    while (wait && !mb->closed && no_room(mb, bytes)) {
        mb->waiters++;
        pthread_cond_wait(&mb->room, &mb->mu);
        mb->waiters--;
    }
    if (mb->closed)
        st = JB_ERR_CLOSED;
    else if (no_room(mb, bytes))
        st = JB_ERR_FULL;
    else
        w = push_locked(mb, m, false, bytes);
    pthread_mutex_unlock(&mb->mu);
    if (w)
        wake(mb);
    if (st != JB_OK && m->reply_to != NULL && m->reply != NULL)
        unreserve(m->reply_to);
    return st;
}

jb_status jb_mailbox_post(jb_mailbox *mb, const jb_mail *m)
{
    return post(mb, m, 0, false);
}

jb_status jb_mailbox_post_wait(jb_mailbox *mb, const jb_mail *m)
{
    return post(mb, m, 0, true);
}

void jb_mailbox_set_byte_cap(jb_mailbox *mb, size_t max_bytes)
{
    pthread_mutex_lock(&mb->mu);
    mb->max_bytes = max_bytes;
    pthread_mutex_unlock(&mb->mu);
}

jb_status jb_mailbox_post_sized(jb_mailbox *mb, const jb_mail *m, size_t bytes)
{
    return post(mb, m, bytes, false);
}

jb_status jb_mailbox_post_wait_sized(jb_mailbox *mb, const jb_mail *m, size_t bytes)
{
    return post(mb, m, bytes, true);
}

void jb_mail_reply(jb_mail *m)
{
    if (m->reply == NULL)
        return;
    jb_mailbox *to = m->reply_to;
    if (to == NULL) {
        m->reply(m, m->reply_ud);
        return;
    }
    pthread_mutex_lock(&to->mu);
    to->reserved--; /* the slot reserved at post time becomes the reply's */
    bool w = push_locked(to, m, true, 0);
    pthread_mutex_unlock(&to->mu);
    if (w)
        wake(to);
}

void jb_mailbox_close(jb_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    pthread_cond_broadcast(&mb->room);
    pthread_mutex_unlock(&mb->mu);
    wake(mb); /* a taker blocked in poll() sees the close */
}

/* Takes up to max messages out into out[]; when none is left the next post wakes
 * the receiver again. */
static size_t pop(jb_mailbox *mb, slot *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&mb->mu);
    while (k < max && mb->len > 0) {
        out[k] = mb->ring[mb->head];
        mb->bytes -= out[k++].bytes;
        mb->head = (mb->head + 1) % mb->cap;
        mb->len--;
    }
    if (mb->len == 0)
        mb->wake_pending = false;
    if (k > 0 && mb->waiters > 0)
        pthread_cond_broadcast(&mb->room);
    pthread_mutex_unlock(&mb->mu);
    return k;
}

static void dispatch(slot *s, jb_mail_fn fn, void *ud)
{
    if (s->is_reply)
        s->m.reply(&s->m, s->m.reply_ud);
    else if (fn != NULL)
        fn(&s->m, ud);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    jb_mailbox *mb = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    slot batch[BATCH];
    size_t done = 0, k;
    while (done < mb->cap && (k = pop(mb, batch, BATCH)) > 0) {
        for (size_t i = 0; i < k; i++)
            dispatch(&batch[i], mb->handler, mb->ud);
        done += k;
    }
    /* Stopped at the per-turn cap with messages left: come back next turn. */
    if (done >= mb->cap && jb_mailbox_len(mb) > 0)
        wake(mb);
}

jb_status jb_mailbox_attach(jb_mailbox *mb, struct event_base *base, jb_mail_fn handler, void *ud)
{
    mb->handler = handler;
    mb->ud = ud;
    mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, on_wake, mb);
    if (mb->ev == NULL || event_add(mb->ev, NULL) != 0)
        return JB_ERR_NOMEM;
    return JB_OK;
}

jb_status jb_mailbox_take(jb_mailbox *mb, jb_mail *out, int64_t timeout_ms)
{
    int64_t deadline = jb_now_monotonic_ns() + timeout_ms * 1000000LL;
    for (;;) {
        pthread_mutex_lock(&mb->mu);
        bool closed = mb->closed;
        pthread_mutex_unlock(&mb->mu);
        if (closed)
            return JB_ERR_CLOSED;
        slot s;
        if (pop(mb, &s, 1) == 1) {
            if (!s.is_reply) {
                *out = s.m;
                return JB_OK;
            }
            dispatch(&s, NULL, NULL);
            continue;
        }
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - jb_now_monotonic_ns();
            if (left <= 0)
                return JB_ERR_TIMEOUT;
            wait_ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {mb->efd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) > 0) {
            uint64_t v;
            ssize_t r = read(mb->efd, &v, sizeof(v));
            (void)r;
        }
    }
}

size_t jb_mailbox_drain(jb_mailbox *mb, jb_mail_fn fn, void *ud)
{
    slot batch[BATCH];
    size_t n = 0, k;
    while ((k = pop(mb, batch, BATCH)) > 0) {
        for (size_t i = 0; i < k; i++)
            dispatch(&batch[i], fn, ud);
        n += k;
    }
    return n;
}

size_t jb_mailbox_len(jb_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    size_t n = mb->len;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

void jb_mailbox_destroy(jb_mailbox *mb, jb_mail_fn dispose, void *ud)
{
    if (mb == NULL)
        return;
    if (mb->ev != NULL)
        event_free(mb->ev);
    mb->ev = NULL;
    slot batch[BATCH];
    size_t k;
    while ((k = pop(mb, batch, BATCH)) > 0)
        for (size_t i = 0; i < k; i++)
            dispatch(&batch[i], dispose, ud);
    close(mb->efd);
    pthread_mutex_destroy(&mb->mu);
    pthread_cond_destroy(&mb->room);
    free(mb->ring);
    free(mb);
}

/* ------------------------------------------------------------- workers */

struct jb_worker {
    jb_mailbox *mb;
    pthread_t tid;
    jb_mail_fn handler;
    void (*idle)(void *ud);
    int64_t idle_ms;
    void *ud;
    char name[16];
};

static void *worker_main(void *arg)
{
    jb_worker *w = arg;
    pthread_setname_np(pthread_self(), w->name);
    for (;;) {
        jb_mail m;
        jb_status st = jb_mailbox_take(w->mb, &m, w->idle != NULL ? w->idle_ms : -1);
        if (st == JB_ERR_CLOSED)
            break;
        if (st == JB_OK)
            w->handler(&m, w->ud);
        else if (w->idle != NULL)
            w->idle(w->ud);
    }
    return NULL;
}

jb_status jb_worker_start(const char *name, size_t cap, jb_mail_fn handler, void (*idle)(void *ud),
                          int64_t idle_ms, void *ud, jb_worker **out, jb_err *err)
{
    jb_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    jb_status st = jb_mailbox_create(cap, &w->mb, err);
    if (st != JB_OK) {
        free(w);
        return st;
    }
    w->handler = handler;
    w->idle = idle;
    w->idle_ms = idle_ms > 0 ? idle_ms : 1000;
    w->ud = ud;
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
        jb_mailbox_destroy(w->mb, NULL, NULL);
        free(w);
        return jb_err_set(err, JB_ERR_INTERNAL, "cannot start the %s thread", name);
    }
    *out = w;
    return JB_OK;
}

jb_mailbox *jb_worker_mailbox(jb_worker *w)
{
    return w->mb;
}

bool jb_worker_stopping(jb_worker *w)
{
    pthread_mutex_lock(&w->mb->mu);
    bool c = w->mb->closed;
    pthread_mutex_unlock(&w->mb->mu);
    return c;
}

void jb_worker_stop(jb_worker *w, jb_mail_fn dispose, void *ud)
{
    if (w == NULL)
        return;
    jb_mailbox_close(w->mb);
    pthread_join(w->tid, NULL);
    jb_mailbox_destroy(w->mb, dispose, ud);
    free(w);
}

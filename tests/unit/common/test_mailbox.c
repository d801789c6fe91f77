/* common/: the cross-thread mailbox and workers (jb_mailbox.h). Real threads and a
 * real libevent loop; every wait polls a condition with a generous deadline. */
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "jb_cunit.h"

#define DEADLINE_NS (60LL * 1000000000LL)

/* Runs base until *done or the deadline; true when done. */
static bool loop_until(struct event_base *base, atomic_bool *done)
{
    int64_t end = jb_now_monotonic_ns() + DEADLINE_NS;
    while (!atomic_load(done) && jb_now_monotonic_ns() < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return atomic_load(done);
}

/* FIFO order, the cap, the full and closed answers, drain and destroy. */
static void test_bounded_fifo(void)
{
    jb_mailbox *mb = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_mailbox_create(0, &mb, &err), JB_ERR_INVALID);
    CU_ASSERT_EQUAL(jb_mailbox_create(JB_MAILBOX_CAP_MAX + 1, &mb, &err), JB_ERR_INVALID);
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(3, &mb, &err), JB_OK);
    for (int i = 0; i < 3; i++) {
        jb_mail m = {.kind = 1, .val = i};
        CU_ASSERT_EQUAL(jb_mailbox_post(mb, &m), JB_OK);
    }
    jb_mail extra = {.kind = 1, .val = 99};
    CU_ASSERT_EQUAL(jb_mailbox_post(mb, &extra), JB_ERR_FULL);
    CU_ASSERT_EQUAL(jb_mailbox_len(mb), 3);
    jb_mail out;
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
    CU_ASSERT_EQUAL(out.val, 0);
    CU_ASSERT_EQUAL(jb_mailbox_post(mb, &extra), JB_OK); /* room again */
    for (int want = 1; want <= 2; want++) {
        CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
        CU_ASSERT_EQUAL(out.val, want);
    }
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
    CU_ASSERT_EQUAL(out.val, 99);
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 50), JB_ERR_TIMEOUT);
    /* Closed: posts refused, takers told, the rest stays for destroy. */
    CU_ASSERT_EQUAL(jb_mailbox_post(mb, &extra), JB_OK);
    jb_mailbox_close(mb);
    CU_ASSERT_EQUAL(jb_mailbox_post(mb, &extra), JB_ERR_CLOSED);
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, -1), JB_ERR_CLOSED);
    CU_ASSERT_EQUAL(jb_mailbox_len(mb), 1);
    jb_mailbox_destroy(mb, NULL, NULL);
}

static void count_dispose(jb_mail *m, void *ud)
{
    (void)m;
    (*(int *)ud)++;
    free(m->ptr);
}

/* What is left at destroy reaches the disposer: payloads are not leaked. */
static void test_destroy_disposes(void)
{
    jb_mailbox *mb = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(8, &mb, NULL), JB_OK);
    for (int i = 0; i < 5; i++) {
        jb_mail m = {.ptr = malloc(16)};
        CU_ASSERT_EQUAL(jb_mailbox_post(mb, &m), JB_OK);
    }
    int n = 0;
    jb_mailbox_destroy(mb, count_dispose, &n);
    CU_ASSERT_EQUAL(n, 5);
}

/* ------------------------------------------------------------ producers */

enum { PRODUCERS = 4, PER_PRODUCER = 20000 };

typedef struct mp_state {
    jb_mailbox *mb;
    int64_t next[PRODUCERS]; /* loop only: the next sequence number expected */
    long received, out_of_order;
    atomic_long full_answers, failed_posts;
    atomic_bool done;
} mp_state;

typedef struct producer {
    mp_state *s;
    int id;
    bool wait; /* post_wait, else post and retry on "full" */
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int64_t i = 0; i < PER_PRODUCER; i++) {
        jb_mail m = {.kind = p->id, .val = i};
        if (p->wait) {
            /* No CUnit assertion off the main thread: count instead. */
            if (jb_mailbox_post_wait(p->s->mb, &m) != JB_OK)
                atomic_fetch_add(&p->s->failed_posts, 1);
            continue;
        }
        while (jb_mailbox_post(p->s->mb, &m) == JB_ERR_FULL) {
            atomic_fetch_add(&p->s->full_answers, 1);
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void on_mp(jb_mail *m, void *ud)
{
    mp_state *s = ud;
    if (m->kind < 0 || m->kind >= PRODUCERS || m->val != s->next[m->kind])
        s->out_of_order++;
    else
        s->next[m->kind]++;
    if (++s->received == (long)PRODUCERS * PER_PRODUCER)
        atomic_store(&s->done, true);
}

/* Four threads post 80,000 messages through a mailbox of 64 to a libevent loop:
 * every message arrives once, each producer's in its order, and the cap holds
 * (the non-waiting producers see "full" and retry). */
static void test_multi_producer(void)
{
    static mp_state s;
    memset(&s, 0, sizeof(s));
    struct event_base *base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(64, &s.mb, NULL), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_attach(s.mb, base, on_mp, &s), JB_OK);
    pthread_t t[PRODUCERS];
    producer p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (producer){&s, i, i % 2 == 0};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    CU_ASSERT_TRUE(loop_until(base, &s.done));
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(s.received, (long)PRODUCERS * PER_PRODUCER);
    CU_ASSERT_EQUAL(s.out_of_order, 0);
    CU_ASSERT_EQUAL(atomic_load(&s.failed_posts), 0);
    CU_ASSERT_TRUE(jb_mailbox_len(s.mb) <= 64);
    jb_mailbox_destroy(s.mb, NULL, NULL);
    event_base_free(base);
}

/* ------------------------------------------------------ requests, replies */

typedef struct rr_state {
    pthread_t loop_thread;
    atomic_int replies;
    atomic_int wrong_thread;
    atomic_bool done;
    int want;
} rr_state;

/* The worker doubles val and answers. */
static void on_request(jb_mail *m, void *ud)
{
    (void)ud;
    m->val *= 2;
    jb_mail_reply(m);
}

static void on_reply(jb_mail *m, void *ud)
{
    rr_state *s = ud;
    if (!pthread_equal(pthread_self(), s->loop_thread))
        atomic_fetch_add(&s->wrong_thread, 1);
    CU_ASSERT_EQUAL(m->val, 2 * (int64_t)(intptr_t)m->ptr);
    if (atomic_fetch_add(&s->replies, 1) + 1 == s->want)
        atomic_store(&s->done, true);
}

/* A worker answers requests; the replies run on the sender's loop thread. A
 * request reserves its reply's slot: with a reply mailbox of 2, a third request
 * is refused ("full") until a reply was handled, and plain posts to the sender's
 * mailbox find it full while the replies are owed. */
static void test_request_reply(void)
{
    static rr_state s;
    memset(&s, 0, sizeof(s));
    s.loop_thread = pthread_self();
    struct event_base *base = event_base_new();
    jb_mailbox *home = NULL;
    jb_worker *w = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(2, &home, NULL), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_attach(home, base, NULL, NULL), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_worker_start("test-worker", 16, on_request, NULL, 0, NULL, &w, NULL),
                          JB_OK);
    jb_mail req = {.reply_to = home, .reply = on_reply, .reply_ud = &s};
    req.ptr = (void *)(intptr_t)1;
    req.val = 1;
    CU_ASSERT_EQUAL(jb_mailbox_post(jb_worker_mailbox(w), &req), JB_OK);
    req.ptr = (void *)(intptr_t)2;
    req.val = 2;
    CU_ASSERT_EQUAL(jb_mailbox_post(jb_worker_mailbox(w), &req), JB_OK);
    CU_ASSERT_EQUAL(jb_mailbox_post(jb_worker_mailbox(w), &req), JB_ERR_FULL);
    jb_mail plain = {0};
    CU_ASSERT_EQUAL(jb_mailbox_post(home, &plain), JB_ERR_FULL);
    s.want = 2;
    CU_ASSERT_TRUE(loop_until(base, &s.done));
    CU_ASSERT_EQUAL(atomic_load(&s.wrong_thread), 0);
    /* Room again: many more, two at a time. */
    for (int i = 3; i <= 200; i++) {
        req.ptr = (void *)(intptr_t)i;
        req.val = i;
        while (jb_mailbox_post(jb_worker_mailbox(w), &req) == JB_ERR_FULL)
            event_base_loop(base, EVLOOP_ONCE);
    }
    atomic_store(&s.done, false);
    s.want = 200;
    if (atomic_load(&s.replies) == s.want)
        atomic_store(&s.done, true);
    CU_ASSERT_TRUE(loop_until(base, &s.done));
    CU_ASSERT_EQUAL(atomic_load(&s.replies), 200);
    CU_ASSERT_EQUAL(atomic_load(&s.wrong_thread), 0);
    jb_worker_stop(w, NULL, NULL);
    jb_mailbox_destroy(home, NULL, NULL);
    event_base_free(base);
}

typedef struct compl_state {
    pthread_t main;
    atomic_int ran;      /* the completion ran */
    atomic_int off_main; /* ... on another thread than main */
} compl_state;

static void on_completion(jb_mail *m, void *ud)
{
    (void)m;
    compl_state *cs = ud;
    atomic_store(&cs->off_main, !pthread_equal(pthread_self(), cs->main));
    atomic_store(&cs->ran, 1);
}

static void on_complete_request(jb_mail *m, void *ud)
{
    (void)ud;
    jb_mail_reply(m);
}

/* Without reply_to the reply function runs at once on the receiver's thread. */
static void test_completion(void)
{
    jb_worker *w = NULL;
    static compl_state cs;
    cs.main = pthread_self();
    CU_ASSERT_EQUAL_FATAL(
        jb_worker_start("test-compl", 4, on_complete_request, NULL, 0, NULL, &w, NULL), JB_OK);
    jb_mail m = {.reply = on_completion, .reply_ud = &cs};
    CU_ASSERT_EQUAL(jb_mailbox_post(jb_worker_mailbox(w), &m), JB_OK);
    int64_t end = jb_now_monotonic_ns() + DEADLINE_NS;
    while (!atomic_load(&cs.ran) && jb_now_monotonic_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_TRUE(atomic_load(&cs.ran));
    CU_ASSERT_TRUE(atomic_load(&cs.off_main));
    jb_worker_stop(w, NULL, NULL);
}

typedef struct wait_state {
    jb_mailbox *mb;
    atomic_int result;
} wait_state;

static void *post_waiting(void *arg)
{
    wait_state *ws = arg;
    jb_mail m = {.val = 7};
    atomic_store(&ws->result, (int)jb_mailbox_post_wait(ws->mb, &m));
    return NULL;
}

/* post_wait waits for room and goes on once there is some; a close wakes it with
 * JB_ERR_CLOSED instead of leaving it blocked. */
static void test_post_wait(void)
{
    static wait_state ws;
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(1, &ws.mb, NULL), JB_OK);
    jb_mail m = {.val = 1};
    CU_ASSERT_EQUAL(jb_mailbox_post(ws.mb, &m), JB_OK);
    for (int round = 0; round < 2; round++) {
        atomic_store(&ws.result, -1);
        pthread_t t;
        pthread_create(&t, NULL, post_waiting, &ws);
        /* Still full: the waiting sender has not got through. */
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        CU_ASSERT_EQUAL(atomic_load(&ws.result), -1);
        jb_mail out;
        if (round == 0) {
            CU_ASSERT_EQUAL(jb_mailbox_take(ws.mb, &out, 0), JB_OK);
            CU_ASSERT_EQUAL(out.val, 1);
        } else {
            jb_mailbox_close(ws.mb);
        }
        pthread_join(t, NULL);
        CU_ASSERT_EQUAL(atomic_load(&ws.result), round == 0 ? JB_OK : JB_ERR_CLOSED);
    }
    CU_ASSERT_EQUAL(jb_mailbox_len(ws.mb), 1);
    jb_mailbox_destroy(ws.mb, NULL, NULL);
}

typedef struct idle_state {
    atomic_int idles, handled;
} idle_state;

static void on_idle(void *ud)
{
    atomic_fetch_add(&((idle_state *)ud)->idles, 1);
}

static void on_count(jb_mail *m, void *ud)
{
    (void)m;
    atomic_fetch_add(&((idle_state *)ud)->handled, 1);
}

/* A worker runs its idle function when nothing comes, and stop hands what it
 * never took to the disposer. */
static void test_worker_idle_and_stop(void)
{
    static idle_state is;
    jb_worker *w = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_worker_start("test-idle", 4, on_count, on_idle, 10, &is, &w, NULL),
                          JB_OK);
    int64_t end = jb_now_monotonic_ns() + DEADLINE_NS;
    while (atomic_load(&is.idles) < 2 && jb_now_monotonic_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_TRUE(atomic_load(&is.idles) >= 2);
    CU_ASSERT_FALSE(jb_worker_stopping(w));
    jb_mail m = {0};
    CU_ASSERT_EQUAL(jb_mailbox_post(jb_worker_mailbox(w), &m), JB_OK);
    while (atomic_load(&is.handled) < 1 && jb_now_monotonic_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&is.handled), 1);
    jb_worker_stop(w, NULL, NULL);
}

/* The byte budget: a sized post past it is full until a take frees its bytes;
 * a message larger than the whole budget still goes into an empty mailbox; plain
 * posts count nothing against it. */
static void test_byte_budget(void)
{
    jb_mailbox *mb = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_mailbox_create(16, &mb, NULL), JB_OK);
    jb_mailbox_set_byte_cap(mb, 100);
    jb_mail m = {.val = 1};
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 60), JB_OK);
    m.val = 2;
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 50), JB_ERR_FULL);
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 40), JB_OK);
    m.val = 3;
    CU_ASSERT_EQUAL(jb_mailbox_post(mb, &m), JB_OK); /* 0 bytes */
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 1), JB_ERR_FULL);
    jb_mail out;
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
    CU_ASSERT_EQUAL(out.val, 1);
    CU_ASSERT_EQUAL(jb_mailbox_post_wait_sized(mb, &m, 60), JB_OK); /* 60 freed */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
    CU_ASSERT_EQUAL(jb_mailbox_len(mb), 0);
    m.val = 4;
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 1000), JB_OK); /* alone: goes in */
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 1), JB_ERR_FULL);
    CU_ASSERT_EQUAL(jb_mailbox_take(mb, &out, 0), JB_OK);
    CU_ASSERT_EQUAL(out.val, 4);
    CU_ASSERT_EQUAL(jb_mailbox_post_sized(mb, &m, 100), JB_OK); /* all freed */
    jb_mailbox_destroy(mb, NULL, NULL);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"bounded FIFO: full, closed, timeout", test_bounded_fifo},
        {"destroy hands leftovers to the disposer", test_destroy_disposes},
        {"four producers into a loop receiver, cap 64", test_multi_producer},
        {"requests reserve their reply; replies on the sender's loop", test_request_reply},
        {"completion runs on the receiver's thread", test_completion},
        {"post_wait waits for room; close releases it", test_post_wait},
        {"worker idle function and stop", test_worker_idle_and_stop},
        {"byte budget besides the cap", test_byte_budget},
    };
    return jb_cunit_main("mailbox", NULL, NULL, cases, JB_CASES_N(cases));
}

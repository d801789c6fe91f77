/* dispatcher/: the pull accounting (slots.c) alone: per-consumer windows, the
 * process-wide cap and its starved list, long polls and parked arrivals, and the
 * prefetch window (DISPATCH_PREFETCH) with its queue in front of the sink. */
#include <stdint.h>

#include "dispatcher/disp_slots.h"
#include "jb_cunit.h"

/* Plans, then opens, a request for c; returns its size. */
static int ask(jb_dslots *s, jb_dslot *c, bool *long_poll)
{
    bool lp = false;
    int n = jb_dslots_plan(s, c, 0, &lp);
    if (n > 0)
        jb_dslots_opened(s, c, n, lp, 1000);
    if (long_poll != NULL)
        *long_poll = lp;
    return n;
}

/* The bounds the accounting promises, checked after every step. */
static void check_bounds(const jb_dslots *s, const jb_dslot *const *cs, size_t n)
{
    /* Parked messages wait outside the cap: at most one per consumer. */
    CU_ASSERT_TRUE(s->global_outstanding + s->global_requested <= s->global_max);
    CU_ASSERT_TRUE(s->nparked >= 0 && (size_t)s->nparked <= n);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_TRUE(cs[i]->outstanding + cs[i]->requested <= jb_dslots_window(s, cs[i]));
        /* The sink never sees more than maxInFlightMessages. */
        CU_ASSERT_TRUE(cs[i]->at_sink >= 0 && cs[i]->at_sink <= cs[i]->max_in_flight);
        CU_ASSERT_TRUE(cs[i]->at_sink <= cs[i]->outstanding);
    }
}

/* A consumer asks for its whole window, never more; each settled message frees a
 * slot, and it asks again only when an eighth of the window is free (or nothing
 * is in flight). */
static void test_window(void)
{
    static const struct {
        int max_in_flight, global_max, first_ask, after_one;
    } cases[] = {
        {1, 1024, 1, 1},        {10, 1024, 10, 1}, /* one free slot is an eighth of 10 */
        {64, 1024, 64, 0},                         /* one of 64 is not: wait for 8 */
        {1000, 1024, 256, 256},                    /* the batch cap, both times */
        {10, 4, 4, 1}, /* the process cap limits: ask for what it allows */
    };
    for (size_t k = 0; k < JB_CASES_N(cases); k++) {
        jb_dslots s;
        jb_dslot c;
        jb_dslots_init(&s, cases[k].global_max);
        jb_dslot_init(&c, cases[k].max_in_flight);
        const jb_dslot *all[] = {&c};
        int n = ask(&s, &c, NULL);
        CU_ASSERT_EQUAL(n, cases[k].first_ask);
        CU_ASSERT_EQUAL(ask(&s, &c, NULL), 0); /* one open request at a time */
        int msg = 0;
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
        check_bounds(&s, all, 1);
        CU_ASSERT_FALSE(c.req_open); /* the batch filled: it ended */
        CU_ASSERT_EQUAL(c.outstanding, n);
        jb_dslot *owner = NULL;
        CU_ASSERT_PTR_NULL(jb_dslots_release(&s, &c, &owner, NULL));
        check_bounds(&s, all, 1);
        bool lp;
        int again = jb_dslots_plan(&s, &c, 0, &lp);
        CU_ASSERT_EQUAL(again, cases[k].after_one);
    }
}

/* Two consumers share a process-wide cap of 3: the second waits on the starved
 * list and gets another look as soon as the first settles a message. */
static void test_starved(void)
{
    jb_dslots s;
    jb_dslot a, b;
    jb_dslots_init(&s, 3);
    jb_dslot_init(&a, 10);
    jb_dslot_init(&b, 10);
    const jb_dslot *all[] = {&a, &b};
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 3);
    CU_ASSERT_EQUAL(ask(&s, &b, NULL), 0);
    CU_ASSERT_TRUE(b.in_starved);
    CU_ASSERT_FALSE(jb_dslots_pump_waiting(&s));
    int msg = 0;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &a, &msg, 0), JB_DSLOT_DELIVER);
    check_bounds(&s, all, 2);
    /* a's batch filled: it is looked at again, but the cap leaves it nothing. */
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &a);
    CU_ASSERT_PTR_NULL(jb_dslots_next(&s));
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 0);
    CU_ASSERT_TRUE(a.in_starved);
    jb_dslot *owner = NULL;
    jb_dslots_release(&s, &a, &owner, NULL);
    CU_ASSERT_TRUE(jb_dslots_pump_waiting(&s));
    /* Both starved get another look, in the order they came to the list. */
    jb_dslot *first = jb_dslots_next(&s), *second = jb_dslots_next(&s);
    CU_ASSERT_TRUE((first == &a && second == &b) || (first == &b && second == &a));
    CU_ASSERT_PTR_NULL(jb_dslots_next(&s));
    CU_ASSERT_EQUAL(ask(&s, &b, NULL), 1);
    check_bounds(&s, all, 2);
    /* A request closed with slots unused gives them back and wakes the starved. */
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 0);
    CU_ASSERT_TRUE(a.in_starved);
    jb_dslots_close(&s, &b);
    CU_ASSERT_EQUAL(s.global_requested, 0);
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &a);
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 1);
    check_bounds(&s, all, 2);
}

/* An idle consumer long-polls for one message with a slot of its own; if it
 * arrives while the process-wide slots are taken it is parked, and the next
 * settled message hands its slot over to it. At stop, parked messages come back. */
static void test_park(void)
{
    jb_dslots s;
    jb_dslot busy, idle;
    jb_dslots_init(&s, 1);
    jb_dslot_init(&busy, 5);
    jb_dslot_init(&idle, 5);
    const jb_dslot *all[] = {&busy, &idle};
    int m1 = 1, m2 = 2, m3 = 3;
    /* idle's last request brought nothing: the next one is a long poll. */
    CU_ASSERT_EQUAL(ask(&s, &idle, NULL), 1);
    jb_dslots_ended(&s, &idle);
    CU_ASSERT_TRUE(idle.last_empty);
    CU_ASSERT_EQUAL(ask(&s, &busy, NULL), 1);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &busy, &m1, 0), JB_DSLOT_DELIVER);
    bool lp = false;
    CU_ASSERT_EQUAL(ask(&s, &idle, &lp), 1);
    CU_ASSERT_TRUE(lp);
    CU_ASSERT_EQUAL(s.global_requested, 0); /* a long poll holds no process-wide slot */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &idle, &m2, 7), JB_DSLOT_PARKED);
    CU_ASSERT_EQUAL(s.nparked, 1);
    CU_ASSERT_EQUAL(idle.outstanding, 1);
    check_bounds(&s, all, 2);
    jb_dslot *owner = NULL;
    uint64_t tag = 0;
    CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s, &busy, &owner, &tag), &m2);
    CU_ASSERT_PTR_EQUAL(owner, &idle);
    CU_ASSERT_EQUAL(tag, 7); /* unparked straight to the sink, with its tag */
    CU_ASSERT_EQUAL(s.global_outstanding, 1);
    CU_ASSERT_EQUAL(s.nparked, 0);
    check_bounds(&s, all, 2);
    /* Parked again, then taken back at stop: the consumer's slot returns. */
    CU_ASSERT_EQUAL(ask(&s, &busy, NULL), 0); /* the cap is idle's now */
    busy.last_empty = true;                   /* as after an empty request */
    CU_ASSERT_EQUAL(ask(&s, &busy, &lp), 1);
    CU_ASSERT_TRUE(lp);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &busy, &m3, 0), JB_DSLOT_PARKED);
    check_bounds(&s, all, 2);
    CU_ASSERT_PTR_EQUAL(jb_dslots_unpark(&s), &m3);
    CU_ASSERT_PTR_NULL(jb_dslots_unpark(&s));
    CU_ASSERT_EQUAL(busy.outstanding, 0);
    CU_ASSERT_EQUAL(s.nparked, 0);
}

/* A long poll's message counts the slots other consumers' open requests hold: when
 * their batches arrive in full, the deliveries in flight stay within the cap. When an
 * open request gives its slots back unused (a 408), the parked message takes one
 * without any delivery settling. */
static void test_park_counts_open_requests(void)
{
    jb_dslots s;
    jb_dslot busy, idle;
    jb_dslots_init(&s, 2);
    jb_dslot_init(&busy, 5);
    jb_dslot_init(&idle, 5);
    const jb_dslot *all[] = {&busy, &idle};
    int m1 = 1, m2 = 2, m3 = 3;
    CU_ASSERT_EQUAL(ask(&s, &idle, NULL), 2); /* the cap allows 2 */
    jb_dslots_ended(&s, &idle);               /* brought nothing: idle long-polls next */
    bool lp = false;
    CU_ASSERT_EQUAL(ask(&s, &idle, &lp), 1);
    CU_ASSERT_TRUE(lp);
    CU_ASSERT_EQUAL(ask(&s, &busy, NULL), 2); /* the whole cap, held by busy's request */
    CU_ASSERT_EQUAL(s.global_outstanding, 0);
    CU_ASSERT_FALSE(jb_dslots_has_room_for_parked(&s));
    /* Nothing is in flight, but both slots are busy's: idle's message waits. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &idle, &m1, 11), JB_DSLOT_PARKED);
    check_bounds(&s, all, 2);
    CU_ASSERT_FALSE(jb_dslots_has_room_for_parked(&s));
    /* busy's batch arrives in full: two in flight, the cap, not three. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &busy, &m2, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &busy, &m3, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_EQUAL(s.global_outstanding, 2);
    check_bounds(&s, all, 2);
    /* One settles: the parked message takes its slot. */
    jb_dslot *owner = NULL;
    uint64_t tag = 0;
    CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s, &busy, &owner, &tag), &m1);
    CU_ASSERT_PTR_EQUAL(owner, &idle);
    CU_ASSERT_EQUAL(tag, 11);
    CU_ASSERT_EQUAL(s.global_outstanding, 2);
    check_bounds(&s, all, 2);

    /* Again, and this time busy's request ends with a 408 and brings nothing: the
     * slots it gives back are the parked message's without any settle. */
    jb_dslots s2;
    jb_dslot b2, i2;
    jb_dslots_init(&s2, 2);
    jb_dslot_init(&b2, 5);
    jb_dslot_init(&i2, 5);
    const jb_dslot *all2[] = {&b2, &i2};
    CU_ASSERT_EQUAL(ask(&s2, &i2, NULL), 2);
    jb_dslots_ended(&s2, &i2);
    CU_ASSERT_EQUAL(ask(&s2, &i2, &lp), 1);
    CU_ASSERT_EQUAL(ask(&s2, &b2, NULL), 2);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s2, &i2, &m1, 12), JB_DSLOT_PARKED);
    jb_dslots_ended(&s2, &b2); /* 408, nothing brought */
    check_bounds(&s2, all2, 2);
    CU_ASSERT_TRUE(jb_dslots_has_room_for_parked(&s2));
    owner = NULL;
    CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s2, NULL, &owner, &tag), &m1);
    CU_ASSERT_PTR_EQUAL(owner, &i2);
    CU_ASSERT_EQUAL(tag, 12);
    CU_ASSERT_PTR_NULL(jb_dslots_release(&s2, NULL, &owner, &tag));
    CU_ASSERT_FALSE(jb_dslots_has_room_for_parked(&s2));
    CU_ASSERT_EQUAL(s2.global_outstanding, 1);
    CU_ASSERT_EQUAL(s2.nparked, 0);
    check_bounds(&s2, all2, 2);
}

/* A message from a request already dropped (a reconnect) counts only when there
 * is room; otherwise it is refused and nothing is counted. */
static void test_stale_arrivals(void)
{
    jb_dslots s;
    jb_dslot c;
    jb_dslots_init(&s, 100);
    jb_dslot_init(&c, 2);
    int m = 0;
    CU_ASSERT_EQUAL(ask(&s, &c, NULL), 2);
    jb_dslots_close(&s, &c); /* dropped */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_REFUSE);
    CU_ASSERT_EQUAL(c.outstanding, 2);
    CU_ASSERT_EQUAL(s.global_outstanding, 2);
}

/* A stale message counts against the process-wide cap together with what other
 * consumers' open requests hold: the slots B asked for are not A's to take (else
 * the sink would see more than DISPATCHER_MAX_CONCURRENT once B's batch arrives). */
static void test_stale_arrival_respects_others_requests(void)
{
    jb_dslots s;
    jb_dslot a, b;
    jb_dslots_init(&s, 4);
    jb_dslot_init(&a, 10);
    jb_dslot_init(&b, 10);
    const jb_dslot *all[] = {&a, &b};
    int m = 0;
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 4);
    jb_dslots_close(&s, &a); /* dropped (a reconnect, new settings) */
    CU_ASSERT_EQUAL(ask(&s, &b, NULL), 4);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &a, &m, 0), JB_DSLOT_REFUSE);
    check_bounds(&s, all, 2);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &b, &m, 0), JB_DSLOT_DELIVER);
    check_bounds(&s, all, 2);
    CU_ASSERT_EQUAL(s.global_outstanding, 4);
}

/* Stopped, backing off, or with a request open: no request. A consumer forgotten
 * while it is the pump list's tail leaves a consistent list behind. */
static void test_no_request_and_forget(void)
{
    jb_dslots s;
    jb_dslot a, b, c;
    jb_dslots_init(&s, 100);
    jb_dslot_init(&a, 4);
    jb_dslot_init(&b, 4);
    jb_dslot_init(&c, 4);
    bool lp;
    a.retry_at_ns = 50;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &a, 10, &lp), 0);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &a, 50, &lp), 4);
    b.stop = true;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &b, 0, &lp), 0);
    jb_dslots_want(&s, &b); /* stopped: not queued */
    CU_ASSERT_FALSE(jb_dslots_pump_waiting(&s));
    b.stop = false;
    jb_dslots_want(&s, &a);
    jb_dslots_want(&s, &b);
    jb_dslots_want(&s, &b); /* once */
    jb_dslots_forget(&s, &b);
    jb_dslots_want(&s, &c);
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &a);
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &c);
    CU_ASSERT_PTR_NULL(jb_dslots_next(&s));
}

/* DISPATCH_PREFETCH: a consumer asks for maxInFlightMessages + prefetch; what
 * does not fit at the sink waits in its queue and goes there, oldest first, as
 * deliveries settle. The sink never has more than maxInFlightMessages. */
static void test_prefetch_window(void)
{
    static const struct {
        int max_in_flight, prefetch;
    } cases[] = {{4, 8}, {1, 3}, {64, 64}, {10, 0}};
    for (size_t k = 0; k < JB_CASES_N(cases); k++) {
        jb_dslots s;
        jb_dslot c;
        jb_dslots_init(&s, 1024);
        s.prefetch = cases[k].prefetch;
        jb_dslot_init(&c, cases[k].max_in_flight);
        const jb_dslot *all[] = {&c};
        int window = cases[k].max_in_flight + cases[k].prefetch;
        CU_ASSERT_EQUAL(jb_dslots_window(&s, &c), window);
        int n = ask(&s, &c, NULL);
        CU_ASSERT_EQUAL(n, window);
        int msgs[128];
        for (int i = 0; i < n; i++) {
            jb_dslot_arrival a = jb_dslots_arrived(&s, &c, &msgs[i], 0);
            CU_ASSERT_EQUAL(a, i < cases[k].max_in_flight ? JB_DSLOT_DELIVER : JB_DSLOT_QUEUED);
            check_bounds(&s, all, 1);
        }
        CU_ASSERT_EQUAL(c.at_sink, cases[k].max_in_flight);
        CU_ASSERT_EQUAL(s.global_outstanding, window);
        /* Settling one at a time: the queued ones reach the sink in arrival order. */
        for (int i = cases[k].max_in_flight; i < n; i++) {
            jb_dslot *owner = NULL;
            CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s, &c, &owner, NULL), &msgs[i]);
            CU_ASSERT_PTR_EQUAL(owner, &c);
            CU_ASSERT_PTR_NULL(jb_dslots_release(&s, NULL, &owner, NULL));
            CU_ASSERT_EQUAL(c.at_sink, cases[k].max_in_flight);
            check_bounds(&s, all, 1);
        }
        for (int i = 0; i < cases[k].max_in_flight; i++) {
            jb_dslot *owner = NULL;
            CU_ASSERT_PTR_NULL(jb_dslots_release(&s, &c, &owner, NULL));
            check_bounds(&s, all, 1);
        }
        CU_ASSERT_EQUAL(c.outstanding, 0);
        CU_ASSERT_EQUAL(c.at_sink, 0);
        CU_ASSERT_EQUAL(s.global_outstanding, 0);
    }
}

/* Without prefetch nothing ever waits in front of the sink (Kyma's behaviour). */
static void test_prefetch_zero_never_queues(void)
{
    jb_dslots s;
    jb_dslot c;
    jb_dslots_init(&s, 1024);
    jb_dslot_init(&c, 3);
    const jb_dslot *all[] = {&c};
    int m = 0;
    for (int round = 0; round < 5; round++) {
        int n = ask(&s, &c, NULL);
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_DELIVER);
        check_bounds(&s, all, 1);
        jb_dslot *owner = NULL;
        while (c.outstanding > 0)
            CU_ASSERT_PTR_NULL(jb_dslots_release(&s, &c, &owner, NULL));
    }
    /* A stale arrival beyond the window is refused, not queued. */
    CU_ASSERT_EQUAL(ask(&s, &c, NULL), 3);
    jb_dslots_close(&s, &c);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m, 0), JB_DSLOT_REFUSE);
    check_bounds(&s, all, 1);
}

/* The process-wide cap counts prefetched messages too; a consumer that stops gives
 * its queue back (unqueue) and its slots return. */
static void test_prefetch_cap_and_unqueue(void)
{
    jb_dslots s;
    jb_dslot a, b;
    jb_dslots_init(&s, 6);
    s.prefetch = 4;
    jb_dslot_init(&a, 2);
    jb_dslot_init(&b, 2);
    const jb_dslot *all[] = {&a, &b};
    int m[8];
    CU_ASSERT_EQUAL(ask(&s, &a, NULL), 6); /* window 6, cap 6 */
    CU_ASSERT_EQUAL(ask(&s, &b, NULL), 0); /* the cap is taken */
    CU_ASSERT_TRUE(b.in_starved);
    for (int i = 0; i < 6; i++)
        jb_dslots_arrived(&s, &a, &m[i], 0);
    check_bounds(&s, all, 2);
    CU_ASSERT_EQUAL(a.at_sink, 2);
    /* a stops: its four queued messages come back, oldest first. */
    for (int i = 2; i < 6; i++)
        CU_ASSERT_PTR_EQUAL(jb_dslots_unqueue(&s, &a), &m[i]);
    CU_ASSERT_PTR_NULL(jb_dslots_unqueue(&s, &a));
    CU_ASSERT_EQUAL(a.outstanding, 2);
    CU_ASSERT_EQUAL(s.global_outstanding, 2);
    check_bounds(&s, all, 2);
    /* The freed process-wide slots woke b. */
    CU_ASSERT_FALSE(b.in_starved);
    CU_ASSERT_EQUAL(ask(&s, &b, NULL), 4);
    check_bounds(&s, all, 2);
}

/* With prefetch, a long-poll message parked for want of a process-wide slot keeps
 * its consumer from asking for newer ones, and when unparked while the consumer's
 * sink is full it waits in the queue behind the older ones. */
static void test_prefetch_parked_keeps_order(void)
{
    jb_dslots s;
    jb_dslot c, other;
    jb_dslots_init(&s, 2);
    s.prefetch = 2;
    jb_dslot_init(&c, 1);
    jb_dslot_init(&other, 1);
    const jb_dslot *all[] = {&c, &other};
    int m1 = 1, m2 = 2, m3 = 3;
    CU_ASSERT_EQUAL(ask(&s, &c, NULL), 2);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m1, 0), JB_DSLOT_DELIVER);
    /* The tags (the dispatcher's delivery counts) come back with their messages. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m2, 22), JB_DSLOT_QUEUED);
    /* c's next request brings nothing: then a long poll. */
    CU_ASSERT_EQUAL(ask(&s, &c, NULL), 0); /* the process-wide cap (2) is taken */
    c.last_empty = true;
    bool lp = false;
    CU_ASSERT_EQUAL(ask(&s, &c, &lp), 1);
    CU_ASSERT_TRUE(lp);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &m3, 33), JB_DSLOT_PARKED);
    CU_ASSERT_TRUE(c.has_parked);
    c.last_empty = false;
    CU_ASSERT_EQUAL(ask(&s, &c, NULL), 0); /* nothing newer while m3 waits */
    check_bounds(&s, all, 2);
    /* m1 settles: m2 goes to the sink, then m3 takes the freed process-wide slot
     * and waits behind it. */
    jb_dslot *owner = NULL;
    uint64_t tag = 0;
    CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s, &c, &owner, &tag), &m2);
    CU_ASSERT_EQUAL(tag, 22);
    CU_ASSERT_PTR_NULL(jb_dslots_release(&s, NULL, &owner, NULL));
    CU_ASSERT_FALSE(c.has_parked);
    CU_ASSERT_EQUAL(c.at_sink, 1);
    check_bounds(&s, all, 2);
    CU_ASSERT_PTR_EQUAL(jb_dslots_release(&s, &c, &owner, &tag), &m3);
    CU_ASSERT_EQUAL(tag, 33); /* parked, then queued: the tag went along */
    CU_ASSERT_PTR_NULL(jb_dslots_release(&s, &c, &owner, NULL));
    CU_ASSERT_EQUAL(c.outstanding, 0);
    CU_ASSERT_EQUAL(s.global_outstanding, 0);
    check_bounds(&s, all, 2);
}

/* A busy consumer's request is a stream (held open on the server) only while nobody
 * waits for the process-wide cap, nothing is parked and its free window leaves
 * some of the cap free: its slots come back only when it fills or expires. An idle
 * consumer long-polls instead. */
static void test_hold_open(void)
{
    static const int windows[] = {10, 25, 10};
    jb_dslots s;
    jb_dslot cs[3];
    jb_dslots_init(&s, 30);
    for (size_t i = 0; i < 3; i++)
        jb_dslot_init(&cs[i], windows[i]);
    jb_dslot *a = &cs[0], *b = &cs[1], *idle = &cs[2];
    const jb_dslot *all[] = {a, b, idle};
    bool lp = false;
    int n = jb_dslots_plan(&s, a, 0, &lp);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, a)); /* 10 of 30: 20 stay free */
    jb_dslots_opened(&s, a, n, lp, 1000);
    /* b's window is 25 but 20 are free: the cap limits it, so its request must end
     * right after what it brings (no_wait). */
    n = jb_dslots_plan(&s, b, 0, &lp);
    CU_ASSERT_EQUAL(n, 20);
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, b));
    jb_dslots_opened(&s, b, n, lp, 1000);
    check_bounds(&s, all, 3);
    /* a's batch filled and was settled; a asks again and a third consumer c finds
     * the cap taken and waits on the starved list: while it does, nobody (here the
     * third slot, busy) holds a request open. */
    int msg = 0;
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, a, &msg, 0), JB_DSLOT_DELIVER);
    jb_dslot *owner = NULL;
    for (int i = 0; i < 10; i++)
        CU_ASSERT_PTR_NULL(jb_dslots_release(&s, a, &owner, NULL));
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), a);
    CU_ASSERT_PTR_NULL(jb_dslots_next(&s));
    jb_dslot c;
    jb_dslot_init(&c, 10);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, a, 0, &lp), 10);
    jb_dslots_opened(&s, a, 10, false, 1000);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 0); /* the cap: c is starved */
    CU_ASSERT_TRUE(c.in_starved);
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, idle));
    /* b's no_wait request ended with a 408 after bringing nothing: b is idle and
     * long-polls for one message, never held as a stream. */
    jb_dslots_ended(&s, b);
    CU_ASSERT_TRUE(b->last_empty);
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, b));
    n = jb_dslots_plan(&s, b, 0, &lp);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_TRUE(lp);
    jb_dslots_opened(&s, b, n, lp, 1000);
    check_bounds(&s, all, 3);
    /* The starved consumer gets its look; once it has asked, nobody is starved and a
     * busy consumer whose window leaves room to spare streams again. */
    jb_dslots_wake_starved(&s);
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &c);
    n = jb_dslots_plan(&s, &c, 0, &lp);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c)); /* 10 of the 20 free */
    c.max_in_flight = 20;
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, &c)); /* all that is free */
}

/* Settles n of c's messages; none has a successor waiting. */
static void settle(jb_dslots *s, jb_dslot *c, int n)
{
    jb_dslot *owner = NULL;
    for (int i = 0; i < n; i++)
        CU_ASSERT_PTR_NULL(jb_dslots_release(s, c, &owner, NULL));
}

/* A stream takes the consumer's whole free window; each settled message keeps its
 * slot reserved for the next arrival (the server sends it on the ack) and asks for
 * nothing; an arrival past the window is refused; when the batch is filled the
 * reserved slots go back and the consumer asks again at once, even for fewer than
 * an eighth of its window. */
static void test_stream(void)
{
    jb_dslots s;
    jb_dslot c, other;
    jb_dslots_init(&s, 100);
    jb_dslot_init(&c, 64);
    jb_dslot_init(&other, 64);
    const jb_dslot *all[] = {&c, &other};
    bool lp = false;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 64);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c));
    int batch = 200;
    jb_dslots_opened_stream(&s, &c, batch, 500, 1000);
    CU_ASSERT_EQUAL(c.requested, 64);
    CU_ASSERT_EQUAL(s.global_requested, 64);
    /* The other consumer gets what the stream leaves, and cannot stream itself. */
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &other, 0, &lp), 36);
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, &other));
    int msg = 0, got = 0;
    for (; got < 64; got++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    check_bounds(&s, all, 2);
    CU_ASSERT_TRUE(c.req_open);
    /* A 65th (a redelivered copy) is over the window. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_REFUSE);
    got++;
    check_bounds(&s, all, 2);
    /* Settling keeps the slots: nothing to ask for, nothing woken. */
    while (jb_dslots_next(&s) != NULL)
        ;
    settle(&s, &c, 10);
    CU_ASSERT_EQUAL(c.requested, 10);
    CU_ASSERT_EQUAL(c.outstanding, 54);
    CU_ASSERT_EQUAL(s.global_requested + s.global_outstanding, 64);
    CU_ASSERT_FALSE(jb_dslots_pump_waiting(&s));
    /* The server keeps sending as acks arrive, until the batch is filled. */
    while (got < batch) {
        CU_ASSERT_TRUE(c.req_open);
        if (c.requested == 0)
            settle(&s, &c, 1);
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
        got++;
        check_bounds(&s, all, 2);
    }
    CU_ASSERT_FALSE(c.req_open);
    CU_ASSERT_EQUAL(c.requested, 0);
    CU_ASSERT_EQUAL(s.global_requested, 0);
    CU_ASSERT_EQUAL(c.outstanding, 64);
    CU_ASSERT_PTR_EQUAL(jb_dslots_next(&s), &c);
    /* One settled: the next stream goes out at once for a backlog. */
    settle(&s, &c, 1);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 1);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c));
    jb_dslots_opened_stream(&s, &c, batch, 500, 1000);
    CU_ASSERT_FALSE(c.restream);
    CU_ASSERT_EQUAL(c.requested, 1);
    check_bounds(&s, all, 2);
    /* A 408 after it brought one: a stream again, once an eighth is free. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    jb_dslots_ended(&s, &c);
    CU_ASSERT_FALSE(c.last_empty);
    CU_ASSERT_EQUAL(s.global_requested, 0);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 0);
    settle(&s, &c, 7);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 0);
    settle(&s, &c, 1);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 8);
    CU_ASSERT_FALSE(lp);
    /* While a message is parked, nobody streams. */
    jb_dslot idle;
    jb_dslot_init(&idle, 1);
    s.global_outstanding += 100 - s.global_outstanding; /* the cap taken */
    idle.last_empty = true;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &idle, 0, &lp), 1);
    jb_dslots_opened(&s, &idle, 1, lp, 1000);
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &idle, &msg, 0), JB_DSLOT_PARKED);
    s.global_outstanding = c.outstanding;
    CU_ASSERT_FALSE(jb_dslots_hold_open(&s, &c));
    CU_ASSERT_PTR_EQUAL(jb_dslots_unpark(&s), &msg);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c));
}

/* Before its expiry a busy stream is relayed: a fresh request with the same
 * slots and a new batch. One that brought nothing since, or while a consumer
 * waits for the cap, is left to end and give its slots back. */
static void test_stream_relay(void)
{
    jb_dslots s;
    jb_dslot c, other;
    jb_dslots_init(&s, 30);
    jb_dslot_init(&c, 10);
    jb_dslot_init(&other, 25);
    const jb_dslot *all[] = {&c, &other};
    bool lp = false;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 10);
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c));
    jb_dslots_opened_stream(&s, &c, 5, 350, 750);
    int msg = 0;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_FALSE(jb_dslots_relay(&s, &c, 349)); /* not yet */
    CU_ASSERT_TRUE(jb_dslots_relay(&s, &c, 350));
    jb_dslots_relayed(&c, 5, 700, 1100);
    CU_ASSERT_TRUE(c.req_open);
    CU_ASSERT_EQUAL(c.requested, 7); /* the same slots */
    CU_ASSERT_EQUAL(c.req_got, 0);
    CU_ASSERT_EQUAL(c.deadline_ns, 1100);
    check_bounds(&s, all, 2);
    /* The new batch counts from the relay: 5 more fill it. */
    settle(&s, &c, 3);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_TRUE(c.req_open);
    /* Nothing more arrives: at the relay time it is left to end. */
    CU_ASSERT_TRUE(jb_dslots_relay(&s, &c, 700));
    jb_dslots_relayed(&c, 5, 1050, 1450);
    CU_ASSERT_FALSE(jb_dslots_relay(&s, &c, 1050));
    CU_ASSERT_EQUAL(c.relay_ns, 0);
    CU_ASSERT_FALSE(jb_dslots_relay(&s, &c, 2000));
    /* A busy one is left to end too while another consumer waits for the cap. */
    CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    c.relay_ns = 1200;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &other, 0, &lp), 20);
    jb_dslots_opened(&s, &other, 20, lp, 1000);
    jb_dslot third;
    jb_dslot_init(&third, 1);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &third, 0, &lp), 0);
    CU_ASSERT_TRUE(third.in_starved);
    CU_ASSERT_FALSE(jb_dslots_relay(&s, &c, 1200));
    check_bounds(&s, all, 2);
    /* It ends (a 408): its slots go back and wake the starved. */
    jb_dslots_ended(&s, &c);
    CU_ASSERT_FALSE(third.in_starved);
    CU_ASSERT_EQUAL(s.global_requested, 20);
}

/* A stream whose whole window is out (a slow sink) brings nothing because it
 * cannot: it is relayed all the same, and a 408 of it does not make the consumer
 * idle (no long poll for one message while all its slots are busy). */
static void test_stream_full_window(void)
{
    jb_dslots s;
    jb_dslot c;
    jb_dslots_init(&s, 100);
    jb_dslot_init(&c, 4);
    const jb_dslot *all[] = {&c};
    bool lp = false;
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 4);
    jb_dslots_opened_stream(&s, &c, 100, 350, 750);
    int msg = 0;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(jb_dslots_arrived(&s, &c, &msg, 0), JB_DSLOT_DELIVER);
    CU_ASSERT_TRUE(jb_dslots_relay(&s, &c, 350));
    jb_dslots_relayed(&c, 100, 700, 1100);
    /* Nothing settles: nothing can arrive, and it is still relayed. */
    CU_ASSERT_TRUE(jb_dslots_relay(&s, &c, 700));
    jb_dslots_relayed(&c, 100, 1050, 1450);
    check_bounds(&s, all, 1);
    /* Had it ended with a 408 meanwhile, the consumer stays busy. */
    jb_dslots_ended(&s, &c);
    CU_ASSERT_FALSE(c.last_empty);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 0); /* no free slot */
    settle(&s, &c, 1);
    CU_ASSERT_EQUAL(jb_dslots_plan(&s, &c, 0, &lp), 1);
    CU_ASSERT_FALSE(lp); /* a busy request, not a long poll */
    CU_ASSERT_TRUE(jb_dslots_hold_open(&s, &c));
}

/* Random steps of two streaming consumers and one that is not, under a small
 * cap: every bound holds after each step, and at the end, with every request
 * closed and every message settled, all slots are back. */
static void test_stream_random(void)
{
    jb_dslots s;
    jb_dslot cs[3];
    jb_dslots_init(&s, 40);
    s.prefetch = 4;
    jb_dslot_init(&cs[0], 8);
    jb_dslot_init(&cs[1], 16);
    jb_dslot_init(&cs[2], 1);
    const jb_dslot *all[] = {&cs[0], &cs[1], &cs[2]};
    int at_sink[3] = {0}, queued[3] = {0};
    unsigned seed = 12345;
    int msg = 0;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        jb_dslot *c = &cs[r % 3];
        int k = (int)(c - cs);
        switch ((r / 3) % 6) {
        case 0: { /* the pump looks at c */
            bool lp = false;
            int n = jb_dslots_plan(&s, c, 0, &lp);
            if (n > 0 && !lp && jb_dslots_hold_open(&s, c))
                jb_dslots_opened_stream(&s, c, 1 + (int)(r % 50), 500, 1000);
            else if (n > 0)
                jb_dslots_opened(&s, c, n, lp, 1000);
            break;
        }
        case 1:
        case 2: { /* a message arrives (the server's pacing is not trusted) */
            jb_dslot_arrival a = jb_dslots_arrived(&s, c, &msg, 0);
            if (a == JB_DSLOT_DELIVER)
                at_sink[k]++;
            else if (a == JB_DSLOT_QUEUED)
                queued[k]++;
            break;
        }
        case 3:
        case 4: /* one of c's messages settles */
            if (at_sink[k] > 0) {
                jb_dslot *owner = NULL;
                at_sink[k]--;
                void *m = jb_dslots_release(&s, c, &owner, NULL);
                while (m != NULL) {
                    int o = (int)(owner - cs);
                    if (owner == c && queued[o] > 0)
                        queued[o]--;
                    at_sink[o]++;
                    m = jb_dslots_release(&s, NULL, &owner, NULL);
                }
            }
            break;
        case 5: /* the open request ends with a status, is taken as lost, or relayed */
            if (r % 3 == 0)
                jb_dslots_ended(&s, c);
            else if (r % 3 == 1)
                jb_dslots_close(&s, c);
            else if (jb_dslots_relay(&s, c, c->relay_ns))
                jb_dslots_relayed(c, 1 + (int)(r % 50), c->relay_ns + 1, 1000);
            break;
        }
        check_bounds(&s, all, 3);
        CU_ASSERT_TRUE(s.global_requested >= 0 && s.global_outstanding >= 0);
        for (int i = 0; i < 3; i++)
            CU_ASSERT_EQUAL(cs[i].at_sink, at_sink[i]);
    }
    for (int i = 0; i < 3; i++) {
        jb_dslots_close(&s, &cs[i]);
        while (at_sink[i] > 0) {
            jb_dslot *owner = NULL;
            at_sink[i]--;
            void *m = jb_dslots_release(&s, &cs[i], &owner, NULL);
            while (m != NULL) {
                at_sink[owner - cs]++;
                m = jb_dslots_release(&s, NULL, &owner, NULL);
            }
        }
    }
    while (jb_dslots_unpark(&s) != NULL)
        ;
    for (int i = 0; i < 3; i++) {
        while (jb_dslots_unqueue(&s, &cs[i]) != NULL)
            ;
        CU_ASSERT_EQUAL(cs[i].requested, 0);
    }
    CU_ASSERT_EQUAL(s.global_requested, 0);
    CU_ASSERT_EQUAL(s.global_outstanding, 0);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"window per consumer, asking again after an eighth", test_window},
        {"process-wide cap: starved consumers, first in first served", test_starved},
        {"long polls park when the cap is taken; unpark at stop", test_park},
        {"a long poll's message counts others' open requests; a 408 unparks it",
         test_park_counts_open_requests},
        {"arrivals of dropped requests never exceed the bounds", test_stale_arrivals},
        {"a stale arrival leaves the slots of others' requests alone",
         test_stale_arrival_respects_others_requests},
        {"no request when stopped or backing off; forget keeps the list",
         test_no_request_and_forget},
        {"prefetch: window beyond maxInFlight, queue in order, sink bounded", test_prefetch_window},
        {"prefetch 0 never queues", test_prefetch_zero_never_queues},
        {"prefetch counts against the process cap; unqueue at stop", test_prefetch_cap_and_unqueue},
        {"prefetch with a parked long poll keeps the order", test_prefetch_parked_keeps_order},
        {"a request is held open only while the cap is not contended", test_hold_open},
        {"a stream keeps its window's slots until it fills; then asks at once", test_stream},
        {"a busy stream is relayed before its expiry; an idle one ends", test_stream_relay},
        {"a stream with its whole window out is busy: relayed, never idle",
         test_stream_full_window},
        {"random steps with streams: every bound holds, every slot comes back", test_stream_random},
    };
    return jb_cunit_main("disp_slots", NULL, NULL, cases, JB_CASES_N(cases));
}

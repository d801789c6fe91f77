/* dispatcher/: the ack batch (settle.c). Acks wait for the loop's next pull request
 * (pull.c flushes them first) or JB_DISP_ACK_DELAY_US after the first one; checked
 * against a real nats-server, whose subscription on the reply subjects sees what
 * was published. */
#include <event2/event.h>
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "dispatcher/disp_settle.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

typedef struct fixture {
    jb_tnats *server;
    natsConnection *nc;
    natsSubscription *sub; /* ack.> : what the batch published */
    struct event_base *base;
    jb_dacks acks;
} fixture;

static bool setup(fixture *f, size_t cap)
{
    memset(f, 0, sizeof(*f));
    f->server = jb_tnats_start();
    if (f->server == NULL)
        return false;
    f->base = event_base_new();
    return f->base != NULL &&
           natsConnection_ConnectTo(&f->nc, jb_tnats_url(f->server)) == NATS_OK &&
           natsConnection_SubscribeSync(&f->sub, f->nc, "ack.>") == NATS_OK &&
           natsConnection_Flush(f->nc) == NATS_OK &&
           jb_dacks_init(&f->acks, f->base, f->nc, cap) == JB_OK;
}

static void teardown(fixture *f)
{
    jb_dacks_free(&f->acks);
    natsSubscription_Destroy(f->sub);
    natsConnection_Destroy(f->nc);
    if (f->base != NULL)
        event_base_free(f->base);
    jb_tnats_stop(f->server);
}

/* A message as the inbox delivers it: its reply subject is where the ack goes. */
static natsMsg *msg_to(const char *reply)
{
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(natsMsg_Create(&m, "events.x", reply, "{}", 2), NATS_OK);
    return m;
}

/* The next ack seen within ms: its subject, or "" when none came. */
static void next_ack(fixture *f, int ms, char *subj, size_t cap)
{
    natsMsg *m = NULL;
    subj[0] = '\0';
    if (natsSubscription_NextMsg(&m, f->sub, ms) != NATS_OK)
        return;
    if (natsMsg_GetDataLength(m) == 4 && memcmp(natsMsg_GetData(m), "+ACK", 4) == 0)
        snprintf(subj, cap, "%s", natsMsg_GetSubject(m));
    natsMsg_Destroy(m);
}

/* The next ack within ms is on subject want ("": none came). */
static void expect_ack(fixture *f, int ms, const char *want)
{
    char got[64];
    next_ack(f, ms, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, want);
}

/* A batch of cap with acks for replies a and b held. */
static void start_with_two(fixture *f, size_t cap, const char *a, const char *b)
{
    CU_ASSERT_TRUE_FATAL(setup(f, cap));
    CU_ASSERT_TRUE(jb_dacks_add(&f->acks, msg_to(a)));
    CU_ASSERT_TRUE(jb_dacks_add(&f->acks, msg_to(b)));
}

static void test_timer_sends_held_acks(void)
{
    fixture f;
    start_with_two(&f, 8, "ack.1", "ack.2");
    /* Held while the loop does not run (no request, the delay not run out). */
    expect_ack(&f, 200, "");
    /* One loop turn once the delay ran out: both go, in order. */
    CU_ASSERT_EQUAL(event_base_loop(f.base, EVLOOP_ONCE), 0);
    expect_ack(&f, 2000, "ack.1");
    expect_ack(&f, 2000, "ack.2");
    CU_ASSERT_EQUAL(f.acks.n, 0);
    teardown(&f);
}

static void test_flush_sends_at_once_and_once(void)
{
    fixture f;
    start_with_two(&f, 8, "ack.a", "ack.b");
    /* What pull.c does before a pull request: everything held goes now. */
    jb_dacks_flush(&f.acks);
    expect_ack(&f, 2000, "ack.a");
    expect_ack(&f, 2000, "ack.b");
    /* The timer was taken back with the flush: nothing is pending on the loop and
     * nothing is acked twice. */
    CU_ASSERT_EQUAL(event_base_loop(f.base, EVLOOP_NONBLOCK), 1);
    expect_ack(&f, 200, "");
    /* A later ack starts a new delay. */
    CU_ASSERT_TRUE(jb_dacks_add(&f.acks, msg_to("ack.c")));
    CU_ASSERT_EQUAL(event_base_loop(f.base, EVLOOP_ONCE), 0);
    expect_ack(&f, 2000, "ack.c");
    teardown(&f);
}

static void test_full_batch_refuses(void)
{
    fixture f;
    start_with_two(&f, 2, "ack.1", "ack.2");
    /* Full: the caller acks this one itself. */
    natsMsg *third = msg_to("ack.3");
    CU_ASSERT_FALSE(jb_dacks_add(&f.acks, third));
    natsMsg_Destroy(third);
    teardown(&f); /* jb_dacks_free sends the two held */
}

static int cleanup(void)
{
    nats_CloseAndWait(5000);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"held acks go out by the delay timer, in order", test_timer_sends_held_acks},
        {"a flush (before a pull request) sends them at once, once",
         test_flush_sends_at_once_and_once},
        {"a full batch refuses the next ack", test_full_batch_refuses},
    };
    return jb_cunit_main("disp_acks", NULL, cleanup, cases, JB_CASES_N(cases));
}

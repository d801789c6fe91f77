/* dispatcher/settle.c: the graveyard (finished messages freed on the loop thread
 * with nats.c 3.4's natsMsg_free, or else destroyed in batches so that nats.c's
 * garbage-collector thread wakes once per batch) and the ack batch that buries into
 * it, with messages received from a real nats-server. The batch tests switch the
 * direct way off (g.direct) to test the batches on this machine too. Leaks and double
 * frees are ASan's to find: every message here is buried exactly once, and
 * nats_CloseAndWait at the end lets nats.c's collector free the last batch. */
#include <event2/event.h>
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/disp_settle.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

static jb_tnats *srv;
static jb_cfg *cfg;
static natsConnection *nc;
static jsCtx *js;

/* n messages of len data bytes each (reply subject reply, may be NULL), received
 * through a plain subscription: the kind of natsMsg the dispatcher destroys. */
static bool receive(size_t n, size_t len, const char *reply, natsMsg **out)
{
    natsSubscription *sub = NULL;
    char *data = calloc(1, len + 1);
    bool ok = data != NULL && natsConnection_SubscribeSync(&sub, nc, "grave.test") == NATS_OK;
    for (size_t i = 0; ok && i < n; i++)
        ok = natsConnection_PublishRequest(nc, "grave.test", reply ? reply : "r", data, (int)len) ==
             NATS_OK;
    for (size_t i = 0; ok && i < n; i++)
        ok = natsSubscription_NextMsg(&out[i], sub, 5000) == NATS_OK;
    natsSubscription_Destroy(sub);
    free(data);
    return ok;
}

static void run_for_ms(struct event_base *base, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* The count bound: cap messages at most, the cap-th burial destroys the batch. */
static void test_count_bound(void)
{
    struct event_base *base = event_base_new();
    jb_dgrave g;
    natsMsg *m[9] = {0};
    CU_ASSERT_FATAL(base != NULL && jb_dgrave_init(&g, base, 4, 1u << 20, 10000) == JB_OK);
    g.direct = false;
    CU_ASSERT_FATAL(receive(9, 10, NULL, m));
    for (size_t i = 0; i < 9; i++) {
        jb_dgrave_bury(&g, m[i]);
        CU_ASSERT_EQUAL(g.n, (i + 1) % 4);
        CU_ASSERT_EQUAL(g.flushes, (i + 1) / 4);
        CU_ASSERT_TRUE(g.n < g.cap);
    }
    jb_dgrave_bury(&g, NULL); /* nothing */
    CU_ASSERT_EQUAL(g.n, 1);
    jb_dgrave_free(&g); /* shutdown: the last one goes too */
    CU_ASSERT_EQUAL(g.flushes, 3);
    CU_ASSERT_PTR_NULL(g.msgs);
    event_base_free(base);
}

/* The byte bound: each message counts its nats.c block and JB_DGRAVE_MAP_BYTES,
 * and the burial that reaches max_bytes destroys the batch. */
static void test_byte_bound(void)
{
    struct event_base *base = event_base_new();
    jb_dgrave g;
    natsMsg *m[8] = {0};
    const size_t len = 20000, max = 64 * 1024;
    CU_ASSERT_FATAL(base != NULL && jb_dgrave_init(&g, base, 256, max, 10000) == JB_OK);
    g.direct = false;
    CU_ASSERT_FATAL(receive(8, len, NULL, m));
    size_t before = 0;
    for (size_t i = 0; i < 8; i++) {
        jb_dgrave_bury(&g, m[i]);
        CU_ASSERT_TRUE(g.bytes < max);
        if (g.n > 0) /* each counts at least its data and the header map's share */
            CU_ASSERT_TRUE(g.bytes >= before + len + JB_DGRAVE_MAP_BYTES);
        before = g.bytes;
    }
    /* 3 x ~20.6 KB stay below 64 KiB, the 4th reaches it: two batches of 4. */
    CU_ASSERT_EQUAL(g.flushes, 2);
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(g.bytes, 0);
    /* One message past the bound on its own goes at once. */
    natsMsg *big = NULL;
    CU_ASSERT_FATAL(receive(1, max, NULL, &big));
    jb_dgrave_bury(&g, big);
    CU_ASSERT_EQUAL(g.flushes, 3);
    CU_ASSERT_EQUAL(g.n, 0);
    jb_dgrave_free(&g);
    event_base_free(base);
}

/* The timer: a message waits at most ms, so an idle loop keeps nothing; nothing
 * buried, no timer. */
static void test_timer(void)
{
    struct event_base *base = event_base_new();
    jb_dgrave g;
    natsMsg *m[2] = {0};
    CU_ASSERT_FATAL(base != NULL && jb_dgrave_init(&g, base, 256, 1u << 20, 100) == JB_OK);
    g.direct = false;
    CU_ASSERT_FATAL(receive(2, 10, NULL, m));
    run_for_ms(base, 20);
    CU_ASSERT_EQUAL(g.flushes, 0);
    jb_dgrave_bury(&g, m[0]);
    run_for_ms(base, 20);
    CU_ASSERT_EQUAL(g.n, 1); /* not yet */
    jb_dgrave_bury(&g, m[1]);
    run_for_ms(base, 300);
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(g.flushes, 1);
    CU_ASSERT_EQUAL(event_base_get_num_events(base, EV_TIMEOUT), 0); /* disarmed */
    jb_dgrave_free(&g);
    event_base_free(base);
}

/* Without a graveyard (not set up, or freed), a burial destroys at once. */
static void test_unset(void)
{
    struct event_base *base = event_base_new();
    jb_dgrave g = {0};
    natsMsg *m[2] = {0};
    CU_ASSERT_FATAL(base != NULL && receive(2, 10, NULL, m));
    jb_dgrave_bury(&g, m[0]);
    jb_dgrave_bury(NULL, m[1]);
    CU_ASSERT_EQUAL(g.n, 0);
    jb_dgrave_free(&g); /* freeing an unset one is fine */
    CU_ASSERT_EQUAL(g.flushes, 0);
    event_base_free(base);
}

/* The ack batch: at the end of the loop turn each message is acked on its reply
 * subject, then buried (destroyed with its batch, not one by one). */
static void test_acks_bury(void)
{
    struct event_base *base = event_base_new();
    jb_dgrave g;
    jb_dacks a;
    natsMsg *m[3] = {0};
    natsSubscription *acks = NULL;
    CU_ASSERT_FATAL(base != NULL && jb_dgrave_init(&g, base, 256, 1u << 20, 10000) == JB_OK);
    g.direct = false;
    CU_ASSERT_FATAL(jb_dacks_init(&a, base, nc, 8, &g) == JB_OK);
    CU_ASSERT_FATAL(natsConnection_SubscribeSync(&acks, nc, "grave.acks") == NATS_OK);
    CU_ASSERT_FATAL(receive(3, 10, "grave.acks", m));
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_TRUE(jb_dacks_add(&a, m[i]));
    run_for_ms(base, 10); /* the loop turn ends: acks out, messages buried */
    CU_ASSERT_EQUAL(a.n, 0);
    CU_ASSERT_EQUAL(g.n, 3);
    CU_ASSERT_EQUAL(g.flushes, 0);
    for (size_t i = 0; i < 3; i++) {
        natsMsg *ack = NULL;
        CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&ack, acks, 5000), NATS_OK);
        CU_ASSERT_EQUAL(natsMsg_GetDataLength(ack), 4);
        CU_ASSERT_EQUAL(memcmp(natsMsg_GetData(ack), "+ACK", 4), 0);
        natsMsg_Destroy(ack);
    }
    /* Shutdown order: the acks first (they bury), then the graveyard. */
    CU_ASSERT_FATAL(receive(1, 10, "grave.acks", m));
    CU_ASSERT_TRUE(jb_dacks_add(&a, m[0]));
    jb_dacks_free(&a);
    CU_ASSERT_EQUAL(g.n, 4);
    jb_dgrave_free(&g);
    CU_ASSERT_EQUAL(g.flushes, 1);
    natsSubscription_Destroy(acks);
    event_base_free(base);
}

/* The direct way (nats.c 3.4.x, this machine's libnats 3.4.1): each burial frees
 * the message at once on this thread; nothing is kept, no timer is armed, nothing
 * reaches nats.c's collector. ASan sees every message freed exactly once. */
static void test_direct(void)
{
    CU_ASSERT_TRUE_FATAL(jb_nats_msg_free_direct());
    struct event_base *base = event_base_new();
    jb_dgrave g;
    jb_dacks a;
    natsMsg *m[4] = {0};
    CU_ASSERT_FATAL(base != NULL && jb_dgrave_init(&g, base, 2, 1u << 20, 100) == JB_OK);
    CU_ASSERT_TRUE(g.direct);
    CU_ASSERT_FATAL(jb_dacks_init(&a, base, nc, 8, &g) == JB_OK);
    CU_ASSERT_FATAL(receive(4, 10, NULL, m));
    for (size_t i = 0; i < 3; i++) {
        jb_dgrave_bury(&g, m[i]);
        CU_ASSERT_EQUAL(g.n, 0);
    }
    CU_ASSERT_EQUAL(event_base_get_num_events(base, EV_TIMEOUT), 0);
    CU_ASSERT_TRUE(jb_dacks_add(&a, m[3]));
    jb_dacks_free(&a); /* acked, then freed */
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(g.flushes, 0);
    jb_dgrave_free(&g);
    event_base_free(base);
}

static int init(void)
{
    srv = jb_tnats_start();
    return srv != NULL && jb_tnats_client(srv, &cfg, &nc, &js) ? 0 : 1;
}

static int cleanup(void)
{
    jb_tnats_client_close(cfg, nc, js);
    jb_tnats_stop(srv);
    /* nats.c's collector frees what the graveyards handed it. */
    nats_CloseAndWait(5000);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"count bound", test_count_bound},
        {"byte bound", test_byte_bound},
        {"timer", test_timer},
        {"unset", test_unset},
        {"acks bury", test_acks_bury},
        {"direct", test_direct},
    };
    return jb_cunit_main("dispatcher_settle", init, cleanup, cases, JB_CASES_N(cases));
}

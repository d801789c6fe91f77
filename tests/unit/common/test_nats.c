/* common/: jb_nats_connect against a real nats-server -js on a free loopback port. */
#include <event2/event.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_cunit.h"
#include "jb_testenv.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* The sanitizer runtime's count of bytes allocated and not yet freed (declared in
 * sanitizer/allocator_interface.h, which not every toolchain installs). */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HAVE_ALLOC_COUNT 1
#endif

static void sleep_ms(int ms)
{
    jb_sleep_ms(ms);
}

static jb_cfg *cfg_for(const char *url)
{
    jb_cfg *c = jb_cfg_defaults();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    free(c->nats_url);
    c->nats_url = strdup(url);
    c->reconnect_wait_ms = 100;
    return c;
}

/* Waits up to 10 s ("does not hang" bound) for the connection state. */
static bool wait_connected(natsConnection *nc, bool want)
{
    for (int i = 0; i < 200; i++) {
        if (jb_nats_connected(nc) == want)
            return true;
        sleep_ms(50);
    }
    return false;
}

static void test_connect_threads(void)
{
    jb_tnats *s = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    jb_cfg *c = cfg_for(jb_tnats_url(s));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(c, NULL, "test", false, &nc, &js, &err), JB_OK);
    CU_ASSERT_TRUE(jb_nats_connected(nc));
    /* The JetStream context answers: the server has JetStream enabled. */
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT_EQUAL(js_GetAccountInfo(&ai, js, NULL, &jerr), NATS_OK);
    jsAccountInfo_Destroy(ai);

    /* Killing the server shows as not connected; a restart on the same port
     * reconnects by itself. */
    CU_ASSERT_TRUE(jb_tnats_crash(s));
    CU_ASSERT_TRUE(wait_connected(nc, false));
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(s));
    CU_ASSERT_TRUE(wait_connected(nc, true));
    jb_nats_close(nc, js);
    jb_tnats_stop(s);
    jb_cfg_destroy(c);
}

/* NATS_URL may list a cluster's seed nodes; a dead first entry is skipped. */
static void test_connect_url_list(void)
{
    jb_tnats *s = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char urls[256];
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:%d, %s", jb_free_port(), jb_tnats_url(s));
    jb_cfg *c = cfg_for(urls);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(c, NULL, "test", false, &nc, &js, &err), JB_OK);
    CU_ASSERT_TRUE(jb_nats_connected(nc));
    jb_nats_close(nc, js);
    jb_tnats_stop(s);
    jb_cfg_destroy(c);
}

static void test_connect_errors(void)
{
    jb_cfg *c = cfg_for("");
    natsConnection *nc = (natsConnection *)1;
    jsCtx *js = (jsCtx *)1;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_cfg_nats_connect(c, NULL, "test", false, &nc, &js, &err), JB_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(err.msg, "NATS_URL is empty");
    CU_ASSERT_PTR_EQUAL(nc, (natsConnection *)1); /* untouched on failure */
    jb_cfg_destroy(c);

    int port = jb_free_port();
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    c = cfg_for(url);
    CU_ASSERT_EQUAL(jb_cfg_nats_connect(c, NULL, "test", false, &nc, &js, &err),
                    JB_ERR_NOT_CONNECTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, url));
    CU_ASSERT_PTR_EQUAL(js, (jsCtx *)1);
    CU_ASSERT_FALSE(jb_nats_connected(NULL));
    jb_cfg_destroy(c);
}

/* With retry_on_failed_connect the connection exists before the server does. */
static void test_connect_retry(void)
{
    /* A server that is down, on a port that is known. */
    jb_tnats *s = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE_FATAL(jb_tnats_kill(s));
    jb_cfg *c = cfg_for(jb_tnats_url(s));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(c, NULL, "test", true, &nc, &js, &err), JB_OK);
    CU_ASSERT_FALSE(jb_nats_connected(nc));
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(s));
    CU_ASSERT_TRUE(wait_connected(nc, true));
    jb_nats_close(nc, js);
    jb_tnats_stop(s);
    jb_cfg_destroy(c);
}

static void *loop_main(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    __atomic_add_fetch((int *)closure, 1, __ATOMIC_SEQ_CST);
    natsMsg_Destroy(msg);
}

/* The libevent adapter: I/O runs on our loop thread; a publish round-trips. */
static void test_connect_libevent(void)
{
    jb_event_threads_init();
    jb_tnats *s = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, loop_main, base), 0);
    jb_cfg *c = cfg_for(jb_tnats_url(s));
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(c, base, "test-ev", false, &nc, &js, &err), JB_OK);
    CU_ASSERT_TRUE(jb_nats_connected(nc));
    int got = 0;
    natsSubscription *sub = NULL;
    CU_ASSERT_EQUAL(natsConnection_Subscribe(&sub, nc, "jb.test", on_msg, &got), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
    CU_ASSERT_EQUAL(natsConnection_PublishString(nc, "jb.test", "hi"), NATS_OK);
    for (int i = 0; i < 200 && __atomic_load_n(&got, __ATOMIC_SEQ_CST) == 0; i++)
        sleep_ms(50);
    CU_ASSERT_EQUAL(__atomic_load_n(&got, __ATOMIC_SEQ_CST), 1);
    natsSubscription_Destroy(sub);
    jb_nats_close(nc, js);
    event_base_loopbreak(base);
    pthread_join(th, NULL);
    event_base_free(base);
    jb_tnats_stop(s);
    jb_cfg_destroy(c);
}

/* A loop-owned connection (jb_nats_connect_loop). One loop turn publishes 32 MiB,
 * far more than a loopback socket takes at once: the write leaves in that turn
 * without epoll, the socket fills, and epoll carries the rest as it drains; every
 * message reaches a subscriber on a connection with nats.c's own threads, in order.
 * A reply to a request made on the loop connection comes back through after_read,
 * on the loop thread. */
enum { BULK_N = 2048, BULK_SIZE = 16384 };

typedef struct bulk {
    natsConnection *nc;
    natsSubscription *inbox; /* synchronous, on the loop connection */
    pthread_t loop_thread;
    bool after_off_loop; /* after_read ran on another thread */
    int replies, published;
    char *body;
} bulk;

static void bulk_after_read(void *ud)
{
    bulk *b = ud;
    if (!pthread_equal(pthread_self(), b->loop_thread))
        b->after_off_loop = true;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, b->inbox, 0) == NATS_OK) {
        __atomic_add_fetch(&b->replies, 1, __ATOMIC_SEQ_CST);
        natsMsg_Destroy(m);
    }
}

static void bulk_publish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bulk *b = arg;
    for (int i = 0; i < BULK_N; i++) {
        snprintf(b->body, 16, "%08d", i);
        if (natsConnection_Publish(b->nc, "jb.bulk", b->body, BULK_SIZE) == NATS_OK)
            b->published++;
    }
    /* Nothing has left yet: it all waits for the end of this turn. */
    CU_ASSERT_TRUE(natsConnection_Buffered(b->nc) >= BULK_N * BULK_SIZE);
    natsConnection_PublishRequest(b->nc, "jb.echo", "_INBOX.jbbulk.1", "ping", 4);
}

typedef struct bulk_sink {
    int got, out_of_order;
} bulk_sink;

static void on_bulk(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub;
    bulk_sink *k = closure;
    char want[16];
    snprintf(want, sizeof(want), "%08d", __atomic_load_n(&k->got, __ATOMIC_SEQ_CST));
    if (natsMsg_GetDataLength(msg) != BULK_SIZE || memcmp(natsMsg_GetData(msg), want, 8) != 0)
        __atomic_add_fetch(&k->out_of_order, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&k->got, 1, __ATOMIC_SEQ_CST);
    natsMsg_Destroy(msg);
}

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub, (void)closure;
    natsConnection_PublishString(nc, natsMsg_GetReply(msg), "pong");
    natsMsg_Destroy(msg);
}

static void test_connect_loop(void)
{
    jb_event_threads_init();
    jb_tnats *s = jb_tnats_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    jb_cfg *c = cfg_for(jb_tnats_url(s));
    /* The receiving side: nats.c's own threads. */
    natsConnection *rx = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_cfg_nats_connect(c, NULL, "test-rx", false, &rx, &js, &err), JB_OK);
    bulk_sink k = {0};
    natsSubscription *sub = NULL, *echo = NULL;
    CU_ASSERT_EQUAL_FATAL(natsConnection_Subscribe(&sub, rx, "jb.bulk", on_bulk, &k), NATS_OK);
    CU_ASSERT_EQUAL(natsSubscription_SetPendingLimits(sub, -1, -1), NATS_OK);
    CU_ASSERT_EQUAL_FATAL(natsConnection_Subscribe(&echo, rx, "jb.echo", on_echo, NULL), NATS_OK);
    CU_ASSERT_EQUAL_FATAL(natsConnection_FlushTimeout(rx, 5000), NATS_OK);

    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    bulk b = {.body = calloc(1, BULK_SIZE)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.body);
    jb_nats_loop loop = {.base = base, .after_read = bulk_after_read, .ud = &b};
    jb_nats_opts no = {0};
    jb_cfg_nats_opts(c, &no);
    CU_ASSERT_EQUAL_FATAL(jb_nats_connect_loop(&no, &loop, "test-loop", false, &b.nc, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(natsConnection_SubscribeSync(&b.inbox, b.nc, "_INBOX.jbbulk.*"), NATS_OK);
    struct event *go = event_new(base, -1, 0, bulk_publish, &b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(go);
    event_active(go, EV_TIMEOUT, 1);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&b.loop_thread, NULL, loop_main, base), 0);

    /* 20 s: "does not hang", far beyond the second this takes. */
    for (int i = 0; i < 400 && (__atomic_load_n(&k.got, __ATOMIC_SEQ_CST) < BULK_N ||
                                __atomic_load_n(&b.replies, __ATOMIC_SEQ_CST) < 1);
         i++)
        sleep_ms(50);
    CU_ASSERT_EQUAL(__atomic_load_n(&k.got, __ATOMIC_SEQ_CST), BULK_N);
    CU_ASSERT_EQUAL(__atomic_load_n(&k.out_of_order, __ATOMIC_SEQ_CST), 0);
    CU_ASSERT_EQUAL(__atomic_load_n(&b.replies, __ATOMIC_SEQ_CST), 1);

    event_base_loopbreak(base);
    pthread_join(b.loop_thread, NULL);
    CU_ASSERT_EQUAL(b.published, BULK_N);
    CU_ASSERT_FALSE(b.after_off_loop);
    CU_ASSERT_EQUAL(natsConnection_Buffered(b.nc), 0);
    natsSubscription_Destroy(b.inbox);
    jb_nats_close(b.nc, NULL);
    event_free(go);
    event_base_free(base);
    natsSubscription_Destroy(sub);
    natsSubscription_Destroy(echo);
    jb_nats_close(rx, js);
    free(b.body);
    jb_tnats_stop(s);
    jb_cfg_destroy(c);
}

/* jb_nats_msg_free: on this machine's libnats (3.4.x, natsMsg_free exported) a
 * message made by natsMsg_Create, headers included, is freed on the calling thread
 * before the call returns; natsMsg_Destroy would hand it to nats.c's collector
 * thread, which frees it later. Under a sanitizer the allocator's count shows the
 * 64 KiB body gone at once. NULL is nothing. */
static void test_msg_free(void)
{
    CU_ASSERT_TRUE_FATAL(jb_nats_msg_free_direct());
    enum { BODY = 65536 };
    char *body = calloc(1, BODY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    for (int round = 0; round < 3; round++) {
        natsMsg *m = NULL;
        CU_ASSERT_EQUAL_FATAL(natsMsg_Create(&m, "jb.free", "jb.reply", body, BODY), NATS_OK);
        CU_ASSERT_EQUAL(natsMsgHeader_Set(m, "ce-id", "1"), NATS_OK);
        CU_ASSERT_EQUAL(natsMsgHeader_Add(m, "ce-id", "2"), NATS_OK);
#ifdef HAVE_ALLOC_COUNT
        size_t before = __sanitizer_get_current_allocated_bytes();
        jb_nats_msg_free(m);
        size_t after = __sanitizer_get_current_allocated_bytes();
        CU_ASSERT_TRUE(before >= after + BODY);
#else
        jb_nats_msg_free(m);
#endif
    }
    jb_nats_msg_free(NULL);
    free(body);
}

static int cleanup(void)
{
    /* Lets nats.c's threads finish so that leak checks see a clean exit. */
    nats_CloseAndWait(5000);
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"connect, JetStream answers, reconnect after server restart", test_connect_threads},
        {"connect errors: empty URL, nothing listening", test_connect_errors},
        {"a comma-separated NATS_URL lists servers", test_connect_url_list},
        {"retry_on_failed_connect connects when the server appears", test_connect_retry},
        {"libevent adapter: publish and receive on the loop", test_connect_libevent},
        {"loop-owned connection: a turn's 32 MiB leaves whole, replies via after_read",
         test_connect_loop},
        {"jb_nats_msg_free frees on the calling thread, at once", test_msg_free},
    };
    return jb_cunit_main("nats", NULL, cleanup, cases, JB_CASES_N(cases));
}

/* Dispatcher under trouble: SIGTERM and kill -9 mid-load, two dispatchers sharing
 * the consumers, NATS restarting mid-load. Zero loss everywhere (DESIGN.md 4). */
#include <signal.h>

#include "test_disp_env.h"

#define TYPE "order.created.v1"
#define N    300

static const char *const short_ack[] = {"JS_CONSUMER_ACK_WAIT=2s", "SHUTDOWN_GRACE=5s", NULL};

static jb_tproc *setup(denv *e, const char *config)
{
    if (!denv_start(e) || !denv_apply(e, "orders", TYPE, config, NULL))
        return NULL;
    jb_tproc *p = denv_dispatcher(e, NULL, short_ack);
    if (p == NULL || !denv_wait_consumer(e, "orders", TYPE, 15000)) {
        denv_dump_log(p);
        jb_tproc_stop(p);
        return NULL;
    }
    return p;
}

static void test_sigterm_mid_load(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxInFlightMessages\":\"20\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 100);
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "term", N), N);
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 40, 20000) >= 40);
    jb_tproc_signal(p, SIGTERM);
    /* In-flight deliveries (100 ms each) finish well inside the 5 s grace. */
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 15000), 0);
    denv_dump_log(p);
    jb_tproc_stop(p);
    size_t before = denv_distinct_ok(&e, "term", N, NULL);
    CU_ASSERT_TRUE(before < N); /* it really stopped mid-load */
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 0);
    jb_tproc *q = denv_dispatcher(&e, NULL, short_ack);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "term", N, 40000), N);
    jb_tproc_stop(q);
    denv_stop(&e);
}

static void test_sigterm_naks_after_grace(void)
{
    denv e;
    static const char *const env[] = {"SHUTDOWN_GRACE=1s", NULL};
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, NULL, NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "orders", TYPE, 15000));
    /* The sink never answers: the delivery is still in flight at SIGTERM. */
    jb_tsink_script(e.sink, NULL, 0, 200, 0, -1);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "stuck", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    int64_t t0 = jb_now_monotonic_ns();
    jb_tproc_signal(p, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 10000), 0);
    /* Grace 1 s: out well before the 30 s request timeout ("does not hang"). */
    CU_ASSERT_TRUE(jb_now_monotonic_ns() - t0 < 8000000000LL);
    jb_tproc_stop(p);
    /* It was NAKed, not left to AckWait (30 s): a new dispatcher gets it at once. */
    jb_tsink_release(e.sink);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 0);
    jb_tproc *q = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    size_t got = 0;
    for (int i = 0; i < 100 && got == 0; i++) {
        size_t n = jb_tsink_count(e.sink);
        for (size_t k = 1; k < n && got == 0; k++) {
            jb_treq r;
            if (jb_tsink_get(e.sink, k, &r)) {
                const char *id = jb_treq_header(&r, "ce-id");
                got = id != NULL && strcmp(id, "stuck") == 0 && r.status == 200;
                jb_treq_free(&r);
            }
        }
        if (got == 0)
            jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(got, 1); /* within 10 s, far below AckWait */
    jb_tproc_stop(q);
    denv_stop(&e);
}

/* With SHUTDOWN_GRACE=0 a SIGTERM during a delivery the sink never answers ends the
 * process without waiting, and the event goes back to JetStream: a new dispatcher
 * delivers it long before AckWait (30 s) would have. */
static void test_grace_zero_naks_at_once(void)
{
    denv e;
    static const char *const env[] = {"SHUTDOWN_GRACE=0", NULL};
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    /* The sink's request timeout is far above every deadline below, so only the
     * grace can end the delivery. */
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, "\"timeout\":\"PT5M\"", NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "orders", TYPE, 15000));
    jb_tsink_script(e.sink, NULL, 0, 200, 0, -1); /* never answers */
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "stuck-0", "{}", NULL));
    CU_ASSERT_EQUAL_FATAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_tproc_signal(p, SIGTERM);
    /* The old fallback waited 25 s: the deadline sits below it, generous otherwise. */
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 20000), 0);
    denv_dump_log(p);
    jb_tproc_stop(p);
    jb_tsink_release(e.sink);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 0);
    jb_tproc *q = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "stuck", 1, 20000), 1);
    jb_tproc_stop(q);
    denv_stop(&e);
}

static void test_process_wide_cap(void)
{
    denv e;
    static const char *const env[] = {"DISPATCHER_MAX_CONCURRENT=4", NULL};
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "a", TYPE, "\"maxInFlightMessages\":\"10\"", NULL));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "b", TYPE, "\"maxInFlightMessages\":\"10\"", NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "a", TYPE, 15000));
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "b", TYPE, 15000));
    jb_sleep_ms(1000);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 100);
    /* Both subscriptions get every event: 2 x 40 deliveries. */
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "cap", 40), 40);
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 80, 40000), 80);
    CU_ASSERT_TRUE(jb_tsink_max_concurrent(e.sink) <= 4);
    CU_ASSERT_TRUE(jb_tsink_max_concurrent(e.sink) >= 2);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_kill9_mid_load(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxInFlightMessages\":\"20\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 100);
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "kill", N), N);
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 40, 20000) >= 40);
    jb_tproc_signal(p, SIGKILL);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 5000), 128 + SIGKILL);
    jb_tproc_stop(p);
    CU_ASSERT_TRUE(denv_distinct_ok(&e, "kill", N, NULL) < N);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 0);
    /* Unacked messages come back after AckWait (2 s) to the new dispatcher. */
    jb_tproc *q = denv_dispatcher(&e, NULL, short_ack);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "kill", N, 40000), N);
    jb_tproc_stop(q);
    denv_stop(&e);
}

static double delivered_metric(int admin)
{
    char *body = NULL;
    size_t len = 0;
    double total = 0;
    if (jb_http(admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL) != 200 || !body)
        return -1;
    const char *name = "eventing_ec_nats_delivery_per_subscription_total{";
    for (const char *p = strstr(body, name); p != NULL; p = strstr(p + 1, name)) {
        const char *end = strchr(p, '}');
        if (end != NULL)
            total += strtod(end + 1, NULL);
    }
    free(body);
    return total;
}

static void test_two_dispatchers_no_double(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, "\"maxInFlightMessages\":\"20\"", NULL));
    int a1 = 0, a2 = 0;
    jb_tproc *p1 = denv_dispatcher(&e, &a1, NULL);
    jb_tproc *p2 = denv_dispatcher(&e, &a2, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p2);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "orders", TYPE, 15000));
    jb_sleep_ms(1500); /* both have bound to the consumer */
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 5);
    const size_t n = 500;
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "two", n), n);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "two", n, 40000), n);
    jb_sleep_ms(1000);
    size_t dups = 0;
    CU_ASSERT_EQUAL(denv_distinct_ok(&e, "two", n, &dups), n);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), n);
    /* The work was shared. */
    double d1 = delivered_metric(a1), d2 = delivered_metric(a2);
    CU_ASSERT_TRUE(d1 > 0 && d2 > 0);
    CU_ASSERT_EQUAL((size_t)(d1 + d2), n);
    jb_tproc_stop(p1);
    jb_tproc_stop(p2);
    denv_stop(&e);
}

static void test_nats_restart_mid_load(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxInFlightMessages\":\"20\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 50);
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "nrs", N), N);
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 40, 20000) >= 40);
    CU_ASSERT_TRUE_FATAL(jb_tnats_kill(e.nats));
    jb_sleep_ms(1000);
    CU_ASSERT_TRUE_FATAL(jb_tnats_restart(e.nats));
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 0);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "nrs", N, 45000), N);
    /* Still alive and serving. */
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 10), -1);
    denv_dump_log(p);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_consumer_deleted_recreated(void)
{
    denv e;
    jb_tproc *p = setup(&e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "before", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    /* Someone (or a server that lost its store) removes the consumer. */
    char consumer[33];
    denv_consumer("orders", TYPE, consumer);
    CU_ASSERT_EQUAL_FATAL(js_DeleteConsumer(e.js, "sap", consumer, NULL, NULL), NATS_OK);
    /* The dispatcher notices, the reconciler re-creates it (deliver policy new:
     * only events stored after that are delivered), delivery resumes. */
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "orders", TYPE, 40000));
    jb_sleep_ms(1500);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "after", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 2, 20000), 2);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 1, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "after");
    jb_treq_free(&r);
    denv_dump_log(p);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_poison_message_dead_lettered(void)
{
    denv e;
    jb_tproc *p = setup(&e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* Not a CloudEvent: no ce- headers at all. */
    CU_ASSERT_EQUAL(js_Publish(NULL, e.js, "kyma.myapp." TYPE, "garbage", 7, NULL, NULL), NATS_OK);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "after-poison", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    cJSON *d0 = cJSON_GetArrayItem(dlq, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "0");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "subject")->valuestring, "kyma.myapp." TYPE);
    cJSON_Delete(dlq);
    /* Only the valid event reached the sink, and once. */
    jb_sleep_ms(1000);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 1);
    jb_tproc_stop(p);
    denv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"sigterm_mid_load", test_sigterm_mid_load},
        {"sigterm_naks_after_grace", test_sigterm_naks_after_grace},
        {"grace_zero_naks_at_once", test_grace_zero_naks_at_once},
        {"process_wide_cap", test_process_wide_cap},
        {"kill9_mid_load", test_kill9_mid_load},
        {"two_dispatchers_no_double", test_two_dispatchers_no_double},
        {"nats_restart_mid_load", test_nats_restart_mid_load},
        {"consumer_deleted_recreated", test_consumer_deleted_recreated},
        {"poison_message_dead_lettered", test_poison_message_dead_lettered},
    };
    return denv_main("disp_resilience", cases, JB_CASES_N(cases));
}

/* Dispatcher delivery: what the sink sees, verdicts, retry, backoff, Retry-After,
 * timeout, dead letters, in-flight limit and ordering (DESIGN.md 4). */
#include <unistd.h>

#include "test_disp_env.h"

#define TYPE "order.created.v1"

/* Starts NATS, the sink, stores the subscription, starts the dispatcher and waits
 * until its consumer exists. */
static jb_tproc *setup_env(denv *e, const char *config, const char *const *env)
{
    if (!denv_start(e) || !denv_apply(e, "orders", TYPE, config, NULL))
        return NULL;
    jb_tproc *p = denv_dispatcher(e, NULL, env);
    if (p == NULL || !denv_wait_consumer(e, "orders", TYPE, 15000)) {
        denv_dump_log(p);
        jb_tproc_stop(p);
        return NULL;
    }
    return p;
}

static jb_tproc *setup(denv *e, const char *config)
{
    return setup_env(e, config, NULL);
}

static void test_2xx_delivery_as_sent(void)
{
    denv e;
    jb_tproc *p = setup(&e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-1", "{\"order\":42, \"x\": [1,2]}", tp));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &r));
    CU_ASSERT_STRING_EQUAL(r.method, "POST");
    /* The producer's type, not the subject form. */
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-type"), TYPE);
    CU_ASSERT_PTR_NULL(jb_treq_header(&r, "ce-originaltype"));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-1");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-source"), "myapp");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-specversion"), "1.0");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "content-type"), "application/json");
    /* Tracing extension back as the header it came from. */
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "traceparent"), tp);
    CU_ASSERT_PTR_NULL(jb_treq_header(&r, "ce-traceparent"));
    /* Data bytes untouched (spaces kept). */
    const char *want = "{\"order\":42, \"x\": [1,2]}";
    CU_ASSERT_EQUAL(r.body_len, strlen(want));
    CU_ASSERT_TRUE(r.body_len == strlen(want) && memcmp(r.body, want, r.body_len) == 0);
    jb_treq_free(&r);
    /* Acked: nothing comes again. */
    jb_sleep_ms(1500);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 1);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_structured_mode(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"contentMode\":\"STRUCTURED\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-s", "{\"a\":1}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "content-type"), "application/cloudevents+json");
    cJSON *j = cJSON_ParseWithLength((const char *)r.body, r.body_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "type")->valuestring, TYPE);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "id")->valuestring, "ev-s");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "a")->valueint, 1);
    cJSON_Delete(j);
    jb_treq_free(&r);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_5xx_then_2xx(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"backoffDelay\":\"PT0.2S\",\"backoffMax\":\"PT0.5S\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const int codes[] = {500, 503};
    jb_tsink_script(e.sink, codes, 2, 200, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-r", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 3, 20000), 3);
    jb_sleep_ms(1500);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 3); /* acked after the 200 */
    int want[] = {500, 503, 200};
    for (size_t i = 0; i < 3; i++) {
        jb_treq r;
        CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, i, &r));
        CU_ASSERT_EQUAL(r.status, want[i]);
        CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-r");
        jb_treq_free(&r);
    }
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_400_dead_letter(void)
{
    denv e;
    jb_tproc *p = setup(&e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const int codes[] = {400};
    jb_tsink_script(e.sink, codes, 1, 200, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-bad", "{\"n\":1}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    cJSON *d0 = cJSON_GetArrayItem(dlq, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "id")->valuestring, "ev-bad");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "400");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorattempts")->valuestring, "1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errordest")->valuestring, jb_tsink_url(e.sink));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "subscription")->valuestring, "default/orders");
    cJSON_Delete(dlq);
    /* No retry of a 400: the sink saw it once. */
    jb_sleep_ms(1500);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 1);

    /* Replay sends it to the sink again (now answering 200) and removes it. */
    const char *env[] = {e.url_env, NULL};
    const char *argv[] = {"dlq", "replay", "--subscription", "default/orders", NULL};
    CU_ASSERT_EQUAL(jb_trun(argv, env, NULL, 20000), 0);
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 2, 5000), 2);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 1, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-bad");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-type"), TYPE);
    CU_ASSERT_PTR_NULL(jb_treq_header(&r, "ce-errorcode"));
    CU_ASSERT_EQUAL(r.status, 200);
    jb_treq_free(&r);
    dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_dlq_table_and_republish(void)
{
    denv e;
    jb_tproc *p = setup(&e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const int codes[] = {403};
    jb_tsink_script(e.sink, codes, 1, 200, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-rep", "{\"r\":1}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    const char *env[] = {e.url_env, NULL};
    const char *list[] = {"dlq", "list", "--subscription", "default/orders", NULL};
    char *out = NULL;
    for (int i = 0; i < 50; i++) {
        free(out);
        out = NULL;
        CU_ASSERT_EQUAL(jb_trun(list, env, &out, 20000), 0);
        if (out != NULL && strstr(out, "ev-rep") != NULL)
            break;
        jb_sleep_ms(200);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SEQ"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "default/orders"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ev-rep"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "403"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, TYPE));
    free(out);
    /* Another subscription's filter does not list it. */
    const char *other[] = {"dlq", "list", "--subscription", "default/other", NULL};
    out = NULL;
    CU_ASSERT_EQUAL(jb_trun(other, env, &out, 20000), 0);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "ev-rep") == NULL);
    free(out);
    /* Re-published on its original subject: the dispatcher delivers it again. */
    const char *rep[] = {"dlq", "replay", "--republish", NULL};
    CU_ASSERT_EQUAL(jb_trun(rep, env, NULL, 20000), 0);
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 2, 15000), 2);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 1, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-rep");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-type"), TYPE);
    CU_ASSERT_PTR_NULL(jb_treq_header(&r, "ce-errorcode"));
    CU_ASSERT_TRUE(r.body_len == 7 && memcmp(r.body, "{\"r\":1}", 7) == 0);
    jb_treq_free(&r);
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_max_deliver_dead_letter(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxDeliver\":\"3\",\"backoffDelay\":\"PT0.1S\","
                            "\"backoffMax\":\"PT0.2S\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 500, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-500", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 3, 15000), 3);
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    cJSON *d0 = cJSON_GetArrayItem(dlq, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorcode")->valuestring, "500");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(d0, "errorattempts")->valuestring, "3");
    cJSON_Delete(dlq);
    jb_sleep_ms(1000);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 3); /* exactly maxDeliver attempts */
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_429_retry_after(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"backoffDelay\":\"PT0.1S\",\"backoffMax\":\"PT0.2S\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const int codes[] = {429};
    jb_tsink_script(e.sink, codes, 1, 200, 2, 0); /* Retry-After: 2 */
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-429", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 2, 20000), 2);
    jb_treq a, b;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &a));
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 1, &b));
    CU_ASSERT_EQUAL(a.status, 429);
    CU_ASSERT_EQUAL(b.status, 200);
    /* The backoff alone is at most 0.2 s; Retry-After asked for 2 s. */
    CU_ASSERT_TRUE(b.received_ns - a.received_ns >= 2000000000LL);
    jb_treq_free(&a);
    jb_treq_free(&b);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_timeout_retried(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"timeout\":\"PT0.5S\",\"backoffDelay\":\"PT0.1S\","
                            "\"backoffMax\":\"PT0.2S\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* The sink answers after 3 s: every attempt times out on our side. */
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 3000);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-slow", "{}", NULL));
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 2, 15000) >= 2);
    jb_treq a, b;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &a));
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 1, &b));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&b, "ce-id"), "ev-slow");
    /* The second attempt started before the first answer would have come. */
    CU_ASSERT_TRUE(b.received_ns - a.received_ns < 3000000000LL);
    jb_treq_free(&a);
    jb_treq_free(&b);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_sink_down_then_moved(void)
{
    denv e;
    char down[64];
    snprintf(down, sizeof(down), "http://127.0.0.1:%d/", jb_free_port());
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    /* Nothing listens there: every attempt is a transport error, retried. */
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE,
                                    "\"backoffDelay\":\"PT0.2S\",\"backoffMax\":\"PT0.5S\"", down));
    int admin = 0;
    jb_tproc *p = denv_dispatcher(&e, &admin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-wait", "{}", NULL));
    jb_sleep_ms(2500);
    char *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL), 200);
    CU_ASSERT_TRUE(body != NULL && strstr(body, "jetbridge_dispatcher_retries_total{") != NULL);
    CU_ASSERT_TRUE(body != NULL && strstr(body, "response_code=\"0\"") != NULL);
    free(body);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 0);
    /* The subscription now points at a live sink: the waiting event arrives. */
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE,
                                    "\"backoffDelay\":\"PT0.2S\",\"backoffMax\":\"PT0.5S\"", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 20000), 1);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-wait");
    jb_treq_free(&r);
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_max_in_flight(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxInFlightMessages\":\"3\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 150);
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "mif", 30), 30);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "mif", 30, 30000), 30);
    CU_ASSERT_EQUAL(jb_tsink_max_concurrent(e.sink), 3);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* The sink received prefix-0 .. prefix-(n-1) in that order. */
static void check_in_order(denv *e, const char *prefix, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jb_treq r;
        CU_ASSERT_TRUE_FATAL(jb_tsink_get(e->sink, i, &r));
        char want[64];
        snprintf(want, sizeof(want), "%s-%zu", prefix, i);
        CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), want);
        jb_treq_free(&r);
    }
}

static void test_ordering_max_in_flight_1(void)
{
    denv e;
    jb_tproc *p = setup(&e, "\"maxInFlightMessages\":\"1\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const size_t n = 50;
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "ord", n), n);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "ord", n, 30000), n);
    CU_ASSERT_EQUAL(jb_tsink_max_concurrent(e.sink), 1);
    check_in_order(&e, "ord", n);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* DISPATCH_PREFETCH: the dispatcher asks for up to maxInFlightMessages + 20 per
 * consumer, but the sink still never has more than maxInFlightMessages requests
 * at once, and every event arrives. */
static void test_prefetch_sink_bounded(void)
{
    denv e;
    static const char *const env[] = {"DISPATCH_PREFETCH=20", NULL};
    jb_tproc *p = setup_env(&e, "\"maxInFlightMessages\":\"3\"", env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* JetStream hands out maxInFlightMessages + DISPATCH_PREFETCH unacked. */
    char consumer[33];
    denv_consumer("orders", TYPE, consumer);
    jsConsumerInfo *ci = NULL;
    CU_ASSERT_EQUAL_FATAL(js_GetConsumerInfo(&ci, e.js, "sap", consumer, NULL, NULL), NATS_OK);
    CU_ASSERT_EQUAL(ci->Config->MaxAckPending, 23);
    jsConsumerInfo_Destroy(ci);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 150);
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "pf", 40), 40);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "pf", 40, 30000), 40);
    CU_ASSERT_EQUAL(jb_tsink_max_concurrent(e.sink), 3);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* With prefetch, maxInFlightMessages: 1 still delivers in stream order: prefetched
 * events wait in order for the single place at the sink. */
static void test_prefetch_ordering_max_in_flight_1(void)
{
    denv e;
    static const char *const env[] = {"DISPATCH_PREFETCH=10", NULL};
    jb_tproc *p = setup_env(&e, "\"maxInFlightMessages\":\"1\"", env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 5);
    const size_t n = 50;
    CU_ASSERT_EQUAL(denv_publish_n(&e, TYPE, "pord", n), n);
    CU_ASSERT_EQUAL(denv_wait_distinct(&e, "pord", n, 30000), n);
    CU_ASSERT_EQUAL(jb_tsink_max_concurrent(e.sink), 1);
    check_in_order(&e, "pord", n);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_dead_letter_sink(void)
{
    denv e;
    jb_tsink *dls = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dls);
    char config[256];
    snprintf(config, sizeof(config), "\"deadLetterSink\":\"%s\"", jb_tsink_url(dls));
    jb_tproc *p = setup(&e, config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const int codes[] = {422};
    jb_tsink_script(e.sink, codes, 1, 200, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-dls", "{\"k\":1}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(dls, 1, 15000), 1);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(dls, 0, &r));
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-id"), "ev-dls");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-type"), TYPE);
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-errorcode"), "422");
    CU_ASSERT_STRING_EQUAL(jb_treq_header(&r, "ce-errorattempts"), "1");
    CU_ASSERT_PTR_NOT_NULL(jb_treq_header(&r, "ce-errordest"));
    CU_ASSERT_TRUE(r.body_len == 7 && memcmp(r.body, "{\"k\":1}", 7) == 0);
    jb_treq_free(&r);
    /* The dead-letter stream has it too. */
    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 1);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    jb_tsink_stop(dls);
    denv_stop(&e);
}

static void test_in_progress_beyond_ack_wait(void)
{
    denv e;
    static const char *const env[] = {"JS_CONSUMER_ACK_WAIT=2s", NULL};
    jb_tproc *p = setup_env(&e, "\"timeout\":\"PT10S\"", env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* The sink takes 5 s, over twice AckWait: without InProgress JetStream would
     * redeliver it (to us or another dispatcher) while the first request runs. */
    jb_tsink_script(e.sink, NULL, 0, 200, 0, 5000);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-long", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_sleep_ms(7000);
    CU_ASSERT_EQUAL(jb_tsink_count(e.sink), 1);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static void test_subscriptions_dir(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char dir[] = "/tmp/jb-disp-subs.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128], yaml[1024];
    snprintf(path, sizeof(path), "%s/orders.yaml", dir);
    snprintf(yaml, sizeof(yaml),
             "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
             "metadata: {name: fromdir, namespace: default}\n"
             "spec:\n  sink: %s\n  source: myapp\n  types: [%s]\n",
             jb_tsink_url(e.sink), TYPE);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(yaml, f);
    fclose(f);
    char flag[160];
    snprintf(flag, sizeof(flag), "SUBSCRIPTIONS=%s", dir);
    const char *env[] = {flag, NULL};
    jb_tproc *p = denv_dispatcher(&e, NULL, env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(denv_wait_consumer(&e, "fromdir", TYPE, 15000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-dir", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_tproc_stop(p);
    unlink(path);
    rmdir(dir);
    denv_stop(&e);
}

static void test_metrics_and_health(void)
{
    denv e;
    if (!denv_start(&e) || !denv_apply(&e, "orders", TYPE, NULL, NULL)) {
        CU_FAIL_FATAL("setup");
    }
    int admin = 0;
    jb_tproc *p = denv_dispatcher(&e, &admin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(denv_wait_consumer(&e, "orders", TYPE, 15000));
    int code = 0;
    for (int i = 0; i < 50 && code != 200; i++) {
        code = jb_http(admin, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL);
        if (code != 200)
            jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(code, 200);
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-m", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_sleep_ms(300);
    char *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL), 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "eventing_ec_nats_delivery_per_subscription_total{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "response_code=\"200\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "subscription_name=\"orders\""));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(body, "eventing_ec_nats_subscriber_dispatch_duration_seconds_bucket{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "le=\"1.024\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "jetbridge_dispatcher_in_flight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "jetbridge_consumer_pending{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "jetbridge_consumer_ack_pending{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "eventing_ec_subscription_status{"));
    free(body);
    /* NATS gone: not ready, still alive. */
    CU_ASSERT_TRUE(jb_tnats_kill(e.nats));
    code = 200;
    for (int i = 0; i < 100 && code == 200; i++) {
        code = jb_http(admin, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL);
        if (code == 200)
            jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(code, 503);
    CU_ASSERT_EQUAL(jb_http(admin, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_TRUE(jb_tnats_restart(e.nats));
    for (int i = 0; i < 150 && code != 200; i++) {
        code = jb_http(admin, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL);
        if (code != 200)
            jb_sleep_ms(100);
    }
    CU_ASSERT_EQUAL(code, 200);
    jb_tproc_stop(p);
    denv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"2xx_delivery_as_sent", test_2xx_delivery_as_sent},
        {"structured_mode", test_structured_mode},
        {"5xx_then_2xx", test_5xx_then_2xx},
        {"400_dead_letter_and_replay", test_400_dead_letter},
        {"dlq_table_and_republish", test_dlq_table_and_republish},
        {"max_deliver_dead_letter", test_max_deliver_dead_letter},
        {"429_retry_after", test_429_retry_after},
        {"timeout_retried", test_timeout_retried},
        {"sink_down_then_moved", test_sink_down_then_moved},
        {"max_in_flight", test_max_in_flight},
        {"ordering_max_in_flight_1", test_ordering_max_in_flight_1},
        {"prefetch_sink_bounded", test_prefetch_sink_bounded},
        {"prefetch_ordering_max_in_flight_1", test_prefetch_ordering_max_in_flight_1},
        {"dead_letter_sink", test_dead_letter_sink},
        {"in_progress_beyond_ack_wait", test_in_progress_beyond_ack_wait},
        {"subscriptions_dir", test_subscriptions_dir},
        {"metrics_and_health", test_metrics_and_health},
    };
    return denv_main("disp_delivery", cases, JB_CASES_N(cases));
}

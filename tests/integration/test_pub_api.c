/*
 * The publisher's HTTP API (DESIGN.md section 2) against a real nats-server: every
 * endpoint, status code and body, and what is stored in the stream (subject,
 * headers, payload bytes, deduplication).
 */
#include <pthread.h>

#include "config/jb_cfg.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"
#include "test_pub_util.h"

static pubenv env;

static int suite_init(void)
{
    /* limits retention: an interest stream without consumers stores nothing, and
     * these tests read back what was stored. */
    static const char *const extra[] = {"JS_STREAM_RETENTION_POLICY=limits",
                                        "MAX_REQUEST_SIZE=4096", "PUBLISHER_THREADS=2", NULL};
    return pe_start(&env, extra) ? 0 : 1;
}

/* The shared publisher must exit 0 on SIGTERM after every case: under the sanitizers
 * that also says no error or leak was found in it. A failed cleanup fails the suite. */
static int suite_cleanup(void)
{
    int rc = pe_terminate(&env);
    jb_tproc_stop(env.proc);
    env.proc = NULL;
    if (env.js != NULL)
        jsCtx_Destroy(env.js);
    if (env.nc != NULL)
        natsConnection_Destroy(env.nc);
    jb_tnats_stop(env.nats);
    return rc == 0 ? 0 : 1;
}

typedef struct client_arg {
    int idx, ok;
} client_arg;

static void *client_main(void *arg)
{
    client_arg *c = arg;
    for (int i = 0; i < 50; i++) {
        char hdrs[256], id[32];
        snprintf(id, sizeof(id), "conc-%d-%d", c->idx, i);
        pe_binary_headers(hdrs, sizeof(hdrs), id, "concsrc", "conc.event.v1");
        c->ok += pe_post(&env, "/publish", hdrs, "{\"c\":1}", 7, NULL, NULL) == 204;
    }
    return NULL;
}

static void test_concurrent_clients(void)
{
    int64_t before = pe_stream_msgs(&env);
    pthread_t th[8];
    client_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (client_arg){i, 0};
        pthread_create(&th[i], NULL, client_main, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    CU_ASSERT_EQUAL(ok, 400);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before + 400);
}

/* Its own publisher, so the shared one keeps serving whatever runs after. */
static void test_clean_exit(void)
{
    pubenv own;
    CU_ASSERT_TRUE_FATAL(pe_start(&own, NULL));
    char hdrs[256];
    pe_binary_headers(hdrs, sizeof(hdrs), "exit-1", "exitsrc", "exit.event.v1");
    CU_ASSERT_EQUAL(pe_post(&own, "/publish", hdrs, "{}", 2, NULL, NULL), 204);
    pe_stop(&own); /* asserts the exit status 0 */
}

static void test_health_and_ready(void)
{
    CU_ASSERT_EQUAL(jb_http(env.port, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(jb_http(env.port, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(jb_http(env.admin, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(jb_http(env.admin, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, NULL), 200);
    /* Metrics are not served on the ingress port. */
    CU_ASSERT_EQUAL(jb_http(env.port, "GET", "/metrics", NULL, NULL, 0, NULL, NULL, NULL), 404);
}

static void test_not_found_and_method(void)
{
    static const struct {
        const char *method, *path;
        int want;
        const char *allow;
    } cases[] = {
        {"GET", "/nope", 404, NULL},
        {"POST", "/", 404, NULL},
        {"GET", "/app/v3/events", 404, NULL},
        {"POST", "/app/v2/events/x", 404, NULL},
        {"GET", "/app/v2/events", 405, "Allow: POST"},
        {"GET", "/app/events", 405, "Allow: POST"},
        {"POST", "/app/v1/events/x", 404, NULL},
        {"GET", "/publish", 405, "Allow: POST"},
        {"PUT", "/publish", 405, "Allow: POST"},
        {"GET", "/app/v1/events", 405, "Allow: POST"},
        {"POST", "/app/v1/events/subscribed", 405, "Allow: GET, HEAD"},
        {"POST", "/healthz", 405, "Allow: GET, HEAD"},
        {"DELETE", "/readyz", 405, "Allow: GET, HEAD"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *hdrs = NULL;
        int code =
            jb_http(env.port, cases[i].method, cases[i].path, NULL, NULL, 0, NULL, NULL, &hdrs);
        CU_ASSERT_EQUAL(code, cases[i].want);
        if (code != cases[i].want)
            fprintf(stderr, "case %zu: %s %s -> %d\n", i, cases[i].method, cases[i].path, code);
        if (cases[i].allow != NULL)
            CU_ASSERT_PTR_NOT_NULL(hdrs ? strstr(hdrs, cases[i].allow) : NULL);
        free(hdrs);
    }
}

static void test_binary_stored(void)
{
    const char *data = "{\"order\":42,\"note\":\"binary\"}";
    const char *hdrs = "ce-specversion: 1.0\r\nce-id: bin-1\r\nce-source: myapp\r\n"
                       "ce-type: order.created.v1\r\nContent-Type: application/json\r\n"
                       "ce-myext: caf%C3%A9\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-"
                       "b7ad6b7169203331-01\r\nX-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\n"
                       "X-B3-Sampled: 1\r\n";
    char *resp = NULL, *rh = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, data, strlen(data), &resp, &rh), 204);
    /* One Date header in RFC 1123 form (the HTTP thread formats it once a second
     * instead of evhttp once per answer). */
    const char *date = rh != NULL ? strstr(rh, "Date: ") : NULL;
    CU_ASSERT_PTR_NOT_NULL(date);
    if (date != NULL) {
        CU_ASSERT_PTR_NULL(strstr(date + 1, "Date: "));
        CU_ASSERT_PTR_NOT_NULL(strstr(date, " GMT\r\n"));
        CU_ASSERT_EQUAL(strcspn(date + 6, "\r"), strlen("Fri, 04 Dec 2026 20:52:00 GMT"));
    }
    free(rh);
    free(resp);
    natsMsg *m = pe_last_msg(&env, "kyma.myapp.order.created.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(natsMsg_GetDataLength(m), (int)strlen(data));
    CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(m), data, strlen(data));
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-specversion"), "1.0");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-id"), "bin-1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-source"), "myapp");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-type"), "kyma.myapp.order.created.v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-originaltype"), "order.created.v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-datacontenttype"), "application/json");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-myext"), "caf%C3%A9");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-traceparent"),
                           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-b3traceid"), "80f198ee56343ba864fe8b2a57d3eff7");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-b3sampled"), "1");
    char want[33];
    pe_expected_msg_id("myapp", "bin-1", NULL, want);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "Nats-Msg-Id"), want);
    natsMsg_Destroy(m);
}

/* More headers than the handler keeps on its stack (24) and more attribute text
 * than an event keeps inline: every attribute is still stored, with tracing. */
static void test_binary_many_headers(void)
{
    char hdrs[8192];
    size_t o = (size_t)snprintf(hdrs, sizeof(hdrs),
                                "ce-specversion: 1.0\r\nce-id: many-1\r\nce-source: manysrc\r\n"
                                "ce-type: many.created.v1\r\nContent-Type: text/plain\r\n");
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(hdrs + o, sizeof(hdrs) - o,
                              "ce-x%d: value-%02d-0123456789012345678901234567890123456789\r\n"
                              "X-Filler-%d: f\r\n",
                              i, i, i);
    snprintf(hdrs + o, sizeof(hdrs) - o, "X-B3-SpanId: span-many\r\n");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "many", 4, NULL, NULL), 204);
    natsMsg *m = pe_last_msg(&env, "kyma.manysrc.many.created.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(natsMsg_GetDataLength(m), 4);
    /* Read back as the dispatcher does (header names without case: the encoder may
     * flip a letter so that nats.c keeps two keys apart). */
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "id", NULL), "many-1");
    const char *span = jb_ce_get(ce, "b3spanid", NULL);
    CU_ASSERT_STRING_EQUAL(span ? span : "", "span-many");
    for (int i = 0; i < 30; i++) {
        char name[16], want[80];
        snprintf(name, sizeof(name), "x%d", i);
        snprintf(want, sizeof(want), "value-%02d-0123456789012345678901234567890123456789", i);
        const char *v = jb_ce_get(ce, name, NULL);
        CU_ASSERT_STRING_EQUAL(v ? v : "", want);
    }
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
}

static void test_binary_payload_bytes(void)
{
    /* Arbitrary bytes, NULs included, pass untouched. */
    char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    char hdrs[512];
    snprintf(hdrs, sizeof(hdrs),
             "ce-specversion: 1.0\r\nce-id: raw-1\r\nce-source: rawsrc\r\n"
             "ce-type: blob.v1\r\nContent-Type: application/octet-stream\r\n");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, data, sizeof(data), NULL, NULL), 204);
    natsMsg *m = pe_last_msg(&env, "kyma.rawsrc.blob.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(natsMsg_GetDataLength(m), (int)sizeof(data));
    CU_ASSERT(memcmp(natsMsg_GetData(m), data, sizeof(data)) == 0);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-datacontenttype"), "application/octet-stream");
    natsMsg_Destroy(m);
}

/* nats.c 3.4's header map treats some keys as one (ce-id and ce-id31): both
 * attributes must still be stored and read back with their own values. */
static void test_header_key_collision(void)
{
    const char *hdrs = "ce-specversion: 1.0\r\nce-id: collide-1\r\nce-source: myapp\r\n"
                       "ce-type: collide.created.v1\r\nce-id31: other\r\n";
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "x", 1, NULL, NULL), 204);
    natsMsg *m = pe_last_msg(&env, "kyma.myapp.collide.created.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "id", NULL), "collide-1");
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "id31", NULL), "other");
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
}

static void test_structured_stored(void)
{
    const char *body = "{\"specversion\":\"1.0\",\"id\":\"st-1\",\"source\":\"/shop/orders\","
                       "\"type\":\"o-rder.creat ed.v1\",\"datacontenttype\":\"application/json\","
                       "\"data\":{\"a\":[1,2,3]}}";
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", "Content-Type: application/cloudevents+json\r\n",
                            body, strlen(body), NULL, NULL),
                    204);
    /* Source "/shop/orders" cleans to "shoporders"; the type loses the space. */
    natsMsg *m = pe_last_msg(&env, "kyma.shoporders.o-rder.created.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(m), "{\"a\":[1,2,3]}", 13);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-originaltype"), "o-rder.creat%20ed.v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-source"), "/shop/orders");
    natsMsg_Destroy(m);
}

static void test_prefixed_path(void)
{
    char hdrs[512];
    /* In a ce- header '%' is percent-encoded itself. */
    pe_binary_headers(hdrs, sizeof(hdrs), "pfx-1", "anything",
                      "sap.kyma.custom.te--s__t!!a@@p##p%25%25.Segment1-Part1.Segment2.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{}", 2, NULL, NULL), 204);
    natsMsg *m = pe_last_msg(&env, "kyma.sap.kyma.custom.testapp.Segment1Part1.Segment2.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-type"),
                           "sap.kyma.custom.testapp.Segment1Part1.Segment2.v1");
    natsMsg_Destroy(m);
    static const char *const bad[] = {"sap.kyma.custom.app.created.v1",
                                      "sap.kyma.custom.sap.kyma.custom.app.order.created.v1",
                                      "sap.kyma.custom.app..order.created.v1"};
    for (size_t i = 0; i < JB_CASES_N(bad); i++) {
        char *resp = NULL;
        pe_binary_headers(hdrs, sizeof(hdrs), "pfx-bad", "src", bad[i]);
        CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{}", 2, &resp, NULL), 400);
        CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "invalid format") : NULL);
        free(resp);
    }
}

static void test_invalid_events(void)
{
    static const struct {
        const char *ctype, *extra, *body, *want;
        int code;
    } cases[] = {
        {"application/cloudevents+json", "",
         "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", "type", 400},
        {"application/cloudevents+json", "", "{not json", "", 400},
        {"application/cloudevents+json", "",
         "{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"s\",\"type\":\"a.b\"}", "specversion",
         400},
        {"application/json", "ce-specversion: 1.0\r\nce-source: s\r\nce-type: a.b\r\n", "{}", "id",
         400},
        {"application/cloudevents+avro", "", "x", "", 415},
        {"application/cloudevents-batch+avro", "", "x", "", 415},
        {"application/cloudevents+json", "",
         "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"...\",\"type\":\"a.b\"}", "source",
         400},
        {"application/cloudevents+json", "",
         "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"a..b\"}", "empty", 400},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char hdrs[512];
        snprintf(hdrs, sizeof(hdrs), "Content-Type: %s\r\n%s", cases[i].ctype, cases[i].extra);
        char *resp = NULL;
        int code =
            pe_post(&env, "/publish", hdrs, cases[i].body, strlen(cases[i].body), &resp, NULL);
        CU_ASSERT_EQUAL(code, cases[i].code);
        if (cases[i].want[0])
            CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, cases[i].want) : NULL);
        if (code != cases[i].code || (cases[i].want[0] && (!resp || !strstr(resp, cases[i].want))))
            fprintf(stderr, "case %zu: %d %s\n", i, code, resp ? resp : "");
        free(resp);
    }
}

static void test_batch(void)
{
    int64_t before = pe_stream_msgs(&env);
    const char *ok = "[{\"specversion\":\"1.0\",\"id\":\"b-1\",\"source\":\"batchsrc\",\"type\":"
                     "\"item.added.v1\",\"data\":1},{\"specversion\":\"1.0\",\"id\":\"b-2\","
                     "\"source\":\"batchsrc\",\"type\":\"item.removed.v1\",\"data\":\"x\"}]";
    CU_ASSERT_EQUAL(pe_post(&env, "/publish",
                            "Content-Type: application/cloudevents-batch+json\r\n", ok, strlen(ok),
                            NULL, NULL),
                    204);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before + 2);
    natsMsg *m = pe_last_msg(&env, "kyma.batchsrc.item.removed.v1");
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-id"), "b-2");
    natsMsg_Destroy(m);
    /* One invalid event: 400 naming it, nothing published. */
    const char *bad = "[{\"specversion\":\"1.0\",\"id\":\"b-3\",\"source\":\"batchsrc\",\"type\":"
                      "\"item.added.v1\"},{\"specversion\":\"1.0\",\"id\":\"b-4\",\"source\":"
                      "\"batchsrc\"}]";
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/publish",
                            "Content-Type: application/cloudevents-batch+json\r\n", bad,
                            strlen(bad), &resp, NULL),
                    400);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "event 1") : NULL);
    free(resp);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before + 2);
}

static jb_ce *make_event(const char *id, const char *type, const char *data)
{
    jb_ce *ce = jb_ce_create();
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", id);
    jb_ce_set_str(ce, "source", "protosrc");
    jb_ce_set_str(ce, "type", type);
    jb_ce_set_str(ce, "datacontenttype", "text/plain");
    jb_ce_set_data(ce, JB_CE_DATA_TEXT, data, strlen(data));
    return ce;
}

static void test_protobuf(void)
{
    jb_ce *ces[2] = {make_event("pb-1", "proto.one.v1", "hello"),
                     make_event("pb-2", "proto.two.v1", "world")};
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_protobuf(ces[0], &buf, &len), JB_OK);
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", "Content-Type: application/cloudevents+protobuf\r\n",
                            (const char *)buf, len, NULL, NULL),
                    204);
    free(buf);
    natsMsg *m = pe_last_msg(&env, "kyma.protosrc.proto.one.v1");
    CU_ASSERT_PTR_NOT_NULL(m);
    if (m != NULL)
        CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(m), "hello", 5);
    natsMsg_Destroy(m);
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_protobuf(ces, 2, &buf, &len), JB_OK);
    CU_ASSERT_EQUAL(pe_post(&env, "/publish",
                            "Content-Type: application/cloudevents-batch+protobuf\r\n",
                            (const char *)buf, len, NULL, NULL),
                    204);
    free(buf);
    m = pe_last_msg(&env, "kyma.protosrc.proto.two.v1");
    CU_ASSERT_PTR_NOT_NULL(m);
    if (m != NULL)
        CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(m), "world", 5);
    natsMsg_Destroy(m);
    jb_ce_destroy(ces[0]);
    jb_ce_destroy(ces[1]);
}

static void test_dedup(void)
{
    char hdrs[512];
    pe_binary_headers(hdrs, sizeof(hdrs), "dup-1", "dupsrc", "dup.event.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{\"n\":1}", 7, NULL, NULL), 204);
    int64_t after_first = pe_stream_msgs(&env);
    /* A client retry of the same event: acknowledged, stored once. */
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{\"n\":1}", 7, NULL, NULL), 204);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), after_first);
    /* Another id is another event. */
    pe_binary_headers(hdrs, sizeof(hdrs), "dup-2", "dupsrc", "dup.event.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{\"n\":1}", 7, NULL, NULL), 204);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), after_first + 1);
}

static void test_too_large(void)
{
    size_t len = 5000; /* MAX_REQUEST_SIZE=4096 */
    char *big = malloc(len);
    memset(big, 'a', len);
    char hdrs[512];
    pe_binary_headers(hdrs, sizeof(hdrs), "big-1", "bigsrc", "big.v1");
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, big, len, &resp, NULL), 413);
    free(resp);
    resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/app/v1/events", NULL, big, len, &resp, NULL), 413);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "\"type\":\"request_body_too_large\"") : NULL);
    free(resp);
    /* Far over the limit: refused (libevent's own 413) without reading it all. */
    size_t huge = 1 << 20;
    char *hb = malloc(huge);
    memset(hb, 'b', huge);
    int code = pe_post(&env, "/publish", hdrs, hb, huge, NULL, NULL);
    CU_ASSERT(code == 413 || code == -1);
    free(hb);
    free(big);
    /* The limit is exact: 4096 bytes are accepted. */
    char *edge = malloc(4096);
    memset(edge, 'c', 4096);
    CU_ASSERT_EQUAL(
        pe_post(&env, "/publish",
                "ce-specversion: 1.0\r\nce-id: edge\r\nce-source: s\r\nce-type: e.v1\r\n", edge,
                4096, NULL, NULL),
        204);
    free(edge);
}

static void test_legacy_success(void)
{
    const char *body = "{\"event-id\":\"8945ec08-256b-11eb-9928-acde48001122\",\"event-type\":"
                       "\"order.created\",\"event-type-version\":\"v1\",\"event-time\":"
                       "\"2020-04-02T21:37:00Z\",\"data\":{\"id\":7},\"ignored\":true}";
    char *resp = NULL;
    int64_t before = pe_stream_msgs(&env);
    CU_ASSERT_EQUAL(pe_post(&env, "/legacyapp/v1/events", "Content-Type: application/json\r\n",
                            body, strlen(body), &resp, NULL),
                    200);
    CU_ASSERT_STRING_EQUAL(resp ? resp : "",
                           "{\"event-id\":\"8945ec08-256b-11eb-9928-acde48001122\","
                           "\"status\":\"\",\"reason\":\"\"}");
    free(resp);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before + 2);
    natsMsg *a = pe_last_msg(&env, "kyma.legacyapp.order.created.v1");
    natsMsg *b = pe_last_msg(&env, "kyma.sap.kyma.custom.legacyapp.order.created.v1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-id"), "8945ec08-256b-11eb-9928-acde48001122");
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-id"), "8945ec08-256b-11eb-9928-acde48001122");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-source"), "legacyapp");
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-source"), "kyma");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-originaltype"), "order.created.v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-type"), "sap.kyma.custom.legacyapp.order.created.v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-eventtypeversion"), "v1");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-time"), "2020-04-02T21:37:00Z");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-datacontenttype"), "application/json");
    CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(a), "{\"id\":7}", 8);
    CU_ASSERT_NSTRING_EQUAL(natsMsg_GetData(b), "{\"id\":7}", 8);
    CU_ASSERT_STRING_NOT_EQUAL(pe_hdr(a, "Nats-Msg-Id"), pe_hdr(b, "Nats-Msg-Id"));
    natsMsg_Destroy(a);
    natsMsg_Destroy(b);
    /* Without an id, a new UUID v4 is returned and stored. */
    const char *noid = "{\"event-type\":\"order.created\",\"event-type-version\":\"v2\","
                       "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":\"x\"}";
    resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/legacyapp/v1/events", NULL, noid, strlen(noid), &resp, NULL),
                    200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(strncmp(resp, "{\"event-id\":\"", 13), 0);
    CU_ASSERT(strlen(resp) > 13 + 36 && jb_uuid_valid(resp + 13, 36));
    a = pe_last_msg(&env, "kyma.legacyapp.order.created.v2");
    CU_ASSERT_PTR_NOT_NULL(a);
    if (a != NULL)
        CU_ASSERT_NSTRING_EQUAL(pe_hdr(a, "ce-id"), resp + 13, 36);
    natsMsg_Destroy(a);
    free(resp);
}

#define MISSING(f)                                                                                 \
    "{\"status\":400,\"type\":\"validation_violation\",\"message\":\"Missing field\","             \
    "\"details\":[{\"field\":\"" f                                                                 \
    "\",\"type\":\"missing_field\",\"message\":\"Missing field\"}]}"
#define INVALID(f)                                                                                 \
    "{\"status\":400,\"type\":\"validation_violation\",\"message\":\"Invalid field\","             \
    "\"details\":[{\"field\":\"" f                                                                 \
    "\",\"type\":\"invalid_field\",\"message\":\"Invalid field\"}]}"

static void test_legacy_errors(void)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"", "{\"status\":400,\"type\":\"bad_payload_syntax\",\"message\":\"Bad payload syntax\","
             "\"moreInfo\":\"Bad payload syntax\"}"},
        {"{\"event-type\":", NULL},
        {"{\"event-type-version\":\"v1\",\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":1}",
         MISSING("event-type")},
        {"{\"event-type\":\"a.b\",\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":1}",
         MISSING("event-type-version")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v.1\",\"data\":1}",
         INVALID("event-type-version")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v1\",\"data\":1}",
         MISSING("event-time")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v1\",\"event-time\":\"yesterday\","
         "\"data\":1}",
         INVALID("event-time")},
        {"{\"event-id\":\"not-a-uuid\",\"event-type\":\"a.b\",\"event-type-version\":\"v1\","
         "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":1}",
         INVALID("event-id")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v1\",\"event-time\":"
         "\"2020-04-02T21:37:00Z\"}",
         MISSING("data")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v1\",\"event-time\":"
         "\"2020-04-02T21:37:00Z\",\"data\":null}",
         MISSING("data")},
        {"{\"event-type\":\"a.b\",\"event-type-version\":\"v1\",\"event-time\":"
         "\"2020-04-02T21:37:00Z\",\"data\":\"\"}",
         MISSING("data")},
        /* The order: the type is checked before the time. */
        {"{\"event-time\":\"bad\"}", MISSING("event-type")},
    };
    int64_t before = pe_stream_msgs(&env);
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *resp = NULL, *hdrs = NULL;
        int code = pe_post(&env, "/errapp/v1/events", NULL, cases[i].body, strlen(cases[i].body),
                           &resp, &hdrs);
        CU_ASSERT_EQUAL(code, 400);
        CU_ASSERT_PTR_NOT_NULL(hdrs ? strstr(hdrs, "application/json") : NULL);
        if (cases[i].want != NULL) {
            CU_ASSERT_STRING_EQUAL(resp ? resp : "", cases[i].want);
        } else {
            CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "\"type\":\"bad_payload_syntax\"") : NULL);
            CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "\"moreInfo\":\"invalid JSON") : NULL);
        }
        if (code != 400 || (cases[i].want && (!resp || strcmp(resp, cases[i].want))))
            fprintf(stderr, "legacy case %zu: %d %s\n", i, code, resp ? resp : "");
        free(resp);
        free(hdrs);
    }
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before);
}

static void put_subscription(const char *manifest)
{
    jb_cfg *cfg = jb_cfg_defaults();
    jb_sub_store *st = NULL;
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_sub_store_open(cfg, env.js, &st, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_sub_parse(manifest, strlen(manifest), "test", NULL, &v, &err), JB_OK);
    jb_sub_apply_result res;
    for (size_t i = 0; i < v.n; i++)
        CU_ASSERT_EQUAL(jb_sub_store_put(st, v.items[i], &res, &err), JB_OK);
    jb_sub_vec_clear(&v);
    jb_sub_store_close(st);
    jb_cfg_destroy(cfg);
}

static void test_subscribed(void)
{
    char *resp = NULL;
    CU_ASSERT_EQUAL(
        jb_http(env.port, "GET", "/subapp/v1/events/subscribed", NULL, NULL, 0, &resp, NULL, NULL),
        200);
    CU_ASSERT_STRING_EQUAL(resp ? resp : "", "{\"eventsInfo\":[]}");
    free(resp);
    put_subscription("{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":"
                     "\"Subscription\",\"metadata\":{\"name\":\"s1\",\"namespace\":\"default\"},"
                     "\"spec\":{\"sink\":\"http://sink.default.svc.cluster.local\",\"source\":"
                     "\"subapp\",\"types\":[\"order.created.v1\",\"order.updated.v2\"]}}");
    put_subscription("{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":"
                     "\"Subscription\",\"metadata\":{\"name\":\"s2\",\"namespace\":\"default\"},"
                     "\"spec\":{\"sink\":\"http://sink.default.svc.cluster.local\",\"source\":\"\","
                     "\"typeMatching\":\"exact\",\"types\":[\"sap.kyma.custom.subapp.invoice."
                     "paid.v1\",\"sap.kyma.custom.other.x.v1\"]}}");
    resp = NULL;
    CU_ASSERT_EQUAL(
        jb_http(env.port, "GET", "/subapp/v1/events/subscribed", NULL, NULL, 0, &resp, NULL, NULL),
        200);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "{\"name\":\"order.created\",\"version\":\"v1\"}")
                                : NULL);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "{\"name\":\"order.updated\",\"version\":\"v2\"}")
                                : NULL);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "{\"name\":\"invoice.paid\",\"version\":\"v1\"}")
                                : NULL);
    CU_ASSERT_PTR_NULL(resp ? strstr(resp, "other") : NULL);
    free(resp);
}

/* A NUL byte in an attribute is a 400 naming the attribute in every format,
 * never a silently shortened value; nothing is stored. */
static void test_nul_in_attribute(void)
{
    int64_t before = pe_stream_msgs(&env);
    char *resp = NULL;
    const char *bin = "ce-specversion: 1.0\r\nce-id: nul-1\r\nce-source: s\r\n"
                      "ce-type: a.b\r\nce-myext: a%00b\r\n";
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", bin, "x", 1, &resp, NULL), 400);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "myext:") : NULL);
    free(resp);
    resp = NULL;
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"nul-2\",\"source\":\"s\",\"type\":\"a.b\","
        "\"myext\":\"a\\u0000b\"}";
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", "Content-Type: application/cloudevents+json\r\n",
                            json, strlen(json), &resp, NULL),
                    400);
    CU_ASSERT_STRING_EQUAL(resp ? resp : "", "myext: MUST NOT contain U+0000");
    free(resp);
    resp = NULL;
    /* protobuf: id "nul\0x", source, specversion, type */
    static const uint8_t pb[] = {0x0a, 5, 'n', 'u', 'l', 0,    'x', 0x12, 1,   's',
                                 0x1a, 3, '1', '.', '0', 0x22, 3,   'a',  '.', 'b'};
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", "Content-Type: application/cloudevents+protobuf\r\n",
                            (const char *)pb, sizeof(pb), &resp, NULL),
                    400);
    CU_ASSERT_STRING_EQUAL(resp ? resp : "", "id: MUST NOT contain U+0000");
    free(resp);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before);
}

/* Tracing headers pass to the sink unencoded: one the dispatcher could not send
 * back is refused here, naming it. */
static void test_tracing_refused(void)
{
    int64_t before = pe_stream_msgs(&env);
    char hdrs[512];
    pe_binary_headers(hdrs, sizeof(hdrs), "trace-esc", "myapp", "trace.bad.v1");
    size_t used = strlen(hdrs);
    snprintf(hdrs + used, sizeof(hdrs) - used, "X-B3-TraceId: a\x1b[31mb\r\n");
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{}", 2, &resp, NULL), 400);
    CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "X-B3-TraceId: MUST NOT contain control") : NULL);
    free(resp);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before);
}

/* Section 2.3: sources Go's URL parser accepts are valid (Kyma), and cleaned
 * like spec.source; only what the rule lists is refused. */
static void test_kyma_sources(void)
{
    static const struct {
        const char *source, *subject; /* subject NULL: 400 */
    } cases[] = {
        {"s>o>*u*r>c.e", "kyma.source.order.cre-\xc3\xa4+ted.v2"},
        {"system>prod", "kyma.systemprod.order.cre-\xc3\xa4+ted.v2"},
        {"my%20app", "kyma.my%20app.order.cre-\xc3\xa4+ted.v2"}, /* decoded: "my app" */
        {"a%zz", NULL},
        {"1a:b", NULL},
        {":x", NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char hdrs[512], id[32];
        snprintf(id, sizeof(id), "src-%zu", i);
        /* ce-type percent-encoded: order.cre-ä+t*ed.v2 (Kyma's example). */
        pe_binary_headers(hdrs, sizeof(hdrs), id, cases[i].source, "order.cre-%C3%A4+t*ed.v2");
        char *resp = NULL;
        int code = pe_post(&env, "/publish", hdrs, "{}", 2, &resp, NULL);
        if (cases[i].subject == NULL) {
            CU_ASSERT_EQUAL(code, 400);
            CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "source:") : NULL);
        } else {
            CU_ASSERT_EQUAL(code, 204);
        }
        if ((code == 204) != (cases[i].subject != NULL))
            fprintf(stderr, "source case %zu: %d %s\n", i, code, resp ? resp : "");
        free(resp);
    }
    /* Stored where a standard subscription on that raw source listens. */
    natsMsg *m = pe_last_msg(&env, "kyma.source.order.cre-\xc3\xa4+ted.v2");
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-originaltype"), "order.cre-%C3%A4+t*ed.v2");
    natsMsg_Destroy(m);
    m = pe_last_msg(&env, "kyma.myapp.order.cre-\xc3\xa4+ted.v2");
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-source"), "my%20app");
    natsMsg_Destroy(m);
    /* The same raw string cleans to the same subject on the subscription side. */
    jb_cfg *cfg = jb_cfg_defaults();
    char *subj = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_sub_standard_subject("kyma", "s>o>*u*r>c.e", 12,
                                            "order.cre-\xc3\xa4+t*ed.v2",
                                            strlen("order.cre-\xc3\xa4+t*ed.v2"), &subj, &err),
                    JB_OK);
    CU_ASSERT_STRING_EQUAL(subj ? subj : "", "kyma.source.order.cre-\xc3\xa4+ted.v2");
    free(subj);
    jb_cfg_destroy(cfg);
}

/* Section 2.2: a one-segment legacy type answers 200 (Kyma) and both copies are
 * stored; the metric counts the event once, with the type as sent. */
static void test_legacy_one_segment(void)
{
    const char *body = "{\"event-type\":\"someType\",\"event-type-version\":\"v0\","
                       "\"event-time\":\"2020-04-02T21:37:00Z\",\"data\":{\"k\":1}}";
    int64_t before = pe_stream_msgs(&env);
    char *resp = NULL;
    CU_ASSERT_EQUAL(pe_post(&env, "/oneseg/v1/events", NULL, body, strlen(body), &resp, NULL), 200);
    free(resp);
    CU_ASSERT_EQUAL(pe_stream_msgs(&env), before + 2);
    natsMsg *a = pe_last_msg(&env, "kyma.oneseg.someType.v0");
    natsMsg *b = pe_last_msg(&env, "kyma.sap.kyma.custom.oneseg.someType.v0");
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_STRING_EQUAL(pe_hdr(b, "ce-type"), "sap.kyma.custom.oneseg.someType.v0");
    CU_ASSERT_STRING_EQUAL(pe_hdr(a, "ce-id"), pe_hdr(b, "ce-id"));
    natsMsg_Destroy(a);
    natsMsg_Destroy(b);
    char *m = pe_metrics(&env);
    CU_ASSERT_PTR_NOT_NULL(m ? strstr(m,
                                      "eventing_epp_event_type_published_total{event_type="
                                      "\"someType.v0\",event_source=\"oneseg\",code=\"204\"} 1\n")
                             : NULL);
    CU_ASSERT_PTR_NULL(m ? strstr(m, "event_type=\"sap.kyma.custom.oneseg") : "");
    free(m);
}

/* Section 2: /{app}/events and /{app}/v2/events take CloudEvents as /publish. */
static void test_app_ce_routes(void)
{
    static const char *const paths[] = {"/routeapp/events", "/routeapp/v2/events"};
    for (size_t i = 0; i < JB_CASES_N(paths); i++) {
        char hdrs[256], id[32];
        snprintf(id, sizeof(id), "route-%zu", i);
        pe_binary_headers(hdrs, sizeof(hdrs), id, "myapp", "route.done.v1");
        CU_ASSERT_EQUAL(pe_post(&env, paths[i], hdrs, "{\"r\":1}", 7, NULL, NULL), 204);
        natsMsg *m = pe_last_msg(&env, "kyma.myapp.route.done.v1");
        CU_ASSERT_STRING_EQUAL(pe_hdr(m, "ce-id"), id);
        natsMsg_Destroy(m);
        /* Structured and batch too, with the same answers as /publish. */
        char *resp = NULL;
        const char *bad = "[{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\"}]";
        CU_ASSERT_EQUAL(pe_post(&env, paths[i],
                                "Content-Type: application/cloudevents-batch+json\r\n", bad,
                                strlen(bad), &resp, NULL),
                        400);
        CU_ASSERT_PTR_NOT_NULL(resp ? strstr(resp, "type: MUST be a non-empty string") : NULL);
        free(resp);
    }
}

static void test_metrics_text(void)
{
    /* The requests whose series are checked are made here, so the case stands alone and
     * in any order. Its own source and types keep the exact counts its own. */
    char hdrs[256];
    pe_binary_headers(hdrs, sizeof(hdrs), "metrics-1", "metricsapp", "metrics.created.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/publish", hdrs, "{}", 2, NULL, NULL), 204);
    const char *legacy = "{\"event-id\":\"0b6f8c3e-256b-11eb-9928-acde48001122\",\"event-type\":"
                         "\"metrics.legacy\",\"event-type-version\":\"v1\",\"event-time\":"
                         "\"2020-04-02T21:37:00Z\",\"data\":{}}";
    const char *json = "Content-Type: application/json\r\n";
    CU_ASSERT_EQUAL(
        pe_post(&env, "/metricsapp/v1/events", json, legacy, strlen(legacy), NULL, NULL), 200);
    CU_ASSERT_EQUAL(pe_post(&env, "/metricsapp/v1/events", json, "", 0, NULL, NULL), 400);
    CU_ASSERT_EQUAL(jb_http(env.port, "GET", "/nope", NULL, NULL, 0, NULL, NULL, NULL), 404);
    pe_binary_headers(hdrs, sizeof(hdrs), "metrics-2", "metricsapp", "metrics.routed.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/metricsapp/events", hdrs, "{}", 2, NULL, NULL), 204);
    pe_binary_headers(hdrs, sizeof(hdrs), "metrics-3", "metricsapp", "metrics.routed.v1");
    CU_ASSERT_EQUAL(pe_post(&env, "/metricsapp/v2/events", hdrs, "{}", 2, NULL, NULL), 204);

    char *m = pe_metrics(&env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    static const char *const want[] = {
        "eventing_epp_requests_total{code=\"204\",method=\"POST\",path=\"/publish\"}",
        "eventing_epp_requests_total{code=\"200\",method=\"POST\",path=\"/{application}/v1/"
        "events\"}",
        "eventing_epp_requests_total{code=\"400\",method=\"POST\",path=\"/{application}/v1/"
        "events\"}",
        "eventing_epp_requests_total{code=\"404\",method=\"GET\",path=\"unknown\"}",
        "eventing_epp_requests_duration_seconds_bucket{code=\"204\",method=\"POST\",path=\"/"
        "publish\",le=\"0.075\"}",
        "eventing_epp_backend_duration_milliseconds_bucket{code=\"204\",destination_service=",
        ",le=\"1024\"}",
        /* Kyma's label: the type as the producer sent it. */
        "eventing_epp_event_type_published_total{event_type=\"metrics.created.v1\","
        "event_source=\"metricsapp\",code=\"204\"} 1",
        "eventing_epp_requests_total{code=\"204\",method=\"POST\",path=\"/{application}/"
        "events\"}",
        "eventing_epp_requests_total{code=\"204\",method=\"POST\",path=\"/{application}/v2/"
        "events\"}",
        "eventing_epp_health 1",
        "jetbridge_publisher_in_flight",
        "# TYPE eventing_epp_requests_duration_seconds histogram",
    };
    for (size_t i = 0; i < JB_CASES_N(want); i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(m, want[i]));
        if (strstr(m, want[i]) == NULL)
            fprintf(stderr, "metrics lack: %s\n", want[i]);
    }
    /* Raw paths never become labels. */
    CU_ASSERT_PTR_NULL(strstr(m, "/metricsapp/"));
    /* The enriched subject is never the label. */
    CU_ASSERT_PTR_NULL(strstr(m, "event_type=\"kyma."));
    CU_ASSERT_PTR_NULL(strstr(m, "path=\"/nope\""));
    free(m);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"healthz, readyz and the admin port", test_health_and_ready},
        {"404 and 405 with Allow", test_not_found_and_method},
        {"binary mode is stored with ce- headers, tracing and Nats-Msg-Id", test_binary_stored},
        {"binary payload bytes pass untouched", test_binary_payload_bytes},
        {"binary mode with 60 headers and long attributes: all stored", test_binary_many_headers},
        {"attributes whose NATS header keys collide are both stored", test_header_key_collision},
        {"structured mode is stored in binary mode", test_structured_stored},
        {"prefixed path and its invalid formats", test_prefixed_path},
        {"invalid events: 400 naming the problem, 415", test_invalid_events},
        {"batch: all stored, or 400 and none", test_batch},
        {"protobuf single and batch", test_protobuf},
        {"same source and id are stored once", test_dedup},
        {"413 over MAX_REQUEST_SIZE, exact limit accepted", test_too_large},
        {"legacy: 200, two copies with one id", test_legacy_success},
        {"legacy: validation order and bodies", test_legacy_errors},
        {"subscribed endpoint reads the store", test_subscribed},
        {"Kyma sources: valid as Go's URL parser reads them", test_kyma_sources},
        {"NUL in an attribute: 400 naming it (binary, JSON, protobuf)", test_nul_in_attribute},
        {"tracing header the dispatcher cannot send: 400", test_tracing_refused},
        {"legacy one-segment type: 200, both copies", test_legacy_one_segment},
        {"/{app}/events and /{app}/v2/events take CloudEvents", test_app_ce_routes},
        {"metrics text with route templates", test_metrics_text},
        {"8 concurrent clients: every event stored once", test_concurrent_clients},
        {"SIGTERM: exit 0 (no sanitizer findings)", test_clean_exit},
    };
    return jb_cunit_main("integration_pub_api", suite_init, suite_cleanup, cases,
                         JB_CASES_N(cases));
}

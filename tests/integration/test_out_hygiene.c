/* Secrets and state hygiene, each case a finding from probing the build before it
 * was fixed: userinfo of a sink URL in metrics, logs, `sub get` and dead letters;
 * `dlq replay --republish` to any subject a dead letter names; a KV entry whose key
 * disagrees with its manifest taking over another subscription's consumers; a
 * subscription with 10,000 types stalling every reconcile pass; terminal escape
 * sequences from stored values printed raw by `sub get` and `dlq list`. */
#include <unistd.h>

/* The shared set-up has helpers this suite does not need. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_disp_env.h"

#define TYPE   "order.created.v1"
#define SECRET "s3cretPassw0rd"

static char *metrics_of(int port)
{
    char *body = NULL;
    size_t len = 0;
    if (jb_http(port, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL) != 200) {
        free(body);
        return NULL;
    }
    return body;
}

static char *run_out(denv *e, const char *const *argv)
{
    const char *env[] = {e->url_env, NULL};
    char *out = NULL;
    jb_trun(argv, env, &out, 20000);
    return out;
}

/* A password in a sink URL is used (curl sends it as basic credentials) but shown
 * nowhere: not in /metrics, the log, `sub get` (table, json, yaml), `sub describe`
 * or the dead letter's errordest. */
static void test_userinfo_redacted(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char sink[256];
    snprintf(sink, sizeof(sink), "http://alice:" SECRET "@127.0.0.1:%d/", jb_tsink_port(e.sink));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, NULL, sink));
    int port = 0;
    jb_tproc *p = denv_dispatcher(&e, &port, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    static const int codes[] = {400};
    jb_tsink_script(e.sink, codes, 1, 200, 0, 0);
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-secret", "{}", NULL));
    CU_ASSERT_EQUAL(jb_tsink_wait(e.sink, 1, 15000), 1);
    jb_treq r;
    CU_ASSERT_TRUE_FATAL(jb_tsink_get(e.sink, 0, &r));
    const char *auth = jb_treq_header(&r, "authorization");
    CU_ASSERT_TRUE(auth != NULL && strncmp(auth, "Basic ", 6) == 0);
    jb_treq_free(&r);

    cJSON *dlq = denv_dlq_wait(&e);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(dlq), 1);
    const cJSON *dest = cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "errordest");
    CU_ASSERT_TRUE(cJSON_IsString(dest) && strstr(dest->valuestring, SECRET) == NULL &&
                   strstr(dest->valuestring, "redacted@127.0.0.1") != NULL);
    cJSON_Delete(dlq);

    char *m = metrics_of(port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NULL(strstr(m, SECRET));
    CU_ASSERT_PTR_NULL(strstr(m, "alice"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "sink=\"http://redacted@127.0.0.1"));
    free(m);

    static const char *const cmds[][6] = {
        {"sub", "get", NULL},
        {"sub", "get", "orders", "-o", "json", NULL},
        {"sub", "get", "orders", "-o", "yaml", NULL},
        {"sub", "describe", "orders", NULL},
        {"dlq", "list", NULL},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char *out = run_out(&e, cmds[i]);
        CU_ASSERT_PTR_NOT_NULL(out);
        CU_ASSERT_TRUE(out != NULL && strstr(out, SECRET) == NULL);
        CU_ASSERT_TRUE(out != NULL && strstr(out, "redacted@") != NULL);
        free(out);
    }
    char *log = jb_tproc_log(p);
    CU_ASSERT_TRUE(log != NULL && strstr(log, SECRET) == NULL);
    CU_ASSERT_TRUE(log != NULL && strstr(log, "redacted@") != NULL);
    free(log);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* A dead letter as anyone allowed to publish to the DLQ stream can write it. */
static bool forge_dead_letter(denv *e, const char *subject_hdr, const char *subscription)
{
    natsMsg *m = NULL;
    bool ok = natsMsg_Create(&m, "kyma-dlq.forged", NULL, "{}", 2) == NATS_OK &&
              natsMsgHeader_Set(m, "ce-specversion", "1.0") == NATS_OK &&
              natsMsgHeader_Set(m, "ce-id", "forged-1") == NATS_OK &&
              natsMsgHeader_Set(m, "ce-source", "myapp") == NATS_OK &&
              natsMsgHeader_Set(m, "ce-type", "order.created.v1") == NATS_OK &&
              natsMsgHeader_Set(m, "Content-Type", "application/json") == NATS_OK &&
              natsMsgHeader_Set(m, "Jb-Subject", subject_hdr) == NATS_OK &&
              natsMsgHeader_Set(m, "Jb-Subscription", subscription) == NATS_OK &&
              js_PublishMsg(NULL, e->js, m, NULL, NULL) == NATS_OK;
    natsMsg_Destroy(m);
    return ok;
}

static bool stream_exists(denv *e, const char *name)
{
    jsStreamInfo *si = NULL;
    bool ok = js_GetStreamInfo(&si, e->js, name, NULL, NULL) == NATS_OK;
    jsStreamInfo_Destroy(si);
    return ok;
}

/* Republish goes only to event subjects of the stream: a forged Jb-Subject naming
 * the JetStream API (which deleted the stream before) or a wildcard is refused,
 * kept in the DLQ, and the replay exits non-zero. */
static void test_republish_only_event_subjects(void)
{
    denv e;
    jb_tproc *p = NULL;
    CU_ASSERT_TRUE_FATAL(denv_start(&e) && denv_apply(&e, "orders", TYPE, NULL, NULL));
    p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    /* The dispatcher made the DLQ stream; the forged letters go there. */
    CU_ASSERT_TRUE_FATAL(forge_dead_letter(&e, "$JS.API.STREAM.DELETE.sap", "default/orders"));
    CU_ASSERT_TRUE_FATAL(forge_dead_letter(&e, "kyma.*.order.created.v1", "default/orders"));
    CU_ASSERT_TRUE_FATAL(forge_dead_letter(&e, "other.myapp.order.created.v1", "default/orders"));
    const char *env[] = {e.url_env, NULL};
    const char *rep[] = {"dlq", "replay", "--republish", NULL};
    char *out = NULL;
    int rc = jb_trun(rep, env, &out, 20000);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "refusing to republish") != NULL);
    CU_ASSERT_TRUE(out != NULL && strstr(out, "replayed 0, failed 3") != NULL);
    free(out);
    CU_ASSERT_TRUE(stream_exists(&e, "sap"));
    cJSON *dlq = denv_dlq_list(&e);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 3);
    cJSON_Delete(dlq);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static bool kv_put(denv *e, const char *key, const char *json)
{
    /* Opening the store creates the buckets. */
    jb_sub_store *st = NULL;
    jb_err err;
    if (jb_sub_store_open(e->cfg, e->js, &st, &err) != JB_OK)
        return false;
    jb_sub_store_close(st);
    kvStore *kv = NULL;
    bool ok = js_KeyValue(&kv, e->js, JB_SUB_BUCKET) == NATS_OK &&
              kvStore_PutString(NULL, kv, key, json) == NATS_OK;
    kvStore_Destroy(kv);
    return ok;
}

static bool kv_delete(denv *e, const char *key)
{
    kvStore *kv = NULL;
    bool ok =
        js_KeyValue(&kv, e->js, JB_SUB_BUCKET) == NATS_OK && kvStore_Delete(kv, key) == NATS_OK;
    kvStore_Destroy(kv);
    return ok;
}

/* An entry stored under "default.evil" whose manifest says default/orders names the
 * same consumers as default/orders: it is refused, so it neither redirects the
 * events to its sink nor, when deleted, deletes the real subscription's consumers. */
static void test_kv_key_must_match_manifest(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e) && denv_apply(&e, "orders", TYPE, NULL, NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    jb_tsink *evil = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(evil);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
             "\"metadata\":{\"name\":\"orders\",\"namespace\":\"default\"},"
             "\"spec\":{\"sink\":\"%s\",\"source\":\"myapp\",\"types\":[\"" TYPE "\"]}}",
             jb_tsink_url(evil));
    CU_ASSERT_TRUE_FATAL(kv_put(&e, "default.evil", json));
    /* `sub get` lists only the real one. */
    const char *get[] = {"sub", "get", NULL};
    char *out = run_out(&e, get);
    CU_ASSERT_TRUE(out != NULL && strstr(out, jb_tsink_url(evil)) == NULL);
    free(out);
    jb_sleep_ms(1000); /* the reconciler saw the entry (its watch is immediate) */
    CU_ASSERT_TRUE_FATAL(kv_delete(&e, "default.evil"));
    jb_sleep_ms(1000);
    CU_ASSERT_TRUE(denv_wait_consumer(&e, "orders", TYPE, 1000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-kv", "{}", NULL));
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 1, 15000) >= 1);
    CU_ASSERT_EQUAL(jb_tsink_count(evil), 0);
    jb_tsink_stop(evil);
    jb_tproc_stop(p);
    denv_stop(&e);
}

static char *get_status(denv *e, const char *name)
{
    jb_sub_store *st = NULL;
    jb_err err;
    char *json = NULL;
    if (jb_sub_store_open(e->cfg, e->js, &st, &err) == JB_OK)
        (void)jb_sub_store_get_status(st, "default", name, &json, &err);
    jb_sub_store_close(st);
    return json;
}

/* 10,000 types: a validation error in a small status, and the subscription stored
 * after it still gets its consumer and its events. */
static void test_many_types_do_not_block(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    size_t cap = 10000 * 40 + 1024;
    char *json = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    size_t n = (size_t)snprintf(
        json, cap,
        "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
        "\"metadata\":{\"name\":\"aaa-big\",\"namespace\":\"default\"},"
        "\"spec\":{\"sink\":\"%s\",\"source\":\"myapp\",\"types\":[",
        jb_tsink_url(e.sink));
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(json + n, cap - n, "%s\"order.number%05d.created.v1\"", i ? "," : "",
                              i);
    snprintf(json + n, cap - n, "]}}");
    CU_ASSERT_TRUE_FATAL(kv_put(&e, "default.aaa-big", json));
    free(json);
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "zzz-small", TYPE, NULL, NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL);
    CU_ASSERT_TRUE(denv_wait_consumer(&e, "zzz-small", TYPE, 20000));
    CU_ASSERT_TRUE(denv_publish(&e, TYPE, "ev-small", "{}", NULL));
    CU_ASSERT_TRUE(jb_tsink_wait(e.sink, 1, 15000) >= 1);
    char *st = NULL;
    for (int i = 0; i < 100 && st == NULL; i++) {
        st = get_status(&e, "aaa-big");
        if (st == NULL)
            jb_sleep_ms(200);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(st, "must not have more than 256 types"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st, "\"ready\":false"));
    CU_ASSERT_TRUE(strlen(st) < JB_SUB_STATUS_MAX_BYTES);
    free(st);
    jb_tproc_stop(p);
    denv_stop(&e);
}

/* Stored text with terminal control sequences is shown escaped in tables. */
static void test_tables_escape_control_bytes(void)
{
    denv e;
    CU_ASSERT_TRUE_FATAL(denv_start(&e));
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
             "\"metadata\":{\"name\":\"esc\",\"namespace\":\"default\"},"
             "\"spec\":{\"sink\":\"%s\",\"source\":\"myapp\","
             "\"types\":[\"order.\\u001b]0;pwned\\u0007.v1\"]}}",
             jb_tsink_url(e.sink));
    CU_ASSERT_TRUE_FATAL(kv_put(&e, "default.esc", json));
    CU_ASSERT_TRUE_FATAL(denv_apply(&e, "orders", TYPE, NULL, NULL));
    jb_tproc *p = denv_dispatcher(&e, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(p != NULL && denv_wait_consumer(&e, "orders", TYPE, 15000));
    CU_ASSERT_TRUE_FATAL(forge_dead_letter(&e, "kyma.myapp.x.v1", "default/\x1b[2J\x1b]0;x\x07"));
    const char *get[] = {"sub", "get", NULL};
    char *out = run_out(&e, get);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NULL(strchr(out, 0x1b));
    CU_ASSERT_PTR_NULL(strchr(out, 0x07));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order.\\x1b]0;pwned\\x07.v1"));
    free(out);
    const char *list[] = {"dlq", "list", NULL};
    out = run_out(&e, list);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NULL(strchr(out, 0x1b));
    CU_ASSERT_PTR_NULL(strchr(out, 0x07));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "default/\\x1b[2J"));
    free(out);
    jb_tproc_stop(p);
    denv_stop(&e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"userinfo_redacted", test_userinfo_redacted},
        {"republish_only_event_subjects", test_republish_only_event_subjects},
        {"kv_key_must_match_manifest", test_kv_key_must_match_manifest},
        {"many_types_do_not_block", test_many_types_do_not_block},
        {"tables_escape_control_bytes", test_tables_escape_control_bytes},
    };
    return denv_main("out_hygiene", cases, JB_CASES_N(cases));
}

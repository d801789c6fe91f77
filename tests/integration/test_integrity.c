/*
 * An acknowledged event arrives intact: the real `jetbridge publisher` and
 * `jetbridge dispatcher` against a real nats-server and real HTTP sinks. Every
 * attribute of every event the publisher answered 204 for reaches the sink byte
 * for byte (binary, structured JSON and protobuf requests; empty, blank, quoted,
 * percent, Unicode, long values and many extensions), also across a dispatcher
 * killed with SIGKILL; a Kyma-style source (`s>o>*u*r>c.e`) meets its standard
 * subscription; a dead letter of an empty sink answer lists the right subject and
 * replays with --republish.
 */
#include <signal.h>
#include <unistd.h>

/* The shared dispatcher set-up has helpers this suite does not need. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_disp_env.h"

#define SRC       "s>o>*u*r>c.e"
#define TYPE      "order.cre-\xc3\xa4+t*ed.v2"
#define SUBJECT   "kyma.source.order.cre-\xc3\xa4+ted.v2"
#define N_EVENTS  60
#define DLQ_SRC   "dlqsrc"
#define DLQ_TYPE  "dlq.empty.v1"
#define DLQ_SUBJ  "kyma.dlqsrc.dlq.empty.v1"
#define WAIT_LONG 60000

static denv env;
static jb_tproc *pub;
static int pub_port;

/* Stores Subscription default/<name>, standard, on source and type, to sink. */
static bool apply_sub(const char *name, const char *source, const char *type, const char *sink)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON *spec = cJSON_AddObjectToObject(root, "spec");
    cJSON_AddStringToObject(root, "apiVersion", "eventing.kyma-project.io/v1alpha2");
    cJSON_AddStringToObject(root, "kind", "Subscription");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", "default");
    cJSON_AddStringToObject(spec, "sink", sink);
    cJSON_AddStringToObject(spec, "source", source);
    cJSON *types = cJSON_AddArrayToObject(spec, "types");
    cJSON_AddItemToArray(types, cJSON_CreateString(type));
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_sub_store *st = NULL;
    jb_sub_apply_result res;
    bool ok = json != NULL && jb_sub_parse(json, strlen(json), "test", NULL, &v, &err) == JB_OK &&
              v.n == 1 && jb_sub_store_open(env.cfg, env.js, &st, &err) == JB_OK &&
              jb_sub_store_put(st, v.items[0], &res, &err) == JB_OK;
    if (!ok)
        fprintf(stderr, "apply %s: %s\n", name, err.msg);
    jb_sub_store_close(st);
    jb_sub_vec_clear(&v);
    free(json);
    return ok;
}

static bool wait_consumer(const char *name, const char *subject)
{
    char consumer[33];
    jb_sub_consumer_name("default", name, subject, consumer);
    for (int waited = 0; waited < WAIT_LONG; waited += 100) {
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, env.js, "sap", consumer, NULL, NULL) == NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return true;
        }
        jb_sleep_ms(100);
    }
    return false;
}

static bool start_publisher(void)
{
    char port[32], metrics[64];
    pub_port = jb_free_port();
    snprintf(port, sizeof(port), "INGRESS_PORT=%d", pub_port);
    snprintf(metrics, sizeof(metrics), "METRICS_ADDR=127.0.0.1:%d", jb_free_port());
    const char *penv[] = {env.url_env, port, metrics, "RECONNECT_WAIT=200ms", NULL};
    const char *argv[] = {"publisher", NULL};
    pub = jb_tproc_start(argv, penv, pub_port);
    for (int waited = 0; pub != NULL && waited < WAIT_LONG; waited += 100) {
        if (jb_http(pub_port, "GET", "/readyz", NULL, NULL, 0, NULL, NULL, NULL) == 200)
            return true;
        jb_sleep_ms(100);
    }
    return false;
}

static int suite_init(void)
{
    return denv_start(&env) && start_publisher() ? 0 : 1;
}

static int suite_cleanup(void)
{
    if (pub != NULL) {
        jb_tproc_signal(pub, SIGTERM);
        int rc = jb_tproc_wait(pub, 20000);
        if (rc != 0) {
            char *log = jb_tproc_log(pub);
            fprintf(stderr, "---- publisher log (exit %d)\n%s\n", rc, log ? log : "");
            free(log);
        }
    }
    jb_tproc_stop(pub);
    denv_stop(&env);
    return 0;
}

/* The event number k, with the attribute forms that must survive. */
static jb_ce *make_event(size_t k)
{
    jb_ce *ce = jb_ce_create();
    char id[32], data[64];
    snprintf(id, sizeof(id), "int-%zu", k);
    snprintf(data, sizeof(data), "{\"k\":%zu,\"s\":\"\\u00e9\"}", k);
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", id);
    jb_ce_set_str(ce, "source", SRC);
    jb_ce_set_str(ce, "type", TYPE);
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    jb_ce_set_str(ce, "empty", "");
    jb_ce_set_str(ce, "blank", " ");
    jb_ce_set_str(ce, "quotes", "\"\"");
    jb_ce_set_str(ce, "pct", "100% %zz %25 %");
    jb_ce_set_str(ce, "uni", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    jb_ce_set_str(ce, "subject", "x\\y \"z\"");
    jb_ce_set_str(ce, "zlast", "");
    if (k % 5 == 0) {
        char long_v[2001];
        for (size_t i = 0; i < 2000; i++)
            long_v[i] = (char)('a' + (i + k) % 26);
        long_v[2000] = '\0';
        jb_ce_set_str(ce, "long", long_v);
    }
    for (size_t i = 0; k % 7 == 0 && i < 40; i++) {
        char name[16], v[16];
        snprintf(name, sizeof(name), "many%zu", i);
        snprintf(v, sizeof(v), i % 3 == 0 ? "" : "m%zu", i);
        jb_ce_set_str(ce, name, v);
    }
    jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
    return ce;
}

typedef struct hdrbuf {
    char buf[32768];
    size_t len;
} hdrbuf;

static void emit_header(void *ud, const char *name, const char *value, size_t len)
{
    hdrbuf *h = ud;
    int n =
        snprintf(h->buf + h->len, sizeof(h->buf) - h->len, "%s: %.*s\r\n", name, (int)len, value);
    if (n > 0)
        h->len += (size_t)n;
}

/* Publishes ce in mode k % 3 (binary, structured JSON, protobuf); the HTTP status. */
static int publish(const jb_ce *ce, size_t k, const char *traceparent)
{
    hdrbuf h = {.len = 0};
    char *body = NULL;
    size_t len = 0;
    int code = -1;
    if (traceparent != NULL)
        h.len = (size_t)snprintf(h.buf, sizeof(h.buf), "traceparent: %s\r\n", traceparent);
    switch (k % 3) {
    case 0:
        if (jb_ce_to_http_binary(ce, emit_header, &h) != JB_OK)
            return -1;
        {
            const uint8_t *data = jb_ce_data(ce, &len);
            code = jb_http(pub_port, "POST", "/publish", h.buf, data, len, NULL, NULL, NULL);
        }
        break;
    case 1:
        if (jb_ce_to_json(ce, &body, &len) != JB_OK)
            return -1;
        snprintf(h.buf + h.len, sizeof(h.buf) - h.len,
                 "Content-Type: application/cloudevents+json\r\n");
        code = jb_http(pub_port, "POST", "/publish", h.buf, body, len, NULL, NULL, NULL);
        break;
    default:
        if (jb_ce_to_protobuf(ce, (uint8_t **)&body, &len) != JB_OK)
            return -1;
        snprintf(h.buf + h.len, sizeof(h.buf) - h.len,
                 "Content-Type: application/cloudevents+protobuf\r\n");
        code = jb_http(pub_port, "POST", "/publish", h.buf, body, len, NULL, NULL, NULL);
        break;
    }
    free(body);
    return code;
}

/* The event a sink request carries (binary mode), or NULL. */
static jb_ce *sink_event(const jb_treq *r)
{
    jb_ce_header *h = calloc(r->nheaders + 1, sizeof(*h));
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    for (size_t i = 0; h != NULL && i < r->nheaders; i++)
        h[i] = (jb_ce_header){r->header_names[i], strlen(r->header_names[i]), r->header_values[i],
                              strlen(r->header_values[i])};
    if (h != NULL &&
        jb_ce_from_http_binary(h, r->nheaders, r->body, r->body_len, &ce, &err) != JB_OK)
        fprintf(stderr, "sink request does not decode: %s\n", err.msg);
    free(h);
    return ce;
}

/* Names the attributes of want that got lacks or holds otherwise. */
static void print_diff(const jb_ce *want, const jb_ce *got)
{
    for (size_t i = 0; got != NULL && i < jb_ce_attr_count(want); i++) {
        const char *name, *v;
        size_t len, glen = 0;
        jb_ce_attr_at(want, i, &name, &v, &len);
        const char *g = jb_ce_get(got, name, &glen);
        if (g == NULL || glen != len || memcmp(g, v, len) != 0)
            fprintf(stderr, "  %s: want \"%.*s\" got \"%.*s\"\n", name, (int)len, v,
                    (int)(g ? glen : 6), g ? g : "(none)");
    }
    size_t wl = 0, gl = 0;
    const uint8_t *wd = jb_ce_data(want, &wl);
    const uint8_t *gd = got != NULL ? jb_ce_data(got, &gl) : NULL;
    if (got != NULL && (wl != gl || (wl > 0 && memcmp(wd, gd, wl) != 0)))
        fprintf(stderr, "  data: want %.*s got %.*s\n", (int)wl, (const char *)wd, (int)gl,
                (const char *)gd);
    if (got != NULL && jb_ce_attr_count(got) != jb_ce_attr_count(want))
        fprintf(stderr, "  %zu attributes, want %zu\n", jb_ce_attr_count(got),
                jb_ce_attr_count(want));
}

/* Checks every recorded 2xx request of sink against the events it names; returns
 * how many distinct events arrived intact (a differing copy counts as a failure). */
static size_t verify_sink(jb_tsink *sink, jb_ce **sent, size_t n, size_t *bad)
{
    unsigned char *seen = calloc(n, 1);
    size_t intact = 0, total = jb_tsink_count(sink);
    *bad = 0;
    for (size_t i = 0; seen != NULL && i < total; i++) {
        jb_treq r;
        if (!jb_tsink_get(sink, i, &r))
            continue;
        const char *id = jb_treq_header(&r, "ce-id");
        size_t k = id != NULL && strncmp(id, "int-", 4) == 0 ? strtoul(id + 4, NULL, 10) : n;
        if (r.status >= 200 && r.status < 300 && k < n) {
            jb_ce *got = sink_event(&r);
            if (got == NULL || !jb_ce_equal(got, sent[k])) {
                (*bad)++;
                fprintf(stderr, "event %zu differs at the sink\n", k);
                print_diff(sent[k], got);
            } else if (!seen[k]) {
                seen[k] = 1;
                intact++;
            }
            const char *tp = jb_treq_header(&r, "traceparent");
            if (k % 4 == 0 && (tp == NULL || strcmp(tp, "00-0af7651916cd43dd8448eb211c80319c-"
                                                        "b7ad6b7169203331-01") != 0)) {
                (*bad)++;
                fprintf(stderr, "event %zu: traceparent %s\n", k, tp ? tp : "(none)");
            }
            jb_ce_destroy(got);
        }
        jb_treq_free(&r);
    }
    free(seen);
    return intact;
}

static void test_every_attribute_arrives(void)
{
    CU_ASSERT_FATAL(apply_sub("integrity", SRC, TYPE, jb_tsink_url(env.sink)));
    int admin = 0;
    jb_tproc *d = denv_dispatcher(&env, &admin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    /* The standard subscription on the raw source listens where the publisher stores. */
    CU_ASSERT_FATAL(wait_consumer("integrity", SUBJECT));
    jb_ce *sent[N_EVENTS];
    size_t acked = 0;
    for (size_t k = 0; k < N_EVENTS; k++) {
        sent[k] = make_event(k);
        const char *tp =
            k % 4 == 0 ? "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" : NULL;
        int code = publish(sent[k], k, tp);
        CU_ASSERT_EQUAL(code, 204);
        acked += code == 204;
        if (k == N_EVENTS / 2) {
            /* A crash mid-way: what was acknowledged to the publisher still arrives. */
            jb_tproc_signal(d, SIGKILL);
            jb_tproc_wait(d, 20000);
            jb_tproc_stop(d);
            d = denv_dispatcher(&env, &admin, NULL);
            CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        }
    }
    CU_ASSERT_EQUAL(acked, N_EVENTS);
    size_t intact = 0, bad = 0;
    for (int waited = 0; waited <= WAIT_LONG; waited += 250) {
        intact = verify_sink(env.sink, sent, N_EVENTS, &bad);
        if (intact == N_EVENTS || bad > 0)
            break;
        jb_sleep_ms(250);
    }
    CU_ASSERT_EQUAL(intact, N_EVENTS);
    CU_ASSERT_EQUAL(bad, 0);
    /* Nothing was dead-lettered: every event was delivered as it was sent. */
    cJSON *dlq = denv_dlq_list(&env);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    for (size_t k = 0; k < N_EVENTS; k++)
        jb_ce_destroy(sent[k]);
    denv_dump_log(d);
    jb_tproc_signal(d, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(d, 20000), 0);
    jb_tproc_stop(d);
}

/* A sink's empty answer is stored as an empty errordata that reads back: the
 * dead letter names the original subject, and replay --republish delivers. */
static void test_empty_answer_dead_letter(void)
{
    jb_tsink *sink = jb_tsink_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    jb_tsink_empty_body(sink, true);
    jb_tsink_script(sink, NULL, 0, 400, 0, 0);
    CU_ASSERT_FATAL(apply_sub("dlq-empty", DLQ_SRC, DLQ_TYPE, jb_tsink_url(sink)));
    jb_tproc *d = denv_dispatcher(&env, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_FATAL(wait_consumer("dlq-empty", DLQ_SUBJ));
    const char *hdrs = "ce-specversion: 1.0\r\nce-id: dlq-1\r\nce-source: " DLQ_SRC
                       "\r\nce-type: " DLQ_TYPE "\r\nce-myext:\r\nContent-Type: text/plain\r\n";
    CU_ASSERT_EQUAL(jb_http(pub_port, "POST", "/publish", hdrs, "x", 1, NULL, NULL, NULL), 204);
    cJSON *dlq = NULL, *entry = NULL;
    for (int waited = 0; waited <= WAIT_LONG && entry == NULL; waited += 250) {
        cJSON_Delete(dlq);
        dlq = denv_dlq_list(&env);
        cJSON *e;
        cJSON_ArrayForEach(e, dlq)
        {
            cJSON *id = cJSON_GetObjectItem(e, "id");
            if (cJSON_IsString(id) && strcmp(id->valuestring, "dlq-1") == 0)
                entry = e;
        }
        if (entry == NULL)
            jb_sleep_ms(250);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
    const char *subject = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "subject"));
    const char *errordata = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "errordata"));
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "errorcode"));
    CU_ASSERT_STRING_EQUAL(subject ? subject : "(null)", DLQ_SUBJ);
    CU_ASSERT_STRING_EQUAL(errordata ? errordata : "(null)", "");
    CU_ASSERT_STRING_EQUAL(code ? code : "(null)", "400");
    char seq[32];
    snprintf(seq, sizeof(seq), "%.0f", cJSON_GetNumberValue(cJSON_GetObjectItem(entry, "seq")));
    cJSON_Delete(dlq);
    /* The sink is fixed; the event goes back on its subject and arrives. */
    jb_tsink_script(sink, NULL, 0, 200, 0, 0);
    const char *renv[] = {env.url_env, NULL};
    const char *argv[] = {"dlq", "replay", "--seq", seq, "--republish", NULL};
    CU_ASSERT_EQUAL(jb_trun(argv, renv, NULL, 30000), 0);
    bool delivered = false;
    for (int waited = 0; waited <= WAIT_LONG && !delivered; waited += 250) {
        size_t n = jb_tsink_count(sink);
        for (size_t i = 0; i < n && !delivered; i++) {
            jb_treq r;
            if (!jb_tsink_get(sink, i, &r))
                continue;
            const char *id = jb_treq_header(&r, "ce-id");
            const char *ext = jb_treq_header(&r, "ce-myext");
            delivered = r.status == 200 && id != NULL && strcmp(id, "dlq-1") == 0 && ext != NULL &&
                        ext[0] == '\0' && jb_treq_header(&r, "ce-errordata") == NULL;
            jb_treq_free(&r);
        }
        if (!delivered)
            jb_sleep_ms(250);
    }
    CU_ASSERT(delivered);
    denv_dump_log(d);
    jb_tproc_signal(d, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(d, 20000), 0);
    jb_tproc_stop(d);
    jb_tsink_stop(sink);
}

/* Kyma's exact types with '*' or '>' inside a token, and a Kyma source, through
 * `jetbridge sub apply` and the dispatcher: valid, and NATS takes the literal
 * filter subjects; a wildcard token is refused with its message. */
static void test_kyma_types_through_cli(void)
{
    char dir[] = "/tmp/jb-integrity-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/subs.yaml", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
            "metadata: {name: exact-literal, namespace: default}\n"
            "spec:\n  sink: %s\n  typeMatching: exact\n"
            "  types: [\"order.cre-\xc3\xa4+t*ed.v2\", \"a.b>c.v1\"]\n---\n"
            "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
            "metadata: {name: system-prod, namespace: default}\n"
            "spec:\n  sink: %s\n  source: \"system>prod\"\n  types: [order.created.v1]\n",
            jb_tsink_url(env.sink), jb_tsink_url(env.sink));
    fclose(f);
    const char *cenv[] = {env.url_env, NULL};
    const char *argv[] = {"sub", "apply", "-f", path, NULL};
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL(jb_trun_capture(argv, cenv, &out, &err, 30000), 0);
    CU_ASSERT_PTR_NULL(err != NULL ? strstr(err, "Invalid value") : NULL);
    free(out);
    free(err);
    jb_tproc *d = denv_dispatcher(&env, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT(wait_consumer("exact-literal", "kyma.order.cre-\xc3\xa4+t*ed.v2"));
    CU_ASSERT(wait_consumer("exact-literal", "kyma.a.b>c.v1"));
    CU_ASSERT(wait_consumer("system-prod", "kyma.systemprod.order.created.v1"));
    /* A token that is exactly a wildcard stays refused. */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
            "metadata: {name: exact-wild, namespace: default}\n"
            "spec:\n  sink: %s\n  typeMatching: exact\n  types: [order.*.v1]\n",
            jb_tsink_url(env.sink));
    fclose(f);
    out = err = NULL;
    jb_trun_capture(argv, cenv, &out, &err, 30000);
    CU_ASSERT_PTR_NOT_NULL(err != NULL ? strstr(err, "spec.types: Invalid value: \"order.*.v1\": "
                                                     "must not contain NATS wildcard tokens")
                                       : NULL);
    free(out);
    free(err);
    unlink(path);
    rmdir(dir);
    jb_tproc_signal(d, SIGTERM);
    CU_ASSERT_EQUAL(jb_tproc_wait(d, 20000), 0);
    jb_tproc_stop(d);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"every attribute of every acknowledged event arrives byte for byte",
         test_every_attribute_arrives},
        {"an empty sink answer: dead letter lists its subject, replay republishes",
         test_empty_answer_dead_letter},
        {"exact types with * or > inside a token and Kyma sources: sub apply, consumers",
         test_kyma_types_through_cli},
    };
    return jb_cunit_main("integration_integrity", suite_init, suite_cleanup, cases,
                         JB_CASES_N(cases));
}

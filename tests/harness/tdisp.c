/* The dispatcher suites' environment (test_disp_env.h). */
#include "test_disp_env.h"

bool denv_connect(denv *e)
{
    natsOptions *o = NULL;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, jb_tnats_url(e->nats));
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 100);
    natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    natsStatus s = natsConnection_Connect(&e->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return false;
    return natsConnection_JetStream(&e->js, e->nc, NULL) == NATS_OK;
}

bool denv_start(denv *e)
{
    memset(e, 0, sizeof(*e));
    e->nats = jb_tnats_start();
    e->sink = jb_tsink_start();
    if (e->nats == NULL || e->sink == NULL)
        return false;
    snprintf(e->url_env, sizeof(e->url_env), "NATS_URL=%s", jb_tnats_url(e->nats));
    e->cfg = jb_cfg_defaults();
    free(e->cfg->nats_url);
    e->cfg->nats_url = strdup(jb_tnats_url(e->nats));
    if (!denv_connect(e))
        return false;
    jb_err err = {{0}};
    if (jb_sub_ensure_stream(e->cfg, e->js, &err) != JB_OK) {
        fprintf(stderr, "ensure stream: %s\n", err.msg);
        return false;
    }
    return true;
}

void denv_stop(denv *e)
{
    if (e->js != NULL)
        jsCtx_Destroy(e->js);
    if (e->nc != NULL)
        natsConnection_Destroy(e->nc);
    jb_tsink_stop(e->sink);
    jb_tnats_stop(e->nats);
    jb_cfg_destroy(e->cfg);
    memset(e, 0, sizeof(*e));
}

bool denv_apply(denv *e, const char *name, const char *type, const char *config, const char *sink)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},"
             "\"spec\":{\"sink\":\"%s\",\"source\":\"myapp\",\"types\":[\"%s\"],"
             "\"config\":{%s}}}",
             name, sink != NULL ? sink : jb_tsink_url(e->sink), type, config != NULL ? config : "");
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_sub_store *st = NULL;
    jb_sub_apply_result res;
    bool ok = jb_sub_parse(buf, strlen(buf), "test", NULL, &v, &err) == JB_OK && v.n == 1 &&
              jb_sub_store_open(e->cfg, e->js, &st, &err) == JB_OK &&
              jb_sub_store_put(st, v.items[0], &res, &err) == JB_OK;
    if (!ok)
        fprintf(stderr, "apply %s: %s\n", name, err.msg);
    jb_sub_store_close(st);
    jb_sub_vec_clear(&v);
    return ok;
}

void denv_consumer(const char *name, const char *type, char out[33])
{
    char subject[256];
    snprintf(subject, sizeof(subject), "kyma.myapp.%s", type);
    jb_sub_consumer_name("default", name, subject, out);
}

bool denv_wait_consumer(denv *e, const char *name, const char *type, int timeout_ms)
{
    char consumer[33];
    denv_consumer(name, type, consumer);
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, e->js, "sap", consumer, NULL, NULL) == NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return true;
        }
        jb_sleep_ms(100);
    }
    return false;
}

jb_tproc *denv_dispatcher(denv *e, int *admin_port, const char *const *extra)
{
    int port = jb_free_port();
    char metrics[64];
    snprintf(metrics, sizeof(metrics), "METRICS_ADDR=127.0.0.1:%d", port);
    const char *env[24] = {e->url_env, metrics, "APP_LOG_LEVEL=debug", "APP_LOG_FORMAT=text",
                           "RECONNECT_WAIT=200ms"};
    size_t n = 5;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {"dispatcher", NULL};
    jb_tproc *p = jb_tproc_start(argv, env, port);
    if (admin_port != NULL)
        *admin_port = port;
    return p;
}

bool denv_publish(denv *e, const char *type, const char *id, const char *data,
                  const char *traceparent)
{
    char subject[256];
    snprintf(subject, sizeof(subject), "kyma.myapp.%s", type);
    jb_ce *ce = jb_ce_create();
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", id);
    jb_ce_set_str(ce, "source", "myapp");
    jb_ce_set_str(ce, "type", subject);
    jb_ce_set_str(ce, "originaltype", type);
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    if (traceparent != NULL)
        jb_ce_set_str(ce, "traceparent", traceparent);
    jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
    natsMsg *m = NULL;
    bool ok = jb_ce_to_nats(ce, subject, id, &m) == JB_OK &&
              js_PublishMsg(NULL, e->js, m, NULL, NULL) == NATS_OK;
    natsMsg_Destroy(m);
    jb_ce_destroy(ce);
    return ok;
}

size_t denv_publish_n(denv *e, const char *type, const char *prefix, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        char id[64], data[64];
        snprintf(id, sizeof(id), "%s-%zu", prefix, i);
        snprintf(data, sizeof(data), "{\"i\":%zu}", i);
        ok += denv_publish(e, type, id, data, NULL);
    }
    return ok;
}

size_t denv_distinct_ok(denv *e, const char *prefix, size_t n, size_t *dups)
{
    unsigned char *seen = calloc(n, 1);
    size_t distinct = 0, d = 0, total = jb_tsink_count(e->sink);
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < total; i++) {
        jb_treq r;
        if (!jb_tsink_get(e->sink, i, &r))
            continue;
        const char *id = jb_treq_header(&r, "ce-id");
        if (r.status >= 200 && r.status < 300 && id != NULL && strncmp(id, prefix, plen) == 0 &&
            id[plen] == '-') {
            size_t k = strtoul(id + plen + 1, NULL, 10);
            if (k < n) {
                if (seen[k])
                    d++;
                else
                    distinct++;
                seen[k] = 1;
            }
        }
        jb_treq_free(&r);
    }
    free(seen);
    if (dups != NULL)
        *dups = d;
    return distinct;
}

size_t denv_wait_distinct(denv *e, const char *prefix, size_t n, int timeout_ms)
{
    size_t got = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        got = denv_distinct_ok(e, prefix, n, NULL);
        if (got >= n)
            break;
        jb_sleep_ms(200);
    }
    return got;
}

cJSON *denv_dlq_list(denv *e)
{
    const char *env[] = {e->url_env, NULL};
    const char *argv[] = {"dlq", "list", "-o", "json", NULL};
    char *out = NULL;
    int rc = jb_trun(argv, env, &out, 20000);
    cJSON *j = rc == 0 && out != NULL ? cJSON_Parse(out) : NULL;
    if (j == NULL)
        fprintf(stderr, "dlq list rc=%d out=%s\n", rc, out != NULL ? out : "");
    free(out);
    return j;
}

cJSON *denv_dlq_wait(denv *e)
{
    cJSON *dlq = NULL;
    for (int i = 0; i < 50; i++) {
        cJSON_Delete(dlq);
        dlq = denv_dlq_list(e);
        if (cJSON_GetArraySize(dlq) > 0)
            break;
        jb_sleep_ms(200);
    }
    return dlq;
}

void denv_dump_log(jb_tproc *p)
{
    char *log = jb_tproc_log(p);
    if (log != NULL && getenv("JB_TEST_LOGS") != NULL)
        fprintf(stderr, "---- dispatcher log ----\n%s\n------------------------\n", log);
    free(log);
}

int denv_main(const char *suite, const jb_test_case *cases, size_t n)
{
    const char *only = getenv("JB_CASE");
    if (only == NULL || only[0] == '\0')
        return jb_cunit_main(suite, NULL, NULL, cases, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, only) == 0)
            return jb_cunit_main(suite, NULL, NULL, &cases[i], 1);
    fprintf(stderr, "no case %s\n", only);
    return 1;
}

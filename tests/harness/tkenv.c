/* The Kubernetes-mode suites' helpers (test_kube_env.h). */
#include "test_kube_env.h"

int kctl(kenv *e, const char *args, const char *in, char **out)
{
    char *o = NULL;
    int rc = jb_tkube_kubectl(e->k, args, in, &o);
    if (out != NULL)
        *out = o;
    else
        free(o);
    return rc;
}

int kapply_sub(kenv *e, const char *ns, const char *name, const char *sink, const char *type)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "apiVersion: eventing.kyma-project.io/v1alpha2\nkind: Subscription\n"
             "metadata: {name: %s, namespace: %s}\n"
             "spec:\n  sink: %s\n  source: shop\n  types: [%s]\n",
             name, ns, sink, type);
    return kctl(e, "apply -f -", doc, NULL);
}

cJSON *kget(kenv *e, const char *args)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof(cmd), "get %s -o json", args);
    cJSON *j = NULL;
    if (kctl(e, cmd, NULL, &out) == 0 && out != NULL) {
        const char *brace = strchr(out, '{'); /* skip a version-skew warning line */
        j = brace ? cJSON_Parse(brace) : NULL;
    }
    free(out);
    return j;
}

double metric(int port, const char *series)
{
    char *body = NULL;
    size_t len = 0;
    if (jb_http(port, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL) != 200)
        return -1;
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = body; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    free(body);
    return v;
}

double metric_sum(int port, const char *family, const char *contains)
{
    char *body = NULL;
    size_t len = 0;
    if (jb_http(port, "GET", "/metrics", NULL, NULL, 0, &body, &len, NULL) != 200)
        return -1;
    double v = 0;
    size_t n = strlen(family);
    for (const char *p = body; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (strncmp(p, family, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
            char line[1024];
            snprintf(line, sizeof(line), "%.*s", (int)(ll < 1023 ? ll : 1023), p);
            if (contains == NULL || strstr(line, contains) != NULL) {
                const char *sp = strrchr(line, ' ');
                if (sp != NULL)
                    v += strtod(sp + 1, NULL);
            }
        }
    }
    free(body);
    return v;
}

int readyz(int port, char *why, size_t cap)
{
    char *body = NULL;
    size_t len = 0;
    int code = jb_http(port, "GET", "/readyz", NULL, NULL, 0, &body, &len, NULL);
    if (why != NULL)
        snprintf(why, cap, "%s", body ? body : "");
    free(body);
    return code;
}

int sub_ready(kenv *e, const char *ns, const char *name)
{
    char args[256];
    snprintf(args, sizeof(args), "subscription -n %s %s", ns, name);
    cJSON *j = kget(e, args);
    const cJSON *r =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "status"), "ready");
    int v = cJSON_IsBool(r) ? cJSON_IsTrue(r) : -1;
    cJSON_Delete(j);
    return v;
}

bool wait_ready(kenv *e, const char *ns, const char *name, int want, int ms)
{
    for (int t = 0; t < ms; t += 500) {
        if (sub_ready(e, ns, name) == want)
            return true;
        jb_sleep_ms(500);
    }
    return false;
}

bool get_column_ready(kenv *e, const char *ns, const char *name, char *out, size_t cap)
{
    char args[256], *o = NULL;
    snprintf(args, sizeof(args), "get subscriptions -n %s %s --no-headers", ns, name);
    bool ok = kctl(e, args, NULL, &o) == 0 && o != NULL;
    out[0] = '\0';
    if (ok) {
        const char *line = strstr(o, name);
        const char *v = line ? line + strlen(name) : NULL;
        while (v != NULL && *v == ' ')
            v++;
        size_t n = v ? strcspn(v, " \n") : 0;
        snprintf(out, cap, "%.*s", (int)n, v ? v : "");
    }
    free(o);
    return ok;
}

bool consumer_exists(const char *nats_url, const char *name)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    bool found = false;
    if (natsConnection_ConnectTo(&nc, nats_url) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK) {
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, js, "sap", name, NULL, NULL) == NATS_OK) {
            found = true;
            jsConsumerInfo_Destroy(ci);
        }
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return found;
}

bool wait_consumer(const char *nats_url, const char *name, bool want, int ms)
{
    for (int t = 0; t < ms; t += 500) {
        if (consumer_exists(nats_url, name) == want)
            return true;
        jb_sleep_ms(500);
    }
    return false;
}

bool wait_log(jb_tproc *p, const char *needle, int ms)
{
    for (int t = 0; t < ms; t += 250) {
        char *log = jb_tproc_log(p);
        bool found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        jb_sleep_ms(250);
    }
    return false;
}

size_t count_in_log(jb_tproc *p, const char *needle)
{
    char *log = jb_tproc_log(p);
    size_t n = 0;
    for (const char *s = log; s != NULL && (s = strstr(s, needle)) != NULL; s += strlen(needle))
        n++;
    free(log);
    return n;
}

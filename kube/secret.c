/* Sink credentials from Kubernetes Secrets: one GET of
 * /api/v1/namespaces/<ns>/secrets/<name> and the base64 value of one key of its
 * `data`. Only `get` on secrets is needed (never list or watch), so jetbridge reads
 * no Secret that no Subscription names. The answer holds every key of the Secret:
 * it is cleared before it is freed, and no message ever quotes a value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_internal.h"
#include "proto/jb_ce.h"

/* A Secret is at most 1 MiB of data; its JSON (base64, metadata) stays below this. */
#define SECRET_ANSWER_MAX (2 * 1024 * 1024)

struct jb_kube_secrets {
    jb_kube_config *kc;
    kube_client *client;
};

jb_status jb_kube_secrets_create(const struct jb_cfg *cfg, const atomic_bool *stop,
                                 jb_kube_secrets **out, jb_err *err)
{
    jb_kube_secrets *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    jb_status st = jb_kube_config_load(cfg, &s->kc, err);
    if (st == JB_OK && (s->client = kube_client_create(s->kc, cfg, NULL, stop)) == NULL)
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    if (st != JB_OK) {
        jb_kube_secrets_destroy(s);
        return st;
    }
    *out = s;
    return JB_OK;
}

void jb_kube_secrets_destroy(jb_kube_secrets *s)
{
    if (s == NULL)
        return;
    kube_client_destroy(s->client);
    jb_kube_config_destroy(s->kc);
    free(s);
}

static void clear_resp(kube_resp *r)
{
    if (r->body != NULL)
        explicit_bzero(r->body, r->len);
    kube_resp_free(r);
}

jb_status jb_kube_secret_value(const char *json, size_t json_len, const char *what, const char *key,
                               char **value, size_t *len, jb_err *err)
{
    cJSON *j = cJSON_ParseWithLength(json, json_len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, key);
    jb_status st;
    uint8_t *raw = NULL;
    size_t n = 0;
    if (j == NULL) {
        st = jb_err_set(err, JB_ERR_IO, "Secret %s: the API server's answer is not JSON", what);
    } else if (!cJSON_IsString(v)) {
        st = jb_err_set(err, JB_ERR_NOT_FOUND, "Secret %s has no key %s", what, key);
    } else if (jb_base64_decode(v->valuestring, strlen(v->valuestring), &raw, &n) != JB_OK) {
        st = jb_err_set(err, JB_ERR_INVALID, "Secret %s: key %s is not base64", what, key);
    } else if (n > JB_SECRET_MAX || memchr(raw, '\0', n) != NULL) {
        st = jb_err_set(err, JB_ERR_INVALID,
                        "Secret %s: key %s is longer than %d bytes or holds a NUL byte", what, key,
                        JB_SECRET_MAX);
    } else {
        /* As for files: a trailing line break (kubectl create secret --from-file) goes. */
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
            n--;
        char *copy = malloc(n + 1);
        if (copy == NULL) {
            st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        } else {
            memcpy(copy, raw, n);
            copy[n] = '\0';
            *value = copy;
            *len = n;
            st = JB_OK;
        }
    }
    if (raw != NULL) {
        explicit_bzero(raw, n);
        free(raw);
    }
    if (v != NULL && cJSON_IsString(v))
        explicit_bzero(v->valuestring, strlen(v->valuestring));
    cJSON_Delete(j);
    return st;
}

jb_status jb_kube_secret_read(jb_kube_secrets *s, const char *ns, const char *name, const char *key,
                              char **value, size_t *len, jb_err *err)
{
    char what[520];
    snprintf(what, sizeof(what), "%s/%s", ns, name);
    char *ens = kube_escape(ns), *ename = kube_escape(name);
    char path[1200];
    kube_resp r = {0};
    jb_status st;
    if (ens == NULL || ename == NULL) {
        st = jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ens, ename);
    st = kube_do(s->client, "get", "secrets", "GET", path, NULL, NULL, SECRET_ANSWER_MAX, &r, err);
    if (st != JB_OK) {
        char why[sizeof(err->msg)]; /* vsnprintf must not read what it writes */
        snprintf(why, sizeof(why), "%s", err->msg);
        jb_err_set(err, st, "Secret %s: %s", what, why);
        goto out;
    }
    if (r.code == 200)
        st = jb_kube_secret_value(r.body, r.len, what, key, value, len, err);
    else if (r.code == 404)
        st = jb_err_set(err, JB_ERR_NOT_FOUND, "Secret %s not found", what);
    else if (r.code == 403)
        st = jb_err_set(err, JB_ERR_CONFIG,
                        "Secret %s: forbidden by RBAC (grant get on secrets in namespace %s)", what,
                        ns);
    else if (r.code == 401)
        st = jb_err_set(err, JB_ERR_CONFIG,
                        "Secret %s: the API server refused jetbridge's credentials", what);
    else
        st = jb_err_set(err, JB_ERR_IO, "Secret %s: the API server answered %ld", what, r.code);
out:
    clear_resp(&r);
    free(ens);
    free(ename);
    return st;
}

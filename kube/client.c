/* The HTTP side of the API client: one curl easy handle per thread, the bearer token
 * re-read from its file on every request (bound service-account tokens rotate), TLS
 * from the kubeconfig, a request counter, and a rate-limited log of refusals. The
 * Authorization header is built here and nowhere else, and never logged. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_internal.h"

#define MAX_TOKEN_BYTES 16384

struct kube_client {
    const jb_kube_config *kc;
    CURL *h;
    jb_metric *requests;
    const atomic_bool *stop;
    int64_t timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

kube_client *kube_client_create(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                                const atomic_bool *stop)
{
    pthread_once(&curl_once, curl_init_once);
    kube_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->kc = kc;
    c->requests = requests;
    c->stop = stop;
    c->timeout_ms = cfg->kube_request_timeout_ms;
    if ((c->h = curl_easy_init()) == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void kube_client_destroy(kube_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}

void kube_resp_free(kube_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *kube_escape(const char *s)
{
    CURL *h = curl_easy_init();
    char *e = h ? curl_easy_escape(h, s, 0) : NULL;
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    if (h != NULL)
        curl_easy_cleanup(h);
    return copy;
}

/* ------------------------------------------------------- refusals, logged */

#define DENIED_SLOTS       16
#define DENIED_INTERVAL_NS (5 * INT64_C(1000000000))

static pthread_mutex_t denied_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char key[160];
    int64_t at;
} denied[DENIED_SLOTS];

/* True when the line named key was not logged in the last DENIED_INTERVAL_NS. */
static bool log_due(const char *key)
{
    int64_t now = jb_now_monotonic_ns();
    bool log = true;
    pthread_mutex_lock(&denied_mu);
    size_t slot = 0;
    for (size_t i = 0; i < DENIED_SLOTS; i++) {
        if (strcmp(denied[i].key, key) == 0) {
            slot = i;
            log = now - denied[i].at >= DENIED_INTERVAL_NS;
            break;
        }
        if (denied[i].at < denied[slot].at)
            slot = i;
    }
    if (log) {
        snprintf(denied[slot].key, sizeof(denied[slot].key), "%s", key);
        denied[slot].at = now;
    }
    pthread_mutex_unlock(&denied_mu);
    return log;
}

void kube_log_denied(const char *verb, const char *resource, long code)
{
    char key[160];
    snprintf(key, sizeof(key), "%s %s %ld", verb, resource, code);
    if (!log_due(key))
        return;
    if (code == 403)
        jb_log(JB_LOG_ERROR, "kube", "forbidden by RBAC: grant this verb on this resource", "verb",
               verb, "resource", resource, NULL);
    else
        jb_log(JB_LOG_ERROR, "kube",
               "unauthorized: the API server refused the credentials (invalid or expired token "
               "or client certificate)",
               "verb", verb, "resource", resource, NULL);
}

const char *kube_refusal(long code)
{
    return code == 403   ? " (forbidden by RBAC)"
           : code == 401 ? " (unauthorized: the credentials are invalid or expired)"
                         : "";
}

/* ------------------------------------------------------------ requests */

/* The bearer token: the file's content when a file is named (re-read each time), else
 * the inline token. *out is malloc'd (NULL: none). A named file that cannot be read
 * fails the request (JB_ERR_CONFIG, the path in the message, logged every few seconds):
 * sent without it, the request would come back as the anonymous user's refusal, which
 * names RBAC instead of the missing file (a pod without its token mount). */
static jb_status read_token(const jb_kube_config *kc, char **out, jb_err *err)
{
    *out = NULL;
    if (kc->token_file != NULL) {
        FILE *f = fopen(kc->token_file, "rb");
        if (f == NULL) {
            const char *why = strerror(errno);
            char key[160];
            snprintf(key, sizeof(key), "token file %.140s", kc->token_file);
            if (log_due(key))
                jb_log(JB_LOG_ERROR, "kube", "cannot read the token file", "path", kc->token_file,
                       "error", why, NULL);
            return jb_err_set(err, JB_ERR_CONFIG, "token file %s: %s", kc->token_file, why);
        }
        char *b = malloc(MAX_TOKEN_BYTES + 1);
        size_t n = b ? fread(b, 1, MAX_TOKEN_BYTES, f) : 0;
        fclose(f);
        if (b == NULL)
            return JB_ERR_NOMEM;
        while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
            n--;
        b[n] = '\0';
        *out = b;
        return JB_OK;
    }
    if (kc->token != NULL && (*out = strdup(kc->token)) == NULL)
        return JB_ERR_NOMEM;
    return JB_OK;
}

static void set_tls(kube_client *c)
{
    const jb_kube_config *kc = c->kc;
    if (kc->insecure) {
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (kc->ca_data != NULL) {
        struct curl_blob b = {kc->ca_data, kc->ca_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(c->h, CURLOPT_CAINFO_BLOB, &b);
    } else if (kc->ca_file != NULL) {
        curl_easy_setopt(c->h, CURLOPT_CAINFO, kc->ca_file);
    }
    if (kc->cert_data != NULL) {
        struct curl_blob b = {kc->cert_data, kc->cert_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(c->h, CURLOPT_SSLCERT_BLOB, &b);
    } else if (kc->cert_file != NULL) {
        curl_easy_setopt(c->h, CURLOPT_SSLCERT, kc->cert_file);
    }
    if (kc->key_data != NULL) {
        struct curl_blob b = {kc->key_data, kc->key_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(c->h, CURLOPT_SSLKEY_BLOB, &b);
    } else if (kc->key_file != NULL) {
        curl_easy_setopt(c->h, CURLOPT_SSLKEY, kc->key_file);
    }
}

typedef struct sink {
    kube_resp *r;
    size_t cap;
    size_t max;
    bool too_large;
    jb_kube_watch_parser *parser;
    bool parser_stopped;
    kube_client *c;
    atomic_bool *connected;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (s->parser != NULL) {
        if (!jb_kube_watch_feed(s->parser, data, n)) {
            s->parser_stopped = true;
            return 0;
        }
        return n;
    }
    if (s->r->len + n > s->max) {
        s->too_large = true;
        return 0;
    }
    if (s->r->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->r->len + n + 1)
            cap *= 2;
        char *b = realloc(s->r->body, cap);
        if (b == NULL)
            return 0;
        s->r->body = b;
        s->cap = cap;
    }
    memcpy(s->r->body + s->r->len, data, n);
    s->r->len += n;
    s->r->body[s->r->len] = '\0';
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    sink *s = ud;
    if (s->connected != NULL && !atomic_load(s->connected)) {
        long code = 0;
        curl_easy_getinfo(s->c->h, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200)
            atomic_store(s->connected, true);
    }
    return s->c->stop != NULL && atomic_load(s->c->stop) ? 1 : 0;
}

static void count(kube_client *c, const char *verb, const char *resource, long code)
{
    char codes[16];
    snprintf(codes, sizeof(codes), "%ld", code);
    const char *labels[] = {verb, resource, codes};
    jb_metric_add(c->requests, labels, 1);
}

static jb_status perform(kube_client *c, const char *verb, const char *resource, const char *method,
                         const char *path, const char *ctype, const char *body, sink *s, bool watch,
                         long *code, jb_err *err)
{
    curl_easy_reset(c->h);
    size_t ulen = strlen(c->kc->server) + strlen(path) + 1;
    char *url = malloc(ulen);
    char *token = NULL;
    struct curl_slist *hdrs = NULL;
    jb_status st = JB_ERR_NOMEM;
    if (url == NULL)
        goto out;
    snprintf(url, ulen, "%s%s", c->kc->server, path);
    if ((st = read_token(c->kc, &token, err)) != JB_OK)
        goto out;
    st = JB_ERR_NOMEM;
    if (token != NULL && token[0] != '\0') {
        size_t n = strlen(token) + 32;
        char *h = malloc(n);
        if (h == NULL)
            goto out;
        snprintf(h, n, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, h);
        explicit_bzero(h, n);
        free(h);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (ctype != NULL) {
        char h[128];
        snprintf(h, sizeof(h), "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    if (!watch)
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPIDLE, 15L);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, s);
    set_tls(c);
    CURLcode cc = curl_easy_perform(c->h);
    *code = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, code);
    count(c, verb, resource, *code);
    if (*code == 401 || *code == 403)
        kube_log_denied(verb, resource, *code);
    if (s->too_large)
        st = jb_err_set(err, JB_ERR_TOO_LARGE, "%s %s: answer larger than %zu bytes", verb,
                        resource, s->max);
    else if (s->parser_stopped || cc == CURLE_OK)
        st = JB_OK;
    else if (cc == CURLE_ABORTED_BY_CALLBACK)
        st = jb_err_set(err, JB_ERR_IO, "%s %s: stopped", verb, resource);
    else
        st = jb_err_set(err, JB_ERR_IO, "%s %s: %s", verb, resource, curl_easy_strerror(cc));
out:
    curl_slist_free_all(hdrs); /* the header text held the token: curl keeps a copy only */
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    free(url);
    return st;
}

jb_status kube_do(kube_client *c, const char *verb, const char *resource, const char *method,
                  const char *path, const char *content_type, const char *body, size_t max_body,
                  kube_resp *out, jb_err *err)
{
    kube_resp r = {0};
    sink s = {.r = &r, .max = max_body, .c = c};
    long code = 0;
    jb_status st =
        perform(c, verb, resource, method, path, content_type, body, &s, false, &code, err);
    if (st != JB_OK) {
        kube_resp_free(&r);
        return st;
    }
    if (r.body == NULL && (r.body = strdup("")) == NULL)
        return JB_ERR_NOMEM;
    r.code = code;
    *out = r;
    return JB_OK;
}

jb_status kube_watch(kube_client *c, const char *resource, const char *path,
                     jb_kube_watch_parser *p, atomic_bool *connected, long *code, jb_err *err)
{
    kube_resp r = {0};
    sink s = {.r = &r, .parser = p, .c = c, .connected = connected};
    jb_status st = perform(c, "watch", resource, "GET", path, NULL, NULL, &s, true, code, err);
    kube_resp_free(&r);
    return st;
}

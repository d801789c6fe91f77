/*
 * Where the keys come from (see jb_auth.h): a file, re-read when its identity
 * (inode, size, mtime) changes, or an https URL fetched with libcurl (TLS
 * verified against the system's CAs plus INGRESS_JWKS_CA, no redirects, at most
 * JB_AUTH_JWKS_MAX bytes, 10 s). A failed load keeps the keys already loaded.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jb_auth.h"
#include "common/jb_common.h"

struct jb_auth_source {
    char *where;
    char *ca; /* NULL: the system's CAs only */
    bool url;
    pthread_mutex_t mu; /* guards keys */
    jb_auth_jwks *keys;
    struct stat st;  /* the file version loaded */
    int64_t next_ns; /* next scheduled refresh */
    int64_t last_fetch_ns;
    atomic_bool missed; /* a kid was not found */
    int64_t last_warn_ns;
};

static jb_status fetch_url(const char *url, const char *ca, jb_capbuf *b, jb_err *err)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (ca != NULL) {
        /* CURLOPT_CAINFO alone would replace the system's CAs: the system's
         * directory stays trusted beside it (as SINK_CA_BUNDLE does). */
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, jb_capbuf_append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    CURLcode c = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (b->too_big)
        return jb_err_set(err, JB_ERR_INVALID, "key set larger than %d bytes", JB_AUTH_JWKS_MAX);
    if (c != CURLE_OK)
        return jb_err_set(err, JB_ERR_IO, "%s", curl_easy_strerror(c));
    if (code != 200)
        return jb_err_set(err, JB_ERR_IO, "HTTP status %ld", code);
    return JB_OK;
}

static jb_status read_file(const char *path, jb_capbuf *b, struct stat *st, jb_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), st) != 0) {
        if (f != NULL)
            fclose(f);
        return jb_err_set(err, JB_ERR_IO, "cannot read %s", path);
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (jb_capbuf_append(chunk, 1, n, b) != n)
            break;
    fclose(f);
    if (b->too_big)
        return jb_err_set(err, JB_ERR_INVALID, "%s: larger than %d bytes", path, JB_AUTH_JWKS_MAX);
    return JB_OK;
}

/* Loads once; on success swaps the keys in. */
static jb_status load(jb_auth_source *s, jb_err *err)
{
    jb_capbuf b = {.max = JB_AUTH_JWKS_MAX};
    struct stat st = {0};
    jb_status rc = s->url ? fetch_url(s->where, s->ca, &b, err) : read_file(s->where, &b, &st, err);
    jb_auth_jwks *k = NULL;
    if (rc == JB_OK)
        rc = jb_auth_jwks_parse(b.data != NULL ? b.data : "", b.len, &k, err);
    free(b.data);
    if (rc != JB_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    jb_auth_jwks *old = s->keys;
    s->keys = k;
    s->st = st;
    pthread_mutex_unlock(&s->mu);
    jb_auth_jwks_unref(old);
    return JB_OK;
}

jb_status jb_auth_source_create(const char *where, const char *ca, jb_auth_source **out,
                                jb_err *err)
{
    jb_auth_source *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->where = strdup(where)) == NULL ||
        (ca != NULL && ca[0] != '\0' && (s->ca = strdup(ca)) == NULL)) {
        if (s != NULL)
            free(s->where);
        free(s);
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    s->url = strncmp(where, "https://", 8) == 0;
    if (!s->url && strstr(where, "://") != NULL) {
        jb_auth_source_destroy(s);
        return jb_err_set(err, JB_ERR_CONFIG, "INGRESS_JWKS: only a file or an https:// URL");
    }
    if (s->ca != NULL && access(s->ca, R_OK) != 0) {
        jb_auth_source_destroy(s);
        return jb_err_set(err, JB_ERR_CONFIG, "INGRESS_JWKS_CA: cannot read %s", ca);
    }
    if (!s->url) {
        jb_status rc = load(s, err);
        if (rc != JB_OK) {
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", err->msg);
            jb_auth_source_destroy(s);
            return jb_err_set(err, JB_ERR_CONFIG, "INGRESS_JWKS: %s", why);
        }
    }
    *out = s;
    return JB_OK;
}

void jb_auth_source_destroy(jb_auth_source *s)
{
    if (s == NULL)
        return;
    jb_auth_jwks_unref(s->keys);
    pthread_mutex_destroy(&s->mu);
    free(s->where);
    free(s->ca);
    free(s);
}

static bool file_changed(const jb_auth_source *s)
{
    struct stat st;
    if (stat(s->where, &st) != 0)
        return false;
    return st.st_ino != s->st.st_ino || st.st_size != s->st.st_size ||
           st.st_mtim.tv_sec != s->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != s->st.st_mtim.tv_nsec;
}

void jb_auth_source_refresh(jb_auth_source *s)
{
    if (s == NULL)
        return;
    int64_t now = jb_now_monotonic_ns();
    bool soon = atomic_load(&s->missed) &&
                now - s->last_fetch_ns >= (int64_t)JB_AUTH_JWKS_MIN_REFETCH_S * 1000000000;
    bool due = now >= s->next_ns;
    if (!s->url) {
        /* A local file is cheap to check: about once a second. */
        if (!due)
            return;
        s->next_ns = now + 1000000000LL;
        if (!file_changed(s))
            return;
    } else if (!due && !soon) {
        return;
    }
    atomic_store(&s->missed, false);
    s->last_fetch_ns = now;
    jb_err err = {{0}};
    jb_status rc = load(s, &err);
    if (s->url)
        s->next_ns = now + (rc == JB_OK ? JB_AUTH_JWKS_REFRESH_S : JB_AUTH_JWKS_MIN_REFETCH_S) *
                               1000000000LL;
    if (rc != JB_OK && now - s->last_warn_ns > 60000000000LL) {
        jb_log(JB_LOG_WARN, "auth", "cannot load INGRESS_JWKS; keeping the keys loaded before",
               "error", err.msg, NULL);
        s->last_warn_ns = now;
    } else if (rc == JB_OK) {
        jb_log(JB_LOG_INFO, "auth", "JWKS loaded", NULL);
    }
}

jb_auth_jwks *jb_auth_source_get(jb_auth_source *s)
{
    pthread_mutex_lock(&s->mu);
    jb_auth_jwks *k = s->keys;
    if (k != NULL)
        jb_auth_jwks_ref(k);
    pthread_mutex_unlock(&s->mu);
    return k;
}

void jb_auth_source_kid_missed(jb_auth_source *s)
{
    atomic_store(&s->missed, true);
}

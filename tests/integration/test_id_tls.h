/*
 * Shared by the TLS and auth suites: certificates made by openssl in a temporary
 * directory (tests/integration/id_certs.sh) and a libcurl HTTPS client.
 */
#ifndef TEST_ID_TLS_H
#define TEST_ID_TLS_H

#include <curl/curl.h>

#include "test_id_util.h"

static char id_certdir[] = "/tmp/jb-idcerts-XXXXXX";

/* Makes the CA, server and client certificates (CNs in names, space-separated). */
static inline bool id_make_certs(const char *names)
{
    if (mkdtemp(id_certdir) == NULL)
        return false;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sh %s/tests/integration/id_certs.sh %s %s", JB_SOURCE_DIR,
             id_certdir, names);
    return system(cmd) == 0;
}

static inline void id_cert_path(char *out, size_t cap, const char *file)
{
    snprintf(out, cap, "%s/%s", id_certdir, file);
}

typedef struct id_resp {
    long code; /* -1: no HTTP answer (connection or handshake failed) */
    char body[4096];
    size_t blen;
    char headers[4096];
    size_t hlen;
} id_resp;

static size_t id_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    id_resp *r = ud;
    size_t len = sz * n, room = sizeof(r->body) - 1 - r->blen;
    size_t k = len < room ? len : room;
    memcpy(r->body + r->blen, p, k);
    r->blen += k;
    r->body[r->blen] = '\0';
    return len;
}

static size_t id_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    id_resp *r = ud;
    size_t len = sz * n, room = sizeof(r->headers) - 1 - r->hlen;
    size_t k = len < room ? len : room;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return len;
}

/* One HTTPS request to 127.0.0.1:port on handle h (reused: keep-alive). cert is a
 * client certificate base name in the cert directory ("app1") or NULL; headers
 * "Name: value" lines (NULL-terminated) or NULL; body NULL means GET. */
static inline void id_https(CURL *h, int port, const char *path, const char *cert,
                            const char *const *headers, const char *body, id_resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[512], ca[512], crt[512], key[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
    id_cert_path(ca, sizeof(ca), "ca.pem");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    if (cert != NULL) {
        char base[256];
        snprintf(base, sizeof(base), "%s.pem", cert);
        id_cert_path(crt, sizeof(crt), base);
        snprintf(base, sizeof(base), "%s.key", cert);
        id_cert_path(key, sizeof(key), base);
        curl_easy_setopt(h, CURLOPT_SSLCERT, crt);
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    } else {
        curl_easy_setopt(h, CURLOPT_SSLCERT, NULL);
        curl_easy_setopt(h, CURLOPT_SSLKEY, NULL);
    }
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, id_body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, id_header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    r->code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
}

#endif

/* Certificates and an HTTPS client for the TLS and auth suites (test_id_tls.h). */
#include "test_id_tls.h"

char id_certdir[] = "/tmp/jb-idcerts-XXXXXX";

bool id_make_certs(const char *names)
{
    if (mkdtemp(id_certdir) == NULL)
        return false;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sh %s/tests/integration/id_certs.sh %s %s", JB_SOURCE_DIR,
             id_certdir, names);
    return system(cmd) == 0;
}

void id_cert_path(char *out, size_t cap, const char *file)
{
    snprintf(out, cap, "%s/%s", id_certdir, file);
}

/* Appends what fits of p[0..len) to buf (cap bytes, *used of them taken), kept
 * NUL-terminated; returns len, so curl goes on (the rest is dropped). */
static size_t append_capped(char *buf, size_t cap, size_t *used, const char *p, size_t len)
{
    size_t room = cap - 1 - *used;
    size_t k = len < room ? len : room;
    memcpy(buf + *used, p, k);
    *used += k;
    buf[*used] = '\0';
    return len;
}

static size_t id_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    id_resp *r = ud;
    return append_capped(r->body, sizeof(r->body), &r->blen, p, sz * n);
}

static size_t id_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    id_resp *r = ud;
    return append_capped(r->headers, sizeof(r->headers), &r->hlen, p, sz * n);
}

void id_https(CURL *h, int port, const char *path, const char *cert, const char *const *headers,
              const char *body, id_resp *r)
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

/*
 * INGRESS_JWKS from an https URL, through the real binary: a loopback HTTPS server
 * in this test (OpenSSL, a certificate from a CA made by openssl, trusted through
 * INGRESS_JWKS_CA) serves the key set and counts its fetches. The keys are
 * fetched and cached (publishes do not fetch); a token naming an unknown kid
 * triggers a refetch that is rate-limited (JB_AUTH_JWKS_MIN_REFETCH_S), which is
 * how a rotated key is picked up; a failing endpoint keeps the keys loaded
 * before; a server whose certificate the publisher cannot verify gives no keys.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "../unit/auth/jwt_mint.h"
#include "auth/jb_auth.h"
#include "test_id_tls.h"

#define HEAD "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\n"

/* ------------------------------------------------- the JWKS HTTPS server */

typedef struct jwks_server {
    int fd, port;
    SSL_CTX *ctx;
    pthread_t tid;
    atomic_bool stop;
    atomic_int fetches;
    pthread_mutex_t mu; /* guards doc and status */
    char doc[4096];
    int status;
} jwks_server;

static void serve_one(jwks_server *s, int c)
{
    SSL *ssl = SSL_new(s->ctx);
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL_set_fd(ssl, c);
    char req[4096];
    size_t n = 0;
    if (SSL_accept(ssl) == 1) {
        /* The request head, up to its empty line. */
        while (n < sizeof(req) - 1) {
            int r = SSL_read(ssl, req + n, (int)(sizeof(req) - 1 - n));
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
    }
    if (n > 0 && strstr(req, "\r\n\r\n") != NULL) {
        atomic_fetch_add(&s->fetches, 1);
        char out[5000];
        pthread_mutex_lock(&s->mu);
        int len = snprintf(out, sizeof(out),
                           "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                           "%zu\r\nConnection: close\r\n\r\n%s",
                           s->status, strlen(s->doc), s->doc);
        pthread_mutex_unlock(&s->mu);
        SSL_write(ssl, out, len);
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(c);
}

static void *server_main(void *arg)
{
    jwks_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0)
            serve_one(s, c);
    }
    return NULL;
}

static bool server_start(jwks_server *s, const char *cert, const char *key)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL || SSL_CTX_use_certificate_chain_file(s->ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM) != 1)
        return false;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(s->fd, 16) != 0 || getsockname(s->fd, (struct sockaddr *)&sa, &sl) != 0)
        return false;
    s->port = ntohs(sa.sin_port);
    s->status = 200;
    pthread_mutex_init(&s->mu, NULL);
    return pthread_create(&s->tid, NULL, server_main, s) == 0;
}

static void server_stop(jwks_server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->tid, NULL);
    close(s->fd);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
}

static void server_set(jwks_server *s, int status, const char *doc)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    snprintf(s->doc, sizeof(s->doc), "%s", doc);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ setup */

static pubenv E;
static jwks_server S;
static EVP_PKEY *k1, *k2; /* P-256 signing keys, kids "k1" and "k2" */
static char jwk1[300], jwk2[300];

static void jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    unsigned char pt[65];
    size_t pl = 0;
    char x[64], y[64];
    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &pl);
    b64url(pt + 1, 32, x);
    b64url(pt + 33, 32, y);
    snprintf(out, cap,
             "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", kid, x,
             y);
}

static void set_keys(const char *a, const char *b)
{
    char doc[1024];
    snprintf(doc, sizeof(doc), "{\"keys\":[%s%s%s]}", a, b[0] ? "," : "", b);
    server_set(&S, 200, doc);
}

/* Starts the publisher with INGRESS_JWKS at the test server; ca_file names the
 * CA it trusts for it. */
static bool start_publisher(pubenv *e, const char *ca_file)
{
    char c[512], k[512], a[512];
    id_cert_path(c, sizeof(c), "server.pem");
    id_cert_path(k, sizeof(k), "server.key");
    id_cert_path(a, sizeof(a), ca_file);
    static char env[8][600];
    snprintf(env[0], sizeof(env[0]), "NATS_URL=%s", jb_tnats_url(e->nats));
    snprintf(env[1], sizeof(env[1]), "INGRESS_PORT=%d", e->port = jb_free_port());
    snprintf(env[2], sizeof(env[2]), "METRICS_ADDR=127.0.0.1:%d", e->admin = jb_free_port());
    snprintf(env[3], sizeof(env[3]), "INGRESS_TLS_CERT=%s", c);
    snprintf(env[4], sizeof(env[4]), "INGRESS_TLS_KEY=%s", k);
    snprintf(env[5], sizeof(env[5]), "INGRESS_JWKS=https://127.0.0.1:%d/keys.json", S.port);
    snprintf(env[6], sizeof(env[6]), "INGRESS_JWKS_CA=%s", a);
    const char *all[] = {env[0],
                         env[1],
                         env[2],
                         env[3],
                         env[4],
                         env[5],
                         env[6],
                         "INGRESS_AUTH=required",
                         "JS_STREAM_RETENTION_POLICY=limits",
                         "INGRESS_JWT_ISSUER=idp",
                         "INGRESS_JWT_AUDIENCE=jetbridge",
                         NULL};
    const char *argv[] = {"publisher", NULL};
    e->proc = jb_tproc_start(argv, all, e->port);
    return e->proc != NULL && pe_wait_status(e->admin, "/readyz", 200, 15000);
}

static int setup(void)
{
    if (!id_make_certs("app1"))
        return 1;
    memset(&E, 0, sizeof(E));
    E.nats = jb_tnats_start();
    k1 = EVP_EC_gen("P-256");
    k2 = EVP_EC_gen("P-256");
    if (E.nats == NULL || k1 == NULL || k2 == NULL)
        return 1;
    jwk_of(k1, "k1", jwk1, sizeof(jwk1));
    jwk_of(k2, "k2", jwk2, sizeof(jwk2));
    char path[600], url[160], c[512], k[512];
    snprintf(path, sizeof(path), "%s/apps.yaml", id_certdir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fputs(HEAD "metadata:\n  name: app1\n", f);
    fclose(f);
    snprintf(url, sizeof(url), "NATS_URL=%s", jb_tnats_url(E.nats));
    const char *apply[] = {"app", "apply", "-f", path, NULL};
    const char *env[] = {url, NULL};
    if (jb_trun_capture(apply, env, NULL, NULL, 30000) != 0)
        return 1;
    id_cert_path(c, sizeof(c), "server.pem");
    id_cert_path(k, sizeof(k), "server.key");
    if (!server_start(&S, c, k))
        return 1;
    set_keys(jwk1, "");
    return start_publisher(&E, "ca.pem") && pe_connect_client(&E) ? 0 : 1;
}

static int teardown(void)
{
    int rc = pe_terminate(&E);
    jb_tproc_stop(E.proc);
    E.proc = NULL;
    pe_stop(&E);
    server_stop(&S);
    jb_rm_tree(id_certdir);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return rc == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ cases */

/* A binary publish as app1 with a JWT signed by key (kid). */
static long publish_jwt(CURL *h, int port, EVP_PKEY *key, const char *kid, const char *id)
{
    char hdr[128], claims[256], tok[2048], auth[2200], hid[128];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"app1\",\"iss\":\"idp\",\"aud\":\"jetbridge\",\"exp\":%ld}",
             (long)time(NULL) + 600);
    mint_with(key, "", hdr, claims, SIGN_ES, tok, sizeof(tok));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    snprintf(hid, sizeof(hid), "ce-id: %s", id);
    const char *hdrs[] = {"ce-specversion: 1.0",
                          hid,
                          "ce-source: app1",
                          "ce-type: order.created.v1",
                          auth,
                          "Content-Type: application/json",
                          NULL};
    id_resp r;
    id_https(h, port, "/publish", NULL, hdrs, "{}", &r);
    return r.code;
}

/* Publishes until the answer is want (the publisher loads keys in the
 * background), at most timeout_ms; returns the last answer. */
static long publish_until(CURL *h, EVP_PKEY *key, const char *kid, long want, int timeout_ms)
{
    long code = -1;
    char id[64];
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        snprintf(id, sizeof(id), "w-%s-%d-%ld", kid, waited, (long)time(NULL));
        code = publish_jwt(h, E.port, key, kid, id);
        if (code == want)
            break;
        jb_sleep_ms(200);
    }
    return code;
}

static void test_fetched_and_cached(void)
{
    CURL *h = curl_easy_init();
    /* The first fetch happens in the background; until then tokens get 401 (or
     * 503 while the registry loads). */
    CU_ASSERT_EQUAL(publish_until(h, k1, "k1", 204, 30000), 204);
    int before = atomic_load(&S.fetches);
    CU_ASSERT(before >= 1);
    int64_t base = pe_stream_msgs(&E);
    char id[32];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "cached-%d", i);
        CU_ASSERT_EQUAL(publish_jwt(h, E.port, k1, "k1", id), 204);
    }
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base + 20);
    /* Verified from the cache: twenty publishes, no fetch. */
    CU_ASSERT_EQUAL(atomic_load(&S.fetches), before);
    curl_easy_cleanup(h);
}

static void test_unknown_kid_refreshes_bounded(void)
{
    CURL *h = curl_easy_init();
    CU_ASSERT_EQUAL(publish_until(h, k1, "k1", 204, 30000), 204);
    /* The identity provider rotates in k2. A k2 token makes the publisher fetch
     * again; it passes once the new set is in. */
    set_keys(jwk1, jwk2);
    int before = atomic_load(&S.fetches);
    CU_ASSERT_EQUAL(publish_jwt(h, E.port, k2, "k2", "rot-0"), 401);
    CU_ASSERT_EQUAL(publish_until(h, k2, "k2", 204, 60000), 204);
    CU_ASSERT(atomic_load(&S.fetches) > before);
    /* A flood of tokens naming a kid that never exists: the refetches stay
     * bounded by JB_AUTH_JWKS_MIN_REFETCH_S, however many tokens come. */
    before = atomic_load(&S.fetches);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char id[32];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "flood-%d", i);
        CU_ASSERT_EQUAL(publish_jwt(h, E.port, k1, "nosuch", id), 401);
        if (i % 10 == 9)
            jb_sleep_ms(100);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int fetched = atomic_load(&S.fetches) - before;
    /* At most one refetch per interval that started in the window (plus the one
     * that may already be due at its start). */
    CU_ASSERT(fetched <= (int)(secs / JB_AUTH_JWKS_MIN_REFETCH_S) + 2);
    /* k1 keeps working throughout. */
    CU_ASSERT_EQUAL(publish_jwt(h, E.port, k1, "k1", "after-flood"), 204);
    curl_easy_cleanup(h);
}

static void test_failing_endpoint_keeps_keys(void)
{
    CURL *h = curl_easy_init();
    CU_ASSERT_EQUAL(publish_until(h, k1, "k1", 204, 30000), 204);
    server_set(&S, 500, "{\"error\":\"down\"}");
    int before = atomic_load(&S.fetches);
    /* An unknown kid makes the publisher fetch (and fail); wait until it has. */
    for (int i = 0; i < 150 && atomic_load(&S.fetches) == before; i++) {
        publish_jwt(h, E.port, k1, "nosuch", "trigger");
        jb_sleep_ms(200);
    }
    CU_ASSERT(atomic_load(&S.fetches) > before);
    /* The keys loaded before still verify. */
    CU_ASSERT_EQUAL(publish_jwt(h, E.port, k1, "k1", "still-k1"), 204);
    CU_ASSERT_EQUAL(publish_jwt(h, E.port, k2, "k2", "still-k2"), 204);
    set_keys(jwk1, jwk2);
    curl_easy_cleanup(h);
}

/* A publisher that trusts another CA never accepts the server's certificate: it
 * fetches nothing usable, every JWT is 401, and nothing is stored. */
static void test_untrusted_server(void)
{
    pubenv o = {.nats = E.nats};
    CU_ASSERT_FATAL(start_publisher(&o, "other-ca.pem"));
    CURL *h = curl_easy_init();
    int64_t base = pe_stream_msgs(&E);
    long code = -1;
    /* Wait until the registry is loaded (503 before), then give the key fetch time. */
    for (int i = 0; i < 150; i++) {
        code = publish_jwt(h, o.port, k1, "k1", "untrusted");
        if (code != 503)
            break;
        jb_sleep_ms(200);
    }
    jb_sleep_ms(2000);
    code = publish_jwt(h, o.port, k1, "k1", "untrusted-2");
    CU_ASSERT_EQUAL(code, 401);
    CU_ASSERT_EQUAL(pe_stream_msgs(&E), base);
    char *log = jb_tproc_log(o.proc);
    CU_ASSERT_PTR_NOT_NULL(log != NULL ? strstr(log, "cannot load INGRESS_JWKS") : NULL);
    free(log);
    curl_easy_cleanup(h);
    CU_ASSERT_EQUAL(pe_terminate(&o), 0); /* the nats-server is E's */
    jb_tproc_stop(o.proc);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const jb_test_case cases[] = {
        {"https JWKS: fetched once, then verified from the cache", test_fetched_and_cached},
        {"unknown kid: a rotated key is fetched; refetches stay bounded",
         test_unknown_kid_refreshes_bounded},
        {"a failing JWKS endpoint keeps the keys loaded before", test_failing_endpoint_keeps_keys},
        {"a JWKS server that does not verify gives no keys", test_untrusted_server},
    };
    int rc = jb_cunit_main("integration_id_jwks", setup, teardown, cases, JB_CASES_N(cases));
    curl_global_cleanup();
    return rc;
}

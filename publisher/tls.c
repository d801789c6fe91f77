/*
 * Ingress TLS on libevent's OpenSSL bufferevents (see pub_tls.h). TLS 1.2 and
 * 1.3 only, no renegotiation. With a client CA, certificates are asked for but
 * optional (token and JWT clients send none); one that is sent and does not
 * verify fails the handshake.
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "publisher/pub_tls.h"

#define RELOAD_CHECK_NS 1000000000LL

/* What identifies one version of a file: a rewrite or a rename changes one of these. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct pub_tls {
    const char *cert, *key, *ca; /* borrowed from the configuration; ca may be "" */
    pthread_mutex_t mu;          /* guards ctx, ids, next_check_ns */
    SSL_CTX *ctx;
    file_id ids[3];
    int64_t next_check_ns;
};

static void file_ids(const pub_tls *t, file_id ids[3])
{
    const char *paths[3] = {t->cert, t->key, t->ca};
    memset(ids, 0, 3 * sizeof(*ids));
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (paths[i][0] != '\0' && stat(paths[i], &st) == 0)
            ids[i] = (file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    }
}

static jb_status build_ctx(const pub_tls *t, SSL_CTX **out, jb_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "cannot create a TLS context");
    jb_status rc = JB_ERR_CONFIG;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.3 sends two session tickets after every handshake by default; each is
     * the whole session (with the client certificate under mTLS) encoded and
     * encrypted: a measured ~0.75M instructions per ticket with a client
     * certificate. One ticket still lets a client resume once per connection. */
    SSL_CTX_set_num_tickets(ctx, 1);
    static const unsigned char sid[] = "jetbridge-ingress";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        jb_err_set(err, rc, "INGRESS_TLS_CERT: cannot load a PEM certificate chain from %s",
                   t->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        jb_err_set(err, rc,
                   "INGRESS_TLS_KEY: cannot load a PEM key matching the certificate from %s",
                   t->key);
        goto fail;
    }
    if (t->ca[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            jb_err_set(err, rc, "INGRESS_TLS_CLIENT_CA: cannot load PEM certificates from %s",
                       t->ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    ERR_clear_error();
    *out = ctx;
    return JB_OK;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

jb_status pub_tls_create(const jb_cfg *cfg, pub_tls **out, jb_err *err)
{
    bool cert = cfg->ingress_tls_cert[0] != '\0', key = cfg->ingress_tls_key[0] != '\0';
    if (!cert && !key) {
        if (cfg->ingress_tls_client_ca[0] != '\0')
            return jb_err_set(err, JB_ERR_CONFIG,
                              "INGRESS_TLS_CLIENT_CA needs INGRESS_TLS_CERT and INGRESS_TLS_KEY");
        *out = NULL;
        return JB_OK;
    }
    if (cert != key)
        return jb_err_set(err, JB_ERR_CONFIG,
                          "INGRESS_TLS_CERT and INGRESS_TLS_KEY must be set together");
    pub_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    t->cert = cfg->ingress_tls_cert;
    t->key = cfg->ingress_tls_key;
    t->ca = cfg->ingress_tls_client_ca;
    pthread_mutex_init(&t->mu, NULL);
    file_ids(t, t->ids);
    jb_status rc = build_ctx(t, &t->ctx, err);
    if (rc != JB_OK) {
        pub_tls_destroy(t);
        return rc;
    }
    t->next_check_ns = jb_now_monotonic_ns() + RELOAD_CHECK_NS;
    *out = t;
    return JB_OK;
}

void pub_tls_destroy(pub_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void pub_tls_reload(pub_tls *t)
{
    if (t == NULL)
        return;
    int64_t now = jb_now_monotonic_ns();
    pthread_mutex_lock(&t->mu);
    bool due = now >= t->next_check_ns;
    if (due)
        t->next_check_ns = now + RELOAD_CHECK_NS;
    pthread_mutex_unlock(&t->mu);
    if (!due)
        return;
    file_id ids[3];
    file_ids(t, ids);
    /* Only this thread writes ids, so reading them unlocked is safe. */
    if (memcmp(ids, t->ids, sizeof(ids)) == 0)
        return;
    SSL_CTX *ctx = NULL;
    jb_err err = {{0}};
    /* A certificate and key written one after the other may not match for a moment:
     * the next check (a second later) tries again; the old context stays meanwhile. */
    if (build_ctx(t, &ctx, &err) != JB_OK) {
        jb_log(JB_LOG_WARN, "publisher", "TLS files changed but do not load; keeping the old ones",
               "error", err.msg, NULL);
        memcpy(t->ids, ids, sizeof(ids));
        return;
    }
    pthread_mutex_lock(&t->mu);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    memcpy(t->ids, ids, sizeof(ids));
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(old); /* live connections hold their own references */
    jb_log(JB_LOG_INFO, "publisher", "TLS certificates reloaded", "cert", t->cert, NULL);
}

struct bufferevent *pub_tls_bev(pub_tls *t, struct event_base *base)
{
    pthread_mutex_lock(&t->mu);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->mu);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* A client that closes without close_notify has finished, not failed. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

bool pub_tls_peer_cn(struct evhttp_request *req, char *out, size_t cap, size_t *len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct bufferevent *under = bev != NULL ? bufferevent_get_underlying(bev) : NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(under != NULL ? under : bev);
    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return false;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
    int idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    /* Two CNs are ambiguous (other TLS stacks take the last one): no identity. */
    if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return false;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    bool ok = n > 0 && (size_t)n < cap && memchr(utf8, '\0', (size_t)n) == NULL;
    if (ok) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    OPENSSL_free(utf8);
    return ok;
}

/*
 * Shared by the TLS and auth suites: certificates made by openssl in a temporary
 * directory (tests/integration/id_certs.sh) and a libcurl HTTPS client.
 * Compiled once into the harness library (tests/harness/tidtls.c).
 */
#ifndef TEST_ID_TLS_H
#define TEST_ID_TLS_H

#include <curl/curl.h>

#include "test_id_util.h"

extern char id_certdir[];

/* Makes the CA, server and client certificates (CNs in names, space-separated). */
bool id_make_certs(const char *names);

void id_cert_path(char *out, size_t cap, const char *file);

typedef struct id_resp {
    long code; /* -1: no HTTP answer (connection or handshake failed) */
    char body[4096];
    size_t blen;
    char headers[4096];
    size_t hlen;
} id_resp;

/* One HTTPS request to 127.0.0.1:port on handle h (reused: keep-alive). cert is a
 * client certificate base name in the cert directory ("app1") or NULL; headers
 * "Name: value" lines (NULL-terminated) or NULL; body NULL means GET. */
void id_https(CURL *h, int port, const char *path, const char *cert, const char *const *headers,
              const char *body, id_resp *r);

#endif

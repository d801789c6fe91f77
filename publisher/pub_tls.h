/*
 * Private to publisher/: ingress TLS (INGRESS_TLS_CERT, INGRESS_TLS_KEY,
 * INGRESS_TLS_CLIENT_CA). One SSL_CTX is current at a time; new connections take
 * it, live ones keep the one they started with (OpenSSL reference-counts it).
 * pub_tls_reload, called periodically from the control thread, builds a new
 * context when a file changed and swaps it in; a file that does not load keeps
 * the old context (and is logged once per change).
 */
#ifndef JB_PUB_TLS_H
#define JB_PUB_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/jb_status.h"

struct bufferevent;
struct event_base;
struct evhttp_request;
struct jb_cfg;

typedef struct pub_tls pub_tls;

/* Loads the files named by cfg. *out is NULL (and JB_OK) when TLS is not
 * configured; JB_ERR_CONFIG when only one of cert and key is set or a file does
 * not load (err names the file, never its content). */
jb_status pub_tls_create(const struct jb_cfg *cfg, pub_tls **out, jb_err *err);
void pub_tls_destroy(pub_tls *t);

/* Checks the files (at most once a second) and swaps in a new context when one
 * changed. Any thread. */
void pub_tls_reload(pub_tls *t);

/* A TLS server bufferevent (accepting) on base with the current context, fd set
 * later by evhttp. NULL when out of memory. */
struct bufferevent *pub_tls_bev(pub_tls *t, struct event_base *base);

/* The subject CN of the request's verified client certificate, copied into
 * out[0..cap) with its length in *len; false when the connection is not TLS, no
 * certificate was sent, or the CN is missing, too long or holds a NUL. */
bool pub_tls_peer_cn(struct evhttp_request *req, char *out, size_t cap, size_t *len);

#endif

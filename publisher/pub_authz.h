/*
 * Private to publisher/: who may publish (INGRESS_AUTH=required). Identifies the
 * calling application from a bearer token, a JWT or a verified client
 * certificate; checks the path, each event's source and type against it; and
 * keeps one token bucket per application for jetbridge.io/rate-limit.
 *
 * Answers are HTTP statuses (0 = go on). The application registry is the
 * publisher's (loaded in the background); until it has loaded, identification
 * answers 503.
 */
#ifndef JB_PUB_AUTHZ_H
#define JB_PUB_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "common/jb_status.h"

struct evhttp_request;
struct jb_cfg;
struct jb_metrics;
typedef struct jb_app jb_app;
typedef struct jb_app_registry jb_app_registry;
typedef struct jb_ce jb_ce;

typedef struct pub_authz pub_authz;

/* NULL in *out (and JB_OK) when INGRESS_AUTH is none. */
jb_status pub_authz_create(const struct jb_cfg *cfg, struct jb_metrics *metrics, pub_authz **out,
                           jb_err *err);
void pub_authz_destroy(pub_authz *z);

/* The publisher's registry (borrowed: it must outlive every lookup). */
void pub_authz_set_registry(pub_authz *z, jb_app_registry *r);
/* For the control thread: refreshes the JWT key set when due (blocking I/O). */
void pub_authz_refresh(pub_authz *z);

/* The caller: 0 with *app set (release with jb_app_release), or 401 (no or bad
 * credentials), 404 (the identity names no known application), 503 (registry not
 * loaded yet). */
int pub_authz_identify(pub_authz *z, struct evhttp_request *req, const jb_app **app);

/* /{path_app}/...: 0 when path_app is app; 404 when it names no application, else
 * 403. */
int pub_authz_path(pub_authz *z, const jb_app *app, const char *path_app, size_t len);

/* Each event's source must be the application's name or an allowed source, its
 * type (as sent) start with an allowed prefix: 0, or 403 with *attr "source" or
 * "type" and *index the first event that fails. */
int pub_authz_events(const jb_app *app, jb_ce *const *ces, size_t n, const char **attr,
                     size_t *index);

/* Takes n events from the application's bucket: 0, or 429 with *retry_after in
 * seconds, or 413 when n is more than the burst (it would never pass).
 * Applications without a rate limit always pass. */
int pub_authz_rate(pub_authz *z, const jb_app *app, size_t n, int *retry_after);

/* Counts an outcome in jetbridge_publisher_auth_total{application,result}. */
void pub_authz_count(pub_authz *z, const jb_app *app, const char *result);

/* The 403 body of a path mismatch (Kyma's gateway). Static. */
#define PUB_AUTHZ_PATH_BODY "{\"code\":403,\"error\":\"no valid subject found\"}"

#endif

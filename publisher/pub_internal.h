/*
 * Private to publisher/: the pure parts (enrichment, legacy body parsing, status
 * mapping) exposed for unit tests and the fuzz target, and the pieces the server
 * files share. Nothing here touches sockets, threads or NATS connections.
 */
#ifndef JB_PUB_INTERNAL_H
#define JB_PUB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"
#include "proto/jb_ce.h"

/* The names enrichment needs, taken from the configuration. Borrowed strings. */
typedef struct jb_pub_names {
    const char *type_prefix;    /* EVENT_TYPE_PREFIX, "sap.kyma.custom" */
    const char *subject_prefix; /* JS_STREAM_SUBJECT_PREFIX, "kyma" */
    const char *legacy_ns;      /* LEGACY_NAMESPACE, "kyma" */
} jb_pub_names;

/* ------------------------------------------------------------ enrichment */

/* True when type[0..len) starts with "<type_prefix>." (type_prefix non-empty). */
bool jb_pub_is_prefixed(const char *type_prefix, const char *type, size_t len);

/* Prefixed path (docs/contract.md 2.3 B): the cleaned type, for example
 * "sap.kyma.custom.testapp.Segment1Part1.Segment2.v1". JB_ERR_INVALID with
 * "type: invalid format ..." when the type has fewer than four non-empty parts after
 * the prefix, repeats the prefix, or cleans to an empty segment. *out malloc'd. */
jb_status jb_pub_prefixed_type(const char *type_prefix, const char *type, size_t len, char **out,
                               jb_err *err);

/* The legacy endpoint's own prefixed type (section 2.2): the prefixed-path
 * cleaning without its four-part rule, so "<prefix>.<app>.someType.v0" (one event
 * segment) is valid, as in Kyma, whose legacy path never applies that rule. */
jb_status jb_pub_legacy_type(const char *type_prefix, const char *type, size_t len, char **out,
                             jb_err *err);

/* Rewrites ce as section 2.3 says and returns its NATS subject (*subject malloc'd):
 * standard path sets extension originaltype to the received type and type to the
 * subject; prefixed path sets type to the cleaned type. ce must have been
 * validated (type and source present). On failure ce may be partly changed. */
jb_status jb_pub_enrich(const jb_pub_names *n, jb_ce *ce, char **subject, jb_err *err);

/* The legacy prefixed copy's enrichment: type (already
 * "<type_prefix>.<app>.<event-type>.<version>") cleaned by jb_pub_legacy_type and
 * set; *subject (malloc'd) is "<subject_prefix>.<clean type>". */
jb_status jb_pub_enrich_legacy_copy(const jb_pub_names *n, jb_ce *ce, char **subject, jb_err *err);

/* Request headers traceparent and X-B3-* (case-insensitive) become extensions
 * traceparent, b3traceid, b3parentspanid, b3spanid, b3sampled, b3flags. Empty
 * values are skipped; a value the dispatcher could not send back as a header
 * (jb_ce_http_value_ok) is JB_ERR_INVALID with err naming the header. */
jb_status jb_pub_apply_tracing(jb_ce *ce, const jb_ce_header *hdrs, size_t n, jb_err *err);

/* Nats-Msg-Id: the first 32 hex characters of SHA-256(source NUL id [NUL subject]),
 * subject being NULL for /publish and the copy's subject for the legacy double
 * publish. Written with a NUL into out. */
#define JB_PUB_MSG_ID_LEN 32
void jb_pub_msg_id(const char *source, size_t slen, const char *id, size_t ilen,
                   const char *subject, char out[JB_PUB_MSG_ID_LEN + 1]);
/* The same with a digest context the caller keeps (an HTTP thread reuses one
 * instead of allocating and freeing one per event); NULL: one is made. */
struct evp_md_ctx_st;
void jb_pub_msg_id_ctx(struct evp_md_ctx_st *ctx, const char *source, size_t slen, const char *id,
                       size_t ilen, const char *subject, char out[JB_PUB_MSG_ID_LEN + 1]);

/* ------------------------------------------------- application-type labels */

struct jb_app_registry;
/* Prefixed path (type "<type_prefix>.<app>...."): when apps knows the application
 * <app> and it has an application-type label, ce's type gets the label (its letters
 * and digits) in place of <app>, before jb_pub_enrich cleans it. Nothing changes
 * otherwise (apps NULL, standard path, unknown or unlabelled application).
 * JB_ERR_NOMEM only. */
jb_status pub_app_relabel(const jb_pub_names *n, struct jb_app_registry *apps, jb_ce *ce);

/* jb_pub_enrich for the legacy endpoint's standard copy: the subject is built from
 * src[0..slen) (the application's clean name) instead of ce's source, which stays
 * as sent. */
jb_status pub_enrich_as_source(const jb_pub_names *n, jb_ce *ce, const char *src, size_t slen,
                               char **subject, jb_err *err);

/* ---------------------------------------------------------------- legacy */

/* The outcome of parsing a legacy body: either an event (status 0) or the HTTP
 * status and JSON body to answer with. */
typedef struct jb_pub_legacy {
    int status;     /* 0 on success, else 400 or 413 */
    char *err_body; /* malloc'd JSON error body when status != 0 */
    size_t err_len;
    jb_ce *ce;   /* on success: the standard-path event (type "<type>.<version>",
                    source app, extension eventtypeversion); owned */
    char id[37]; /* the event id (given or generated) */
} jb_pub_legacy;

/* Parses and validates body[0..len) in docs/contract.md 2.2's order for application
 * app[0..app_len). Returns JB_ERR_NOMEM only on allocation failure; any problem
 * with the input is reported through out->status. Free with jb_pub_legacy_free. */
jb_status jb_pub_legacy_parse(const char *app, size_t app_len, const char *body, size_t len,
                              jb_pub_legacy *out);
void jb_pub_legacy_free(jb_pub_legacy *l);

/* The 413 body of the legacy endpoint. Static storage. */
const char *jb_pub_legacy_too_large_body(void);

/* The second legacy copy: type "<type_prefix>.<app>.<event-type>.<version>" run
 * through the prefixed path, source LEGACY_NAMESPACE, same id and data. *out is a
 * new event and *subject its subject (both the caller's). JB_ERR_INVALID when the
 * type cannot be built; JB_ERR_NOT_FOUND when type_prefix is empty (no copy). */
jb_status jb_pub_legacy_prefixed_copy(const jb_pub_names *n, const jb_ce *std_ce, const char *app,
                                      size_t app_len, jb_ce **out, char **subject, jb_err *err);

/* JSON-escapes s[0..len) into a malloc'd string (without quotes). */
char *jb_pub_json_escape(const char *s, size_t len);

/* ---------------------------------------------------------------- routes */

typedef enum jb_pub_route {
    R_NONE = 0,   /* 404 */
    R_PUBLISH,    /* /publish */
    R_LEGACY,     /* /{application}/v1/events */
    R_SUBSCRIBED, /* /{application}/v1/events/subscribed */
    R_HEALTHZ,    /* /healthz */
    R_READYZ,     /* /readyz */
    R_APP_EVENTS, /* /{application}/events: CloudEvents as /publish */
    R_APP_V2,     /* /{application}/v2/events: CloudEvents as /publish */
} jb_pub_route;

/* True for the routes that take CloudEvents exactly as /publish does. */
bool jb_pub_route_is_ce(jb_pub_route r);

/* Matches the request path (path[0..len), query excluded) to a route; for the
 * application routes *app and *app_len receive the application segment (non-empty,
 * without '/'). */
jb_pub_route jb_pub_match_route(const char *path, size_t len, const char **app, size_t *app_len);

/* ------------------------------------------------------ status mapping */

/* HTTP status for one JetStream publish outcome: nats_status is a natsStatus
 * (0 = acknowledged), err_code the JetStream API error code (0 when none), text
 * the error text (may be NULL). See docs/publisher.md. */
int jb_pub_ack_status(int nats_status, int err_code, const char *text);

/* The HTTP status of the JetStream ack message data[0..len) (untrusted bytes, not
 * NUL-terminated), or of a "no responders" answer (no_responders: the server found
 * no stream for the subject; data is then ignored). *text is set to the error
 * text (malloc'd, the caller's) for every outcome but 204, else NULL. */
int jb_pub_ack_parse(const char *data, size_t len, bool no_responders, char **text);

#endif

/*
 * subscription/: Kyma Subscription manifests (eventing.kyma-project.io/v1alpha2),
 * their validation, the store in NATS KV, the status, and the JetStream consumers
 * they need (docs/contract.md section 3).
 *
 * Threading: parsed jb_sub objects are immutable after parsing and may be read
 * from any thread. A jb_sub_store may be used from one thread at a time. The
 * reconciler runs on a thread of its own and calls its callbacks from that thread
 * only (never from a nats.c thread), one call at a time.
 *
 * Configuration: every `const struct jb_cfg *cfg` parameter is a loaded
 * configuration (jb_cfg_load or jb_cfg_defaults), never NULL: defaults live only in
 * config/'s key table, so no function here has a fallback of its own.
 */
#ifndef JB_SUB_H
#define JB_SUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_manifest.h"
#include "common/jb_status.h"

struct jb_cfg;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

/* The module's parts, each in a header of its own (a caller that needs one part
 * includes only that one: the publisher uses the subject contract, the stream and
 * the store). */
#include "subscription/jb_sub_dirwatch.h"
#include "subscription/jb_sub_manifest.h"
#include "subscription/jb_sub_store.h"
#include "subscription/jb_sub_stream.h"
#include "subscription/jb_sub_subject.h"

/* ------------------------------------------------------ delivery settings */

typedef enum jb_sub_backoff {
    JB_SUB_BACKOFF_EXPONENTIAL, /* delay * 2^(attempt-1), full jitter, capped by max */
    JB_SUB_BACKOFF_LINEAR,      /* delay * attempt, capped by max */
    JB_SUB_BACKOFF_CONSTANT,    /* delay */
} jb_sub_backoff;

typedef enum jb_sub_content_mode {
    JB_SUB_CONTENT_BINARY,
    JB_SUB_CONTENT_STRUCTURED,
} jb_sub_content_mode;

/* The effective delivery settings of a subscription: spec.config values, else the
 * defaults below (max_in_flight from DEFAULT_MAX_IN_FLIGHT_MESSAGES). */
#define JB_SUB_DEFAULT_MAX_DELIVER        100
#define JB_SUB_DEFAULT_BACKOFF_DELAY_MS   1000
#define JB_SUB_DEFAULT_BACKOFF_MAX_MS     30000
#define JB_SUB_DEFAULT_TIMEOUT_MS         30000
#define JB_SUB_DEFAULT_RETRY_AFTER_MAX_MS 300000
/* deadLetterSink is at most JB_SUB_URL_MAX - 1 characters (a validation rule): the
 * settings are copied per consumer and per delivery, so they stay small. */
#define JB_SUB_URL_MAX 512
typedef struct jb_sub_delivery {
    int max_in_flight;          /* maxInFlightMessages, >= 1 */
    int max_deliver;            /* maxDeliver: HTTP attempts before dead-lettering, >= 1 */
    jb_sub_backoff backoff;     /* backoffPolicy */
    int64_t backoff_delay_ms;   /* backoffDelay */
    int64_t backoff_max_ms;     /* backoffMax, >= backoff_delay_ms */
    int64_t timeout_ms;         /* timeout: per HTTP request, > 0 */
    int64_t retry_after_max_ms; /* retryAfterMax: 0 means ignore Retry-After */
    char dead_letter_sink[JB_SUB_URL_MAX]; /* deadLetterSink URL, "" when unset */
    jb_sub_content_mode content_mode;      /* contentMode */
} jb_sub_delivery;

/* How jetbridge authenticates to a sink (spec.config; docs/security-connections.md). A
 * NULL member is unset. oauth2 is Kyma's `type: oauth2` with `grantType:
 * client_credentials`, `clientId`, `clientSecret`, `tokenUrl`, `scope`; the
 * jetbridge.auth.* keys name files the dispatcher reads (absolute paths). At most
 * one of oauth2, bearer and basic. */
#define JB_SUB_AUTH_BEARER_FILE         "jetbridge.auth.bearerTokenFile"
#define JB_SUB_AUTH_BASIC_USER          "jetbridge.auth.basicUsername"
#define JB_SUB_AUTH_BASIC_PASSWORD_FILE "jetbridge.auth.basicPasswordFile"
#define JB_SUB_AUTH_CLIENT_CERT         "jetbridge.auth.clientCertFile"
#define JB_SUB_AUTH_CLIENT_KEY          "jetbridge.auth.clientKeyFile"
#define JB_SUB_AUTH_SIGNING_FILE        "jetbridge.auth.signingSecretFile"
/* Kubernetes mode only: the same values from a Secret in the subscription's
 * namespace, written "<secret name>/<key>" (the dispatcher reads it from the API
 * server). Without Kubernetes mode they are a validation error. */
#define JB_SUB_AUTH_BEARER_SECRET         "jetbridge.auth.bearerTokenFromSecret"
#define JB_SUB_AUTH_BASIC_PASSWORD_SECRET "jetbridge.auth.basicPasswordFromSecret"
#define JB_SUB_AUTH_SIGNING_SECRET        "jetbridge.auth.signingSecretFromSecret"
#define JB_SUB_AUTH_CLIENT_SECRET_SECRET  "jetbridge.auth.clientSecretFromSecret"
typedef struct jb_sub_auth {
    bool oauth2;
    char *bearer_token_file;
    char *basic_username;
    char *basic_password_file;
    char *client_cert_file;
    char *client_key_file;
    char *signing_secret_file;
    char *client_id;
    char *client_secret;
    char *token_url;
    char *scope;
    /* "<name>/<key>" references to Secrets (Kubernetes mode) */
    char *bearer_token_secret;
    char *basic_password_secret;
    char *signing_secret_secret;
    char *client_secret_secret;
} jb_sub_auth;
/* True when any of the *FromSecret keys is set (they need Kubernetes mode). */
bool jb_sub_auth_uses_secrets(const jb_sub_auth *a);
/* Reads and checks the auth keys of s. On JB_ERR_INVALID err->msg is
 * "<key>|<detail>" (the validator turns it into Kyma's message format). *out is
 * set only on success; free with jb_sub_auth_free. */
jb_status jb_sub_auth_get(const jb_sub *s, jb_sub_auth *out, jb_err *err);
void jb_sub_auth_free(jb_sub_auth *a);
bool jb_sub_auth_copy(jb_sub_auth *dst, const jb_sub_auth *src);
bool jb_sub_auth_equal(const jb_sub_auth *a, const jb_sub_auth *b);
/* True when any auth setting is present. */
bool jb_sub_auth_any(const jb_sub_auth *a);

/* Fills *out with the effective settings. JB_ERR_INVALID (err names the key) when a
 * value is invalid: jb_sub_validate reports the same problems in Kyma's format. */
jb_status jb_sub_delivery_get(const jb_sub *s, const struct jb_cfg *cfg, jb_sub_delivery *out,
                              jb_err *err);

/* -------------------------------------------------------------- validation */

/* Limits that keep one subscription's consumers and status bounded (a status is one
 * KV value, and NATS refuses values over its max payload, 1 MiB by default): at
 * most JB_SUB_MAX_TYPES types (more is a validation error), at most
 * JB_SUB_MAX_ERRORS validation messages are kept, and a status whose JSON would be
 * larger than JB_SUB_STATUS_MAX_BYTES is written without its type lists. */
#define JB_SUB_MAX_TYPES        256
#define JB_SUB_MAX_ERRORS       32
#define JB_SUB_STATUS_MAX_BYTES (256 * 1024)

/* The validation errors of one subscription, in Kyma's order (typeMatching,
 * source, types, config, sink), each `<path>: Invalid value: "<value>": <detail>`
 * with the value quoted as Go's %q does. `message` is Kyma's aggregate: the single
 * message, or "[m1, m2, ...]". */
typedef struct jb_sub_errors {
    char **msgs;
    size_t n;
    char *message; /* "" when n == 0 */
} jb_sub_errors;

/* Validates s with the rules of docs/contract.md section 3 and cfg's SINK_VALIDATION mode
 * (url | kubernetes | allowlist with SINK_ALLOWED_HOSTS), EVENT_TYPE_PREFIX and
 * JS_STREAM_SUBJECT_PREFIX. Returns JB_OK and fills *out (free with
 * jb_sub_errors_free) whether or not s is valid: out->n == 0 means valid.
 * JB_ERR_NOMEM is the only failure. */
jb_status jb_sub_validate(const jb_sub *s, const struct jb_cfg *cfg, jb_sub_errors *out);
void jb_sub_errors_free(jb_sub_errors *e);

/* The NATS subject for a type of s: standard `<prefix>.<cleanSource>.<cleanType>`,
 * exact `<prefix>.<type>` (no cleaning); prefix is JS_STREAM_SUBJECT_PREFIX
 * (from cfg, which is never NULL). On success *out is malloc'd
 * (caller frees). JB_ERR_INVALID when the subject would have an empty segment or a
 * character NATS forbids in subjects (for exact types: whitespace, a token that is
 * exactly '*' or '>'; err then holds jb_sub_exact_subject_problem's detail). */
jb_status jb_sub_subject(const jb_sub *s, const struct jb_cfg *cfg, const char *type, char **out,
                         jb_err *err);

/* The durable consumer name: the first 32 hex characters of
 * SHA-256("<ns>/<name>/<subject>"), written with a NUL into out. */
void jb_sub_consumer_name(const char *ns, const char *name, const char *subject, char out[33]);

/* One consumer a valid subscription needs: one per type. Self-contained (owns its
 * strings). */
typedef struct jb_sub_consumer {
    char *ns;          /* metadata.namespace */
    char *name;        /* metadata.name */
    char *type;        /* the type as written in spec.types (Kyma's originalType) */
    char *clean_type;  /* the type after cleaning (equal to type for exact) */
    char *subject;     /* the filter subject */
    char consumer[33]; /* durable name */
    char *sink;
    jb_sub_delivery delivery;
    jb_sub_auth auth;
} jb_sub_consumer;

typedef struct jb_sub_consumer_list {
    jb_sub_consumer *items;
    size_t n;
} jb_sub_consumer_list;

/* The consumers s needs, in the order of spec.types. JB_ERR_INVALID when s is not
 * valid (jb_sub_validate). On success *out is filled; free with
 * jb_sub_consumer_list_free. */
jb_status jb_sub_consumers(const jb_sub *s, const struct jb_cfg *cfg, jb_sub_consumer_list *out,
                           jb_err *err);
void jb_sub_consumer_list_free(jb_sub_consumer_list *l);
/* Deep copy into *dst (free with jb_sub_consumer_free); false when out of memory. */
bool jb_sub_consumer_copy(jb_sub_consumer *dst, const jb_sub_consumer *src);
void jb_sub_consumer_free(jb_sub_consumer *c); /* frees the strings, not c itself */

/* ------------------------------------------------------------ reconciler */

/* The reconciler keeps JetStream consumers in line with the store: one durable pull
 * consumer per (subscription, type) of every valid subscription, named
 * jb_sub_consumer_name, with filter subject, explicit ack, deliver policy
 * JS_CONSUMER_DELIVER_POLICY, AckWait JS_CONSUMER_ACK_WAIT, MaxAckPending =
 * maxInFlightMessages and MaxDeliver = -1 (unlimited): the dispatcher counts
 * attempts with the message's delivery count and dead-letters after maxDeliver
 * itself, so JetStream never drops a message silently. It writes each
 * subscription's status only when it changed. Several reconcilers (one per
 * dispatcher process) may run at once: they compute the same names and settings,
 * and every operation is idempotent. */
typedef struct jb_sub_reconciler jb_sub_reconciler;

typedef struct jb_sub_reconciler_callbacks {
    /* The consumer exists with c's settings: start fetching, or apply the new
     * delivery settings (called again whenever they change). */
    void (*consumer_ready)(const jb_sub_consumer *c, void *ud);
    /* The consumer is no longer wanted (type or subscription removed, or the
     * subscription became invalid): stop fetching from it. */
    void (*consumer_removed)(const jb_sub_consumer *c, void *ud);
    void *ud;
} jb_sub_reconciler_callbacks;

/* Creates a reconciler on nc/js (which must outlive it). cb may be NULL (no
 * callbacks); *cb is copied. c is only valid during a callback: copy what you need
 * (jb_sub_consumer_copy). Callbacks run on the reconciler's own thread (after
 * jb_sub_reconciler_start) or on the caller's thread (jb_sub_reconciler_sync),
 * never two at once, never on a nats.c thread. A callback must not call back into
 * the reconciler. */
jb_status jb_sub_reconciler_create(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                   const jb_sub_reconciler_callbacks *cb, jb_sub_reconciler **out,
                                   jb_err *err);
/* One full pass, blocking: ensures the stream and the buckets, reads every
 * subscription, creates/updates/deletes consumers, writes statuses; with
 * delete_unexplained, also deletes consumers of the stream that no subscription
 * explains. Returns the first error (the pass continues past per-subscription
 * errors, which end up in their status). */
jb_status jb_sub_reconciler_sync(jb_sub_reconciler *r, bool delete_unexplained, jb_err *err);
/* Starts the reconciler thread: a full pass (deleting unexplained consumers), then
 * reacts to store changes (KV watch), and repeats a full pass every
 * resync_interval_ms (0: 30 s) and soon after a reconnect, so consumers the server
 * lost come back. */
jb_status jb_sub_reconciler_start(jb_sub_reconciler *r, int64_t resync_interval_ms, jb_err *err);
/* Asks the thread for a full pass soon. Thread-safe, non-blocking. */
void jb_sub_reconciler_kick(jb_sub_reconciler *r);
/* True after the first full pass succeeded. Thread-safe. */
bool jb_sub_reconciler_synced(const jb_sub_reconciler *r);
/* The consumers currently wanted (a copy). Thread-safe. */
jb_status jb_sub_reconciler_consumers(jb_sub_reconciler *r, jb_sub_consumer_list *out);
/* Stops the thread (no callback runs after it returns) and frees. Consumers stay.
 * NULL is fine. */
void jb_sub_reconciler_destroy(jb_sub_reconciler *r);

#endif

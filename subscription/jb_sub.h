/*
 * subscription/: Kyma Subscription manifests (eventing.kyma-project.io/v1alpha2),
 * their validation, the store in NATS KV, the status, and the JetStream consumers
 * they need (docs/contract.md section 3).
 *
 * Threading: parsed jb_sub objects are immutable after parsing and may be read
 * from any thread. A jb_sub_store may be used from one thread at a time. The
 * reconciler runs on a thread of its own and calls its callbacks from that thread
 * only (never from a nats.c thread), one call at a time.
 */
#ifndef JB_SUB_H
#define JB_SUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct jb_cfg;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

/* `jetbridge sub apply|get|describe|delete`. argv[0] is "sub". Returns the exit code. */
int jb_sub_cmd(const struct jb_cfg *cfg, int argc, char **argv);

/* ------------------------------------------------------------- manifests */

/* One Subscription as written by its user. Opaque and immutable. */
typedef struct jb_sub jb_sub;

/* A growable array of subscriptions; owns its items. Zero-initialize before use. */
typedef struct jb_sub_vec {
    jb_sub **items;
    size_t n;
    size_t cap;
} jb_sub_vec;
/* Frees every item and the array; leaves v empty and reusable. NULL is fine. */
void jb_sub_vec_clear(jb_sub_vec *v);

typedef enum jb_sub_matching {
    JB_SUB_MATCH_STANDARD, /* absent typeMatching, or "standard" */
    JB_SUB_MATCH_EXACT,    /* "exact" */
    JB_SUB_MATCH_INVALID,  /* anything else, "" included: a validation error */
} jb_sub_matching;

/* Parses a buffer holding one or more manifests: a JSON object, a JSON List
 * ({"kind":"List","items":[...]}), or YAML (several documents separated by
 * `---`). origin names the buffer in messages (a file name, "-" for stdin).
 * Every document must be apiVersion eventing.kyma-project.io/v1alpha2, kind
 * Subscription, with metadata.name (DNS-1123 subdomain, at most 253 chars);
 * metadata.namespace (DNS-1123 label) defaults to default_ns (NULL: "default").
 * Structural errors only (wrong shapes, missing names): spec values are checked by
 * jb_sub_validate, so an invalid spec still parses and is stored with ready=false,
 * as Kyma does. Empty YAML documents are skipped.
 * On success the subscriptions are appended to out (owned by out). On failure out
 * is unchanged and err says `<origin>: document <i>: <field>: <problem>` (i from 1).
 * Limits: len at most JB_SUB_MAX_MANIFEST_BYTES, nesting depth 64. */
#define JB_SUB_MAX_MANIFEST_BYTES (4 * 1024 * 1024)
jb_status jb_sub_parse(const char *buf, size_t len, const char *origin, const char *default_ns,
                       jb_sub_vec *out, jb_err *err);

/* Reads a file (".yaml", ".yml", ".json" or anything else: content decides) or every
 * *.yaml|*.yml|*.json file of a directory (not recursive, sorted by name), as
 * jb_sub_parse. "-" reads stdin. Appends to out; on failure out is unchanged. */
jb_status jb_sub_parse_path(const char *path, const char *default_ns, jb_sub_vec *out, jb_err *err);

/* Parses the JSON form kept in the store (as produced by jb_sub_json). */
jb_status jb_sub_from_json(const char *json, size_t len, jb_sub **out, jb_err *err);

/* The canonical JSON of the manifest (what the store keeps): apiVersion, kind,
 * metadata (name, namespace, labels, annotations, creationTimestamp when set) and
 * spec as given. Owned by s. */
const char *jb_sub_json(const jb_sub *s);

/* Copies s; NULL when out of memory. */
jb_sub *jb_sub_dup(const jb_sub *s);
void jb_sub_destroy(jb_sub *s);

/* Accessors. Strings are owned by s, never NULL ("" when absent). */
const char *jb_sub_namespace(const jb_sub *s);
const char *jb_sub_name(const jb_sub *s);
/* "<namespace>.<name>": the key in both KV buckets. */
const char *jb_sub_key(const jb_sub *s);
const char *jb_sub_sink(const jb_sub *s);
const char *jb_sub_source(const jb_sub *s);
jb_sub_matching jb_sub_type_matching(const jb_sub *s);
/* The typeMatching string as written (NULL when absent). */
const char *jb_sub_type_matching_raw(const jb_sub *s);
size_t jb_sub_ntypes(const jb_sub *s);
const char *jb_sub_type(const jb_sub *s, size_t i);
/* spec.config[key] as written, or NULL. */
const char *jb_sub_config_value(const jb_sub *s, const char *key);
/* metadata.creationTimestamp in ms since the epoch, 0 when unset. */
int64_t jb_sub_created_ms(const jb_sub *s);
/* metadata.annotations[key], or NULL. */
const char *jb_sub_annotation(const jb_sub *s, const char *key);
/* The annotation the Kubernetes controller sets on what it mirrors (value
 * "kubernetes"); `sub apply` and `sub delete` refuse to touch such subscriptions. */
#define JB_SUB_ANNOTATION_MANAGED_BY "jetbridge.io/managed-by"
bool jb_sub_kubernetes_owned(const jb_sub *s);

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

/* ------------------------------------------------------ cleaning, subjects */

/* Cleaning of the standard path (docs/contract.md 2.3 A), shared with the publisher.
 * Source: removes whitespace, '.', '>', '*', '/', '\'. Type: removes whitespace,
 * '>', '*', '/', '\' (dots stay). Whitespace is what isspace() accepts in the C
 * locale. Write into out (capacity cap, NUL-terminated) and return the cleaned
 * length; when cap is too small, return the needed length (excluding NUL) and
 * write nothing useful (call again with a larger buffer). */
size_t jb_sub_clean_source(const char *src, size_t len, char *out, size_t cap);
size_t jb_sub_clean_type(const char *type, size_t len, char *out, size_t cap);

/* Source validity, for the publisher's events and a Subscription's spec.source
 * alike (Kyma reads sources with Go's URL parser): false only when src[0..len) is
 * empty, holds a control byte (below 0x20, or 0x7f), a '%' not followed by two
 * hex digits, or a ':' in its first segment (up to '/', '?' or '#') that does not
 * end a valid scheme. "s>o>*u*r>c.e", "system>prod" and "my app" are valid. */
bool jb_sub_source_valid(const char *src, size_t len);

/* The standard-path subject (section 2.3 A), the one function both the publisher
 * (for each event) and the subscription (for each type) call, so that they
 * always clean the same raw strings alike:
 * "<subject_prefix>.<cleanSource>.<cleanType>". JB_ERR_INVALID (err names
 * "source: ..." or "type: ...") when a dot segment would be empty or a control
 * byte would reach the subject. *out is malloc'd (caller frees). */
jb_status jb_sub_standard_subject(const char *subject_prefix, const char *source, size_t slen,
                                  const char *type, size_t tlen, char **out, jb_err *err);

/* What is wrong with an exact-path subject for NATS, as a validation detail
 * ("must not contain NATS wildcard tokens", "must not contain whitespace or
 * control characters", "must not have empty segments"), or NULL when it is fine.
 * A token that merely contains '*' or '>' is a literal for NATS and fine. */
const char *jb_sub_exact_subject_problem(const char *subject);

/* The NATS subject for a type of s: standard `<prefix>.<cleanSource>.<cleanType>`,
 * exact `<prefix>.<type>` (no cleaning); prefix is JS_STREAM_SUBJECT_PREFIX
 * ("kyma" when cfg is NULL or the key is empty). On success *out is malloc'd
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

/* -------------------------------------------------------------- the store */

#define JB_SUB_BUCKET        "jetbridge-subscriptions"
#define JB_SUB_STATUS_BUCKET "jetbridge-status"

typedef struct jb_sub_store jb_sub_store;

/* Opens both KV buckets, creating them when missing (history 1, the stream's
 * storage type and replicas from cfg). js must outlive the store. */
jb_status jb_sub_store_open(const struct jb_cfg *cfg, jsCtx *js, jb_sub_store **out, jb_err *err);
void jb_sub_store_close(jb_sub_store *st);

typedef enum jb_sub_apply_result {
    JB_SUB_CREATED,
    JB_SUB_CONFIGURED,
    JB_SUB_UNCHANGED,
} jb_sub_apply_result;
/* "created", "configured", "unchanged". */
const char *jb_sub_apply_result_str(jb_sub_apply_result r);

/* Creates or replaces s (kubectl apply). creationTimestamp is set on create and
 * kept on change. Compare-and-set on the KV revision, retried on a race. */
jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *res,
                           jb_err *err);
/* JB_ERR_NOT_FOUND when absent. *out is the caller's. */
jb_status jb_sub_store_get(jb_sub_store *st, const char *ns, const char *name, jb_sub **out,
                           jb_err *err);
/* Appends every subscription (ns == NULL) or those of one namespace to out, sorted
 * by namespace then name. Unparseable entries are skipped (logged). */
jb_status jb_sub_store_list(jb_sub_store *st, const char *ns, jb_sub_vec *out, jb_err *err);
/* Deletes the subscription and its status. JB_ERR_NOT_FOUND when absent. The
 * reconcilers delete the consumers. */
jb_status jb_sub_store_delete(jb_sub_store *st, const char *ns, const char *name, jb_err *err);

/* Status JSON (Kyma's shape, see docs/contract.md 3). get: JB_ERR_NOT_FOUND when none;
 * *json is malloc'd. put: stores json unless it equals the stored value; *changed
 * (may be NULL) says whether it wrote. */
jb_status jb_sub_store_get_status(jb_sub_store *st, const char *ns, const char *name, char **json,
                                  jb_err *err);
jb_status jb_sub_store_put_status(jb_sub_store *st, const char *ns, const char *name,
                                  const char *json, bool *changed, jb_err *err);

/* GET /{application}/v1/events/subscribed (docs/contract.md 2.2b): the whole 200 body
 * `{"eventsInfo":[{"name":"order.created","version":"v1"}]}` for app[0..app_len),
 * computed from subs (pure: for tests and for callers with their own cache) or from
 * the store. *json is malloc'd, *json_len its length. */
jb_status jb_sub_subscribed_json(const jb_sub_vec *subs, const struct jb_cfg *cfg, const char *app,
                                 size_t app_len, char **json, size_t *json_len);
jb_status jb_sub_store_subscribed_json(jb_sub_store *st, const struct jb_cfg *cfg, const char *app,
                                       size_t app_len, char **json, size_t *json_len, jb_err *err);

/* ------------------------------------------------------------- the stream */

/* Creates the stream cfg->stream_name (subjects "<prefix>.>") with the settings
 * of docs/contract.md 2.4 when missing, and updates it when its settings differ (fields
 * that cannot change, such as storage, are left and logged). Idempotent; safe from
 * several processes at once. The publisher may call it too. */
jb_status jb_sub_ensure_stream(const struct jb_cfg *cfg, jsCtx *js, jb_err *err);

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

/* ------------------------------------------------- --subscriptions DIR */

/* Applies every manifest of dir to the store now (creating/updating; deleting
 * subscriptions previously applied from this dir whose manifests are gone,
 * recognised by the annotation JB_SUB_ANNOTATION_DIR whose value is the real path of
 * the file a subscription came from), then again whenever a file in dir changes
 * (inotify, changes within 200 ms batched), on a thread of its own; failed applies
 * (NATS down) are retried every 2 s. A file that does not parse is logged and leaves
 * its subscriptions as they are; subscriptions applied otherwise are never deleted.
 * The first apply happens before this returns; its failure is returned. js must
 * outlive the watcher. */
#define JB_SUB_ANNOTATION_DIR "jetbridge.kyma-project.io/applied-from"
typedef struct jb_sub_dirwatch jb_sub_dirwatch;
jb_status jb_sub_dirwatch_start(const struct jb_cfg *cfg, jsCtx *js, const char *dir,
                                jb_sub_dirwatch **out, jb_err *err);
void jb_sub_dirwatch_stop(jb_sub_dirwatch *w);
/* One apply of dir without a thread (what dirwatch does on each change). */
jb_status jb_sub_apply_dir(jb_sub_store *st, const char *dir, jb_err *err);

/* ------------------------------------- shared with other manifest kinds */

/* application/ reads Kyma Applications with the same machinery as Subscriptions:
 * one reader of YAML/JSON manifests, one way to open a KV bucket. */
struct cJSON;
typedef struct __kvStore kvStore;
#include <stdio.h>

/* Called once per manifest document with the parsed object (valid only during the
 * call) and its path for messages ("<origin>: document <i>"). A non-OK return
 * stops the reading and is returned (err filled by the callback). */
typedef jb_status (*jb_sub_doc_fn)(const struct cJSON *doc, const char *path, void *ud,
                                   jb_err *err);
/* Splits buf as jb_sub_parse does (JSON object, JSON array, kind: List, or
 * multi-document YAML with empty documents skipped; scalars become strings; the
 * same size, depth and alias limits) and calls fn for each document in order. */
jb_status jb_sub_manifest_each(const char *buf, size_t len, const char *origin, jb_sub_doc_fn fn,
                               void *ud, jb_err *err);
/* The same for a file, a directory (*.yaml|*.yml|*.json, sorted, not recursive) or
 * "-" (stdin), as jb_sub_parse_path reads them. */
jb_status jb_sub_manifest_each_path(const char *path, jb_sub_doc_fn fn, void *ud, jb_err *err);
/* Opens KV bucket name, creating it when missing (history 1, the stream's storage
 * type and replicas from cfg). *out is the caller's (kvStore_Destroy). */
jb_status jb_sub_kv_open(const struct jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out,
                         jb_err *err);
/* Maps a nats.c status (natsStatus) to a jb_status, filling err with what and
 * NATS's text (NOT_FOUND, TIMEOUT, NOT_CONNECTED, NOMEM, else NATS). */
jb_status jb_sub_nats_err(int nats_status, const char *what, jb_err *err);
/* RFC 3339 UTC as Kubernetes writes it ("2026-01-02T03:04:05Z") to and from ms
 * since the epoch; parse accepts only that form. */
void jb_sub_format_time(int64_t ms, char out[32]);
bool jb_sub_parse_time(const char *s, int64_t *out_ms);
/* kubectl's short age of a creation time ("45s", "12m", "5h", "3d", "<unknown>"
 * for 0) into out. */
void jb_sub_format_age(int64_t created_ms, char *out, size_t cap);
/* Writes a cJSON value as block YAML, each line indented by indent spaces. */
void jb_sub_print_yaml(const struct cJSON *j, int indent, FILE *f);

#endif

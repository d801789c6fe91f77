/*
 * application/: connected applications, Kyma's Application resource
 * (applicationconnector.kyma-project.io/v1alpha1, kind Application, cluster-scoped):
 * manifests, the jetbridge.io annotations, the store in NATS KV, bearer tokens, and
 * the in-memory registry the publisher reads on its hot path (docs/applications.md).
 *
 * Threading: parsed jb_app objects are immutable after parsing and may be read from
 * any thread; they are reference counted so that the registry can hand them out
 * while its watchers replace them. A jb_app_store may be used from one thread at a
 * time. The registry is safe to read from any thread.
 */
#ifndef JB_APP_H
#define JB_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct jb_cfg;
struct cJSON;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

/* ------------------------------------------------------------- manifests */

#define JB_APP_API_VERSION "applicationconnector.kyma-project.io/v1alpha1"
#define JB_APP_KIND        "Application"
/* The label that replaces the application's name in event-type cleaning (key
 * compared without case, as Kyma does). */
#define JB_APP_LABEL_TYPE "application-type"
/* jetbridge's own settings, as annotations (string values). Any other annotation
 * starting with "jetbridge.io/" is refused, so that a misspelt setting never
 * silently widens what an application may do. */
#define JB_APP_ANN_SOURCES    "jetbridge.io/allowed-sources"
#define JB_APP_ANN_TYPES      "jetbridge.io/allowed-types"
#define JB_APP_ANN_RATE       "jetbridge.io/rate-limit"
#define JB_APP_ANN_MANAGED_BY "jetbridge.io/managed-by"
/* The value of JB_APP_ANN_MANAGED_BY the Kubernetes controller sets. */
#define JB_APP_MANAGED_KUBERNETES "kubernetes"

/* Limits of one manifest: at most this many entries in each of clientIds,
 * allowed-sources and allowed-types, each at most JB_APP_MAX_ITEM_LEN bytes; a rate of
 * at most JB_APP_MAX_RATE events per second and a burst of at most JB_APP_MAX_BURST. */
#define JB_APP_MAX_LIST_ITEMS 256
#define JB_APP_MAX_ITEM_LEN   253
#define JB_APP_MAX_RATE       1000000.0
#define JB_APP_MAX_BURST      10000000u

/* One Kyma Application. Opaque, immutable after parsing, readable from any thread. */
typedef struct jb_app jb_app;

/* A growable array of applications; owns its items. Zero-initialize before use. */
typedef struct jb_app_vec {
    jb_app **items;
    size_t n, cap;
} jb_app_vec;
/* Destroys every item and the array; leaves v empty and reusable. NULL is fine. */
void jb_app_vec_clear(jb_app_vec *v);
/* Appends a, taking ownership (a is destroyed on failure: JB_ERR_NOMEM). */
jb_status jb_app_vec_push(jb_app_vec *v, jb_app *a);

/* Parses a buffer of one or more manifests, YAML (several documents separated by
 * `---`) or JSON (an object, an array, or a kind: List), as jb_sub_parse does for
 * Subscriptions. Every document must be apiVersion JB_APP_API_VERSION, kind
 * Application, metadata.name a DNS-1123 subdomain (at most 253 characters);
 * metadata.namespace is ignored (the resource is cluster-scoped). Validates
 * spec.compassMetadata.authentication.clientIds and the jetbridge.io annotations.
 * On success the applications are appended to out (owned by out). On failure out is
 * unchanged and err says `<origin>: document <i>: <field>: <problem>`. */
jb_status jb_app_parse(const char *buf, size_t len, const char *origin, jb_app_vec *out,
                       jb_err *err);
/* A file, every .yaml, .yml or .json file of a directory (sorted, not recursive), or "-"
 * (stdin), as jb_app_parse. Appends to out; on failure out is unchanged. */
jb_status jb_app_parse_path(const char *path, jb_app_vec *out, jb_err *err);
/* From a parsed cJSON object of one whole Application (what the API server returns;
 * not consumed). origin names it in errors. *out is the caller's. Fields the store
 * does not keep (status, managedFields, resourceVersion, ...) are dropped. */
jb_status jb_app_from_cjson(const struct cJSON *obj, const char *origin, jb_app **out, jb_err *err);
/* From the JSON kept in the store (jb_app_json). *out is the caller's. */
jb_status jb_app_from_json(const char *json, size_t len, jb_app **out, jb_err *err);
/* The canonical JSON kept in KV: apiVersion, kind, metadata (name, labels,
 * annotations, creationTimestamp when set) and spec as given. Owned by a. */
const char *jb_app_json(const jb_app *a);
/* Another reference to a (the object is immutable, so a reference is as good as a
 * copy); the caller drops it with jb_app_destroy or jb_app_release. Never NULL. */
jb_app *jb_app_dup(const jb_app *a);
/* Drops the caller's reference (frees at the last one). Same as jb_app_release;
 * NULL is fine. */
void jb_app_destroy(jb_app *a);

/* Accessors. Strings are owned by a, never NULL. */
const char *jb_app_name(const jb_app *a);
/* metadata.labels["application-type"] (label key compared without case), "" when
 * absent. */
const char *jb_app_type_label(const jb_app *a);
/* The name used in event-type cleaning: the application-type label when set, else
 * the name. */
const char *jb_app_clean_name(const jb_app *a);
/* spec.compassMetadata.authentication.clientIds */
size_t jb_app_client_id_count(const jb_app *a);
const char *jb_app_client_id(const jb_app *a, size_t i);
/* jetbridge.io/allowed-sources, entries trimmed of surrounding spaces. */
size_t jb_app_allowed_source_count(const jb_app *a);
const char *jb_app_allowed_source(const jb_app *a, size_t i);
/* jetbridge.io/allowed-types (prefixes of the type as sent); 0 entries = any type. */
size_t jb_app_allowed_type_count(const jb_app *a);
const char *jb_app_allowed_type(const jb_app *a, size_t i);
/* jetbridge.io/rate-limit "200/s,burst=400" (burst defaults to the rate rounded up,
 * at least 1): false when none is set. Either out-pointer may be NULL. */
bool jb_app_rate_limit(const jb_app *a, double *per_second, uint32_t *burst);
/* True when the annotation jetbridge.io/managed-by is "kubernetes" (set by the
 * controller that mirrors Application resources). */
bool jb_app_kubernetes_owned(const jb_app *a);
/* metadata.creationTimestamp in ms since the epoch, 0 when unset. */
int64_t jb_app_created_ms(const jb_app *a);
/* True when a and b are the same manifest, creationTimestamp aside. */
bool jb_app_equal(const jb_app *a, const jb_app *b);
/* The canonical document (owned by a; do not modify). */
const struct cJSON *jb_app_doc(const jb_app *a);

/* -------------------------------------------------------------- the store */

#define JB_APP_BUCKET       "jetbridge-applications"
#define JB_APP_TOKEN_BUCKET "jetbridge-app-tokens"
/* A token: this prefix and 256 random bits in URL-safe base64 without padding. */
#define JB_APP_TOKEN_PREFIX "jbt_"
#define JB_APP_TOKEN_LEN    47

/* The store: KV bucket JB_APP_BUCKET, key = name, value = jb_app_json. Tokens: KV
 * bucket JB_APP_TOKEN_BUCKET, key = hex SHA-256 of the token, value JSON
 * {"application":NAME,"created":RFC3339}. Only hashes are stored, never a token. */
typedef struct jb_app_store jb_app_store;
/* Opens both buckets, creating them when missing (history 1, the stream's storage
 * type and replicas). js must outlive the store. */
jb_status jb_app_store_open(const struct jb_cfg *cfg, jsCtx *js, jb_app_store **out, jb_err *err);
void jb_app_store_close(jb_app_store *st);

typedef enum jb_app_apply_result {
    JB_APP_CREATED,
    JB_APP_CONFIGURED,
    JB_APP_UNCHANGED,
} jb_app_apply_result;
/* "created", "configured", "unchanged". */
const char *jb_app_apply_result_str(jb_app_apply_result r);

/* Creates or replaces a (compare-and-set on the KV revision, retried on a race);
 * creationTimestamp is set on create and kept on change. force=false refuses
 * (JB_ERR_CONFLICT) to overwrite a Kubernetes-owned entry (the CLI); the controller
 * passes true. */
jb_status jb_app_store_put(jb_app_store *st, const jb_app *a, bool force, jb_err *err);
/* The same, saying in *res (may be NULL) what happened. */
jb_status jb_app_store_apply(jb_app_store *st, const jb_app *a, bool force,
                             jb_app_apply_result *res, jb_err *err);
/* JB_ERR_NOT_FOUND when absent. *out is the caller's. */
jb_status jb_app_store_get(jb_app_store *st, const char *name, jb_app **out, jb_err *err);
/* Appends every application to out, sorted by name. Unparseable entries are skipped
 * (logged). */
jb_status jb_app_store_list(jb_app_store *st, jb_app_vec *out, jb_err *err);
/* Deletes the application and revokes its tokens (so that a later application of
 * the same name does not inherit them). JB_ERR_NOT_FOUND when absent. */
jb_status jb_app_store_delete(jb_app_store *st, const char *name, jb_err *err);

/* A new random token (256 bits from OpenSSL's RAND_bytes, URL-safe base64, prefix
 * JB_APP_TOKEN_PREFIX) for an existing application (JB_ERR_NOT_FOUND otherwise);
 * only its SHA-256 is stored. *token_out is the caller's: print it once, never log
 * it, then free it. */
jb_status jb_app_token_create(jb_app_store *st, const char *name, char **token_out, jb_err *err);
/* Revokes every token of the application; *n (may be NULL) says how many. */
jb_status jb_app_token_revoke(jb_app_store *st, const char *name, size_t *n, jb_err *err);
/* Number of tokens of the application (for `app describe`). */
jb_status jb_app_token_count(jb_app_store *st, const char *name, size_t *n, jb_err *err);

/* ------------------------------------------------------------ the registry */

/* Bounds of the registry: past them, new applications or tokens are refused (not
 * loaded, logged once per entry) until others are removed. */
#define JB_APP_MAX_APPLICATIONS 10000
#define JB_APP_MAX_TOKENS       100000

/* The registry the publisher reads on its hot path: an in-memory copy of both
 * buckets, kept current by KV watchers (threads of its own), safe to read from any
 * thread, bounded (JB_APP_MAX_APPLICATIONS, JB_APP_MAX_TOKENS). Lookups return a
 * reference the caller releases with jb_app_release (NULL when unknown). */
typedef struct jb_app_registry jb_app_registry;
/* Opens (creating when missing) both buckets, loads their current contents before
 * returning, then follows changes. nc and js must outlive the registry; js may be
 * NULL (the registry then makes its own context from nc). */
jb_status jb_app_registry_start(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                jb_app_registry **out, jb_err *err);
/* The same without waiting: returns at once, and the watcher threads open and load
 * the buckets as soon as NATS answers (retrying every second; lookups find nothing
 * until then). For a process that starts before NATS is reachable (the publisher).
 * cfg, nc and js must outlive the registry. */
jb_status jb_app_registry_create(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                                 jb_app_registry **out, jb_err *err);
/* True once both buckets were loaded (always after jb_app_registry_start).
 * Thread-safe; NULL gives false. */
bool jb_app_registry_loaded(jb_app_registry *r);
/* Stops the watchers and frees. References handed out stay valid until released.
 * NULL is fine. */
void jb_app_registry_stop(jb_app_registry *r);
const jb_app *jb_app_registry_find(jb_app_registry *r, const char *name, size_t len);
/* A certificate CN: the application of that name, else the one application listing
 * it in clientIds (NULL when several do: an ambiguous CN identifies nobody). */
const jb_app *jb_app_registry_find_by_client_id(jb_app_registry *r, const char *cn, size_t len);
/* Token bytes as sent (not NUL-terminated); hashed inside; NULL when unknown or
 * revoked. The token is never logged. */
const jb_app *jb_app_registry_find_by_token(jb_app_registry *r, const char *token, size_t len);
/* Numbers of applications and tokens loaded now. */
size_t jb_app_registry_count(jb_app_registry *r, size_t *tokens);
/* Releases a reference from a lookup (or jb_app_dup). NULL is fine. */
void jb_app_release(const jb_app *a);

#endif

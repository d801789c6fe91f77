/*
 * subscription/jb_sub_manifest.h: Subscription manifests (jb_sub): parsing,
 * the canonical JSON, accessors. Parsed objects are immutable and may be read from
 * any thread.
 * Part of the subscription module; subscription/jb_sub.h includes it.
 */
#ifndef JB_SUB_MANIFEST_H
#define JB_SUB_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_manifest.h"
#include "common/jb_status.h"

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
/* Appends to a vec, taking ownership of s (destroyed on failure). */
jb_status jb_sub_vec_push(jb_sub_vec *v, jb_sub *s);

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
#define JB_SUB_MAX_MANIFEST_BYTES JB_MANIFEST_MAX_BYTES
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
/* The same document, parsed (owned by s; do not modify). */
const struct cJSON *jb_sub_doc(const jb_sub *s);

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

#endif

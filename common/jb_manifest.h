/*
 * common/ Kubernetes-style manifests: the one reader of YAML and JSON documents
 * that every stored kind (Subscriptions, Applications) uses, the metadata checks
 * they share, and the forms kubectl shows (RFC 3339 times, ages, block YAML).
 */
#ifndef JB_MANIFEST_H
#define JB_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/jb_status.h"

struct cJSON;

/* The largest manifest buffer or file read (nesting is limited to depth 64, and
 * YAML aliases to 200000 nodes after expansion). */
#define JB_MANIFEST_MAX_BYTES (4 * 1024 * 1024)

/* Called once per manifest document with the parsed object (valid only during the
 * call) and its path for messages ("<origin>: document <i>", i from 1). A non-OK
 * return stops the reading and is returned (err filled by the callback). */
typedef jb_status (*jb_manifest_doc_fn)(const struct cJSON *doc, const char *path, void *ud,
                                        jb_err *err);

/* Splits buf into documents: a JSON object, a JSON array, a kind: List (items), or
 * multi-document YAML (empty documents skipped; scalars become strings, plain
 * nulls null) and calls fn for each in order. origin names the buffer (NULL: "-"). */
jb_status jb_manifest_each(const char *buf, size_t len, const char *origin, jb_manifest_doc_fn fn,
                           void *ud, jb_err *err);
/* The same for a file (content decides the format), every *.yaml|*.yml|*.json
 * file of a directory (not recursive, sorted by name), or "-" (stdin). */
jb_status jb_manifest_each_path(const char *path, jb_manifest_doc_fn fn, void *ud, jb_err *err);
/* One stored JSON document (a KV value): fn is called with path "store". */
jb_status jb_manifest_from_json(const char *json, size_t len, jb_manifest_doc_fn fn, void *ud,
                                jb_err *err);

/* Checks apiVersion, kind, metadata (a map) and metadata.name (a DNS-1123
 * subdomain); on success *meta is obj's metadata object. */
jb_status jb_manifest_head(const struct cJSON *obj, const char *path, const char *api_version,
                           const char *kind, const struct cJSON **meta, jb_err *err);
/* Copies (deeply) from[keys[i]] into to for each of the n keys that is present and
 * not null, as the canonical metadata keeps them; false when out of memory (what
 * was copied stays in to). */
bool jb_json_copy_keys(const struct cJSON *from, struct cJSON *to, const char *const *keys,
                       size_t n);
/* DNS-1123: a label (dots false, max 63) or a subdomain (dots true, max 253). */
bool jb_dns_name(const char *s, size_t max, bool dots);
/* The one wording of a field error: "<path>: <field>: <what>" (JB_ERR_INVALID). */
jb_status jb_field_err(jb_err *err, const char *path, const char *field, const char *what);

/* RFC 3339 UTC as Kubernetes writes it ("2026-01-02T03:04:05Z") to and from ms
 * since the epoch; parse accepts only that form. */
void jb_k8s_time_format(int64_t ms, char out[32]);
bool jb_k8s_time_parse(const char *s, int64_t *out_ms);
/* kubectl's short age of a creation time ("45s", "12m", "5h", "3d", "<unknown>"
 * for 0) into out. */
void jb_k8s_age(int64_t created_ms, char *out, size_t cap);
/* Writes a cJSON value as block YAML, each line indented by indent spaces. */
void jb_yaml_print(const struct cJSON *j, int indent, FILE *f);

#endif

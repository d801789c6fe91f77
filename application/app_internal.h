/* Private to application/: the body of jb_app and helpers shared by its files. */
#ifndef JB_APP_INTERNAL_H
#define JB_APP_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "application/jb_app.h"

/* A list of strings parsed from a manifest (clientIds, comma lists). */
typedef struct app_strs {
    char **items;
    size_t n;
} app_strs;

struct jb_app {
    atomic_uint refs; /* jb_app_dup / registry lookups add one, release drops one */
    char *name;
    char *label; /* application-type, "" when absent */
    app_strs client_ids;
    app_strs sources; /* allowed-sources */
    app_strs types;   /* allowed-types */
    bool has_rate;
    double rate;
    uint32_t burst;
    bool k8s_owned;
    int64_t created_ms;
    cJSON *doc; /* canonical manifest */
    char *json; /* cJSON_PrintUnformatted(doc) */
};

/* A copy of a with metadata.creationTimestamp set to created_ms (0 removes it);
 * NULL when out of memory. */
jb_app *app_with_created(const jb_app *a, int64_t created_ms);

/* Opens (creating when missing) one of the module's KV buckets with the stream's
 * storage type and replicas. */
typedef struct __kvStore kvStore;
jb_status app_kv_open(const struct jb_cfg *cfg, jsCtx *js, const char *name, kvStore **out,
                      jb_err *err);

/* jb_app_registry_start with other bounds than JB_APP_MAX_APPLICATIONS and
 * JB_APP_MAX_TOKENS (tests reach the bounds with a few entries). */
jb_status app_registry_start_capped(const struct jb_cfg *cfg, jsCtx *js, size_t max_apps,
                                    size_t max_tokens, jb_app_registry **out, jb_err *err);

/* A string-keyed hash map (map.c) for the registry: keys are copied, values are
 * the caller's. Chained, grows at load factor 1. Zero-initialize before use. */
typedef struct app_map_node app_map_node;
typedef struct app_map {
    app_map_node **buckets;
    size_t nbuckets, n;
} app_map;
void *app_map_get(const app_map *m, const char *key, size_t klen);
/* Sets key to val; the value it replaces (or NULL) goes to *old. JB_ERR_NOMEM leaves
 * the map as it was. */
jb_status app_map_put(app_map *m, const char *key, size_t klen, void *val, void **old);
/* Removes key and returns its value, NULL when absent. */
void *app_map_del(app_map *m, const char *key, size_t klen);
/* Calls fn for every entry (no changes to m during the walk). */
void app_map_each(const app_map *m, void (*fn)(const char *key, void *val, void *ud), void *ud);
/* Frees every entry, calling free_val (may be NULL) on each value; m is empty after. */
void app_map_clear(app_map *m, void (*free_val)(void *val));

/* Destroys the items of v past the first n (taking back what a failed call
 * appended); without keep_array an emptied v also frees its array, as before the
 * call. */
void app_vec_truncate(jb_app_vec *v, size_t n, bool keep_array);

#endif

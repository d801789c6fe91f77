/* Private to subscription/: the body of jb_sub and helpers shared by its files. */
#ifndef JB_SUB_INTERNAL_H
#define JB_SUB_INTERNAL_H

#include <cjson/cJSON.h>

#include "common/jb_kv.h"
#include "subscription/jb_sub.h"

struct jb_sub {
    char *ns;
    char *name;
    char *key;    /* "<ns>.<name>" */
    char *sink;   /* "" when absent */
    char *source; /* "" when absent */
    char *tm_raw; /* NULL when absent */
    jb_sub_matching tm;
    char **types;
    size_t ntypes;
    int64_t created_ms;
    cJSON *doc; /* canonical manifest */
    char *json; /* cJSON_PrintUnformatted(doc) */
};

/* Builds a jb_sub from one manifest object (not consumed). path names the document
 * in errors, for example "f.yaml: document 2". */
jb_status sub_from_cjson(const cJSON *obj, const char *path, const char *default_ns, jb_sub **out,
                         jb_err *err);

/* Returns a copy of s with metadata.creationTimestamp and/or an annotation set
 * (value NULL removes it); NULL when out of memory. */
jb_sub *sub_with_meta(const jb_sub *s, int64_t created_ms, const char *ann_key,
                      const char *ann_value);

/* True when a and b are the same manifest, creationTimestamp aside. */
bool sub_equal_spec(const jb_sub *a, const jb_sub *b);

/* Writes the status JSON for s given the consumer outcome: active_err NULL means
 * every consumer exists. *out is malloc'd. prev (may be NULL) is the stored status,
 * whose lastTransitionTime values are kept for conditions that did not change. */
jb_status sub_status_json(const jb_sub *s, const struct jb_cfg *cfg, const char *prev,
                          const char *active_err, char **out);

/* store.c internals used by the reconciler. */
typedef struct __kvStore kvStore;
kvStore *sub_store_kv(jb_sub_store *st);
jb_status sub_store_write_status(jb_sub_store *st, const char *key, const char *json, jb_err *err);
jb_status sub_store_delete_status(jb_sub_store *st, const char *key, jb_err *err);

/* Parses a stored entry and checks that its key is its manifest's
 * "<namespace>.<name>" (JB_ERR_INVALID otherwise). */
jb_status sub_from_entry(const char *key, const void *val, size_t len, jb_sub **out, jb_err *err);

/* Destroys the items of v past the first n (taking back what a failed call
 * appended); without keep_array an emptied v also frees its array, as before the
 * call. */
void sub_vec_truncate(jb_sub_vec *v, size_t n, bool keep_array);

#endif

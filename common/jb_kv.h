/*
 * common/ NATS KV helpers: the one way the stores (subscription/, application/)
 * open a bucket, read, list, write with compare-and-set, and delete, and the one
 * mapping of nats.c statuses to jb_status. Calls block; use them from a thread
 * that may wait (never from a libevent loop callback).
 */
#ifndef JB_KV_H
#define JB_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

typedef struct __jsCtx jsCtx;
typedef struct __kvStore kvStore;
typedef struct __kvEntry kvEntry;

/* A listing waits this long for a bucket's current values. */
#define JB_KV_LIST_TIMEOUT_MS 10000
/* A listing fetches at most this many values per request. */
#define JB_KV_LIST_BATCH 256
/* A compare-and-set write races with other writers through the revision; after
 * this many lost races something is wrong and the write fails (JB_ERR_CONFLICT). */
#define JB_KV_PUT_ATTEMPTS 8

/* Maps a nats.c status (natsStatus) to a jb_status and fills err with
 * "<what>: <NATS's text>" (NOT_FOUND, TIMEOUT, NOT_CONNECTED, NOMEM, else NATS). */
jb_status jb_nats_err(int nats_status, const char *what, jb_err *err);

/* Opens KV bucket name, creating it when missing with history 1, file storage (or
 * memory when memory is true) and replicas (at least 1). Several processes may
 * create it at once. *out is the caller's (kvStore_Destroy). */
jb_status jb_kv_open(jsCtx *js, const char *name, bool memory, int replicas, kvStore **out,
                     jb_err *err);

/* The current entry of key. JB_ERR_NOT_FOUND, with err untouched, when absent (the
 * caller words that for its resource). *out is the caller's (kvEntry_Destroy). */
jb_status jb_kv_get(kvStore *kv, const char *key, const char *what, kvEntry **out, jb_err *err);

/* One current value of a bucket as jb_kv_each hands it over: key is the subject
 * after "$KV.<bucket>." (what kvEntry_Key gives), value is len bytes. Both are valid
 * only during the call. */
typedef struct jb_kv_item {
    const char *key;
    const char *value;
    size_t len;
} jb_kv_item;

/* Calls fn for every current value of kv (deleted and purged keys skipped), then
 * returns; stops at the first non-OK from fn and returns it. Waits at most
 * JB_KV_LIST_TIMEOUT_MS. js is a context of the connection kv was opened on.
 * It reads the bucket through an ephemeral pull consumer (last value per key, no
 * acks), not a KV watcher: nats.c re-creates a watcher's ordered consumer on its
 * own thread after a reconnect, and destroying a watcher at that moment is a use
 * after free inside nats.c 3.4.1 (docs/subscriptions.md, "The store watcher across
 * reconnects"); nats.c re-creates no pull consumer. */
typedef jb_status (*jb_kv_entry_fn)(const jb_kv_item *it, void *ud, jb_err *err);
jb_status jb_kv_each(jsCtx *js, kvStore *kv, const char *what, jb_kv_entry_fn fn, void *ud,
                     jb_err *err);

/* Read-modify-write of one key: reads the entry (val NULL and len 0 when absent),
 * asks fn for the value to write (*next malloc'd, which the helper frees; NULL
 * leaves the entry as it is), then creates the key or updates it on the revision
 * read. When another writer won in between, it starts again (fn is called again,
 * so it must not keep state from an earlier call), at most JB_KV_PUT_ATTEMPTS
 * times. A non-OK from fn stops and is returned. */
typedef jb_status (*jb_kv_next_fn)(const char *val, size_t len, void *ud, char **next, jb_err *err);
jb_status jb_kv_update(kvStore *kv, const char *key, const char *what, jb_kv_next_fn fn, void *ud,
                       jb_err *err);

/* Deletes key if it exists. JB_ERR_NOT_FOUND, with err untouched, when absent. */
jb_status jb_kv_delete(kvStore *kv, const char *key, const char *what, jb_err *err);

#endif

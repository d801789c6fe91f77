/*
 * subscription/jb_sub_store.h: the store of Subscriptions and their status
 * in NATS KV. A jb_sub_store may be used from one thread at a time.
 * Part of the subscription module; subscription/jb_sub.h includes it.
 */
#ifndef JB_SUB_STORE_H
#define JB_SUB_STORE_H

#include "subscription/jb_sub_manifest.h"

struct jb_cfg;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

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
    JB_SUB_REFUSED, /* jb_sub_store_apply from the CLI: owned by Kubernetes, not written */
} jb_sub_apply_result;
/* "created", "configured", "unchanged", "refused". */
const char *jb_sub_apply_result_str(jb_sub_apply_result r);

/* Creates or replaces s (kubectl apply). creationTimestamp is set on create and
 * kept on change. Compare-and-set on the KV revision, retried on a race. */
jb_status jb_sub_store_put(jb_sub_store *st, const jb_sub *s, jb_sub_apply_result *res,
                           jb_err *err);
/* jb_sub_store_put with from_cli true is `sub apply`: it reads the stored entry
 * once and, from it, refuses a subscription owned by Kubernetes (*res
 * JB_SUB_REFUSED, JB_OK, nothing written) and keeps the stored
 * JB_SUB_ANNOTATION_DIR annotation when s has none. */
jb_status jb_sub_store_apply(jb_sub_store *st, const jb_sub *s, bool from_cli,
                             jb_sub_apply_result *res, jb_err *err);
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

#endif

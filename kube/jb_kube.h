/*
 * kube/: Kubernetes mode. A small Kubernetes API client (libcurl + cJSON) and the
 * controller that mirrors Kyma Subscriptions (eventing.kyma-project.io/v1alpha2) and
 * Applications (applicationconnector.kyma-project.io/v1alpha1) into the NATS KV
 * stores, writes Subscription status back, guards deletions with a finalizer and
 * elects one writer with a coordination.k8s.io/v1 Lease.
 *
 * Threading: the controller runs on threads of its own (one per watch, one for the
 * Lease, one for the KV status watch, one worker); they hand work to the worker
 * through one bounded mailbox. Public functions are thread-safe where noted.
 */
#ifndef JB_KUBE_H
#define JB_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jb_status.h"

struct jb_cfg;
struct jb_metrics;
struct cJSON;
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

/* The annotation that marks a subscription (or application) in the KV store as
 * mirrored from Kubernetes; `jetbridge sub apply` refuses to overwrite those. */
#define JB_KUBE_MANAGED_BY     "jetbridge.io/managed-by" /* = JB_SUB_ANNOTATION_MANAGED_BY */
#define JB_KUBE_MANAGED_BY_VAL "kubernetes"
/* The finalizer the controller puts on every Subscription it mirrors. */
#define JB_KUBE_FINALIZER "jetbridge.io/finalizer"

/* ------------------------------------------------------------- API access */

/* How to reach the API server: from a kubeconfig or from the pod's service account.
 * Opaque; holds secrets (token, key) that are never logged. */
typedef struct jb_kube_config jb_kube_config;

/* Parses a kubeconfig (YAML or JSON) from buf[0..len): the current context's cluster
 * (server, certificate-authority(-data), insecure-skip-tls-verify) and user (token,
 * tokenFile, client-certificate(-data), client-key(-data)). Relative file names are
 * resolved against dir (the kubeconfig's directory; NULL: the current directory).
 * Files named are read at request time, not here. exec and auth-provider users are
 * refused. Limit: len at most JB_KUBE_MAX_CONFIG_BYTES. On failure err names the
 * field; no secret is ever part of the message. *out is the caller's. */
#define JB_KUBE_MAX_CONFIG_BYTES (1024 * 1024)
jb_status jb_kube_config_parse(const char *buf, size_t len, const char *dir, jb_kube_config **out,
                               jb_err *err);
/* KUBECONFIG (first file of a ':' list) when set, else the in-cluster configuration
 * (KUBERNETES_SERVICE_HOST/PORT, the service-account token and CA, re-read on each
 * request since bound tokens rotate). */
jb_status jb_kube_config_load(const struct jb_cfg *cfg, jb_kube_config **out, jb_err *err);
/* The API server's base URL ("https://host:port"), owned by c. */
const char *jb_kube_config_server(const jb_kube_config *c);
void jb_kube_config_destroy(jb_kube_config *c);

/* ------------------------------------------------------ watch stream parser */

/* The incremental parser of a watch stream: newline-delimited JSON events
 * {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. Lines longer than
 * max_line bytes are skipped whole (counted), and so are lines that are not such an
 * event (counted as malformed). The parser never holds more than max_line bytes. */
typedef struct jb_kube_watch_parser jb_kube_watch_parser;
typedef enum jb_kube_event_type {
    JB_KUBE_ADDED,
    JB_KUBE_MODIFIED,
    JB_KUBE_DELETED,
    JB_KUBE_BOOKMARK,
    JB_KUBE_ERROR,
} jb_kube_event_type;
/* Called once per valid event; obj (the event's "object") is valid during the call
 * only: copy what you keep. Returning false stops the feed (jb_kube_watch_feed then
 * returns false). */
typedef bool (*jb_kube_event_fn)(jb_kube_event_type type, const struct cJSON *obj, void *ud);
jb_kube_watch_parser *jb_kube_watch_parser_create(size_t max_line, jb_kube_event_fn fn, void *ud);
/* Feeds len bytes; calls fn for each complete line. False when fn asked to stop. */
bool jb_kube_watch_feed(jb_kube_watch_parser *p, const char *data, size_t len);
/* Lines skipped so far because they were malformed / too long. */
uint64_t jb_kube_watch_malformed(const jb_kube_watch_parser *p);
uint64_t jb_kube_watch_oversized(const jb_kube_watch_parser *p);
void jb_kube_watch_parser_destroy(jb_kube_watch_parser *p);

/* -------------------------------------------------------------- controller */

typedef struct jb_kube_ctl jb_kube_ctl;

/* Starts the controller: loads the API access (jb_kube_config_load), opens the
 * subscription store on js (and the application registry store), and starts its
 * threads. Returns at once; the API server may be unreachable (the controller keeps
 * trying and reports not ready). metrics may be NULL; it and js must outlive the
 * controller. JB_ERR_CONFIG when the access configuration is unusable. */
jb_status jb_kube_ctl_start(const struct jb_cfg *cfg, natsConnection *nc, jsCtx *js,
                            struct jb_metrics *metrics, jb_kube_ctl **out, jb_err *err);
/* True when the API server is reachable, the first list finished and nothing is
 * forbidden; otherwise false with the reason in reason[0..cap). Thread-safe. */
bool jb_kube_ctl_ready(jb_kube_ctl *c, char *reason, size_t cap);
/* jb_kube_ctl_ready with a void * (a jb_ready_reason_fn for jb_admin_set_ready_reason). */
bool jb_kube_ready_fn(void *ctl, char *reason, size_t cap);
/* True while this process holds the Lease. Thread-safe. */
bool jb_kube_ctl_leader(jb_kube_ctl *c);
/* Stops every thread (a held Lease is released) and frees. NULL is fine. */
void jb_kube_ctl_stop(jb_kube_ctl *c);

#endif

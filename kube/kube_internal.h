/* Private to kube/: the API access, the HTTP client, informers, the items and their
 * mailbox (a common/jb_mailbox.h one) and the Lease elector. Files call downwards
 * only: ctl.c uses informer.c, lease.c, writer.c, items.c and client.c; informer.c
 * and writer.c use client.c and items.c. */
#ifndef JB_KUBE_INTERNAL_H
#define JB_KUBE_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/jb_common.h"
#include "common/jb_mailbox.h"
#include "config/jb_cfg.h"
#include "kube/jb_kube.h"

/* The in-cluster service-account files. */
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct jb_kube_config {
    char *server; /* https://host:port, no trailing '/' */
    char *ca_file;
    unsigned char *ca_data;
    size_t ca_len;
    bool insecure;
    char *token; /* secret */
    char *token_file;
    char *cert_file;
    unsigned char *cert_data;
    size_t cert_len;
    char *key_file;
    unsigned char *key_data; /* secret */
    size_t key_len;
};

/* ------------------------------------------------------------- client.c */

/* One HTTP client: one curl easy handle, used by one thread at a time. stop (may be
 * NULL) aborts a running request when it becomes true. */
typedef struct kube_client kube_client;
kube_client *kube_client_create(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                                const atomic_bool *stop);
void kube_client_destroy(kube_client *c);

typedef struct kube_resp {
    long code;  /* HTTP status */
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} kube_resp;
void kube_resp_free(kube_resp *r);

/* One request. verb ("get", "list", "patch", ...) and resource
 * ("subscriptions.eventing.kyma-project.io") label the request counter and the
 * forbidden log line. body may be NULL. The answer body is capped at max_body
 * (JB_ERR_TOO_LARGE past it). JB_OK whenever an HTTP answer arrived, whatever its
 * code (401/403 are logged here, rate-limited); JB_ERR_IO on transport failures. */
jb_status kube_do(kube_client *c, const char *verb, const char *resource, const char *method,
                  const char *path, const char *content_type, const char *body, size_t max_body,
                  kube_resp *out, jb_err *err);

/* A watch: GET path (a watch=1 URL) streamed into p. connected (may be NULL) is set
 * true once the server answered 200. *code is the HTTP status. Returns when the
 * stream ends (JB_OK), on transport failure (JB_ERR_IO), or when the parser's
 * callback stopped it or stop was set (JB_ERR_TIMEOUT is never used here). */
jb_status kube_watch(kube_client *c, const char *resource, const char *path,
                     jb_kube_watch_parser *p, atomic_bool *connected, long *code, jb_err *err);

/* URL-escapes s into a malloc'd string (NULL when out of memory). */
char *kube_escape(const char *s);

/* Logs a refusal (401/403) once per (verb, resource) every few seconds. */
void kube_log_denied(const char *verb, const char *resource, long code);
/* What an HTTP refusal means, appended to a /readyz reason: " (forbidden by RBAC)" for
 * 403, " (unauthorized: ...)" for 401, "" otherwise. Static text. */
const char *kube_refusal(long code);

/* -------------------------------------------------------------- items.c */

typedef enum kube_res { KUBE_RES_SUB, KUBE_RES_APP } kube_res;

typedef enum kube_item_kind {
    KI_UPSERT,     /* obj: the object as the API server has it now */
    KI_DELETE,     /* obj: its last state */
    KI_SYNC_BEGIN, /* a (re)list of scope starts: objects not listed before
                      KI_SYNC_END are gone */
    KI_SYNC_END,
    KI_STATUS,        /* key + json: the KV status of a subscription */
    KI_STATUS_DELETE, /* key */
    KI_WAKE,          /* leadership changed */
    KI_RESULT,        /* a writer finished a job: key, job, code, memo */
} kube_item_kind;

/* What a writer job does: a merge patch of path with body json. */
typedef enum kube_job {
    KUBE_JOB_FINALIZER, /* metadata.finalizers (resourceVersion-guarded) */
    KUBE_JOB_STATUS,    /* the status subresource */
} kube_job;

typedef struct kube_item {
    kube_item_kind kind;
    kube_res res;
    char *scope; /* namespace of the informer ("" all): SYNC_* only */
    char *key;   /* "<ns>.<name>" or the application's name */
    cJSON *obj;
    char *json;
    kube_job job; /* KI_RESULT and writer jobs */
    char *path;   /* writer jobs: the object's URL path */
    char *memo;   /* writer jobs: what the worker wants back (the KV status written) */
    char *rv;     /* writer jobs: resourceVersion of the object the patch was built from */
    long code;    /* KI_RESULT: HTTP status, 0 when no answer */
    size_t bytes; /* accounted size */
    struct kube_item *next;
} kube_item;
void kube_item_free(kube_item *it);
/* A jb_mail_fn that frees the item a message carries (jb_mailbox_destroy). */
void kube_item_dispose(jb_mail *m, void *ud);

/* The one hand-off into the controller's worker is a jb_mailbox whose messages
 * carry a kube_item in ptr, bounded by item count and by bytes (the items'
 * accounted sizes). NULL when out of memory; jb_mailbox_destroy with
 * kube_item_dispose frees it. */
jb_mailbox *kube_mailbox_create(size_t max_items, size_t max_bytes);
/* Posts *it (takes ownership and sets it to NULL, also on failure). A producer
 * waits while the mailbox is full (a watch stream then simply stops being read:
 * TCP pushes back); it gives up with false once the mailbox is closed (stop). */
bool kube_post(jb_mailbox *m, kube_item **it);

/* ------------------------------------------------------------- writer.c */

/* A merge patch of path (verb "patch" on resource); *code is the HTTP status (0:
 * none). Refusals other than 404/409 are logged with the API server's message. */
jb_status kube_patch(kube_client *c, const char *resource, const char *path, const char *body,
                     long *code);
/* The same; on 200, *obj (when obj is not NULL) is the object the server answered. */
jb_status kube_patch_obj(kube_client *c, const char *resource, const char *path, const char *body,
                         long *code, cJSON **obj);

/* A few threads that send the controller's patches concurrently (the API server and
 * etcd batch concurrent writes; one at a time would bound a large cluster's catch-up
 * by the round-trip time). Each job comes back to the mailbox as KI_RESULT. The worker
 * keeps at most one job per object in flight, so the queue is bounded by the number
 * of objects. */
typedef struct kube_writer kube_writer;
kube_writer *kube_writer_start(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                               jb_mailbox *m, const atomic_bool *stop, size_t nthreads);
/* Takes ownership of *job (kind ignored; job, key, path, json and memo set). */
void kube_writer_submit(kube_writer *w, kube_item **job);
/* Joins (stop must be set) and frees, with jobs not started. NULL is fine. */
void kube_writer_join(kube_writer *w);

/* ------------------------------------------------------------ informer.c */

/* Health shared by a background thread and /readyz. */
typedef struct kube_health {
    pthread_mutex_t mu;
    bool ok;          /* the last request worked */
    bool synced;      /* the first list finished */
    bool absent;      /* the resource does not exist (CRD missing): not an error */
    atomic_bool live; /* a watch stream is open (answered 200) */
    char why[256];
} kube_health;
void kube_health_init(kube_health *h);
void kube_health_set(kube_health *h, bool ok, const char *why);

/* List + watch of one resource in one scope, on a thread of its own, feeding m:
 * SYNC_BEGIN, every listed object as UPSERT, SYNC_END, then UPSERT/DELETE per watch
 * event. Relists on 410 Gone; reconnects with capped jittered backoff. */
typedef struct kube_informer kube_informer;
typedef struct kube_informer_spec {
    kube_res res;
    const char *resource;           /* "subscriptions.eventing.kyma-project.io" */
    const char *group_version_path; /* "/apis/eventing.kyma-project.io/v1alpha2" */
    const char *plural;             /* "subscriptions" */
    const char *ns;                 /* "" = all namespaces / cluster-scoped */
    bool optional;                  /* 404: log once, retry rarely, not an error */
} kube_informer_spec;
kube_informer *kube_informer_start(const kube_informer_spec *spec, const jb_kube_config *kc,
                                   const jb_cfg *cfg, jb_metric *requests, jb_mailbox *m,
                                   const atomic_bool *stop, jb_err *err);
kube_health *kube_informer_health(kube_informer *inf);
/* Joins the thread (stop must be set) and frees. NULL is fine. */
void kube_informer_join(kube_informer *inf);

/* Names the calling thread (at most 15 characters), so that top -H, perf and
 * /proc/PID/task/TID/comm tell the controller's threads apart. */
void kube_thread_name(const char *name);

/* Sleeps up to ms, returning early when stop becomes true. */
void kube_sleep(const atomic_bool *stop, int64_t ms);
/* Capped, jittered exponential backoff: attempt 0 -> ~0.5 s ... capped at 30 s. */
int64_t kube_backoff_ms(int attempt);

/* --------------------------------------------------------------- lease.c */

typedef struct kube_elector kube_elector;
/* Starts the elector thread on Lease jetbridge-controller in cfg->pod_namespace.
 * on_change(ud) is called from its thread whenever leadership changes. */
kube_elector *kube_elector_start(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                                 const atomic_bool *stop, void (*on_change)(void *ud), void *ud,
                                 jb_err *err);
bool kube_elector_leader(kube_elector *e);
const char *kube_elector_identity(const kube_elector *e);
kube_health *kube_elector_health(kube_elector *e);
/* Joins (stop must be set); releases the Lease when held. NULL is fine. */
void kube_elector_join(kube_elector *e);

/* ---------------------------------------------------------------- apps.c */

typedef struct jb_app_store jb_app_store;
/* Puts the Application object cr into the store (force, marked managed-by
 * kubernetes) unless its canonical JSON equals *mirrored; updates *mirrored. */
jb_status kube_app_mirror(jb_app_store *st, const cJSON *cr, char **mirrored, jb_err *err);
/* Deletes it (absent is fine). */
jb_status kube_app_forget(jb_app_store *st, const char *name, jb_err *err);
/* Deletes Kubernetes-owned entries for which known(ud, name) is false. */
void kube_app_collect_garbage(jb_app_store *st, bool (*known)(void *ud, const char *name),
                              void *ud);

#endif

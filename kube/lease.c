/* Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: lease
 * 15 s, renew deadline 10 s, retry every 2 s. Expiry is judged on this process's
 * monotonic clock from when the record last changed, never on the record's
 * timestamps (clocks of two machines need not agree). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube_internal.h"

#define LEASE_NAME        "jetbridge-controller"
#define LEASE_DURATION_S  15
#define RENEW_DEADLINE_NS (INT64_C(10) * 1000000000)
#define RETRY_MS          2000
#define RESOURCE          "leases.coordination.k8s.io"
#define MAX_BODY          (256 * 1024)

struct kube_elector {
    const jb_cfg *cfg;
    kube_client *client;
    const atomic_bool *stop;
    void (*on_change)(void *ud);
    void *ud;
    pthread_t thread;
    atomic_bool leader;
    kube_health health;
    char identity[300];
    char path[512];
    char observed[512];      /* holder + renewTime + rv of the last record seen */
    int64_t observed_at;     /* monotonic ns when it last changed */
    int64_t observed_dur_ns; /* its leaseDurationSeconds */
    int64_t last_renew;      /* monotonic ns of our last successful renew */
};

static void micro_time(char out[40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%.20s.%06dZ", base, (int)(ts.tv_nsec / 1000) % 1000000);
}

static const char *spec_str(const cJSON *lease, const char *k)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(lease, "spec"), k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The body of a create or an update that makes us the holder. */
static char *lease_body(kube_elector *e, const cJSON *old, bool release)
{
    char now[40];
    micro_time(now);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON *spec = cJSON_AddObjectToObject(root, "spec");
    cJSON_AddStringToObject(root, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(root, "kind", "Lease");
    cJSON_AddStringToObject(meta, "name", LEASE_NAME);
    cJSON_AddStringToObject(meta, "namespace", e->cfg->pod_namespace);
    const cJSON *ospec = cJSON_GetObjectItemCaseSensitive(old, "spec");
    if (old != NULL) {
        const cJSON *ometa = cJSON_GetObjectItemCaseSensitive(old, "metadata");
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(ometa, "resourceVersion");
        if (cJSON_IsString(rv))
            cJSON_AddStringToObject(meta, "resourceVersion", rv->valuestring);
    }
    bool ours = old != NULL && strcmp(spec_str(old, "holderIdentity"), e->identity) == 0;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(ospec, "leaseTransitions");
    double transitions = cJSON_IsNumber(tr) ? tr->valuedouble : 0;
    cJSON_AddStringToObject(spec, "holderIdentity", release ? "" : e->identity);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds", release ? 1 : LEASE_DURATION_S);
    cJSON_AddStringToObject(spec, "acquireTime",
                            ours && spec_str(old, "acquireTime")[0] ? spec_str(old, "acquireTime")
                                                                    : now);
    cJSON_AddStringToObject(spec, "renewTime", now);
    cJSON_AddNumberToObject(spec, "leaseTransitions",
                            ours || old == NULL ? transitions : transitions + 1);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void set_leader(kube_elector *e, bool v)
{
    if (atomic_exchange(&e->leader, v) == v)
        return;
    jb_log(JB_LOG_INFO, "kube", v ? "became leader" : "lost leadership", "lease", LEASE_NAME,
           "namespace", e->cfg->pod_namespace, "identity", e->identity, NULL);
    if (e->on_change != NULL)
        e->on_change(e->ud);
}

/* PUT (old != NULL) or POST a record naming us. True when the server took it. */
static bool write_lease(kube_elector *e, const cJSON *old, bool release)
{
    char *body = lease_body(e, old, release);
    if (body == NULL)
        return false;
    char coll[512];
    snprintf(coll, sizeof(coll), "/apis/coordination.k8s.io/v1/namespaces/%s/leases",
             e->cfg->pod_namespace);
    kube_resp r = {0};
    jb_err err = {{0}};
    jb_status st = old ? kube_do(e->client, "update", RESOURCE, "PUT", e->path, "application/json",
                                 body, MAX_BODY, &r, &err)
                       : kube_do(e->client, "create", RESOURCE, "POST", coll, "application/json",
                                 body, MAX_BODY, &r, &err);
    free(body);
    bool ok = st == JB_OK && (r.code == 200 || r.code == 201);
    if (st != JB_OK) {
        kube_health_set(&e->health, false, err.msg);
    } else if (r.code != 200 && r.code != 201 && r.code != 409) {
        char why[256];
        snprintf(why, sizeof(why), "%s lease %s/%s: HTTP %ld%s", old ? "update" : "create",
                 e->cfg->pod_namespace, LEASE_NAME, r.code, kube_refusal(r.code));
        kube_health_set(&e->health, false, why);
    } else {
        kube_health_set(&e->health, true, "");
    }
    kube_resp_free(&r);
    return ok;
}

/* One round: read the record, then renew or take it when we may. */
static void round_once(kube_elector *e)
{
    kube_resp r = {0};
    jb_err err = {{0}};
    int64_t now = jb_now_monotonic_ns();
    jb_status st =
        kube_do(e->client, "get", RESOURCE, "GET", e->path, NULL, NULL, MAX_BODY, &r, &err);
    cJSON *lease = NULL;
    if (st != JB_OK || (r.code != 200 && r.code != 404)) {
        char why[256];
        if (st != JB_OK)
            snprintf(why, sizeof(why), "%.200s", err.msg);
        else
            snprintf(why, sizeof(why), "get lease %s/%s: HTTP %ld%s", e->cfg->pod_namespace,
                     LEASE_NAME, r.code, kube_refusal(r.code));
        kube_health_set(&e->health, false, why);
        goto out;
    }
    kube_health_set(&e->health, true, "");
    if (r.code == 404) {
        if (write_lease(e, NULL, false)) {
            e->last_renew = now;
            set_leader(e, true);
        }
        goto out;
    }
    lease = cJSON_ParseWithLength(r.body, r.len);
    const char *holder = spec_str(lease, "holderIdentity");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(lease, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    char key[512];
    snprintf(key, sizeof(key), "%s|%s|%s", holder, spec_str(lease, "renewTime"),
             cJSON_IsString(rv) ? rv->valuestring : "");
    if (strcmp(key, e->observed) != 0) {
        snprintf(e->observed, sizeof(e->observed), "%s", key);
        e->observed_at = now;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(lease, "spec"), "leaseDurationSeconds");
        e->observed_dur_ns =
            (cJSON_IsNumber(d) && d->valuedouble > 0 ? (int64_t)d->valuedouble : LEASE_DURATION_S) *
            INT64_C(1000000000);
    }
    bool ours = strcmp(holder, e->identity) == 0;
    bool expired = holder[0] == '\0' || now - e->observed_at > e->observed_dur_ns;
    if (!ours && !expired) {
        set_leader(e, false);
        goto out;
    }
    if (write_lease(e, lease, false)) {
        e->last_renew = now;
        set_leader(e, true);
    }
out:
    if (atomic_load(&e->leader) && now - e->last_renew > RENEW_DEADLINE_NS)
        set_leader(e, false); /* could not renew in time: another may take over now */
    cJSON_Delete(lease);
    kube_resp_free(&r);
}

static void release(kube_elector *e)
{
    kube_resp r = {0};
    jb_err err = {{0}};
    if (kube_do(e->client, "get", RESOURCE, "GET", e->path, NULL, NULL, MAX_BODY, &r, &err) ==
            JB_OK &&
        r.code == 200) {
        cJSON *lease = cJSON_ParseWithLength(r.body, r.len);
        if (strcmp(spec_str(lease, "holderIdentity"), e->identity) == 0)
            (void)write_lease(e, lease, true);
        cJSON_Delete(lease);
    }
    kube_resp_free(&r);
}

static void *run(void *arg)
{
    kube_elector *e = arg;
    kube_thread_name("kube-lease");
    while (!atomic_load(e->stop)) {
        round_once(e);
        kube_sleep(e->stop, RETRY_MS);
    }
    return NULL;
}

kube_elector *kube_elector_start(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                                 const atomic_bool *stop, void (*on_change)(void *ud), void *ud,
                                 jb_err *err)
{
    kube_elector *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->cfg = cfg;
    e->stop = stop;
    e->on_change = on_change;
    e->ud = ud;
    atomic_init(&e->leader, false);
    kube_health_init(&e->health);
    char id[37];
    jb_uuid_v4(id);
    const char *host = cfg->pod_name[0] ? cfg->pod_name : getenv("HOSTNAME");
    snprintf(e->identity, sizeof(e->identity), "%s_%s", host && host[0] ? host : "jetbridge", id);
    snprintf(e->path, sizeof(e->path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
             cfg->pod_namespace, LEASE_NAME);
    e->client = kube_client_create(kc, cfg, requests, NULL);
    if (e->client == NULL || pthread_create(&e->thread, NULL, run, e) != 0) {
        jb_err_set(err, JB_ERR_IO, "cannot start the leader election thread");
        kube_client_destroy(e->client);
        pthread_mutex_destroy(&e->health.mu);
        free(e);
        return NULL;
    }
    return e;
}

bool kube_elector_leader(kube_elector *e)
{
    return atomic_load(&e->leader);
}

const char *kube_elector_identity(const kube_elector *e)
{
    return e->identity;
}

kube_health *kube_elector_health(kube_elector *e)
{
    return &e->health;
}

void kube_elector_join(kube_elector *e)
{
    if (e == NULL)
        return;
    pthread_join(e->thread, NULL);
    if (atomic_load(&e->leader)) {
        atomic_store(&e->leader, false);
        release(e);
    }
    kube_client_destroy(e->client);
    pthread_mutex_destroy(&e->health.mu);
    free(e);
}

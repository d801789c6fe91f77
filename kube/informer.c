/* List + watch of one resource on a thread of its own (the pattern of client-go's
 * reflector): list in pages, watch from the list's resourceVersion with bookmarks,
 * relist on 410 Gone, reconnect with capped jittered backoff. Every object goes to
 * the controller's mailbox; nothing here decides what to do with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_internal.h"

#define PAGE_LIMIT      100
#define MAX_LIST_BYTES  (64 * 1024 * 1024)
#define ABSENT_RETRY_MS (5 * 60 * 1000)
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000

struct kube_informer {
    kube_informer_spec spec;
    char *ns;
    char *base_path; /* .../namespaces/NS/plural or .../plural */
    const jb_kube_config *kc;
    const jb_cfg *cfg;
    jb_metric *requests;
    jb_mailbox *m;
    const atomic_bool *stop;
    kube_client *client;
    kube_health health;
    pthread_t thread;
    char rv[128];     /* resourceVersion to watch from */
    bool gone;        /* the watch said 410: relist */
    bool mailbox_off; /* stop was set while pushing */
};

void kube_health_init(kube_health *h)
{
    pthread_mutex_init(&h->mu, NULL);
    h->ok = false;
    h->synced = false;
    h->absent = false;
    atomic_init(&h->live, false);
    snprintf(h->why, sizeof(h->why), "not connected to the Kubernetes API yet");
}

void kube_health_set(kube_health *h, bool ok, const char *why)
{
    pthread_mutex_lock(&h->mu);
    h->ok = ok;
    if (!ok) {
        /* Cut to the buffer on purpose: a reason is one line of /readyz. */
        size_t n = strnlen(why, sizeof(h->why) - 1);
        memcpy(h->why, why, n);
        h->why[n] = '\0';
    }
    pthread_mutex_unlock(&h->mu);
}

void kube_thread_name(const char *name)
{
    (void)pthread_setname_np(pthread_self(), name);
}

void kube_sleep(const atomic_bool *stop, int64_t ms)
{
    while (ms > 0 && !atomic_load(stop)) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

int64_t kube_backoff_ms(int attempt)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    /* Jitter between half and the whole delay: never zero, so never a busy loop. */
    unsigned r;
    char id[37];
    jb_uuid_v4(id);
    memcpy(&r, id, sizeof(r) < sizeof(id) ? sizeof(r) : sizeof(id));
    return d / 2 + (int64_t)(r % (unsigned)(d / 2 + 1));
}

static bool push(kube_informer *inf, kube_item_kind kind, const cJSON *obj, size_t bytes)
{
    kube_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return false;
    it->kind = kind;
    it->res = inf->spec.res;
    it->bytes = bytes + sizeof(*it);
    if ((kind == KI_SYNC_BEGIN || kind == KI_SYNC_END) && (it->scope = strdup(inf->ns)) == NULL) {
        kube_item_free(it);
        return false;
    }
    if (obj != NULL && (it->obj = cJSON_Duplicate(obj, 1)) == NULL) {
        kube_item_free(it);
        return false;
    }
    if (!kube_post(inf->m, &it)) {
        inf->mailbox_off = true;
        return false;
    }
    return true;
}

static const char *meta_str(const cJSON *obj, const char *field)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_rv(kube_informer *inf, const char *rv)
{
    if (rv != NULL && strlen(rv) < sizeof(inf->rv))
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
}

/* -------------------------------------------------------------------- list */

typedef enum list_result { LIST_OK, LIST_ABSENT, LIST_FAILED, LIST_STOPPED } list_result;

static list_result list_page(kube_informer *inf, const char *cont, char **next, bool *began)
{
    char *esc = cont ? kube_escape(cont) : NULL;
    size_t n = strlen(inf->base_path) + (esc ? strlen(esc) : 0) + 64;
    char *path = malloc(n);
    if (path == NULL) {
        free(esc);
        return LIST_FAILED;
    }
    snprintf(path, n, "%s?limit=%d%s%s", inf->base_path, PAGE_LIMIT, esc ? "&continue=" : "",
             esc ? esc : "");
    free(esc);
    kube_resp r = {0};
    jb_err err = {{0}};
    jb_status st = kube_do(inf->client, "list", inf->spec.resource, "GET", path, NULL, NULL,
                           MAX_LIST_BYTES, &r, &err);
    free(path);
    if (st != JB_OK) {
        kube_health_set(&inf->health, false, err.msg);
        return atomic_load(inf->stop) ? LIST_STOPPED : LIST_FAILED;
    }
    list_result res = LIST_FAILED;
    cJSON *root = NULL;
    char why[256];
    if (r.code == 404 && inf->spec.optional) {
        res = LIST_ABSENT;
        goto out;
    }
    if (r.code != 200) {
        snprintf(why, sizeof(why), "list %s: HTTP %ld%s", inf->spec.resource, r.code,
                 kube_refusal(r.code));
        kube_health_set(&inf->health, false, why);
        goto out;
    }
    root = cJSON_ParseWithLength(r.body, r.len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsArray(items)) {
        snprintf(why, sizeof(why), "list %s: answer is not a list", inf->spec.resource);
        kube_health_set(&inf->health, false, why);
        goto out;
    }
    if (!*began) {
        if (!push(inf, KI_SYNC_BEGIN, NULL, 0))
            goto out;
        *began = true;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        if (cJSON_IsObject(it) &&
            !push(inf, KI_UPSERT, it, r.len / (size_t)(cJSON_GetArraySize(items) + 1)))
            goto out;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(meta, "continue");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (cJSON_IsString(rv))
        set_rv(inf, rv->valuestring);
    *next = cJSON_IsString(c) && c->valuestring[0] ? strdup(c->valuestring) : NULL;
    res = LIST_OK;
out:
    cJSON_Delete(root);
    kube_resp_free(&r);
    return res;
}

/* A whole list. A continue token that expired (410) restarts it from the top. */
static list_result list_all(kube_informer *inf)
{
    bool began = false;
    char *cont = NULL;
    list_result res;
    do {
        char *next = NULL;
        res = list_page(inf, cont, &next, &began);
        free(cont);
        cont = next;
    } while (res == LIST_OK && cont != NULL);
    free(cont);
    if (res == LIST_OK && !push(inf, KI_SYNC_END, NULL, 0))
        res = LIST_STOPPED;
    if (res == LIST_OK) {
        pthread_mutex_lock(&inf->health.mu);
        inf->health.synced = true;
        inf->health.absent = false;
        inf->health.ok = true;
        pthread_mutex_unlock(&inf->health.mu);
    }
    return res;
}

/* ------------------------------------------------------------------- watch */

static bool on_event(jb_kube_event_type t, const cJSON *obj, void *ud)
{
    kube_informer *inf = ud;
    switch (t) {
    case JB_KUBE_ADDED:
    case JB_KUBE_MODIFIED:
        set_rv(inf, meta_str(obj, "resourceVersion"));
        return push(inf, KI_UPSERT, obj, 1024);
    case JB_KUBE_DELETED:
        set_rv(inf, meta_str(obj, "resourceVersion"));
        return push(inf, KI_DELETE, obj, 1024);
    case JB_KUBE_BOOKMARK:
        set_rv(inf, meta_str(obj, "resourceVersion"));
        return true;
    case JB_KUBE_ERROR: {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        if (cJSON_IsNumber(code) && code->valuedouble == 410)
            inf->gone = true;
        else
            jb_log(JB_LOG_WARN, "kube", "watch error event", "resource", inf->spec.resource, NULL);
        return false; /* either way this watch is over */
    }
    }
    return true;
}

/* One watch from inf->rv until it ends. True when it ended cleanly (server timeout),
 * so the next one can start at once. */
static bool watch_once(kube_informer *inf)
{
    size_t n = strlen(inf->base_path) + strlen(inf->rv) + 128;
    char *path = malloc(n);
    jb_kube_watch_parser *p =
        jb_kube_watch_parser_create((size_t)inf->cfg->kube_max_event_bytes, on_event, inf);
    bool clean = false;
    if (path == NULL || p == NULL)
        goto out;
    /* The server ends the watch after timeoutSeconds (KUBE_WATCH_TIMEOUT) and, with its
     * watch cache, sends a BOOKMARK with its newest resourceVersion shortly before: the
     * next watch starts from there, not from the last event this scope saw. */
    snprintf(path, n, "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%lld",
             inf->base_path, inf->rv, (long long)(inf->cfg->kube_watch_timeout_ms / 1000));
    long code = 0;
    jb_err err = {{0}};
    jb_status st =
        kube_watch(inf->client, inf->spec.resource, path, p, &inf->health.live, &code, &err);
    atomic_store(&inf->health.live, false);
    if (code == 410) {
        inf->gone = true;
    } else if (code != 200 && code != 0) {
        char why[256];
        snprintf(why, sizeof(why), "watch %s: HTTP %ld%s", inf->spec.resource, code,
                 kube_refusal(code));
        kube_health_set(&inf->health, false, why);
    } else if (st != JB_OK && !atomic_load(inf->stop)) {
        kube_health_set(&inf->health, false, err.msg);
    } else if (st == JB_OK && code == 200 && !inf->gone) {
        clean = true;
        kube_health_set(&inf->health, true, "");
    }
out:
    jb_kube_watch_parser_destroy(p);
    free(path);
    return clean;
}

static void *run(void *arg)
{
    kube_informer *inf = arg;
    kube_thread_name("kube-watch");
    int attempt = 0;
    bool need_list = true;
    bool absent_logged = false;
    while (!atomic_load(inf->stop) && !inf->mailbox_off) {
        if (need_list) {
            list_result lr = list_all(inf);
            if (lr == LIST_STOPPED)
                break;
            if (lr == LIST_ABSENT) {
                if (!absent_logged)
                    jb_log(JB_LOG_WARN, "kube",
                           "resource not served (CRD absent): going on without it, checking "
                           "again every 5 minutes",
                           "resource", inf->spec.resource, NULL);
                absent_logged = true;
                pthread_mutex_lock(&inf->health.mu);
                inf->health.absent = true;
                inf->health.ok = true;
                pthread_mutex_unlock(&inf->health.mu);
                kube_sleep(inf->stop, ABSENT_RETRY_MS);
                continue;
            }
            if (lr == LIST_FAILED) {
                kube_sleep(inf->stop, kube_backoff_ms(attempt++));
                continue;
            }
            if (absent_logged)
                jb_log(JB_LOG_INFO, "kube", "resource is served now", "resource",
                       inf->spec.resource, NULL);
            absent_logged = false;
            need_list = false;
            attempt = 0;
        }
        inf->gone = false;
        int64_t t0 = jb_now_monotonic_ns();
        bool clean = watch_once(inf);
        if (inf->gone) {
            jb_log(JB_LOG_INFO, "kube", "watch expired (410 Gone): listing again", "resource",
                   inf->spec.resource, NULL);
            need_list = true;
            continue;
        }
        if (clean) {
            attempt = 0;
            continue;
        }
        /* A watch that lasted a while was healthy: start the backoff over. */
        if (jb_now_monotonic_ns() - t0 > INT64_C(30000000000))
            attempt = 0;
        kube_sleep(inf->stop, kube_backoff_ms(attempt++));
    }
    return NULL;
}

kube_informer *kube_informer_start(const kube_informer_spec *spec, const jb_kube_config *kc,
                                   const jb_cfg *cfg, jb_metric *requests, jb_mailbox *m,
                                   const atomic_bool *stop, jb_err *err)
{
    kube_informer *inf = calloc(1, sizeof(*inf));
    if (inf == NULL)
        return NULL;
    inf->spec = *spec;
    inf->kc = kc;
    inf->cfg = cfg;
    inf->requests = requests;
    inf->m = m;
    inf->stop = stop;
    kube_health_init(&inf->health);
    inf->ns = strdup(spec->ns);
    size_t n = strlen(spec->group_version_path) + strlen(spec->ns) + strlen(spec->plural) + 32;
    inf->base_path = malloc(n);
    inf->client = kube_client_create(kc, cfg, requests, stop);
    if (inf->ns == NULL || inf->base_path == NULL || inf->client == NULL)
        goto fail;
    inf->spec.ns = inf->ns;
    if (spec->ns[0] != '\0')
        snprintf(inf->base_path, n, "%s/namespaces/%s/%s", spec->group_version_path, spec->ns,
                 spec->plural);
    else
        snprintf(inf->base_path, n, "%s/%s", spec->group_version_path, spec->plural);
    if (pthread_create(&inf->thread, NULL, run, inf) != 0) {
        jb_err_set(err, JB_ERR_IO, "cannot start a watch thread");
        goto fail;
    }
    return inf;
fail:
    kube_client_destroy(inf->client);
    free(inf->base_path);
    free(inf->ns);
    pthread_mutex_destroy(&inf->health.mu);
    free(inf);
    return NULL;
}

kube_health *kube_informer_health(kube_informer *inf)
{
    return &inf->health;
}

void kube_informer_join(kube_informer *inf)
{
    if (inf == NULL)
        return;
    pthread_join(inf->thread, NULL);
    kube_client_destroy(inf->client);
    free(inf->base_path);
    free(inf->ns);
    pthread_mutex_destroy(&inf->health.mu);
    free(inf);
}

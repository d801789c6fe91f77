/* The controller's writers: patches sent concurrently from a few threads, results
 * handed back through the mailbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube_internal.h"

#define MAX_WRITERS      16
#define MAX_PATCH_ANSWER (4 * 1024 * 1024)

struct kube_writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kube_item *head;
    kube_item *tail;
    jb_mailbox *mb;
    const atomic_bool *stop;
    kube_client *clients[MAX_WRITERS];
    pthread_t threads[MAX_WRITERS];
    size_t n;
};

jb_status kube_patch(kube_client *c, const char *resource, const char *path, const char *body,
                     long *code)
{
    return kube_patch_obj(c, resource, path, body, code, NULL);
}

jb_status kube_patch_obj(kube_client *c, const char *resource, const char *path, const char *body,
                         long *code, cJSON **obj)
{
    kube_resp r = {0};
    jb_err err = {{0}};
    jb_status st = kube_do(c, "patch", resource, "PATCH", path, "application/merge-patch+json",
                           body, MAX_PATCH_ANSWER, &r, &err);
    *code = st == JB_OK ? r.code : 0;
    if (st != JB_OK || (r.code != 200 && r.code != 404 && r.code != 409 && r.code != 403)) {
        /* The API server's Status message says what it refused (never a secret). */
        cJSON *ans = st == JB_OK ? cJSON_ParseWithLength(r.body, r.len) : NULL;
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ans, "message");
        char codes[16];
        snprintf(codes, sizeof(codes), "%ld", r.code);
        jb_log(JB_LOG_WARN, "kube", "patch failed", "path", path, "code", codes, "error",
               st != JB_OK           ? err.msg
               : cJSON_IsString(msg) ? msg->valuestring
                                     : "",
               NULL);
        cJSON_Delete(ans);
    }
    if (obj != NULL && st == JB_OK && r.code == 200)
        *obj = cJSON_ParseWithLength(r.body, r.len);
    kube_resp_free(&r);
    return st;
}

typedef struct thread_arg {
    kube_writer *w;
    kube_client *c;
} thread_arg;

static kube_item *next_job(kube_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->head == NULL && !atomic_load(w->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    kube_item *it = atomic_load(w->stop) ? NULL : w->head;
    if (it != NULL) {
        w->head = it->next;
        if (w->head == NULL)
            w->tail = NULL;
        it->next = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    return it;
}

static void *run(void *arg)
{
    thread_arg *a = arg;
    kube_item *it;
    kube_thread_name("kube-writer");
    while ((it = next_job(a->w)) != NULL) {
        const char *res = it->job == KUBE_JOB_STATUS
                              ? "subscriptions.eventing.kyma-project.io/status"
                              : "subscriptions.eventing.kyma-project.io";
        long code = 0;
        /* The answer is the object as it is now: the worker uses it at once instead
         * of acting on the older copy until the watch brings this one. */
        (void)kube_patch_obj(a->c, res, it->path, it->json, &code, &it->obj);
        it->kind = KI_RESULT;
        it->code = code;
        free(it->json); /* the body is not needed back */
        it->json = NULL;
        (void)kube_post(a->w->mb, &it);
    }
    free(a);
    return NULL;
}

kube_writer *kube_writer_start(const jb_kube_config *kc, const jb_cfg *cfg, jb_metric *requests,
                               jb_mailbox *m, const atomic_bool *stop, size_t nthreads)
{
    kube_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->mb = m;
    w->stop = stop;
    for (size_t i = 0; i < nthreads && i < MAX_WRITERS; i++) {
        thread_arg *a = calloc(1, sizeof(*a));
        kube_client *c = kube_client_create(kc, cfg, requests, stop);
        if (a == NULL || c == NULL) {
            free(a);
            kube_client_destroy(c);
            break;
        }
        a->w = w;
        a->c = c;
        if (pthread_create(&w->threads[w->n], NULL, run, a) != 0) {
            free(a);
            kube_client_destroy(c);
            break;
        }
        w->clients[w->n++] = c;
    }
    if (w->n == 0) {
        kube_writer_join(w);
        return NULL;
    }
    return w;
}

void kube_writer_submit(kube_writer *w, kube_item **job)
{
    kube_item *it = *job;
    *job = NULL;
    it->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail != NULL)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void kube_writer_join(kube_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->n; i++) {
        pthread_join(w->threads[i], NULL);
        kube_client_destroy(w->clients[i]);
    }
    kube_item *it = w->head;
    while (it != NULL) {
        kube_item *next = it->next;
        kube_item_free(it);
        it = next;
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

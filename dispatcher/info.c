/* The consumer-info worker: one thread, whatever the number of consumers and
 * loops, reads each consumer's info (for the pending gauges) and notices lost
 * consumers. Each loop hands it one pass at a time over its own consumers; the
 * pass's answer comes back on that loop. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatcher/disp_core.h"

/* A consumer whose info the worker reads. */
typedef struct infojob {
    char *ns, *name, *consumer;
} infojob;

typedef struct pass {
    infojob *jobs;
    size_t n;
} pass;

/* The worker, shared by every loop of the process (one thread, one pacing). */
struct jb_dinfow {
    const jb_cfg *cfg;
    jsCtx *js;
    jb_metric *pending, *ack_pending;
    jb_worker *w;
};

/* One loop's side: where its passes answer. Loop only. */
struct jb_dinfo {
    jb_dinfow *w;
    jb_mailbox *reply_to;
    void (*lost)(void *ud); /* on the loop: a pass found a lost consumer */
    void *ud;
    bool busy; /* a pass was posted and has not come back */
};

static void free_pass(pass *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->jobs[i].ns);
        free(p->jobs[i].name);
        free(p->jobs[i].consumer);
    }
    free(p->jobs);
    free(p);
}

/* Worker thread. Returns false when the consumer is lost. */
static bool report_one(jb_dinfow *i, const infojob *j)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, i->js, i->cfg->stream_name, j->consumer, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
        jb_log(JB_LOG_WARN, "dispatcher", "consumer lost, asking the reconciler", "consumer",
               j->consumer, NULL);
        return false;
    }
    if (s != NATS_OK)
        return true;
    const char *labels[] = {j->ns, j->name, j->consumer};
    jb_metric_set(i->pending, labels, (double)ci->NumPending);
    jb_metric_set(i->ack_pending, labels, (double)ci->NumAckPending);
    jsConsumerInfo_Destroy(ci);
    return true;
}

/* Worker thread: one pass, paced; answers with val 1 when a consumer was lost. */
static void run_pass(jb_mail *m, void *ud)
{
    jb_dinfow *i = ud;
    pass *p = m->ptr;
    bool lost = false;
    for (size_t k = 0; k < p->n && !jb_worker_stopping(i->w); k++) {
        if (!report_one(i, &p->jobs[k]))
            lost = true;
        /* At most JB_DISP_INFO_MAX_PER_S requests a second: with thousands of
         * consumers a pass takes longer than JB_DISP_INFO_EVERY_MS (the gauges are
         * older) instead of keeping nats-server busy with info requests. */
        struct timespec gap = {0, 1000000000L / JB_DISP_INFO_MAX_PER_S};
        nanosleep(&gap, NULL);
    }
    m->val = lost ? 1 : 0;
    jb_mail_reply(m);
}

/* The loop: the pass came back. */
static void on_pass_done(jb_mail *m, void *ud)
{
    jb_dinfo *i = ud;
    free_pass(m->ptr);
    i->busy = false;
    if (m->val != 0 && i->lost != NULL)
        i->lost(i->ud);
}

/* A pass that never ran (stop) still answers, so the loop frees it. */
static void on_never_ran(jb_mail *m, void *ud)
{
    (void)ud;
    m->val = 0;
    jb_mail_reply(m);
}

jb_status jb_dinfow_create(const jb_cfg *cfg, jsCtx *js, jb_metric *pending, jb_metric *ack_pending,
                           size_t loops, jb_dinfow **out, jb_err *err)
{
    jb_dinfow *i = calloc(1, sizeof(*i));
    if (i == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    *i = (jb_dinfow){cfg, js, pending, ack_pending, NULL};
    /* One pass at a time per loop (busy): a mailbox of one per loop is enough. */
    jb_status st = jb_worker_start("jb-disp-info", loops, run_pass, NULL, 0, i, &i->w, err);
    if (st != JB_OK) {
        free(i);
        return st;
    }
    *out = i;
    return JB_OK;
}

void jb_dinfow_stop(jb_dinfow *i)
{
    if (i == NULL || i->w == NULL)
        return;
    jb_worker_stop(i->w, on_never_ran, NULL);
    i->w = NULL;
}

void jb_dinfow_destroy(jb_dinfow *i)
{
    if (i == NULL)
        return;
    jb_dinfow_stop(i);
    free(i);
}

jb_dinfo *jb_dinfo_create(jb_dinfow *w, jb_mailbox *reply_to, void (*lost)(void *ud), void *ud)
{
    jb_dinfo *i = calloc(1, sizeof(*i));
    if (i != NULL)
        *i = (jb_dinfo){w, reply_to, lost, ud, false};
    return i;
}

static pass *build_pass(const jb_dtable *t)
{
    size_t n = 0;
    for (const dconsumer *c = t->list; c != NULL; c = c->next)
        n += c->slot.stop ? 0 : 1;
    pass *p = calloc(1, sizeof(*p));
    if (p == NULL || n == 0 || (p->jobs = calloc(n, sizeof(*p->jobs))) == NULL) {
        free(p);
        return NULL;
    }
    for (const dconsumer *c = t->list; c != NULL && p->n < n; c = c->next) {
        if (c->slot.stop)
            continue;
        infojob *j = &p->jobs[p->n++];
        j->ns = strdup(c->info.ns);
        j->name = strdup(c->info.name);
        j->consumer = strdup(c->info.consumer);
        if (j->ns == NULL || j->name == NULL || j->consumer == NULL) {
            free_pass(p);
            return NULL;
        }
    }
    return p;
}

void jb_dinfo_pass(jb_dinfo *i, const jb_dtable *t)
{
    /* One pass at a time: the next starts from the consumers of its own moment. */
    if (i == NULL || i->busy)
        return;
    pass *p = build_pass(t);
    if (p == NULL)
        return;
    jb_mail m = {.ptr = p, .reply_to = i->reply_to, .reply = on_pass_done, .reply_ud = i};
    if (i->w->w == NULL || jb_mailbox_post(jb_worker_mailbox(i->w->w), &m) != JB_OK) {
        free_pass(p);
        return;
    }
    i->busy = true;
}

void jb_dinfo_destroy(jb_dinfo *i)
{
    free(i);
}

/*
 * The publisher's control worker: the blocking NATS work, off the HTTP loops.
 * Jobs (subscribed queries) come from the HTTP threads through the worker's
 * mailbox (full: 503); every 250 ms without one, and before each job, the
 * periodic work runs (the stream, certificates, authorization). Answers go back
 * to the asking thread's mailbox (server.c).
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publisher/pub_server.h"
#include "subscription/jb_sub_store.h"
#include "subscription/jb_sub_stream.h"

static void ctl_handle(jb_mail *m, void *ud);
static void ctl_idle(void *ud);
static void ctl_dispose(jb_mail *m, void *ud);

jb_status pub_ctl_start(jb_pub *p, jb_err *err)
{
    return jb_worker_start("jb-pub-ctl", PUB_CTL_JOBS_MAX, ctl_handle, ctl_idle, 250, p, &p->ctl,
                           err);
}

void pub_ctl_stop(jb_pub *p)
{
    jb_worker_stop(p->ctl, ctl_dispose, NULL);
    p->ctl = NULL;
}

bool pub_ctl_submit(jb_pub *p, pub_thread *t, void *token, const char *app, size_t app_len)
{
    if (p->ctl == NULL || app_len >= PUB_APP_MAX)
        return false;
    pub_ctl_job *j = malloc(sizeof(*j));
    if (j == NULL)
        return false;
    j->t = t;
    j->token = token;
    memcpy(j->app, app, app_len);
    j->app[app_len] = '\0';
    j->app_len = app_len;
    jb_mail m = {.ptr = j};
    if (jb_mailbox_post(jb_worker_mailbox(p->ctl), &m) != JB_OK) {
        free(j);
        return false;
    }
    return true;
}

static void ctl_dispose(jb_mail *m, void *ud)
{
    (void)ud;
    free(m->ptr);
}

static void ctl_subscribed(jb_pub *p, const pub_ctl_job *j)
{
    jb_err err = {{0}};
    char *json = NULL;
    size_t len = 0;
    jb_status rc = JB_OK;
    if (p->store == NULL)
        rc = jb_sub_store_open(p->cfg, p->ctl_js, &p->store, &err);
    if (rc == JB_OK)
        rc = jb_sub_store_subscribed_json(p->store, p->cfg, j->app, j->app_len, &json, &len, &err);
    if (rc == JB_OK) {
        pub_thread_post_ctl(j->t, j->token, 200, json, len);
        return;
    }
    char *esc = jb_pub_json_escape(err.msg[0] ? err.msg : jb_status_str(rc),
                                   strlen(err.msg[0] ? err.msg : jb_status_str(rc)));
    char *body = NULL;
    int n = asprintf(&body, "{\"code\":500,\"error\":\"%s\"}", esc ? esc : "");
    free(esc);
    pub_thread_post_ctl(j->t, j->token, 500, n > 0 ? body : NULL, n > 0 ? (size_t)n : 0);
    /* A store that failed is opened again next time (the server may have restarted). */
    jb_sub_store_close(p->store);
    p->store = NULL;
}

/* What the control thread remembers between rounds about the stream. */
typedef struct ctl_state {
    bool was_connected;
    int64_t next_try_ns; /* after a failure: not before */
    int64_t last_warn_ns;
} ctl_state;

/* Creates or verifies the stream whenever the connection is (re)established or a
 * publish found no stream; after a failure it retries every second and warns at
 * most every 10 seconds. */
static void ctl_stream(jb_pub *p, ctl_state *cs)
{
    int64_t now = jb_now_monotonic_ns();
    if (!jb_nats_connected(p->nc)) {
        cs->was_connected = false;
        return;
    }
    bool recheck = atomic_exchange(&p->stream_recheck, false);
    if ((cs->was_connected && atomic_load(&p->stream_ok) && !recheck) || now < cs->next_try_ns)
        return;
    cs->was_connected = true;
    jb_err err = {{0}};
    bool ok = jb_sub_ensure_stream(p->cfg, p->ctl_js, &err) == JB_OK;
    bool was_ok = atomic_exchange(&p->stream_ok, ok);
    if (ok && !was_ok)
        jb_log(JB_LOG_INFO, "publisher", "stream ready", "stream", p->cfg->stream_name, NULL);
    if (!ok && now - cs->last_warn_ns > 10000000000LL) {
        jb_log(JB_LOG_WARN, "publisher", "stream not ready", "stream", p->cfg->stream_name, "error",
               err.msg, NULL);
        cs->last_warn_ns = now;
    }
    if (!ok) {
        cs->was_connected = false; /* try again */
        cs->next_try_ns = now + 1000000000LL;
    }
}

/* The periodic work; cheap when there is nothing to do, so it also runs before
 * every job (a stream of subscribed queries must not starve it). */
static void ctl_idle(void *ud)
{
    jb_pub *p = ud;
    if (p->ctl_st == NULL) {
        p->ctl_st = calloc(1, sizeof(*p->ctl_st));
        if (p->ctl_st == NULL)
            return;
        p->ctl_st->last_warn_ns = INT64_MIN / 2;
    }
    ctl_stream(p, p->ctl_st);
    pub_tls_reload(p->tls);
    pub_authz_refresh(p->authz);
}

static void ctl_handle(jb_mail *m, void *ud)
{
    jb_pub *p = ud;
    ctl_idle(p);
    ctl_subscribed(p, m->ptr);
    free(m->ptr);
}

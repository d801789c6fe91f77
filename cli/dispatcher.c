/* `jetbridge dispatcher`: the dispatcher as a process of its own. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/jb_cli.h"
#include "cli/jb_host.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/jb_disp.h"
#include "kube/jb_kube.h"
#include "subscription/jb_sub.h"

static void disp_usage(FILE *f)
{
    fprintf(f,
            "Usage: jetbridge dispatcher [--subscriptions DIR] [--kubernetes] [config flags]\n\n"
            "Delivers stored events to the sinks of the subscriptions, with retry, backoff\n"
            "and dead letters. Several dispatchers may share one NATS: each event is\n"
            "delivered once per subscription. SIGTERM stops it gracefully.\n\n"
            "Examples:\n"
            "  NATS_URL=nats://127.0.0.1:4222 jetbridge dispatcher\n"
            "  jetbridge dispatcher --subscriptions examples/subscriptions --metrics-addr :9091\n\n"
            "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime error (for example NATS\n"
            "unreachable at start), 2 usage error.\n");
}

/* What the dispatcher process holds besides the host's parts. */
typedef struct disp_proc {
    jb_disp *d;
    jb_sub_dirwatch *dw;
    jb_kube_ctl *kube;
    jb_host *h;
    void (*done)(jb_host *h); /* the host's, after a graceful stop */
} disp_proc;

static jb_status disp_start(jb_host *h, jb_err *err)
{
    disp_proc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    h->ud = p;
    const jb_cfg *cfg = h->cfg;
    jb_status st = jb_disp_create(cfg, h->base, h->metrics, h->nc, h->js, &p->d, err);
    if (st == JB_OK)
        st = jb_host_admin(h, jb_disp_ready, p->d, err);
    /* --kubernetes: the controller in this process (readiness includes the API server). */
    if (st == JB_OK && cfg->kubernetes &&
        (st = jb_kube_ctl_start(cfg, h->nc, h->js, h->metrics, &p->kube, err)) == JB_OK)
        jb_admin_set_ready_reason(h->admin, jb_kube_ready_fn, p->kube);
    if (st == JB_OK && cfg->subscriptions_dir[0] != '\0')
        st = jb_sub_dirwatch_start(cfg, h->js, cfg->subscriptions_dir, &p->dw, err);
    if (st == JB_OK)
        st = jb_disp_start(p->d, err);
    /* Every failure here is a runtime one (exit 1), as before the host existed. */
    return st == JB_ERR_CONFIG ? JB_ERR_INTERNAL : st;
}

static void disp_stopped(void *ud)
{
    disp_proc *p = ud;
    p->done(p->h);
}

static void disp_stop_gracefully(jb_host *h, void (*done)(jb_host *h))
{
    disp_proc *p = h->ud;
    p->h = h;
    p->done = done;
    jb_disp_stop_gracefully(p->d, disp_stopped, p);
}

static void disp_stop(jb_host *h)
{
    disp_proc *p = h->ud;
    if (p == NULL)
        return;
    jb_sub_dirwatch_stop(p->dw);
    jb_kube_ctl_stop(p->kube);
    jb_disp_destroy(p->d);
    free(p);
}

int jb_cli_dispatcher(const jb_cfg *cfg, int argc, char **argv)
{
    static const jb_host_spec spec = {"dispatcher",         disp_usage, disp_start,
                                      disp_stop_gracefully, disp_stop,  NULL};
    return jb_host_main(&spec, cfg, argc, argv);
}

/* `jetbridge dispatcher`: the dispatcher as a process of its own. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

typedef struct run_ctx {
    struct event_base *base;
    jb_disp *d;
    int signals;
} run_ctx;

static void on_stopped(void *ud)
{
    run_ctx *r = ud;
    event_base_loopbreak(r->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    run_ctx *r = arg;
    if (++r->signals > 1) {
        /* A second signal: the user does not want to wait for the grace period. */
        event_base_loopbreak(r->base);
        return;
    }
    jb_log(JB_LOG_INFO, "dispatcher", "signal received", "signal",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    jb_disp_stop_gracefully(r->d, on_stopped, r);
}

static int serve(const jb_cfg *cfg, struct event_base *base, natsConnection *nc, jsCtx *js)
{
    int rc = 1;
    jb_err err = {{0}};
    jb_metrics *metrics = jb_metrics_create(10000);
    jb_disp *d = NULL;
    jb_admin *admin = NULL;
    jb_sub_dirwatch *dw = NULL;
    jb_kube_ctl *kube = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    run_ctx r = {base, NULL, 0};
    if (metrics == NULL || jb_disp_create(cfg, base, metrics, nc, js, &d, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg[0] ? err.msg : "out of memory");
        goto out;
    }
    r.d = d;
    admin = jb_admin_start(base, cfg->metrics_addr, metrics, jb_disp_ready, d, &err);
    if (admin == NULL) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg);
        goto out;
    }
    jb_admin_set_token(admin, cfg->admin_token);
    /* --kubernetes: the controller in this process (readiness includes the API server). */
    if (cfg->kubernetes && jb_kube_ctl_start(cfg, nc, js, metrics, &kube, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg);
        goto out;
    }
    if (kube != NULL)
        jb_admin_set_ready_reason(admin, jb_kube_ready_fn, kube);
    if (cfg->subscriptions_dir[0] != '\0' &&
        jb_sub_dirwatch_start(cfg, js, cfg->subscriptions_dir, &dw, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg);
        goto out;
    }
    if (jb_disp_start(d, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg);
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, &r);
    sigint = evsignal_new(base, SIGINT, on_signal, &r);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0)
        goto out;
    jb_log(JB_LOG_INFO, "dispatcher", "started", "nats", cfg->nats_url, "admin", cfg->metrics_addr,
           NULL);
    event_base_dispatch(base);
    rc = 0;
out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    jb_sub_dirwatch_stop(dw);
    jb_kube_ctl_stop(kube);
    jb_disp_destroy(d);
    if (admin != NULL)
        jb_admin_stop(admin);
    jb_metrics_destroy(metrics);
    return rc;
}

int jb_disp_cmd(const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            disp_usage(stdout);
            return 0;
        }
        fprintf(
            stderr,
            "jetbridge dispatcher: unknown argument \"%s\"; see `jetbridge dispatcher --help`\n",
            argv[i]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "jetbridge dispatcher: cannot create the event loop\n");
        return 1;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    /* nats.c keeps its own threads (base NULL): fetches block on ours. */
    if (jb_cfg_nats_connect(cfg, NULL, "jetbridge-dispatcher", true, &nc, &js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge dispatcher: %s\n", err.msg);
        event_base_free(base);
        return 1;
    }
    int rc = serve(cfg, base, nc, js);
    jb_nats_close(nc, js);
    event_base_free(base);
    return rc;
}

/* `jetbridge controller`: the Kubernetes controller as a process of its own. It also
 * runs a subscription reconciler, so consumers and statuses exist even before a
 * dispatcher runs (reconcilers are idempotent: several may run at once). */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kube/kube_internal.h"
#include "subscription/jb_sub.h"

static void ctl_usage(FILE *f)
{
    fprintf(f,
            "Usage: jetbridge controller [config flags]\n\n"
            "Mirrors Kyma Subscriptions (eventing.kyma-project.io/v1alpha2) and Applications\n"
            "(applicationconnector.kyma-project.io/v1alpha1) from the Kubernetes API server\n"
            "into NATS, and writes Subscription status back. Several controllers may run:\n"
            "one holds the Lease jetbridge-controller in POD_NAMESPACE and writes, the\n"
            "others stand by. API access: KUBECONFIG, else the pod's service account.\n\n"
            "Examples:\n"
            "  KUBECONFIG=$HOME/.kube/config NATS_URL=nats://127.0.0.1:4222 jetbridge controller\n"
            "  jetbridge controller --watch-namespaces shop,billing --metrics-addr :9092\n\n"
            "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime error, 2 usage or\n"
            "configuration error (for example no usable kubeconfig).\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    jb_log(JB_LOG_INFO, "controller", "signal received", "signal",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    event_base_loopbreak(arg);
}

static int serve(const jb_cfg *cfg, struct event_base *base, natsConnection *nc, jsCtx *js)
{
    int rc = 1;
    jb_err err = {{0}};
    jb_metrics *metrics = jb_metrics_create(10000);
    jb_kube_ctl *ctl = NULL;
    jb_admin *admin = NULL;
    jb_sub_reconciler *rec = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    if (metrics == NULL)
        goto out;
    jb_status st = jb_kube_ctl_start(cfg, nc, js, metrics, &ctl, &err);
    if (st != JB_OK) {
        fprintf(stderr, "jetbridge controller: %s\n", err.msg[0] ? err.msg : jb_status_str(st));
        rc = st == JB_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    admin = jb_admin_start(base, cfg->metrics_addr, metrics, NULL, NULL, &err);
    if (admin == NULL) {
        fprintf(stderr, "jetbridge controller: %s\n", err.msg);
        goto out;
    }
    jb_admin_set_token(admin, cfg->admin_token);
    jb_admin_set_ready_reason(admin, jb_kube_ready_fn, ctl);
    if (jb_sub_reconciler_create(cfg, nc, js, NULL, &rec, &err) != JB_OK ||
        jb_sub_reconciler_start(rec, 0, &err) != JB_OK) {
        fprintf(stderr, "jetbridge controller: %s\n", err.msg);
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0)
        goto out;
    jb_log(JB_LOG_INFO, "controller", "started", "nats", cfg->nats_url, "admin", cfg->metrics_addr,
           NULL);
    event_base_dispatch(base);
    rc = 0;
out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    jb_kube_ctl_stop(ctl);
    jb_sub_reconciler_destroy(rec);
    if (admin != NULL)
        jb_admin_stop(admin);
    jb_metrics_destroy(metrics);
    return rc;
}

int jb_kube_cmd(const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ctl_usage(stdout);
            return 0;
        }
        fprintf(stderr, "jetbridge controller: unknown argument \"%s\"\n", argv[i]);
        ctl_usage(stderr);
        return 2;
    }
    if (cfg->nats_url[0] == '\0') {
        fprintf(stderr, "jetbridge controller: NATS_URL: must be set\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "jetbridge controller: cannot create the event loop\n");
        return 1;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_err err = {{0}};
    if (jb_cfg_nats_connect(cfg, NULL, "jetbridge-controller", true, &nc, &js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge controller: %s\n", err.msg);
        event_base_free(base);
        return 1;
    }
    int rc = serve(cfg, base, nc, js);
    jb_nats_close(nc, js);
    event_base_free(base);
    return rc;
}

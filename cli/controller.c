/* `jetbridge controller`: the Kubernetes controller as a process of its own. It also
 * runs a subscription reconciler, so consumers and statuses exist even before a
 * dispatcher runs (reconcilers are idempotent: several may run at once). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/jb_cli.h"
#include "cli/jb_host.h"
#include "kube/jb_kube.h"
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

/* What the controller process holds besides the host's parts. */
typedef struct ctl_proc {
    jb_kube_ctl *ctl;
    jb_sub_reconciler *rec;
} ctl_proc;

static jb_status ctl_start(jb_host *h, jb_err *err)
{
    ctl_proc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return jb_err_set(err, JB_ERR_NOMEM, "out of memory");
    h->ud = p;
    /* JB_ERR_CONFIG here (no usable kubeconfig) is exit 2. */
    jb_status st = jb_kube_ctl_start(h->cfg, h->nc, h->js, h->metrics, &p->ctl, err);
    if (st != JB_OK)
        return st;
    if ((st = jb_host_admin(h, NULL, NULL, err)) != JB_OK)
        return st;
    jb_admin_set_ready_reason(h->admin, jb_kube_ready_fn, p->ctl);
    if ((st = jb_sub_reconciler_create(h->cfg, h->nc, h->js, NULL, &p->rec, err)) == JB_OK)
        st = jb_sub_reconciler_start(p->rec, 0, err);
    return st == JB_ERR_CONFIG ? JB_ERR_INTERNAL : st;
}

static void ctl_stop(jb_host *h)
{
    ctl_proc *p = h->ud;
    if (p == NULL)
        return;
    jb_kube_ctl_stop(p->ctl);
    jb_sub_reconciler_destroy(p->rec);
    free(p);
}

int jb_cli_controller(const jb_cfg *cfg, int argc, char **argv)
{
    static const jb_host_spec spec = {"controller", ctl_usage, ctl_start, NULL, ctl_stop, NULL};
    return jb_host_main(&spec, cfg, argc, argv);
}

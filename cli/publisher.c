/* `jetbridge publisher`: the publisher as a process of its own, on the host
 * (cli/host.c: signals, the admin listener, exit codes). */
#include <stdio.h>

#include "cli/jb_cli.h"
#include "cli/jb_host.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "publisher/jb_pub.h"

static void usage(FILE *f)
{
    fprintf(
        f, "Usage: jetbridge publisher [config flags]\n\n"
           "Serves the Kyma publisher API on INGRESS_PORT and stores every event in the\n"
           "JetStream stream JS_STREAM_NAME (created or updated at start). Metrics on\n"
           "METRICS_ADDR. `jetbridge help` lists every configuration key.\n\n"
           "Examples:\n"
           "  NATS_URL=nats://127.0.0.1:4222 jetbridge publisher\n"
           "  jetbridge publisher --nats-url nats://n1:4222,nats://n2:4222 --ingress-port 8080 \\\n"
           "      --publish-max-in-flight 8192 --metrics-addr 127.0.0.1:9090\n\n"
           "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime error (port in use, ...),\n"
           "2 usage or configuration error.\n");
}

static jb_status pub_start(jb_host *h, jb_err *err)
{
    jb_pub *pub = NULL;
    jb_status st = jb_pub_create(h->cfg, h->metrics, h->nc, &pub, err);
    h->ud = pub;
    if (st == JB_OK)
        st = jb_pub_start(pub, err);
    if (st == JB_OK)
        st = jb_host_admin(h, jb_pub_ready, pub, err);
    /* Every failure here is a runtime one (exit 1), as before the host existed. */
    return st == JB_ERR_CONFIG ? JB_ERR_INTERNAL : st;
}

/* The first signal ends the loop (no spec->stop_gracefully): stop accepting and
 * finish what is in flight, then free once the NATS connection is closed. */
static void pub_stop(jb_host *h)
{
    jb_pub_stop(h->ud);
}

static void pub_destroy(jb_host *h)
{
    jb_pub_destroy(h->ud);
    h->ud = NULL;
}

int jb_cli_publisher(const jb_cfg *cfg, int argc, char **argv)
{
    static const jb_host_spec spec = {"publisher", usage, pub_start, NULL, pub_stop, pub_destroy};
    return jb_host_main(&spec, cfg, argc, argv);
}

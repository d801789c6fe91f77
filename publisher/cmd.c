/* `jetbridge publisher`: the publisher alone, with the admin listener. */
#include <event2/event.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    jb_log(JB_LOG_INFO, "publisher", "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
           NULL);
    event_base_loopbreak(arg);
}

/* Everything after start: the admin loop on this thread until a signal. SIGINT and
 * SIGTERM stay blocked until their events are registered, so a signal that arrives
 * while the admin listener starts stops the publisher gracefully instead of killing it. */
static int serve(const jb_cfg *cfg, jb_metrics *metrics, jb_pub *pub, struct event_base *base,
                 const sigset_t *stop_signals)
{
    jb_err err = {{0}};
    jb_admin *admin = jb_admin_start(base, cfg->metrics_addr, metrics, jb_pub_ready, pub, &err);
    if (admin == NULL) {
        jb_log(JB_LOG_ERROR, "publisher", "cannot start the admin listener", "error", err.msg,
               NULL);
        return 1;
    }
    jb_admin_set_token(admin, cfg->admin_token);
    struct event *sint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (sint != NULL)
        evsignal_add(sint, NULL);
    if (sterm != NULL)
        evsignal_add(sterm, NULL);
    pthread_sigmask(SIG_UNBLOCK, stop_signals, NULL);
    event_base_dispatch(base);
    if (sint != NULL)
        event_free(sint);
    if (sterm != NULL)
        event_free(sterm);
    jb_admin_stop(admin);
    return 0;
}

int jb_pub_cmd(const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr,
                "jetbridge publisher: unknown argument \"%s\"; see `jetbridge publisher --help`\n",
                argv[i]);
        return 2;
    }
    /* Threads started from here on (nats.c's, ours) inherit a mask without SIGINT
     * and SIGTERM, so libevent's signal handling on this thread sees them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    int code = 1;
    jb_err err = {{0}};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_pub *pub = NULL;
    struct event_base *base = event_base_new();
    jb_metrics *metrics = jb_metrics_create(10000);
    if (base == NULL || metrics == NULL) {
        fprintf(stderr, "jetbridge publisher: out of memory\n");
        goto done;
    }
    if (jb_cfg_nats_connect(cfg, NULL, "jetbridge-publisher", true, &nc, &js, &err) != JB_OK ||
        jb_pub_create(cfg, metrics, nc, &pub, &err) != JB_OK || jb_pub_start(pub, &err) != JB_OK) {
        jb_log(JB_LOG_ERROR, "publisher", "cannot start", "error", err.msg, NULL);
        goto done;
    }
    sigdelset(&set, SIGPIPE);
    code = serve(cfg, metrics, pub, base, &set);
done:
    jb_pub_stop(pub);
    if (nc != NULL)
        jb_nats_close(nc, js);
    jb_pub_destroy(pub);
    jb_metrics_destroy(metrics);
    if (base != NULL)
        event_base_free(base);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return code;
}

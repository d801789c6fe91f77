/* The host of the long-running commands (jb_host.h). */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/jb_host.h"

jb_status jb_host_admin(jb_host *h, jb_ready_fn ready, void *ud, jb_err *err)
{
    h->admin = jb_admin_start(h->base, h->cfg->metrics_addr, h->metrics, ready, ud, err);
    if (h->admin == NULL)
        return JB_ERR_IO;
    jb_admin_set_token(h->admin, h->cfg->admin_token);
    return JB_OK;
}

static void on_stopped(jb_host *h)
{
    event_base_loopbreak(h->base);
}

typedef struct sig_ctx {
    jb_host *h;
    const jb_host_spec *spec;
} sig_ctx;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    sig_ctx *s = arg;
    if (++s->h->signals > 1 || s->spec->stop_gracefully == NULL) {
        /* A second signal: the user does not want to wait for the grace period. */
        event_base_loopbreak(s->h->base);
        return;
    }
    jb_log(JB_LOG_INFO, s->spec->name, "signal received", "signal",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    s->spec->stop_gracefully(s->h, on_stopped);
}

/* Starts the command and runs the loop until a signal ends it; the exit code. */
static int serve(const jb_host_spec *spec, jb_host *h)
{
    int rc = 1;
    jb_err err = {{0}};
    sig_ctx sc = {h, spec};
    struct event *sigterm = NULL, *sigint = NULL;
    jb_status st = h->metrics ? spec->start(h, &err) : JB_ERR_NOMEM;
    if (st != JB_OK) {
        fprintf(stderr, "jetbridge %s: %s\n", spec->name, err.msg[0] ? err.msg : jb_status_str(st));
        rc = st == JB_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    sigterm = evsignal_new(h->base, SIGTERM, on_signal, &sc);
    sigint = evsignal_new(h->base, SIGINT, on_signal, &sc);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0)
        goto out;
    jb_log(JB_LOG_INFO, spec->name, "started", "nats", h->cfg->nats_url, "admin",
           h->cfg->metrics_addr, NULL);
    event_base_dispatch(h->base);
    rc = 0;
out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    spec->stop(h);
    if (h->admin != NULL)
        jb_admin_stop(h->admin);
    return rc;
}

int jb_host_main(const jb_host_spec *spec, const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            spec->usage(stdout);
            return 0;
        }
        fprintf(stderr, "jetbridge %s: unknown argument \"%s\"; see `jetbridge %s --help`\n",
                spec->name, argv[i], spec->name);
        return 2;
    }
    if (cfg->nats_url[0] == '\0') {
        fprintf(stderr, "jetbridge %s: NATS_URL: must be set\n", spec->name);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    jb_host h = {.cfg = cfg};
    char client[64];
    jb_err err = {{0}};
    snprintf(client, sizeof(client), "jetbridge-%s", spec->name);
    if ((h.base = event_base_new()) == NULL) {
        fprintf(stderr, "jetbridge %s: cannot create the event loop\n", spec->name);
        return 1;
    }
    /* nats.c keeps its own threads (base NULL): blocking calls wait on ours. */
    if (jb_cfg_nats_connect(cfg, NULL, client, true, &h.nc, &h.js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge %s: %s\n", spec->name, err.msg);
        event_base_free(h.base);
        return 1;
    }
    h.metrics = jb_metrics_create(10000);
    int rc = serve(spec, &h);
    jb_metrics_destroy(h.metrics);
    jb_nats_close(h.nc, h.js);
    event_base_free(h.base);
    return rc;
}

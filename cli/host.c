/* The host of the long-running commands (jb_host.h). */
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jb_host.h"

/* ---------------------------------------------------------- signals */

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

void jb_host_signals_block(sigset_t *old)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, old);
    signal(SIGPIPE, SIG_IGN);
}

struct jb_host_signals {
    struct event *term, *intr;
    jb_host_signal_fn fn;
    void *ud;
    int n;
};

const char *jb_host_signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    jb_host_signals *s = arg;
    s->fn((int)sig, ++s->n, s->ud);
}

jb_host_signals *jb_host_signals_start(struct event_base *base, jb_host_signal_fn fn, void *ud)
{
    jb_host_signals *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fn = fn;
    s->ud = ud;
    s->term = evsignal_new(base, SIGTERM, on_signal, s);
    s->intr = evsignal_new(base, SIGINT, on_signal, s);
    if (s->term == NULL || s->intr == NULL || evsignal_add(s->term, NULL) != 0 ||
        evsignal_add(s->intr, NULL) != 0) {
        jb_host_signals_stop(s);
        return NULL;
    }
    /* Registered: from now on a signal is a callback on the loop, not a kill. */
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return s;
}

void jb_host_signals_stop(jb_host_signals *s)
{
    if (s == NULL)
        return;
    if (s->term != NULL)
        event_free(s->term);
    if (s->intr != NULL)
        event_free(s->intr);
    free(s);
}

/* ------------------------------------------------------------- host */

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

static void host_signal(int sig, int nth, void *ud)
{
    sig_ctx *s = ud;
    s->h->signals = nth;
    if (nth > 1) {
        /* A second signal: the user does not want to wait for the grace period. */
        event_base_loopbreak(s->h->base);
        return;
    }
    jb_log(JB_LOG_INFO, s->spec->name, "signal received", "signal", jb_host_signal_name(sig), NULL);
    if (s->spec->stop_gracefully == NULL)
        event_base_loopbreak(s->h->base);
    else
        s->spec->stop_gracefully(s->h, on_stopped);
}

/* Starts the command and runs the loop until a signal ends it; the exit code. */
static int serve(const jb_host_spec *spec, jb_host *h)
{
    int rc = 1;
    jb_err err = {{0}};
    sig_ctx sc = {h, spec};
    jb_host_signals *sigs = NULL;
    jb_status st = h->metrics ? spec->start(h, &err) : JB_ERR_NOMEM;
    if (st != JB_OK) {
        fprintf(stderr, "jetbridge %s: %s\n", spec->name, err.msg[0] ? err.msg : jb_status_str(st));
        rc = st == JB_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    if ((sigs = jb_host_signals_start(h->base, host_signal, &sc)) == NULL)
        goto out;
    char *shown = jb_redact_url(h->cfg->nats_url); /* NATS_URL may carry a password */
    jb_log(JB_LOG_INFO, spec->name, "started", "nats", shown != NULL ? shown : "", "admin",
           h->cfg->metrics_addr, NULL);
    free(shown);
    event_base_dispatch(h->base);
    rc = 0;
out:
    jb_host_signals_stop(sigs);
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
    sigset_t old;
    jb_host_signals_block(&old);
    jb_host h = {.cfg = cfg};
    char client[64];
    jb_err err = {{0}};
    int rc = 1;
    snprintf(client, sizeof(client), "jetbridge-%s", spec->name);
    if ((h.base = event_base_new()) == NULL) {
        fprintf(stderr, "jetbridge %s: cannot create the event loop\n", spec->name);
        goto out;
    }
    /* nats.c keeps its own threads (base NULL): blocking calls wait on ours. */
    if (jb_cfg_nats_connect(cfg, NULL, client, true, &h.nc, &h.js, &err) != JB_OK) {
        fprintf(stderr, "jetbridge %s: %s\n", spec->name, err.msg);
        goto out;
    }
    h.metrics = jb_metrics_create(10000);
    rc = serve(spec, &h);
    jb_nats_close(h.nc, h.js);
    if (spec->destroy != NULL)
        spec->destroy(&h);
    jb_metrics_destroy(h.metrics);
out:
    if (h.base != NULL)
        event_base_free(h.base);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

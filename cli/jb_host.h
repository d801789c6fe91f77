/*
 * cli/ host: what every long-running command (dispatcher, controller) does around
 * its module, once: `--help` and unknown arguments (exit 2), SIGPIPE ignored, one
 * libevent loop, the NATS connection (retrying in the background), the metrics
 * registry, the admin listener, SIGTERM/SIGINT, exit codes.
 *
 * Signals: one strategy, libevent's evsignal (a self-pipe inside libevent), so a
 * signal becomes a callback on the loop thread. The first SIGTERM or SIGINT asks
 * the command to stop gracefully (spec->stop_gracefully; without one the loop
 * ends); a second one ends the loop at once.
 *
 * Exit codes: 0 stopped by a signal, 1 runtime error, 2 usage or configuration
 * error (JB_ERR_CONFIG from start).
 */
#ifndef JB_HOST_H
#define JB_HOST_H

#include <stdio.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"

typedef struct jb_host {
    const jb_cfg *cfg;
    struct event_base *base;
    natsConnection *nc;
    jsCtx *js;
    jb_metrics *metrics;
    jb_admin *admin; /* started by jb_host_admin */
    void *ud;        /* the command's own state (start sets it) */
    int signals;
} jb_host;

typedef struct jb_host_spec {
    const char *name; /* "dispatcher": messages, logs, the NATS connection name */
    void (*usage)(FILE *f);
    /* Starts the command's parts (h->nc, h->js, h->metrics exist); JB_OK or a
     * status with err filled. May call jb_host_admin. */
    jb_status (*start)(jb_host *h, jb_err *err);
    /* The first signal: stop gracefully and call done(h) when finished. NULL: the
     * loop ends at once. */
    void (*stop_gracefully)(jb_host *h, void (*done)(jb_host *h));
    /* Frees what start made (also after a failed start). */
    void (*stop)(jb_host *h);
} jb_host_spec;

/* Starts the admin listener on METRICS_ADDR with ADMIN_TOKEN and ready(ud). */
jb_status jb_host_admin(jb_host *h, jb_ready_fn ready, void *ud, jb_err *err);

/* Runs the command: argv[0] is its name. Returns the exit code. */
int jb_host_main(const jb_host_spec *spec, const jb_cfg *cfg, int argc, char **argv);

#endif

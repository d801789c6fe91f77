/*
 * cli/ host: what every long-running command (publisher, dispatcher, controller)
 * does around its module, once: `--help` and unknown arguments (exit 2), SIGPIPE
 * ignored, one libevent loop, the NATS connection (retrying in the background),
 * the metrics registry, the admin listener, SIGTERM/SIGINT, exit codes. `jetbridge
 * run` has its own start-up but the same signal handling (jb_host_signals_*).
 *
 * Signals: one strategy for every long-running process. SIGINT and SIGTERM are
 * blocked before anything starts (threads started later, nats.c's and ours,
 * inherit the mask), then libevent's evsignal (a self-pipe inside libevent) is
 * registered on the loop and only then are they unblocked on the loop's thread: a
 * signal becomes a callback on the loop thread, and one that arrives during start
 * waits for it instead of killing the process (exit 143). The first SIGTERM or
 * SIGINT asks the command to stop gracefully (spec->stop_gracefully; without one
 * the loop ends); a second one ends the loop at once.
 *
 * Exit codes: 0 stopped by a signal, 1 runtime error, 2 usage or configuration
 * error (JB_ERR_CONFIG from start).
 */
#ifndef JB_HOST_H
#define JB_HOST_H

#include <signal.h>
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

/* ---------------------------------------------------------- signals */

/* Blocks SIGINT and SIGTERM on the calling thread (the old mask goes to *old) and
 * ignores SIGPIPE. Call before starting any thread or connection. */
void jb_host_signals_block(sigset_t *old);

/* What a long-running process does on SIGINT/SIGTERM: nth counts the signals
 * received so far (1 for the first). Runs on base's loop thread. */
typedef void (*jb_host_signal_fn)(int sig, int nth, void *ud);
typedef struct jb_host_signals jb_host_signals;

/* Registers fn for SIGINT and SIGTERM on base, then unblocks them on the calling
 * thread (base's). NULL when out of memory (they stay blocked). */
jb_host_signals *jb_host_signals_start(struct event_base *base, jb_host_signal_fn fn, void *ud);
/* Unregisters and frees. NULL is fine. */
void jb_host_signals_stop(jb_host_signals *s);
/* "SIGTERM" or "SIGINT", for the log line. */
const char *jb_host_signal_name(int sig);

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
    /* NULL, or frees what must outlive the NATS connection (nats.c may still be
     * inside a callback until it is closed); runs after stop, once it is closed. */
    void (*destroy)(jb_host *h);
} jb_host_spec;

/* Starts the admin listener on METRICS_ADDR with ADMIN_TOKEN and ready(ud). */
jb_status jb_host_admin(jb_host *h, jb_ready_fn ready, void *ud, jb_err *err);

/* Runs the command: argv[0] is its name. Returns the exit code. */
int jb_host_main(const jb_host_spec *spec, const jb_cfg *cfg, int argc, char **argv);

#endif

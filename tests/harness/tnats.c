/*
 * A real nats-server with JetStream per test: free loopback port, temporary store,
 * started as a child that dies with the test process.
 */
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "jb_testenv.h"
#include "th_internal.h"

#define TNATS_READY_MS       10000
#define TNATS_START_ATTEMPTS 3
#define TNATS_STOP_GRACE_MS  5000

struct jb_tnats {
    pid_t pid; /* -1 while stopped */
    int port;
    char url[64];
    char dir[128];   /* mkdtemp: holds the store and the log */
    char store[192]; /* JetStream store directory (-sd) */
    char log[192];
    char conf[192]; /* "" when started without a config file */
    char exe[512];
};

static const char *const nats_fallbacks[] = {"/usr/sbin/nats-server", "/usr/local/bin/nats-server",
                                             NULL};

/* One JetStream round trip: proves the server accepts clients and JetStream is up
 * (a TCP accept alone can come before JetStream finished recovering its store). */
static bool js_answers(const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsOptions jo;
    bool ok = false;
    if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, url) != NATS_OK ||
        natsOptions_SetTimeout(opts, 1000) != NATS_OK ||
        natsOptions_SetAllowReconnect(opts, false) != NATS_OK)
        goto out;
    if (natsConnection_Connect(&nc, opts) != NATS_OK)
        goto out;
    if (jsOptions_Init(&jo) != NATS_OK)
        goto out;
    jo.Wait = 1000;
    if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
        goto out;
    ok = js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
out:
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    return ok;
}

static void print_log_tail(const jb_tnats *n)
{
    size_t len = 0;
    char *log = jb_th_read_file(n->log, 1 << 20, &len);
    if (log == NULL)
        return;
    const char *tail = len > 4000 ? log + len - 4000 : log;
    fprintf(stderr, "harness: nats-server log (%s):\n%s\n", n->log, tail);
    free(log);
}

/* Spawns the server on n->port and waits until JetStream answers. On failure the
 * child is reaped and n->pid is -1. */
static bool run_server(jb_tnats *n)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", n->port);
    /* Flags win over the config file, so the port and store are always ours. */
    const char *argv[] = {n->exe,      "-js",    "-a",
                          "127.0.0.1", "-p",     port,
                          "-sd",       n->store, n->conf[0] != '\0' ? "-c" : NULL,
                          n->conf,     NULL};
    jb_th_spawn sp = {
        .exe = n->exe, .argv = argv, .env_add = NULL, .out_path = NULL, .err_path = n->log};
    n->pid = jb_th_spawn_child(&sp);
    if (n->pid < 0)
        return false;
    int64_t deadline = jb_now_monotonic_ns() + (int64_t)TNATS_READY_MS * 1000000;
    while (jb_now_monotonic_ns() < deadline) {
        bool answered = jb_th_port_open(n->port) && js_answers(n->url);
        /* Checked after the probe: if our child died (port taken, bad flags), whoever
         * answered on the port is another test's server. */
        int st;
        if (jb_th_wait_pid(n->pid, 0, &st)) {
            n->pid = -1;
            return false;
        }
        if (answered)
            return true;
        jb_sleep_ms(50);
    }
    fprintf(stderr, "harness: nats-server on port %d not ready after %d ms\n", n->port,
            TNATS_READY_MS);
    jb_th_kill_reap(n->pid, 0);
    n->pid = -1;
    return false;
}

static void set_port(jb_tnats *n, int port)
{
    n->port = port;
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", port);
}

static bool write_conf(jb_tnats *n, const char *conf)
{
    snprintf(n->conf, sizeof(n->conf), "%s/nats.conf", n->dir);
    FILE *f = fopen(n->conf, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(conf, f) >= 0;
    return fclose(f) == 0 && ok;
}

jb_tnats *jb_tnats_start(void)
{
    return jb_tnats_start_with(NULL);
}

jb_tnats *jb_tnats_start_with(const char *conf)
{
    jb_tnats *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->pid = -1;
    if (!jb_th_find_exe("nats-server", nats_fallbacks, n->exe, sizeof(n->exe))) {
        fprintf(stderr, "harness: nats-server not found in PATH or /usr/sbin\n");
        goto fail;
    }
    snprintf(n->dir, sizeof(n->dir), "%s/jb-nats-XXXXXX",
             getenv("TMPDIR") != NULL && strlen(getenv("TMPDIR")) < 64 ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(n->dir) == NULL) {
        perror("harness: mkdtemp");
        n->dir[0] = '\0';
        goto fail;
    }
    snprintf(n->store, sizeof(n->store), "%s/store", n->dir);
    snprintf(n->log, sizeof(n->log), "%s/nats.log", n->dir);
    if (conf != NULL && !write_conf(n, conf)) {
        fprintf(stderr, "harness: cannot write %s\n", n->conf);
        goto fail;
    }
    /* Another process may take the free port between probe and bind: try again. */
    for (int i = 0; i < TNATS_START_ATTEMPTS; i++) {
        int port = jb_free_port();
        if (port <= 0)
            continue;
        set_port(n, port);
        if (run_server(n))
            return n;
    }
    fprintf(stderr, "harness: nats-server did not start\n");
    print_log_tail(n);
fail:
    jb_tnats_stop(n);
    return NULL;
}

const char *jb_tnats_url(const jb_tnats *n)
{
    return n->url;
}

int jb_tnats_port(const jb_tnats *n)
{
    return n->port;
}

const char *jb_tnats_dir(const jb_tnats *n)
{
    return n->dir;
}

pid_t jb_tnats_pid(const jb_tnats *n)
{
    return n->pid;
}

bool jb_tnats_kill(jb_tnats *n)
{
    if (n == NULL || n->pid < 0)
        return false;
    jb_th_kill_reap(n->pid, TNATS_STOP_GRACE_MS);
    n->pid = -1;
    return true;
}

bool jb_tnats_crash(jb_tnats *n)
{
    if (n == NULL || n->pid < 0)
        return false;
    kill(n->pid, SIGKILL);
    int st;
    jb_th_wait_pid(n->pid, -1, &st);
    n->pid = -1;
    return true;
}

bool jb_tnats_restart(jb_tnats *n)
{
    if (n == NULL)
        return false;
    if (n->pid >= 0)
        jb_tnats_kill(n);
    if (run_server(n))
        return true;
    fprintf(stderr, "harness: nats-server did not restart on port %d\n", n->port);
    print_log_tail(n);
    return false;
}

void jb_tnats_stop(jb_tnats *n)
{
    if (n == NULL)
        return;
    if (n->pid >= 0)
        jb_th_kill_reap(n->pid, TNATS_STOP_GRACE_MS);
    if (n->dir[0] != '\0')
        jb_th_rm_tree(n->dir);
    free(n);
}

bool jb_tnats_client(jb_tnats *n, jb_cfg **cfg, natsConnection **nc, jsCtx **js)
{
    jb_err err = {{0}};
    jb_cfg *c = *cfg = jb_cfg_defaults();
    if (c == NULL)
        return false;
    free(c->nats_url);
    c->nats_url = strdup(jb_tnats_url(n));
    c->reconnect_wait_ms = 100;
    if (jb_cfg_nats_connect(c, NULL, "test", false, nc, js, &err) != JB_OK) {
        fprintf(stderr, "env: %s\n", err.msg);
        return false;
    }
    return true;
}

void jb_tnats_client_close(jb_cfg *cfg, natsConnection *nc, jsCtx *js)
{
    if (nc != NULL)
        jb_nats_close(nc, js);
    jb_cfg_destroy(cfg);
}

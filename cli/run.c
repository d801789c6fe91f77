/* `jetbridge run`: publisher and dispatcher in one process, with a local nats-server
 * when NATS_URL is empty. */
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/jb_cli.h"
#include "cli/jb_host.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/jb_disp.h"
#include "kube/jb_kube.h"
#include "publisher/jb_pub.h"
#include "subscription/jb_sub.h"

/* How long the start banner waits for the first reconciler pass before printing
 * the subscriptions (it prints them anyway afterwards, as not yet ready). */
#define BANNER_WAIT_MS 10000

static void run_usage(FILE *f)
{
    fprintf(f, "Usage: jetbridge run [--subscriptions DIR] [--data-dir DIR] [--kubernetes] [config "
               "flags]\n\n"
               "Runs the publisher and the dispatcher in one process. When NATS_URL is empty it\n"
               "starts a local `nats-server -js` (store in DATA_DIR/nats, log in\n"
               "DATA_DIR/nats-server.log) and stops it on exit; it then locks DATA_DIR (one\n"
               "`run` per data directory), binds the admin listener to 127.0.0.1 unless\n"
               "METRICS_ADDR names a host, and writes DATA_DIR/nats.url and\n"
               "DATA_DIR/metrics.addr, where `sub`, `dlq` and `stats` find them. Every listener\n"
               "is bound before anything starts. With --subscriptions DIR it\n"
               "applies the Subscription manifests of DIR and re-applies them when files change.\n"
               "SIGINT/SIGTERM stop it gracefully; a second signal stops at once.\n\n"
               "Examples:\n"
               "  jetbridge run --subscriptions examples/subscriptions\n"
               "  NATS_URL=nats://127.0.0.1:4222 jetbridge run --ingress-port 8080\n");
}

typedef struct run_ctx {
    const jb_cfg *cfg;
    struct event_base *base;
    jsCtx *js;
    jb_pub *pub;
    jb_disp *disp;
    struct event *banner_timer;
    int64_t banner_deadline_ns;
} run_ctx;

static bool run_ready(void *ud)
{
    run_ctx *r = ud;
    /* The admin listener answers before the parts exist (it is bound first). */
    return r->pub != NULL && r->disp != NULL && jb_pub_ready(r->pub) && jb_disp_ready(r->disp);
}

/* "yes" when the stored status says ready, "no" when it says not, "?" when there
 * is none yet. */
static const char *stored_ready(jb_sub_store *st, const jb_sub *s)
{
    char *json = NULL;
    const char *res = "?";
    if (jb_sub_store_get_status(st, jb_sub_namespace(s), jb_sub_name(s), &json, NULL) != JB_OK)
        return res;
    cJSON *doc = cJSON_ParseWithLength(json, strlen(json));
    cJSON *ready = cJSON_GetObjectItemCaseSensitive(doc, "ready");
    if (cJSON_IsBool(ready))
        res = cJSON_IsTrue(ready) ? "yes" : "no";
    cJSON_Delete(doc);
    free(json);
    return res;
}

static void print_subscriptions(run_ctx *r)
{
    jb_sub_store *st = NULL;
    jb_sub_vec subs = {0};
    jb_err err = {{0}};
    if (jb_sub_store_open(r->cfg, r->js, &st, &err) != JB_OK ||
        jb_sub_store_list(st, NULL, &subs, &err) != JB_OK) {
        printf("  subscriptions: cannot read the store: %s\n", err.msg);
        goto out;
    }
    if (subs.n == 0)
        printf("  subscriptions: none yet (jetbridge sub apply -f FILE)\n");
    for (size_t i = 0; i < subs.n; i++) {
        const jb_sub *s = subs.items[i];
        printf("  subscription %s/%s ready=%s sink=%s types=", jb_sub_namespace(s), jb_sub_name(s),
               stored_ready(st, s), jb_sub_sink(s));
        for (size_t t = 0; t < jb_sub_ntypes(s); t++)
            printf("%s%s", t ? "," : "", jb_sub_type(s, t));
        printf("\n");
    }
out:
    jb_sub_vec_clear(&subs);
    jb_sub_store_close(st);
}

static void print_banner(run_ctx *r)
{
    const char *maddr = r->cfg->metrics_addr;
    if (strncmp(maddr, "0.0.0.0:", 8) == 0)
        maddr += 7;
    printf("jetbridge is running\n");
    printf("  publish:  curl -X POST http://127.0.0.1:%d/publish (CloudEvents), "
           "http://127.0.0.1:%d/{application}/v1/events (legacy)\n",
           jb_pub_port(r->pub), jb_pub_port(r->pub));
    printf("  metrics:  http://%s%s/metrics\n", maddr[0] == ':' ? "127.0.0.1" : "", maddr);
    char *shown = jb_redact_url(r->cfg->nats_url); /* NATS_URL may carry a password */
    printf("  NATS:     %s\n", shown != NULL ? shown : "");
    free(shown);
    print_subscriptions(r);
    printf("  stop:     Ctrl-C\n");
    fflush(stdout);
}

static void on_banner_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run_ctx *r = arg;
    if (!run_ready(r) && jb_now_monotonic_ns() < r->banner_deadline_ns) {
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(r->banner_timer, &tv);
        return;
    }
    print_banner(r);
}

static void on_disp_stopped(void *ud)
{
    run_ctx *r = ud;
    event_base_loopbreak(r->base);
}

/* The host's signal strategy (jb_host_signals_*): the first signal stops
 * gracefully, a second one ends the loop at once. */
static void on_signal(int sig, int nth, void *ud)
{
    run_ctx *r = ud;
    if (nth > 1) {
        event_base_loopbreak(r->base);
        return;
    }
    jb_log(JB_LOG_INFO, "run", "signal received", "signal", jb_host_signal_name(sig), NULL);
    /* The publisher stops accepting first, so nothing new is acknowledged while the
     * dispatcher drains. */
    jb_pub_stop(r->pub);
    jb_disp_stop_gracefully(r->disp, on_disp_stopped, r);
}

/* Everything after the NATS connections exist; returns the exit code. */
static int serve(run_ctx *r, jb_admin *admin, jb_metrics *metrics, natsConnection *pub_nc,
                 natsConnection *disp_nc, jsCtx *disp_js)
{
    int rc = 1;
    jb_err err = {{0}};
    const jb_cfg *cfg = r->cfg;
    jb_sub_dirwatch *dw = NULL;
    jb_kube_ctl *kube = NULL;
    jb_host_signals *sigs = NULL;
    r->js = disp_js;
    if (jb_pub_create(cfg, metrics, pub_nc, &r->pub, &err) != JB_OK ||
        jb_disp_create(cfg, r->base, metrics, disp_nc, disp_js, &r->disp, &err) != JB_OK)
        goto fail;
    if (cfg->kubernetes) { /* --kubernetes: the controller in this process */
        if (jb_kube_ctl_start(cfg, disp_nc, disp_js, metrics, &kube, &err) != JB_OK)
            goto fail;
        jb_admin_set_ready_reason(admin, jb_kube_ready_fn, kube);
    }
    if (cfg->subscriptions_dir[0] != '\0' &&
        jb_sub_dirwatch_start(cfg, disp_js, cfg->subscriptions_dir, &dw, &err) != JB_OK)
        goto fail;
    if (jb_pub_start(r->pub, &err) != JB_OK) {
        /* The port was claimed at start; losing it now is a race worth naming. */
        fprintf(stderr, "jetbridge run: %s\n", err.msg);
        goto out;
    }
    if (jb_disp_start(r->disp, &err) != JB_OK)
        goto fail;
    r->banner_timer = evtimer_new(r->base, on_banner_timer, r);
    if (r->banner_timer == NULL || (sigs = jb_host_signals_start(r->base, on_signal, r)) == NULL)
        goto out;
    r->banner_deadline_ns = jb_now_monotonic_ns() + (int64_t)BANNER_WAIT_MS * 1000000;
    struct timeval tv = {0, 0};
    evtimer_add(r->banner_timer, &tv);
    event_base_dispatch(r->base);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "jetbridge run: %s\n", err.msg[0] ? err.msg : "out of memory");
out:
    jb_host_signals_stop(sigs);
    if (r->banner_timer != NULL)
        event_free(r->banner_timer);
    jb_sub_dirwatch_stop(dw);
    jb_kube_ctl_stop(kube);
    if (r->pub != NULL)
        jb_pub_stop(r->pub);
    jb_disp_destroy(r->disp);
    r->disp = NULL;
    /* The publisher is freed by the caller after its NATS connection is closed:
     * nats.c may still be inside an ack callback until then. */
    return rc;
}

/* Writes text to dir/name through a temporary file and a rename, so a reader never
 * sees half a line. */
static bool write_file(const char *dir, const char *name, const char *text)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    bool ok = fprintf(f, "%s\n", text) > 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

static void remove_file(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

/* With its own nats-server, nothing but this machine needs the admin listener: a
 * METRICS_ADDR without a host (":9090") binds loopback then. */
static void admin_addr(const jb_cfg *cfg, bool own_nats, char *out, size_t cap)
{
    if (own_nats && cfg->metrics_addr[0] == ':')
        snprintf(out, cap, "127.0.0.1%s", cfg->metrics_addr);
    else
        snprintf(out, cap, "%s", cfg->metrics_addr);
}

/* Before any child or connection: lock DATA_DIR and bind the admin listener. The
 * ingress port was claimed by main. Returns false after printing why. */
static bool prepare(const jb_cfg *cfg, bool own_nats, run_ctx *r, jb_metrics *metrics,
                    jb_admin **admin, int *lock_fd, char *maddr, size_t mcap)
{
    jb_err err = {{0}};
    if (own_nats) {
        if (jb_cli_mkdir_p(cfg->data_dir) != 0) {
            fprintf(stderr, "jetbridge run: DATA_DIR: cannot create %s: %s\n", cfg->data_dir,
                    strerror(errno));
            return false;
        }
        if ((*lock_fd = jb_cli_lock_data_dir(cfg->data_dir, &err)) < 0) {
            fprintf(stderr, "jetbridge run: %s\n", err.msg);
            return false;
        }
    }
    admin_addr(cfg, own_nats, maddr, mcap);
    if ((*admin = jb_admin_start(r->base, maddr, metrics, run_ready, r, &err)) == NULL) {
        fprintf(stderr, "jetbridge run: %s\n", err.msg);
        return false;
    }
    jb_admin_set_token(*admin, cfg->admin_token);
    /* Port 0 picks a free one: name the real one. */
    const char *colon = strrchr(maddr, ':');
    if (colon != NULL)
        snprintf(maddr + (colon - maddr) + 1, mcap - (size_t)(colon - maddr) - 1, "%d",
                 jb_admin_port(*admin));
    return true;
}

int jb_cli_run(const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        }
        fprintf(stderr, "jetbridge run: unknown argument \"%s\"; see `jetbridge run --help`\n",
                argv[i]);
        return 2;
    }
    sigset_t old_mask;
    jb_host_signals_block(&old_mask);
    int rc = 1, lock_fd = -1;
    bool own_nats = cfg->nats_url[0] == '\0';
    jb_err err = {{0}};
    jb_localnats *ln = NULL;
    jb_admin *admin = NULL;
    natsConnection *pub_nc = NULL, *disp_nc = NULL;
    jsCtx *pub_js = NULL, *disp_js = NULL;
    char maddr[300];
    jb_cfg local = *cfg; /* shallow copy: nats_url (owned by ln) and metrics_addr may differ */
    run_ctx r = {.cfg = &local};
    jb_metrics *metrics = jb_metrics_create(10000);
    r.base = event_base_new();
    if (metrics == NULL || r.base == NULL) {
        fprintf(stderr, "jetbridge run: out of memory\n");
        goto out;
    }
    if (!prepare(cfg, own_nats, &r, metrics, &admin, &lock_fd, maddr, sizeof(maddr))) {
        rc = 2;
        goto out;
    }
    local.metrics_addr = maddr;
    if (own_nats) {
        if ((ln = jb_localnats_start(cfg->data_dir, &err)) == NULL) {
            fprintf(stderr, "jetbridge run: %s\n", err.msg);
            goto out;
        }
        local.nats_url = (char *)jb_localnats_url(ln);
        if (!write_file(cfg->data_dir, JB_CFG_NATS_URL_FILE, local.nats_url) ||
            !write_file(cfg->data_dir, JB_CFG_METRICS_ADDR_FILE, maddr))
            jb_log(JB_LOG_WARN, "run", "cannot write the address files for the CLI", "dir",
                   cfg->data_dir, "error", strerror(errno), NULL);
    }
    /* Two connections: the dispatcher's fetches never delay the publisher's acks. */
    if (jb_cfg_nats_connect(&local, NULL, "jetbridge-run-publisher", true, &pub_nc, &pub_js,
                            &err) != JB_OK ||
        jb_cfg_nats_connect(&local, NULL, "jetbridge-run-dispatcher", true, &disp_nc, &disp_js,
                            &err) != JB_OK) {
        fprintf(stderr, "jetbridge run: %s\n", err.msg);
        goto out;
    }
    rc = serve(&r, admin, metrics, pub_nc, disp_nc, disp_js);
out:
    if (admin != NULL)
        jb_admin_stop(admin);
    jb_nats_close(disp_nc, disp_js);
    jb_nats_close(pub_nc, pub_js);
    jb_pub_destroy(r.pub);
    jb_metrics_destroy(metrics);
    if (r.base != NULL)
        event_base_free(r.base);
    if (ln != NULL) {
        remove_file(cfg->data_dir, JB_CFG_NATS_URL_FILE);
        remove_file(cfg->data_dir, JB_CFG_METRICS_ADDR_FILE);
    }
    jb_localnats_stop(ln);
    if (lock_fd >= 0)
        close(lock_fd);
    /* The last line after Ctrl-C: everything is flushed and the store is closed. */
    if (rc == 0)
        jb_log(JB_LOG_INFO, "run", "stopped", NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}

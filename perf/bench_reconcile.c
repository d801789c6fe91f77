/*
 * Reconciler at scale: N subscriptions (default 2,000) with 3 types each.
 * Reports the time to store them, the time for a reconciler to converge from
 * empty (every consumer created, every status written), a steady-state pass, the
 * reconciler thread following N changes, and the memory the reconciler holds per
 * subscription.
 *
 * Usage: bench_reconcile [N] [NATS_URL]
 * Without a URL it starts `nats-server -js` on a free loopback port with a
 * temporary store in /dev/shm (else /tmp), removed at exit. See
 * perf/bench_reconcile.sh.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "subscription/jb_sub.h"

extern char **environ;

static double now_s(void)
{
    return (double)jb_now_monotonic_ns() / 1e9;
}

/* Resident memory after giving freed heap back, so that only what is held counts. */
static long rss_kb(void)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static pid_t start_server(char *url, size_t cap, char *dir)
{
    int port = free_port();
    if (port < 0 || mkdtemp(dir) == NULL)
        return -1;
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *argv[] = {"nats-server", "-js", "-a", "127.0.0.1", "-p", p, "-sd", dir, NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    int rc = posix_spawnp(&pid, "nats-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    snprintf(url, cap, "nats://127.0.0.1:%d", port);
    return pid;
}

static atomic_int ready_calls;

static void on_ready(const jb_sub_consumer *c, void *ud)
{
    (void)c, (void)ud;
    atomic_fetch_add(&ready_calls, 1);
}

static jb_status put_all(jb_sub_store *st, int n, const char *tag, jb_err *err)
{
    for (int i = 0; i < n; i++) {
        char buf[1024];
        int len = snprintf(buf, sizeof(buf),
                           "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":"
                           "\"Subscription\",\"metadata\":{\"name\":\"sub-%05d\",\"namespace\":"
                           "\"bench\"},\"spec\":{\"sink\":\"http://sink-%d.bench.svc.cluster."
                           "local/\",\"source\":\"app%d\",\"types\":[\"order.created.%s\","
                           "\"order.updated.%s\",\"order.deleted.%s\"]}}",
                           i, i, i % 50, tag, tag, tag);
        jb_sub_vec v = {0};
        jb_sub_apply_result res;
        jb_status s = jb_sub_parse(buf, (size_t)len, "bench", NULL, &v, err);
        if (s == JB_OK)
            s = jb_sub_store_put(st, v.items[0], &res, err);
        jb_sub_vec_clear(&v);
        if (s != JB_OK)
            return s;
    }
    return JB_OK;
}

static int consumers_with(jsCtx *js, const char *suffix)
{
    jsConsumerInfoList *l = NULL;
    jsErrCode ec = 0;
    if (js_Consumers(&l, js, "sap", NULL, &ec) != NATS_OK)
        return 0;
    int k = 0;
    size_t sl = strlen(suffix);
    for (int i = 0; i < l->Count; i++) {
        const char *f = l->List[i]->Config->FilterSubject;
        size_t fl = f ? strlen(f) : 0;
        k += fl >= sl && strcmp(f + fl - sl, suffix) == 0;
    }
    jsConsumerInfoList_Destroy(l);
    return k;
}

static int run(int n, const char *url)
{
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->nats_url);
    cfg->nats_url = strdup(url);
    jb_log_setup(JB_LOG_ERROR, false);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jb_sub_store *st = NULL;
    jb_err err = {{0}};
    if (jb_cfg_nats_connect(cfg, NULL, "bench", false, &nc, &js, &err) != JB_OK ||
        jb_sub_store_open(cfg, js, &st, &err) != JB_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double t0 = now_s();
    if (put_all(st, n, "v1", &err) != JB_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double t_store = now_s() - t0;

    long rss0 = rss_kb();
    jb_sub_reconciler_callbacks cb = {on_ready, NULL, NULL};
    jb_sub_reconciler *r = NULL;
    jb_sub_reconciler_create(cfg, nc, js, &cb, &r, &err);
    t0 = now_s();
    jb_status s = jb_sub_reconciler_sync(r, true, &err);
    double t_conv = now_s() - t0;
    long rss1 = rss_kb();
    if (s != JB_OK) {
        fprintf(stderr, "bench: sync: %s\n", err.msg);
        return 1;
    }
    int consumers = consumers_with(js, ".v1");
    int ready_after_converge = atomic_load(&ready_calls);
    t0 = now_s();
    jb_sub_reconciler_sync(r, false, &err);
    double t_steady = now_s() - t0;

    /* The thread follows changes: every subscription moves to new types. */
    jb_sub_reconciler_start(r, 0, &err);
    t0 = now_s();
    put_all(st, n, "v2", &err);
    double t_put2 = now_s() - t0;
    /* Wait on the callbacks, not on listing 12,000 consumers in a loop (which would
     * load the server and slow down what is measured). */
    while (now_s() - t0 < 300 && atomic_load(&ready_calls) < ready_after_converge + 3 * n)
        nats_Sleep(20);
    double t_follow = now_s() - t0;
    int moved = consumers_with(js, ".v2");
    int left_v1 = consumers_with(js, ".v1");
    for (int i = 0; i < 100 && left_v1 > 0; i++) { /* the last deletes follow the callbacks */
        nats_Sleep(100);
        left_v1 = consumers_with(js, ".v1");
    }

    printf("subscriptions:                 %d (x3 types)\n", n);
    printf("store %d manifests:          %.2f s (%.0f/s)\n", n, t_store, n / t_store);
    printf("converge from empty:           %.2f s (%d consumers created, %d ready callbacks)\n",
           t_conv, consumers, ready_after_converge);
    printf("steady-state full pass:        %.2f s\n", t_steady);
    printf("follow %d changes (thread):  %.2f s (writes took %.2f s; %d new consumers, %d "
           "old left)\n",
           n, t_follow, t_put2, moved, left_v1);
    printf("reconciler memory:             %ld KiB RSS growth, %.1f KiB per subscription\n",
           rss1 - rss0, (double)(rss1 - rss0) / n);
    jb_sub_reconciler_destroy(r);
    jb_sub_store_close(st);
    jb_nats_close(nc, js);
    jb_cfg_destroy(cfg);
    return consumers == 3 * n && moved == 3 * n && left_v1 == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    if (n <= 0 || n > 100000) {
        fprintf(stderr, "usage: bench_reconcile [N] [NATS_URL]\n");
        return 2;
    }
    /* The store on tmpfs when there is one: the figures are then about the reconciler
     * and the server's CPU, not about a disk shared with whatever else runs. */
    char url[64], dir[] = "/dev/shm/jb-bench-XXXXXX";
    if (access("/dev/shm", W_OK) != 0)
        memcpy(dir, "/tmp/jb-bench-XXXXXX", sizeof("/tmp/jb-bench-XXXXXX"));
    pid_t pid = -1;
    if (argc > 2) {
        snprintf(url, sizeof(url), "%s", argv[2]);
    } else if ((pid = start_server(url, sizeof(url), dir)) < 0) {
        fprintf(stderr, "bench: cannot start nats-server\n");
        return 1;
    }
    nats_Sleep(pid > 0 ? 1000 : 0); /* the server's JetStream start */
    int rc = run((int)n, url);
    nats_Close();
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", dir);
    }
    return rc;
}

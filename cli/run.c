/* `jetbridge run`: everything in one process, with a local nats-server when NATS_URL
 * is empty. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"

static void run_usage(FILE *f)
{
    fprintf(f, "Usage: jetbridge run [--subscriptions DIR] [--data-dir DIR] [config flags]\n\n"
               "Runs the publisher and the dispatcher in one process. When NATS_URL is empty,\n"
               "starts a local `nats-server -js` with its store in DATA_DIR/nats and stops it\n"
               "on exit.\n\nExample:\n  jetbridge run --subscriptions examples/subscriptions\n");
}

int jb_cli_run(const jb_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        }
        fprintf(stderr, "jetbridge run: unknown argument \"%s\"\n", argv[i]);
        run_usage(stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    jb_localnats *ln = NULL;
    jb_cfg local = *cfg; /* shallow copy: only nats_url differs, owned by ln */
    if (cfg->nats_url[0] == '\0') {
        jb_err err = {{0}};
        ln = jb_localnats_start(cfg->data_dir, &err);
        if (ln == NULL) {
            fprintf(stderr, "jetbridge run: %s\n", err.msg);
            return 1;
        }
        local.nats_url = (char *)jb_localnats_url(ln);
    }
    printf("jetbridge run: NATS at %s\n", local.nats_url);
    printf("jetbridge run: the publisher and dispatcher are not built yet; Ctrl-C stops.\n");
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    jb_localnats_stop(ln);
    return 0;
}

int jb_cli_stats(const jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    fprintf(stderr, "jetbridge stats: not built yet\n");
    return 1;
}

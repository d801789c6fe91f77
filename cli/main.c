/* jetbridge: one binary, one subcommand per part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/jb_app.h"
#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/jb_disp.h"
#include "publisher/jb_pub.h"
#include "subscription/jb_sub.h"

typedef int (*cmd_fn)(const jb_cfg *cfg, int argc, char **argv);

static const struct command {
    const char *name;
    cmd_fn fn;
    const char *summary;
} commands[] = {
    {"run", jb_cli_run,
     "publisher and dispatcher in one process (starts a local nats-server when NATS_URL is empty)"},
    {"publisher", jb_pub_cmd, "HTTP ingress: validate, enrich and store events in JetStream"},
    {"dispatcher", jb_disp_cmd,
     "deliver stored events to subscription sinks with retry and dead letters"},
    {"sub", jb_sub_cmd, "apply, get, describe and delete Subscription manifests"},
    {"app", jb_app_cmd, "apply, get, describe and delete Applications; issue and revoke tokens"},
    {"stats", jb_cli_stats,
     "delivered, pending, failing and dead-lettered events per subscription"},
    {"dlq", jb_dlq_cmd, "list and replay dead-lettered events"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: jetbridge <command> [flags]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-11s %s\n", "help", "this text; `jetbridge <command> --help` for one command");
    fprintf(f, "\nConfiguration (flag, environment variable, default):\n");
    size_t n;
    const jb_cfg_key_info *keys = jb_cfg_keys(&n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-34s %-32s %s\n    %s (%s)\n", keys[i].flag, keys[i].env, keys[i].def,
                keys[i].help, keys[i].allowed);
    fprintf(f, "  %-34s YAML file with any of the keys above (env names)\n", "--config FILE");
    fprintf(f, "\nPrecedence: flags, then environment, then --config file, then defaults.\n"
               "Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.\n");
}

int main(int argc, char **argv, char **envp)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        /* `help --markdown` regenerates the configuration tables of README.md and
         * docs/configuration.md (a unit test fails when they drift). */
        if (argc > 2 && strcmp(argv[2], "--markdown") == 0)
            jb_cfg_print_markdown(stdout);
        else
            usage(stdout);
        return 0;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        fprintf(stderr, "jetbridge: unknown command \"%s\"\n\n", name);
        usage(stderr);
        return 2;
    }

    int *rest = calloc((size_t)argc, sizeof(int));
    char **sub_argv = calloc((size_t)argc + 1, sizeof(char *));
    if (rest == NULL || sub_argv == NULL) {
        fprintf(stderr, "jetbridge: out of memory\n");
        return 1;
    }
    int nrest = 0;
    jb_cfg *cfg = NULL;
    jb_err err = {{0}};
    if (jb_cfg_load(argc - 2, argv + 2, envp, &cfg, rest, &nrest, &err) != JB_OK) {
        fprintf(stderr, "jetbridge: %s\n", err.msg);
        free(rest);
        free(sub_argv);
        return 2;
    }
    int sub_argc = 0;
    sub_argv[sub_argc++] = argv[1];
    for (int i = 0; i < nrest; i++)
        sub_argv[sub_argc++] = argv[2 + rest[i]];

    jb_log_level level = JB_LOG_INFO;
    (void)jb_log_level_parse(cfg->log_level, &level);
    jb_log_setup(level, cfg->log_json);
    /* Before the first event_base: nats.c's threads touch the loops' events. */
    jb_event_threads_init();

    int rc = cmd->fn(cfg, sub_argc, sub_argv);
    jb_cfg_destroy(cfg);
    free(rest);
    free(sub_argv);
    return rc;
}

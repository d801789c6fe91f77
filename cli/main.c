/* jetbridge: one binary, one subcommand per part. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "application/jb_app.h"
#include "cli/jb_cli.h"
#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "dispatcher/jb_disp.h"
#include "kube/jb_kube.h"
#include "publisher/jb_pub.h"
#include "subscription/jb_sub.h"

#ifndef JB_VERSION
#define JB_VERSION "unknown"
#endif

typedef int (*cmd_fn)(const jb_cfg *cfg, int argc, char **argv);

/* How a command finds NATS. SERVER: NATS_URL must be set (exit 2 otherwise).
 * RUN: starts its own nats-server when NATS_URL is empty. CLIENT: a short-lived
 * command that uses the nats-server `run` started, else JB_CFG_CLI_NATS_URL
 * (jb_cfg_resolve_client), and prints no log lines unless something fails. */
typedef enum cmd_kind { CMD_RUN, CMD_SERVER, CMD_CLIENT } cmd_kind;

static const struct command {
    const char *name;
    cmd_fn fn;
    cmd_kind kind;
    bool ingress; /* serves INGRESS_PORT: claimed before the command starts anything */
    const char *summary;
} commands[] = {
    {"run", jb_cli_run, CMD_RUN, true,
     "publisher and dispatcher in one process (starts a local nats-server when NATS_URL is empty)"},
    {"publisher", jb_cli_publisher, CMD_SERVER, true,
     "HTTP ingress: validate, enrich and store events in JetStream"},
    {"dispatcher", jb_cli_dispatcher, CMD_SERVER, false,
     "deliver stored events to subscription sinks with retry and dead letters"},
    {"sub", jb_cli_sub, CMD_CLIENT, false,
     "apply, get, describe and delete Subscription manifests"},
    {"app", jb_cli_app, CMD_CLIENT, false,
     "apply, get, describe and delete Applications; issue and revoke tokens"},
    {"stats", jb_cli_stats, CMD_CLIENT, false,
     "delivered, pending, failing and dead-lettered events per subscription"},
    {"dlq", jb_cli_dlq, CMD_CLIENT, false, "list, replay and purge dead-lettered events"},
    {"controller", jb_cli_controller, CMD_SERVER, false,
     "Kubernetes mode: mirror Subscriptions and Applications, write status back"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: jetbridge <command> [flags]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-11s %s\n", "help", "this text; `jetbridge <command> --help` for one command");
    fprintf(f, "  %-11s %s\n", "--version", "the version of this binary");
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

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

/* Every usage mistake at the top level: one line, then where help is. */
static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "jetbridge: %s \"%s\"; see `jetbridge help`\n", what, arg);
    return 2;
}

static int help(int argc, char **argv)
{
    /* `help --markdown` regenerates the configuration tables of README.md and
     * docs/configuration.md (a unit test fails when they drift). */
    if (argc > 2 && strcmp(argv[2], "--markdown") == 0) {
        jb_cfg_print_markdown(stdout);
        return 0;
    }
    if (argc > 2) {
        /* `jetbridge help sub` is `jetbridge sub --help`. */
        const struct command *cmd = find_command(argv[2]);
        if (cmd == NULL)
            return bad_usage("unknown command", argv[2]);
        char *sub_argv[] = {argv[2], "--help", NULL};
        jb_cfg *defaults = jb_cfg_defaults();
        int hrc = defaults != NULL ? cmd->fn(defaults, 2, sub_argv) : 1;
        jb_cfg_destroy(defaults);
        return hrc;
    }
    usage(stdout);
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* Settles NATS_URL (and METRICS_ADDR for clients) by the command's kind; 0, or the
 * exit code after printing why. */
static int settle_nats(const struct command *cmd, jb_cfg *cfg)
{
    jb_err err = {{0}};
    if (cmd->kind == CMD_SERVER && cfg->nats_url[0] == '\0') {
        fprintf(stderr,
                "jetbridge: NATS_URL: not set; `jetbridge %s` needs a NATS server "
                "(--nats-url URL, or `jetbridge run`, which starts one)\n",
                cmd->name);
        return 2;
    }
    if (cmd->kind == CMD_CLIENT && jb_cfg_resolve_client(cfg, &err) != JB_OK) {
        fprintf(stderr, "jetbridge: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* JSON unless APP_LOG_FORMAT says otherwise; "auto" is text on a terminal. Client
 * commands print results, not log lines: warnings and errors only, unless a level
 * other than the default was asked for. */
static void setup_logging(const struct command *cmd, const jb_cfg *cfg)
{
    jb_log_level level = JB_LOG_INFO;
    (void)jb_log_level_parse(cfg->log_level, &level);
    if (cmd->kind == CMD_CLIENT && level == JB_LOG_INFO)
        level = JB_LOG_ERROR; /* closing a connection warns "disconnected" */
    bool json = cfg->log_json && !(cfg->log_format_auto && isatty(STDERR_FILENO));
    jb_log_setup(level, json);
}

int main(int argc, char **argv, char **envp)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return help(argc, argv);
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("jetbridge %s\n", JB_VERSION);
        return 0;
    }
    const struct command *cmd = find_command(name);
    if (cmd == NULL)
        return bad_usage(name[0] == '-' ? "unknown flag" : "unknown command", name);
    /* Help needs neither configuration nor NATS: `jetbridge sub apply --help` works
     * whatever the environment holds. */
    if (wants_help(argc - 1, argv + 1)) {
        /* Defaults, never NULL: a command that reads its configuration before
         * looking at --help still works. */
        jb_cfg *defaults = jb_cfg_defaults();
        int hrc = defaults != NULL ? cmd->fn(defaults, argc - 1, argv + 1) : 1;
        jb_cfg_destroy(defaults);
        return hrc;
    }

    int *rest = calloc((size_t)argc, sizeof(int));
    char **sub_argv = calloc((size_t)argc + 1, sizeof(char *));
    int rc = 1, nrest = 0;
    jb_cfg *cfg = NULL;
    jb_err err = {{0}};
    if (rest == NULL || sub_argv == NULL) {
        fprintf(stderr, "jetbridge: out of memory\n");
        goto out;
    }
    if (jb_cfg_load(argc - 2, argv + 2, envp, &cfg, rest, &nrest, &err) != JB_OK) {
        fprintf(stderr, "jetbridge: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    int sub_argc = 0;
    sub_argv[sub_argc++] = argv[1];
    for (int i = 0; i < nrest; i++)
        sub_argv[sub_argc++] = argv[2 + rest[i]];
    if ((rc = settle_nats(cmd, cfg)) != 0)
        goto out;
    setup_logging(cmd, cfg);
    /* Held until exit (the kernel drops the claim even after kill -9). */
    int claim = -1;
    if (cmd->ingress &&
        (claim = jb_cli_claim_ingress(cfg->ingress_addr, cfg->ingress_port, &err)) < 0) {
        fprintf(stderr, "jetbridge %s: %s\n", cmd->name, err.msg);
        rc = 2;
        goto out;
    }
    /* Before the first event_base: nats.c's threads touch the loops' events. */
    jb_event_threads_init();
    rc = cmd->fn(cfg, sub_argc, sub_argv);
    if (claim >= 0 && claim != INT32_MAX)
        close(claim);
out:
    jb_cfg_destroy(cfg);
    free(rest);
    free(sub_argv);
    return rc;
}

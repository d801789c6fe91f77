#include "dispatcher/jb_disp.h"

#include <stdio.h>

static int not_yet(const char *what)
{
    fprintf(stderr, "jetbridge %s: not built yet\n", what);
    return 1;
}

int jb_disp_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    return not_yet("dispatcher");
}

int jb_dlq_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    return not_yet("dlq");
}

int jb_run_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    return not_yet("run");
}

int jb_stats_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    return not_yet("stats");
}

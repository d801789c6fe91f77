#include "subscription/jb_sub.h"

#include <stdio.h>

int jb_sub_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg;
    (void)argc;
    (void)argv;
    fprintf(stderr, "jetbridge sub: not built yet\n");
    return 1;
}

#include "publisher/jb_pub.h"

#include <stdio.h>

int jb_pub_cmd(const struct jb_cfg *cfg, int argc, char **argv)
{
    (void)cfg;
    (void)argc;
    (void)argv;
    fprintf(stderr, "jetbridge publisher: not built yet\n");
    return 1;
}

/* publisher/: the Kyma-compatible HTTP ingress (DESIGN.md section 2). */
#ifndef JB_PUB_H
#define JB_PUB_H

struct jb_cfg;

/* `jetbridge publisher`: runs until SIGTERM/SIGINT. argv[0] is "publisher"; the
 * remaining arguments are those the configuration did not consume. Returns the
 * process exit code (0 ok, 1 runtime error, 2 usage error). */
int jb_pub_cmd(const struct jb_cfg *cfg, int argc, char **argv);

#endif

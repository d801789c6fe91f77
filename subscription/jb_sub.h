/* subscription/: Kyma Subscription manifests, validation, store and reconciler
 * (DESIGN.md section 3). */
#ifndef JB_SUB_H
#define JB_SUB_H

struct jb_cfg;

/* `jetbridge sub apply|get|describe|delete`. argv[0] is "sub". Returns the exit code. */
int jb_sub_cmd(const struct jb_cfg *cfg, int argc, char **argv);

#endif

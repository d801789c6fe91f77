/* dispatcher/: delivery to sinks with retry, backoff and dead letters (DESIGN.md
 * section 4). */
#ifndef JB_DISP_H
#define JB_DISP_H

struct jb_cfg;

/* `jetbridge dispatcher`: runs until SIGTERM/SIGINT. Returns the exit code. */
int jb_disp_cmd(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge dlq list|replay`. */
int jb_dlq_cmd(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge run`: publisher and dispatcher in one process (local nats-server when
 * NATS_URL is empty). */
int jb_run_cmd(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge stats [--watch]`. */
int jb_stats_cmd(const struct jb_cfg *cfg, int argc, char **argv);

#endif

/* cli/: commands that combine modules (run, stats) and the local nats-server child. */
#ifndef JB_CLI_H
#define JB_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/jb_status.h"

struct jb_cfg;

/* `jetbridge run`. */
int jb_cli_run(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge stats [--watch]`. */
int jb_cli_stats(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge sub apply|get|describe|delete` and `jetbridge app
 * apply|get|describe|delete|token`: argv[0] is "sub" or "app"; the exit code. */
int jb_cli_sub(const struct jb_cfg *cfg, int argc, char **argv);
int jb_cli_app(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge publisher`: a host (cli/host.c) around publisher/. */
int jb_cli_publisher(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge dlq list|replay|purge`. */
int jb_cli_dlq(const struct jb_cfg *cfg, int argc, char **argv);
/* `jetbridge dispatcher` and `jetbridge controller`: hosts (cli/host.c) around
 * dispatcher/ and kube/. */
int jb_cli_dispatcher(const struct jb_cfg *cfg, int argc, char **argv);
int jb_cli_controller(const struct jb_cfg *cfg, int argc, char **argv);

/* Takes DATA_DIR/lock (the directory must exist) so that a second `run` of the
 * same data directory stops with a line naming DATA_DIR before it starts anything.
 * Returns the fd that holds the lock until the process exits, or -1 and err. */
int jb_cli_lock_data_dir(const char *data_dir, jb_err *err);

/* Claims the ingress port for this process: fails (-1, err names INGRESS_PORT)
 * when another jetbridge holds its per-port lock or anything listens on
 * addr:port. Otherwise returns a value >= 0 to keep while the port is served (an
 * fd to close, or INT32_MAX when no lock file could be used). */
int jb_cli_claim_ingress(const char *addr, int port, jb_err *err);

/* Creates path and its parents (mode 0755); 0 or -1 with errno. */
int jb_cli_mkdir_p(const char *path);

/* A nats-server -js child with its store under data_dir/nats, listening on
 * 127.0.0.1 (port 4222 when free, else a free port). */
typedef struct jb_localnats jb_localnats;

/* Starts the child and waits (at most 15 s) until it accepts connections. The child
 * dies with us (PR_SET_PDEATHSIG). Returns NULL and fills err on failure. */
jb_localnats *jb_localnats_start(const char *data_dir, jb_err *err);
/* "nats://127.0.0.1:<port>"; valid until jb_localnats_stop. */
const char *jb_localnats_url(const jb_localnats *ln);
/* SIGTERM (lets JetStream flush its store), waits up to 10 s, then SIGKILL; frees. */
void jb_localnats_stop(jb_localnats *ln);

#endif

/*
 * Private helpers shared by the harness files (not part of jb_testenv.h).
 */
#ifndef JB_TH_INTERNAL_H
#define JB_TH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where a spawned child's standard streams go. out_path/err_path NULL: inherit. */
typedef struct jb_th_spawn {
    const char *exe;            /* absolute path */
    const char *const *argv;    /* full argv, argv[0] included, NULL-terminated */
    const char *const *env_add; /* "K=V" (override or add) or "K" (remove); may be NULL */
    const char *out_path;       /* stdout (created/truncated), or NULL */
    const char *err_path;       /* stderr (appended; may equal out_path), or NULL */
    const char *in_path;        /* stdin read from this file, or NULL: /dev/null */
} jb_th_spawn;

/* fork+exec with PR_SET_PDEATHSIG(SIGKILL) so a crashed test leaves no child
 * behind. Returns the pid, or -1 (reason on stderr). Everything the child needs is
 * prepared before fork, because the test may have threads. */
pid_t jb_th_spawn_child(const jb_th_spawn *sp);

/* Waits up to timeout_ms for pid to exit (timeout_ms < 0: forever). Returns true and
 * the raw waitpid status in *status when it exited. */
bool jb_th_wait_pid(pid_t pid, int timeout_ms, int *status);
/* SIGTERM, wait up to grace_ms, then SIGKILL and reap. Returns the raw status. */
int jb_th_kill_reap(pid_t pid, int grace_ms);
/* waitpid status -> exit code, or 128+signal. */
int jb_th_decode_status(int status);

/* True when something accepts TCP connections on 127.0.0.1:port. */
bool jb_th_port_open(int port);
/* Removes a directory tree (no system()). Missing is fine. */
void jb_th_rm_tree(const char *path);
/* Reads a whole file (malloc'd, NUL-terminated); NULL when unreadable. Reads at most
 * max bytes (the tail is dropped). */
char *jb_th_read_file(const char *path, size_t max, size_t *len);
/* Locates an executable: name with a '/' is used as is; else PATH, then the
 * fallbacks (NULL-terminated). Writes into out. */
bool jb_th_find_exe(const char *name, const char *const *fallbacks, char *out, size_t outsz);

#endif

/*
 * The real jetbridge binary (or another built program) as a child of the test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_testenv.h"
#include "th_internal.h"

#define TPROC_PORT_WAIT_MS  15000
#define TPROC_STOP_GRACE_MS 10000
#define TPROC_MAX_ARGS      256
#define TPROC_MAX_OUTPUT    (64u * 1024u * 1024u)

struct jb_tproc {
    pid_t pid;
    bool reaped;
    int status; /* raw waitpid status once reaped */
    char log[128];
};

/* Creates an empty temp file and writes its path into out. */
static bool temp_file(char *out, size_t outsz, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || strlen(tmp) > 64)
        tmp = "/tmp";
    snprintf(out, outsz, "%s/jb-%s-XXXXXX", tmp, tag);
    int fd = mkstemp(out);
    if (fd < 0) {
        perror("harness: mkstemp");
        return false;
    }
    close(fd);
    return true;
}

/* full = {exe, args..., NULL}; false when there are too many. */
static bool full_argv(const char *exe, const char *const *args, const char **full)
{
    size_t n = 0;
    full[n++] = exe;
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (n + 1 >= TPROC_MAX_ARGS)
            return false;
        full[n++] = args[i];
    }
    full[n] = NULL;
    return true;
}

static bool wait_listening(jb_tproc *p, int port)
{
    int64_t deadline = jb_now_monotonic_ns() + (int64_t)TPROC_PORT_WAIT_MS * 1000000;
    while (jb_now_monotonic_ns() < deadline) {
        if (jb_th_port_open(port))
            return true;
        if (jb_th_wait_pid(p->pid, 0, &p->status)) {
            p->reaped = true;
            fprintf(stderr, "harness: process exited (%d) before listening on %d\n",
                    jb_th_decode_status(p->status), port);
            return false;
        }
        jb_sleep_ms(20);
    }
    fprintf(stderr, "harness: nothing listens on %d after %d ms\n", port, TPROC_PORT_WAIT_MS);
    return false;
}

static void dump_log(jb_tproc *p)
{
    char *log = jb_tproc_log(p);
    if (log != NULL) {
        size_t len = strlen(log);
        fprintf(stderr, "harness: log of pid %d:\n%s\n", (int)p->pid,
                len > 8000 ? log + len - 8000 : log);
        free(log);
    }
}

jb_tproc *jb_tproc_start_exe(const char *exe, const char *const *argv, const char *const *env,
                             int wait_port)
{
    const char *full[TPROC_MAX_ARGS];
    jb_tproc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->pid = -1;
    if (!full_argv(exe, argv, full) || !temp_file(p->log, sizeof(p->log), "proc"))
        goto fail;
    jb_th_spawn sp = {
        .exe = exe, .argv = full, .env_add = env, .out_path = p->log, .err_path = p->log};
    p->pid = jb_th_spawn_child(&sp);
    if (p->pid < 0)
        goto fail;
    if (wait_port > 0 && !wait_listening(p, wait_port)) {
        dump_log(p);
        goto fail;
    }
    return p;
fail:
    jb_tproc_stop(p);
    return NULL;
}

jb_tproc *jb_tproc_start(const char *const *argv, const char *const *env, int wait_port)
{
    return jb_tproc_start_exe(JB_BINARY, argv, env, wait_port);
}

pid_t jb_tproc_pid(const jb_tproc *p)
{
    return p->pid;
}

void jb_tproc_signal(jb_tproc *p, int sig)
{
    if (p != NULL && p->pid > 0 && !p->reaped)
        kill(p->pid, sig);
}

int jb_tproc_wait(jb_tproc *p, int timeout_ms)
{
    if (!p->reaped) {
        if (p->pid <= 0 || !jb_th_wait_pid(p->pid, timeout_ms, &p->status))
            return -1;
        p->reaped = true;
    }
    return jb_th_decode_status(p->status);
}

char *jb_tproc_log(jb_tproc *p)
{
    return jb_th_read_file(p->log, TPROC_MAX_OUTPUT, NULL);
}

void jb_tproc_stop(jb_tproc *p)
{
    if (p == NULL)
        return;
    if (p->pid > 0 && !p->reaped) {
        p->status = jb_th_kill_reap(p->pid, TPROC_STOP_GRACE_MS);
        p->reaped = true;
    }
    /* JB_TEST_LOGS=1 shows every child's output, for debugging a suite. */
    const char *show = getenv("JB_TEST_LOGS");
    if (p->pid > 0 && show != NULL && strcmp(show, "1") == 0)
        dump_log(p);
    if (p->log[0] != '\0')
        unlink(p->log);
    free(p);
}

static char *read_and_remove(const char *path)
{
    char *s = jb_th_read_file(path, TPROC_MAX_OUTPUT, NULL);
    unlink(path);
    return s;
}

int jb_trun_capture(const char *const *argv, const char *const *env, char **out, char **err,
                    int timeout_ms)
{
    const char *full[TPROC_MAX_ARGS];
    char out_path[128] = "", err_path[128] = "";
    int code = -1, st = 0;
    if (!full_argv(JB_BINARY, argv, full) || !temp_file(out_path, sizeof(out_path), "out") ||
        (err != NULL && !temp_file(err_path, sizeof(err_path), "err")))
        goto out;
    jb_th_spawn sp = {.exe = JB_BINARY,
                      .argv = full,
                      .env_add = env,
                      .out_path = out_path,
                      .err_path = err != NULL ? err_path : NULL};
    pid_t pid = jb_th_spawn_child(&sp);
    if (pid < 0)
        goto out;
    if (!jb_th_wait_pid(pid, timeout_ms, &st)) {
        fprintf(stderr, "harness: %s %s did not finish in %d ms\n", JB_BINARY,
                argv != NULL && argv[0] != NULL ? argv[0] : "", timeout_ms);
        kill(pid, SIGKILL);
        jb_th_wait_pid(pid, -1, &st);
        goto out;
    }
    code = jb_th_decode_status(st);
    if (out != NULL)
        *out = read_and_remove(out_path);
    if (err != NULL)
        *err = read_and_remove(err_path);
out:
    if (out_path[0] != '\0')
        unlink(out_path);
    if (err_path[0] != '\0')
        unlink(err_path);
    return code;
}

int jb_trun(const char *const *argv, const char *const *env, char **out, int timeout_ms)
{
    return jb_trun_capture(argv, env, out, NULL, timeout_ms);
}

bool jb_built_program(const char *name, char *out, size_t outsz)
{
    const char *slash = strrchr(JB_BINARY, '/');
    int dir_len = slash != NULL ? (int)(slash - JB_BINARY) : 1;
    const char *dir = slash != NULL ? JB_BINARY : ".";
    if ((size_t)snprintf(out, outsz, "%.*s/%s", dir_len, dir, name) >= outsz)
        return false;
    return access(out, X_OK) == 0;
}

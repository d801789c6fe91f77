/*
 * Child processes for the harness: spawning with a parent-death signal, reaping,
 * and small file-system helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_testenv.h"
#include "th_internal.h"

extern char **environ;

/* Largest environment we build; the test's own environment plus the additions. */
#define TH_ENV_MAX 4096

static bool env_key_eq(const char *a, const char *b)
{
    size_t la = strcspn(a, "="), lb = strcspn(b, "=");
    return la == lb && strncmp(a, b, la) == 0;
}

/* Builds environ minus overridden/removed keys, plus the "K=V" additions. The
 * strings are borrowed, only the array is allocated. */
static char **build_env(const char *const *add)
{
    size_t n = 0, nadd = 0;
    while (environ[n] != NULL)
        n++;
    while (add != NULL && add[nadd] != NULL)
        nadd++;
    if (n + nadd >= TH_ENV_MAX)
        return NULL;
    char **env = calloc(n + nadd + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (size_t j = 0; j < nadd && !drop; j++)
            drop = env_key_eq(environ[i], add[j]);
        if (!drop)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < nadd; j++)
        if (strchr(add[j], '=') != NULL) /* "K" alone only removes K */
            env[k++] = (char *)add[j];
    env[k] = NULL;
    return env;
}

/* Runs in the child between fork and exec: only async-signal-safe calls. */
static void child_exec(const jb_th_spawn *sp, char **env, pid_t parent, int in_fd, int out_fd,
                       int err_fd)
{
    /* If the test process dies (crash, abort, ctest timeout), the child dies too. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    /* Undo signal state the test may have changed, so SIGTERM works in the child. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (in_fd >= 0 && dup2(in_fd, 0) < 0)
        _exit(127);
    if (out_fd >= 0 && dup2(out_fd, 1) < 0)
        _exit(127);
    if (err_fd >= 0 && dup2(err_fd, 2) < 0)
        _exit(127);
        /* The test's sockets (sinks, NATS connections) must not leak into the child. */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    execve(sp->exe, (char *const *)sp->argv, env);
    _exit(127);
}

pid_t jb_th_spawn_child(const jb_th_spawn *sp)
{
    pid_t pid = -1;
    int in_fd = -1, out_fd = -1, err_fd = -1;
    char **env = build_env(sp->env_add);
    if (env == NULL) {
        fprintf(stderr, "harness: environment too large\n");
        goto out;
    }
    in_fd = open(sp->in_path != NULL ? sp->in_path : "/dev/null", O_RDONLY | O_CLOEXEC);
    if (sp->out_path != NULL)
        out_fd = open(sp->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (sp->err_path != NULL) {
        if (sp->out_path != NULL && strcmp(sp->out_path, sp->err_path) == 0)
            err_fd = out_fd;
        else
            err_fd = open(sp->err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }
    if (in_fd < 0 || (sp->out_path != NULL && out_fd < 0) || (sp->err_path != NULL && err_fd < 0)) {
        fprintf(stderr, "harness: cannot open child streams: %s\n", strerror(errno));
        goto out;
    }
    fflush(NULL); /* buffered test output must not be written twice */
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0)
        child_exec(sp, env, parent, in_fd, out_fd, err_fd);
    if (pid < 0)
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
out:
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0 && err_fd != out_fd)
        close(err_fd);
    free(env);
    return pid;
}

void jb_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool jb_th_wait_pid(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = jb_now_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) {
            *status = st;
            return true;
        }
        if (r < 0 && errno != EINTR)
            return false;
        if (timeout_ms >= 0 && jb_now_monotonic_ns() >= deadline)
            return false;
        if (r == 0)
            jb_sleep_ms(10);
    }
}

int jb_th_kill_reap(pid_t pid, int grace_ms)
{
    int st = 0;
    kill(pid, SIGTERM);
    if (jb_th_wait_pid(pid, grace_ms, &st))
        return st;
    kill(pid, SIGKILL);
    if (jb_th_wait_pid(pid, -1, &st))
        return st;
    return 0;
}

int jb_th_decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0; /* keep going: remove as much as possible */
}

void jb_th_rm_tree(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return;
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

void jb_rm_tree(const char *path)
{
    jb_th_rm_tree(path);
}

char *jb_th_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        goto fail;
    while (n < max) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                goto fail;
            buf = nb;
            cap *= 2;
        }
        size_t want = cap - n < max - n ? cap - n : max - n;
        size_t got = fread(buf + n, 1, want, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

bool jb_th_find_exe(const char *name, const char *const *fallbacks, char *out, size_t outsz)
{
    if (strchr(name, '/') != NULL) {
        if (access(name, X_OK) != 0)
            return false;
        return (size_t)snprintf(out, outsz, "%s", name) < outsz;
    }
    const char *path = getenv("PATH");
    while (path != NULL && *path != '\0') {
        size_t seg = strcspn(path, ":");
        if (seg > 0 && (size_t)snprintf(out, outsz, "%.*s/%s", (int)seg, path, name) < outsz &&
            access(out, X_OK) == 0)
            return true;
        path += seg;
        if (*path == ':')
            path++;
    }
    for (size_t i = 0; fallbacks != NULL && fallbacks[i] != NULL; i++)
        if (access(fallbacks[i], X_OK) == 0)
            return (size_t)snprintf(out, outsz, "%s", fallbacks[i]) < outsz;
    return false;
}

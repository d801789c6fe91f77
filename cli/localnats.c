/* The local nats-server that `jetbridge run` starts when NATS_URL is empty. */
#include "cli/jb_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/jb_common.h"

struct jb_localnats {
    pid_t pid;
    int port;
    char url[64];
};

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* 4222 when nothing listens there and it can be bound; else any free port. */
static int pick_port(void)
{
    int want = 4222;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)want)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof(sa);
        int port = -1;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
            port = ntohs(sa.sin_port);
        close(fd);
        if (port > 0)
            return port;
        want = 0;
    }
    return -1;
}

static const char *find_nats_server(void)
{
    static const char *const candidates[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server",
                                             "/usr/local/bin/nats-server"};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return "nats-server"; /* execvp searches PATH */
}

int jb_cli_mkdir_p(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

jb_localnats *jb_localnats_start(const char *data_dir, jb_err *err)
{
    char store[4096], portstr[16];
    if (snprintf(store, sizeof(store), "%s/nats", data_dir) >= (int)sizeof(store)) {
        jb_err_set(err, JB_ERR_CONFIG, "DATA_DIR: path too long");
        return NULL;
    }
    if (jb_cli_mkdir_p(store) != 0) {
        jb_err_set(err, JB_ERR_IO, "cannot create %s: %s", store, strerror(errno));
        return NULL;
    }
    int port = pick_port();
    if (port < 0) {
        jb_err_set(err, JB_ERR_IO, "no free port for nats-server");
        return NULL;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *bin = find_nats_server();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        jb_err_set(err, JB_ERR_IO, "fork: %s", strerror(errno));
        return NULL;
    }
    if (pid == 0) {
        /* Its own process group: a Ctrl-C in the terminal reaches us, and we stop the
         * server only after the dispatcher drained. It must not outlive us either,
         * even after kill -9. */
        setpgid(0, 0);
        /* The host blocks SIGINT/SIGTERM while it starts (jb_host_signals_block); the
         * server must not inherit that mask, or the PDEATHSIG and our stop would wait. */
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        /* Its log goes to DATA_DIR/nats-server.log, not over ours. */
        char logpath[4200];
        snprintf(logpath, sizeof(logpath), "%s/nats-server.log", data_dir);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execlp(bin, bin, "-js", "-a", "127.0.0.1", "-p", portstr, "-sd", store, (char *)NULL);
        _exit(127);
    }
    jb_localnats *ln = calloc(1, sizeof(*ln));
    if (ln == NULL) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        jb_err_set(err, JB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ln->pid = pid;
    ln->port = port;
    snprintf(ln->url, sizeof(ln->url), "nats://127.0.0.1:%d", port);
    for (int i = 0; i < 300; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            free(ln);
            jb_err_set(err, JB_ERR_IO, "nats-server (%s) exited at start; is it installed?", bin);
            return NULL;
        }
        if (port_accepts(port)) {
            jb_log(JB_LOG_INFO, "run", "local nats-server started", "url", ln->url, "store", store,
                   NULL);
            return ln;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    jb_localnats_stop(ln);
    jb_err_set(err, JB_ERR_TIMEOUT, "nats-server did not accept connections within 15 s");
    return NULL;
}

const char *jb_localnats_url(const jb_localnats *ln)
{
    return ln->url;
}

void jb_localnats_stop(jb_localnats *ln)
{
    if (ln == NULL)
        return;
    kill(ln->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(ln->pid, NULL, WNOHANG) == ln->pid) {
            free(ln);
            return;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(ln->pid, SIGKILL);
    waitpid(ln->pid, NULL, 0);
    free(ln);
}

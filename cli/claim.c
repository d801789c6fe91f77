/* Claims that keep two jetbridges apart: the data directory of `run` and the
 * ingress port. An flock(2) is released by the kernel when the process dies, even
 * after kill -9, so a crash never leaves a stale claim behind. */
#include "cli/jb_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "common/jb_text.h"
#include "config/jb_cfg.h"

/* Opens path and takes an exclusive, non-blocking flock; writes our pid into it.
 * Returns the fd (close-on-exec, so children such as nats-server never inherit the
 * claim), -1 when another process holds it (*holder = its pid, or 0 if unknown),
 * -2 when the file cannot be opened at all. */
static int lock_file(const char *path, long *holder)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        int64_t pid = 0;
        *holder = n > 0 && jb_parse_int(buf, strcspn(buf, "\n"), 1, INT32_MAX, &pid) ? pid : 0;
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is only for the message another process prints; the lock holds. */
    }
    return fd;
}

int jb_cli_lock_data_dir(const char *data_dir, jb_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/lock", data_dir) >= sizeof(path)) {
        jb_err_set(err, JB_ERR_CONFIG, "DATA_DIR: path too long");
        return -1;
    }
    long holder = 0;
    int fd = lock_file(path, &holder);
    if (fd == -2)
        jb_err_set(err, JB_ERR_IO, "DATA_DIR: cannot open %s: %s", path, strerror(errno));
    else if (fd == -1 && holder > 0)
        jb_err_set(err, JB_ERR_CONFIG,
                   "DATA_DIR: %s is in use by another `jetbridge run` (pid %ld); stop it first "
                   "or choose another --data-dir",
                   data_dir, holder);
    else if (fd == -1)
        jb_err_set(err, JB_ERR_CONFIG, "DATA_DIR: %s is in use by another `jetbridge run`",
                   data_dir);
    return fd < 0 ? -1 : fd;
}

/* Binds addr:port without SO_REUSEPORT: the kernel refuses it while any socket
 * listens there, including a jetbridge whose sockets share the port with
 * SO_REUSEPORT (which would otherwise silently split the traffic). */
static bool port_free(const char *addr, int port, jb_err *err)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*s6);
    } else {
        jb_err_set(err, JB_ERR_CONFIG, "INGRESS_ADDR: invalid address \"%s\"", addr);
        return false;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        jb_err_set(err, JB_ERR_IO, "INGRESS_PORT: socket: %s", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bool ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
    int e = errno;
    close(fd);
    if (!ok)
        jb_err_set(err, JB_ERR_CONFIG, "INGRESS_PORT: cannot listen on %s port %d: %s%s", addr,
                   port, strerror(e),
                   e == EADDRINUSE ? " (another jetbridge or program serves it)" : "");
    return ok;
}

int jb_cli_claim_ingress(const char *addr, int port, jb_err *err)
{
    /* A lock per port in the runtime directory closes the window between the check
     * below and the real bind, when two jetbridges start at the same moment. */
    const char *dir = getenv("XDG_RUNTIME_DIR");
    char path[4096];
    if (dir == NULL || dir[0] != '/')
        dir = "/tmp";
    snprintf(path, sizeof(path), "%s/jetbridge-ingress-%d.lock", dir, port);
    long holder = 0;
    int fd = lock_file(path, &holder);
    if (fd == -1) {
        if (holder > 0)
            jb_err_set(err, JB_ERR_CONFIG,
                       "INGRESS_PORT: port %d is already served by another jetbridge (pid %ld)",
                       port, holder);
        else
            jb_err_set(err, JB_ERR_CONFIG,
                       "INGRESS_PORT: port %d is already served by another jetbridge", port);
        return -1;
    }
    /* -2 (the lock file is not ours to open): the bind check alone still holds. */
    if (!port_free(addr, port, err)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd >= 0 ? fd : INT32_MAX;
}

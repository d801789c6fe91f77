/* Raw HTTP exchanges of the ingress security suites (test_id_util.h). */
#include "test_id_util.h"

int id_connect(int port, int rcv_timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {rcv_timeout_ms / 1000, (rcv_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool id_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

bool id_read_all(int fd, char **out)
{
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    bool closed = false;
    for (;;) {
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r == 0) {
            closed = true;
            break;
        }
        if (r < 0)
            break;
        got += (size_t)r;
        if (got + 1 >= cap)
            break;
    }
    buf[got] = '\0';
    *out = buf;
    return closed;
}

int id_count_responses(const char *text)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        n++;
    return n;
}

int id_exchange(int port, const char *req, size_t len, char **all, bool *closed)
{
    int fd = id_connect(port, 20000);
    if (fd < 0)
        return -1;
    char *text = NULL;
    bool c = id_send(fd, req, len) && id_read_all(fd, &text);
    close(fd);
    int code = -1;
    if (text != NULL && strncmp(text, "HTTP/1.1 ", 9) == 0)
        code = (int)strtol(text + 9, NULL, 10);
    if (closed != NULL)
        *closed = c;
    if (all != NULL)
        *all = text;
    else
        free(text);
    return code;
}

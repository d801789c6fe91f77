/*
 * Loopback networking for tests: free ports, port probes and a minimal blocking
 * HTTP/1.1 client. The client is deliberately simple (one request per connection,
 * Connection: close) so that it depends on nothing under test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "jb_testenv.h"
#include "th_internal.h"

/* An answer larger than this is a bug in the server under test, not something to
 * buffer. */
#define HTTP_MAX_RESPONSE (64u * 1024u * 1024u)
#define HTTP_TIMEOUT_S    10

static int loopback_socket(int port, bool do_connect)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = do_connect ? connect(fd, (struct sockaddr *)&sa, sizeof(sa))
                        : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int jb_free_port(void)
{
    int fd = loopback_socket(0, false);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int port = -1;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

bool jb_th_port_open(int port)
{
    int fd = loopback_socket(port, true);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Case-insensitive search for "name:" at the start of a line in hdr[0..len);
 * returns the trimmed value and its length, or NULL. */
static const char *find_header(const char *hdr, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Parses a non-negative decimal or hex number from s[0..len). */
static bool parse_num(const char *s, size_t len, int base, size_t *out)
{
    size_t v = 0, i = 0;
    for (; i < len; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        if (v > (SIZE_MAX - (size_t)d) / (size_t)base)
            return false;
        v = v * (size_t)base + (size_t)d;
    }
    if (i == 0)
        return false;
    *out = v;
    return true;
}

/* Decodes a chunked body in place; returns the decoded length or -1. */
static long dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        const char *eol = memchr(b + in, '\n', len - in);
        size_t sz;
        if (eol == NULL || !parse_num(b + in, (size_t)(eol - (b + in)), 16, &sz))
            return -1;
        in = (size_t)(eol - b) + 1;
        if (sz == 0)
            return (long)out;
        if (sz > len - in)
            return -1;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz;
        if (in < len && b[in] == '\r')
            in++;
        if (in < len && b[in] == '\n')
            in++;
    }
}

static char *build_request(int port, const char *method, const char *path, const char *headers,
                           size_t body_len, size_t *out_len)
{
    const char *h = headers != NULL ? headers : "";
    size_t hl = strlen(h), dummy;
    bool has_cl = find_header(h, hl, "content-length", &dummy) != NULL;
    bool has_host = find_header(h, hl, "host", &dummy) != NULL;
    bool want_cl =
        !has_cl && (body_len > 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0));
    size_t cap = strlen(method) + strlen(path) + hl + 160;
    char *req = malloc(cap);
    if (req == NULL)
        return NULL;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\n", method, path);
    if (!has_host)
        n += snprintf(req + n, cap - (size_t)n, "Host: 127.0.0.1:%d\r\n", port);
    n += snprintf(req + n, cap - (size_t)n, "Connection: close\r\n");
    if (want_cl)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(req + n, cap - (size_t)n, "%s\r\n", h);
    *out_len = (size_t)n;
    return req;
}

static bool send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* True when buf[0..n) holds a complete answer by its Content-Length (or the head of
 * a HEAD answer). *hdr_end caches where the head ends (0: not found yet). */
static bool response_complete(const char *buf, size_t n, bool head, size_t *hdr_end)
{
    if (*hdr_end == 0) {
        const char *eoh = strstr(buf, "\r\n\r\n");
        if (eoh == NULL)
            return false;
        *hdr_end = (size_t)(eoh - buf) + 4;
    }
    if (head)
        return true;
    size_t vlen, cl;
    const char *v = find_header(buf, *hdr_end, "content-length", &vlen);
    return v != NULL && parse_num(v, vlen, 10, &cl) && n - *hdr_end >= cl;
}

/* Reads until the server closes, the answer is complete (Content-Length), the cap
 * or the timeout. Returns the bytes read (malloc'd, NUL-terminated) or NULL. */
static char *recv_response(int fd, bool head, size_t *out_len)
{
    size_t cap = 8192, n = 0, hdr_end = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = cap < HTTP_MAX_RESPONSE ? realloc(buf, cap * 2 + 1) : NULL;
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) /* closed, timeout or reset: what we have may still be a full answer */
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (response_complete(buf, n, head, &hdr_end))
            break;
    }
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

/* Splits raw into status, headers and body; fills the out-params on success. */
static int parse_response(char *raw, size_t n, bool head, char **resp, size_t *resp_len,
                          char **resp_headers)
{
    if (n < 12 || strncmp(raw, "HTTP/1.", 7) != 0)
        return -1;
    size_t code;
    if (!parse_num(raw + 9, 3, 10, &code) || code < 100 || code > 999)
        return -1;
    char *eoh = strstr(raw, "\r\n\r\n");
    if (eoh == NULL)
        return -1;
    size_t hlen = (size_t)(eoh - raw) + 2, vlen;
    char *body = eoh + 4;
    size_t blen = head ? 0 : n - (size_t)(body - raw);
    const char *v = find_header(raw, hlen, "transfer-encoding", &vlen);
    if (!head && v != NULL && vlen == 7 && strncasecmp(v, "chunked", 7) == 0) {
        long d = dechunk(body, blen);
        if (d < 0)
            return -1;
        blen = (size_t)d;
    } else if (!head && (v = find_header(raw, hlen, "content-length", &vlen)) != NULL) {
        size_t cl;
        if (!parse_num(v, vlen, 10, &cl) || cl > blen)
            return -1; /* short answer: the server closed early */
        blen = cl;
    }
    char *b = malloc(blen + 1), *h = resp_headers ? strndup(raw, hlen) : NULL;
    if (b == NULL || (resp_headers != NULL && h == NULL)) {
        free(b);
        free(h);
        return -1;
    }
    memcpy(b, body, blen);
    b[blen] = '\0';
    if (resp != NULL)
        *resp = b;
    else
        free(b);
    if (resp_len != NULL)
        *resp_len = blen;
    if (resp_headers != NULL)
        *resp_headers = h;
    return (int)code;
}

int jb_http(int port, const char *method, const char *path, const char *headers, const void *body,
            size_t body_len, char **resp, size_t *resp_len, char **resp_headers)
{
    int code = -1;
    char *req = NULL, *raw = NULL;
    size_t req_len = 0, raw_len = 0;
    bool head = strcmp(method, "HEAD") == 0;
    int fd = loopback_socket(port, true);
    if (fd < 0)
        goto out;
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_S, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    req = build_request(port, method, path, headers, body_len, &req_len);
    if (req == NULL)
        goto out;
    /* A server may answer early (413) and close while the body is still being sent:
     * read its answer anyway. */
    if (send_all(fd, req, req_len) && body_len > 0)
        send_all(fd, body, body_len);
    raw = recv_response(fd, head, &raw_len);
    if (raw != NULL)
        code = parse_response(raw, raw_len, head, resp, resp_len, resp_headers);
out:
    if (fd >= 0)
        close(fd);
    free(req);
    free(raw);
    return code;
}

int jb_http_raw(int port, const void *request, size_t len, char **resp, size_t *resp_len,
                char **resp_headers)
{
    int code = -1;
    char *raw = NULL;
    size_t raw_len = 0;
    int fd = loopback_socket(port, true);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_S, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    send_all(fd, request, len); /* an early answer is still read below */
    shutdown(fd, SHUT_WR);      /* no more request bytes: a server waiting for them sees EOF */
    raw = recv_response(fd, false, &raw_len);
    if (raw != NULL)
        code = parse_response(raw, raw_len, false, resp, resp_len, resp_headers);
    close(fd);
    free(raw);
    return code;
}

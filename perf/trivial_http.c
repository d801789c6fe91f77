/*
 * Baseline (a) of perf/bench_publisher.sh: the least an HTTP server on libevent
 * can do per request. N threads (argv[2], default 2), each with its own loop and
 * evhttp on a shared SO_REUSEPORT port (argv[1]), read the body and answer 204.
 * Same structure as the publisher's HTTP layer, without any event work. With a
 * certificate and key (argv[3], argv[4]) it serves HTTPS the way the publisher
 * does (OpenSSL bufferevents, TLS 1.2+): the HTTPS ceiling.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    volatile const unsigned char *b = len ? evbuffer_pullup(in, -1) : NULL;
    (void)b;
    evhttp_send_reply(req, 204, "No Content", NULL);
}

static SSL_CTX *tls_ctx; /* NULL: plain HTTP */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    (void)arg;
    SSL *ssl = SSL_new(tls_ctx);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

static void *loop_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_max_body_size(http, 1 << 20);
    evhttp_set_gencb(http, on_request, NULL);
    if (tls_ctx != NULL)
        evhttp_set_bevcb(http, tls_bev, NULL);
    if (evhttp_accept_socket(http, fd) != 0) {
        fprintf(stderr, "accept socket failed\n");
        exit(1);
    }
    event_base_dispatch(base);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: trivial_http PORT [THREADS [CERT KEY]]\n");
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2;
    if (argc > 4) {
        tls_ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(tls_ctx, argv[3]) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, argv[4], SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "cannot load %s / %s\n", argv[3], argv[4]);
            return 1;
        }
    }
    pthread_t t[64];
    for (int i = 0; i < n && i < 64; i++)
        pthread_create(&t[i], NULL, loop_main, (void *)(intptr_t)listen_on(port));
    for (int i = 0; i < n && i < 64; i++)
        pthread_join(t[i], NULL);
    return 0;
}

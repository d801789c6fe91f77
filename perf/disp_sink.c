/* Benchmark sink: answers every POST with 204 at once and counts them. GET /stats
 * answers "<count> <first_ns> <last_ns>" (monotonic clock of the first and last
 * POST); GET /reset starts counting again. So a benchmark measures delivery rate at the receiving
 * end. Usage: disp_sink PORT */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stats {
    uint64_t count;
    int64_t first_ns, last_ns;
} stats;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    stats *s = arg;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
        strcmp(evhttp_request_get_uri(req), "/reset") == 0) {
        s->count = 0;
        s->first_ns = s->last_ns = 0;
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "%llu %lld %lld\n", (unsigned long long)s->count,
                            (long long)s->first_ns, (long long)s->last_ns);
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        return;
    }
    int64_t t = now_ns();
    if (s->count == 0)
        s->first_ns = t;
    s->last_ns = t;
    s->count++;
    evhttp_send_reply(req, 204, "No Content", NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: disp_sink PORT\n");
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    stats s = {0, 0, 0};
    evhttp_set_max_body_size(http, 1 << 20);
    evhttp_set_max_headers_size(http, 64 << 10);
    evhttp_set_timeout(http, 60);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(http, on_request, &s);
    if (evhttp_bind_socket(http, "127.0.0.1", (uint16_t)port) != 0) {
        fprintf(stderr, "disp_sink: cannot bind 127.0.0.1:%d\n", port);
        return 1;
    }
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}

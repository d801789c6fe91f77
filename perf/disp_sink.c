/* Benchmark sink: answers every POST with 204 at once and counts them. GET /stats
 * answers "<count> <first_ns> <last_ns>" (monotonic clock of the first and last
 * POST); GET /reset starts counting again; GET /wait?n=N answers like /stats once N POSTs
 * were counted (one waiter at a time: a benchmark waits with one request instead of
 * starting a curl process every few milliseconds, which cost it half a core). So a
 * benchmark measures delivery rate at the receiving end. Usage: disp_sink PORT [DELAY_MS]:
 * with DELAY_MS, every POST is answered that long after it arrived (a slow sink;
 * counted on arrival). */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stats {
    struct event_base *base;
    struct timeval delay; /* before a POST's answer; 0: at once */
    uint64_t count;
    int64_t first_ns, last_ns;
    struct evhttp_request *waiter; /* GET /wait?n=N until count >= wait_n */
    uint64_t wait_n;
} stats;

/* The waiter's client went away (its curl gave up): forget the request. */
static void on_waiter_closed(struct evhttp_connection *conn, void *arg)
{
    stats *s = arg;
    if (s->waiter != NULL && evhttp_request_get_connection(s->waiter) == conn)
        s->waiter = NULL;
}

static void send_stats(struct evhttp_request *req, const stats *s)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%llu %lld %lld\n", (unsigned long long)s->count, (long long)s->first_ns,
                        (long long)s->last_ns);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct later {
    struct evhttp_request *req;
    struct event *ev;
} later;

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    later *l = arg;
    evhttp_send_reply(l->req, 204, "No Content", NULL);
    event_free(l->ev);
    free(l);
}

/* Answers a POST now, or after the sink's delay. */
static void answer_post(stats *s, struct evhttp_request *req)
{
    later *l = NULL;
    if (s->delay.tv_sec != 0 || s->delay.tv_usec != 0)
        l = malloc(sizeof(*l));
    if (l != NULL && (l->ev = evtimer_new(s->base, on_later, l)) != NULL) {
        l->req = req;
        evtimer_add(l->ev, &s->delay);
        return;
    }
    free(l);
    evhttp_send_reply(req, 204, "No Content", NULL);
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
    const char *uri = evhttp_request_get_uri(req);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET && strncmp(uri, "/wait?n=", 8) == 0) {
        if (s->waiter != NULL) {
            /* An earlier waiter (its client may have given up): answered now. */
            struct evhttp_request *w = s->waiter;
            s->waiter = NULL;
            evhttp_connection_set_closecb(evhttp_request_get_connection(w), NULL, NULL);
            send_stats(w, s);
        }
        s->wait_n = strtoull(uri + 8, NULL, 10);
        if (s->count < s->wait_n) {
            s->waiter = req; /* answered by the POST that reaches wait_n */
            evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_waiter_closed, s);
            return;
        }
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        send_stats(req, s);
        return;
    }
    int64_t t = now_ns();
    if (s->count == 0)
        s->first_ns = t;
    s->last_ns = t;
    s->count++;
    answer_post(s, req);
    if (s->waiter != NULL && s->count >= s->wait_n) {
        struct evhttp_request *w = s->waiter;
        s->waiter = NULL;
        evhttp_connection_set_closecb(evhttp_request_get_connection(w), NULL, NULL);
        send_stats(w, s);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: disp_sink PORT [DELAY_MS]\n");
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    long delay_ms = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    stats s = {.base = base};
    if (delay_ms > 0)
        s.delay = (struct timeval){delay_ms / 1000, (delay_ms % 1000) * 1000};
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

/* End-to-end latency: posts CloudEvents to the publisher at a fixed rate and
 * receives them on its own sink (the subscription's), recording for each the time
 * from just before the POST to its arrival at the sink (both on this machine's
 * monotonic clock; the send time travels in ce-id). Prints
 * "e2e RATE SENT RECEIVED p50_ms p90_ms p99_ms max_ms publish_errors warm_p99_ms warm_n
 * cpu_s": warm_p99_ms and warm_n are the p99 of the events sent after the first second
 * (E2E_WARM_MS, 1000) and how many those were, i.e. without the start from idle (new
 * sink connections, an idle consumer's first requests); cpu_s is this program's own CPU
 * time (sender and sink), a share of the machine the measured processes did not have.
 *
 * With a nats:// URL instead of the publisher's, the dispatcher alone: events are
 * stored straight into the stream with plain nats.c (asynchronous JetStream
 * publishes, as the publisher stores them), timed from just before the publish;
 * no publisher process is involved. Then the line starts with "lat".
 *
 * With E2E_WINDOW_MS=W (> 0) it also prints, to stderr, one line per W ms of the run
 * (by send time): events sent in it, their p50/p99/max latency, and by arrival time
 * the deliveries and the new connections the sink saw in it (a peer port not seen
 * before: the sender's connections to its sink), to show how the run ramps up.
 *
 * Usage: disp_e2e PUBLISH_URL|NATS_URL SINK_PORT RATE SECONDS */
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jb_common.h"
#include "lat_stats.h"
#include "proc_cpu.h"
#include "proto/jb_ce.h"

/* The subject disp_load apply subscribes the bench consumer to. */
#define SUBJECT "kyma.myapp.order.created.v1"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct sink {
    pthread_mutex_t mu;
    int64_t *lat;
    size_t n, cap;
    struct event_base *base;
    /* Each event's send time (lat[i] is arrival minus it); E2E_WINDOW_MS only: its
     * arrival time, and each new connection's first arrival. */
    int64_t *sent, *arr;
    int64_t *conn_at;
    size_t nconn;
    unsigned char *port_seen; /* 65,536 bits */
} sink;

#define CONN_MAX 65536

static void on_request(struct evhttp_request *req, void *arg)
{
    sink *s = arg;
    int64_t t = now_ns();
    const char *id = evhttp_find_header(evhttp_request_get_input_headers(req), "ce-id");
    if (id != NULL && id[0] == 't') {
        int64_t sent = strtoll(id + 1, NULL, 10);
        pthread_mutex_lock(&s->mu);
        if (s->n < s->cap) {
            if (s->sent != NULL)
                s->sent[s->n] = sent;
            if (s->arr != NULL)
                s->arr[s->n] = t;
            s->lat[s->n++] = t - sent;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (s->port_seen != NULL) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
        if (!(s->port_seen[port / 8] & (1u << (port % 8)))) {
            s->port_seen[port / 8] |= (unsigned char)(1u << (port % 8));
            if (s->nconn < CONN_MAX)
                s->conn_at[s->nconn++] = t;
        }
    }
    evhttp_send_reply(req, 204, "No Content", NULL);
}

static void *sink_main(void *arg)
{
    sink *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p, (void)u;
    return sz * n;
}

static void post(CURLM *m, const char *url)
{
    CURL *e = curl_easy_init();
    char id[64];
    snprintf(id, sizeof(id), "ce-id: t%lld", (long long)now_ns());
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "ce-specversion: 1.0");
    h = curl_slist_append(h, id);
    h = curl_slist_append(h, "ce-source: myapp");
    h = curl_slist_append(h, "ce-type: order.created.v1");
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"order\":42}");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_multi_add_handle(m, e);
}

static long reap(CURLM *m, long *errors)
{
    long done = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        long code = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (msg->data.result != CURLE_OK || code / 100 != 2)
            (*errors)++;
        struct curl_slist *h = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        curl_multi_remove_handle(m, msg->easy_handle);
        curl_easy_cleanup(msg->easy_handle);
        curl_slist_free_all(h);
        done++;
    }
    return done;
}

/* One event as the publisher stores it (binary mode, ce- headers), with reply: where
 * JetStream sends its ack. */
static natsStatus publish(natsConnection *nc, const char *reply)
{
    char id[64];
    snprintf(id, sizeof(id), "t%lld", (long long)now_ns());
    jb_ce *ce = jb_ce_create();
    if (ce == NULL)
        return NATS_NO_MEMORY;
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", id);
    jb_ce_set_str(ce, "source", "myapp");
    jb_ce_set_str(ce, "type", SUBJECT);
    jb_ce_set_str(ce, "originaltype", "order.created.v1");
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    const char *data = "{\"order\":42,\"customer\":\"c-1\"}";
    jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
    natsMsg *m = NULL;
    natsStatus s = NATS_ERR;
    if (jb_ce_to_nats_reply(ce, SUBJECT, reply, id, &m) == JB_OK)
        s = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    jb_ce_destroy(ce);
    return s;
}

/* Takes the acks that arrived (no wait): counts them, and the negative ones. */
static void take_acks(natsSubscription *sub, long *acked, long *errors)
{
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 0) == NATS_OK) {
        const char *d = natsMsg_GetData(m);
        if (d == NULL || strstr(d, "\"seq\"") == NULL || strstr(d, "\"error\"") != NULL)
            (*errors)++;
        (*acked)++;
        natsMsg_Destroy(m);
    }
}

/* A sleep of the sender is never shorter than this: above 2,000 events/s the events
 * due meanwhile leave together (at 10,000/s, 5 every 0.5 ms, each timed from its own
 * publish). A wake-up per event cost this 2-core VM about 33 us of CPU each (10,000
 * wake-ups/s: a third of a core, taken from the processes being measured). */
#define PACE_NS 500000LL

/* The dispatcher alone: publishes at rate for total events, sleeping (absolute,
 * never spinning, at least PACE_NS) until the next one is due. Each publish asks
 * for JetStream's ack (as the publisher does) on a synchronous inbox that this
 * thread drains between publishes, instead of js_PublishMsgAsync's ack thread.
 * Returns the store errors (negative or missing acks). */
static long run_nats(const char *url, long rate, long total, long *sent)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsInbox *inbox = NULL;
    /* SendAsap: each publish is written at once. nats.c's flusher thread would wait
     * up to 1 ms before writing it, and that wait would count as the dispatcher's. */
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    if (st == NATS_OK)
        st = natsOptions_SetURL(o, url);
    if (st == NATS_OK)
        st = natsOptions_SetSendAsap(o, true);
    if (st == NATS_OK)
        st = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    char wild[96] = "";
    if (st == NATS_OK)
        st = natsInbox_Create(&inbox);
    if (st == NATS_OK) {
        snprintf(wild, sizeof(wild), "%s.*", inbox);
        st = natsConnection_SubscribeSync(&sub, nc, wild);
    }
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (st != NATS_OK) {
        fprintf(stderr, "disp_e2e: cannot connect to %s\n", url);
        natsSubscription_Destroy(sub);
        natsInbox_Destroy(inbox);
        natsConnection_Destroy(nc);
        return total;
    }
    long errors = 0, acked = 0, failed = 0;
    int64_t start = now_ns(), gap = 1000000000LL / rate;
    while (*sent < total) {
        int64_t now = now_ns();
        while (*sent < total && start + *sent * gap <= now) {
            char reply[128];
            snprintf(reply, sizeof(reply), "%s.%ld", inbox, *sent);
            if (publish(nc, reply) != NATS_OK)
                failed++;
            (*sent)++;
        }
        take_acks(sub, &acked, &errors);
        int64_t due = start + *sent * gap;
        if (due < now + PACE_NS)
            due = now + PACE_NS;
        struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    /* The last acks: at most 10 s. An event without one counts as not stored. */
    for (int64_t end = now_ns() + 10000000000LL; acked < *sent - failed && now_ns() < end;) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        take_acks(sub, &acked, &errors);
    }
    errors += failed + (*sent - failed - acked);
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    natsConnection_Destroy(nc);
    return errors;
}

/* Through the publisher: curl multi, at most 256 POSTs open. */
static long run_http(const char *url, long rate, long total, long *sent_out)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    long sent = 0, done = 0, errors = 0;
    int64_t start = now_ns(), gap = 1000000000LL / rate;
    while (sent < total) {
        int64_t due = start + sent * gap, now = now_ns();
        if (now >= due && sent - done < 256) {
            post(m, url);
            sent++;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        done += reap(m, &errors);
        now = now_ns();
        due = start + sent * gap;
        /* Sleep until the next send is due, rounded up: rounding down spun the loop
         * whenever less than 1 ms remained, taking a core from the processes being
         * measured and inflating their latency. With the window full, wait for
         * curl activity instead (it wakes the poll as soon as an answer arrives). */
        int wait_ms;
        if (sent - done >= 256)
            wait_ms = 100;
        else
            wait_ms = due > now ? (int)((due - now + 999999) / 1000000) : 0;
        if (wait_ms > 0)
            curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
    for (int i = 0; i < 1000 && done < sent; i++) {
        int running = 0;
        curl_multi_perform(m, &running);
        done += reap(m, &errors);
        curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    curl_multi_cleanup(m);
    *sent_out = sent;
    return errors;
}

/* E2E_WINDOW_MS: one line per window of w_ns from t0 (by send time: the events sent
 * in it and their latency; by arrival time: deliveries and new connections). */
static void print_windows(const sink *s, int64_t t0, int64_t w_ns)
{
    int64_t end = t0;
    for (size_t i = 0; i < s->n; i++)
        if (s->arr[i] > end)
            end = s->arr[i];
    size_t nw = (size_t)((end - t0) / w_ns) + 1;
    int64_t *buf = malloc(s->n * sizeof(*buf) + 1);
    if (buf == NULL)
        return;
    fprintf(stderr, "window_ms sent p50_ms p99_ms max_ms | arrived new_conns\n");
    for (size_t w = 0; w < nw; w++) {
        int64_t lo = t0 + (int64_t)w * w_ns, hi = lo + w_ns;
        size_t k = 0, arrived = 0, conns = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (s->sent[i] >= lo && s->sent[i] < hi)
                buf[k++] = s->lat[i];
            if (s->arr[i] >= lo && s->arr[i] < hi)
                arrived++;
        }
        for (size_t i = 0; i < s->nconn; i++)
            if (s->conn_at[i] >= lo && s->conn_at[i] < hi)
                conns++;
        qsort(buf, k, sizeof(*buf), lat_cmp);
        double p50 = lat_pct_ms(buf, k, 50), p99 = lat_pct_ms(buf, k, 99),
               mx = lat_pct_ms(buf, k, 100);
        fprintf(stderr, "%6lld %5zu %7.2f %7.2f %7.2f | %5zu %4zu\n",
                (long long)((int64_t)w * w_ns / 1000000), k, p50, p99, mx, arrived, conns);
    }
    fprintf(stderr, "connections seen by the sink: %zu\n", s->nconn);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: disp_e2e PUBLISH_URL|NATS_URL SINK_PORT RATE SECONDS\n");
        return 2;
    }
    const char *url = argv[1];
    int port = (int)strtol(argv[2], NULL, 10);
    long rate = strtol(argv[3], NULL, 10), secs = strtol(argv[4], NULL, 10);
    long total = rate * secs;
    evthread_use_pthreads(); /* loopbreak comes from the main thread */
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER,
              .lat = calloc((size_t)total, sizeof(int64_t)),
              .cap = (size_t)total,
              .base = event_base_new()};
    struct evhttp *http = evhttp_new(s.base);
    evhttp_set_gencb(http, on_request, &s);
    if (evhttp_bind_socket(http, "127.0.0.1", (uint16_t)port) != 0) {
        fprintf(stderr, "disp_e2e: cannot bind %d\n", port);
        return 1;
    }
    const char *wenv = getenv("E2E_WINDOW_MS");
    long window_ms = wenv != NULL ? strtol(wenv, NULL, 10) : 0;
    s.sent = calloc((size_t)total, sizeof(int64_t));
    if (window_ms > 0) {
        s.arr = calloc((size_t)total, sizeof(int64_t));
        s.conn_at = calloc(CONN_MAX, sizeof(int64_t));
        s.port_seen = calloc(65536 / 8, 1);
        if (s.sent == NULL || s.arr == NULL || s.conn_at == NULL || s.port_seen == NULL) {
            free(s.arr);
            free(s.conn_at);
            free(s.port_seen);
            s.arr = s.conn_at = NULL;
            s.port_seen = NULL;
            window_ms = 0;
        }
    }
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    int64_t t0 = now_ns();

    bool direct = strncmp(url, "nats://", 7) == 0;
    long sent = 0;
    long errors = direct ? run_nats(url, rate, total, &sent) : run_http(url, rate, total, &sent);
    /* Wait (at most 10 s) for the last deliveries. */
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&s.mu);
        size_t n = s.n;
        pthread_mutex_unlock(&s.mu);
        if ((long)n >= sent - errors)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    event_base_loopbreak(s.base);
    pthread_join(t, NULL);
    if (window_ms > 0)
        print_windows(&s, t0, window_ms * 1000000LL);
    size_t warm_n = 0;
    /* The warm p99 first: it needs lat in arrival order, beside sent. */
    double warm_p99 = lat_p99_from(s.lat, s.sent, s.n, lat_warm_from(t0), &warm_n);
    qsort(s.lat, s.n, sizeof(int64_t), lat_cmp);
    double p50 = lat_pct_ms(s.lat, s.n, 50), p90 = lat_pct_ms(s.lat, s.n, 90),
           p99 = lat_pct_ms(s.lat, s.n, 99), max = lat_pct_ms(s.lat, s.n, 100);
    printf("%s %ld %ld %zu %.2f %.2f %.2f %.2f %ld %.2f %zu %.3f\n", direct ? "lat" : "e2e", rate,
           sent, s.n, p50, p90, p99, max, errors, warm_p99, warm_n, self_cpu_s());
    evhttp_free(http);
    event_base_free(s.base);
    free(s.lat);
    free(s.sent);
    free(s.arr);
    free(s.conn_at);
    free(s.port_seen);
    return s.n == (size_t)sent && errors == 0 ? 0 : 1;
}

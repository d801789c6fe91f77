/*
 * HTTPS load for perf/bench_publisher.sh where wrk cannot go: wrk presents no
 * client certificate, so the mTLS run (and, for a like-for-like comparison, the
 * TLS run it is compared with) use this tool instead. libcurl multi with C
 * keep-alive connections, each one request in flight at a time as wrk does, the
 * same binary-mode 1 KiB event as the wrk script (a fresh ce-id per request, so
 * every event is stored), for SECONDS.
 *
 * Usage: tls_load URL SECONDS C SIZE CA [CERT KEY]
 *   CA verifies the server; CERT and KEY are the client certificate (mTLS).
 *   BENCH_AUTH in the environment, when set, is sent as the Authorization header.
 * Prints one line:
 *   events_per_s=<n> p50_ms=<x> p99_ms=<y> non2xx=<n> errors=<n> requests=<n>
 */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES (4u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

typedef struct opts {
    const char *url, *ca, *cert, *key, *auth;
    char *body;
    size_t size;
    long tag;
} opts;

/* One connection's worth of requests: the easy handle keeps its connection in
 * the multi handle's cache between requests (keep-alive). */
typedef struct slot {
    CURL *e;
    struct curl_slist *h;
    double t0;
} slot;

static void start(CURLM *m, slot *sl, const opts *o, long i)
{
    char id[64], auth[9000];
    snprintf(id, sizeof(id), "ce-id: %ld-%ld", i, o->tag);
    curl_slist_free_all(sl->h);
    sl->h = curl_slist_append(NULL, "ce-specversion: 1.0");
    sl->h = curl_slist_append(sl->h, id);
    sl->h = curl_slist_append(sl->h, "ce-source: bench");
    sl->h = curl_slist_append(sl->h, "ce-type: order.created.v1");
    sl->h = curl_slist_append(sl->h, "Content-Type: text/plain");
    sl->h = curl_slist_append(sl->h, "Expect:");
    if (o->auth != NULL && o->auth[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: %s", o->auth);
        sl->h = curl_slist_append(sl->h, auth);
    }
    if (sl->e == NULL) {
        sl->e = curl_easy_init();
        curl_easy_setopt(sl->e, CURLOPT_URL, o->url);
        curl_easy_setopt(sl->e, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(sl->e, CURLOPT_POSTFIELDSIZE, (long)o->size);
        curl_easy_setopt(sl->e, CURLOPT_PRIVATE, sl);
        curl_easy_setopt(sl->e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(sl->e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sl->e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(sl->e, CURLOPT_CAINFO, o->ca);
        curl_easy_setopt(sl->e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (o->cert != NULL) {
            curl_easy_setopt(sl->e, CURLOPT_SSLCERT, o->cert);
            curl_easy_setopt(sl->e, CURLOPT_SSLKEY, o->key);
        }
    }
    curl_easy_setopt(sl->e, CURLOPT_HTTPHEADER, sl->h);
    sl->t0 = now_s();
    curl_multi_add_handle(m, sl->e);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 8) {
        fprintf(stderr, "usage: tls_load URL SECONDS C SIZE CA [CERT KEY]\n");
        return 2;
    }
    opts o = {.url = argv[1], .ca = argv[5], .auth = getenv("BENCH_AUTH"), .tag = (long)time(NULL)};
    double secs = strtod(argv[2], NULL);
    long c = strtol(argv[3], NULL, 10);
    o.size = (size_t)strtoul(argv[4], NULL, 10);
    if (argc == 8) {
        o.cert = argv[6];
        o.key = argv[7];
    }
    if (secs <= 0 || c <= 0 || c > 4096 || o.size > (1u << 24)) {
        fprintf(stderr, "tls_load: bad SECONDS, C or SIZE\n");
        return 2;
    }
    o.body = malloc(o.size + 1);
    float *lat = malloc(sizeof(float) * MAX_SAMPLES);
    slot *slots = calloc((size_t)c, sizeof(*slots));
    if (o.body == NULL || lat == NULL || slots == NULL)
        return 1;
    memset(o.body, 'x', o.size);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, c);
    long started = 0, done = 0, non2xx = 0, errors = 0, in_flight = 0;
    size_t nlat = 0;
    double t0 = now_s(), end = t0 + secs;
    for (long k = 0; k < c; k++, in_flight++)
        start(m, &slots[k], &o, started++);
    while (in_flight > 0) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        double now = now_s();
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            long code = 0;
            CURL *e = msg->easy_handle;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK) {
                if (errors++ == 0)
                    fprintf(stderr, "tls_load: first error: %s\n",
                            curl_easy_strerror(msg->data.result));
            } else if (code / 100 != 2) {
                non2xx++;
            }
            slot *sl = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
            curl_multi_remove_handle(m, e);
            in_flight--;
            if (now < end) {
                done++;
                if (nlat < MAX_SAMPLES)
                    lat[nlat++] = (float)((now - sl->t0) * 1e3);
                start(m, sl, &o, started++);
                in_flight++;
            }
        }
        if (in_flight > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double took = (now_s() < end ? now_s() : end) - t0;
    qsort(lat, nlat, sizeof(*lat), cmp_float);
    float p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;
    printf("events_per_s=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%ld errors=%ld requests=%ld\n",
           (double)done / took, p50, p99, non2xx, errors, done);
    for (long k = 0; k < c; k++) {
        curl_easy_cleanup(slots[k].e);
        curl_slist_free_all(slots[k].h);
    }
    free(slots);
    free(lat);
    free(o.body);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return errors == 0 ? 0 : 1;
}

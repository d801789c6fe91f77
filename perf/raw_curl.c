/* Benchmark (b): the HTTP ceiling. libcurl multi posting N CloudEvents (binary
 * mode, the same headers and body the dispatcher sends) to URL with at most C in
 * flight, reusing connections. Prints "raw_curl N SECONDS EVENTS_PER_S CPU_US_PER_EVENT".
 * Usage: raw_curl URL N C */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proc_cpu.h"

static const char body[] = "{\"order\":42,\"customer\":\"c-1\"}";

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

/* One of C slots: an easy handle reused for request after request, as the
 * dispatcher does. */
typedef struct slot {
    CURL *e;
    struct curl_slist *h;
} slot;

static void start(CURLM *m, slot *sl, const char *url, long i)
{
    char id[64];
    snprintf(id, sizeof(id), "ce-id: ev-%ld", i);
    curl_slist_free_all(sl->h);
    sl->h = NULL;
    sl->h = curl_slist_append(sl->h, "ce-specversion: 1.0");
    sl->h = curl_slist_append(sl->h, id);
    sl->h = curl_slist_append(sl->h, "ce-source: myapp");
    sl->h = curl_slist_append(sl->h, "ce-type: order.created.v1");
    sl->h = curl_slist_append(sl->h, "Content-Type: application/json");
    sl->h = curl_slist_append(sl->h, "Expect:");
    if (sl->e == NULL) {
        sl->e = curl_easy_init();
        curl_easy_setopt(sl->e, CURLOPT_URL, url);
        curl_easy_setopt(sl->e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(sl->e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(sl->e, CURLOPT_PRIVATE, sl);
        curl_easy_setopt(sl->e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(sl->e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sl->e, CURLOPT_TCP_NODELAY, 1L);
    }
    curl_easy_setopt(sl->e, CURLOPT_HTTPHEADER, sl->h);
    curl_multi_add_handle(m, sl->e);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: raw_curl URL N C\n");
        return 2;
    }
    const char *url = argv[1];
    long n = strtol(argv[2], NULL, 10), c = strtol(argv[3], NULL, 10);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, c);
    long started = 0, done = 0, failed = 0;
    slot *slots = calloc((size_t)c, sizeof(*slots));
    double t0 = now_s(), c0 = self_cpu_s(), w0 = watched_cpu_s();
    for (long k = 0; k < c && started < n; k++)
        start(m, &slots[k], url, started++);
    while (done < n) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            long code = 0;
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (res != CURLE_OK || code / 100 != 2)
                failed++;
            slot *sl = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
            curl_multi_remove_handle(m, e);
            done++;
            if (started < n)
                start(m, sl, url, started++);
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double secs = now_s() - t0, cpu = self_cpu_s() - c0, w1 = watched_cpu_s();
    printf("raw_curl %ld %.3f %.0f %.1f failed=%ld", n, secs, (double)n / secs,
           cpu * 1e6 / (double)n, failed);
    if (w0 >= 0 && w1 >= 0) /* BENCH_WATCH_PID: the sink's CPU per event meanwhile */
        printf(" watched=%.1f", (w1 - w0) * 1e6 / (double)n);
    printf("\n");
    for (long k = 0; k < c; k++) {
        curl_easy_cleanup(slots[k].e);
        curl_slist_free_all(slots[k].h);
    }
    free(slots);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}

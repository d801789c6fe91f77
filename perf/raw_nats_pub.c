/*
 * Baseline (b) of perf/bench_publisher.sh: what nats.c alone achieves when it
 * publishes the very message the publisher stores (same subject, ce- headers,
 * Nats-Msg-Id, payload) into the same stream, asynchronously, with as many
 * publishes in flight as the HTTP benchmark has connections.
 *
 * Usage: raw_nats_pub SIZE SECONDS WINDOW  (NATS_URL and the JS_STREAM_* keys
 * from the environment, as for jetbridge). Prints one line:
 *   events_per_s=<n> p50_ms=<x> p99_ms=<y> errors=<n> rss_kib=<n>
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "config/jb_cfg.h"
#include "proto/jb_ce.h"
#include "publisher/pub_internal.h"
#include "subscription/jb_sub.h"

extern char **environ;

#define RING        65536
#define MAX_SAMPLES (8u << 20)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long in_flight, acked, errors;
    int64_t sent_ns[RING];
    float *lat_ms;
    size_t nlat;
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *cl)
{
    (void)js, (void)cl;
    const char *id = NULL;
    int64_t now = jb_now_monotonic_ns();
    long n = 0;
    if (natsMsgHeader_Get(msg, "ce-id", &id) == NATS_OK && id != NULL)
        n = strtol(id, NULL, 10);
    pthread_mutex_lock(&st.mu);
    if (pa != NULL && pae == NULL) {
        st.acked++;
        if (st.nlat < MAX_SAMPLES)
            st.lat_ms[st.nlat++] = (float)((double)(now - st.sent_ns[n % RING]) / 1e6);
    } else {
        if (st.errors++ == 0 && pae != NULL)
            fprintf(stderr, "raw_nats_pub: first error: %s (%d)\n",
                    pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err), (int)pae->ErrCode);
    }
    st.in_flight--;
    pthread_cond_signal(&st.cv);
    pthread_mutex_unlock(&st.mu);
    natsMsg_Destroy(msg);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f != NULL && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: raw_nats_pub SIZE SECONDS WINDOW\n");
        return 2;
    }
    size_t size = (size_t)strtoul(argv[1], NULL, 10);
    int64_t secs = strtol(argv[2], NULL, 10);
    long window = strtol(argv[3], NULL, 10);
    jb_cfg *cfg = NULL;
    jb_err err = {{0}};
    int rest[1], nrest = 0;
    if (jb_cfg_load(0, NULL, environ, &cfg, rest, &nrest, &err) != JB_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 2;
    }
    st.lat_ms = malloc(sizeof(float) * MAX_SAMPLES);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.MaxPending = window * 2 + 16;
    if (natsConnection_ConnectTo(&nc, cfg->nats_url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
        jb_sub_ensure_stream(cfg, js, &err) != JB_OK) {
        fprintf(stderr, "nats: cannot connect or create the stream: %s\n", err.msg);
        return 1;
    }
    /* The event exactly as the publisher stores a binary request (after enrichment). */
    jb_ce *ce = jb_ce_create();
    char *data = malloc(size);
    memset(data, 'x', size);
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "source", "bench");
    jb_ce_set_str(ce, "type", "kyma.bench.order.created.v1");
    jb_ce_set_str(ce, "datacontenttype", "text/plain");
    jb_ce_set_str(ce, "originaltype", "order.created.v1");
    jb_ce_set_data(ce, JB_CE_DATA_BINARY, data, size);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = cfg->request_timeout_ms;
    int64_t start = jb_now_monotonic_ns(), end = start + secs * 1000000000LL;
    long seq = 0;
    char tag[16];
    snprintf(tag, sizeof(tag), "%ld", (long)(start % 1000000));
    while (jb_now_monotonic_ns() < end) {
        pthread_mutex_lock(&st.mu);
        while (st.in_flight >= window)
            pthread_cond_wait(&st.cv, &st.mu);
        st.in_flight++;
        st.sent_ns[seq % RING] = jb_now_monotonic_ns();
        pthread_mutex_unlock(&st.mu);
        char id[48], msgid[JB_PUB_MSG_ID_LEN + 1];
        int il = snprintf(id, sizeof(id), "%ld-%s", seq, tag);
        jb_ce_set(ce, "id", id, (size_t)il);
        jb_pub_msg_id("bench", 5, id, (size_t)il, NULL, msgid);
        natsMsg *m = NULL;
        jb_ce_to_nats(ce, "kyma.bench.order.created.v1", msgid, &m);
        if (js_PublishMsgAsync(js, &m, &po) != NATS_OK) {
            natsMsg_Destroy(m);
            pthread_mutex_lock(&st.mu);
            st.in_flight--;
            st.errors++;
            pthread_mutex_unlock(&st.mu);
        }
        seq++;
    }
    jsPubOptions waitopt;
    jsPubOptions_Init(&waitopt);
    waitopt.MaxWait = 10000;
    js_PublishAsyncComplete(js, &waitopt);
    double elapsed = (double)(jb_now_monotonic_ns() - start) / 1e9;
    pthread_mutex_lock(&st.mu);
    qsort(st.lat_ms, st.nlat, sizeof(float), cmp_float);
    double p50 = st.nlat ? st.lat_ms[st.nlat / 2] : 0,
           p99 = st.nlat ? st.lat_ms[st.nlat * 99 / 100] : 0;
    printf("events_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%ld rss_kib=%ld\n",
           (double)st.acked / elapsed, p50, p99, st.errors, rss_kib());
    pthread_mutex_unlock(&st.mu);
    jb_ce_destroy(ce);
    free(data);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_cfg_destroy(cfg);
    return 0;
}

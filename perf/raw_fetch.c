/* Benchmark (a): the NATS ceiling. Stores N events (the same headers and body the
 * publisher stores) in a stream of its own, then times plain nats.c pull
 * fetch-and-ack of all of them with at most C unacknowledged (batch C). Prints
 * "raw_fetch N SECONDS EVENTS_PER_S CPU_US_PER_EVENT".
 * Usage: raw_fetch NATS_URL N C */
#include <nats/nats.h>
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

static int store(jsCtx *js, long n)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subj[] = {"benchraw.>"};
    sc.Name = "benchraw";
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    js_DeleteStream(js, "benchraw", NULL, NULL);
    if (js_AddStream(NULL, js, &sc, NULL, NULL) != NATS_OK)
        return 1;
    for (long i = 0; i < n; i++) {
        natsMsg *m = NULL;
        char id[64];
        snprintf(id, sizeof(id), "ev-%ld", i);
        natsMsg_Create(&m, "benchraw.myapp.order.created.v1", NULL, body, (int)strlen(body));
        natsMsgHeader_Set(m, "ce-specversion", "1.0");
        natsMsgHeader_Set(m, "ce-id", id);
        natsMsgHeader_Set(m, "ce-source", "myapp");
        natsMsgHeader_Set(m, "ce-type", "kyma.myapp.order.created.v1");
        natsMsgHeader_Set(m, "ce-originaltype", "order.created.v1");
        natsMsgHeader_Set(m, "ce-datacontenttype", "application/json");
        if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
            return 1;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    return js_PublishAsyncComplete(js, &po) == NATS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: raw_fetch NATS_URL N C\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10), c = strtol(argv[3], NULL, 10);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK || store(js, n) != 0) {
        fprintf(stderr, "raw_fetch: set-up failed\n");
        return 1;
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "raw";
    cc.AckPolicy = js_AckExplicit;
    cc.MaxAckPending = c;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "benchraw";
    so.Config = cc;
    if (js_PullSubscribe(&sub, js, "benchraw.>", "raw", NULL, &so, NULL) != NATS_OK) {
        fprintf(stderr, "raw_fetch: subscribe failed\n");
        return 1;
    }
    long got = 0;
    double t0 = now_s(), c0 = self_cpu_s(), w0 = watched_cpu_s();
    while (got < n) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, (int)c, 5000, NULL);
        if (s != NATS_OK && s != NATS_TIMEOUT)
            break;
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(nc);
    double secs = now_s() - t0, cpu = self_cpu_s() - c0, w1 = watched_cpu_s();
    printf("raw_fetch %ld %.3f %.0f %.1f", got, secs, (double)got / secs, cpu * 1e6 / (double)got);
    if (w0 >= 0 && w1 >= 0) /* BENCH_WATCH_PID: nats-server's CPU per event meanwhile */
        printf(" watched=%.1f", (w1 - w0) * 1e6 / (double)got);
    printf("\n");
    natsSubscription_Destroy(sub);
    js_DeleteStream(js, "benchraw", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return got == n ? 0 : 1;
}

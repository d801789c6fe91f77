/* Benchmark helper for the dispatcher run: stores the subscription, waits for its
 * consumer, and pre-stores N events as the publisher would.
 * Usage: disp_load apply NATS_URL SINK_URL MAX_IN_FLIGHT [K]
 *        disp_load wait NATS_URL [K]
 *        disp_load publish NATS_URL N [ID_PREFIX [K]]   (ids must differ between
 *        runs inside the stream's 2-minute duplicate window)
 * With K (1..64): subscription bench/loops with K types order<k>.created.v1 (K
 * consumers, for DISPATCH_LOOPS), events spread over them round-robin; without:
 * bench/bench with the one type order.created.v1. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/jb_cfg.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

#define K_MAX 64

/* The type of consumer k of K (K 0: the single-type subscription). */
static void type_of(int k, int K, char *out, size_t cap)
{
    if (K == 0)
        snprintf(out, cap, "order.created.v1");
    else
        snprintf(out, cap, "order%d.created.v1", k);
}

static int apply(jb_cfg *cfg, jsCtx *js, const char *sink, const char *mif, int K)
{
    char types[K_MAX * 24] = "";
    size_t used = 0;
    for (int k = 0; k < (K > 0 ? K : 1); k++) {
        char t[32];
        type_of(k, K, t, sizeof(t));
        used += (size_t)snprintf(types + used, sizeof(types) - used, "%s\"%s\"", k ? "," : "", t);
    }
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"bench\"},\"spec\":{\"sink\":\"%s\","
             "\"source\":\"myapp\",\"types\":[%s],"
             "\"config\":{\"maxInFlightMessages\":\"%s\"}}}",
             K > 0 ? "loops" : "bench", sink, types, mif);
    jb_sub_vec v = {0};
    jb_err err = {{0}};
    jb_sub_store *st = NULL;
    jb_sub_apply_result res;
    int rc = jb_sub_ensure_stream(cfg, js, &err) == JB_OK &&
                     jb_sub_parse(buf, strlen(buf), "bench", NULL, &v, &err) == JB_OK &&
                     jb_sub_store_open(cfg, js, &st, &err) == JB_OK &&
                     jb_sub_store_put(st, v.items[0], &res, &err) == JB_OK
                 ? 0
                 : 1;
    if (rc != 0)
        fprintf(stderr, "disp_load apply: %s\n", err.msg);
    jb_sub_store_close(st);
    jb_sub_vec_clear(&v);
    return rc;
}

static int wait_consumer(jsCtx *js, int K)
{
    for (int k = 0; k < (K > 0 ? K : 1); k++) {
        char name[33], t[32], subject[64];
        type_of(k, K, t, sizeof(t));
        snprintf(subject, sizeof(subject), "kyma.myapp.%s", t);
        jb_sub_consumer_name("bench", K > 0 ? "loops" : "bench", subject, name);
        int i = 0;
        for (; i < 300; i++) {
            jsConsumerInfo *ci = NULL;
            if (js_GetConsumerInfo(&ci, js, "sap", name, NULL, NULL) == NATS_OK) {
                jsConsumerInfo_Destroy(ci);
                break;
            }
            usleep(100000);
        }
        if (i == 300)
            return 1;
    }
    return 0;
}

static int publish(jsCtx *js, long n, const char *prefix, int K)
{
    for (long i = 0; i < n; i++) {
        char id[64], t[32], subject[64];
        snprintf(id, sizeof(id), "%s-%ld", prefix, i);
        type_of(K > 0 ? (int)(i % K) : 0, K, t, sizeof(t));
        snprintf(subject, sizeof(subject), "kyma.myapp.%s", t);
        jb_ce *ce = jb_ce_create();
        jb_ce_set_str(ce, "specversion", "1.0");
        jb_ce_set_str(ce, "id", id);
        jb_ce_set_str(ce, "source", "myapp");
        jb_ce_set_str(ce, "type", subject);
        jb_ce_set_str(ce, "originaltype", t);
        jb_ce_set_str(ce, "datacontenttype", "application/json");
        const char *data = "{\"order\":42,\"customer\":\"c-1\"}";
        jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
        natsMsg *m = NULL;
        bool ok = jb_ce_to_nats(ce, subject, id, &m) == JB_OK &&
                  js_PublishMsgAsync(js, &m, NULL) == NATS_OK;
        natsMsg_Destroy(m); /* NULL once the publish took it */
        jb_ce_destroy(ce);
        if (!ok)
            return 1;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    return js_PublishAsyncComplete(js, &po) == NATS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: disp_load apply|wait|publish NATS_URL ...\n");
        return 2;
    }
    jb_cfg *cfg = jb_cfg_defaults();
    free(cfg->nats_url);
    cfg->nats_url = strdup(argv[2]);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (natsConnection_ConnectTo(&nc, argv[2]) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        fprintf(stderr, "disp_load: cannot connect to %s\n", argv[2]);
        return 1;
    }
    int rc = 2;
    /* K, the last optional argument of each command. */
    const char *ks = NULL;
    if ((strcmp(argv[1], "apply") == 0 && argc == 6) ||
        (strcmp(argv[1], "wait") == 0 && argc == 4) ||
        (strcmp(argv[1], "publish") == 0 && argc == 6))
        ks = argv[argc - 1];
    long K = ks != NULL ? strtol(ks, NULL, 10) : 0;
    if (K < 0 || K > K_MAX)
        fprintf(stderr, "disp_load: K must be 1..%d\n", K_MAX);
    else if (strcmp(argv[1], "apply") == 0 && (argc == 5 || argc == 6))
        rc = apply(cfg, js, argv[3], argv[4], (int)K);
    else if (strcmp(argv[1], "wait") == 0)
        rc = wait_consumer(js, (int)K);
    else if (strcmp(argv[1], "publish") == 0 && argc >= 4 && argc <= 6)
        rc = publish(js, strtol(argv[3], NULL, 10), argc >= 5 ? argv[4] : "ev", (int)K);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_cfg_destroy(cfg);
    return rc;
}

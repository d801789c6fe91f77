/* Benchmark helper for the dispatcher run: stores the subscription, waits for its
 * consumer, and pre-stores N events as the publisher would.
 * Usage: disp_load apply NATS_URL SINK_URL MAX_IN_FLIGHT
 *        disp_load wait NATS_URL
 *        disp_load publish NATS_URL N [ID_PREFIX]   (ids must differ between runs
 *        inside the stream's 2-minute duplicate window) */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/jb_cfg.h"
#include "proto/jb_ce.h"
#include "subscription/jb_sub.h"

#define SUBJECT "kyma.myapp.order.created.v1"

static int apply(jb_cfg *cfg, jsCtx *js, const char *sink, const char *mif)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"eventing.kyma-project.io/v1alpha2\",\"kind\":\"Subscription\","
             "\"metadata\":{\"name\":\"bench\",\"namespace\":\"bench\"},\"spec\":{\"sink\":\"%s\","
             "\"source\":\"myapp\",\"types\":[\"order.created.v1\"],"
             "\"config\":{\"maxInFlightMessages\":\"%s\"}}}",
             sink, mif);
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

static int wait_consumer(jsCtx *js)
{
    char name[33];
    jb_sub_consumer_name("bench", "bench", SUBJECT, name);
    for (int i = 0; i < 300; i++) {
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, js, "sap", name, NULL, NULL) == NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return 0;
        }
        usleep(100000);
    }
    return 1;
}

static int publish(jsCtx *js, long n, const char *prefix)
{
    for (long i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%ld", prefix, i);
        jb_ce *ce = jb_ce_create();
        jb_ce_set_str(ce, "specversion", "1.0");
        jb_ce_set_str(ce, "id", id);
        jb_ce_set_str(ce, "source", "myapp");
        jb_ce_set_str(ce, "type", SUBJECT);
        jb_ce_set_str(ce, "originaltype", "order.created.v1");
        jb_ce_set_str(ce, "datacontenttype", "application/json");
        const char *data = "{\"order\":42,\"customer\":\"c-1\"}";
        jb_ce_set_data(ce, JB_CE_DATA_JSON, data, strlen(data));
        natsMsg *m = NULL;
        if (jb_ce_to_nats(ce, SUBJECT, id, &m) != JB_OK ||
            js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
            return 1;
        jb_ce_destroy(ce);
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
    if (strcmp(argv[1], "apply") == 0 && argc == 5)
        rc = apply(cfg, js, argv[3], argv[4]);
    else if (strcmp(argv[1], "wait") == 0)
        rc = wait_consumer(js);
    else if (strcmp(argv[1], "publish") == 0 && (argc == 4 || argc == 5))
        rc = publish(js, strtol(argv[3], NULL, 10), argc == 5 ? argv[4] : "ev");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_cfg_destroy(cfg);
    return rc;
}

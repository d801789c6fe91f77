/* proto/: the NATS binding over a real nats-server: what jb_ce_to_nats builds
 * arrives intact through core NATS and through a JetStream stream, including
 * header keys that nats.c 3.4 would merge. */
#include <stdio.h>

#include <nats/nats.h>

#include "ce_test_util.h"
#include "jb_testenv.h"

static jb_tnats *srv;
static natsConnection *nc;
static jsCtx *js;

static int suite_init(void)
{
    srv = jb_tnats_start();
    if (srv == NULL || natsConnection_ConnectTo(&nc, jb_tnats_url(srv)) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        return 1;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"wire.>"};
    cfg.Name = "WIRE";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_AddStream(&si, js, &cfg, NULL, &jerr) != NATS_OK)
        return 1;
    jsStreamInfo_Destroy(si);
    return 0;
}

static int suite_cleanup(void)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    jb_tnats_stop(srv);
    nats_Close();
    return 0;
}

/* Sends m over core NATS and returns what a subscriber receives. */
static natsMsg *over_core(natsMsg *m)
{
    natsSubscription *sub = NULL;
    natsMsg *r = NULL;
    if (natsConnection_SubscribeSync(&sub, nc, natsMsg_GetSubject(m)) != NATS_OK)
        return NULL;
    if (natsConnection_PublishMsg(nc, m) == NATS_OK)
        natsSubscription_NextMsg(&r, sub, 5000);
    natsSubscription_Destroy(sub);
    return r;
}

/* Stores m in the stream and reads the stored message back. */
static natsMsg *over_jetstream(natsMsg *m)
{
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsMsg *r = NULL;
    if (js_PublishMsg(&pa, js, m, NULL, &jerr) != NATS_OK)
        return NULL;
    js_GetMsg(&r, js, "WIRE", pa->Sequence, NULL, &jerr);
    jsPubAck_Destroy(pa);
    return r;
}

static const char *const colliding[] = {"specversion",
                                        "1.0",
                                        "id",
                                        "1",
                                        "id31",
                                        "2",
                                        "source",
                                        "/s",
                                        "sourceab",
                                        "3",
                                        "type",
                                        "t",
                                        "typexy",
                                        "4",
                                        "x",
                                        "5",
                                        "xab",
                                        "6",
                                        "datacontourcd",
                                        "9",
                                        "datacontenttype",
                                        "application/x",
                                        NULL};
/* The same names, longer ones first: the order in which nats.c loses a value
 * on receipt rather than on sending. */
static const char *const colliding_rev[] = {
    "id31", "2", "id",  "1", "sourceab", "3", "source",      "/s",  "typexy", "4",
    "type", "t", "xab", "6", "x",        "5", "specversion", "1.0", NULL};
static const char *const uni[] = {"specversion",
                                  "1.0",
                                  "id",
                                  "ïd-€-😀",
                                  "source",
                                  "/sources/ünïcode",
                                  "type",
                                  "order.créated.v1",
                                  "subject",
                                  "Euro € 😀",
                                  "time",
                                  "2018-04-05T17:31:00.5Z",
                                  "datacontenttype",
                                  "application/octet-stream",
                                  "comexampleext",
                                  "100% \"quoted\"",
                                  NULL};

static void check_transport(natsMsg *(*send)(natsMsg *), const char *subject)
{
    const char *const *events[] = {colliding, colliding_rev, uni};
    static const char zeros[] = {0, 1, 0, 'z', (char)0xff, 0};
    for (size_t i = 0; i < JB_CASES_N(events); i++) {
        jb_ce *ce = t_mk(events[i]);
        jb_ce_set_data(ce, JB_CE_DATA_BINARY, zeros, sizeof(zeros));
        natsMsg *m = NULL;
        char msg_id[32]; /* distinct, or JetStream would drop it as a duplicate */
        snprintf(msg_id, sizeof(msg_id), "%s-%zu", subject, i);
        CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats(ce, subject, msg_id, &m), JB_OK);
        natsMsg *r = send(m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        jb_ce *back = NULL;
        jb_err err = {{0}};
        jb_status st = jb_ce_from_nats(r, &back, &err);
        if (st != JB_OK)
            printf("\n  event %zu: %s", i, err.msg);
        CU_ASSERT_EQUAL(st, JB_OK);
        CU_ASSERT(back != NULL && jb_ce_equal(ce, back));
        jb_ce_destroy(back);
        natsMsg_Destroy(r);
        natsMsg_Destroy(m);
        jb_ce_destroy(ce);
    }
}

static void test_core(void)
{
    check_transport(over_core, "wire.core");
}

static void test_jetstream(void)
{
    check_transport(over_jetstream, "wire.js");
}

static void test_foreign_producer_collision(void)
{
    /* Another producer that writes both keys in lower case, longer first: nats.c
     * folds them on receipt. The decoder must say so, not return a wrong event. */
    natsMsg *m = NULL;
    natsMsg_Create(&m, "wire.core", NULL, "x", 1);
    natsMsgHeader_Set(m, "ce-id31", "2");
    natsMsgHeader_Set(m, "ce-id", "1");
    natsMsg *r = over_core(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    jb_ce *back = NULL;
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_from_nats(r, &back, &err), JB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(back);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "headers ce-id and ce-id31: nats.c cannot keep these keys apart");
    natsMsg_Destroy(r);
    natsMsg_Destroy(m);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"binary mode survives core NATS", test_core},
        {"binary mode survives a JetStream stream", test_jetstream},
        {"keys folded by nats.c on receipt are an error, not a wrong event",
         test_foreign_producer_collision},
    };
    return jb_cunit_main("proto_nats_wire", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

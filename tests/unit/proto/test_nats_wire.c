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

/* Empty values (nats.c 3.4 reads the next header line for an empty value unless
 * the binding writes a marker), in the middle and at the end, and values that are
 * blanks only. */
static const char *const empties[] = {
    "specversion", "1.0", "id",  "e1", "source", "/s",   "myext", "", "type", "t.v1",
    "blank",       " ",   "tab", "\t", "quotes", "\"\"", "last",  "", NULL};
/* Percent signs in every form: literal, an escape, a broken escape, at the end. */
static const char *const percents[] = {"specversion", "1.0",        "id",   "100%",
                                       "source",      "/a%20b%zz%", "type", "t%2Ev1",
                                       "pct",         "%%%25%2525", NULL};

/* Builds an event with every byte 0x01..0xff that forms valid UTF-8 in one
 * value (the codec carries control bytes; validation is another layer), a 4096
 * byte value and JB_CE_MAX_ATTRS attributes in all. */
static jb_ce *binary_long_many(void)
{
    jb_ce *ce = t_valid();
    char bin[256];
    size_t n = 0;
    for (int c = 1; c < 0x80; c++)
        bin[n++] = (char)c;
    memcpy(bin + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    n += 9;
    jb_ce_set(ce, "bin", bin, n);
    char *long_v = malloc(JB_CE_MAX_ATTR_VALUE);
    for (size_t i = 0; i < JB_CE_MAX_ATTR_VALUE; i++)
        long_v[i] = (char)('a' + i % 26);
    memcpy(long_v + 100, "\xe2\x82\xac", 3);
    jb_ce_set(ce, "long", long_v, JB_CE_MAX_ATTR_VALUE);
    free(long_v);
    for (size_t i = jb_ce_attr_count(ce); i < JB_CE_MAX_ATTRS; i++) {
        char name[16], v[32];
        snprintf(name, sizeof(name), "many%zu", i);
        snprintf(v, sizeof(v), i % 7 == 0 ? "" : "v%zu", i);
        jb_ce_set_str(ce, name, v);
    }
    return ce;
}

static void check_transport(natsMsg *(*send)(natsMsg *), const char *subject)
{
    jb_ce *made = binary_long_many();
    const char *const *events[] = {colliding, colliding_rev, uni, empties, percents, NULL};
    static const char zeros[] = {0, 1, 0, 'z', (char)0xff, 0};
    for (size_t i = 0; i < JB_CASES_N(events); i++) {
        jb_ce *ce = events[i] != NULL ? t_mk(events[i]) : jb_ce_clone(made);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ce);
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
        if (back == NULL || !jb_ce_equal(ce, back))
            printf("\n  event %zu differs after the round trip", i);
        jb_ce_destroy(back);
        natsMsg_Destroy(r);
        natsMsg_Destroy(m);
        jb_ce_destroy(ce);
    }
    jb_ce_destroy(made);
}

/* Keys that differ only by case are two headers for NATS but one attribute: the
 * decoder says so instead of keeping one value silently. */
static void test_keys_differing_by_case(void)
{
    natsMsg *m = NULL;
    natsMsg_Create(&m, "wire.core", NULL, "x", 1);
    natsMsgHeader_Set(m, "ce-specversion", "1.0");
    natsMsgHeader_Set(m, "ce-myext", "lower");
    natsMsgHeader_Set(m, "CE-MYEXT", "upper");
    natsMsg *r = over_core(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    jb_ce *back = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_ce_from_nats(r, &back, &err), JB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(back);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "myext: duplicate attribute"));
    natsMsg_Destroy(r);
    natsMsg_Destroy(m);
}

/* The empty value as written on the wire, and what a plain nats.c reader sees. */
static void test_empty_value_marker(void)
{
    static const char *const kv[] = {"specversion", "1.0", "id", "1", "myext", "",
                                     "source",      "/s",  NULL};
    jb_ce *ce = t_mk(kv);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats(ce, "wire.core", NULL, &m), JB_OK);
    natsMsg *r = over_core(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    const char *v = NULL;
    CU_ASSERT_EQUAL(natsMsgHeader_Get(r, "ce-myext", &v), NATS_OK);
    CU_ASSERT_STRING_EQUAL(v ? v : "(null)", "\"\"");
    CU_ASSERT_EQUAL(natsMsgHeader_Get(r, "ce-source", &v), NATS_OK);
    CU_ASSERT_STRING_EQUAL(v ? v : "(null)", "/s");
    char *enc = NULL;
    size_t el = 0;
    CU_ASSERT_EQUAL(jb_ce_nats_value_encode("", 0, &enc, &el), JB_OK);
    CU_ASSERT_STRING_EQUAL(enc, "\"\"");
    CU_ASSERT_EQUAL(el, 2);
    free(enc);
    CU_ASSERT_EQUAL(jb_ce_nats_value_encode("a b%", 4, &enc, &el), JB_OK);
    CU_ASSERT_STRING_EQUAL(enc, "a%20b%25");
    free(enc);
    natsMsg_Destroy(r);
    natsMsg_Destroy(m);
    jb_ce_destroy(ce);
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
        {"keys differing only by case are an error, not one silent value",
         test_keys_differing_by_case},
        {"an empty value travels as an empty quoted-string", test_empty_value_marker},
    };
    return jb_cunit_main("proto_nats_wire", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

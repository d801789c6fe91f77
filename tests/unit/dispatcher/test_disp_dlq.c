/* dispatcher/: the dead-letter message built from a stored one (dlq.c). */
#include <nats/nats.h>
#include <string.h>
#include <strings.h>

#include "dispatcher/disp_core.h"
#include "jb_cunit.h"
#include "proto/jb_ce.h"

/* A header by name without case (the encoder may flip letters), or NULL. */
static const char *hdr_nocase(natsMsg *m, const char *key)
{
    const char **keys = NULL;
    int n = 0;
    const char *v = NULL;
    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return NULL;
    for (int i = 0; i < n && v == NULL; i++)
        if (strcasecmp(keys[i], key) == 0 && natsMsgHeader_Get(m, keys[i], &v) != NATS_OK)
            v = NULL;
    free((void *)keys);
    return v;
}

static natsMsg *stored(const char *const *exts)
{
    jb_ce *ce = jb_ce_create();
    jb_ce_set_str(ce, "specversion", "1.0");
    jb_ce_set_str(ce, "id", "e1");
    jb_ce_set_str(ce, "source", "app");
    jb_ce_set_str(ce, "type", "kyma.app.order.created.v1");
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    jb_ce_set_data(ce, JB_CE_DATA_JSON, "{\"a\":1}", 7);
    for (size_t i = 0; exts[i] != NULL; i += 2)
        jb_ce_set_str(ce, exts[i], exts[i + 1]);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL(jb_ce_to_nats(ce, "kyma.app.order.created.v1", "orig-id", &m), JB_OK);
    jb_ce_destroy(ce);
    return m;
}

/* An event's own extensions whose keys nats.c 3.4 confuses with the added ones
 * (ce-errordest and ce-errordestab hash alike, so do ce-id and ce-id31) survive
 * next to them, and the dead letter decodes as the event plus the error data. */
static void test_extensions_do_not_clash(void)
{
    static const struct {
        const char *name;
        const char *const exts[8];
    } cases[] = {
        {"none", {NULL}},
        {"errordestab", {"errordestab", "mine", NULL}},
        {"errorcodeXY and id31", {"errorcodexy", "x", "id31", "y", NULL}},
        {"errorattemptsab", {"errorattemptsab", "z", "errordataab", "w", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        natsMsg *orig = stored(cases[i].exts);
        CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
        natsMsg *dl =
            jb_disp_dlq_msg(orig, "c0ffee", "ns", "sub", "http://sink:1/x", 500, "boom", 4, 3);
        CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
        CU_ASSERT_STRING_EQUAL(natsMsg_GetSubject(dl), "kyma-dlq.c0ffee");
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(dl, &ce, &err), JB_OK);
        const char *v = jb_ce_get(ce, "errordest", NULL);
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "http://sink:1/x") == 0);
        v = jb_ce_get(ce, "errorcode", NULL);
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "500") == 0);
        v = jb_ce_get(ce, "errordata", NULL);
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "Ym9vbQ==") == 0);
        v = jb_ce_get(ce, "errorattempts", NULL);
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "3") == 0);
        v = jb_ce_get(ce, "id", NULL);
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "e1") == 0);
        for (size_t k = 0; cases[i].exts[k] != NULL; k += 2) {
            v = jb_ce_get(ce, cases[i].exts[k], NULL);
            if (v == NULL || strcmp(v, cases[i].exts[k + 1]) != 0)
                CU_FAIL("an event's own extension was lost or changed");
        }
        size_t len = 0;
        const uint8_t *data = jb_ce_data(ce, &len);
        CU_ASSERT_TRUE(len == 7 && memcmp(data, "{\"a\":1}", 7) == 0);
        const char *s = hdr_nocase(dl, "Jb-Subscription");
        CU_ASSERT_TRUE(s != NULL && strcmp(s, "ns/sub") == 0);
        s = hdr_nocase(dl, "Jb-Consumer");
        CU_ASSERT_TRUE(s != NULL && strcmp(s, "c0ffee") == 0);
        s = hdr_nocase(dl, "Jb-Subject");
        CU_ASSERT_TRUE(s != NULL && strcmp(s, "kyma.app.order.created.v1") == 0);
        /* The original's deduplication id never suppresses its dead letter. */
        s = hdr_nocase(dl, "Nats-Msg-Id");
        CU_ASSERT_TRUE(s == NULL || strcmp(s, "orig-id") != 0);
        jb_ce_destroy(ce);
        natsMsg_Destroy(dl);
        natsMsg_Destroy(orig);
    }
}

/* A message that is not a CloudEvent keeps its bytes and headers. */
static void test_poison_kept_raw(void)
{
    natsMsg *orig = NULL;
    CU_ASSERT_EQUAL_FATAL(natsMsg_Create(&orig, "kyma.x.y", NULL, "junk", 4), NATS_OK);
    natsMsgHeader_Set(orig, "ce-specversion", "9.9");
    /* A repeated header does not decode. */
    natsMsgHeader_Add(orig, "ce-id", "a");
    natsMsgHeader_Add(orig, "ce-id", "b");
    natsMsg *dl = jb_disp_dlq_msg(orig, "c1", "ns", "sub", "http://s/", 0, "bad", 3, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    CU_ASSERT_EQUAL(natsMsg_GetDataLength(dl), 4);
    const char *v = hdr_nocase(dl, "ce-specversion");
    CU_ASSERT_TRUE(v != NULL && strcmp(v, "9.9") == 0);
    v = hdr_nocase(dl, "ce-errorcode");
    CU_ASSERT_TRUE(v != NULL && strcmp(v, "0") == 0);
    v = hdr_nocase(dl, "Jb-Consumer");
    CU_ASSERT_TRUE(v != NULL && strcmp(v, "c1") == 0);
    natsMsg_Destroy(dl);
    natsMsg_Destroy(orig);
}

static int setup(void)
{
    return nats_Open(-1) == NATS_OK ? 0 : 1;
}

static int teardown(void)
{
    nats_Close();
    return 0;
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"extensions_do_not_clash", test_extensions_do_not_clash},
        {"poison_kept_raw", test_poison_kept_raw},
    };
    return jb_cunit_main("dispatcher_dlq", setup, teardown, cases, JB_CASES_N(cases));
}

/* proto/: NATS binding, binary and structured mode, on natsMsg objects (no server). */
#include <stdio.h>
#include <strings.h>

#include <nats/nats.h>

#include "ce_test_util.h"

static const char *hdr(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK)
        return NULL;
    return v;
}

/* The value of the one key that equals name without case. */
static const char *hdr_ci(natsMsg *m, const char *name)
{
    const char **keys = NULL, *v = NULL;
    int n = 0, found = 0;
    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (strcasecmp(keys[i], name) == 0) {
            v = hdr(m, keys[i]);
            found++;
        }
    }
    free((void *)keys);
    return found == 1 ? v : NULL;
}

static void test_binary_encode(void)
{
    static const char *const kv[] = {"specversion",
                                     "1.0",
                                     "id",
                                     "A 1",
                                     "source",
                                     "/s",
                                     "type",
                                     "t",
                                     "datacontenttype",
                                     "application/json",
                                     "ext",
                                     "Euro € 😀",
                                     NULL};
    jb_ce *ce = t_mk(kv);
    jb_ce_set_data(ce, JB_CE_DATA_JSON, "{\"a\":1}", 7);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats(ce, "kyma.s.t", "src/A 1", &m), JB_OK);
    CU_ASSERT_STRING_EQUAL(natsMsg_GetSubject(m), "kyma.s.t");
    CU_ASSERT_EQUAL(natsMsg_GetDataLength(m), 7);
    CU_ASSERT(memcmp(natsMsg_GetData(m), "{\"a\":1}", 7) == 0); /* payload untouched */
    static const char *const want[][2] = {
        {"ce-specversion", "1.0"},
        {"ce-id", "A%201"},
        {"ce-source", "/s"},
        {"ce-type", "t"},
        {"ce-datacontenttype", "application/json"},
        {"ce-ext", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
        {"Nats-Msg-Id", "src/A 1"},
    };
    for (size_t i = 0; i < JB_CASES_N(want); i++) {
        const char *v = hdr(m, want[i][0]);
        CU_ASSERT_PTR_NOT_NULL(v);
        if (v != NULL)
            CU_ASSERT_STRING_EQUAL(v, want[i][1]);
    }
    const char **keys = NULL;
    int nkeys = 0;
    CU_ASSERT_EQUAL(natsMsgHeader_Keys(m, &keys, &nkeys), NATS_OK);
    CU_ASSERT_EQUAL(nkeys, (int)JB_CASES_N(want)); /* nothing else, no Content-Type */
    free((void *)keys);
    jb_ce *back = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &back, &err), JB_OK);
    CU_ASSERT(jb_ce_equal(ce, back));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(back), JB_CE_DATA_JSON);
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
    /* Without msg id, no Nats-Msg-Id header. */
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats(ce, "kyma.s.t", NULL, &m), JB_OK);
    CU_ASSERT_PTR_NULL(hdr(m, "Nats-Msg-Id"));
    natsMsg_Destroy(m);
    jb_ce_destroy(ce);
}

static void test_encode_refusals(void)
{
    static const char *const bad_name[] = {"Bad-Name", "v", NULL};
    static const char *const ok[] = {"id", "1", NULL};
    static const struct {
        const char *const *kv;
        const char *subject;
        const char *msg_id;
    } cases[] = {
        {bad_name, "s", NULL},
        {ok, "", NULL},
        {ok, NULL, NULL},
        {ok, "s", "id\r\nX: y"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = t_mk(cases[i].kv);
        natsMsg *m = NULL;
        CU_ASSERT_EQUAL(jb_ce_to_nats(ce, cases[i].subject, cases[i].msg_id, &m), JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(m);
        jb_ce_destroy(ce);
    }
}

/* Builds a message with the given headers (NULL-terminated pairs). */
static natsMsg *mkmsg(const char *const *h, const char *data, int len)
{
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, "subj", NULL, data, len) != NATS_OK)
        return NULL;
    for (size_t i = 0; h[i] != NULL; i += 2)
        natsMsgHeader_Add(m, h[i], h[i + 1]);
    return m;
}

static void test_decode_any_case(void)
{
    static const char *const h[] = {"CE-SPECVERSION",
                                    "1.0",
                                    "Ce-Id",
                                    "%E2%82%AC",
                                    "ce-source",
                                    "/s",
                                    "cE-type",
                                    "t",
                                    "Content-Type",
                                    "text/plain",
                                    "Nats-Msg-Id",
                                    "x",
                                    NULL};
    natsMsg *m = mkmsg(h, "hi", 2);
    jb_ce *ce = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    static const char *const want[] = {"specversion",     "1.0",        "id",   "€",
                                       "source",          "/s",         "type", "t",
                                       "datacontenttype", "text/plain", NULL};
    CU_ASSERT(t_has(ce, want));
    CU_ASSERT(t_data_is(ce, "hi", 2));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_BINARY);
    CU_ASSERT_EQUAL(jb_ce_validate(ce, &err), JB_OK);
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
    /* ce-datacontenttype wins over Content-Type. */
    static const char *const h2[] = {
        "ce-id", "1", "ce-datacontenttype", "application/json", "Content-Type", "text/plain", NULL};
    m = mkmsg(h2, "[]", 2);
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(ce, "datacontenttype", NULL), "application/json");
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_JSON);
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
    /* Keys that only look like ce-* or Content-Type are not attributes: the
     * decoder's case-blind "ce-" check takes C/c, E/e and the dash only. */
    static const char *const h3[] = {
        "ce-id",       "1", "ce_x",          "2", "cf-y", "3", "Ce-",  "4", "ce.z", "5",
        "Content-Typ", "6", "Content-Types", "7", "CE-w", "8", "#E-v", "9", NULL};
    m = mkmsg(h3, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    static const char *const want3[] = {"id", "1", "w", "8", NULL};
    CU_ASSERT(t_has(ce, want3));
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), 2);
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
    /* Borrowed: the same event, its data the message's own bytes (no copy). */
    m = mkmsg(h, "hi", 2);
    jb_ce *copied = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &copied, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats_borrow(m, &ce, &err), JB_OK);
    CU_ASSERT_TRUE(jb_ce_equal(ce, copied));
    size_t dlen = 0;
    CU_ASSERT_PTR_EQUAL(jb_ce_data(ce, &dlen), (const uint8_t *)natsMsg_GetData(m));
    CU_ASSERT_EQUAL(dlen, 2);
    CU_ASSERT_PTR_NOT_EQUAL(jb_ce_data(copied, NULL), (const uint8_t *)natsMsg_GetData(m));
    jb_ce_destroy(ce);
    jb_ce_destroy(copied);
    natsMsg_Destroy(m);
    /* No headers at all: an empty event (validation will say what is missing). */
    m = mkmsg((const char *const[]){NULL}, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), 0);
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_NONE);
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
}

static void test_decode_errors(void)
{
    static const char *const dup_case[] = {"ce-id", "1", "CE-ID", "2", NULL};
    static const char *const dup_add[] = {"ce-id", "1", "ce-id", "2", NULL};
    static const char *const bad_utf8[] = {"ce-x", "%C0%A0", NULL};
    static const char *const bad_pct[] = {"ce-x", "%", NULL};
    static const char *const batch[] = {"Content-Type", "application/cloudevents-batch+json", NULL};
    static const char *const avro[] = {"content-type", "application/cloudevents+avro", NULL};
    static const char *const bad_json[] = {"Content-Type", "application/cloudevents+json", NULL};
    static const char *const bad_ct[] = {"Content-Type", "applic\x9f\x8aion/json", NULL};
    static const struct {
        const char *const *h;
        jb_status st;
        const char *err;
    } cases[] = {
        {dup_case, JB_ERR_INVALID, "id: duplicate attribute"},
        {dup_add, JB_ERR_INVALID, "header ce-id: repeated"},
        {bad_utf8, JB_ERR_INVALID, "x: not valid UTF-8 after percent-decoding"},
        {bad_pct, JB_ERR_INVALID, "x: invalid percent-encoding"},
        {batch, JB_ERR_UNSUPPORTED,
         "content type application/cloudevents-batch+json: not supported over NATS"},
        {avro, JB_ERR_UNSUPPORTED,
         "content type application/cloudevents+avro: not supported over NATS"},
        {bad_json, JB_ERR_INVALID, "invalid JSON at byte 0"},
        /* A raw Content-Type must be UTF-8 too, or it could not travel as
         * ce-datacontenttype (fuzzer find). */
        {bad_ct, JB_ERR_INVALID, "datacontenttype: not valid UTF-8"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        natsMsg *m = mkmsg(cases[i].h, "{", 1);
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_ce_from_nats(m, &ce, &err), cases[i].st);
        CU_ASSERT_PTR_NULL(ce);
        if (strcmp(err.msg, cases[i].err) != 0)
            printf("\n  case %zu: got \"%s\"", i, err.msg);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        natsMsg_Destroy(m);
    }
}

static void test_structured(void)
{
    jb_ce *ce = t_valid();
    jb_ce_set_str(ce, "datacontenttype", "application/json");
    jb_ce_set_data(ce, JB_CE_DATA_JSON, "{\"x\":[1,2]}", 11);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats_structured(ce, "kyma.x", &m), JB_OK);
    CU_ASSERT_STRING_EQUAL(hdr(m, "Content-Type"), "application/cloudevents+json");
    CU_ASSERT_PTR_NULL(hdr(m, "ce-id"));
    CU_ASSERT_PTR_NOT_NULL(strstr(natsMsg_GetData(m), "\"data\":{\"x\":[1,2]}"));
    jb_ce *back = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &back, &err), JB_OK);
    CU_ASSERT(jb_ce_equal(ce, back));
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
    /* Structured detection ignores case and parameters. */
    static const char *const h[] = {"content-TYPE", "Application/CloudEvents+JSON; charset=utf-8",
                                    NULL};
    const char *json = "{\"specversion\":\"1.0\",\"id\":\"9\",\"source\":\"/s\",\"type\":\"t\"}";
    m = mkmsg(h, json, (int)strlen(json));
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &back, &err), JB_OK);
    CU_ASSERT_STRING_EQUAL(jb_ce_get(back, "id", NULL), "9");
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
    /* And the protobuf structured format. */
    uint8_t *pb;
    size_t pbl;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_protobuf(ce, &pb, &pbl), JB_OK);
    static const char *const hp[] = {"Content-Type", "application/cloudevents+protobuf", NULL};
    m = mkmsg(hp, (const char *)pb, (int)pbl);
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &back, &err), JB_OK);
    CU_ASSERT(jb_ce_equal(ce, back));
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
    free(pb);
    jb_ce_destroy(ce);
}

static void test_limits(void)
{
    static char big[3 * JB_CE_MAX_ATTR_VALUE + 8];
    memset(big, 'x', JB_CE_MAX_ATTR_VALUE + 1);
    big[JB_CE_MAX_ATTR_VALUE + 1] = '\0';
    const char *const h[] = {"ce-big", big, NULL};
    natsMsg *m = mkmsg(h, NULL, 0);
    jb_ce *ce = NULL;
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_from_nats(m, &ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "big: value longer than 4096 bytes");
    natsMsg_Destroy(m);
    /* Exactly the limit, percent-encoded (3 bytes per byte on the wire), passes. */
    for (int i = 0; i < JB_CE_MAX_ATTR_VALUE; i++)
        memcpy(big + 3 * i, "%41", 3);
    big[3 * JB_CE_MAX_ATTR_VALUE] = '\0';
    m = mkmsg(h, NULL, 0);
    CU_ASSERT_EQUAL(jb_ce_from_nats(m, &ce, &err), JB_OK);
    size_t len = 0;
    CU_ASSERT_PTR_NOT_NULL(jb_ce_get(ce, "big", &len));
    CU_ASSERT_EQUAL(len, JB_CE_MAX_ATTR_VALUE);
    jb_ce_destroy(ce);
    natsMsg_Destroy(m);
    /* Too many attributes. */
    natsMsg_Create(&m, "s", NULL, NULL, 0);
    for (int i = 0; i <= JB_CE_MAX_ATTRS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "ce-x%d", i);
        natsMsgHeader_Set(m, k, "v");
    }
    ce = NULL;
    CU_ASSERT_EQUAL(jb_ce_from_nats(m, &ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "too many attributes (at most 64)");
    CU_ASSERT_PTR_NULL(ce);
    natsMsg_Destroy(m);
}

/* A deterministic pseudo-random generator (LCG). */
static uint32_t rnd(uint32_t *x, uint32_t n)
{
    *x = *x * 1103515245u + 12345u;
    return (*x >> 16) % n;
}

/* Encodes and decodes 2000 events whose up to 64 names share a random base
 * (first character a letter when letter_first); counts refusals and wrong results. */
static void random_names(bool letter_first, int *refused, int *wrong)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint32_t x = letter_first ? 12345 : 54321;
    *refused = *wrong = 0;
    for (int e = 0; e < 2000; e++) {
        jb_ce *ce = jb_ce_create();
        char name[21];
        size_t bl = 1 + rnd(&x, 8);
        for (size_t k = 0; k < bl; k++)
            name[k] = alphabet[rnd(&x, (k == 0 && letter_first) ? 26 : 36)];
        size_t nattrs = 1 + rnd(&x, JB_CE_MAX_ATTRS);
        for (size_t a = 0; a < nattrs; a++) {
            size_t extra = rnd(&x, (uint32_t)(21 - bl));
            for (size_t k = 0; k < extra; k++)
                name[bl + k] = alphabet[rnd(&x, 36)];
            name[bl + extra] = '\0';
            jb_ce_set_str(ce, name, name);
        }
        natsMsg *m = NULL;
        jb_ce *back = NULL;
        jb_err err;
        jb_status st = jb_ce_to_nats(ce, "kyma.r", "id", &m);
        if (st == JB_ERR_UNSUPPORTED)
            (*refused)++;
        else if (st != JB_OK || jb_ce_from_nats(m, &back, &err) != JB_OK || !jb_ce_equal(ce, back))
            (*wrong)++;
        jb_ce_destroy(back);
        natsMsg_Destroy(m);
        jb_ce_destroy(ce);
    }
}

static void test_unavoidable_collision(void)
{
    /* 16- and 18-byte keys whose first eight bytes are "ce-" and five digits hash
     * alike in every spelling: refused (JB_ERR_UNSUPPORTED), never stored wrong. */
    static const char *const kv[] = {"id", "1", "60195jk8wudws", "a", "60195jmkjlcmwnm", "b", NULL};
    jb_ce *ce = t_mk(kv);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL(jb_ce_to_nats(ce, "kyma.s", NULL, &m), JB_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(m);
    jb_ce_destroy(ce);
}

static void test_random_names(void)
{
    /* What a publisher sees: an event is stored exactly, or refused, never
     * changed. Names that start with a letter always find a spelling; names
     * whose first five characters are digits can leave none (the hash ORs away
     * the case of "ce-" for keys of 16+ bytes), so a few are refused. */
    int refused, wrong;
    random_names(true, &refused, &wrong);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(refused, 0);
    random_names(false, &refused, &wrong);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(refused <= 20); /* 1% */
    printf(" (refused %d of 2000 with digit-first names) ", refused);
}

/* natsMsg_Destroy needs the library opened (nats_Open), as any NATS program has. */
static int suite_init(void)
{
    return nats_Open(-1) == NATS_OK ? 0 : 1;
}

static int suite_cleanup(void)
{
    nats_Close();
    return 0;
}

static void test_colliding_keys(void)
{
    /* nats.c 3.4 hashes "ce-id" and "ce-id31" alike and then loses one of them;
     * the encoder spells the second key differently so both survive. */
    CU_ASSERT_EQUAL(jb_ce_nats_key_hash("ce-id", 5), jb_ce_nats_key_hash("ce-id31", 7));
    CU_ASSERT_NOT_EQUAL(jb_ce_nats_key_hash("ce-id", 5), jb_ce_nats_key_hash("Ce-id31", 7));
    /* Equal lengths with equal hashes are told apart by nats.c: no change. */
    CU_ASSERT_EQUAL(jb_ce_nats_key_hash("ce-x10", 6), jb_ce_nats_key_hash("ce-x11", 6));
    static const char *const kv[] = {"specversion",
                                     "1.0",
                                     "id",
                                     "1",
                                     "id31",
                                     "2",
                                     "idxy",
                                     "3",
                                     "source",
                                     "/s",
                                     "sourceab",
                                     "4",
                                     "type",
                                     "t",
                                     "typexy",
                                     "5",
                                     "x",
                                     "6",
                                     "xab",
                                     "7",
                                     "x10",
                                     "8",
                                     "x11",
                                     "9",
                                     "datacontourcd",
                                     "10",
                                     "datacontenttype",
                                     "a/b",
                                     NULL};
    jb_ce *ce = t_mk(kv);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_nats(ce, "kyma.s", "dedup-id", &m), JB_OK);
    const char **keys = NULL;
    int nkeys = 0;
    CU_ASSERT_EQUAL(natsMsgHeader_Keys(m, &keys, &nkeys), NATS_OK);
    CU_ASSERT_EQUAL(nkeys, 15); /* fourteen attributes and Nats-Msg-Id */
    free((void *)keys);
    /* The first of each confusable pair keeps the lower case; the later one is
     * spelled differently but still names the same attribute. */
    static const char *const lower[][2] = {
        {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}, {"ce-x", "6"}};
    for (size_t i = 0; i < JB_CASES_N(lower); i++)
        CU_ASSERT(hdr(m, lower[i][0]) != NULL && strcmp(hdr(m, lower[i][0]), lower[i][1]) == 0);
    static const char *const recased[][2] = {
        {"ce-id31", "2"},
        {"ce-sourceab", "4"},
        {"ce-typexy", "5"},
        {"ce-xab", "7"},
        /* 16 and 18 bytes: the hash ignores the prefix's case here (fuzzer find) */
        {"ce-datacontenttype", "a/b"}};
    for (size_t i = 0; i < JB_CASES_N(recased); i++) {
        CU_ASSERT_PTR_NULL(hdr(m, recased[i][0]));
        const char *v = hdr_ci(m, recased[i][0]);
        CU_ASSERT(v != NULL && strcmp(v, recased[i][1]) == 0);
    }
    jb_ce *back = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_nats(m, &back, &err), JB_OK);
    CU_ASSERT(jb_ce_equal(ce, back));
    jb_ce_destroy(back);
    natsMsg_Destroy(m);
    jb_ce_destroy(ce);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"binary encode: lower-case ce- headers, Nats-Msg-Id, payload", test_binary_encode},
        {"encode refuses unsafe names, subjects, msg ids", test_encode_refusals},
        {"binary decode: any header case, Content-Type fallback", test_decode_any_case},
        {"decode errors: duplicates, bad values, unsupported formats", test_decode_errors},
        {"structured mode both ways (JSON, protobuf)", test_structured},
        {"limits", test_limits},
        {"header keys nats.c would merge are kept apart", test_colliding_keys},
        {"random names sharing prefixes: stored exactly or refused", test_random_names},
        {"a collision no spelling avoids is refused", test_unavoidable_collision},
    };
    return jb_cunit_main("proto_nats", suite_init, suite_cleanup, cases, JB_CASES_N(cases));
}

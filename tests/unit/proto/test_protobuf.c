/* proto/: protobuf event format, single and batch, every attribute value kind. */
#include <stdio.h>

#include "ce_test_util.h"
#include "proto/cloudevents.pb-c.h"

typedef Io__Cloudevents__V1__CloudEvent pb_event;
typedef Io__Cloudevents__V1__CloudEvent__AttributesEntry pb_entry;
typedef Io__Cloudevents__V1__CloudEvent__CloudEventAttributeValue pb_value;
#define V(x) IO__CLOUDEVENTS__V1__CLOUD_EVENT__CLOUD_EVENT_ATTRIBUTE_VALUE__ATTR_##x

/* Packs ev into a malloc'd buffer. */
static uint8_t *pack(const pb_event *ev, size_t *len)
{
    *len = io__cloudevents__v1__cloud_event__get_packed_size(ev);
    uint8_t *b = malloc(*len + 1);
    io__cloudevents__v1__cloud_event__pack(ev, b);
    return b;
}

static void test_decode_value_kinds(void)
{
    static uint8_t bytes[] = {0, 1, 2, 0xff};
    Io__Cloudevents__V1__Timestamp ts = IO__CLOUDEVENTS__V1__TIMESTAMP__INIT;
    ts.seconds = 1522949460;
    ts.nanos = 120000000;
    pb_value v[8];
    pb_entry e[8];
    pb_entry *ep[8];
    const char *keys[8] = {"flag", "neg", "str", "bin", "dataschema", "ref", "time", "num"};
    for (int i = 0; i < 8; i++) {
        io__cloudevents__v1__cloud_event__cloud_event_attribute_value__init(&v[i]);
        io__cloudevents__v1__cloud_event__attributes_entry__init(&e[i]);
        e[i].key = (char *)keys[i];
        e[i].value = &v[i];
        ep[i] = &e[i];
    }
    v[0].attr_case = V(CE_BOOLEAN), v[0].ce_boolean = 1;
    v[1].attr_case = V(CE_INTEGER), v[1].ce_integer = INT32_MIN;
    v[2].attr_case = V(CE_STRING), v[2].ce_string = "Euro € 😀";
    v[3].attr_case = V(CE_BYTES), v[3].ce_bytes.data = bytes, v[3].ce_bytes.len = 4;
    v[4].attr_case = V(CE_URI), v[4].ce_uri = "https://example.com/s.json";
    v[5].attr_case = V(CE_URI_REF), v[5].ce_uri_ref = "/ref";
    v[6].attr_case = V(CE_TIMESTAMP), v[6].ce_timestamp = &ts;
    v[7].attr_case = V(CE_INTEGER), v[7].ce_integer = 42;
    pb_event ev;
    io__cloudevents__v1__cloud_event__init(&ev);
    ev.id = "1";
    ev.source = "/s";
    ev.spec_version = "1.0";
    ev.type = "t";
    ev.n_attributes = 8;
    ev.attributes = ep;
    ev.data_case = IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_BINARY_DATA;
    ev.binary_data.data = bytes;
    ev.binary_data.len = 4;
    size_t len;
    uint8_t *buf = pack(&ev, &len);
    jb_ce *ce = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_OK);
    static const char *const want[] = {"id",          "1",
                                       "source",      "/s",
                                       "specversion", "1.0",
                                       "type",        "t",
                                       "flag",        "true",
                                       "neg",         "-2147483648",
                                       "str",         "Euro € 😀",
                                       "bin",         "AAEC/w==",
                                       "dataschema",  "https://example.com/s.json",
                                       "ref",         "/ref",
                                       "time",        "2018-04-05T17:31:00.12Z",
                                       "num",         "42",
                                       NULL};
    CU_ASSERT(t_has(ce, want));
    CU_ASSERT(t_data_is(ce, bytes, 4));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_BINARY);
    /* Insertion order: the four fields, then the map in wire order. */
    const char *n0, *n4;
    jb_ce_attr_at(ce, 0, &n0, NULL, NULL);
    jb_ce_attr_at(ce, 4, &n4, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(n0, "id");
    CU_ASSERT_STRING_EQUAL(n4, "flag");
    CU_ASSERT_EQUAL(jb_ce_validate(ce, &err), JB_OK);
    jb_ce_destroy(ce);
    free(buf);
}

/* Encodes ce and unpacks the bytes with protobuf-c to look at the fields. */
static pb_event *encode_unpack(const jb_ce *ce)
{
    uint8_t *buf;
    size_t len;
    if (jb_ce_to_protobuf(ce, &buf, &len) != JB_OK)
        return NULL;
    pb_event *pe = io__cloudevents__v1__cloud_event__unpack(NULL, len, buf);
    free(buf);
    return pe;
}

static const pb_value *attr(const pb_event *pe, const char *key)
{
    for (size_t i = 0; i < pe->n_attributes; i++) {
        if (strcmp(pe->attributes[i]->key, key) == 0)
            return pe->attributes[i]->value;
    }
    return NULL;
}

static void test_encode_fields(void)
{
    static const char *const kv[] = {"specversion",
                                     "1.0",
                                     "id",
                                     "1",
                                     "source",
                                     "/s",
                                     "type",
                                     "t",
                                     "time",
                                     "2018-04-05T19:31:00.000000001+02:00",
                                     "dataschema",
                                     "https://e.com/s",
                                     "subject",
                                     "sub",
                                     "datacontenttype",
                                     "application/json",
                                     "ext",
                                     "x",
                                     NULL};
    jb_ce *ce = t_mk(kv);
    jb_ce_set_data(ce, JB_CE_DATA_JSON, "{\"a\":1}", 7);
    pb_event *pe = encode_unpack(ce);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pe);
    CU_ASSERT_STRING_EQUAL(pe->id, "1");
    CU_ASSERT_STRING_EQUAL(pe->source, "/s");
    CU_ASSERT_STRING_EQUAL(pe->spec_version, "1.0");
    CU_ASSERT_STRING_EQUAL(pe->type, "t");
    CU_ASSERT_EQUAL(pe->n_attributes, 5);
    const pb_value *t = attr(pe, "time");
    CU_ASSERT_FATAL(t != NULL && t->attr_case == V(CE_TIMESTAMP));
    CU_ASSERT_EQUAL(t->ce_timestamp->seconds, 1522949460);
    CU_ASSERT_EQUAL(t->ce_timestamp->nanos, 1);
    const pb_value *ds = attr(pe, "dataschema");
    CU_ASSERT(ds != NULL && ds->attr_case == V(CE_URI) &&
              strcmp(ds->ce_uri, "https://e.com/s") == 0);
    const pb_value *x = attr(pe, "ext");
    CU_ASSERT(x != NULL && x->attr_case == V(CE_STRING) && strcmp(x->ce_string, "x") == 0);
    /* JSON data goes to text_data (protobuf format spec). */
    CU_ASSERT_EQUAL(pe->data_case, IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_TEXT_DATA);
    CU_ASSERT_STRING_EQUAL(pe->text_data, "{\"a\":1}");
    io__cloudevents__v1__cloud_event__free_unpacked(pe, NULL);
    jb_ce_destroy(ce);
}

static void test_data_mapping(void)
{
    static const struct {
        const char *ct;
        jb_ce_data_kind kind;
        const char *data;
        size_t len;
        int want_case;
        jb_ce_data_kind back_kind;
    } cases[] = {
        {"application/json", JB_CE_DATA_JSON, "[1]", 3,
         IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_TEXT_DATA, JB_CE_DATA_JSON},
        {"text/plain", JB_CE_DATA_TEXT, "héllo", 6,
         IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_TEXT_DATA, JB_CE_DATA_TEXT},
        {"application/octet-stream", JB_CE_DATA_BINARY, "\0\1\0", 3,
         IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_BINARY_DATA, JB_CE_DATA_BINARY},
        /* Text that a proto3 string cannot hold goes as bytes. */
        {"text/plain", JB_CE_DATA_TEXT, "a\0b", 3,
         IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_BINARY_DATA, JB_CE_DATA_BINARY},
        {"text/plain", JB_CE_DATA_TEXT, "\xff", 1,
         IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_BINARY_DATA, JB_CE_DATA_BINARY},
        {NULL, JB_CE_DATA_NONE, NULL, 0, IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA__NOT_SET,
         JB_CE_DATA_NONE},
        /* Empty text: NULL data pointer (fuzzer find). */
        {"text/plain", JB_CE_DATA_TEXT, NULL, 0, IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_TEXT_DATA,
         JB_CE_DATA_TEXT},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = t_valid();
        if (cases[i].ct != NULL)
            jb_ce_set_str(ce, "datacontenttype", cases[i].ct);
        if (cases[i].kind != JB_CE_DATA_NONE)
            jb_ce_set_data(ce, cases[i].kind, cases[i].data, cases[i].len);
        pb_event *pe = encode_unpack(ce);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pe);
        CU_ASSERT_EQUAL((int)pe->data_case, cases[i].want_case);
        io__cloudevents__v1__cloud_event__free_unpacked(pe, NULL);
        uint8_t *buf;
        size_t len;
        jb_ce *back = NULL;
        jb_err err;
        CU_ASSERT_EQUAL_FATAL(jb_ce_to_protobuf(ce, &buf, &len), JB_OK);
        CU_ASSERT_EQUAL_FATAL(jb_ce_from_protobuf(buf, len, &back, &err), JB_OK);
        CU_ASSERT(jb_ce_equal(ce, back));
        CU_ASSERT_EQUAL(jb_ce_data_kind_of(back), cases[i].back_kind);
        free(buf);
        jb_ce_destroy(back);
        jb_ce_destroy(ce);
    }
}

static void test_proto_data_and_errors(void)
{
    /* proto_data: the Any's value bytes become the data. */
    Io__Cloudevents__V1__Any any = IO__CLOUDEVENTS__V1__ANY__INIT;
    any.type_url = "type.googleapis.com/x.Y";
    any.value.data = (uint8_t *)"\x08\x01";
    any.value.len = 2;
    pb_event ev;
    io__cloudevents__v1__cloud_event__init(&ev);
    ev.id = "1";
    ev.data_case = IO__CLOUDEVENTS__V1__CLOUD_EVENT__DATA_PROTO_DATA;
    ev.proto_data = &any;
    size_t len;
    uint8_t *buf = pack(&ev, &len);
    jb_ce *ce = NULL;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_OK);
    CU_ASSERT(t_data_is(ce, "\x08\x01", 2));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_BINARY);
    jb_ce_destroy(ce);
    free(buf);

    /* Errors name the attribute. */
    Io__Cloudevents__V1__Timestamp ts = IO__CLOUDEVENTS__V1__TIMESTAMP__INIT;
    ts.seconds = 253402300800LL;
    pb_value v;
    pb_entry e, *ep = &e;
    io__cloudevents__v1__cloud_event__cloud_event_attribute_value__init(&v);
    io__cloudevents__v1__cloud_event__attributes_entry__init(&e);
    e.key = "time";
    e.value = &v;
    v.attr_case = V(CE_TIMESTAMP);
    v.ce_timestamp = &ts;
    pb_event ev2;
    io__cloudevents__v1__cloud_event__init(&ev2);
    ev2.n_attributes = 1;
    ev2.attributes = &ep;
    static const struct {
        const char *key;
        int kind;
        const char *err;
    } cases[] = {
        {"time", V(CE_TIMESTAMP), "time: timestamp out of range"},
        {"x", V(_NOT_SET), "x: attribute value not set"},
        {"", V(CE_STRING), ": attribute names MUST be 1 to 20 lower-case letters or digits"},
        {"id", V(CE_STRING), "id: duplicate attribute"},
        {"bad", V(CE_URI), "bad: MUST be valid UTF-8"},
    };
    ev2.id = "1";
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        e.key = (char *)cases[i].key;
        v.attr_case = cases[i].kind;
        if (cases[i].kind == V(CE_STRING))
            v.ce_string = "s";
        else if (cases[i].kind == V(CE_URI))
            v.ce_uri = "http://x/\xff";
        else
            v.ce_timestamp = &ts;
        buf = pack(&ev2, &len);
        ce = NULL;
        CU_ASSERT_EQUAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(ce);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        free(buf);
    }
    CU_ASSERT_EQUAL(jb_ce_from_protobuf((const uint8_t *)"\xff\xff\xff", 3, &ce, &err),
                    JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "invalid protobuf CloudEvent");
    /* An empty buffer is an event with nothing set (proto3). */
    CU_ASSERT_EQUAL(jb_ce_from_protobuf((const uint8_t *)"", 0, &ce, &err), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_attr_count(ce), 0);
    jb_ce_destroy(ce);
}

static void test_limits(void)
{
    static char big[JB_CE_MAX_ATTR_VALUE + 2];
    memset(big, 'x', sizeof(big) - 1);
    pb_event ev;
    io__cloudevents__v1__cloud_event__init(&ev);
    ev.id = big;
    size_t len;
    uint8_t *buf = pack(&ev, &len);
    jb_ce *ce = NULL;
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "id: value longer than 4096 bytes");
    free(buf);
    /* Attributes: 4 fields + 61 map entries = 65 > 64. */
    static pb_value v[61];
    static pb_entry e[61];
    static pb_entry *ep[61];
    static char keys[61][8];
    for (int i = 0; i < 61; i++) {
        snprintf(keys[i], sizeof(keys[i]), "x%d", i);
        io__cloudevents__v1__cloud_event__cloud_event_attribute_value__init(&v[i]);
        io__cloudevents__v1__cloud_event__attributes_entry__init(&e[i]);
        v[i].attr_case = V(CE_BOOLEAN);
        e[i].key = keys[i];
        e[i].value = &v[i];
        ep[i] = &e[i];
    }
    pb_event ev2;
    io__cloudevents__v1__cloud_event__init(&ev2);
    ev2.id = "1", ev2.source = "/s", ev2.spec_version = "1.0", ev2.type = "t";
    ev2.attributes = ep;
    ev2.n_attributes = 60;
    buf = pack(&ev2, &len);
    CU_ASSERT_EQUAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_OK);
    jb_ce_destroy(ce);
    free(buf);
    ev2.n_attributes = 61;
    buf = pack(&ev2, &len);
    CU_ASSERT_EQUAL(jb_ce_from_protobuf(buf, len, &ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "too many attributes (at most 64)");
    free(buf);
}

static void test_batch(void)
{
    jb_ce *ces[3] = {t_valid(), t_valid(), t_valid()};
    jb_ce_set_str(ces[1], "id", "2");
    jb_ce_set_data(ces[1], JB_CE_DATA_BINARY, "\0z", 2);
    jb_ce_set_str(ces[2], "time", "2020-01-01T00:00:00.999999999Z");
    uint8_t *buf;
    size_t len, n = 0;
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_protobuf(ces, 3, &buf, &len), JB_OK);
    jb_ce **back = NULL;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_from_protobuf(buf, len, &back, &n, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT(jb_ce_equal(ces[i], back[i]));
    jb_ce_batch_free(back, n);
    free(buf);
    /* Empty batch. */
    CU_ASSERT_EQUAL(jb_ce_batch_to_protobuf(NULL, 0, &buf, &len), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_batch_from_protobuf(buf, len, &back, &n, &err), JB_OK);
    CU_ASSERT_EQUAL(n, 0);
    jb_ce_batch_free(back, n);
    free(buf);
    /* Over the batch limit. */
    static jb_ce *many[JB_CE_MAX_BATCH + 1];
    for (size_t i = 0; i <= JB_CE_MAX_BATCH; i++)
        many[i] = ces[0];
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_protobuf(many, JB_CE_MAX_BATCH + 1, &buf, &len), JB_OK);
    back = NULL;
    CU_ASSERT_EQUAL(jb_ce_batch_from_protobuf(buf, len, &back, &n, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "batch: more than 1000 events");
    CU_ASSERT_PTR_NULL(back);
    free(buf);
    /* An error inside names the index. */
    jb_ce_set_str(ces[2], "", "x"); /* refused by the model */
    jb_ce_set_str(ces[2], "id", "");
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_protobuf(ces, 3, &buf, &len), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_batch_from_protobuf(buf, len, &back, &n, &err), JB_OK);
    CU_ASSERT(n == 3 && jb_ce_equal(ces[2], back[2])); /* "" id travels in the map */
    jb_ce_batch_free(back, n);
    free(buf);
    for (size_t i = 0; i < 3; i++)
        jb_ce_destroy(ces[i]);
}

/* Appends a length-delimited field (len < 128) to b at *o. */
static void pb_put(uint8_t *b, size_t *o, unsigned num, const void *v, size_t len)
{
    b[(*o)++] = (uint8_t)(num << 3 | 2);
    b[(*o)++] = (uint8_t)len;
    memcpy(b + *o, v, len);
    *o += len;
}

/* An event with the required fields, where field `num` (1..4, 7 text_data) holds
 * "a\0b", or (num 5) an extension "myext" whose ce_string does, or (num 50) an
 * attribute name with a NUL. */
static size_t pb_event_with_nul(uint8_t *b, unsigned num)
{
    static const char *const req[] = {"", "id1", "/src", "1.0", "a.b"};
    size_t o = 0;
    for (unsigned f = 1; f <= 4; f++) {
        if (f == num)
            pb_put(b, &o, f, "a\0b", 3);
        else
            pb_put(b, &o, f, req[f], strlen(req[f]));
    }
    uint8_t entry[64], value[32];
    size_t eo = 0, vo = 0;
    if (num == 5 || num == 50) {
        pb_put(value, &vo, 3, num == 5 ? "x\0y" : "ok", num == 5 ? 3 : 2);
        pb_put(entry, &eo, 1, num == 5 ? "myext" : "my\0ext", 5 + (num == 50));
        pb_put(entry, &eo, 2, value, vo);
        pb_put(b, &o, 5, entry, eo);
    }
    if (num == 7)
        pb_put(b, &o, 7, "t\0u", 3);
    return o;
}

/* protobuf-c hands strings over without their length: a NUL inside one is a 400
 * naming the attribute, never a silently shortened value. */
static void test_nul_refused(void)
{
    static const struct {
        unsigned num;
        const char *want;
    } cases[] = {
        {1, "id: MUST NOT contain U+0000"},
        {2, "source: MUST NOT contain U+0000"},
        {3, "specversion: MUST NOT contain U+0000"},
        {4, "type: MUST NOT contain U+0000"},
        {5, "myext: MUST NOT contain U+0000"},
        {7, "data: MUST NOT contain U+0000"},
        {50, "attribute names MUST NOT contain U+0000"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        uint8_t b[256];
        size_t n = pb_event_with_nul(b, cases[i].num);
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_ce_from_protobuf(b, n, &ce, &err), JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(ce);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].want);
        /* The same event as the second of a batch. */
        uint8_t batch[600];
        size_t bo = 0;
        uint8_t good[256];
        size_t gn = pb_event_with_nul(good, 0);
        pb_put(batch, &bo, 1, good, gn);
        pb_put(batch, &bo, 1, b, n);
        jb_ce **ces = NULL;
        size_t count = 0;
        CU_ASSERT_EQUAL(jb_ce_batch_from_protobuf(batch, bo, &ces, &count, &err), JB_ERR_INVALID);
        char want[128];
        snprintf(want, sizeof(want), "batch[1]: %s", cases[i].want);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
    }
    /* Without a NUL the same builder gives a valid event. */
    uint8_t b[256];
    size_t n = pb_event_with_nul(b, 0);
    jb_ce *ce = NULL;
    CU_ASSERT_EQUAL(jb_ce_from_protobuf(b, n, &ce, NULL), JB_OK);
    CU_ASSERT_STRING_EQUAL(ce ? jb_ce_get(ce, "id", NULL) : "", "id1");
    jb_ce_destroy(ce);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"decode: bool, int32, string, bytes, uri, uri_ref, timestamp", test_decode_value_kinds},
        {"encode: fields, time as timestamp, dataschema as uri", test_encode_fields},
        {"data: text_data, binary_data and back", test_data_mapping},
        {"proto_data, bad input, errors name the attribute", test_proto_data_and_errors},
        {"value and attribute limits", test_limits},
        {"batch: round trip, empty, limit", test_batch},
        {"U+0000 in a string field is refused, naming the attribute", test_nul_refused},
    };
    return jb_cunit_main("proto_protobuf", NULL, NULL, cases, JB_CASES_N(cases));
}

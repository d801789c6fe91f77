/* proto/: HTTP binding: mode detection, percent-encoding, binary mode. */
#include <stdio.h>

#include "ce_test_util.h"

static void test_detect(void)
{
    static const struct {
        const char *ct;
        jb_ce_http_mode want;
    } cases[] = {
        {NULL, JB_CE_HTTP_BINARY},
        {"", JB_CE_HTTP_BINARY},
        {"application/json", JB_CE_HTTP_BINARY},
        {"text/plain; charset=utf-8", JB_CE_HTTP_BINARY},
        {"application/cloudevents+json", JB_CE_HTTP_STRUCTURED_JSON},
        {"application/cloudevents+json; charset=utf-8", JB_CE_HTTP_STRUCTURED_JSON},
        {"Application/CloudEvents+JSON", JB_CE_HTTP_STRUCTURED_JSON},
        {"  application/cloudevents+json ;charset=UTF-8", JB_CE_HTTP_STRUCTURED_JSON},
        {"application/cloudevents-batch+json", JB_CE_HTTP_BATCH_JSON},
        {"APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8", JB_CE_HTTP_BATCH_JSON},
        {"application/cloudevents+protobuf", JB_CE_HTTP_STRUCTURED_PROTOBUF},
        {"application/cloudevents-batch+protobuf", JB_CE_HTTP_BATCH_PROTOBUF},
        {"application/cloudevents+avro", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudevents-batch+avro", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudevents", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudevents-batch", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudevents+", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudevents+jsonx", JB_CE_HTTP_UNSUPPORTED},
        {"application/cloudeventsx", JB_CE_HTTP_BINARY},
        {"application/cloud", JB_CE_HTTP_BINARY},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *ct = cases[i].ct;
        jb_ce_http_mode got = jb_ce_http_detect(ct, ct != NULL ? strlen(ct) : 0);
        if (got != cases[i].want)
            printf("\n  detect(%s) = %d, want %d", ct ? ct : "NULL", got, cases[i].want);
        CU_ASSERT_EQUAL(got, cases[i].want);
    }
    /* The length bounds the value: no reading past it. */
    CU_ASSERT_EQUAL(jb_ce_http_detect("application/cloudevents+jsonGARBAGE", 28),
                    JB_CE_HTTP_STRUCTURED_JSON);
}

static void test_pct_encode(void)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
        {"plain-ASCII_1.0~!#$&'()*+,/:;<=>?@[\\]^`{|}",
         "plain-ASCII_1.0~!#$&'()*+,/:;<=>?@[\\]^`{|}"},
        {"a \"quoted\" 100%", "a%20%22quoted%22%20100%25"},
        {"tab\tnl\ncr\rdel\x7f", "tab%09nl%0Acr%0Ddel%7F"},
        {"", ""},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *o;
        size_t ol;
        CU_ASSERT_EQUAL_FATAL(jb_ce_pct_encode(cases[i].in, strlen(cases[i].in), &o, &ol), JB_OK);
        CU_ASSERT_STRING_EQUAL(o, cases[i].out);
        CU_ASSERT_EQUAL(ol, strlen(cases[i].out));
        free(o);
        /* And back. */
        CU_ASSERT_EQUAL_FATAL(
            jb_ce_header_decode(cases[i].out, strlen(cases[i].out), &o, &ol, NULL), JB_OK);
        CU_ASSERT_EQUAL(ol, strlen(cases[i].in));
        CU_ASSERT_STRING_EQUAL(o, cases[i].in);
        free(o);
    }
    char *o;
    size_t ol;
    CU_ASSERT_EQUAL(jb_ce_pct_encode("a\0b", 3, &o, &ol), JB_OK);
    CU_ASSERT_STRING_EQUAL(o, "a%00b");
    free(o);
    /* Every byte value, alone and between plain runs, against the rule itself:
     * controls, space, '"', '%', DEL and above are %XX (upper-case hex). */
    for (int c = 0; c < 256; c++) {
        char in[5] = {'a', 'b', (char)c, 'c', '\0'}, want[16];
        bool esc = c <= 0x20 || c >= 0x7F || c == '"' || c == '%';
        if (esc)
            snprintf(want, sizeof(want), "ab%%%02X%c", c, 'c');
        else
            snprintf(want, sizeof(want), "ab%cc", c);
        CU_ASSERT_EQUAL_FATAL(jb_ce_pct_encode(in, 4, &o, &ol), JB_OK);
        CU_ASSERT_STRING_EQUAL(o, want);
        CU_ASSERT_EQUAL(ol, strlen(want));
        free(o);
    }
}

static void test_header_decode(void)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: rejected */
        const char *err;
    } cases[] = {
        {"Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀", NULL},
        {"%e2%82%ac", "€", NULL}, /* lower-case hex */
        {"\"quoted value\"", "quoted value", NULL},
        {"\"with \\\"escapes\\\" \\\\\"", "with \"escapes\" \\", NULL},
        {"\"%41\"", "A", NULL}, /* unquote, then one round of decoding */
        {"%2541", "%41", NULL}, /* only one round */
        {"  padded\t", "padded", NULL},
        {"\"\"", "", NULL},
        {"\"", "\"", NULL}, /* a lone quote is not a quoted-string */
        {"%C0%A0", NULL, "not valid UTF-8 after percent-decoding"},       /* overlong */
        {"%ED%A0%80", NULL, "not valid UTF-8 after percent-decoding"},    /* surrogate */
        {"%F4%90%80%80", NULL, "not valid UTF-8 after percent-decoding"}, /* > U+10FFFF */
        {"%E2%82", NULL, "not valid UTF-8 after percent-decoding"},       /* truncated */
        {"\xC3", NULL, "not valid UTF-8 after percent-decoding"},         /* raw, too */
        /* Past the eight-byte ASCII steps of the UTF-8 check. */
        {"0123456789abcdef\xC3", NULL, "not valid UTF-8 after percent-decoding"},
        {"0123456789abcdef%C0%A0", NULL, "not valid UTF-8 after percent-decoding"},
        {"01234567€89abcdefgh", "01234567€89abcdefgh", NULL},
        {"%zz", NULL, "invalid percent-encoding"},
        {"abc%", NULL, "invalid percent-encoding"},
        {"abc%4", NULL, "invalid percent-encoding"},
        {"\"a\"b\"", NULL, "invalid quoted-string"},
        {"\"ab\\\"", NULL, "invalid quoted-string"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *o = NULL;
        size_t ol;
        jb_err err = {{0}};
        jb_status st = jb_ce_header_decode(cases[i].in, strlen(cases[i].in), &o, &ol, &err);
        if (cases[i].out != NULL) {
            CU_ASSERT_EQUAL(st, JB_OK);
            if (st == JB_OK) {
                CU_ASSERT_STRING_EQUAL(o, cases[i].out);
                CU_ASSERT_EQUAL(ol, strlen(cases[i].out));
            } else {
                printf("\n  decode(%s): %s", cases[i].in, err.msg);
            }
        } else {
            CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
            CU_ASSERT_PTR_NULL(o);
            CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        }
        free(o);
    }
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void test_binary_decode(void)
{
    static const jb_ce_header hdrs[] = {
        H("Host", "example.com"),
        H("ce-specversion", "1.0"),
        H("CE-ID", "A234-1234-1234"),
        H("Ce-Source", "%2Fmycontext"),
        H("ce-type", "order.created.v1"),
        H("Content-Type", "application/json; charset=utf-8"),
        H("ce-comexampleextension", "\"Euro%20%E2%82%AC%20%F0%9F%98%80\""),
        H("ce-time", "2018-04-05T17:31:00Z"),
    };
    static const char *const want[] = {"specversion",
                                       "1.0",
                                       "id",
                                       "A234-1234-1234",
                                       "source",
                                       "/mycontext",
                                       "type",
                                       "order.created.v1",
                                       "datacontenttype",
                                       "application/json; charset=utf-8",
                                       "comexampleextension",
                                       "Euro € 😀",
                                       "time",
                                       "2018-04-05T17:31:00Z",
                                       NULL};
    jb_ce *ce = NULL;
    jb_err err;
    const char body[] = "{\"a\": 1}";
    CU_ASSERT_EQUAL_FATAL(jb_ce_from_http_binary(hdrs, JB_CASES_N(hdrs), (const uint8_t *)body,
                                                 strlen(body), &ce, &err),
                          JB_OK);
    CU_ASSERT(t_has(ce, want));
    CU_ASSERT(t_data_is(ce, body, strlen(body)));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), JB_CE_DATA_JSON);
    CU_ASSERT_EQUAL(jb_ce_validate(ce, &err), JB_OK);
    jb_ce_destroy(ce);
}

static void test_binary_decode_kinds(void)
{
    static const struct {
        const char *ct;
        const char *body;
        size_t len;
        jb_ce_data_kind kind;
    } cases[] = {
        {"application/json", "[1]", 3, JB_CE_DATA_JSON},
        {"application/vnd.foo+json", "{}", 2, JB_CE_DATA_JSON},
        {"text/json", "1", 1, JB_CE_DATA_JSON},
        {"text/plain", "hi", 2, JB_CE_DATA_BINARY},
        {"application/octet-stream", "\0\1\0", 3, JB_CE_DATA_BINARY},
        {NULL, "x", 1, JB_CE_DATA_BINARY},
        {"application/json", "", 0, JB_CE_DATA_NONE},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce_header h[2] = {H("ce-id", "1"), H("Content-Type", "")};
        size_t n = 1;
        if (cases[i].ct != NULL) {
            h[1].value = cases[i].ct;
            h[1].value_len = strlen(cases[i].ct);
            n = 2;
        }
        jb_ce *ce = NULL;
        jb_err err;
        CU_ASSERT_EQUAL_FATAL(
            jb_ce_from_http_binary(h, n, (const uint8_t *)cases[i].body, cases[i].len, &ce, &err),
            JB_OK);
        CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), cases[i].kind);
        CU_ASSERT(t_data_is(ce, cases[i].body, cases[i].len));
        CU_ASSERT_EQUAL(jb_ce_get(ce, "datacontenttype", NULL) != NULL, cases[i].ct != NULL);
        jb_ce_destroy(ce);
    }
}

static void test_binary_decode_errors(void)
{
    static char longv[JB_CE_MAX_ATTR_VALUE + 2];
    memset(longv, 'x', sizeof(longv) - 1);
    static const struct {
        jb_ce_header h[2];
        size_t n;
        const char *err;
    } cases[] = {
        {{H("ce-id", "1"), H("CE-Id", "2")}, 2, "id: duplicate attribute"},
        {{H("ce-x", "%C0%A0"), H("ce-id", "1")}, 1, "x: not valid UTF-8 after percent-decoding"},
        {{H("ce-x", "%G1"), H("ce-id", "1")}, 1, "x: invalid percent-encoding"},
        {{H("ce-x", ""), H("ce-id", "1")}, 2, NULL},
        {{H("Content-Type", "a/b"), H("content-type", "c/d")},
         2,
         "datacontenttype: duplicate attribute"},
        {{H("Content-Type", "text/\xc0\xa0"), H("ce-id", "1")},
         2,
         "datacontenttype: not valid UTF-8"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        jb_status st = jb_ce_from_http_binary(cases[i].h, cases[i].n, NULL, 0, &ce, &err);
        if (cases[i].err == NULL) {
            CU_ASSERT_EQUAL(st, JB_OK);
        } else {
            CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
            CU_ASSERT_PTR_NULL(ce);
            CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        }
        jb_ce_destroy(ce);
    }
    /* Value limit: exactly the limit passes, one more byte fails. */
    jb_ce_header h = {"ce-big", 6, longv, JB_CE_MAX_ATTR_VALUE};
    jb_ce *ce = NULL;
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_from_http_binary(&h, 1, NULL, 0, &ce, &err), JB_OK);
    jb_ce_destroy(ce);
    ce = NULL;
    h.value_len++;
    CU_ASSERT_EQUAL(jb_ce_from_http_binary(&h, 1, NULL, 0, &ce, &err), JB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(ce);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "big: value longer than 4096 bytes"));
    /* Attribute limit. */
    static jb_ce_header many[JB_CE_MAX_ATTRS + 1];
    static char names[JB_CE_MAX_ATTRS + 1][16];
    for (int i = 0; i <= JB_CE_MAX_ATTRS; i++) {
        int nl = snprintf(names[i], sizeof(names[i]), "ce-x%d", i);
        many[i] = (jb_ce_header){names[i], (size_t)nl, "v", 1};
    }
    CU_ASSERT_EQUAL(jb_ce_from_http_binary(many, JB_CE_MAX_ATTRS, NULL, 0, &ce, &err), JB_OK);
    jb_ce_destroy(ce);
    ce = NULL;
    CU_ASSERT_EQUAL(jb_ce_from_http_binary(many, JB_CE_MAX_ATTRS + 1, NULL, 0, &ce, &err),
                    JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "too many attributes (at most 64)");
}

typedef struct emitted {
    char names[16][32];
    char values[16][128];
    size_t n;
} emitted;

static void emit(void *ud, const char *name, const char *value, size_t len)
{
    emitted *e = ud;
    if (e->n >= 16)
        return;
    snprintf(e->names[e->n], sizeof(e->names[0]), "%s", name);
    snprintf(e->values[e->n], sizeof(e->values[0]), "%.*s", (int)len, value);
    e->n++;
}

static void test_binary_encode(void)
{
    static const char *const kv[] = {"specversion",
                                     "1.0",
                                     "id",
                                     "1",
                                     "source",
                                     "/s",
                                     "type",
                                     "t",
                                     "datacontenttype",
                                     "text/plain; charset=utf-8",
                                     "ext",
                                     "Euro € 😀",
                                     NULL};
    jb_ce *ce = t_mk(kv);
    emitted e = {.n = 0};
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_http_binary(ce, emit, &e), JB_OK);
    static const char *const want[][2] = {
        {"Content-Type", "text/plain; charset=utf-8"},
        {"ce-specversion", "1.0"},
        {"ce-id", "1"},
        {"ce-source", "/s"},
        {"ce-type", "t"},
        {"ce-ext", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
    };
    CU_ASSERT_EQUAL_FATAL(e.n, JB_CASES_N(want));
    for (size_t i = 0; i < e.n; i++) {
        CU_ASSERT_STRING_EQUAL(e.names[i], want[i][0]);
        CU_ASSERT_STRING_EQUAL(e.values[i], want[i][1]);
    }
    /* Names that are not safe header names, and a content type that would split
     * the header, are refused before anything is emitted. */
    static const char *const bad1[] = {"bad name", "v", NULL};
    static const char *const bad2[] = {"datacontenttype", "a/b\r\nX-Evil: 1", NULL};
    const char *const *bads[] = {bad1, bad2};
    for (size_t i = 0; i < 2; i++) {
        jb_ce *b = t_mk(bads[i]);
        emitted e2 = {.n = 0};
        CU_ASSERT_EQUAL(jb_ce_to_http_binary(b, emit, &e2), JB_ERR_INVALID);
        CU_ASSERT_EQUAL(e2.n, 0);
        jb_ce_destroy(b);
    }
    jb_ce_destroy(ce);
}

static void test_any_mode(void)
{
    static const char single[] =
        "{\"specversion\":\"1.0\",\"id\":\"body\",\"source\":\"/s\",\"type\":\"t\"}";
    static const char batch[] = "[{\"specversion\":\"1.0\",\"id\":\"b1\",\"source\":\"/s\","
                                "\"type\":\"t\"},{\"id\":\"b2\"}]";
    jb_ce *pe = t_valid();
    jb_ce_set_str(pe, "id", "proto");
    uint8_t *pb, *pbb;
    size_t pbl, pbbl;
    jb_ce *two[2] = {pe, pe};
    CU_ASSERT_EQUAL_FATAL(jb_ce_to_protobuf(pe, &pb, &pbl), JB_OK);
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_protobuf(two, 2, &pbb, &pbbl), JB_OK);
    const struct {
        const char *ct; /* NULL: no Content-Type */
        const void *body;
        size_t len;
        jb_status st;
        jb_ce_http_mode mode;
        size_t n;
        const char *id; /* of the first event, or the error message */
    } cases[] = {
        {NULL, "x", 1, JB_OK, JB_CE_HTTP_BINARY, 1, "hdr"},
        {"text/plain", "x", 1, JB_OK, JB_CE_HTTP_BINARY, 1, "hdr"},
        /* Structured: the ce- header is ignored, the body wins. */
        {"application/cloudevents+json; charset=utf-8", single, sizeof(single) - 1, JB_OK,
         JB_CE_HTTP_STRUCTURED_JSON, 1, "body"},
        {"application/cloudevents-batch+json", batch, sizeof(batch) - 1, JB_OK,
         JB_CE_HTTP_BATCH_JSON, 2, "b1"},
        {"application/cloudevents-batch+json", "[]", 2, JB_OK, JB_CE_HTTP_BATCH_JSON, 0, NULL},
        {"application/cloudevents+protobuf", pb, pbl, JB_OK, JB_CE_HTTP_STRUCTURED_PROTOBUF, 1,
         "proto"},
        {"application/cloudevents-batch+protobuf", pbb, pbbl, JB_OK, JB_CE_HTTP_BATCH_PROTOBUF, 2,
         "proto"},
        {"application/cloudevents+avro", "x", 1, JB_ERR_UNSUPPORTED, 0, 0,
         "content type application/cloudevents+avro: not supported"},
        {"application/cloudevents+json", "{", 1, JB_ERR_INVALID, 0, 0, "invalid JSON at byte 0"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce_header h[3] = {H("ce-id", "hdr"), H("ce-type", "t"), H("Content-Type", "")};
        size_t nh = 2;
        if (cases[i].ct != NULL) {
            h[2].value = cases[i].ct;
            h[2].value_len = strlen(cases[i].ct);
            nh = 3;
        }
        jb_ce **ces = NULL;
        size_t n = 99;
        jb_ce_http_mode mode = JB_CE_HTTP_UNSUPPORTED;
        jb_err err = {{0}};
        jb_status st = jb_ce_from_http(h, nh, cases[i].body, cases[i].len, &ces, &n, &mode, &err);
        CU_ASSERT_EQUAL(st, cases[i].st);
        if (st != JB_OK) {
            if (strcmp(err.msg, cases[i].id) != 0)
                printf("\n  case %zu: got \"%s\"", i, err.msg);
            CU_ASSERT_STRING_EQUAL(err.msg, cases[i].id);
            CU_ASSERT_EQUAL(n, 99);
            continue;
        }
        CU_ASSERT_EQUAL(mode, cases[i].mode);
        CU_ASSERT_EQUAL(n, cases[i].n);
        if (n > 0 && cases[i].id != NULL)
            CU_ASSERT_STRING_EQUAL(jb_ce_get(ces[0], "id", NULL), cases[i].id);
        jb_ce_batch_free(ces, n);
    }
    free(pb);
    free(pbb);
    jb_ce_destroy(pe);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"mode detection (batch first, parameters, case)", test_detect},
        {"percent-encoding on write (and back)", test_pct_encode},
        {"header value decoding: quoted-string, one round, UTF-8", test_header_decode},
        {"binary decode: case-insensitive ce- headers, Content-Type", test_binary_decode},
        {"binary decode: data kind from the content type", test_binary_decode_kinds},
        {"binary decode: duplicates, bad values, limits", test_binary_decode_errors},
        {"binary encode: headers, percent-encoding, unsafe input", test_binary_encode},
        {"any mode: binary, structured, batch; JSON and protobuf", test_any_mode},
    };
    return jb_cunit_main("proto_http", NULL, NULL, cases, JB_CASES_N(cases));
}

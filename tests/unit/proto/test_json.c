/* proto/: JSON event format, structured and batch. */
#include <stdio.h>

#include "ce_test_util.h"

#define REQ "\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\""

static const char *const base_kv[] = {"specversion", "1.0",  "id", "1", "source",
                                      "/s",          "type", "t",  NULL};

static void test_decode(void)
{
    static const char *const with_ct_json[] = {
        "specversion",      "1.0", "id", "1", "source", "/s", "type", "t", "datacontenttype",
        "application/json", NULL};
    static const char *const with_ct_text[] = {"specversion",     "1.0",        "id",   "1",
                                               "source",          "/s",         "type", "t",
                                               "datacontenttype", "text/plain", NULL};
    static const char *const with_ct_bin[] = {"specversion",
                                              "1.0",
                                              "id",
                                              "1",
                                              "source",
                                              "/s",
                                              "type",
                                              "t",
                                              "datacontenttype",
                                              "application/octet-stream",
                                              NULL};
    static const char *const exts[] = {
        "specversion", "1.0",         "id",   "1",    "source", "/s",    "type", "t",   "num", "42",
        "neg",         "-2147483648", "flag", "true", "off",    "false", "euro", "€ 😀", NULL};
    static const struct {
        const char *json;
        const char *const *kv;
        const char *data;
        size_t data_len;
        jb_ce_data_kind kind;
    } cases[] = {
        /* JSON data is kept verbatim, inner whitespace and number precision included. */
        {"{" REQ ",\"datacontenttype\":\"application/json\",\"data\": {\"n\": 12345678901234567890 "
         ", \"s\":\"\\u20ac\"} }",
         with_ct_json, "{\"n\": 12345678901234567890 , \"s\":\"\\u20ac\"}", 0, JB_CE_DATA_JSON},
        /* Absent datacontenttype counts as JSON: a string stays a JSON string. */
        {"{" REQ ",\"data\":\"hello\"}", base_kv, "\"hello\"", 0, JB_CE_DATA_JSON},
        {"{" REQ ",\"datacontenttype\":\"text/plain\",\"data\":\"h\\u00e9llo\\n\"}", with_ct_text,
         "h\xc3\xa9llo\n", 0, JB_CE_DATA_TEXT},
        {"{" REQ ",\"datacontenttype\":\"application/octet-stream\",\"data_base64\":\"AAEAAg==\"}",
         with_ct_bin, "\0\1\0\2", 4, JB_CE_DATA_BINARY},
        /* null means unset, for attributes and data alike. */
        {"{" REQ ",\"subject\":null,\"data\":null,\"data_base64\":null}", base_kv, NULL, 0,
         JB_CE_DATA_NONE},
        {"{" REQ ",\"num\":42,\"neg\":-2147483648,\"flag\":true,\"off\":false,"
         "\"euro\":\"\\u20ac \\ud83d\\ude00\"}",
         exts, NULL, 0, JB_CE_DATA_NONE},
        {" \n{" REQ ",\"data\":[1,2,{\"a\":\"]}\"}]} \n", base_kv, "[1,2,{\"a\":\"]}\"}]", 0,
         JB_CE_DATA_JSON},
        {"{" REQ ",\"data\":0}", base_kv, "0", 0, JB_CE_DATA_JSON},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        jb_status st = jb_ce_from_json(cases[i].json, strlen(cases[i].json), &ce, &err);
        CU_ASSERT_EQUAL(st, JB_OK);
        if (st != JB_OK) {
            printf("\n  case %zu: %s", i, err.msg);
            continue;
        }
        CU_ASSERT(t_has(ce, cases[i].kv));
        size_t dl = cases[i].data == NULL
                        ? 0
                        : (cases[i].data_len ? cases[i].data_len : strlen(cases[i].data));
        CU_ASSERT(t_data_is(ce, cases[i].data, dl));
        CU_ASSERT_EQUAL(jb_ce_data_kind_of(ce), cases[i].kind);
        jb_ce_destroy(ce);
    }
}

static void test_decode_errors(void)
{
    static char big[JB_CE_MAX_ATTR_VALUE + 64];
    static char many[4096];
    int off = snprintf(big, sizeof(big), "{\"x\":\"");
    memset(big + off, 'a', JB_CE_MAX_ATTR_VALUE + 1);
    memcpy(big + off + JB_CE_MAX_ATTR_VALUE + 1, "\"}", 3);
    size_t m = (size_t)snprintf(many, sizeof(many), "{");
    for (int i = 0; i <= JB_CE_MAX_ATTRS; i++)
        m += (size_t)snprintf(many + m, sizeof(many) - m, "%s\"x%d\":\"v\"", i ? "," : "", i);
    snprintf(many + m, sizeof(many) - m, "}");
    static const struct {
        const char *json;
        const char *err;
    } cases[] = {
        {"", "invalid JSON: empty body"},
        {"{\"id\":", "invalid JSON at byte 5"},
        {"{\"id\":\"1\"} x", "invalid JSON: trailing bytes at byte 10"},
        {"[]", "event: MUST be a JSON object"},
        {"\"str\"", "event: MUST be a JSON object"},
        {"{" REQ ",\"data\":1,\"data_base64\":\"AA==\"}",
         "data: MUST NOT be present with data_base64"},
        {"{" REQ ",\"data_base64\":\"AA=\"}", "data_base64: MUST be a base64 string"},
        {"{" REQ ",\"data_base64\":5}", "data_base64: MUST be a base64 string"},
        {"{" REQ ",\"x\":1.5}", "x: MUST be a string, a boolean or an integer"},
        {"{" REQ ",\"x\":2147483648}", "x: MUST be a string, a boolean or an integer"},
        {"{" REQ ",\"x\":{}}", "x: MUST be a string, a boolean or an integer"},
        {"{" REQ ",\"x\":[\"a\"]}", "x: MUST be a string, a boolean or an integer"},
        {"{" REQ ",\"id\":\"2\"}", "id: duplicate attribute"},
        {"{" REQ ",\"data\":1,\"data\":2}", "data: duplicate member"},
        {"{" REQ ",\"x\":\"a\\u0000b\"}", "x: MUST NOT contain U+0000"},
        {"{" REQ ",\"da\\u0000ta\":\"x\"}", "member names MUST NOT contain U+0000"},
        {"{" REQ ",\"datacontenttype\":\"text/plain\",\"data\":\"a\\u0000\"}",
         "data: MUST NOT contain U+0000"},
        {"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"v\"}",
         "attribute name longer than 64 bytes"},
        {big, "x: value longer than 4096 bytes"},
        {"{" REQ ",\"x\":\"\xc0\xa0\"}", "x: MUST be valid UTF-8"},
        /* cJSON reads a bad \u escape as U+0000 and cuts the string (fuzzer find). */
        {"{\"x\":\"ab \\ud8\\ud3de00\"}", "invalid JSON: bad \\u escape at byte 9"},
        {"{\"x\":\"\\u12\"}", "invalid JSON at byte 6"}, /* cJSON catches this one */
        {"{\"data\":\"\\uzzzz\"}", "invalid JSON: bad \\u escape at byte 9"},
        /* cJSON reads control bytes as whitespace; JSON does not. */
        {"{" REQ ",\"x\":\"a\x01b\"}", "invalid JSON: control character at byte 61"},
        {"\x01{" REQ "}", "invalid JSON: control character at byte 0"},
        {many, "too many attributes (at most 64)"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = NULL;
        jb_err err = {{0}};
        jb_status st = jb_ce_from_json(cases[i].json, strlen(cases[i].json), &ce, &err);
        CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(ce);
        if (strcmp(err.msg, cases[i].err) != 0)
            printf("\n  case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].err);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        jb_ce_destroy(ce);
    }
}

static void test_encode(void)
{
    static const char *const ct_text[] = {"id", "1", "datacontenttype", "text/plain", NULL};
    static const char *const ct_json[] = {"id", "1", "datacontenttype", "application/json", NULL};
    static const char *const ct_bin[] = {"id", "1", "datacontenttype", "application/octet-stream",
                                         NULL};
    static const char *const esc[] = {"x", "q\"b\\n\n\x01€", NULL};
    static const struct {
        const char *const *kv;
        jb_ce_data_kind kind;
        const char *data;
        size_t len;
        const char *want;
    } cases[] = {
        {base_kv, JB_CE_DATA_NONE, NULL, 0, "{" REQ "}"},
        {esc, JB_CE_DATA_NONE, NULL, 0, "{\"x\":\"q\\\"b\\\\n\\n\\u0001€\"}"},
        {ct_json, JB_CE_DATA_JSON, "{ \"a\" : 1 }", 11,
         "{\"id\":\"1\",\"datacontenttype\":\"application/json\",\"data\":{ \"a\" : 1 }}"},
        {ct_text, JB_CE_DATA_TEXT, "hi\n", 3,
         "{\"id\":\"1\",\"datacontenttype\":\"text/plain\",\"data\":\"hi\\n\"}"},
        {ct_bin, JB_CE_DATA_BINARY, "\0\1", 2,
         "{\"id\":\"1\",\"datacontenttype\":\"application/"
         "octet-stream\",\"data_base64\":\"AAE=\"}"},
        /* Text under a JSON type that is not JSON text: base64 keeps the bytes. */
        {ct_json, JB_CE_DATA_TEXT, "hi", 2,
         "{\"id\":\"1\",\"datacontenttype\":\"application/json\",\"data_base64\":\"aGk=\"}"},
        /* JSON kind that is not valid JSON (an HTTP body that lied): base64. */
        {ct_json, JB_CE_DATA_JSON, "{oops", 5,
         "{\"id\":\"1\",\"datacontenttype\":\"application/json\",\"data_base64\":\"e29vcHM=\"}"},
        /* JSON data with an escape cJSON would misread: base64 keeps the bytes. */
        {ct_json, JB_CE_DATA_JSON, "\"\\u00zz\"", 8,
         "{\"id\":\"1\",\"datacontenttype\":\"application/"
         "json\",\"data_base64\":\"Ilx1MDB6eiI=\"}"},
        /* JSON after zero bytes: cJSON skips them as whitespace, JSON does not
         * (fuzzer find): base64 keeps the bytes. */
        {ct_json, JB_CE_DATA_JSON, "\0\0[1]", 5,
         "{\"id\":\"1\",\"datacontenttype\":\"application/json\",\"data_base64\":\"AABbMV0=\"}"},
        /* Text with a zero byte cannot be a JSON string. */
        {ct_text, JB_CE_DATA_TEXT, "a\0", 2,
         "{\"id\":\"1\",\"datacontenttype\":\"text/plain\",\"data_base64\":\"YQA=\"}"},
        {NULL, JB_CE_DATA_JSON, "[1]", 3, "{\"data\":[1]}"},
        /* Empty text (a NULL data pointer) once passed NULL to memchr (fuzzer find). */
        {ct_text, JB_CE_DATA_TEXT, NULL, 0,
         "{\"id\":\"1\",\"datacontenttype\":\"text/plain\",\"data\":\"\"}"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = t_mk(cases[i].kv);
        if (cases[i].kind != JB_CE_DATA_NONE)
            jb_ce_set_data(ce, cases[i].kind, cases[i].data, cases[i].len);
        char *out;
        size_t len;
        CU_ASSERT_EQUAL_FATAL(jb_ce_to_json(ce, &out, &len), JB_OK);
        if (strcmp(out, cases[i].want) != 0)
            printf("\n  case %zu: got %s", i, out);
        CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        CU_ASSERT_EQUAL(len, strlen(out));
        /* Decoding gives the same event back. */
        jb_ce *back = NULL;
        jb_err err;
        CU_ASSERT_EQUAL(jb_ce_from_json(out, len, &back, &err), JB_OK);
        CU_ASSERT(back != NULL && jb_ce_equal(ce, back));
        jb_ce_destroy(back);
        free(out);
        jb_ce_destroy(ce);
    }
}

static void test_batch(void)
{
    const char *json = "[{" REQ "}, {" REQ ",\"datacontenttype\":\"text/plain\",\"data\":\"x\"}]";
    jb_ce **ces = NULL;
    size_t n = 0;
    jb_err err;
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_from_json(json, strlen(json), &ces, &n, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT(t_has(ces[0], base_kv));
    CU_ASSERT(t_data_is(ces[1], "x", 1));
    CU_ASSERT_EQUAL(jb_ce_data_kind_of(ces[1]), JB_CE_DATA_TEXT);
    char *out;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_to_json(ces, n, &out, &len), JB_OK);
    jb_ce **back = NULL;
    size_t bn = 0;
    CU_ASSERT_EQUAL_FATAL(jb_ce_batch_from_json(out, len, &back, &bn, &err), JB_OK);
    CU_ASSERT_EQUAL_FATAL(bn, 2);
    CU_ASSERT(jb_ce_equal(back[0], ces[0]) && jb_ce_equal(back[1], ces[1]));
    free(out);
    jb_ce_batch_free(back, bn);
    jb_ce_batch_free(ces, n);

    CU_ASSERT_EQUAL(jb_ce_batch_from_json(" [ ] ", 5, &ces, &n, &err), JB_OK);
    CU_ASSERT_EQUAL(n, 0);
    jb_ce_batch_free(ces, n);
    CU_ASSERT_EQUAL(jb_ce_batch_to_json(NULL, 0, &out, &len), JB_OK);
    CU_ASSERT_STRING_EQUAL(out, "[]");
    free(out);
}

static void test_batch_errors(void)
{
    static char big[(JB_CE_MAX_BATCH + 1) * 3 + 8];
    size_t m = 0;
    big[m++] = '[';
    for (int i = 0; i <= JB_CE_MAX_BATCH; i++) {
        if (i > 0)
            big[m++] = ',';
        big[m++] = '{';
        big[m++] = '}';
    }
    big[m++] = ']';
    big[m] = '\0';
    static const struct {
        const char *json;
        const char *err;
    } cases[] = {
        {"{" REQ "}", "batch: MUST be a JSON array"},
        {"[{" REQ "}, 3]", "batch[1]: event: MUST be a JSON object"},
        {"[{" REQ "}, {\"x\":1.5}]", "batch[1]: x: MUST be a string, a boolean or an integer"},
        {"[{}", "invalid JSON at byte 2"},
        {big, "batch: more than 1000 events"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce **ces = NULL;
        size_t n = 77;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(jb_ce_batch_from_json(cases[i].json, strlen(cases[i].json), &ces, &n, &err),
                        JB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(ces);
        CU_ASSERT_EQUAL(n, 77); /* out-params untouched on failure */
        if (strcmp(err.msg, cases[i].err) != 0)
            printf("\n  case %zu: got \"%s\"", i, err.msg);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
    }
    /* Exactly the limit is fine. */
    big[m - 4] = ']';
    big[m - 3] = '\0';
    jb_ce **ces = NULL;
    size_t n = 0;
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_batch_from_json(big, strlen(big), &ces, &n, &err), JB_OK);
    CU_ASSERT_EQUAL(n, JB_CE_MAX_BATCH);
    jb_ce_batch_free(ces, n);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"decode: data vs data_base64, verbatim JSON, null, extensions", test_decode},
        {"decode: errors and limits name the member", test_decode_errors},
        {"encode: exact output, and it decodes back", test_encode},
        {"batch: decode, encode, empty", test_batch},
        {"batch: errors and the batch limit", test_batch_errors},
    };
    return jb_cunit_main("proto_json", NULL, NULL, cases, JB_CASES_N(cases));
}

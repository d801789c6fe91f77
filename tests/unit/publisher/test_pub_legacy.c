/* publisher/: legacy body parsing (DESIGN.md 2.2) and the prefixed copy. */
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"
#include "publisher/pub_internal.h"

#define OKBODY(extra)                                                                              \
    "{\"event-type\":\"order.created\",\"event-type-version\":\"v1\",\"event-time\":"              \
    "\"2020-04-02T21:37:00Z\",\"data\":{\"a\":1}" extra "}"

static void test_parse_errors(void)
{
    static const struct {
        const char *body;
        const char *type;  /* bad_payload_syntax / validation_violation */
        const char *field; /* for violations */
        bool missing;
    } cases[] = {
        {"", "bad_payload_syntax", NULL, false},
        {"   ", "bad_payload_syntax", NULL, false},
        {"{", "bad_payload_syntax", NULL, false},
        {"[1,2]", "bad_payload_syntax", NULL, false},
        {"{\"event-type\":1}", "bad_payload_syntax", NULL, false},
        {OKBODY("} trailing"), "bad_payload_syntax", NULL, false},
        {"{}", "validation_violation", "event-type", true},
        {"{\"event-type\":\"\"}", "validation_violation", "event-type", true},
        {"{\"event-type\":\"a\"}", "validation_violation", "event-type-version", true},
        {"{\"event-type\":\"a\",\"event-type-version\":\"v_1\"}", "validation_violation",
         "event-type-version", false},
        {"{\"event-type\":\"a\",\"event-type-version\":\"v1\"}", "validation_violation",
         "event-time", true},
        {"{\"event-type\":\"a\",\"event-type-version\":\"v1\",\"event-time\":\"2020-13-02\"}",
         "validation_violation", "event-time", false},
        {OKBODY(",\"event-id\":\"123\""), "validation_violation", "event-id", false},
        {"{\"event-type\":\"a\",\"event-type-version\":\"v1\",\"event-time\":"
         "\"2020-04-02T21:37:00Z\"}",
         "validation_violation", "data", true},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_pub_legacy lg;
        CU_ASSERT_EQUAL_FATAL(
            jb_pub_legacy_parse("app", 3, cases[i].body, strlen(cases[i].body), &lg), JB_OK);
        CU_ASSERT_EQUAL(lg.status, 400);
        CU_ASSERT_PTR_NULL(lg.ce);
        const char *b = lg.err_body ? lg.err_body : "";
        char want[128];
        snprintf(want, sizeof(want), "\"type\":\"%s\"", cases[i].type);
        CU_ASSERT_PTR_NOT_NULL(strstr(b, want));
        if (cases[i].field != NULL) {
            snprintf(want, sizeof(want), "{\"field\":\"%s\",\"type\":\"%s\"", cases[i].field,
                     cases[i].missing ? "missing_field" : "invalid_field");
            CU_ASSERT_PTR_NOT_NULL(strstr(b, want));
        }
        if (strstr(b, cases[i].type) == NULL)
            fprintf(stderr, "case %zu: %s\n", i, b);
        CU_ASSERT_EQUAL(strlen(b), lg.err_len);
        jb_pub_legacy_free(&lg);
    }
}

static void test_parse_ok(void)
{
    const char *body = OKBODY(",\"event-id\":\"8945EC08-256B-11EB-9928-ACDE48001122\",\"x\":[]");
    jb_pub_legacy lg;
    CU_ASSERT_EQUAL_FATAL(jb_pub_legacy_parse("my-app", 6, body, strlen(body), &lg), JB_OK);
    CU_ASSERT_EQUAL(lg.status, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lg.ce);
    CU_ASSERT_STRING_EQUAL(lg.id, "8945EC08-256B-11EB-9928-ACDE48001122");
    static const char *const want[][2] = {
        {"specversion", "1.0"},
        {"id", "8945EC08-256B-11EB-9928-ACDE48001122"},
        {"source", "my-app"},
        {"type", "order.created.v1"},
        {"eventtypeversion", "v1"},
        {"time", "2020-04-02T21:37:00Z"},
        {"datacontenttype", "application/json"},
    };
    for (size_t i = 0; i < JB_CASES_N(want); i++) {
        const char *v = jb_ce_get(lg.ce, want[i][0], NULL);
        CU_ASSERT_STRING_EQUAL(v ? v : "", want[i][1]);
    }
    size_t dl = 0;
    const uint8_t *d = jb_ce_data(lg.ce, &dl);
    CU_ASSERT_EQUAL(dl, 7);
    CU_ASSERT_NSTRING_EQUAL(d, "{\"a\":1}", 7);
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_ce_validate(lg.ce, &err), JB_OK);
    jb_pub_legacy_free(&lg);

    /* No id: a new UUID v4. */
    const char *noid = OKBODY("");
    CU_ASSERT_EQUAL_FATAL(jb_pub_legacy_parse("a", 1, noid, strlen(noid), &lg), JB_OK);
    CU_ASSERT_TRUE(jb_uuid_valid(lg.id, strlen(lg.id)));
    CU_ASSERT_EQUAL(lg.id[14], '4');
    jb_pub_legacy_free(&lg);
}

static void test_prefixed_copy(void)
{
    static const struct {
        const char *prefix, *app, *etype, *version, *want_type;
    } cases[] = {
        {"pre1.pre2.pre3", "no-app", "too.many.dots.object.do", "v1",
         "pre1.pre2.pre3.noapp.toomanydotsobject.do.v1"},
        {"sap.kyma.custom", "myapp", "order.created", "v1",
         "sap.kyma.custom.myapp.order.created.v1"},
        {"sap.kyma.custom", "my.app", "order.created", "v2",
         "sap.kyma.custom.myapp.order.created.v2"},
        /* Kyma's legacy path never applies the four-part rule (section 2.2). */
        {"sap.kyma.custom", "myapp", "created", "v1", "sap.kyma.custom.myapp.created.v1"},
        {"sap.kyma.custom", "myapp", "someType", "v0", "sap.kyma.custom.myapp.someType.v0"},
        {"sap.kyma.custom", "---", "order.created", "v1", NULL}, /* app cleans to nothing */
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"event-type\":\"%s\",\"event-type-version\":\"%s\",\"event-time\":"
                 "\"2020-04-02T21:37:00Z\",\"data\":1}",
                 cases[i].etype, cases[i].version);
        jb_pub_legacy lg;
        CU_ASSERT_EQUAL_FATAL(
            jb_pub_legacy_parse(cases[i].app, strlen(cases[i].app), body, strlen(body), &lg),
            JB_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(lg.ce);
        jb_pub_names n = {cases[i].prefix, "kyma", "kyma"};
        jb_ce *copy = NULL;
        char *subj = NULL;
        jb_err err = {{0}};
        jb_status rc = jb_pub_legacy_prefixed_copy(&n, lg.ce, cases[i].app, strlen(cases[i].app),
                                                   &copy, &subj, &err);
        if (cases[i].want_type == NULL) {
            CU_ASSERT_EQUAL(rc, JB_ERR_INVALID);
        } else {
            CU_ASSERT_EQUAL_FATAL(rc, JB_OK);
            CU_ASSERT_STRING_EQUAL(jb_ce_get(copy, "type", NULL), cases[i].want_type);
            CU_ASSERT_STRING_EQUAL(jb_ce_get(copy, "source", NULL), "kyma");
            CU_ASSERT_STRING_EQUAL(jb_ce_get(copy, "id", NULL), lg.id);
            char want_subj[256];
            snprintf(want_subj, sizeof(want_subj), "kyma.%s", cases[i].want_type);
            CU_ASSERT_STRING_EQUAL(subj, want_subj);
        }
        free(subj);
        jb_ce_destroy(copy);
        jb_pub_legacy_free(&lg);
    }
    /* An empty EVENT_TYPE_PREFIX means no second copy. */
    jb_pub_legacy lg;
    const char *b = OKBODY("");
    CU_ASSERT_EQUAL_FATAL(jb_pub_legacy_parse("a", 1, b, strlen(b), &lg), JB_OK);
    jb_pub_names n = {"", "kyma", "kyma"};
    jb_ce *copy = NULL;
    char *subj = NULL;
    CU_ASSERT_EQUAL(jb_pub_legacy_prefixed_copy(&n, lg.ce, "a", 1, &copy, &subj, NULL),
                    JB_ERR_NOT_FOUND);
    jb_pub_legacy_free(&lg);
}

static void test_json_escape(void)
{
    char *e = jb_pub_json_escape("a\"b\\c\n\x01", 7);
    CU_ASSERT_STRING_EQUAL(e, "a\\\"b\\\\c\\u000a\\u0001");
    free(e);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"legacy errors in Kyma's order and shape", test_parse_errors},
        {"legacy event attributes and data", test_parse_ok},
        {"legacy prefixed copy", test_prefixed_copy},
        {"JSON escaping", test_json_escape},
    };
    return jb_cunit_main("unit_publisher_legacy", NULL, NULL, cases, JB_CASES_N(cases));
}

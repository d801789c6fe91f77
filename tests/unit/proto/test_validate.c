/* proto/: validation against CloudEvents 1.0 and its helpers (RFC 3339, RFC 3986). */
#include <stdio.h>

#include "ce_test_util.h"
#include "proto/ce_internal.h"

static void test_validate_messages(void)
{
    /* Each case starts from a valid event, then sets (value != NULL) or unsets. */
    static const struct {
        const char *name;
        const char *value;
        const char *err; /* NULL: still valid */
    } cases[] = {
        {"id", NULL, "id: MUST be a non-empty string"},
        {"id", "", "id: MUST be a non-empty string"},
        {"source", NULL, "source: MUST be a non-empty string"},
        {"source", "", "source: MUST be a non-empty string"},
        /* How strict a source must be is the publisher's policy (Kyma's lenient
         * rule, jb_sub_source_valid), not the codec's. */
        {"source", "s>o>*u*r>c.e", NULL},
        {"source", "my app", NULL},
        {"source", "a\x1b[31m", "source: MUST NOT contain control characters"},
        {"source", "https://github.com/cloudevents", NULL},
        {"source", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", NULL},
        {"source", "/cloudevents/spec/pull/123", NULL},
        {"source", "my-app", NULL},
        {"source", "/sources/ünïcode", NULL},
        {"specversion", NULL, "specversion: MUST be \"1.0\""},
        {"specversion", "0.3", "specversion: MUST be \"1.0\""},
        {"specversion", "1.0 ", "specversion: MUST be \"1.0\""},
        {"type", NULL, "type: MUST be a non-empty string"},
        {"type", "", "type: MUST be a non-empty string"},
        {"time", "2018-04-05T17:31:00Z", NULL},
        {"time", "yesterday", "time: MUST be an RFC 3339 timestamp"},
        {"time", "2018-04-05 17:31:00Z", "time: MUST be an RFC 3339 timestamp"},
        {"dataschema", "https://example.com/schema.json", NULL},
        {"dataschema", "/relative/schema", "dataschema: MUST be an absolute URI"},
        {"dataschema", "", "dataschema: MUST be an absolute URI"},
        {"datacontenttype", "", "datacontenttype: MUST be a non-empty string"},
        {"datacontenttype", "application/json", NULL},
        {"datacontenttype", "text/plain; charset=utf-8", NULL},
        {"datacontenttype", "text/plain ",
         "datacontenttype: MUST NOT begin or end with whitespace"},
        {"datacontenttype", "\ttext/plain",
         "datacontenttype: MUST NOT begin or end with whitespace"},
        {"subject", "", "subject: MUST be a non-empty string"},
        {"subject", "mynewfile.jpg", NULL},
        {"comexampleextension1", "value", NULL},
        {"x", "", NULL}, /* an empty extension value is allowed */
        {"a23456789012345678901", "v",
         "a23456789012345678901: attribute names MUST be 1 to 20 lower-case letters or digits"},
        {"Upper", "v", "Upper: attribute names MUST be 1 to 20 lower-case letters or digits"},
        {"with_underscore", "v",
         "with_underscore: attribute names MUST be 1 to 20 lower-case letters or digits"},
        {"data", "v", "data: MUST NOT be used as an attribute name"},
        {"ext", "line\nbreak", "ext: MUST NOT contain control characters"},
        {"ext", "nul\x01", "ext: MUST NOT contain control characters"},
        {"ext", "del\x7f", "ext: MUST NOT contain control characters"},
        {"ext", "c1\xc2\x85", "ext: MUST NOT contain control characters"},
        /* After whole printable eight-byte words, and at every place in one. */
        {"ext", "0123456789abcdef\x1f", "ext: MUST NOT contain control characters"},
        {"ext", "01234567\x7f", "ext: MUST NOT contain control characters"},
        {"ext", "0123456789abcdef\xc2\x9f", "ext: MUST NOT contain control characters"},
        {"ext",
         "0123\x01"
         "567",
         "ext: MUST NOT contain control characters"},
        {"ext", "0123456789abcdef ~!", NULL},
        {"ext", "01234567ü9abcdefgh", NULL},
        {"ext", "bad\xc0\xa0utf8", "ext: MUST be valid UTF-8"},
        {"ext", "Euro € 😀", NULL},
        {"type", "tab\there", "type: MUST NOT contain control characters"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_ce *ce = t_valid();
        if (cases[i].value == NULL)
            jb_ce_unset(ce, cases[i].name);
        else
            CU_ASSERT_EQUAL_FATAL(jb_ce_set_str(ce, cases[i].name, cases[i].value), JB_OK);
        jb_err err = {{0}};
        jb_status st = jb_ce_validate(ce, &err);
        if (cases[i].err == NULL) {
            if (st != JB_OK)
                printf("\n  case %zu: unexpected \"%s\"", i, err.msg);
            CU_ASSERT_EQUAL(st, JB_OK);
        } else {
            CU_ASSERT_EQUAL(st, JB_ERR_INVALID);
            if (strcmp(err.msg, cases[i].err) != 0)
                printf("\n  case %zu: got \"%s\"", i, err.msg);
            CU_ASSERT_STRING_EQUAL(err.msg, cases[i].err);
        }
        jb_ce_destroy(ce);
    }
}

static void test_validate_order_and_names(void)
{
    /* Required attributes are checked first, in the order id, source, specversion,
     * type; an unprintable name is shown safely. */
    jb_ce *ce = jb_ce_create();
    jb_err err;
    CU_ASSERT_EQUAL(jb_ce_validate(ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "id: MUST be a non-empty string");
    jb_ce_destroy(ce);
    ce = t_valid();
    CU_ASSERT_EQUAL(jb_ce_set_str(ce, "b\x01\xff", "v"), JB_OK);
    CU_ASSERT_EQUAL(jb_ce_validate(ce, &err), JB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "b??: attribute names MUST be 1 to 20 lower-case letters or digits");
    jb_ce_destroy(ce);
    /* A NULL err is allowed. */
    ce = jb_ce_create();
    CU_ASSERT_EQUAL(jb_ce_validate(ce, NULL), JB_ERR_INVALID);
    jb_ce_destroy(ce);
}

/* The parser itself is common/'s jb_rfc3339_parse (tests/unit/common/test_text.c);
 * validation answers with it. */
static void test_rfc3339(void)
{
    CU_ASSERT_TRUE(jb_ce_is_rfc3339("2018-04-05T19:31:00+02:00", 25));
    CU_ASSERT_FALSE(jb_ce_is_rfc3339("2019-02-29T00:00:00Z", 20));
    CU_ASSERT_FALSE(jb_ce_is_rfc3339(NULL, 0));
}

static void test_uri(void)
{
    static const struct {
        const char *s;
        bool ref, abs;
    } cases[] = {
        {"https://example.com/path?q=1#frag", true, true},
        {"http://[::1]:8080/x", true, true},
        {"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", true, true},
        {"mailto:a@b.c", true, true},
        {"/relative/path", true, false},
        {"relative", true, false},
        {"./a:b", true, false},
        {"//host/path", true, false},
        {"?query", true, false},
        {"#frag", true, false},
        {"%20encoded", true, false},
        {"a:b", true, true},
        {"1a:b", false, false}, /* a first segment with ':' must be a scheme */
        {"with space", false, false},
        {"bad%zz", false, false},
        {"bad%2", false, false},
        {"two#hash#es", false, false},
        {"/path/[x]", false, false},
        {"quote\"", false, false},
        {"back\\slash", false, false},
        {"ctl\x01", false, false},
        {"/ünïcode", true, false},
        {"", true, false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        size_t n = strlen(cases[i].s);
        bool r = jb_ce_is_uri_reference(cases[i].s, n);
        bool a = jb_ce_is_absolute_uri(cases[i].s, n);
        if (r != cases[i].ref || a != cases[i].abs)
            printf("\n  %s: ref %d abs %d", cases[i].s, r, a);
        CU_ASSERT_EQUAL(r, cases[i].ref);
        CU_ASSERT_EQUAL(a, cases[i].abs);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"messages name the attribute", test_validate_messages},
        {"required order, unprintable names, NULL err", test_validate_order_and_names},
        {"RFC 3339 validity", test_rfc3339},
        {"RFC 3986 URI reference and absolute URI", test_uri},
    };
    return jb_cunit_main("proto_validate", NULL, NULL, cases, JB_CASES_N(cases));
}

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

static void test_rfc3339(void)
{
    static const struct {
        const char *s;
        bool ok;
        int64_t secs;
        int32_t nanos;
    } cases[] = {
        {"1970-01-01T00:00:00Z", true, 0, 0},
        {"2018-04-05T17:31:00Z", true, 1522949460, 0},
        {"2018-04-05t17:31:00z", true, 1522949460, 0},
        {"2018-04-05T19:31:00+02:00", true, 1522949460, 0},
        {"2018-04-05T12:01:00-05:30", true, 1522949460, 0},
        {"2020-02-29T00:00:00.5Z", true, 1582934400, 500000000},
        {"2020-02-29T00:00:00.123456789Z", true, 1582934400, 123456789},
        {"2020-02-29T00:00:00.1234567891Z", true, 1582934400, 123456789},
        {"1969-12-31T23:59:59.999Z", true, -1, 999000000},
        {"0001-01-01T00:00:00Z", true, -62135596800LL, 0},
        {"9999-12-31T23:59:59Z", true, 253402300799LL, 0},
        {"2019-02-29T00:00:00Z", false, 0, 0},
        {"2018-13-01T00:00:00Z", false, 0, 0},
        {"2018-04-31T00:00:00Z", false, 0, 0},
        {"2018-04-05T24:00:00Z", false, 0, 0},
        {"2018-04-05T23:60:00Z", false, 0, 0},
        {"2016-12-31T23:59:60Z", false, 0, 0}, /* leap second: rejected, as Go does */
        {"2018-04-05T17:31:00", false, 0, 0},
        {"2018-04-05T17:31:00.Z", false, 0, 0},
        {"2018-04-05T17:31:00+0200", false, 0, 0},
        {"2018-04-05T17:31:00+24:00", false, 0, 0},
        {"2018-04-05T17:31Z", false, 0, 0},
        {"0000-01-01T00:00:00Z", false, 0, 0},
        {"2018-4-05T17:31:00Z", false, 0, 0},
        {"2018-04-05T17:31:00Zjunk", false, 0, 0},
        {"", false, 0, 0},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        int64_t secs = 0;
        int32_t nanos = 0;
        bool ok = jb_ce_time_parse(cases[i].s, strlen(cases[i].s), &secs, &nanos);
        if (ok != cases[i].ok)
            printf("\n  %s: %d", cases[i].s, ok);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        CU_ASSERT_EQUAL(jb_ce_is_rfc3339(cases[i].s, strlen(cases[i].s)), cases[i].ok);
        if (ok && cases[i].ok) {
            CU_ASSERT_EQUAL(secs, cases[i].secs);
            CU_ASSERT_EQUAL(nanos, cases[i].nanos);
        }
    }
}

static void test_time_format(void)
{
    static const struct {
        int64_t secs;
        int32_t nanos;
        const char *want; /* NULL: out of range */
    } cases[] = {
        {0, 0, "1970-01-01T00:00:00Z"},
        {1522949460, 0, "2018-04-05T17:31:00Z"},
        {1582934400, 500000000, "2020-02-29T00:00:00.5Z"},
        {1582934400, 123456789, "2020-02-29T00:00:00.123456789Z"},
        {1582934400, 120, "2020-02-29T00:00:00.00000012Z"},
        {-1, 999000000, "1969-12-31T23:59:59.999Z"},
        {-62135596800LL, 0, "0001-01-01T00:00:00Z"},
        {253402300799LL, 999999999, "9999-12-31T23:59:59.999999999Z"},
        {-62135596801LL, 0, NULL},
        {253402300800LL, 0, NULL},
        {0, -1, NULL},
        {0, 1000000000, NULL},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char out[40];
        size_t n = jb_ce_time_format(cases[i].secs, cases[i].nanos, out);
        if (cases[i].want == NULL) {
            CU_ASSERT_EQUAL(n, 0);
            continue;
        }
        CU_ASSERT_EQUAL(n, strlen(cases[i].want));
        CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        int64_t s;
        int32_t ns;
        CU_ASSERT(jb_ce_time_parse(out, n, &s, &ns) && s == cases[i].secs && ns == cases[i].nanos);
    }
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
        {"RFC 3339 parsing to seconds and nanos", test_rfc3339},
        {"canonical RFC 3339 formatting", test_time_format},
        {"RFC 3986 URI reference and absolute URI", test_uri},
    };
    return jb_cunit_main("proto_validate", NULL, NULL, cases, JB_CASES_N(cases));
}

/* common/jb_text.h: the one integer parser, RFC 3339 helper and JSON escaper. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_text.h"
#include "jb_cunit.h"

static void test_parse_int(void)
{
    static const struct {
        const char *s;
        int64_t min, max, want;
        bool ok;
    } cases[] = {
        {"0", 0, 10, 0, true},
        {"10", 0, 10, 10, true},
        {"11", 0, 10, 0, false},
        {"-1", -1, 10, -1, true},
        {"-2", -1, 10, 0, false},
        {"+7", 0, 10, 7, true},
        {"007", 0, 10, 7, true},
        {"", 0, 10, 0, false},
        {"-", -10, 10, 0, false},
        {"+", 0, 10, 0, false},
        {" 1", 0, 10, 0, false},
        {"1 ", 0, 10, 0, false},
        {"1a", 0, 10, 0, false},
        {"0x10", 0, 100, 0, false},
        {"1e3", 0, 10000, 0, false},
        {"9223372036854775807", 0, INT64_MAX, INT64_MAX, true},
        {"9223372036854775808", 0, INT64_MAX, 0, false},
        {"-9223372036854775808", INT64_MIN, 0, INT64_MIN, true},
        {"-9223372036854775809", INT64_MIN, 0, 0, false},
        {"99999999999999999999999", 0, INT64_MAX, 0, false},
        {"65535", 1, 65535, 65535, true},
        {"65536", 1, 65535, 0, false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        int64_t v = 42;
        bool ok = jb_parse_int(cases[i].s, strlen(cases[i].s), cases[i].min, cases[i].max, &v);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        CU_ASSERT_EQUAL(v, ok ? cases[i].want : 42); /* untouched on failure */
        if (ok != cases[i].ok || (ok && v != cases[i].want))
            fprintf(stderr, "int \"%s\": ok=%d v=%lld\n", cases[i].s, ok, (long long)v);
    }
    /* Length is honoured: the bytes after len are not read. */
    int64_t v = 0;
    CU_ASSERT_TRUE(jb_parse_int("12abc", 2, 0, 100, &v));
    CU_ASSERT_EQUAL(v, 12);
}

static void test_parse_uint(void)
{
    static const struct {
        const char *s;
        uint64_t max, want;
        bool ok;
    } cases[] = {
        {"0", 10, 0, true},
        {"10", 10, 10, true},
        {"11", 10, 0, false},
        {"5", 3, 0, false}, /* a digit above max */
        {"+1", 10, 0, false},
        {"-1", 10, 0, false},
        {"", 10, 0, false},
        {" 1", 10, 0, false},
        {"00000000000000000000000001", 10, 1, true},
        {"18446744073709551615", UINT64_MAX, UINT64_MAX, true},
        {"18446744073709551616", UINT64_MAX, 0, false},
        {"99999999999999999999", UINT64_MAX, 0, false},
        {"4294967295", UINT32_MAX, UINT32_MAX, true},
        {"4294967296", UINT32_MAX, 0, false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        uint64_t v = 42;
        bool ok = jb_parse_uint(cases[i].s, strlen(cases[i].s), cases[i].max, &v);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        CU_ASSERT_EQUAL(v, ok ? cases[i].want : 42);
        if (ok != cases[i].ok)
            fprintf(stderr, "uint \"%s\": ok=%d\n", cases[i].s, ok);
    }
    uint64_t v = 0;
    CU_ASSERT_FALSE(jb_parse_uint(NULL, 0, 10, &v));
    CU_ASSERT_TRUE(jb_parse_uint("7.5", 1, 10, &v)); /* only len bytes are read */
    CU_ASSERT_EQUAL(v, 7);
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
        bool ok = jb_rfc3339_parse(cases[i].s, strlen(cases[i].s), &secs, &nanos);
        if (ok != cases[i].ok)
            printf("\n  %s: %d", cases[i].s, ok);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
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
        size_t n = jb_rfc3339_format(cases[i].secs, cases[i].nanos, out);
        if (cases[i].want == NULL) {
            CU_ASSERT_EQUAL(n, 0);
            continue;
        }
        CU_ASSERT_EQUAL(n, strlen(cases[i].want));
        CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        int64_t s;
        int32_t ns;
        CU_ASSERT(jb_rfc3339_parse(out, n, &s, &ns) && s == cases[i].secs && ns == cases[i].nanos);
    }
}

static void test_json_escape(void)
{
    static const struct {
        const char *s;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain", 5, "plain"},
        {"", 0, ""},
        {"a\"b\\c", 5, "a\\\"b\\\\c"},
        {"\n\t\x01\x1f", 4, "\\u000a\\u0009\\u0001\\u001f"},
        {"nul\0x", 5, "nul\\u0000x"},
        {"\x7f\xc3\xa4/", 4, "\x7f\xc3\xa4/"}, /* DEL, UTF-8 and '/' as they are */
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *got = jb_json_escape(cases[i].s, cases[i].len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        /* Into a buffer: the whole length is returned, the text cut to fit. */
        char small[5];
        size_t n = jb_json_escape_into(small, sizeof(small), cases[i].s, cases[i].len);
        CU_ASSERT_EQUAL(n, strlen(cases[i].want));
        CU_ASSERT_EQUAL(strncmp(small, cases[i].want, sizeof(small) - 1), 0);
        CU_ASSERT_TRUE(strlen(small) < sizeof(small));
        free(got);
    }
    CU_ASSERT_EQUAL(jb_json_escape_into(NULL, 0, "\"", 1), 2); /* only measures */
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"parse_int: ranges, signs, overflow", test_parse_int},
        {"parse_uint: digits only, max, overflow", test_parse_uint},
        {"RFC 3339 parsing to seconds and nanos", test_rfc3339},
        {"canonical RFC 3339 formatting", test_time_format},
        {"JSON string escaping, whole and cut", test_json_escape},
    };
    return jb_cunit_main("text", NULL, NULL, cases, JB_CASES_N(cases));
}

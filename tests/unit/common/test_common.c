/* common/: status strings, UUIDs, hashing, decimal numbers. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

static void test_status_str_complete(void)
{
    for (int s = JB_OK; s <= JB_ERR_INTERNAL; s++) {
        const char *t = jb_status_str((jb_status)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_STRING_NOT_EQUAL(t, "unknown status");
    }
}

static void test_uuid(void)
{
    char a[37], b[37];
    jb_uuid_v4(a);
    jb_uuid_v4(b);
    CU_ASSERT_TRUE(jb_uuid_valid(a, strlen(a)));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(a[14], '4');
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"123e4567-e89b-12d3-a456-426614174000", true},
        {"123E4567-E89B-12D3-A456-426614174000", true},
        {"123e4567e89b12d3a456426614174000", false},
        {"123e4567-e89b-12d3-a456-42661417400", false},
        {"123e4567-e89b-12d3-a456-42661417400g", false},
        {"", false},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++)
        CU_ASSERT_EQUAL(jb_uuid_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok);
}

static void test_sha256(void)
{
    char h[65];
    const char *in = "test/test/kyma.commerce.order.created.v1";
    jb_sha256_hex(in, strlen(in), h);
    CU_ASSERT_NSTRING_EQUAL(h, "5ddf41966d8084724770dca95a2f7452", 32);
}

/* jb_dec_u64 / jb_dec_i64 write what printf writes, at the extremes too. */
static void test_decimal(void)
{
    static const uint64_t u[] = {0, 7, 10, 99, 100, 65535, 4294967296ULL, UINT64_MAX};
    static const int64_t s[] = {0, -1, 9, -10, 429, -2147483648LL, INT64_MAX, INT64_MIN};
    char got[JB_DEC_MAX], want[32];
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        snprintf(want, sizeof(want), "%" PRIu64, u[i]);
        CU_ASSERT_EQUAL(jb_dec_u64(got, u[i]), strlen(want));
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        snprintf(want, sizeof(want), "%" PRId64, s[i]);
        CU_ASSERT_EQUAL(jb_dec_i64(got, s[i]), strlen(want));
        CU_ASSERT_STRING_EQUAL(got, want);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"status strings are complete", test_status_str_complete},
        {"uuid v4 generation and validation", test_uuid},
        {"sha256 hex (consumer name example)", test_sha256},
        {"decimal numbers as printf writes them", test_decimal},
    };
    return jb_cunit_main("common", NULL, NULL, cases, JB_CASES_N(cases));
}

/* common/: status strings, UUIDs, hashing. */
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

int main(void)
{
    static const jb_test_case cases[] = {
        {"status strings are complete", test_status_str_complete},
        {"uuid v4 generation and validation", test_uuid},
        {"sha256 hex (consumer name example)", test_sha256},
    };
    return jb_cunit_main("common", NULL, NULL, cases, JB_CASES_N(cases));
}

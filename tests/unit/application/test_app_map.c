/* The registry's hash map: put, replace, get, delete, growth, keys with NUL bytes
 * and keys that are prefixes of each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "application/app_internal.h"
#include "jb_cunit.h"

static void test_basic(void)
{
    app_map m = {0};
    void *old = (void *)1;
    CU_ASSERT_PTR_NULL(app_map_get(&m, "a", 1));
    CU_ASSERT_PTR_NULL(app_map_del(&m, "a", 1));
    static int v1, v2, v3;
    CU_ASSERT_EQUAL(app_map_put(&m, "app", 3, &v1, &old), JB_OK);
    CU_ASSERT_PTR_NULL(old);
    CU_ASSERT_EQUAL(app_map_put(&m, "ap", 2, &v2, &old), JB_OK);
    CU_ASSERT_EQUAL(app_map_put(&m, "a\0p", 3, &v3, &old), JB_OK);
    CU_ASSERT_EQUAL(m.n, 3);
    CU_ASSERT_PTR_EQUAL(app_map_get(&m, "app", 3), &v1);
    CU_ASSERT_PTR_EQUAL(app_map_get(&m, "ap", 2), &v2);
    CU_ASSERT_PTR_EQUAL(app_map_get(&m, "a\0p", 3), &v3);
    CU_ASSERT_PTR_NULL(app_map_get(&m, "a", 1));
    CU_ASSERT_PTR_NULL(app_map_get(&m, "appx", 4));
    /* Replacing hands back the old value and keeps the count. */
    CU_ASSERT_EQUAL(app_map_put(&m, "app", 3, &v2, &old), JB_OK);
    CU_ASSERT_PTR_EQUAL(old, &v1);
    CU_ASSERT_EQUAL(m.n, 3);
    CU_ASSERT_PTR_EQUAL(app_map_del(&m, "app", 3), &v2);
    CU_ASSERT_PTR_NULL(app_map_get(&m, "app", 3));
    CU_ASSERT_EQUAL(m.n, 2);
    app_map_clear(&m, NULL);
    CU_ASSERT_EQUAL(m.n, 0);
    CU_ASSERT_PTR_NULL(app_map_get(&m, "ap", 2));
}

static void count_one(const char *key, void *val, void *ud)
{
    size_t *n = ud;
    if (strtoul(key, NULL, 10) == (unsigned long)(size_t)val)
        (*n)++;
}

/* Many keys: growth keeps every entry reachable; values freed by clear. */
static void test_growth(void)
{
    app_map m = {0};
    enum { N = 20000 };
    for (size_t i = 0; i < N; i++) {
        char k[24];
        int kl = snprintf(k, sizeof(k), "%zu", i);
        void *old = NULL;
        CU_ASSERT_EQUAL_FATAL(app_map_put(&m, k, (size_t)kl, (void *)i, &old), JB_OK);
    }
    CU_ASSERT_EQUAL(m.n, N);
    size_t ok = 0;
    app_map_each(&m, count_one, &ok);
    CU_ASSERT_EQUAL(ok, N);
    for (size_t i = 0; i < N; i += 2) {
        char k[24];
        int kl = snprintf(k, sizeof(k), "%zu", i);
        CU_ASSERT_PTR_EQUAL(app_map_del(&m, k, (size_t)kl), (void *)i);
    }
    CU_ASSERT_EQUAL(m.n, N / 2);
    CU_ASSERT_PTR_EQUAL(app_map_get(&m, "19999", 5), (void *)19999);
    CU_ASSERT_PTR_NULL(app_map_get(&m, "19998", 5));
    app_map_clear(&m, NULL);
    /* Owned values are freed by clear (LSan checks). */
    void *old = NULL;
    CU_ASSERT_EQUAL(app_map_put(&m, "x", 1, strdup("value"), &old), JB_OK);
    app_map_clear(&m, free);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"put, replace, get, delete", test_basic},
        {"growth and walking", test_growth},
    };
    return jb_cunit_main("app_map", NULL, NULL, cases, JB_CASES_N(cases));
}

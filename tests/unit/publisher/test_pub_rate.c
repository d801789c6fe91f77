/* publisher/: per-application token buckets (jetbridge.io/rate-limit). */
#include <stdio.h>
#include <string.h>

#include "jb_cunit.h"
#include "publisher/pub_rate.h"

#define SEC 1000000000LL

static int take(pub_rate *r, const char *name, double rate, uint32_t burst, size_t n, int64_t now,
                int *retry)
{
    return pub_rate_take(r, name, strlen(name), rate, burst, n, now, retry);
}

/* Table: a sequence of takes on one bucket and what each answers. */
static void test_bucket(void)
{
    static const struct {
        int64_t at_ms;
        size_t n;
        int code, retry;
    } steps[] = {
        {0, 4, 0, 0},     /* a new bucket starts full (burst 4) */
        {0, 1, 429, 1},   /* empty: at 2/s one token is 0.5 s away, Retry-After rounds up */
        {500, 1, 0, 0},   /* 0.5 s later one token is back */
        {500, 5, 413, 0}, /* more than the burst can never pass */
        {10000, 4, 0, 0}, /* refilled, but never above the burst */
        {10000, 1, 429, 1}, {10000, 3, 429, 2}, /* 3 tokens at 2/s: 1.5 s, rounded up */
    };
    pub_rate *r = pub_rate_create(8);
    CU_ASSERT_FATAL(r != NULL);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int retry = 0;
        int code = take(r, "app", 2.0, 4, steps[i].n, steps[i].at_ms * 1000000LL, &retry);
        CU_ASSERT_EQUAL(code, steps[i].code);
        if (code == 429)
            CU_ASSERT_EQUAL(retry, steps[i].retry);
    }
    pub_rate_destroy(r);
}

/* Many applications at once: each one's bucket is its own, whatever the others do,
 * as long as they fit in the table. */
static void test_many_apps_independent(void)
{
    enum { APPS = 4000 };
    pub_rate *r = pub_rate_create(PUB_RATE_BUCKETS_MAX);
    CU_ASSERT_FATAL(r != NULL);
    char name[32];
    int retry = 0;
    /* Every application spends its whole burst of 3, at the same instant. */
    for (int i = 0; i < APPS; i++) {
        snprintf(name, sizeof(name), "app-%d", i);
        CU_ASSERT_EQUAL(take(r, name, 1.0, 3, 3, SEC, &retry), 0);
    }
    CU_ASSERT_EQUAL(pub_rate_count(r), APPS);
    /* Each is now empty, and only that one: a fresh application still passes. */
    for (int i = 0; i < APPS; i += 7) {
        snprintf(name, sizeof(name), "app-%d", i);
        CU_ASSERT_EQUAL(take(r, name, 1.0, 3, 1, SEC, &retry), 429);
    }
    CU_ASSERT_EQUAL(take(r, "fresh", 1.0, 3, 3, SEC, &retry), 0);
    /* Names that differ only late, or in length, are different applications. */
    CU_ASSERT_EQUAL(take(r, "app-1x", 1.0, 3, 3, SEC, &retry), 0);
    CU_ASSERT_EQUAL(take(r, "app-", 1.0, 3, 3, SEC, &retry), 0);
    pub_rate_destroy(r);
}

/* Past the cap, the bucket used least recently goes (it was full again anyway);
 * the table never grows, and the busy application keeps its empty bucket. */
static void test_cap_evicts_least_recent(void)
{
    enum { CAP = 64 };
    pub_rate *r = pub_rate_create(CAP);
    CU_ASSERT_FATAL(r != NULL);
    char name[32];
    int retry = 0;
    CU_ASSERT_EQUAL(take(r, "busy", 1.0, 2, 2, SEC, &retry), 0);
    for (int i = 0; i < 10 * CAP; i++) {
        snprintf(name, sizeof(name), "passer-%d", i);
        CU_ASSERT_EQUAL(take(r, name, 1.0, 1, 1, SEC, &retry), 0);
        /* busy is used between the others, so it is never the least recent */
        if (i % (CAP / 2) == 0)
            CU_ASSERT_EQUAL(take(r, "busy", 1.0, 2, 1, SEC, &retry), 429);
        CU_ASSERT(pub_rate_count(r) <= CAP);
    }
    CU_ASSERT_EQUAL(pub_rate_count(r), CAP);
    /* The first passers were evicted: they come back with a full bucket. */
    CU_ASSERT_EQUAL(take(r, "passer-0", 1.0, 1, 1, SEC, &retry), 0);
    /* The last one is still there and still empty. */
    snprintf(name, sizeof(name), "passer-%d", 10 * CAP - 1);
    CU_ASSERT_EQUAL(take(r, name, 1.0, 1, 1, SEC, &retry), 429);
    pub_rate_destroy(r);
}

/* A clock that seems to go back (a caller's stale reading) neither refills nor
 * breaks a bucket. */
static void test_clock_not_monotonic(void)
{
    pub_rate *r = pub_rate_create(4);
    CU_ASSERT_FATAL(r != NULL);
    int retry = 0;
    CU_ASSERT_EQUAL(take(r, "a", 1.0, 1, 1, 10 * SEC, &retry), 0);
    CU_ASSERT_EQUAL(take(r, "a", 1.0, 1, 1, 5 * SEC, &retry), 429);
    CU_ASSERT_EQUAL(take(r, "a", 1.0, 1, 1, 11 * SEC, &retry), 0);
    pub_rate_destroy(r);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"one bucket: burst, refill, Retry-After, 413", test_bucket},
        {"4000 applications do not disturb one another", test_many_apps_independent},
        {"past the cap the least recently used bucket is evicted", test_cap_evicts_least_recent},
        {"a clock reading from the past", test_clock_not_monotonic},
    };
    return jb_cunit_main("unit_publisher_rate", NULL, NULL, cases, JB_CASES_N(cases));
}

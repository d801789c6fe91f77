/* dispatcher/: verdicts, backoff and Retry-After (the pure rules of DESIGN.md 4). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "dispatcher/jb_disp.h"
#include "jb_cunit.h"

static jb_sub_delivery delivery(jb_sub_backoff b, int64_t delay, int64_t max, int64_t ra_max)
{
    jb_sub_delivery d;
    memset(&d, 0, sizeof(d));
    d.max_in_flight = 10;
    d.max_deliver = 100;
    d.backoff = b;
    d.backoff_delay_ms = delay;
    d.backoff_max_ms = max;
    d.timeout_ms = 30000;
    d.retry_after_max_ms = ra_max;
    return d;
}

static void test_verdicts(void)
{
    static const struct {
        int status;
        jb_disp_verdict v;
    } cases[] = {
        {200, JB_DISP_ACK},   {201, JB_DISP_ACK},   {202, JB_DISP_ACK},   {204, JB_DISP_ACK},
        {299, JB_DISP_ACK},   {0, JB_DISP_RETRY},   {500, JB_DISP_RETRY}, {502, JB_DISP_RETRY},
        {503, JB_DISP_RETRY}, {504, JB_DISP_RETRY}, {599, JB_DISP_RETRY}, {404, JB_DISP_RETRY},
        {408, JB_DISP_RETRY}, {409, JB_DISP_RETRY}, {429, JB_DISP_RETRY}, {400, JB_DISP_DEAD},
        {401, JB_DISP_DEAD},  {403, JB_DISP_DEAD},  {405, JB_DISP_DEAD},  {410, JB_DISP_DEAD},
        {413, JB_DISP_DEAD},  {415, JB_DISP_DEAD},  {422, JB_DISP_DEAD},  {301, JB_DISP_DEAD},
        {100, JB_DISP_DEAD},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        if (jb_disp_verdict_of(cases[i].status) != cases[i].v)
            fprintf(stderr, "status %d\n", cases[i].status);
        CU_ASSERT_EQUAL(jb_disp_verdict_of(cases[i].status), cases[i].v);
    }
}

/* The response_code label: what snprintf("%d") wrote before. */
static void test_status_text(void)
{
    static const int cases[] = {0,   1,   9,    10,    99, 100, 200,     404,
                                599, 999, 1000, 65535, -1, -42, INT_MAX, INT_MIN};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char got[16], want[16];
        memset(got, 'x', sizeof(got));
        jb_disp_status_text(cases[i], got);
        snprintf(want, sizeof(want), "%d", cases[i]);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
}

static void test_backoff_fixed(void)
{
    static const struct {
        jb_sub_backoff b;
        int64_t delay, max;
        uint64_t attempt;
        int64_t want;
    } cases[] = {
        {JB_SUB_BACKOFF_CONSTANT, 1000, 30000, 1, 1000},
        {JB_SUB_BACKOFF_CONSTANT, 1000, 30000, 50, 1000},
        {JB_SUB_BACKOFF_LINEAR, 1000, 30000, 1, 1000},
        {JB_SUB_BACKOFF_LINEAR, 1000, 30000, 3, 3000},
        {JB_SUB_BACKOFF_LINEAR, 1000, 30000, 30, 30000},
        {JB_SUB_BACKOFF_LINEAR, 1000, 30000, 31, 30000},
        {JB_SUB_BACKOFF_LINEAR, 1000, 30000, UINT64_MAX, 30000},
        {JB_SUB_BACKOFF_EXPONENTIAL, 1000, 30000, 1, 1000}, /* the span is 0 */
        {JB_SUB_BACKOFF_LINEAR, 0, 0, 5, 1},                /* never a zero delay */
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_sub_delivery d = delivery(cases[i].b, cases[i].delay, cases[i].max, 0);
        CU_ASSERT_EQUAL(jb_disp_backoff_ms(&d, cases[i].attempt, 123456789u), cases[i].want);
    }
}

static void test_backoff_exponential_bounds(void)
{
    jb_sub_delivery d = delivery(JB_SUB_BACKOFF_EXPONENTIAL, 100, 30000, 0);
    static const struct {
        uint64_t attempt;
        int64_t cap;
    } cases[] = {{1, 100},    {2, 200},    {3, 400},      {6, 3200},          {9, 25600},
                 {10, 30000}, {64, 30000}, {1000, 30000}, {UINT64_MAX, 30000}};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        int64_t lo = INT64_MAX, hi = 0;
        for (uint64_t r = 0; r < 2000; r++) {
            /* A spread of random values, including the extremes. */
            uint64_t rnd = r * 0x9E3779B97F4A7C15ull;
            int64_t v = jb_disp_backoff_ms(&d, cases[i].attempt, rnd);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        CU_ASSERT_TRUE(lo >= 100);
        CU_ASSERT_TRUE(hi <= cases[i].cap);
        if (cases[i].cap > 100)
            CU_ASSERT_TRUE(hi > lo); /* jitter present */
        CU_ASSERT_EQUAL(jb_disp_backoff_ms(&d, cases[i].attempt, (uint64_t)(cases[i].cap - 100)),
                        cases[i].cap);
    }
}

static void test_retry_after_parse(void)
{
    /* 2015-10-21T07:28:00Z */
    const int64_t now = 1445412480000;
    static const struct {
        const char *v;
        bool ok;
        int64_t ms;
    } cases[] = {
        {"120", true, 120000},
        {" 5 ", true, 5000},
        {" 2\r\n", true, 2000}, /* as a header callback sees it */
        {"0", true, 0},
        {"Wed, 21 Oct 2015 07:28:30 GMT", true, 30000},
        {"Wednesday, 21-Oct-15 07:29:00 GMT", true, 60000},
        {"Wed Oct 21 07:28:10 2015", true, 10000},
        {"Wed, 21 Oct 2015 07:00:00 GMT", true, 0}, /* in the past */
        {"", false, 0},
        {"-5", false, 0},
        {"1.5", false, 0},
        {"soon", false, 0},
        {"99999999999999999999999", true, (INT64_MAX / 1000) * 1000},
        /* a date past what milliseconds hold: clamped, never an overflow */
        {"1 Oct 299993999", true, (INT64_MAX / 1000 - 1) * 1000 - now},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        int64_t ms = -1;
        bool ok = jb_disp_parse_retry_after(cases[i].v, strlen(cases[i].v), now, &ms);
        if (ok != cases[i].ok || (ok && ms != cases[i].ms))
            fprintf(stderr, "case %zu %s: ok=%d ms=%lld\n", i, cases[i].v, ok, (long long)ms);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        if (ok)
            CU_ASSERT_EQUAL(ms, cases[i].ms);
    }
}

static void test_retry_delay(void)
{
    static const struct {
        int64_t ra_max;
        int status;
        int64_t retry_after;
        int64_t want;
    } cases[] = {
        {300000, 429, 5000, 5000}, /* Retry-After above the backoff wins */
        {300000, 503, 5000, 5000},
        {300000, 500, 5000, 1000}, /* only 429 and 503 carry Retry-After */
        {300000, 429, -1, 1000},   /* no header */
        {300000, 429, 200, 1000},  /* below the backoff: the backoff stays */
        {2000, 429, 5000, 2000},   /* capped by retryAfterMax */
        {0, 429, 5000, 1000},      /* retryAfterMax 0 ignores it */
        {300000, 429, 600000, 300000},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_sub_delivery d = delivery(JB_SUB_BACKOFF_CONSTANT, 1000, 30000, cases[i].ra_max);
        CU_ASSERT_EQUAL(jb_disp_retry_delay_ms(&d, 3, cases[i].status, cases[i].retry_after, 42),
                        cases[i].want);
    }
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"verdicts", test_verdicts},
        {"status_text", test_status_text},
        {"backoff_fixed", test_backoff_fixed},
        {"backoff_exponential_bounds", test_backoff_exponential_bounds},
        {"retry_after_parse", test_retry_after_parse},
        {"retry_delay", test_retry_delay},
    };
    return jb_cunit_main("dispatcher_rules", NULL, NULL, cases, JB_CASES_N(cases));
}

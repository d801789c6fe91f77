/* common/: the Prometheus registry: exact text output, caps, escaping, threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

#define DROPPED_ZERO                                                                               \
    "# HELP jetbridge_metrics_series_dropped_total Updates counted into a family's other "         \
    "series because it reached its series cap.\n"                                                  \
    "# TYPE jetbridge_metrics_series_dropped_total counter\n"                                      \
    "jetbridge_metrics_series_dropped_total 0\n"

static char *render(jb_metrics *m)
{
    char *out = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(jb_metrics_render(m, &out, &len), JB_OK);
    CU_ASSERT_EQUAL(strlen(out), len);
    return out;
}

static void assert_render(jb_metrics *m, const char *want)
{
    char *got = render(m);
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n--- got:\n%s--- want:\n%s---\n", got, want);
    free(got);
}

static void test_empty_registry(void)
{
    jb_metrics *m = jb_metrics_create(10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    assert_render(m, DROPPED_ZERO);
    jb_metrics_destroy(m);
}

static void test_counter_gauge(void)
{
    jb_metrics *m = jb_metrics_create(10);
    static const char *const labels[] = {"code", "method", "path"};
    jb_metric *c = jb_metrics_counter(m, "eventing_epp_requests_total", "Requests.", 3, labels);
    jb_metric *g = jb_metrics_gauge(m, "eventing_epp_health", "Health.", 0, NULL);
    jb_metric *empty = jb_metrics_counter(m, "a_unused_total", "Never used.", 1, labels);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(empty);
    /* The same name again is the same family. */
    CU_ASSERT_PTR_EQUAL(jb_metrics_counter(m, "eventing_epp_requests_total", "x", 3, labels), c);
    /* ...but not under another type. */
    CU_ASSERT_PTR_NULL(jb_metrics_gauge(m, "eventing_epp_requests_total", "x", 3, labels));

    const char *const v204[] = {"204", "POST", "/publish"};
    const char *const v400[] = {"400", "POST", "/publish"};
    const char *const v200[] = {"200", "POST", "/{application}/v1/events"};
    jb_metric_add(c, v400, 1);
    jb_metric_add(c, v204, 1);
    jb_metric_add(c, v204, 2.5);
    jb_metric_add(c, v200, 1);
    jb_metric_add(c, v200, -5);  /* ignored: counters only go up */
    jb_metric_set(c, v200, 100); /* ignored: not a gauge */
    jb_metric_set(g, NULL, 1);
    jb_metric_add(g, NULL, -3);
    assert_render(
        m, "# HELP eventing_epp_health Health.\n"
           "# TYPE eventing_epp_health gauge\n"
           "eventing_epp_health -2\n"
           "# HELP eventing_epp_requests_total Requests.\n"
           "# TYPE eventing_epp_requests_total counter\n"
           "eventing_epp_requests_total{code=\"200\",method=\"POST\",path=\"/{application}/v1/"
           "events\"} 1\n"
           "eventing_epp_requests_total{code=\"204\",method=\"POST\",path=\"/publish\"} 3.5\n"
           "eventing_epp_requests_total{code=\"400\",method=\"POST\",path=\"/publish\"} "
           "1\n" DROPPED_ZERO);
    jb_metrics_destroy(m);
}

static void test_histogram(void)
{
    jb_metrics *m = jb_metrics_create(10);
    static const char *const labels[] = {"code"};
    static const double b[] = {0.005, 0.01, 1};
    jb_metric *h = jb_metrics_histogram(m, "d_seconds", "Durations.", 1, labels, b, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const char *const ok[] = {"200"};
    jb_metric_observe(h, ok, 0.005); /* on the bound: counts in le="0.005" */
    jb_metric_observe(h, ok, 0.5);
    jb_metric_observe(h, ok, 2);
    jb_metric_observe(h, ok, 0.001);
    jb_metric_add(h, ok, 1); /* ignored: not a counter */
    assert_render(m, "# HELP d_seconds Durations.\n"
                     "# TYPE d_seconds histogram\n"
                     "d_seconds_bucket{code=\"200\",le=\"0.005\"} 2\n"
                     "d_seconds_bucket{code=\"200\",le=\"0.01\"} 2\n"
                     "d_seconds_bucket{code=\"200\",le=\"1\"} 3\n"
                     "d_seconds_bucket{code=\"200\",le=\"+Inf\"} 4\n"
                     "d_seconds_sum{code=\"200\"} 2.506\n"
                     "d_seconds_count{code=\"200\"} 4\n" DROPPED_ZERO);
    jb_metrics_destroy(m);

    /* Without labels, shown from the start with zero counts. */
    m = jb_metrics_create(10);
    static const double b2[] = {2, 4};
    CU_ASSERT_PTR_NOT_NULL(jb_metrics_histogram(m, "ms", "Ms.", 0, NULL, b2, 2));
    assert_render(m, DROPPED_ZERO
                  "# HELP ms Ms.\n# TYPE ms histogram\n"
                  "ms_bucket{le=\"2\"} 0\nms_bucket{le=\"4\"} 0\nms_bucket{le=\"+Inf\"} 0\n"
                  "ms_sum 0\nms_count 0\n");
    jb_metrics_destroy(m);
}

/* jb_metric_add_observe is jb_metric_add plus jb_metric_observe: the same text, the
 * same series, the same refusals (negative add, NaN, wrong kinds), and past the
 * series cap both count into "other". */
static void test_add_observe(void)
{
    static const char *const labels[] = {"code", "sink"};
    static const double b[] = {0.01, 1};
    char *want = NULL;
    for (int combined = 0; combined < 2; combined++) {
        jb_metrics *m = jb_metrics_create(2);
        jb_metric *c = jb_metrics_counter(m, "n_total", "N.", 2, labels);
        jb_metric *h = jb_metrics_histogram(m, "d_seconds", "D.", 2, labels, b, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        const char *const v[][2] = {
            {"200", "http://a/"}, {"500", "http://a/"}, {"200", "http://a/"}, {"503", "http://b/"}};
        const double add[] = {1, 1, -1, 2}, obs[] = {0.005, 0.5, 0.0 / 0.0, 3};
        for (size_t i = 0; i < 4; i++) {
            if (combined) {
                jb_metric_add_observe(c, h, v[i], add[i], obs[i]);
            } else {
                jb_metric_add(c, v[i], add[i]);
                jb_metric_observe(h, v[i], obs[i]);
            }
        }
        if (combined) {
            jb_metric_add_observe(h, c, v[0], 1, 1); /* kinds swapped: both ignored */
            jb_metric_add_observe(c, NULL, v[0], 1, 1);
        } else {
            jb_metric_add(c, v[0], 1);
        }
        char *got = render(m);
        if (!combined) {
            CU_ASSERT_PTR_NOT_NULL(strstr(got, "n_total{code=\"other\",sink=\"other\"} 2\n"));
            want = got;
        } else {
            CU_ASSERT_STRING_EQUAL(got, want);
            free(got);
        }
        jb_metrics_destroy(m);
    }
    free(want);
}

static void test_invalid_families(void)
{
    jb_metrics *m = jb_metrics_create(10);
    static const char *const le[] = {"le"};
    static const char *const bad[] = {"a-b"};
    static const char *const reserved[] = {"__x"};
    static const double unsorted[] = {1, 0.5};
    static const double one[] = {1};
    CU_ASSERT_PTR_NULL(jb_metrics_counter(m, "1abc", "x", 0, NULL));
    CU_ASSERT_PTR_NULL(jb_metrics_counter(m, "a b", "x", 0, NULL));
    CU_ASSERT_PTR_NULL(jb_metrics_counter(m, "", "x", 0, NULL));
    CU_ASSERT_PTR_NULL(jb_metrics_counter(m, "ok", "x", 1, bad));
    CU_ASSERT_PTR_NULL(jb_metrics_counter(m, "ok", "x", 1, reserved));
    CU_ASSERT_PTR_NULL(jb_metrics_histogram(m, "h", "x", 1, le, one, 1));
    CU_ASSERT_PTR_NULL(jb_metrics_histogram(m, "h", "x", 0, NULL, unsorted, 2));
    CU_ASSERT_PTR_NOT_NULL(jb_metrics_counter(m, "ns:ok_total", "x", 0, NULL));
    jb_metrics_destroy(m);
}

static void test_escaping(void)
{
    jb_metrics *m = jb_metrics_create(10);
    static const char *const labels[] = {"v"};
    jb_metric *c =
        jb_metrics_counter(m, "esc_total", "Help with \\ and\nnewline \"q\".", 1, labels);
    const char *const v[] = {"a\\b\"c\nd"};
    jb_metric_add(c, v, 1);
    assert_render(m, "# HELP esc_total Help with \\\\ and\\nnewline \"q\".\n"
                     "# TYPE esc_total counter\n"
                     "esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n" DROPPED_ZERO);
    jb_metrics_destroy(m);
}

static void test_numbers(void)
{
    jb_metrics *m = jb_metrics_create(20);
    static const char *const labels[] = {"k"};
    jb_metric *g = jb_metrics_gauge(m, "n", "N.", 1, labels);
    static const struct {
        const char *k;
        double v;
    } vals[] = {
        {"a", 0.1},    {"b", 1e21},      {"c", -0.0},    {"d", 1.0 / 0.0}, {"e", 123456789},
        {"f", 1e-7},   {"g", 999999},    {"h", 1000000}, {"i", 0.0001},    {"j", 0.00001},
        {"k", 1.5e-5}, {"l", 0.1 + 0.2}, {"m", 80000},   {"n", -2.5},
    };
    for (size_t i = 0; i < JB_CASES_N(vals); i++) {
        const char *const v[] = {vals[i].k};
        jb_metric_set(g, v, vals[i].v);
    }
    assert_render(m,
                  DROPPED_ZERO "# HELP n N.\n# TYPE n gauge\n"
                               "n{k=\"a\"} 0.1\nn{k=\"b\"} 1e+21\nn{k=\"c\"} -0\nn{k=\"d\"} +Inf\n"
                               "n{k=\"e\"} 1.23456789e+08\nn{k=\"f\"} 1e-07\nn{k=\"g\"} 999999\n"
                               "n{k=\"h\"} 1e+06\nn{k=\"i\"} 0.0001\nn{k=\"j\"} 1e-05\n"
                               "n{k=\"k\"} 1.5e-05\nn{k=\"l\"} 0.30000000000000004\n"
                               "n{k=\"m\"} 80000\nn{k=\"n\"} -2.5\n");
    jb_metrics_destroy(m);
}

static void test_series_cap(void)
{
    jb_metrics *m = jb_metrics_create(3);
    static const char *const labels[] = {"t"};
    jb_metric *c = jb_metrics_counter(m, "cap_total", "Capped.", 1, labels);
    static const char *const names[] = {"a", "b", "c", "d", "e", "a", "d"};
    for (size_t i = 0; i < JB_CASES_N(names); i++) {
        const char *const v[] = {names[i]};
        jb_metric_add(c, v, 1);
    }
    assert_render(m, "# HELP cap_total Capped.\n# TYPE cap_total counter\n"
                     "cap_total{t=\"a\"} 2\ncap_total{t=\"b\"} 1\ncap_total{t=\"c\"} 1\n"
                     "cap_total{t=\"other\"} 3\n"
                     "# HELP jetbridge_metrics_series_dropped_total Updates counted into a "
                     "family's other series because it reached its series cap.\n"
                     "# TYPE jetbridge_metrics_series_dropped_total counter\n"
                     "jetbridge_metrics_series_dropped_total 3\n");
    /* reset empties a gauge family and frees room under the cap. */
    jb_metric *g = jb_metrics_gauge(m, "pending", "P.", 1, labels);
    for (size_t i = 0; i < 3; i++) {
        const char *const v[] = {names[i]};
        jb_metric_set(g, v, (double)i);
    }
    jb_metric_reset(g);
    const char *const v[] = {"z"};
    jb_metric_set(g, v, 7);
    char *out = render(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE pending gauge\npending{t=\"z\"} 7\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "jetbridge_metrics_series_dropped_total 3\n"));
    free(out);
    jb_metrics_destroy(m);
}

/* Long label values are cut at a bound, so they cannot grow memory either. */
static void test_long_label_value(void)
{
    jb_metrics *m = jb_metrics_create(10);
    static const char *const labels[] = {"t"};
    jb_metric *c = jb_metrics_counter(m, "long_total", "L.", 1, labels);
    char *big = malloc(100000);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    const char *const v[] = {big};
    jb_metric_add(c, v, 1);
    jb_metric_add(c, v, 1);
    char *out = render(m);
    CU_ASSERT_TRUE(strlen(out) < 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "xxx\"} 2\n"));
    free(out);
    free(big);
    jb_metrics_destroy(m);
}

#define THREADS    4
#define PER_THREAD 20000

typedef struct worker {
    jb_metric *c, *h;
    int id;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char mine[16];
    snprintf(mine, sizeof(mine), "t%d", w->id);
    for (int i = 0; i < PER_THREAD; i++) {
        const char *const shared[] = {"shared"};
        const char *const own[] = {mine};
        jb_metric_add(w->c, shared, 1);
        jb_metric_add(w->c, own, 1);
        jb_metric_observe(w->h, shared, (i % 2) ? 0.5 : 2);
    }
    return NULL;
}

static void test_concurrent(void)
{
    jb_metrics *m = jb_metrics_create(100);
    static const char *const labels[] = {"who"};
    static const double b[] = {1};
    jb_metric *c = jb_metrics_counter(m, "conc_total", "C.", 1, labels);
    jb_metric *h = jb_metrics_histogram(m, "conc_h", "H.", 1, labels, b, 1);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){c, h, i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    /* Rendering while others write must be safe too. */
    for (int i = 0; i < 20; i++)
        free(render(m));
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *out = render(m);
    char want[128];
    snprintf(want, sizeof(want), "conc_total{who=\"shared\"} %d\n", THREADS * PER_THREAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    for (int i = 0; i < THREADS; i++) {
        snprintf(want, sizeof(want), "conc_total{who=\"t%d\"} %d\n", i, PER_THREAD);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    }
    snprintf(want, sizeof(want),
             "conc_h_bucket{who=\"shared\",le=\"1\"} %d\n"
             "conc_h_bucket{who=\"shared\",le=\"+Inf\"} %d\n"
             "conc_h_sum{who=\"shared\"} %d\n",
             THREADS * PER_THREAD / 2, THREADS * PER_THREAD, THREADS * PER_THREAD / 2 * 5 / 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    free(out);
    jb_metrics_destroy(m);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"empty registry shows the dropped-series counter", test_empty_registry},
        {"counters and gauges: exact text, order, type checks", test_counter_gauge},
        {"histograms: cumulative buckets, +Inf, sum, count", test_histogram},
        {"add_observe: one hash, the same as add and observe", test_add_observe},
        {"invalid metric and label names are refused", test_invalid_families},
        {"escaping of label values and help", test_escaping},
        {"number formatting", test_numbers},
        {"series cap: the rest counts into other; reset frees room", test_series_cap},
        {"long label values are bounded", test_long_label_value},
        {"concurrent updates from several threads", test_concurrent},
    };
    return jb_cunit_main("metrics", NULL, NULL, cases, JB_CASES_N(cases));
}

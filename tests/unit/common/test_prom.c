/* common/prom.c: reading the Prometheus text format back (jetbridge stats). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

/* The samples of text, as "name|labels|value" lines. */
static void read_all(const char *text, char *out, size_t cap)
{
    size_t pos = 0, o = 0;
    jb_prom_sample s;
    out[0] = '\0';
    while (jb_prom_next(text, strlen(text), &pos, &s) && o < cap) {
        int n = snprintf(out + o, cap - o, "%.*s|%.*s|%g\n", (int)s.name_len, s.name,
                         (int)s.labels_len, s.labels ? s.labels : "", s.value);
        o += n > 0 ? (size_t)n : 0;
    }
}

static void test_samples(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a 1\n", "a||1\n"},
        {"# HELP a x\n# TYPE a counter\na 1\n\n", "a||1\n"},
        {"a{x=\"1\",y=\"2\"} 3 1767225600000\n", "a|x=\"1\",y=\"2\"|3\n"},
        {"a{x=\"}\",} 4", "a|x=\"}\",|4\n"},               /* '}' inside a value */
        {"a{x=\"q\\\"} 1\"} 5\n", "a|x=\"q\\\"} 1\"|5\n"}, /* escaped quote */
        {"h_bucket{le=\"+Inf\"} 7\r\n", "h_bucket|le=\"+Inf\"|7\n"},
        {"a +Inf\nb NaN\n", "a||inf\nb||nan\n"},
        /* malformed lines are skipped, the next one is read */
        {"a{x=\"1} 1\nb 2\n", "b||2\n"},
        {"a{x=1} 1\nb{=\"\"} 1\n{x=\"\"} 1\n9a 1\nc 3\n", "c||3\n"},
        {"a\nb 1x\nc1\nd  2\n", "d||2\n"},
        {"a 1e400000000000000000000000000000000000000000000000000000000000000000000 1\n", ""},
    };
    char got[512];
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        read_all(cases[i].text, got, sizeof(got));
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got \"%s\"\n", i, got);
    }
}

static void test_labels(void)
{
    const char *text = "m{consumer_name=\"c1\",event_type=\"a\\\\b\\\"c\\nd\",code=\"503\"} 1\n";
    size_t pos = 0;
    jb_prom_sample s;
    CU_ASSERT_TRUE_FATAL(jb_prom_next(text, strlen(text), &pos, &s));
    char v[64];
    CU_ASSERT_TRUE(jb_prom_label(&s, "consumer_name", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "c1");
    CU_ASSERT_TRUE(jb_prom_label(&s, "event_type", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "a\\b\"c\nd"); /* what metrics.c escaped, undone */
    CU_ASSERT_TRUE(jb_prom_label(&s, "code", v, 3));
    CU_ASSERT_STRING_EQUAL(v, "50"); /* cut to fit */
    CU_ASSERT_FALSE(jb_prom_label(&s, "consumer", v, sizeof(v)));
    CU_ASSERT_FALSE(jb_prom_label(&s, "name", v, sizeof(v)));
    CU_ASSERT_FALSE(jb_prom_next(text, strlen(text), &pos, &s));
}

/* What the registry writes reads back unchanged. */
static void test_round_trip(void)
{
    jb_metrics *m = jb_metrics_create(8);
    static const char *const names[] = {"consumer_name", "event_type"};
    jb_metric *c = jb_metrics_counter(m, "rt_total", "help with \\ and \n", 2, names);
    const char *vals[] = {"c}1", "x\"y\\z\n{w}"};
    jb_metric_add(c, vals, 12);
    char *page = NULL;
    size_t len = 0, pos = 0;
    CU_ASSERT_EQUAL_FATAL(jb_metrics_render(m, &page, &len), JB_OK);
    jb_prom_sample s;
    bool found = false;
    while (jb_prom_next(page, len, &pos, &s)) {
        if (s.name_len != 8 || memcmp(s.name, "rt_total", 8) != 0)
            continue;
        char a[64], b[64];
        CU_ASSERT_TRUE(jb_prom_label(&s, "consumer_name", a, sizeof(a)));
        CU_ASSERT_TRUE(jb_prom_label(&s, "event_type", b, sizeof(b)));
        CU_ASSERT_STRING_EQUAL(a, vals[0]);
        CU_ASSERT_STRING_EQUAL(b, vals[1]);
        CU_ASSERT_EQUAL(s.value, 12);
        found = true;
    }
    CU_ASSERT_TRUE(found);
    free(page);
    jb_metrics_destroy(m);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"samples: names, label blocks, values, malformed lines skipped", test_samples},
        {"labels: lookup, unescaping, cut", test_labels},
        {"what metrics.c writes reads back", test_round_trip},
    };
    return jb_cunit_main("prom", NULL, NULL, cases, JB_CASES_N(cases));
}

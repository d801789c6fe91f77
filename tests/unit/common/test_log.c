/* common/: log lines as an operator reads them (stderr captured into a file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jb_common.h"
#include "jb_cunit.h"

/* Runs one jb_log call with stderr redirected; returns what was written. */
static char *capture(jb_log_level min, bool json, jb_log_level lvl, const char *k, const char *v)
{
    char path[] = "/tmp/jb-log-test-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    jb_log_setup(min, json);
    jb_log(lvl, "publisher", "listening", k, v, NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *buf = calloc(1, 8192);
    ssize_t n = pread(fd, buf, 8191, 0);
    CU_ASSERT_TRUE(n >= 0);
    close(fd);
    unlink(path);
    jb_log_setup(JB_LOG_INFO, true);
    return buf;
}

static void test_json(void)
{
    char *out = capture(JB_LOG_INFO, true, JB_LOG_INFO, "addr", "a\"b\\c\nd\x01");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\",\"level\":\"info\",\"component\":\"publisher\","
                    "\"msg\":\"listening\",\"addr\":\"a\\\"b\\\\c\\u000ad\\u0001\"}\n"));
    CU_ASSERT_EQUAL(strncmp(out, "{\"ts\":\"", 7), 0);
    CU_ASSERT_PTR_EQUAL(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
    free(out);
    /* No empty fields: "addr":"" says nothing. */
    out = capture(JB_LOG_INFO, true, JB_LOG_INFO, "addr", "");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"msg\":\"listening\"}\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "addr"));
    free(out);
}

static void test_text(void)
{
    static const struct {
        const char *v;
        const char *want;
    } cases[] = {
        {"0.0.0.0:8080", " info publisher listening addr=0.0.0.0:8080\n"},
        {"two words", " info publisher listening addr=\"two words\"\n"},
        {"k=v", " info publisher listening addr=\"k=v\"\n"},
        {"", " info publisher listening\n"}, /* an empty field is left out */
        {"line\nbreak", " info publisher listening addr=\"line\\u000abreak\"\n"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *out = capture(JB_LOG_DEBUG, false, JB_LOG_INFO, "addr", cases[i].v);
        const char *sp = strchr(out, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
        CU_ASSERT_STRING_EQUAL(sp, cases[i].want);
        free(out);
    }
}

static void test_level_filter(void)
{
    char *out = capture(JB_LOG_WARN, true, JB_LOG_INFO, "k", "v");
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    out = capture(JB_LOG_WARN, true, JB_LOG_ERROR, "k", "v");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"level\":\"error\""));
    free(out);
    static const struct {
        const char *s;
        int want; /* -1 rejected */
    } cases[] = {{"debug", JB_LOG_DEBUG}, {"info", JB_LOG_INFO}, {"warn", JB_LOG_WARN},
                 {"error", JB_LOG_ERROR}, {"INFO", -1},          {"", -1}};
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_log_level l = JB_LOG_ERROR;
        bool ok = jb_log_level_parse(cases[i].s, &l);
        CU_ASSERT_EQUAL(ok, cases[i].want >= 0);
        if (ok)
            CU_ASSERT_EQUAL((int)l, cases[i].want);
    }
}

/* A huge value is cut; the line stays one line. */
static void test_long_line(void)
{
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    char *out = capture(JB_LOG_INFO, true, JB_LOG_INFO, "k", big);
    size_t n = strlen(out);
    CU_ASSERT_TRUE(n > 1000 && n <= 4096);
    CU_ASSERT_EQUAL(out[n - 1], '\n');
    CU_ASSERT_PTR_EQUAL(strchr(out, '\n'), out + n - 1);
    free(out);
    free(big);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"json lines with escaping", test_json},
        {"text lines quote values that need it", test_text},
        {"level filter and level names", test_level_filter},
        {"long values are cut to one line", test_long_line},
    };
    return jb_cunit_main("log", NULL, NULL, cases, JB_CASES_N(cases));
}

/* config/: value parsers, the key table, precedence, error lines, rest[]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/jb_cfg.h"
#include "jb_cunit.h"

#define NO INT64_MIN /* expected: rejected */

static void test_parse_bool(void)
{
    static const struct {
        const char *s;
        int want; /* 1 true, 0 false, -1 rejected */
    } cases[] = {
        {"true", 1},  {"TRUE", 1},   {"1", 1},  {"yes", 1},    {"on", 1},
        {"false", 0}, {"False", 0},  {"0", 0},  {"no", 0},     {"off", 0},
        {"", -1},     {"maybe", -1}, {"2", -1}, {"truex", -1}, {"t", -1},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        bool v = false;
        bool ok = jb_cfg_parse_bool(cases[i].s, strlen(cases[i].s), &v);
        CU_ASSERT_EQUAL(ok, cases[i].want >= 0);
        if (ok)
            CU_ASSERT_EQUAL(v, cases[i].want == 1);
    }
}

static const struct {
    const char *s;
    int64_t ms;     /* NO = rejected */
    int64_t iso_ms; /* what the ISO-only parser says (NO = rejected) */
} duration_cases[] = {
    /* Go style */
    {"5s", 5000, NO},
    {"1m30s", 90000, NO},
    {"250ms", 250, NO},
    {"1h", 3600000, NO},
    {"2h45m", 9900000, NO},
    {"1.5s", 1500, NO},
    {".5s", 500, NO},
    {"1.s", 1000, NO},
    {"0.3s", 300, NO},
    {"1.1s", 1100, NO},
    {"1000000us", 1000, NO},
    {"1000000\xc2\xb5s", 1000, NO},
    {"5000000ns", 5, NO},
    {"1h1m1s1ms", 3661001, NO},
    {"1.5h", 5400000, NO},
    {"0", 0, NO},
    {"0s", 0, NO},
    {"2562047h", INT64_C(2562047) * 3600000, NO},
    {"2562048h", NO, NO}, /* past int64 nanoseconds */
    {"9223372036854775807ns", INT64_C(9223372036854), NO},
    {"9223372036854775808ns", NO, NO},
    {"5", 5000, NO}, /* bare integer = seconds */
    {"30", 30000, NO},
    {"9223372036", INT64_C(9223372036000), NO},
    {"9223372037", NO, NO},
    {"99999999999999999999", NO, NO},
    {"", NO, NO},
    {"s", NO, NO},
    {"5x", NO, NO},
    {"5 s", NO, NO},
    {"-5s", NO, NO},
    {"+5s", NO, NO},
    {"1.5", NO, NO},
    {".s", NO, NO},
    {"1..5s", NO, NO},
    {"5S", NO, NO},
    {"1d", NO, NO},
    /* ISO 8601 */
    {"PT5S", 5000, 5000},
    {"PT1M30S", 90000, 90000},
    {"PT1H", 3600000, 3600000},
    {"P1D", 86400000, 86400000},
    {"P1W", 604800000, 604800000},
    {"P1DT1H", 90000000, 90000000},
    {"PT0.5S", 500, 500},
    {"PT0,5S", 500, 500},
    {"PT1.5M", 90000, 90000},
    {"PT30S", 30000, 30000},
    {"PT5M", 300000, 300000},
    {"PT0S", 0, 0},
    {"P", NO, NO},
    {"PT", NO, NO},
    {"P1DT", NO, NO},
    {"P1M", NO, NO},       /* months: calendar dependent */
    {"P1Y", NO, NO},       /* years: calendar dependent */
    {"PT1S1M", NO, NO},    /* wrong order */
    {"PT1S1S", NO, NO},    /* twice */
    {"PT1.5M30S", NO, NO}, /* only the last part may be fractional */
    {"PT5s", NO, NO},
    {"pt5s", NO, NO},
    {"PT-5S", NO, NO},
    {"P1H", NO, NO}, /* hours need T */
    {"PT1D", NO, NO},
    {"PT5", NO, NO},
    {"PTS", NO, NO},
    {"PT1TS", NO, NO},
    {"P106751D", INT64_C(106751) * 86400000, INT64_C(106751) * 86400000},
    {"P106752D", NO, NO},
    {"P99999999999999999999999999999999999999999W", NO, NO},
};

static void test_parse_duration(void)
{
    for (size_t i = 0; i < JB_CASES_N(duration_cases); i++) {
        const char *s = duration_cases[i].s;
        int64_t v = 42;
        bool ok = jb_cfg_parse_duration_ms(s, strlen(s), &v);
        CU_ASSERT_EQUAL(ok, duration_cases[i].ms != NO);
        if (ok != (duration_cases[i].ms != NO) || (ok && v != duration_cases[i].ms))
            fprintf(stderr, "duration \"%s\": ok=%d v=%lld\n", s, ok, (long long)v);
        CU_ASSERT_EQUAL(v, ok ? duration_cases[i].ms : 42);
    }
}

static void test_parse_iso8601(void)
{
    for (size_t i = 0; i < JB_CASES_N(duration_cases); i++) {
        const char *s = duration_cases[i].s;
        int64_t v = 42;
        bool ok = jb_cfg_parse_iso8601_duration_ms(s, strlen(s), &v);
        CU_ASSERT_EQUAL(ok, duration_cases[i].iso_ms != NO);
        if (ok != (duration_cases[i].iso_ms != NO))
            fprintf(stderr, "iso duration \"%s\": ok=%d\n", s, ok);
        CU_ASSERT_EQUAL(v, ok ? duration_cases[i].iso_ms : 42);
    }
}

static void test_parse_size(void)
{
    static const struct {
        const char *s;
        int64_t want;
    } cases[] = {
        {"0", 0},
        {"65536", 65536},
        {"700Mi", INT64_C(700) * 1024 * 1024},
        {"1Gi", INT64_C(1) << 30},
        {"1Ki", 1024},
        {"16Ki", 16384},
        {"1Ti", INT64_C(1) << 40},
        {"1Pi", INT64_C(1) << 50},
        {"1Ei", INT64_C(1) << 60},
        {"8Ei", NO},
        {"7Ei", INT64_C(7) << 60},
        {"5k", 5000},
        {"1M", 1000000},
        {"1G", 1000000000},
        {"1T", INT64_C(1000000000000)},
        {"1P", INT64_C(1000000000000000)},
        {"1E", INT64_C(1000000000000000000)},
        {"9E", INT64_C(9000000000000000000)},
        {"10E", NO},
        {"1e3", 1000},
        {"1E3", 1000},
        {"1e+3", 1000},
        {"1e0", 1},
        {"1000e-3", 1},
        {"1e-3", NO},
        {"1.5Gi", INT64_C(1610612736)},
        {"1.5k", 1500},
        {"0.5Ki", 512},
        {"0.1", NO},
        {"1.5", NO},
        {"2000m", 2},
        {"1500m", NO},
        {"+5k", 5000},
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", NO},
        {"1e18", INT64_C(1000000000000000000)},
        {"1e19", NO},
        {"0e999", 0},
        {"1e1001", NO},
        {"", NO},
        {"-1", NO},
        {"k", NO},
        {"Mi", NO},
        {"1Mb", NO},
        {"1mi", NO},
        {"1 Mi", NO},
        {"1KiB", NO},
        {"1e", NO},
        {"1e-", NO},
        {".", NO},
        {"1..5k", NO},
        {"1K", NO}, /* Kubernetes spells kilo "k" */
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        int64_t v = 42;
        bool ok = jb_cfg_parse_size(cases[i].s, strlen(cases[i].s), &v);
        CU_ASSERT_EQUAL(ok, cases[i].want != NO);
        if (ok != (cases[i].want != NO) || (ok && v != cases[i].want))
            fprintf(stderr, "size \"%s\": ok=%d v=%lld\n", cases[i].s, ok, (long long)v);
        CU_ASSERT_EQUAL(v, ok ? cases[i].want : 42);
    }
}

/* The flag of every key is "--" + the env name in lower case with '_' -> '-'. */
static void test_key_table(void)
{
    size_t n;
    const jb_cfg_key_info *k = jb_cfg_keys(&n);
    CU_ASSERT_TRUE(n >= 38);
    for (size_t i = 0; i < n; i++) {
        char want[128] = "--";
        size_t len = strlen(k[i].env);
        CU_ASSERT_FATAL(len + 3 < sizeof(want));
        for (size_t j = 0; j < len; j++) {
            char c = k[i].env[j];
            want[2 + j] = c == '_' ? '-' : (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        want[2 + len] = '\0';
        CU_ASSERT_STRING_EQUAL(k[i].flag, want);
        CU_ASSERT_TRUE(strlen(k[i].help) > 10);
        CU_ASSERT_TRUE(strlen(k[i].allowed) > 2);
        for (size_t j = 0; j < i; j++)
            CU_ASSERT_STRING_NOT_EQUAL(k[i].env, k[j].env);
    }
    /* The keys DESIGN.md names all exist. */
    static const char *const required[] = {
        "INGRESS_PORT",
        "MAX_REQUEST_SIZE",
        "REQUEST_TIMEOUT",
        "EVENT_TYPE_PREFIX",
        "LEGACY_NAMESPACE",
        "NATS_URL",
        "MAX_RECONNECTS",
        "RECONNECT_WAIT",
        "JS_STREAM_NAME",
        "JS_STREAM_SUBJECT_PREFIX",
        "JS_STREAM_STORAGE_TYPE",
        "JS_STREAM_REPLICAS",
        "JS_STREAM_RETENTION_POLICY",
        "JS_STREAM_DISCARD_POLICY",
        "JS_STREAM_MAX_MSGS",
        "JS_STREAM_MAX_BYTES",
        "JS_STREAM_MAX_MSGS_PER_TOPIC",
        "JS_CONSUMER_DELIVER_POLICY",
        "JS_DLQ_STREAM_NAME",
        "DEFAULT_MAX_IN_FLIGHT_MESSAGES",
        "SINK_VALIDATION",
        "SINK_ALLOWED_HOSTS",
        "SUBSCRIPTIONS",
        "METRICS_ADDR",
        "APP_LOG_FORMAT",
        "APP_LOG_LEVEL",
        "DATA_DIR",
    };
    for (size_t r = 0; r < JB_CASES_N(required); r++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found = found || strcmp(k[i].env, required[r]) == 0;
        CU_ASSERT_TRUE(found);
    }
}

static void test_defaults(void)
{
    jb_cfg *c = jb_cfg_defaults();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->ingress_port, 8080);
    CU_ASSERT_EQUAL(c->max_request_size, 65536);
    CU_ASSERT_EQUAL(c->request_timeout_ms, 5000);
    CU_ASSERT_STRING_EQUAL(c->event_type_prefix, "sap.kyma.custom");
    CU_ASSERT_STRING_EQUAL(c->legacy_namespace, "kyma");
    CU_ASSERT_EQUAL(c->publish_max_in_flight, 4096);
    CU_ASSERT_EQUAL(c->publisher_threads, 0);
    CU_ASSERT_EQUAL(c->max_connections, 10000);
    CU_ASSERT_EQUAL(c->max_header_size, 16384);
    CU_ASSERT_EQUAL(c->http_read_timeout_ms, 30000);
    CU_ASSERT_EQUAL(c->http_idle_timeout_ms, 60000);
    CU_ASSERT_EQUAL(c->retry_after_seconds, 1);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "");
    CU_ASSERT_EQUAL(c->max_reconnects, -1);
    CU_ASSERT_EQUAL(c->reconnect_wait_ms, 5000);
    CU_ASSERT_STRING_EQUAL(c->stream_name, "sap");
    CU_ASSERT_STRING_EQUAL(c->stream_subject_prefix, "kyma");
    CU_ASSERT_EQUAL(c->stream_storage, JB_STORAGE_FILE);
    CU_ASSERT_EQUAL(c->stream_replicas, 1);
    CU_ASSERT_EQUAL(c->stream_retention, JB_RETENTION_INTEREST);
    CU_ASSERT_EQUAL(c->stream_discard, JB_DISCARD_NEW);
    CU_ASSERT_EQUAL(c->stream_max_msgs, -1);
    CU_ASSERT_EQUAL(c->stream_max_bytes, INT64_C(700) * 1024 * 1024);
    CU_ASSERT_EQUAL(c->stream_max_msgs_per_subject, 1000000);
    CU_ASSERT_EQUAL(c->stream_duplicate_window_ms, 120000);
    CU_ASSERT_EQUAL(c->consumer_deliver_policy, JB_DELIVER_NEW);
    CU_ASSERT_STRING_EQUAL(c->dlq_stream_name, "sap-dlq");
    CU_ASSERT_EQUAL(c->default_max_in_flight, 10);
    CU_ASSERT_EQUAL(c->sink_validation, JB_SINK_URL);
    CU_ASSERT_STRING_EQUAL(c->sink_allowed_hosts, "");
    CU_ASSERT_STRING_EQUAL(c->subscriptions_dir, "");
    CU_ASSERT_EQUAL(c->ack_wait_ms, 30000);
    CU_ASSERT_EQUAL(c->dispatcher_max_concurrent, 1024);
    CU_ASSERT_EQUAL(c->shutdown_grace_ms, 25000);
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, ":9090");
    CU_ASSERT_TRUE(c->log_json);
    CU_ASSERT_TRUE(c->log_format_auto); /* text on a terminal, JSON elsewhere */
    CU_ASSERT_STRING_EQUAL(c->log_level, "info");
    CU_ASSERT_STRING_EQUAL(c->data_dir, "./.jetbridge");
    CU_ASSERT_STRING_EQUAL(c->ingress_addr, "0.0.0.0");
    jb_cfg_destroy(c);
}

/* Writes text to a new temporary file; returns its malloc'd path. */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/jb-cfg-test-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
    return path;
}

/* Loads args (NULL-terminated) with env; returns the status, *cfg on success. */
static jb_status load(const char *const *args, const char *const *env, jb_cfg **cfg, int *rest,
                      int *nrest, jb_err *err)
{
    int argc = 0;
    while (args[argc] != NULL)
        argc++;
    return jb_cfg_load(argc, (char **)args, (char **)env, cfg, rest, nrest, err);
}

static void test_precedence(void)
{
    char *file = temp_file("INGRESS_PORT: 1001\n"
                           "REQUEST_TIMEOUT: PT7S\n"
                           "JS_STREAM_NAME: from-file\n"
                           "APP_LOG_LEVEL: debug\n");
    const char *args[] = {"--config", file, "--ingress-port", "3003", NULL};
    const char *env[] = {"INGRESS_PORT=2002", "REQUEST_TIMEOUT=8s", "PATH=/bin",
                         "JB_UNKNOWN=whatever", NULL};
    jb_cfg *c = NULL;
    int rest[8], nrest = -1;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(load(args, env, &c, rest, &nrest, &err), JB_OK);
    CU_ASSERT_EQUAL(c->ingress_port, 3003);              /* flag > env > file */
    CU_ASSERT_EQUAL(c->request_timeout_ms, 8000);        /* env > file */
    CU_ASSERT_STRING_EQUAL(c->stream_name, "from-file"); /* file > default */
    CU_ASSERT_STRING_EQUAL(c->log_level, "debug");
    CU_ASSERT_EQUAL(c->max_request_size, 65536); /* default */
    CU_ASSERT_EQUAL(nrest, 0);
    jb_cfg_destroy(c);

    /* --flag=value, and the last flag wins. */
    const char *args2[] = {"--ingress-port=4004",
                           "--metrics-addr=127.0.0.1:0",
                           "--js-stream-max-bytes",
                           "1Gi",
                           "--ingress-port",
                           "5005",
                           NULL};
    CU_ASSERT_EQUAL_FATAL(load(args2, env, &c, rest, &nrest, &err), JB_OK);
    CU_ASSERT_EQUAL(c->ingress_port, 5005);
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, "127.0.0.1:0");
    CU_ASSERT_EQUAL(c->stream_max_bytes, INT64_C(1) << 30);
    jb_cfg_destroy(c);
    unlink(file);
    free(file);
}

/* 0 is a value of SHUTDOWN_GRACE (no grace), not "unset": it reaches the
 * configuration as 0, and nothing downstream swaps in the default. */
static void test_zero_grace_kept(void)
{
    const char *args[] = {NULL};
    const char *env[] = {"SHUTDOWN_GRACE=0", NULL};
    jb_cfg *c = NULL;
    int rest[1], nrest = -1;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(load(args, env, &c, rest, &nrest, &err), JB_OK);
    CU_ASSERT_EQUAL(c->shutdown_grace_ms, 0);
    jb_cfg_destroy(c);
}

static void test_all_kinds_from_env(void)
{
    const char *args[] = {NULL};
    const char *env[] = {"JS_STREAM_STORAGE_TYPE=MEMORY",
                         "JS_STREAM_RETENTION_POLICY=workqueue",
                         "JS_STREAM_DISCARD_POLICY=old",
                         "JS_CONSUMER_DELIVER_POLICY=all",
                         "SINK_VALIDATION=allowlist",
                         "SINK_ALLOWED_HOSTS=a.example,b.example",
                         "APP_LOG_FORMAT=console",
                         "APP_LOG_LEVEL=WARN",
                         "JS_STREAM_MAX_BYTES=-1",
                         "JS_STREAM_MAX_MSGS=-1",
                         "MAX_RECONNECTS=10",
                         "RECONNECT_WAIT=250ms",
                         "METRICS_ADDR=[::1]:9091",
                         "NATS_URL=nats://127.0.0.1:4222",
                         "SUBSCRIPTIONS=/etc/subs",
                         "DATA_DIR=/var/lib/jb",
                         NULL};
    jb_cfg *c = NULL;
    int rest[1], nrest = -1;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL_FATAL(load(args, env, &c, rest, &nrest, &err), JB_OK);
    CU_ASSERT_EQUAL(c->stream_storage, JB_STORAGE_MEMORY);
    CU_ASSERT_EQUAL(c->stream_retention, JB_RETENTION_WORKQUEUE);
    CU_ASSERT_EQUAL(c->stream_discard, JB_DISCARD_OLD);
    CU_ASSERT_EQUAL(c->consumer_deliver_policy, JB_DELIVER_ALL);
    CU_ASSERT_EQUAL(c->sink_validation, JB_SINK_ALLOWLIST);
    CU_ASSERT_STRING_EQUAL(c->sink_allowed_hosts, "a.example,b.example");
    CU_ASSERT_FALSE(c->log_json);
    CU_ASSERT_STRING_EQUAL(c->log_level, "warn");
    CU_ASSERT_EQUAL(c->stream_max_bytes, -1);
    CU_ASSERT_EQUAL(c->stream_max_msgs, -1);
    CU_ASSERT_EQUAL(c->max_reconnects, 10);
    CU_ASSERT_EQUAL(c->reconnect_wait_ms, 250);
    CU_ASSERT_STRING_EQUAL(c->metrics_addr, "[::1]:9091");
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://127.0.0.1:4222");
    CU_ASSERT_STRING_EQUAL(c->subscriptions_dir, "/etc/subs");
    CU_ASSERT_STRING_EQUAL(c->data_dir, "/var/lib/jb");
    jb_cfg_destroy(c);
}

/* The one error line a user sees, for bad values from each source. */
static void test_error_lines(void)
{
    static const struct {
        const char *args[4];
        const char *env[3];
        const char *want;
    } cases[] = {
        {{NULL},
         {"INGRESS_PORT=abc", NULL},
         "INGRESS_PORT: invalid value \"abc\": want integer 1..65535"},
        {{"--ingress-port", "abc", NULL},
         {NULL},
         "--ingress-port: invalid value \"abc\": want integer 1..65535"},
        {{"--ingress-port=0", NULL},
         {NULL},
         "--ingress-port: invalid value \"0\": want integer 1..65535"},
        {{"--ingress-port", NULL}, {NULL}, "--ingress-port: missing value (want integer 1..65535)"},
        {{"--nats-url", "--ingress-port", "1", NULL},
         {NULL},
         "--nats-url: missing value (want NATS URL(s), comma-separated)"},
        {{"--config", NULL}, {NULL}, "--config: missing value (want a file)"},
        {{"--config", "/nonexistent/jb.yaml", NULL},
         {NULL},
         "--config /nonexistent/jb.yaml: No such file or directory"},
        {{NULL},
         {"JS_STREAM_STORAGE_TYPE=disk", NULL},
         "JS_STREAM_STORAGE_TYPE: invalid value \"disk\": want file|memory"},
        {{NULL},
         {"REQUEST_TIMEOUT=5 seconds", NULL},
         "REQUEST_TIMEOUT: invalid value \"5 seconds\": want duration 1ms..1h (5s, 1m30s, 250ms, "
         "PT5S; an integer is seconds)"},
        {{NULL},
         {"REQUEST_TIMEOUT=0s", NULL},
         "REQUEST_TIMEOUT: invalid value \"0s\": want duration 1ms..1h (5s, 1m30s, 250ms, PT5S; "
         "an integer is seconds)"},
        {{NULL},
         {"MAX_REQUEST_SIZE=2Gi", NULL},
         "MAX_REQUEST_SIZE: invalid value \"2Gi\": want size 1..1Gi (bytes, or a quantity such as "
         "64Ki, 700Mi, 1G)"},
        {{NULL},
         {"JS_STREAM_NAME=a.b", NULL},
         "JS_STREAM_NAME: invalid value \"a.b\": want a name without spaces, '.', '*', '>', '/' or "
         "'\\'"},
        {{NULL},
         {"INGRESS_ADDR=localhost", NULL},
         "INGRESS_ADDR: invalid value \"localhost\": want IPv4 or IPv6 address (0.0.0.0, "
         "127.0.0.1, ::)"},
        {{NULL},
         {"INGRESS_ADDR=127.0.0.1:80", NULL},
         "INGRESS_ADDR: invalid value \"127.0.0.1:80\": want IPv4 or IPv6 address (0.0.0.0, "
         "127.0.0.1, ::)"},
        {{NULL},
         {"APP_LOG_FORMAT=fancy", NULL},
         "APP_LOG_FORMAT: invalid value \"fancy\": want auto|json|text"},
        {{NULL},
         {"METRICS_ADDR=9090", NULL},
         "METRICS_ADDR: invalid value \"9090\": want host:port or :port (port 0..65535)"},
        {{NULL},
         {"METRICS_ADDR=:70000", NULL},
         "METRICS_ADDR: invalid value \":70000\": want host:port or :port (port 0..65535)"},
        {{NULL},
         {"APP_LOG_LEVEL=\"trace\"\n", NULL},
         "APP_LOG_LEVEL: invalid value \"\\\"trace\\\"\\x0a\": want debug|info|warn|error"},
        {{NULL},
         {"EVENT_TYPE_PREFIX=", NULL},
         "EVENT_TYPE_PREFIX: invalid value \"\": want non-empty string"},
        /* A bad value stops even when a flag would override it: the first bad value
         * in precedence order (file, environment, flags) is the one reported. */
        {{"--ingress-port", "x", NULL},
         {"INGRESS_PORT=y", NULL},
         "INGRESS_PORT: invalid value \"y\": want integer 1..65535"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        jb_cfg *c = NULL;
        int rest[4], nrest = -1;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL(load(cases[i].args, cases[i].env, &c, rest, &nrest, &err), JB_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(c);
        CU_ASSERT_EQUAL(nrest, -1);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i].want);
        if (strcmp(err.msg, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got  %s\n         want %s\n", i, err.msg, cases[i].want);
        CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    }
    /* A long value is cut in the message. */
    char big[400];
    memset(big, 'x', sizeof(big));
    memcpy(big, "INGRESS_PORT=", 13);
    big[sizeof(big) - 1] = '\0';
    const char *args[] = {NULL};
    const char *env[] = {big, NULL};
    jb_cfg *c = NULL;
    int rest[1], nrest = 0;
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(load(args, env, &c, rest, &nrest, &err), JB_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "xxx...\": want integer 1..65535"));
}

static void test_yaml_file(void)
{
    static const struct {
        const char *yaml;
        const char *want_err; /* NULL = loads; "%s" is the file name */
    } cases[] = {
        {"", NULL},
        {"---\n", NULL},
        {"# only a comment\n", NULL},
        {"INGRESS_PORT: 8081\nNATS_URL: \"nats://h:1\"\n", NULL},
        {"{INGRESS_PORT: 8081}", NULL},
        {"NATS_URL:\n", NULL},
        {"NATS_URL: ~\n", NULL},
        {"INGRESS_PORT: 8081\nFOO: 1\n", "%s:2: unknown key \"FOO\""},
        {"ingress_port: 8081\n", "%s:1: unknown key \"ingress_port\""},
        {"INGRESS_PORT: abc\n", "%s:1: INGRESS_PORT: invalid value \"abc\": want integer 1..65535"},
        {"\n\nINGRESS_PORT: \"\"\n",
         "%s:3: INGRESS_PORT: invalid value \"\": want integer 1..65535"},
        {"INGRESS_PORT: [1, 2]\n", "%s:1: INGRESS_PORT: want a single value"},
        {"INGRESS_PORT: {a: 1}\n", "%s:1: INGRESS_PORT: want a single value"},
        {"INGRESS_PORT: 1\nINGRESS_PORT: 2\n", "%s:2: INGRESS_PORT: set twice"},
        {"- INGRESS_PORT\n", "%s:1: want a mapping of KEY: value"},
        {"hello\n", "%s:1: want a mapping of KEY: value"},
        {"INGRESS_PORT: 1\n---\nINGRESS_PORT: 2\n", "%s:2: want one YAML document"},
        {"? [a]\n: 1\n", "%s:1: keys must be plain names"},
        {"INGRESS_PORT: \"80\\0\"\n",
         "%s:1: INGRESS_PORT: invalid value \"80\\x00\": want integer 1..65535"},
        {"NATS_URL: b: c\n", "%s:1: YAML: mapping values are not allowed in this context"},
        {"x: &a 1\nNATS_URL: *a\n", "%s:1: unknown key \"x\""},
        {"NATS_URL: &a 1\nDATA_DIR: *a\n", "%s:2: DATA_DIR: want a single value"},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *file = temp_file(cases[i].yaml);
        const char *args[] = {"--config", file, NULL};
        const char *env[] = {NULL};
        jb_cfg *c = NULL;
        int rest[2], nrest = -1;
        jb_err err = {{0}};
        jb_status st = load(args, env, &c, rest, &nrest, &err);
        if (cases[i].want_err == NULL) {
            CU_ASSERT_EQUAL(st, JB_OK);
            if (st != JB_OK)
                fprintf(stderr, "yaml case %zu: %s\n", i, err.msg);
            CU_ASSERT_EQUAL(nrest, 0);
        } else {
            char want[600];
            snprintf(want, sizeof(want), cases[i].want_err, file);
            CU_ASSERT_EQUAL(st, JB_ERR_CONFIG);
            CU_ASSERT_STRING_EQUAL(err.msg, want);
            if (strcmp(err.msg, want) != 0)
                fprintf(stderr, "yaml case %zu: got  %s\n             want %s\n", i, err.msg, want);
        }
        jb_cfg_destroy(c);
        unlink(file);
        free(file);
    }
}

static void test_yaml_values(void)
{
    jb_cfg *c = jb_cfg_defaults();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const char *y = "INGRESS_PORT: 8081\n"
                    "NATS_URL: 'nats://a:1,nats://b:2'\n"
                    "JS_STREAM_MAX_BYTES: 1.5Gi\n"
                    "JS_CONSUMER_ACK_WAIT: PT1M\n"
                    "SINK_ALLOWED_HOSTS: null\n"
                    "APP_LOG_FORMAT: text\n";
    jb_err err = {{0}};
    CU_ASSERT_EQUAL(jb_cfg_apply_yaml(c, "buf", y, strlen(y), &err), JB_OK);
    CU_ASSERT_EQUAL(c->ingress_port, 8081);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://a:1,nats://b:2");
    CU_ASSERT_EQUAL(c->stream_max_bytes, INT64_C(1610612736));
    CU_ASSERT_EQUAL(c->ack_wait_ms, 60000);
    CU_ASSERT_STRING_EQUAL(c->sink_allowed_hosts, "");
    CU_ASSERT_FALSE(c->log_json);
    jb_cfg_destroy(c);
}

static void test_rest(void)
{
    static const struct {
        const char *args[10];
        int want[10];
        int nwant;
    } cases[] = {
        {{NULL}, {0}, 0},
        {{"apply", "-f", "dir", NULL}, {0, 1, 2}, 3},
        {{"--nats-url", "nats://x:1", "get", "name", NULL}, {2, 3}, 2},
        {{"get", "--nats-url=nats://x:1", "name", NULL}, {0, 2}, 2},
        {{"--help", "--unknown=1", "-v", NULL}, {0, 1, 2}, 3},
        {{"--subscriptions", "dir", "--data-dir", "d", "x", NULL}, {4}, 1},
        /* After "--" nothing is a configuration flag. */
        {{"a", "--", "--ingress-port", "1", NULL}, {0, 1, 2, 3}, 4},
        /* A negative number is a value, not a flag. */
        {{"--max-reconnects", "-1", "z", NULL}, {2}, 1},
        {{"-", "--ingress", NULL}, {0, 1}, 2},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        const char *env[] = {NULL};
        jb_cfg *c = NULL;
        int rest[10], nrest = -1;
        jb_err err = {{0}};
        CU_ASSERT_EQUAL_FATAL(load(cases[i].args, env, &c, rest, &nrest, &err), JB_OK);
        CU_ASSERT_EQUAL(nrest, cases[i].nwant);
        for (int j = 0; j < nrest && j < cases[i].nwant; j++)
            CU_ASSERT_EQUAL(rest[j], cases[i].want[j]);
        jb_cfg_destroy(c);
    }
}

static void test_markdown(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    jb_cfg_print_markdown(f);
    fclose(f);
    size_t n;
    const jb_cfg_key_info *k = jb_cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char cell[128];
        snprintf(cell, sizeof(cell), "| `%s` | `%s` |", k[i].env, k[i].flag);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, cell));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "| `JS_STREAM_STORAGE_TYPE` | `--js-stream-storage-type` "
                                       "| `file` | file\\|memory |"));
    free(buf);
}

/* docs/configuration.md and README.md carry the generated table verbatim. */
static void check_doc_has_table(const char *path)
{
    char *table = NULL, *doc = NULL;
    size_t tlen = 0, dlen = 0;
    FILE *f = open_memstream(&table, &tlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    jb_cfg_print_markdown(f);
    fclose(f);
    FILE *d = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    doc = calloc(1, 1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    dlen = fread(doc, 1, (1 << 20) - 1, d);
    fclose(d);
    CU_ASSERT_TRUE(dlen > 0);
    bool found = strstr(doc, table) != NULL;
    CU_ASSERT_TRUE(found);
    if (!found)
        fprintf(stderr, "%s: regenerate the key table (jetbridge help --markdown):\n%s", path,
                table);
    free(doc);
    free(table);
}

static void test_docs_in_sync(void)
{
    check_doc_has_table(JB_SOURCE_DIR "/docs/configuration.md");
    check_doc_has_table(JB_SOURCE_DIR "/README.md");
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"parse_bool", test_parse_bool},
        {"parse_duration: Go, ISO 8601, bare seconds, overflow", test_parse_duration},
        {"parse_iso8601_duration: only ISO 8601", test_parse_iso8601},
        {"parse_size: Kubernetes quantities", test_parse_size},
        {"key table: flags follow env names, required keys", test_key_table},
        {"defaults match the documented values", test_defaults},
        {"precedence: default < file < env < flag", test_precedence},
        {"SHUTDOWN_GRACE=0 stays 0", test_zero_grace_kept},
        {"every kind of key from the environment", test_all_kinds_from_env},
        {"bad values: one line naming key, value, allowed", test_error_lines},
        {"YAML file: accepted shapes and errors", test_yaml_file},
        {"YAML buffer values", test_yaml_values},
        {"rest[]: arguments that are not configuration", test_rest},
        {"markdown reference lists every key", test_markdown},
        {"docs/configuration.md and README.md have the current table", test_docs_in_sync},
    };
    return jb_cunit_main("config", NULL, NULL, cases, JB_CASES_N(cases));
}

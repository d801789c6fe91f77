/*
 * The README cannot rot: this suite runs the README's own commands (the blocks
 * marked <!-- readme-e2e:NAME -->) against `jetbridge run` with the example
 * subscriptions and the example sink, and checks that the sink received the events,
 * that `jetbridge stats` shows the subscription, that the dead letter is listed and
 * that its replay succeeds once the sink is fixed. As for a new user, no jetbridge
 * variable is set: `run` starts its own nats-server (NATS_URL unset) with its store in
 * ./.jetbridge of a scratch working directory, and the tour's commands, run in that
 * same directory, find it there. Only ports and the binary's path are substituted.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jb_cunit.h"
#include "jb_testenv.h"

static jb_tproc *sink, *run;
static int ingress_port, metrics_port, sink_port;
static char subs_dir[256], work_dir[256];

/* Whatever the test's own environment holds, the tour runs without these. */
#define UNSET_JB_ENV "NATS_URL", "METRICS_ADDR", "DATA_DIR", "INGRESS_PORT", "APP_LOG_FORMAT"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = (size_t)n;
    }
    return buf;
}

/* Replaces every occurrence of from with to; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)) != NULL; p += fl)
        n++;
    char *out = malloc(strlen(s) + n * (tl + 1) + 1);
    char *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (q == NULL) {
            memcpy(o, p, strlen(p) + 1);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

/* The shell block after the marker, with ports and paths of this test. */
static char *readme_block(const char *name)
{
    char *readme = read_file(JB_SOURCE_DIR "/README.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    char marker[128];
    snprintf(marker, sizeof(marker), "<!-- readme-e2e:%s -->", name);
    char *m = strstr(readme, marker);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char *start = strstr(m, "```sh\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(start);
    start += 6;
    char *end = strstr(start, "```");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    *end = '\0';
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ingress_port);
    char *a = replace_all(start, "127.0.0.1:8080", addr);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sink_port);
    char *a2 = replace_all(a, "127.0.0.1:8081", addr);
    char *b = replace_all(a2, "build/release/jetbridge", JB_BINARY);
    free(readme);
    free(a);
    free(a2);
    return b;
}

/* Runs a README block with sh in the working directory of `run`; returns its
 * stdout+stderr. */
static char *sh(const char *block)
{
    size_t n = strlen(block) + strlen(work_dir) + 16;
    char *script = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    snprintf(script, n, "cd '%s'\n%s", work_dir, block);
    const char *argv[] = {"-ec", script, NULL};
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int rc = jb_tproc_wait(p, 30000);
    char *log = jb_tproc_log(p);
    if (rc != 0)
        fprintf(stderr, "README block failed (%d):\n%s\n%s\n", rc, script, log);
    CU_ASSERT_EQUAL(rc, 0);
    jb_tproc_stop(p);
    free(script);
    return log;
}

static bool sink_saw(const char *needle, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        char *log = jb_tproc_log(sink);
        bool found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        jb_sleep_ms(100);
    }
    return false;
}

/* Copies the example manifests with the sink's port in place of 8081. */
static void copy_examples(void)
{
    snprintf(subs_dir, sizeof(subs_dir), "/tmp/jb-readme-subs-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(subs_dir));
    DIR *d = opendir(JB_SOURCE_DIR "/examples/subscriptions");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sink_port);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char src[512], dst[512];
        snprintf(src, sizeof(src), "%s/examples/subscriptions/%s", JB_SOURCE_DIR, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", subs_dir, e->d_name);
        char *text = read_file(src, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        char *fixed = replace_all(text, "127.0.0.1:8081", addr);
        FILE *f = fopen(dst, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(fixed, f);
        fclose(f);
        free(text);
        free(fixed);
    }
    closedir(d);
}

static int setup(void)
{
    ingress_port = jb_free_port();
    metrics_port = jb_free_port();
    sink_port = jb_free_port();
    snprintf(work_dir, sizeof(work_dir), "/tmp/jb-readme-work-XXXXXX");
    if (mkdtemp(work_dir) == NULL)
        return 1;
    char sink_bin[512], sport[16];
    if (!jb_built_program("sink", sink_bin, sizeof(sink_bin)))
        return 1;
    snprintf(sport, sizeof(sport), "%d", sink_port);
    const char *sargv[] = {"--port", sport, NULL};
    sink = jb_tproc_start_exe(sink_bin, sargv, NULL, sink_port);
    return sink == NULL;
}

static int teardown(void)
{
    jb_tproc_stop(run);
    jb_tproc_stop(sink);
    if (subs_dir[0] != '\0')
        jb_rm_tree(subs_dir);
    if (work_dir[0] != '\0')
        jb_rm_tree(work_dir);
    return 0;
}

static void test_run_starts_with_examples(void)
{
    copy_examples();
    /* `make run` uses ports 8080 and 9090; this run takes free ones, and leaves the
     * admin host empty as the default does (loopback, since run starts its own NATS).
     * The CLI finds both from ./.jetbridge. */
    char ingress[32], metrics[32], cmd[1024];
    snprintf(ingress, sizeof(ingress), "INGRESS_PORT=%d", ingress_port);
    snprintf(metrics, sizeof(metrics), "METRICS_ADDR=:%d", metrics_port);
    snprintf(cmd, sizeof(cmd), "cd '%s' && exec '%s' run --subscriptions '%s'", work_dir, JB_BINARY,
             subs_dir);
    const char *argv[] = {"-c", cmd, NULL};
    const char *env[] = {"NATS_URL", "DATA_DIR", "APP_LOG_FORMAT", ingress, metrics, NULL};
    run = jb_tproc_start_exe("/bin/sh", argv, env, ingress_port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    /* The banner names where to publish and the example subscription. */
    bool banner = false;
    for (int i = 0; i < 150 && !banner; i++) {
        char *log = jb_tproc_log(run);
        banner = log != NULL && strstr(log, "subscription default/order-processor") != NULL;
        free(log);
        if (!banner)
            jb_sleep_ms(100);
    }
    CU_ASSERT_TRUE(banner);
    /* Logs spell a subscription ns/name, as the CLI does (never the KV key). */
    char *log = jb_tproc_log(run);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"subscription\":\"default/order-processor\""));
    CU_ASSERT_PTR_NULL(strstr(log, "default.order-processor"));
    free(log);
}

static void test_publish_three_ways(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    static const struct {
        const char *block, *status, *sink_sees;
    } cases[] = {
        {"publish-binary", "HTTP/1.1 204", "\"orderId\":\"42\""},
        {"publish-structured", "HTTP/1.1 204", "\"orderId\":\"43\""},
        {"publish-legacy", "HTTP/1.1 200", "\"orderId\":\"44\""},
    };
    for (size_t i = 0; i < JB_CASES_N(cases); i++) {
        char *script = readme_block(cases[i].block);
        char *out = sh(script);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].status));
        CU_ASSERT_TRUE(sink_saw(cases[i].sink_sees, 15000));
        free(out);
        free(script);
    }
}

static void test_stats_shows_deliveries(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("stats");
    char *out = sh(script);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "default/order-processor"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "order.created.v1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "publisher:"));
    free(out);
    free(script);
}

static void test_dead_letter_listed(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("dead-letter");
    bool listed = false;
    for (int attempt = 0; attempt < 10 && !listed; attempt++) {
        char *out = sh(script);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 204"));
        listed = strstr(out, "dead-letter-demo") != NULL && strstr(out, "400") != NULL;
        free(out);
        if (!listed)
            jb_sleep_ms(1000);
    }
    CU_ASSERT_TRUE(listed);
    free(script);
    /* run's log names the subscription and the event, not only the consumer hash. */
    char *rlog = jb_tproc_log(run);
    CU_ASSERT_PTR_NOT_NULL(strstr(rlog, "\"msg\":\"dead letter\",\"subscription\":\"default/"
                                        "dead-letter-demo\",\"id\":\"8d3c4a8e-8d52-4f7f-9f8e-"
                                        "2b7c1f000003\""));
    free(rlog);
    /* stats names the last error of that subscription: the sink's 400. */
    script = readme_block("stats");
    char *out = sh(script);
    const char *row = strstr(out, "default/dead-letter-demo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    const char *eol = strchr(row, '\n');
    const char *err400 = strstr(row, "HTTP 400, ");
    CU_ASSERT_TRUE(err400 != NULL && (eol == NULL || err400 < eol));
    free(out);
    free(script);
}

/* The README fixes the sink and replays: the dead letter reaches the sink and
 * leaves the dead-letter stream. */
static void test_replay_after_fix(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("replay");
    char *out = sh(script);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "replayed 1, failed 0"));
    CU_ASSERT_TRUE(sink_saw("-> 200 binary type=payment.failed.v1", 15000));
    free(out);
    free(script);
    /* Nothing left for that subscription: a second replay says so. */
    const char *argv[] = {"-c", NULL, NULL};
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' dlq replay --subscription dead-letter-demo",
             work_dir, JB_BINARY);
    argv[1] = cmd;
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(jb_tproc_wait(p, 30000), 0);
    char *log = jb_tproc_log(p);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(log, "nothing to replay: no dead letter of subscription default/dead-letter-demo"));
    free(log);
    jb_tproc_stop(p);
}

/* The README's structured event with the wrong content type (application/json):
 * a 400 that explains binary mode and names the right content type. */
static void test_structured_as_json_explained(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *script = readme_block("publish-structured");
    char *wrong = replace_all(script, "application/cloudevents+json", "application/json");
    char *out = sh(wrong);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 400"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "binary mode"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "content-type: application/cloudevents+json"));
    free(out);
    free(wrong);
    free(script);
}

/* Runs one CLI command in the tour's directory and environment; returns its exit
 * code, its output in *out. */
static int cli(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s", work_dir, JB_BINARY, args);
    const char *argv[] = {"-c", cmd, NULL};
    const char *env[] = {UNSET_JB_ENV, NULL};
    jb_tproc *p = jb_tproc_start_exe("/bin/sh", argv, env, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int rc = jb_tproc_wait(p, 30000);
    *out = jb_tproc_log(p);
    jb_tproc_stop(p);
    return rc;
}

/* dlq purge: refuses to purge everything without --all; with a selector it deletes
 * what matches (NAME means default/NAME), and says so when nothing does. */
static void test_purge(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(run);
    char *out = NULL;
    CU_ASSERT_EQUAL(jb_http(sink_port, "POST", "/break", NULL, "", 0, NULL, NULL, NULL), 200);
    const char *hdr = "ce-specversion: 1.0\r\nce-type: payment.failed.v1\r\nce-source: myapp\r\n"
                      "ce-id: purge-me\r\n";
    CU_ASSERT_EQUAL(jb_http(ingress_port, "POST", "/publish", hdr, "x", 1, NULL, NULL, NULL), 204);
    bool listed = false;
    for (int i = 0; i < 100 && !listed; i++) {
        CU_ASSERT_EQUAL(cli("dlq list --subscription dead-letter-demo", &out), 0);
        listed = strstr(out, "purge-me") != NULL;
        free(out);
        if (!listed)
            jb_sleep_ms(200);
    }
    CU_ASSERT_TRUE_FATAL(listed);
    CU_ASSERT_EQUAL(cli("dlq purge", &out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "only with --all"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq purge --subscription nobody", &out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing to purge: no dead letter of subscription "
                                       "default/nobody"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq purge --subscription dead-letter-demo", &out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "purged 1, failed 0"));
    free(out);
    CU_ASSERT_EQUAL(cli("dlq list --subscription default/dead-letter-demo", &out), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "purge-me"));
    free(out);
}

int main(void)
{
    static const jb_test_case cases[] = {
        {"run starts with the example subscriptions", test_run_starts_with_examples},
        {"README publish commands reach the example sink", test_publish_three_ways},
        {"README stats command shows the subscription", test_stats_shows_deliveries},
        {"README dead-letter command lists the dead letter", test_dead_letter_listed},
        {"README replay after fixing the sink delivers the dead letter", test_replay_after_fix},
        {"dlq purge with a selector, --all for everything", test_purge},
        {"a structured event sent as application/json: 400 explains",
         test_structured_as_json_explained},
    };
    return jb_cunit_main("readme", setup, teardown, cases, JB_CASES_N(cases));
}
